"""The pytest plugin, as a project that only installs rdevents uses it: the example suite
(examples/rd_integration) copied into a directory of its own, away from this repository's
conftest, run by pytest; and the plugin loaded by its name alone."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "rd_integration"

SESSION_TESTS = '''
import pytest
from rdevents.pytest_plugin import SandboxError


def test_the_session_server(rdevents_server):
    assert rdevents_server.url.startswith("http://127.0.0.1:")
    assert rdevents_server.fault("server_error", count=2)["remaining"] == 2
    assert [f["fault"] for f in rdevents_server.faults()] == ["server_error"]
    rdevents_server.reset()
    assert rdevents_server.faults() == []


def test_a_fault_rdevents_refuses_says_why(rdevents):
    with pytest.raises(SandboxError, match="INVALID_OPTION"):
        rdevents.fault("teapot")
'''


def run_pytest(directory: Path, *args: str, python: str = sys.executable,
               **environment: str) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("RDEVENTS_", "PYTEST_", "PYTHONPATH", "VIRTUAL_ENV"))}
    return subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          cwd=directory, env={**env, **environment}, capture_output=True,
                          text=True, timeout=300)


def test_the_example_suite_passes_in_a_project_of_its_own(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__"))
    run = run_pytest(project)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "9 passed" in run.stdout


def test_the_plugin_loads_by_its_name_alone(tmp_path):
    (tmp_path / "test_session.py").write_text(SESSION_TESTS)
    run = run_pytest(tmp_path, "-p", "rdevents", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout


def test_the_example_suite_passes_where_only_rdevents_and_pytest_are_installed(tmp_path):
    """A new virtual environment, `pip install rdevents pytest` (rdevents from this tree) and
    nothing else: the entry point registers the plugin, and the example suite passes."""
    environment = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(environment)], check=True, timeout=120)
    python = str(environment / "bin" / "python")
    installed = subprocess.run([python, "-m", "pip", "install", "--quiet", str(ROOT), "pytest"],
                               capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__"))
    run = run_pytest(project, python=python)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "9 passed" in run.stdout
