"""In-process timing of the validator on the bodies bench/run.py sends (no server, no HTTP).

    python bench/validation.py [--rounds N] [--against COMMIT ...]

Validates `single_body()` (one CONVERSION) and `batch_body()` (100 events of ten types) many
times in short timings and prints the best, in microseconds a body: on a busy machine other
processes only ever add to a timing, so the minimum is the figure to compare. With --against,
the validator of each COMMIT (its src/rdevents/validation.py, on this tree's catalogue) is timed
in the same process by turns with this tree's, which is how to tell a change of a few percent
from the machine's noise; ratios are to the first COMMIT.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import timeit
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import rdevents.validation  # noqa: E402
from run import batch_body, single_body  # noqa: E402


def validator_at(commit: str) -> ModuleType:
    """validation.py as it was at `commit`, imported beside this tree's (as rdevents.<name>)."""
    source = subprocess.run(["git", "show", f"{commit}:src/rdevents/validation.py"], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout
    name = f"rdevents._validation_at_{commit.replace('-', '_').replace('~', '_')}"
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as file:
        file.write(source)
    spec = importlib.util.spec_from_file_location(name, file.name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    Path(file.name).unlink()
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300,
                        help="timings of each body and validator (default 300)")
    parser.add_argument("--against", metavar="COMMIT", action="append", default=[],
                        help="also time the validator of COMMIT, by turns with this tree's "
                             "(may be given more than once)")
    options = parser.parse_args()
    single = orjson.loads(single_body().replace("__ID__", "1"))
    batch = orjson.loads(batch_body().replace("__ID__", "1"))
    validators: dict[str, ModuleType] = {commit: validator_at(commit) for commit in options.against}
    validators["this tree"] = rdevents.validation
    timers: list[tuple[str, str, timeit.Timer, int]] = []
    for label, module in validators.items():
        assert module.validate_event(single)[1] == []
        assert module.validate_batch(batch, 1_000)[1] == []
        cases: dict[str, tuple[Callable[[], Any], int]] = {
            "single": (partial(module.validate_event, single), 1_000),
            "batch": (partial(module.validate_batch, batch, 1_000), 10)}
        for body, (call, number) in cases.items():
            timers.append((body, label, timeit.Timer(call), number))
    best: dict[tuple[str, str], float] = {}
    for round_ in range(options.rounds):
        for body, label, timer, number in timers if round_ % 2 else timers[::-1]:
            seconds = timer.timeit(number) / number
            best[body, label] = min(best.get((body, label), seconds), seconds)
    for body in ("single", "batch"):
        figures = []
        for label in validators:
            figure = f"{label}: {best[body, label] * 1e6:.2f} µs"
            if options.against and label != options.against[0]:
                figure += f" ({best[body, label] / best[body, options.against[0]]:.3f})"
            figures.append(figure)
        print(f"{body:<7} " + "   ".join(figures))


if __name__ == "__main__":
    main()
