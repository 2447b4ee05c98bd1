"""Data in and out in bulk, for the command line: events imported from a JSONL file through the
API's validation and write path (`imports.py`), events and contacts exported as JSONL or CSV in
constant memory (`exports.py`), and the progress bars they show on a terminal (`progress.py`)."""

FORMATS = ("jsonl", "csv")  # of exports
