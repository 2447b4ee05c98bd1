"""Ingest: requests of the write routes, turned into typed jobs of the processing stage
(`events.py`: events, validated against the catalogue; `contacts.py`: contacts-API changes),
and the jobs' outcomes into the exceptions the HTTP layer renders (`answers.py`)."""

from .answers import InvalidEvents, KeyInFlight, KeyReused, RateLimited, Replay
from .contacts import change_contact, erase_contact
from .events import ingest_batch, ingest_event, stored_payloads

__all__ = ["InvalidEvents", "KeyInFlight", "KeyReused", "RateLimited", "Replay", "change_contact",
           "erase_contact", "ingest_batch", "ingest_event", "stored_payloads"]
