"""Contacts: a search by part of the e-mail, tag and lifecycle stage (/ui/contacts), and a
contact's page (/ui/contacts/{uuid}): attributes, tags, legal bases, custom fields, funnel stage
with its transitions, and the timeline of its events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ...contacts import LIFECYCLE_STAGES, RD_ATTRIBUTES, attributes_of, custom_fields_of
from ...http.contacts import EXTRA_ATTRIBUTES
from ...store.dashboard import TransitionRecord
from .. import pages
from ..sessions import Visitor
from .events import page_number

# What an event that left the funnel as it was says (it is recorded all the same).
UNCHANGED = {"SALE": "Another sale (already a Client)",
             "OPPORTUNITY": "Opportunity again (already one)",
             "OPPORTUNITY_LOST": "Opportunity lost (it was not one)"}
PAGE_SIZE = 25
TIMELINE_SIZE = 50
TRANSITIONS_SHOWN = 100


@dataclass(frozen=True)
class Search:
    email: str  # a part of the e-mail, lower-cased; "" for any
    tag: str | None
    stage: str | None

    @classmethod
    def of(cls, request: Request) -> Search:
        tag = request.query_params.get("tag", "").strip().lower()
        stage = request.query_params.get("stage", "")
        return cls(request.query_params.get("q", "").strip().lower()[:254], tag or None,
                   stage if stage in LIFECYCLE_STAGES else None)

    @property
    def given(self) -> bool:
        return bool(self.email or self.tag or self.stage)

    def query(self, **more: Any) -> str:
        return pages.query(q=self.email, tag=self.tag, stage=self.stage, **more)


@pages.signed_in
async def contacts_page(request: Request, visitor: Visitor) -> Response:
    store, search, page = pages.store_of(request), Search.of(request), page_number(request)
    found = await store.search_contacts(visitor.account_id, search.email, search.tag,
                                        search.stage, (page - 1) * PAGE_SIZE, PAGE_SIZE + 1)
    total = await store.count_contacts(visitor.account_id)
    return pages.render(request, "contacts.html", visitor, contacts=found[:PAGE_SIZE],
                        more=len(found) > PAGE_SIZE, page=page, search=search, total=total,
                        stages=LIFECYCLE_STAGES, first=(page - 1) * PAGE_SIZE + 1)


def movement(t: TransitionRecord) -> str:
    """What a funnel transition did, in words."""
    if t.from_stage is None:
        return f"Became a contact, as {t.to_stage}"
    changes = []
    if t.from_stage != t.to_stage:
        changes.append(f"{t.from_stage} → {t.to_stage}")
    if t.from_opportunity != t.to_opportunity:
        changes.append("Marked as an opportunity" if t.to_opportunity
                       else "No longer an opportunity")
    return "; ".join(changes) or UNCHANGED.get(t.event_type or "", "No change")


@pages.signed_in
async def contact_page(request: Request, visitor: Visitor) -> Response:
    store = pages.store_of(request)
    contact = await store.get_contact(visitor.account_id, "uuid",
                                      str(request.path_params["uuid"]).lower())
    if contact is None or contact.id is None:
        return pages.not_found(request, visitor, "contact")
    page = page_number(request)
    events = await store.contact_events(visitor.account_id, contact.id, [], True,
                                        (page - 1) * TIMELINE_SIZE, TIMELINE_SIZE + 1)
    transitions = await store.contact_transitions(visitor.account_id, contact.id,
                                                  TRANSITIONS_SHOWN)
    labels = {f.api_identifier: f.label.get("default") or f.name.get("default") or ""
              for f in await store.list_fields(visitor.account_id)}
    custom = [(name, labels.get(name, ""), value)
              for name, value in custom_fields_of(contact).items()]
    return pages.render(
        request, "contact.html", visitor, contact=contact,
        attributes=attributes_of(contact, (*RD_ATTRIBUTES, *EXTRA_ATTRIBUTES)), custom=custom,
        transitions=[(t, movement(t)) for t in transitions], events=events[:TIMELINE_SIZE],
        more=len(events) > TIMELINE_SIZE, page=page)
