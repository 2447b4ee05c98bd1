"""Signing in to the dashboard as a browser does: GET the sign-in page (its CSRF cookie and
field), POST the form; and a client that keeps the session cookie it got."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from conftest import Server
from rdevents.passwords import hash_password

PASSWORD = "correct horse battery"
_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(page: httpx.Response) -> str:
    found = _FIELD.search(page.text)
    assert found is not None, page.text
    return found.group(1)


@dataclass(frozen=True)
class Admin:
    account_id: int
    token: str  # an API token of the account
    username: str


def new_admin(server: Server) -> Admin:
    """A fresh account, an API token and an administrator of it."""
    account_id, token = server.new_account()
    username = f"admin-{uuid.uuid4().hex[:8]}"
    server.call(server.store.create_admin(account_id, username, hash_password(PASSWORD)))
    return Admin(account_id, token, username)


def sign_in(client: httpx.Client, username: str, password: str = PASSWORD,
            next_page: str | None = None, headers: dict[str, str] | None = None
            ) -> httpx.Response:
    """The answer to the sign-in form, sent with the cookie and field of a page just opened."""
    page = client.get("/ui/sign-in", headers=headers)
    assert page.status_code == 200, page.text
    form = {"csrf_token": csrf_token(page), "username": username, "password": password}
    if next_page is not None:
        form["next"] = next_page
    return client.post("/ui/sign-in", data=form, headers=headers)


def browser(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30)


@contextmanager
def signed_in(server: Server, admin: Admin) -> Iterator[httpx.Client]:
    """A client holding a session of the administrator."""
    with browser(server) as client:
        response = sign_in(client, admin.username)
        assert response.status_code == 303, response.text
        yield client
