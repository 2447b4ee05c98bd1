"""`rdevents import events` and `rdevents export events|contacts` (DESIGN.md §7, "Data in and
out"), run as commands against a running server's database, on each backend; and their progress
bars, drawn on a terminal only."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import select
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
from click.testing import CliRunner, Result

from conftest import conversion, event
from rdevents.bulk.exports import EVENT_COLUMNS
from rdevents.bulk.imports import (
    _NAMESPACE,
    PROCESS_FROM_BYTES,
    earlier_line_event_uuid,
    line_event_uuid,
    worth_a_process,
)
from rdevents.cli import main
from rdevents.store.bulk import BulkQueries

SKIP = ("uuid", "created_at", "updated_at")


def run(server, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(main, [*args, "--database", server.settings.database_url])
    assert result.exit_code == code, result.output
    return result


def new_account(server) -> tuple[str, str]:
    account_id, token = server.new_account()
    name = server.call(server.store.fetch("SELECT name FROM accounts WHERE id = ?",
                                          (account_id,)))[0][0]
    return name, token


def write_lines(path: Path, lines: list[object | str]) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n"
                            for line in lines))
    return path


def events_of(server, account: str, *options: str) -> list[dict]:
    out = run(server, "export", "events", "--account", account, *options).stdout
    return [json.loads(line) for line in out.splitlines()]


def the_file(email: str, ghost: str) -> tuple[list, dict[int, object]]:
    """A file's lines, and those of them that are rejected by their number (1-based)."""
    good = [conversion(email, tags=["Imported"], name="Ana", cf_seats=3),
            event("OPPORTUNITY", email=email, funnel_name="default"),
            event("SALE", email=email, funnel_name="default", value=10.5)]
    invalid = conversion("not-an-e-mail")
    unknown = event("OPPORTUNITY", email=ghost, funnel_name="default")
    lines = [good[0], "", "{not json", good[1], unknown, invalid, [1], good[2]]
    return lines, {2: "", 3: "{not json", 5: unknown, 6: invalid, 7: [1]}


def test_import_validates_and_stores_each_line_as_the_api_would(server, tmp_path):
    account, token = new_account(server)
    email, ghost = (f"{name}-{uuid.uuid4().hex[:8]}@example.com" for name in ("ana", "ghost"))
    lines, rejected = the_file(email, ghost)
    path = write_lines(tmp_path / "events.jsonl", lines)
    result = run(server, "import", "events", "--account", account, str(path))
    assert result.stdout == "imported 3, rejected 5\n"
    records = [json.loads(line) for line in
               (tmp_path / "events.jsonl.rejected.jsonl").read_text().splitlines()]
    assert [r["line"] for r in records] == sorted(rejected)
    assert [r["text"] for r in records] == [lines[n - 1] if isinstance(lines[n - 1], str)
                                            else json.dumps(lines[n - 1]) for n in rejected]
    by_line = {r["line"]: r["errors"] for r in records}
    assert by_line[2] == {"error_type": "BAD_REQUEST", "error_message":
                          "The line is blank: each line holds one event, a JSON object."}
    assert by_line[3]["error_type"] == "BAD_REQUEST"
    assert by_line[3]["error_message"].startswith("The line is not JSON: ")
    with server.client(token) as api:
        # The errors the API answers for the same bodies.
        for number in (5, 6, 7):
            answer = api.send_event(rejected[number])
            assert answer.status_code == 400 and by_line[number] == answer.json()["errors"]
        assert by_line[5][0]["error_type"] == "RESOURCE_NOT_FOUND"
        imported = api.contact(email).json()
        imported_funnel = api.get(f"/platform/contacts/email:{email}/funnels/default").json()
    # The same events sent through the API to another account leave the same contact.
    _, other = new_account(server)
    with server.client(other) as api:
        for line in lines:
            if isinstance(line, dict) and line not in rejected.values():
                assert api.send_event(line).status_code == 200
        sent = api.contact(email).json()
        assert imported_funnel == api.get(
            f"/platform/contacts/email:{email}/funnels/default").json()
    assert {k: v for k, v in imported.items() if k not in SKIP} == \
        {k: v for k, v in sent.items() if k not in SKIP}
    assert imported["tags"] == ["imported"] and imported["cf_seats"] == 3
    assert imported_funnel["lifecycle_stage"] == "Client"
    stored = events_of(server, account)
    assert [e["event_type"] for e in stored] == ["CONVERSION", "OPPORTUNITY", "SALE"]
    assert {e["contact_uuid"] for e in stored} == {imported["uuid"]}
    # Again: nothing is imported twice, the rejected lines are rejected again.
    again = run(server, "import", "events", "--account", account, str(path))
    assert again.stdout == "imported 0, rejected 5\n"
    assert "3 lines were imported before: skipped." in again.stderr
    assert events_of(server, account) == stored
    # With the rejected lines corrected, only those are imported.
    write_lines(path, [line if number not in (2, 3, 6) else conversion(f"{number}{email}")
                       for number, line in enumerate(lines, start=1)])
    fixed = run(server, "import", "events", "--account", account, str(path))
    assert fixed.stdout == "imported 3, rejected 2\n"
    assert len(events_of(server, account)) == 6


def test_a_big_file_is_checked_by_a_process_of_its_own(server, tmp_path):
    """From PROCESS_FROM_BYTES, lines are decoded and validated by another process, chunks
    ahead of the writing: what is stored and rejected, and in what order, is the same."""
    account, _ = new_account(server)
    tag = uuid.uuid4().hex[:8]
    bad = {7: "", 1_500: "{not json", 2_400: conversion("not-an-e-mail")}
    lines = [bad.get(n, conversion(f"big{n}-{tag}@example.com", name="N" * 400))
             for n in range(1, 2_601)]
    path = write_lines(tmp_path / "big.jsonl", lines)
    assert worth_a_process(path.stat().st_size) == ((os.cpu_count() or 1) > 1)
    assert path.stat().st_size >= PROCESS_FROM_BYTES
    assert run(server, "import", "events", "--account", account,
               str(path)).stdout == "imported 2597, rejected 3\n"
    assert [json.loads(line)["line"] for line in
            (tmp_path / "big.jsonl.rejected.jsonl").read_text().splitlines()] == [7, 1_500, 2_400]
    stored = events_of(server, account)
    assert [e["payload"]["email"] for e in stored] == [
        line["payload"]["email"] for line in lines if isinstance(line, dict) and line not in
        bad.values()]
    again = run(server, "import", "events", "--account", account, str(path))
    assert again.stdout == "imported 0, rejected 3\n"
    assert "2597 lines were imported before: skipped." in again.stderr


def test_lines_an_earlier_version_imported_are_not_imported_again(server, tmp_path):
    """Imports before the version 8 uuids gave a line's event the uuid5 of the same text: a
    file such an import began goes on where it stopped."""
    account_id, _ = server.new_account()
    account = server.call(server.store.fetch("SELECT name FROM accounts WHERE id = ?",
                                             (account_id,)))[0][0]
    tag = uuid.uuid4().hex[:8]
    lines = [conversion(f"early{n}-{tag}@example.com") for n in range(3)]
    path = write_lines(tmp_path / "early.jsonl", lines)
    assert run(server, "import", "events", "--account", account,
               str(path)).stdout == "imported 3, rejected 0\n"
    for number, line in enumerate(lines, start=1):
        text = json.dumps(line).encode()
        server.call(server.store.change(
            "UPDATE events SET uuid = ? WHERE uuid = ?",
            (earlier_line_event_uuid(account_id, number, text),
             line_event_uuid(account_id, number, text))))
    assert {e["event_uuid"] for e in events_of(server, account)} == {
        str(uuid.uuid5(_NAMESPACE, f"{account_id}:{n}:{json.dumps(line)}"))
        for n, line in enumerate(lines, start=1)}
    again = run(server, "import", "events", "--account", account, str(path))
    assert again.stdout == "imported 0, rejected 0\n"
    assert len(events_of(server, account)) == 3


def test_a_run_beside_another_of_the_same_file_stores_nothing_twice(server, tmp_path,
                                                                    monkeypatch):
    """Two runs at once both find the account without events, so neither looks its lines up:
    the one whose write clashes with what the other stored looks them up, and goes on with those
    not stored."""
    account, _ = new_account(server)
    tag = uuid.uuid4().hex[:8]
    lines = [conversion(f"both{n}-{tag}@example.com") for n in range(5)]
    path = write_lines(tmp_path / "both.jsonl", lines)
    first = write_lines(tmp_path / "first.jsonl", lines[:3])  # what the other run stored

    assert run(server, "import", "events", "--account", account,
               str(first)).stdout == "imported 3, rejected 0\n"

    async def no_events(self, account_id: int) -> bool:  # looked before the other stored
        return False

    monkeypatch.setattr(BulkQueries, "has_events", no_events)
    result = run(server, "import", "events", "--account", account, str(path))
    assert result.stdout == "imported 2, rejected 0\n"
    assert "3 lines were imported before: skipped." in result.stderr
    assert sorted(e["payload"]["email"] for e in events_of(server, account)) == sorted(
        line["payload"]["email"] for line in lines)


def test_lines_refused_by_the_database_leave_the_others_in_their_order(server, tmp_path):
    """A line the database refuses (a custom field's type) is rejected, and so is a line that
    needed it (the contact it would have created); the lines around them are stored in order."""
    account, token = new_account(server)
    ana, bia = (f"{name}-{uuid.uuid4().hex[:8]}@example.com" for name in ("ana", "bia"))
    lines = [conversion(ana, cf_seats=3, name="First"),
             conversion(bia, cf_seats="three"),
             event("OPPORTUNITY", email=bia, funnel_name="default"),
             conversion(ana, name="Last")]
    path = write_lines(tmp_path / "refused.jsonl", lines)
    assert run(server, "import", "events", "--account", account,
               str(path)).stdout == "imported 2, rejected 2\n"
    records = [json.loads(line) for line in
               (tmp_path / "refused.jsonl.rejected.jsonl").read_text().splitlines()]
    assert [(r["line"], [e["error_type"] for e in r["errors"]]) for r in records] == [
        (2, ["INVALID_DATA_TYPE"]), (3, ["RESOURCE_NOT_FOUND"])]
    assert [e["path"] for r in records for e in r["errors"]] == [
        "$.body.payload.cf_seats", "$.body.payload.email"]
    with server.client(token) as api:
        assert api.contact(ana).json()["name"] == "Last"
        assert api.contact(bia).status_code == 404


def test_a_dry_run_validates_and_stores_nothing(server, tmp_path):
    account, token = new_account(server)
    email = f"dry-{uuid.uuid4().hex[:8]}@example.com"
    lines, _ = the_file(email, f"ghost-{email}")
    path = write_lines(tmp_path / "dry.jsonl", lines)
    result = run(server, "import", "events", "--account", account, "--dry-run", str(path))
    # What needs the database (an OPPORTUNITY's contact) is checked when importing only.
    assert result.stdout == "would import 4, rejected 4\n"
    assert [json.loads(line)["line"] for line in
            (tmp_path / "dry.jsonl.rejected.jsonl").read_text().splitlines()] == [2, 3, 6, 7]
    assert events_of(server, account) == []
    with server.client(token) as api:
        assert api.contact(email).status_code == 404
    # A run that rejects nothing leaves no file of rejected lines behind.
    write_lines(path, [conversion(email)])
    assert run(server, "import", "events", "--account", account, "--dry-run",
               str(path)).stdout == "would import 1, rejected 0\n"
    assert not (tmp_path / "dry.jsonl.rejected.jsonl").exists()


def test_imported_events_are_relayed_as_sent_ones(server, tmp_path):
    account, _ = new_account(server)
    relay = run(server, "relays", "create", "--account", account, "--url",
                "http://127.0.0.1:9", "--token", "t").stdout.strip()
    run(server, "relays", "pause", relay)
    path = write_lines(tmp_path / "relayed.jsonl",
                       [conversion(f"r{n}-{uuid.uuid4().hex[:8]}@example.com") for n in range(3)])
    assert run(server, "import", "events", "--account", account,
               str(path)).stdout == "imported 3, rejected 0\n"
    [listed] = json.loads(run(server, "relays", "list", "--json", "--account", account).stdout)
    assert listed["backlog"] == 3


def test_export_events_as_jsonl_and_csv_with_time_filters(server):
    account, token = new_account(server)
    with server.client(token) as api:
        sent = [api.send_event(conversion(f"x{n}-{uuid.uuid4().hex[:8]}@example.com",
                                          tags=["a", "b"])).json()["event_uuid"]
                for n in range(3)]
        shown = [api.get(f"/platform/events/{event_uuid}").json() for event_uuid in sent]
    assert events_of(server, account) == shown  # as GET /platform/events/{uuid} shows them
    second = shown[1]["received_at"]
    assert events_of(server, account, "--since", second) == shown[1:]
    assert events_of(server, account, "--until", second) == shown[:1]
    assert events_of(server, account, "--since", "2000-01-01", "--until",
                     "2000-01-02T00:00:00+03:00") == []
    assert "ISO 8601" in run(server, "export", "events", "--account", account, "--since",
                             "yesterday", code=2).output
    table = list(csv.reader(io.StringIO(run(
        server, "export", "events", "--account", account, "--format", "csv").stdout)))
    assert table[0] == list(EVENT_COLUMNS) == list(shown[0])
    for row, document in zip(table[1:], shown, strict=True):
        cells = dict(zip(table[0], row, strict=True))
        assert json.loads(cells["payload"]) == document["payload"]
        assert cells["event_uuid"] == document["event_uuid"]
        assert cells["event_batch_uuid"] == ""  # null


def test_exported_lines_are_the_documents_text_whatever_their_characters(server):
    """The database writes each JSONL line (store.event_lines): byte for byte the compact JSON
    of GET /platform/events/{uuid}'s document, with its escapes, non-ASCII text and nulls."""
    account, token = new_account(server)
    awkward = 'a "quoted" \\ back\nline\t\u0001\u007f é 𝄞 \u2028 </script>'
    with server.client(token) as api:
        batch = api.send_batch([
            {**conversion(f"w{n}-{uuid.uuid4().hex[:8]}@example.com", name=awkward,
                          cf_score=1.5, tags=["x"]),
             "payload": {**conversion(f"w{n}-{uuid.uuid4().hex[:8]}@example.com",
                                      name=awkward)["payload"],
                         "conversion_identifier": awkward + str(n)}}
            for n in range(2)]).json()
        single = api.send_event(conversion(f"s-{uuid.uuid4().hex[:8]}@example.com")).json()
        shown = [api.get(f"/platform/events/{event_uuid}").json() for event_uuid in
                 [sent["event_uuid"] for sent in batch["events"]] + [single["event_uuid"]]]
    assert shown[0]["event_identifier"] == awkward + "0"
    assert shown[2]["event_batch_uuid"] is None
    out = run(server, "export", "events", "--account", account).stdout_bytes
    assert out == b"".join(orjson.dumps(document, option=orjson.OPT_APPEND_NEWLINE)
                           for document in shown)


def test_export_contacts_as_jsonl_and_csv(server, tmp_path):
    account, token = new_account(server)
    emails = [f"c{n}-{uuid.uuid4().hex[:8]}@example.com" for n in range(2)]
    with server.client(token) as api:
        assert api.send_event(conversion(emails[0], name="Ana", cf_plan="gold",
                                         tags=["vip"])).status_code == 200
        assert api.send_event(conversion(emails[1])).status_code == 200
        assert api.send_event(event("OPPORTUNITY", email=emails[1],
                                    funnel_name="default")).status_code == 200
        contacts = [api.contact(email).json() for email in emails]
        funnels = [api.get(f"/platform/contacts/email:{email}/funnels/default").json()
                   for email in emails]
    output = tmp_path / "contacts.jsonl"
    run(server, "export", "contacts", "--account", account, "--output", str(output))
    exported = [json.loads(line) for line in output.read_text().splitlines()]
    assert exported == [{**contact, "lifecycle_stage": funnel["lifecycle_stage"],
                         "opportunity": funnel["opportunity"],
                         "contact_owner_email": funnel["contact_owner_email"]}
                        for contact, funnel in zip(contacts, funnels, strict=True)]
    table = list(csv.DictReader(io.StringIO(run(
        server, "export", "contacts", "--account", account, "--format", "csv").stdout)))
    assert [row["email"] for row in table] == emails
    assert (table[0]["name"], table[0]["cf_plan"], table[0]["tags"]) == ("Ana", "gold", '["vip"]')
    assert (table[1]["name"], table[1]["cf_plan"], table[1]["opportunity"]) == ("", "", "true")
    assert json.loads(table[0]["legal_bases"]) == contacts[0]["legal_bases"]
    since = contacts[1]["updated_at"]
    assert [row["email"] for row in csv.DictReader(io.StringIO(run(
        server, "export", "contacts", "--account", account, "--format", "csv", "--since",
        since).stdout))] == emails[1:]


def on_a_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
    """Run `rdevents ARGS` with stderr on a pseudo-terminal: exit status, stdout, and what the
    terminal showed."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "rdevents", *args], cwd=cwd,
                               stdout=subprocess.PIPE, stderr=terminal,
                               env={**env, "TERM": "xterm", "COLUMNS": "120",
                                    "PYTHONIOENCODING": "utf-8"})
    os.close(terminal)
    shown = b""
    while True:
        ready, _, _ = select.select([controller], [], [], 60)
        try:
            chunk = os.read(controller, 65536) if ready else b""
        except OSError:  # the terminal's other end closed
            chunk = b""
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    stdout = process.stdout.read().decode() if process.stdout else ""
    return process.wait(30), stdout, shown.decode(errors="replace")


def test_progress_bars_are_drawn_on_a_terminal_only(tmp_path):
    database = f"sqlite:///{tmp_path / 'source.db'}"
    path = write_lines(tmp_path / "events.jsonl",
                       [conversion(f"p{n}@example.com") for n in range(5)] + ["{"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("RDEVENTS_")}
    commands = [["accounts", "create", "acme", "--database", database],
                ["import", "events", "--account", "acme", str(path), "--database", database],
                ["export", "events", "--account", "acme", "--database", database],
                ["db", "copy", "--from", database, "--to", f"sqlite:///{tmp_path / 'copy.db'}"]]
    piped = [subprocess.run([sys.executable, "-m", "rdevents", *args], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60) for args in commands]
    assert [p.returncode for p in piped] == [0, 0, 0, 0]
    assert piped[1].stderr == f"Rejected lines, with their errors: {path}.rejected.jsonl\n"
    assert piped[2].stderr == "Exported 5 events.\n"
    assert "events: 5 rows\n" in piped[3].stderr and "%" not in piped[3].stderr
    (tmp_path / "copy.db").unlink()
    code, stdout, shown = on_a_terminal(commands[1], tmp_path, env)
    assert (code, stdout) == (0, "imported 0, rejected 1\n")
    assert "events.jsonl: 0 imported, 1 rejected" in shown and "100%" in shown
    code, stdout, shown = on_a_terminal(commands[2], tmp_path, env)
    assert code == 0 and len(stdout.splitlines()) == 5
    assert "events" in shown and "100%" in shown
    code, _, shown = on_a_terminal(commands[3], tmp_path, env)
    assert code == 0 and "events: 5 rows" in shown and "100%" in shown


def test_export_refuses_what_it_cannot_do(server):
    account, _ = new_account(server)
    assert "'xml' is not one of" in run(server, "export", "events", "--account", account,
                                         "--format", "xml", code=2).output
    assert "/no/such/dir/x" in run(server, "export", "events", "--account", account,
                                   "--output", "/no/such/dir/x", code=1).output
