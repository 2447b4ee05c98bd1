"""The dashboard in a real browser: the system's Chromium (Debian's package `chromium`; .ci/run
installs it), driven headless by Playwright, against the real server.

These tests run on SQLite only: what the pages read is tested on both backends over plain HTTP
(tests/test_dashboard.py); here the subject is the browser's side (forms, the session cookie,
the live list's script, the Content-Security-Policy letting the page's own files work).
Without Chromium the tests are skipped with a message, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import LOOPBACK, Server, conversion, event, sqlite_settings
from dashboard import PASSWORD, Admin, new_admin
from hooks import settled, subscribe
from waiting import wait_until

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = os.environ.get("RDEVENTS_TEST_CHROMIUM") or shutil.which("chromium") \
    or shutil.which("chromium-browser")
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(sqlite_settings(tmp_path_factory.mktemp("ui"),
                                     webhook_allowed_networks=LOOPBACK)).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if CHROMIUM is None:
        message = ("Chromium is not installed (apt-get install chromium), or set "
                   "RDEVENTS_TEST_CHROMIUM to its path")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """A fresh browser tab (its own cookies) that fails the test on a script error or a
    resource the page's Content-Security-Policy refused (not on the 401 of a wrong password,
    which the browser reports as an error too)."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(str(error)))
    tab.on("console", lambda message: problems.append(message.text)
           if message.type == "error" and not message.text.startswith("Failed to load resource")
           else None)
    yield tab
    context.close()
    assert problems == []


@pytest.fixture
def admin(server: Server) -> Admin:
    return new_admin(server)


def expect(locator: Any) -> Any:
    return playwright_api.expect(locator)


def sign_in(page: Any, server: Server, admin: Admin, path: str = "/ui/") -> None:
    page.goto(server.url + path)
    page.get_by_label("Username").fill(admin.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def new_email(prefix: str = "web") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def test_signing_in_with_a_wrong_password_then_the_right_one(page, server, admin):
    page.goto(server.url + "/ui/")
    expect(page).to_have_url(server.url + "/ui/sign-in")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to the dashboard")
    page.get_by_label("Username").fill(admin.username)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    expect(page.get_by_label("Username")).to_have_value(admin.username)
    # By keyboard: the password box has the focus again; Enter sends the form.
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(server.url + "/ui/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
    expect(page.get_by_role("navigation", name="Dashboard").get_by_role(
        "link", name="Overview")).to_have_attribute("aria-current", "page")


def test_finding_a_contact_and_its_timeline(page, server, admin):
    email = new_email("ana")
    with server.client(admin.token) as api:
        for body in (conversion(email, name="Ana Lima", tags=["vip"]),
                     event("OPPORTUNITY", email=email, funnel_name="default"),
                     conversion(new_email("other"))):
            assert api.send_event(body).status_code == 200
    sign_in(page, server, admin, "/ui/contacts")
    expect(page).to_have_url(server.url + "/ui/contacts")
    page.get_by_label("E-mail contains").fill(email.split("@")[0])
    page.get_by_role("button", name="Search").click()
    results = page.get_by_role("table")
    expect(results.get_by_role("row")).to_have_count(2)  # the header and Ana
    results.get_by_role("link", name=email).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ana Lima")
    timeline = page.locator("section", has=page.get_by_role("heading", name="Timeline"))
    expect(timeline.get_by_role("listitem")).to_have_count(2)
    expect(timeline.get_by_role("listitem").first).to_contain_text("OPPORTUNITY")
    expect(timeline.get_by_role("listitem").last).to_contain_text("CONVERSION")
    funnel = page.locator("section", has=page.get_by_role("heading", name="Funnel"))
    expect(funnel).to_contain_text("Marked as an opportunity")
    timeline.get_by_role("link", name="CONVERSION signup").click()
    expect(page.locator("pre.json")).to_contain_text(f'"email": "{email}"')


def test_a_new_event_appears_in_the_live_list_without_reloading(page, server, admin):
    sign_in(page, server, admin, "/ui/events")
    expect(page.get_by_role("status")).to_have_text(
        "Live: new events appear here as they arrive.")
    expect(page.locator("#events-empty")).to_be_visible()
    page.evaluate("window.notReloaded = true")
    email = new_email("live")
    with server.client(admin.token) as api:
        assert api.send_event(conversion(email)).status_code == 200
    row = page.get_by_role("row").filter(has_text=email)
    expect(row).to_be_visible()
    expect(row).to_contain_text("CONVERSION")
    expect(page.get_by_role("status")).to_have_text("1 new event")
    expect(page.locator("#events-empty")).to_be_hidden()
    assert page.evaluate("window.notReloaded") is True
    with server.client(admin.token) as api:
        assert api.send_event(event("OPPORTUNITY", email=email,
                                    funnel_name="default")).status_code == 200
    rows = page.locator("#events tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("OPPORTUNITY")  # the newest on top
    assert page.evaluate("window.notReloaded") is True
    rows.first.get_by_role("link").first.click()
    expect(page.locator("pre.json")).to_contain_text('"event_type": "OPPORTUNITY"')


def test_resending_a_webhook_delivery(page, server, admin, receiver):
    with server.client(admin.token) as api:
        webhook = subscribe(api, receiver.url)
        assert api.send_event(conversion(new_email("hook"))).status_code == 200
        assert settled(api, webhook, 1)[0]["status"] == "delivered"
    sign_in(page, server, admin, "/ui/webhooks")
    page.get_by_role("link", name=receiver.url).click()
    expect(page.locator(".status")).to_have_text("Delivered")
    page.get_by_role("button", name="Resend").click()
    expect(page.get_by_role("status")).to_contain_text(
        "The delivery is queued: it will be sent again shortly")
    receiver.wait_for(2)
    page.reload()
    expect(page.locator(".attempts tbody tr")).to_have_count(2)
    expect(page.locator(".status")).to_have_text("Delivered")


def test_seeing_a_rejected_request_and_replaying_it(page, server, admin):
    email = new_email("late")
    with server.client(admin.token) as api:
        assert api.send_event(event("OPPORTUNITY", email=email,
                                    funnel_name="default")).status_code == 400
        wait_until(lambda: api.get("/rdevents/v1/requests").json()["requests"])
    sign_in(page, server, admin, "/ui/requests")
    page.get_by_role("row").filter(has_text="/platform/events").get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("POST /platform/events")
    expect(page.locator("mark.fault")).to_have_text(f'"email": "{email}"')
    errors = page.get_by_role("list").filter(has_text="RESOURCE_NOT_FOUND")
    expect(errors.get_by_role("listitem")).to_have_count(1)
    errors.get_by_role("link", name="$.body.payload.email").click()
    expect(page).to_have_url(re.compile(r"#fault-at-1$"))
    with server.client(admin.token) as api:  # the missing CONVERSION arrives
        assert api.send_event(conversion(email)).status_code == 200
    page.get_by_role("button", name="Replay this request").click()
    expect(page.get_by_role("status")).to_contain_text(
        "Replayed: answered HTTP 200, and the event was stored")
    page.get_by_role("status").get_by_role("link", name="see it").click()
    expect(page.locator("pre.json")).to_contain_text('"event_type": "OPPORTUNITY"')


def test_signing_out(page, server, admin):
    sign_in(page, server, admin)
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(server.url + "/ui/sign-in?signed_out=1")
    expect(page.get_by_role("status")).to_have_text("You have signed out.")
    page.goto(server.url + "/ui/funnel")
    expect(page).to_have_url(server.url + "/ui/sign-in?next=%2Fui%2Ffunnel")
    assert [c for c in page.context.cookies() if c["name"] == "rdevents_session"] == []
