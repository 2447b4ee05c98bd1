"""Lists for an operator: an aligned table to read, or a JSON array for scripts."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

import click


def echo_records(records: Sequence[Any], record_type: type, as_json: bool) -> None:
    """Print dataclass records of `record_type`, one a row, its fields as the columns."""
    columns = [field.name for field in dataclasses.fields(record_type)]
    rows = [dataclasses.asdict(record) for record in records]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    echo_table([[column.upper().replace("_", " ") for column in columns],
                *([_cell(row[column]) for column in columns] for row in rows)])


def echo_table(lines: Sequence[Sequence[str]]) -> None:
    """Rows of cells (the first the headings), aligned in columns."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    for line in lines:
        cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        click.echo("  ".join(cells).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
