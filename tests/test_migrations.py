"""Schema upgrades keep the data: a database left at an older revision, holding data, is
upgraded by `rdevents db upgrade`, and the server then reads and extends it as before."""

from __future__ import annotations

import subprocess
import sys
import uuid

import orjson
import psycopg
import pytest
from sqlalchemy import create_engine, text

from conftest import Server, backend_settings, conversion
from rdevents.store.schema import SchemaBehind, ensure_current, sqlalchemy_url, upgrade
from rdevents.tokens import hash_secret

OLDEST = "0001"


def fill_at_oldest_revision(url: str) -> dict:
    """Rows as the first schema stores them, written with plain SQL."""
    token = f"rdv_{uuid.uuid4().hex}"
    contact_uuid, event_uuid = str(uuid.uuid4()), str(uuid.uuid4())
    email = f"old-{uuid.uuid4().hex[:8]}@example.com"
    now = "2026-01-02T03:04:05.000000Z"
    payload = {"conversion_identifier": "legacy", "email": email, "tags": ["Old"]}
    engine = create_engine(sqlalchemy_url(url))
    with engine.begin() as conn:
        account_id = conn.execute(text(
            "INSERT INTO accounts (name, created_at) VALUES (:name, :now) RETURNING id"),
            {"name": f"old-{uuid.uuid4().hex[:8]}", "now": now}).scalar()
        conn.execute(text("INSERT INTO tokens (account_id, token_hash, created_at) "
                          "VALUES (:a, :h, :now)"), {"a": account_id, "h": hash_secret(token),
                                                      "now": now})
        contact_id = conn.execute(text(
            "INSERT INTO contacts (uuid, account_id, email, profile, tags, legal_bases, "
            "lifecycle_stage, opportunity, created_at, updated_at) VALUES (:u, :a, :e, :p, :t, "
            ":l, 'Lead', false, :now, :now) RETURNING id"),
            {"u": contact_uuid, "a": account_id, "e": email, "p": '{"city": "Recife"}',
             "t": '["old"]', "l": '[{"category": "communications", "type": "consent", '
                                  '"status": "granted"}]', "now": now}).scalar()
        conn.execute(text(
            "INSERT INTO events (uuid, account_id, contact_id, event_type, event_family, "
            "event_identifier, payload, received_at) VALUES (:u, :a, :c, 'CONVERSION', 'CDP', "
            "'legacy', :p, :now)"),
            {"u": event_uuid, "a": account_id, "c": contact_id,
             "p": orjson.dumps(payload).decode(), "now": now})
    engine.dispose()
    return {"token": token, "email": email, "contact_uuid": contact_uuid,
            "event_uuid": event_uuid, "payload": payload}


def test_upgrade_keeps_the_data_of_an_older_schema(request, empty_database, tmp_path):
    backend, url = empty_database
    upgrade(url, OLDEST)
    old = fill_at_oldest_revision(url)
    with pytest.raises(SchemaBehind, match="rdevents db upgrade"):
        ensure_current(url)
    result = subprocess.run([sys.executable, "-m", "rdevents", "db", "upgrade", "--database",
                             url], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    ensure_current(url)
    settings = backend_settings(request, backend, tmp_path)
    server = Server(type(settings)(**{**settings.__dict__, "database_url": url})).start()
    try:
        with server.client(old["token"]) as client:
            contact = client.contact(old["email"]).json()
            assert contact["uuid"] == old["contact_uuid"]
            # The tag index was made for the contacts already there.
            listed = client.get("/platform/contacts", params={"tag": "old"}).json()
            assert [c["uuid"] for c in listed["contacts"]] == [old["contact_uuid"]]
            assert contact["city"] == "Recife"
            assert contact["tags"] == ["old"]
            assert contact["legal_bases"] == [
                {"category": "communications", "type": "consent", "status": "granted"}]
            assert client.get(f"/platform/events/{old['event_uuid']}").json()["payload"] == (
                old["payload"])
            sent = client.send_event(conversion(old["email"], tags=["new"], city="Olinda"))
            assert sent.status_code == 200
            contact = client.contact(old["email"]).json()
            assert (contact["tags"], contact["city"]) == (["old", "new"], "Olinda")
            listed = client.get("/platform/contacts", params={"tag": "new"}).json()
            assert [c["uuid"] for c in listed["contacts"]] == [old["contact_uuid"]]
    finally:
        server.stop()
    if backend == "postgresql":  # what revision 0002 is for: contacts queryable in SQL
        with psycopg.connect(url) as conn:
            found = conn.execute("SELECT uuid FROM contacts WHERE tags ? 'new' "
                                 "AND profile->>'city' = 'Olinda'").fetchall()
        assert found == [(old["contact_uuid"],)]
