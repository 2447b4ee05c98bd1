"""RD's contact read API: the contact, its event history, its funnel."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..catalogue.fields import LEGAL_BASES
from ..contacts import (
    LIFECYCLE_STAGES,
    RD_ATTRIBUTES,
    Contact,
    ContactChange,
    ContactChangeRefused,
    FunnelUpdate,
    attributes_of,
    custom_fields_of,
)
from ..custom_fields import RESERVED_NAMES, stored_value
from ..ingest import change_contact, erase_contact
from ..validation import (
    INVALID_DATA_TYPE,
    NUL,
    Error,
    check_custom_field,
    check_field,
    is_email,
    normalise_email,
    option_error,
)
from .auth import authenticate
from .body import bad_shape, read_json
from .errors import (
    JSON,
    ApiError,
    AttributeErrors,
    AttributeProblems,
    not_found,
    refuse_unknown,
)
from .paging import event_types_of, one_of, page_of
from .routing import by_method

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Kept on the contact beyond RD's read API, so that what events did to it is visible.
EXTRA_ATTRIBUTES = ("company_name", "company_site", "company_address", "available_for_mailing")
HISTORY_PAGE_SIZE = 10
LIST_PAGE_SIZE = 25


def contact_document(contact: Contact) -> dict[str, Any]:
    return {"uuid": contact.uuid, "email": contact.email,
            **attributes_of(contact, (*RD_ATTRIBUTES, *EXTRA_ATTRIBUTES)),
            "tags": contact.tags, "legal_bases": contact.legal_bases,
            **custom_fields_of(contact),
            "created_at": contact.created_at, "updated_at": contact.updated_at}


def funnel_document(contact: Contact) -> dict[str, Any]:
    # fit and interest are RD's lead scores; rdevents does not score leads, so they are null.
    return {"lifecycle_stage": contact.lifecycle_stage, "opportunity": contact.opportunity,
            "contact_owner_email": contact.contact_owner_email, "fit": None, "interest": None}


def _invalid_email(problems: AttributeProblems, name: str) -> None:
    problems.add(name, "INVALID_EMAIL_FORMAT", f"{name} must be a valid e-mail address.")


def _contact_reference(request: Request, writing: bool) -> tuple[str, str | None]:
    """The path's `email:<e-mail>`, `uuid:<uuid>` or bare uuid as (kind, normalised value). The
    value is None when no contact can have it; a write naming a malformed e-mail gets the 400 a
    body's malformed e-mail gets, and the e-mail rules are an event's."""
    reference = request.path_params["contact"]
    kind, sep, value = reference.partition(":")
    if not sep:
        kind, value = "uuid", reference
    if kind == "uuid":
        return kind, value.lower() if _UUID.match(value) else None
    if kind != "email":
        raise ApiError(400, "INVALID_OPTION",
                       "Identify the contact as uuid:<uuid>, email:<email> or <uuid>.")
    if is_email(value):
        return kind, normalise_email(value)
    if writing:
        problems = AttributeProblems()
        _invalid_email(problems, "email")
        problems.raise_any()
    return kind, None


async def _find_contact(request: Request, writing: bool = False) -> tuple[int, Contact]:
    """The contact the path names, or RD's 404."""
    account_id = await authenticate(request)
    kind, value = _contact_reference(request, writing)
    contact = None if value is None else \
        await request.app.state.store.get_contact(account_id, kind, value)
    if contact is None:
        raise not_found("Lead not found.")
    return account_id, contact


async def get_contact(request: Request) -> JSON:
    _, contact = await _find_contact(request)
    return JSON(contact_document(contact))


async def get_funnel(request: Request) -> JSON:
    _, contact = await _find_contact(request)
    return JSON(funnel_document(contact))


def funnel_update_from(body: Any) -> FunnelUpdate:
    """RD's PUT .../funnels/default body, or its attribute-keyed 400 errors."""
    if not isinstance(body, dict):
        raise bad_shape("object")
    unknown = sorted(set(body) - {"lifecycle_stage", "opportunity", "contact_owner_email"})
    refuse_unknown(unknown)
    problems = AttributeProblems()
    fail = problems.add

    stage = body.get("lifecycle_stage")
    if "lifecycle_stage" in body:
        if stage is None:
            fail("lifecycle_stage", "CANNOT_BE_NULL", "lifecycle_stage cannot be null.")
        elif not isinstance(stage, str):
            fail("lifecycle_stage", "MUST_BE_STRING", "lifecycle_stage must be string.")
        elif stage not in LIFECYCLE_STAGES:
            fail("lifecycle_stage", "MUST_BE_VALID_OPTION",
                 "invalid options for lifecycle_stage, the valid options are: "
                 + ", ".join(f"'{s}'" for s in LIFECYCLE_STAGES))
    opportunity = body.get("opportunity")
    if "opportunity" in body and not isinstance(opportunity, bool):
        fail("opportunity", "MUST_BE_BOOLEAN", "opportunity must be boolean.")
    owner = body.get("contact_owner_email")
    if owner is not None and (not isinstance(owner, str) or not is_email(owner)):
        _invalid_email(problems, "contact_owner_email")
    problems.raise_any()
    return FunnelUpdate(stage, opportunity, "contact_owner_email" in body,
                        normalise_email(owner) if owner else None)


WRITABLE_ATTRIBUTES = frozenset(RD_ATTRIBUTES) | {"tags", "legal_bases"}


def contact_change_from(kind: str, body: Any, identified_by: str | None) -> ContactChange:
    """RD's contacts-API body as a change, or its errors (attribute-keyed, or INVALID_FIELDS,
    or CONFLICTING_FIELD when the body repeats the attribute that identifies the contact)."""
    if not isinstance(body, dict):
        raise bad_shape("object")
    if identified_by is not None and identified_by in body:
        raise ApiError(400, "CONFLICTING_FIELD",
                       "The payload contains an attribute that was used to identify the lead")
    allowed = WRITABLE_ATTRIBUTES | ({"email"} if kind == "create" else set())
    unknown = sorted(k for k in body if k not in allowed and not k.startswith("cf_"))
    refuse_unknown(unknown)
    problems = AttributeProblems()
    fail = problems.add

    attributes: dict[str, Any] = {}
    for name, value in body.items():
        if name in ("email", "tags", "legal_bases"):
            continue
        if name.startswith("cf_"):
            found: list[Error] = []
            check_custom_field(name, value, "$", found)
            if name in RESERVED_NAMES:
                fail(name, "EXCLUSION", f"{name} is a reserved name.")
            elif found and found[0]["error_type"] == INVALID_DATA_TYPE:
                data_type = found[0]["validation_rules"]["data_type"]
                fail(name, INVALID_DATA_TYPE, f"{name} must be of type '{data_type}'.")
            elif found:  # its name, or a NUL
                fail(name, found[0]["error_type"], found[0]["error_message"])
            value = stored_value(value)
        elif not isinstance(value, str) or NUL in value:
            fail(name, "MUST_BE_STRING", f"{name} must be string.")
        attributes[name] = value
    if kind == "create":
        email = body.get("email")
        if email is None:
            fail("email", "CANNOT_BE_NULL", "email cannot be null.")
        elif not isinstance(email, str) or not is_email(email):
            _invalid_email(problems, "email")
    tags = body.get("tags")
    if "tags" in body:
        if not isinstance(tags, list) or not all(isinstance(t, str) and NUL not in t
                                                 for t in tags):
            fail("tags", "MUST_BE_STRING_ARRAY", "It must be an array of strings")
        elif any(t != t.lower() for t in tags):
            fail("tags", "VALUES_MUST_BE_LOWERCASE", "must not contain capital letters")
    bases = body.get("legal_bases")
    if "legal_bases" in body:
        found = []
        check_field(LEGAL_BASES, bases, "$", found)
        if found or bases is None:
            fail("legal_bases", found[0]["error_type"] if found else "CANNOT_BE_NULL",
                 found[0]["error_message"] if found else "legal_bases cannot be null.")
    problems.raise_any()
    return ContactChange(kind, attributes, tags, bases)


async def _change(request: Request, account_id: int, email: str,
                  change: ContactChange | None) -> None:
    """Apply `change` to the contact, or erase it (None)."""
    store = request.app.state.store
    try:
        if change is None:
            await erase_contact(store, account_id, email)
        else:
            await change_contact(store, account_id, email, change)
    except ContactChangeRefused as refused:
        if refused.by_attribute:
            raise AttributeErrors(refused.by_attribute) from None
        status = 404 if refused.error_type == "RESOURCE_NOT_FOUND" else 400
        raise ApiError(status, refused.error_type, refused.message) from None


async def _document(request: Request, account_id: int, email: str) -> JSON:
    contact = await request.app.state.store.get_contact(account_id, "email", email)
    if contact is None:
        raise not_found("Lead not found.")
    return JSON(contact_document(contact))


async def create_contact(request: Request) -> JSON:
    account_id = await authenticate(request)
    body = await read_json(request)
    change = contact_change_from("create", body, None)
    email = normalise_email(body["email"])
    await _change(request, account_id, email, change)
    return await _document(request, account_id, email)


async def upsert_contact(request: Request) -> JSON:
    account_id = await authenticate(request)
    kind, email = _contact_reference(request, writing=True)
    if kind == "email" and email is not None:  # (a malformed e-mail was refused for a write)
        identified_by = "email"
    else:
        _, contact = await _find_contact(request)
        email, identified_by = contact.email, "uuid"
    change = contact_change_from("upsert", await read_json(request), identified_by)
    await _change(request, account_id, email, change)
    return await _document(request, account_id, email)


async def tag_contact(request: Request) -> JSON:
    account_id, contact = await _find_contact(request, writing=True)
    body = await read_json(request)
    if not isinstance(body, dict) or "tags" not in body:
        raise AttributeErrors({"tags": [{"error_type": "CANNOT_BE_NULL",
                                      "error_message": "tags cannot be null."}]})
    change = contact_change_from("tag", {"tags": body["tags"]}, None)
    await _change(request, account_id, contact.email, change)
    return await _document(request, account_id, contact.email)


async def delete_contact(request: Request) -> Response:
    """Erase a contact (LGPD): the contact, its funnel, and the personal data of its events."""
    account_id, contact = await _find_contact(request)
    await _change(request, account_id, contact.email, None)
    return Response(status_code=204)


async def put_funnel(request: Request) -> JSON:
    account_id, contact = await _find_contact(request, writing=True)
    update = funnel_update_from(await read_json(request))
    await _change(request, account_id, contact.email, ContactChange("funnel", funnel=update))
    changed = await request.app.state.store.get_contact(account_id, "uuid", contact.uuid)
    if changed is None:
        raise not_found("Lead not found.")
    return JSON(funnel_document(changed))


async def list_contacts(request: Request) -> JSON:
    """The account's contacts, filtered by `email`, `tag` and `lifecycle_stage` (beyond RD,
    which has no list route)."""
    account_id = await authenticate(request)
    query = request.query_params
    errors: list[Error] = []
    stage = one_of(query, "lifecycle_stage", LIFECYCLE_STAGES, errors)
    page = page_of(query, LIST_PAGE_SIZE, errors)
    if errors:
        return JSON({"errors": errors}, 400)
    email, tag = query.get("email"), query.get("tag")
    contacts = await request.app.state.store.list_contacts(
        account_id, normalise_email(email) if email else None,
        tag.strip().lower() if tag else None, stage, page.offset, page.size)
    return JSON({"contacts": [contact_document(c) for c in contacts], "page": page.number,
                 "page_size": page.size})


async def get_contact_events(request: Request) -> JSON:
    account_id, contact = await _find_contact(request)
    query = request.query_params
    errors: list[Error] = []
    types = event_types_of(query, errors)
    order = query.get("order", "created_at:desc")
    if order not in ("created_at:desc", "created_at:asc"):
        errors.append(option_error(("created_at:desc", "created_at:asc"), "$.query.order"))
    page = page_of(query, HISTORY_PAGE_SIZE, errors)
    if errors:
        return JSON({"errors": errors}, 400)
    events = await request.app.state.store.contact_events(
        account_id, contact.id, types, order == "created_at:desc", page.offset, page.size)
    return JSON([{"event_type": e.event_type, "event_family": e.event_family,
                  "event_identifier": e.event_identifier, "event_timestamp": e.received_at,
                  "payload": e.payload} for e in events])


routes = [
    by_method("/platform/contacts", GET=list_contacts, POST=create_contact),
    by_method("/platform/contacts/{contact}",
              GET=get_contact, PATCH=upsert_contact, DELETE=delete_contact),
    Route("/platform/contacts/{contact}/tag", tag_contact, methods=["POST"]),
    Route("/platform/contacts/{contact}/events", get_contact_events, methods=["GET"]),
    by_method("/platform/contacts/{contact}/funnels/default", GET=get_funnel, PUT=put_funnel),
]
