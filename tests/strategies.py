"""Hypothesis strategies the property tests share: JSON values, and events near the catalogue's
examples."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

from rdevents.catalogue import EVENT_TYPES


def json_values(text: st.SearchStrategy[str] = st.text(),
                integers: st.SearchStrategy[int] = st.integers()) -> st.SearchStrategy[Any]:
    scalars = (st.none() | st.booleans() | integers
               | st.floats(allow_nan=False, allow_infinity=False) | text)
    return st.recursive(scalars, lambda children: st.lists(children, max_size=5)
                        | st.dictionaries(text, children, max_size=5), max_leaves=20)


# Values that survive a JSON round trip, for bodies that must parse and be stored as sent: no lone
# surrogates, and integers within 64 bits (RFC 8259 §6 lets a parser limit the range of numbers).
CLEAN_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
CLEAN_JSON = json_values(CLEAN_TEXT, st.integers(-2**63, 2**64 - 1))


def locations(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (a tuple of keys and indices) into a JSON value, the root excluded."""
    found = []
    items = node.items() if isinstance(node, dict) else \
        enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        found.append((*prefix, key))
        found.extend(locations(child, (*prefix, key)))
    return found


def mutate(event: dict, where: tuple, action: str, replacement: Any) -> None:
    parent: Any = event
    for key in where[:-1]:
        try:
            parent = parent[key]
        except (KeyError, IndexError, TypeError):
            return  # an earlier mutation removed or replaced this branch
    key = where[-1]
    if isinstance(parent, dict) and key in parent or \
            isinstance(parent, list) and isinstance(key, int) and key < len(parent):
        if action == "delete":
            del parent[key]
        elif action == "null":
            parent[key] = None
        else:
            parent[key] = replacement


@st.composite
def near_valid_events(draw) -> dict:
    name = draw(st.sampled_from(sorted(EVENT_TYPES)))
    event = copy.deepcopy(EVENT_TYPES[name].example)
    places = locations(event)
    for where in draw(st.lists(st.sampled_from(places), max_size=4)):
        action = draw(st.sampled_from(["delete", "null", "replace"]))
        mutate(event, where, action, draw(CLEAN_JSON) if action == "replace" else None)
    if draw(st.booleans()) and isinstance(event.get("payload"), dict):
        event["payload"][draw(CLEAN_TEXT)] = draw(CLEAN_JSON)  # an unknown (or known) key
    return event
