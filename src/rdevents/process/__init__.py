"""The processing stage: validated jobs in, decisions out.

`ingest` and the contacts API turn requests into typed jobs (`jobs.py`); the store's group
committer gathers them and, inside one transaction, hands a group to `process_group`
(`stage.py`), which reads what it needs through a narrow backend contract (`backend.py`),
checks the jobs' idempotency keys, decides with the pure rules (`contacts.py`, `limits.py`,
`custom_fields.py`, `webhook_rules.py`) and returns one typed outcome a job (`outcomes.py`) and
the rows the accepted ones write (`rows.py`: contacts, events, webhook deliveries, relay rows,
idempotency keys), which the backend then writes.
"""

from .backend import GroupContext, ProcessBackend
from .jobs import ContactChangeJob, EraseJob, EventsJob, Job, RequestKey
from .outcomes import (
    ACCEPTED,
    ACCEPTED_WITH_DELIVERIES,
    Accepted,
    Failed,
    Invalid,
    KeyTaken,
    Limited,
    Outcome,
    Repeated,
    Unavailable,
)
from .rows import (
    ContactKey,
    Delivery,
    EventRow,
    FieldKey,
    GroupRows,
    KeptRequest,
    KeyRef,
    RelayRow,
)
from .stage import process_group

__all__ = [
    "ACCEPTED", "ACCEPTED_WITH_DELIVERIES", "Accepted", "ContactChangeJob", "ContactKey",
    "Delivery", "EraseJob", "EventRow", "EventsJob", "Failed", "FieldKey", "GroupContext",
    "GroupRows", "Invalid", "Job", "KeptRequest", "KeyRef", "KeyTaken", "Limited", "Outcome",
    "ProcessBackend", "RelayRow", "Repeated", "RequestKey", "Unavailable", "process_group",
]
