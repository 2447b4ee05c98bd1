"""Where a rejected request went wrong: the errors of its answer, each found in the request body
by the JSONPath it carries, and the body drawn as indented JSON with those places marked and
their messages beside them (pure: documents in, markup out; every text is escaped here:
the markup goes in a <pre>, as text, never in an attribute).

Paths are the validator's (`$.body.payload.email`, `$.body[3].payload.email`,
`$.query.event_type`, docs/api.md); one without `body` or `query` (`$.payload.email`) is read in
the body too. A field the body lacks (a missing e-mail) is shown at the nearest place it has
(the payload), with the rest of its path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

import orjson
from markupsafe import Markup

Step = str | int
Place = tuple[Step, ...]

# One step of a path: `.name`, `[3]` or `['name']`.
_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]|\['([^']*)'\]")


@dataclass(frozen=True)
class Fault:
    """An error of the answer and where the request body shows it."""

    number: int  # from 1, in the answer's order
    error_type: str
    message: str
    path: str | None  # as the answer gave it (None: about the whole request)
    rules: dict[str, Any] = field(default_factory=dict)  # its validation_rules
    at: Place | None = None  # its place in the body (None: not in the body)
    missing: str = ""  # the rest of its path, which the body lacks below `at`
    in_query: bool = False  # it is about a query parameter
    first: int = 0  # the number of the first fault at its place (the place's mark is named so)

    @property
    def anchor(self) -> str:
        """The id of the place the body marks for it."""
        return f"fault-at-{self.first}"

    @property
    def note(self) -> str:
        """What the body says beside its place."""
        return f"{self.number}. " + (f"{self.missing}: " if self.missing else "") + self.message


def steps(path: str) -> Place | None:
    """The steps of a JSONPath (`$.body[2].payload` → ("body", 2, "payload")); None for one
    this reader does not know."""
    if not path.startswith("$"):
        return None
    found: list[Step] = []
    at = 1
    while at < len(path):
        match = _STEP.match(path, at)
        if match is None:
            return None
        name, index, quoted = match.groups()
        found.append(int(index) if index is not None else name if name is not None else quoted)
        at = match.end()
    return tuple(found)


def path_text(place: Place) -> str:
    """Steps written back as a path below some place (`payload.email`, `[2].email`)."""
    return "".join(f"[{step}]" if isinstance(step, int) else f".{step}"
                   for step in place).lstrip(".")


def locate(document: Any, place: Place) -> tuple[Place, Place]:
    """The deepest part of `place` that `document` has, and the rest it lacks."""
    node = document
    for i, step in enumerate(place):
        if isinstance(step, int) and isinstance(node, list) and step < len(node):
            node = node[step]
        elif isinstance(step, str) and isinstance(node, dict) and step in node:
            node = node[step]
        else:
            return place[:i], place[i:]
    return place, ()


def _errors(answer: Any) -> list[tuple[str, str, str | None, dict[str, Any]]]:
    """(error type, message, path, validation rules) of each error of an answer: RD's array of
    validation errors, its single request error, its attribute-keyed errors (located at the
    attribute's own field unless they say where), or OAuth's `error`."""
    if not isinstance(answer, dict):
        return []
    errors = answer.get("errors")
    if isinstance(errors, list):
        items = [(item, item.get("path")) for item in errors if isinstance(item, dict)]
    elif isinstance(errors, dict) and "error_type" in errors:
        items = [(errors, None)]
    elif isinstance(errors, dict):
        items = [(item, item.get("path") or (None if name == "base" else f"$.body.{name}"))
                 for name, found in errors.items() if isinstance(found, list)
                 for item in found if isinstance(item, dict)]
    elif isinstance(answer.get("error"), str):
        return [(answer["error"], str(answer.get("error_description", "")), None, {})]
    else:
        return []
    found = []
    for item, path in items:
        rules = item.get("validation_rules")
        found.append((str(item.get("error_type", "")), str(item.get("error_message", "")),
                      path if isinstance(path, str) else None,
                      rules if isinstance(rules, dict) else {}))
    return found


def faults_of(answer: Any, body: Any, body_is_json: bool) -> list[Fault]:
    """The errors of `answer` (a response body's document), each located in `body` (the
    request body's document) when it is JSON."""
    faults: list[Fault] = []
    first: dict[Place, int] = {}
    for number, (error_type, message, path, rules) in enumerate(_errors(answer), start=1):
        place = steps(path) if path else None
        if place is not None and place[:1] == ("query",):
            faults.append(Fault(number, error_type, message, path, rules, in_query=True))
            continue
        if place is None or not body_is_json:
            faults.append(Fault(number, error_type, message, path, rules))
            continue
        at, rest = locate(body, place[1:] if place[:1] == ("body",) else place)
        faults.append(Fault(number, error_type, message, path, rules, at, path_text(rest),
                            first=first.setdefault(at, number)))
    return faults


def marked_json(document: Any, faults: Sequence[Fault] = ()) -> Markup:
    """`document` as indented JSON (as orjson's OPT_INDENT_2 writes it), the first line of each
    place a fault is at marked, with the faults' notes at the end of that line."""
    marks: dict[Place, list[Fault]] = {}
    for fault in faults:
        if fault.at is not None:
            marks.setdefault(fault.at, []).append(fault)
    lines: list[str] = []
    _write(document, (), 0, "", "", marks, lines)
    return Markup("\n".join(lines))


def _write(value: Any, place: Place, depth: int, lead: str, tail: str,
           marks: Mapping[Place, list[Fault]], lines: list[str]) -> None:
    """Add the lines of `value`, at `place` in the document: `lead` (its key, escaped) comes
    before its first token, `tail` (a comma) after its last."""
    pad = "  " * depth
    here = marks.get(place, [])
    if isinstance(value, dict | list) and value:
        opening, closing = ("{", "}") if isinstance(value, dict) else ("[", "]")
        lines.append(pad + _marked(lead + opening, here))
        items: list[tuple[Step, Any]] = (list(value.items()) if isinstance(value, dict)
                                         else list(enumerate(value)))
        for i, (key, item) in enumerate(items):
            key_text = f"{_json(key)}: " if isinstance(value, dict) else ""
            _write(item, (*place, key), depth + 1, key_text, "," if i < len(items) - 1 else "",
                   marks, lines)
        lines.append(f"{pad}{closing}{tail}")
    else:
        lines.append(pad + _marked(lead + _json(value), here, tail))


def _marked(text: str, here: list[Fault], tail: str = "") -> str:
    if not here:
        return text + tail
    notes = "; ".join(escape(fault.note, quote=False) for fault in here)
    return (f'<mark class="fault" id="{here[0].anchor}">{text}</mark>{tail}'
            f'<span class="fault-note"> ← {notes}</span>')


def _json(value: Any) -> str:
    return escape(orjson.dumps(value).decode(), quote=False)
