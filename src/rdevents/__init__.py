"""rdevents: a self-hosted, wire-compatible RD Station Marketing Events API."""

__version__ = "0.1.0"
