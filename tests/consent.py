"""Signing in on the consent page as a browser does: GET the page (its CSRF cookie and field),
then POST the form with them."""

from __future__ import annotations

import ipaddress
import random
import re

import httpx

REDIRECT = "https://crm.example/callback"
PASSWORD = "correct horse battery"
_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(page: httpx.Response) -> str:
    return _FIELD.search(page.text).group(1)


def open_page(client: httpx.Client, client_id: str, state: str = "xyz",
              address: str | None = None) -> httpx.Response:
    page = client.get("/auth/dialog", params={"client_id": client_id, "redirect_uri": REDIRECT,
                                              "state": state}, headers=forwarded(address))
    assert page.status_code == 200, page.text
    return page


def sign_in(client: httpx.Client, client_id: str, username: str, password: str,
            state: str = "xyz", address: str | None = None) -> httpx.Response:
    """The answer to the form, sent with the cookie and field of a page just opened."""
    token = csrf_token(open_page(client, client_id, state, address))
    return client.post("/auth/dialog", data={
        "csrf_token": token, "client_id": client_id, "redirect_uri": REDIRECT, "state": state,
        "username": username, "password": password}, headers=forwarded(address))


def forwarded(address: str | None) -> dict[str, str]:
    """As a proxy on the server's host tells the client's address (uvicorn trusts 127.0.0.1)."""
    return {"X-Forwarded-For": address} if address else {}


def new_address() -> str:
    """A client address (of the benchmarking range, 198.18.0.0/15) of its own."""
    return str(ipaddress.ip_address("198.18.0.0") + random.randrange(2**17))
