"""The instructions an event of the write path (bench/write_path.py), counted by valgrind's
callgrind: the same figure run after run, whatever else the machine is doing, so the way to
compare two trees by a change of a few percent, which timings on a shared machine cannot show.

    python bench/instructions.py [--single] [--postgres]

Runs write_path.py under callgrind twice, measuring FEW and then MANY rounds, and divides the
difference by the events of the rounds between, so that starting the process cancels out. It
counts the work of every thread (the writer's commits, the checkpoints), not time: a change
that moves work between threads, or that waits less, does not show here; nor, with --postgres,
the database server's work, nor the kernel's (a round trip less shows only as the client's own
instructions for it). Takes a minute or two.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from write_path import BATCHES, SINGLE

BENCH = Path(__file__).resolve().parent
FEW, MANY = 3, 13


def instructions(rounds: int, options: list[str]) -> int:
    """The instructions of one run of write_path.py measuring `rounds` rounds."""
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
               str(BENCH / "write_path.py"), "--rounds", str(rounds)]
    source = str(BENCH.parent / "src")
    # One hash seed for every run: with a random one, the layout of dictionaries and sets, and
    # so the work of looking things up in them, moved the count by about 1% from run to run.
    env = {**os.environ, "PYTHONHASHSEED": "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))}
    run = subprocess.run(command + options, env=env, check=True,
                         capture_output=True, text=True)
    collected = re.search(r"Collected : (\d+)", run.stderr)
    if collected is None:
        sys.exit(f"callgrind printed no count:\n{run.stderr}")
    return int(collected.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--single", action="store_true", help="single events (write_path.py's "
                        "--single) instead of batches of conversions")
    parser.add_argument("--postgres", action="store_true", help="through the PostgreSQL store "
                        "(write_path.py's --postgres)")
    args = parser.parse_args()
    options = [option for option, wanted in (("--single", args.single),
                                             ("--postgres", args.postgres)) if wanted]
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed: `apt-get install valgrind`")
    counts = []
    for rounds in (FEW, MANY):
        print(f"write_path.py --rounds {rounds} under callgrind ...", file=sys.stderr, flush=True)
        counts.append(instructions(rounds, options))
    shape = SINGLE if args.single else BATCHES
    events = (MANY - FEW) * shape.requests_a_round * shape.events
    print(f"{(counts[1] - counts[0]) / events:,.0f} instructions an event "
          f"({counts[0]:,} with {FEW} rounds, {counts[1]:,} with {MANY})")


if __name__ == "__main__":
    main()
