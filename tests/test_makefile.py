"""The Makefile: `make test` lints and type-checks before the whole suite, `make check` runs the
fast lane, and the housekeeping leaves the user's data alone."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

MAKEFILE = Path(__file__).resolve().parents[1] / "Makefile"


def test_make_clean_keeps_the_database(tmp_path):
    shutil.copy(MAKEFILE, tmp_path / "Makefile")
    for made in (".venv/bin/python", ".pytest_cache/README.md", ".hypothesis/examples/x",
                 ".mypy_cache/3.11/x", ".ruff_cache/0.6/x"):
        (tmp_path / made).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / made).write_text("made by make or the tests")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rdevents.db").write_bytes(b"the user's events")

    result = subprocess.run(["make", "clean"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)

    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["Makefile", "data"]
    assert (tmp_path / "data" / "rdevents.db").read_bytes() == b"the user's events"


def planned(tmp_path: Path, target: str) -> list[str]:
    """The commands `make TARGET` would run, in a project whose .venv is installed."""
    shutil.copy(MAKEFILE, tmp_path / "Makefile")
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / ".installed").write_text("")  # newer than pyproject.toml
    # Run under `make test` too: without the calling make's flags, it is not a sub-make.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    result = subprocess.run(["make", "--no-print-directory", "-n", target], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_make_test_lints_and_checks_types_before_the_whole_suite(tmp_path):
    assert planned(tmp_path, "test") == [".venv/bin/ruff check src tests bench", ".venv/bin/mypy",
                                         ".venv/bin/pytest -n 2 -q"]


def test_make_check_runs_the_unit_tests_alone(tmp_path):
    commands = planned(tmp_path, "check")
    assert commands[:2] == [".venv/bin/ruff check src tests bench", ".venv/bin/mypy"]
    assert len(commands) == 3 and commands[2].startswith(".venv/bin/pytest ")
    assert commands[2].endswith(" tests/unit")
