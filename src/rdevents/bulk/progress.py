"""Progress bars on stderr, drawn only when stderr is a terminal: a command whose stderr goes to
a file, a pipe or a service's log writes none of them there."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn


def progress_bars() -> Progress:
    """Bars of tasks (`add_task`, `update`); each task's description says what is counted. Use
    it as a context manager; `disable` tells when nothing is drawn."""
    return Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                    TimeRemainingColumn(), console=Console(stderr=True),
                    disable=not sys.stderr.isatty())
