"""`serve --bootstrap-token` (RDEVENTS_BOOTSTRAP_TOKEN): the account `default` takes a token known
in advance at every start, also with several processes, whose sandbox faults then count
together; a token of another account is refused. On both backends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx

from conftest import conversion, free_port
from serverproc import ServerProcess, rdevents


def post_event(url: str, token: str) -> int:
    """Sent on a connection of its own, which any of the server's processes may take."""
    return httpx.post(f"{url}/platform/events", json=conversion(f"{uuid.uuid4().hex}@ex.com"),
                      headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code


def test_default_takes_the_bootstrap_token_at_every_start(empty_database, tmp_path):
    _, url = empty_database
    token = f"ci-{uuid.uuid4().hex}"
    server = ServerProcess(tmp_path, url, headers={"Authorization": f"Bearer {token}"},
                           serve_args=("--sandbox", "--bootstrap-token", token,
                                       "--workers", "2")).start()
    try:
        with server.client() as api:
            assert api.get("/marketing/account_info").json() == {"name": "default"}
            assert api.post("/rdevents/v1/sandbox/faults",
                            json={"fault": "server_error", "count": 4}).status_code == 201
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: post_event(server.url, token), range(8)))
        assert sorted(statuses) == [200] * 4 + [500] * 4
        server.terminate()

        # Revoked meanwhile, it is the account's again at the next start (here from the
        # environment), and still its only one.
        rdevents("tokens", "revoke", token, cwd=tmp_path, env=server.env)
        server.serve_args = ("--sandbox",)
        server.env["RDEVENTS_BOOTSTRAP_TOKEN"] = token
        server.start()
        with server.client() as api:
            assert api.get("/marketing/account_info").status_code == 200
        [listed] = json.loads(rdevents("tokens", "list", "--account", "default", "--json",
                                       cwd=tmp_path, env=server.env))
        assert listed["prefix"] == token[:12]
        assert (listed["expires_at"], listed["revoked_at"]) == (None, None)
    finally:
        server.stop()


def test_a_token_of_another_account_is_refused(tmp_path):
    rdevents("accounts", "create", "other", cwd=tmp_path)
    token = rdevents("tokens", "create", "--account", "other", cwd=tmp_path)
    run = subprocess.run([sys.executable, "-m", "rdevents", "serve", "--port", str(free_port()),
                          "--bootstrap-token", token], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60,
                         env={k: v for k, v in os.environ.items()
                              if not k.startswith("RDEVENTS_")})
    assert run.returncode == 2
    assert "The bootstrap token is a token of another account" in run.stderr
    assert "Created account" not in run.stdout
