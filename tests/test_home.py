"""GET /: a page for browsers, JSON for everything else, both pointing at the docs and health
checks."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from conftest import Server, sqlite_settings
from rdevents import __version__

LINKS = {"docs": "/docs", "openapi": "/openapi.json", "ui": "/ui/", "healthz": "/healthz",
         "readyz": "/readyz"}
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"


@pytest.fixture(scope="module")
def http(tmp_path_factory) -> Iterator[httpx.Client]:
    server = Server(sqlite_settings(tmp_path_factory.mktemp("home"))).start()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client
    server.stop()


def media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


@pytest.mark.parametrize("accept", [None, "*/*", "application/json",
                                    "text/html;q=0.5, application/json",
                                    "text/html, application/json"],
                         ids=["none", "any", "json", "json-preferred", "tie"])
def test_json_unless_html_is_preferred(http, accept):
    response = http.get("/", headers={"Accept": accept} if accept else {})
    assert response.status_code == 200
    assert media_type(response) == "application/json"
    assert response.headers["vary"] == "Accept"
    assert response.json() == {"name": "rdevents", "version": __version__, "links": LINKS}


@pytest.mark.parametrize("accept", [BROWSER, "text/html", "application/json;q=0.1, text/*"],
                         ids=["browser", "html", "any-text"])
def test_a_page_when_html_is_preferred(http, accept):
    response = http.get("/", headers={"Accept": accept})
    assert response.status_code == 200
    assert media_type(response) == "text/html"
    assert response.headers["vary"] == "Accept"
    assert re.findall(r'<a href="([^"]+)">', response.text) == list(LINKS.values())
    assert f"rdevents {__version__}" in response.text


def test_every_link_answers(http):
    for path in http.get("/").json()["links"].values():
        assert http.get(path, follow_redirects=True).status_code == 200, path


def test_the_dashboard_link_leads_a_browser_to_its_sign_in(http):
    page = http.get("/", headers={"Accept": BROWSER})
    assert '<a href="/ui/">/ui/</a>: the dashboard' in page.text
    response = http.get("/ui/", headers={"Accept": BROWSER}, follow_redirects=True)
    assert response.status_code == 200
    assert response.url.path == "/ui/sign-in"
    assert "Sign in" in response.text
