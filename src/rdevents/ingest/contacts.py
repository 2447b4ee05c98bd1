"""Contacts-API writes: a change or an erasure of one contact, as a job of the writer, so that
it never races events."""

from __future__ import annotations

from ..clock import utc_now
from ..contacts import ContactChange, ContactChangeRefused
from ..process import ContactChangeJob, EraseJob, Invalid, Job
from ..store import Store
from .answers import raise_for


async def change_contact(store: Store, account_id: int, email: str,
                         change: ContactChange) -> None:
    """Apply a change (create, upsert, tag, funnel). Raises ContactChangeRefused when the
    contact's state forbids it."""
    await _write(store, ContactChangeJob(account_id, utc_now(), email, change))


async def erase_contact(store: Store, account_id: int, email: str) -> None:
    """Erase the contact (LGPD). Raises ContactChangeRefused when there is no such contact."""
    await _write(store, EraseJob(account_id, utc_now(), email))


async def _write(store: Store, job: Job) -> None:
    outcome = await store.write(job)
    if isinstance(outcome, Invalid):
        raise ContactChangeRefused.from_errors(outcome.errors)
    raise_for(outcome, "$.body")
