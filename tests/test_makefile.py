"""The Makefile's housekeeping leaves the user's data alone."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

MAKEFILE = Path(__file__).resolve().parents[1] / "Makefile"


def test_make_clean_keeps_the_database(tmp_path):
    shutil.copy(MAKEFILE, tmp_path / "Makefile")
    for made in (".venv/bin/python", ".pytest_cache/README.md", ".hypothesis/examples/x"):
        (tmp_path / made).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / made).write_text("made by make or the tests")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rdevents.db").write_bytes(b"the user's events")

    result = subprocess.run(["make", "clean"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)

    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["Makefile", "data"]
    assert (tmp_path / "data" / "rdevents.db").read_bytes() == b"the user's events"
