"""Takes the screenshots of docs/dashboard.md: a server on a temporary SQLite database, filled
with a month of demonstration events sent through the API, and the system's Chromium driven
headless by Playwright.

    .venv/bin/python docs/screenshots.py      # writes docs/dashboard/*.png

The events go through the real write path; only the time they are stamped with is moved back,
so that the charts have a month, a day and an hour to show.
"""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvicorn
from playwright.sync_api import sync_playwright

import rdevents.ingest.events
from rdevents.catalogue import EVENT_TYPES
from rdevents.config import Settings
from rdevents.http.app import create_app
from rdevents.passwords import hash_password
from rdevents.store.relay_records import RelayCredentials
from rdevents.tokens import issue_token

OUT = Path(__file__).resolve().parent / "dashboard"
USERNAME, PASSWORD = "ana", "correct horse battery"
NAMES = ["Ana Lima", "Bruno Costa", "Carla Dias", "Davi Rocha", "Elisa Melo", "Fabio Nunes",
         "Gabi Torres", "Hugo Alves", "Iara Souza", "Joao Pires", "Katia Reis", "Leo Martins"]
CITIES = [("Recife", "PE"), ("Sao Paulo", "SP"), ("Porto Alegre", "RS"), ("Curitiba", "PR"),
          ("Salvador", "BA"), ("Belo Horizonte", "MG")]
# Event types and how often each comes, beside CONVERSION.
MIX = {"CONVERSION": 10, "CHAT_STARTED": 3, "CHAT_FINISHED": 2, "CALL_FINISHED": 2,
       "MEDIA_PLAYBACK_STARTED": 3, "ECOMMERCE_CHECKOUT_STARTED": 2,
       "ECOMMERCE_ORDER_PLACED": 1, "CART_ABANDONED": 1}


# The catalogue examples' texts that describe a field rather than hold a value.
_PLACEHOLDER = re.compile(r"of the contact|handler|custom field|lead tracking", re.I)


class Clock:
    """The time events are stamped with (ingest's utc_now), moved by the script."""

    def __init__(self) -> None:
        self.at: datetime | None = None

    def __call__(self, offset_seconds: float = 0) -> str:
        moment = (self.at or datetime.now(UTC)) + timedelta(seconds=offset_seconds)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def quiet_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """An HTTP server on a free port of the loopback, in a thread; its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@contextmanager
def receiver() -> Iterator[str]:
    """A webhook receiver that refuses nearly half the deliveries it gets (retries then
    deliver most of them; a few fail)."""

    class Handler(QuietHandler):
        def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            failing = "x-rdevents-validation" not in {k.lower() for k in self.headers} \
                and random.random() < 0.45
            self.send_response(503 if failing else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    with quiet_server(Handler) as url:
        yield f"{url}/hooks/crm"


@contextmanager
def upstream() -> Iterator[str]:
    """An upstream RD Station for the relay, whose `cf_plan` field takes "free" or "pro" only:
    it refuses the events with another plan (naming them, as RD's batch errors do), and takes
    the others."""

    class Handler(QuietHandler):
        def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
            body = orjson.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            batch = isinstance(body, list)
            events = body if batch else [body]
            errors = [{"error_type": "INVALID_OPTION",
                       "error_message": "Must be one of the valid options.",
                       "validation_rules": {"valid_options": ["free", "pro"]},
                       "path": f"$.body{f'[{i}]' if batch else ''}.payload.cf_plan"}
                      for i, event in enumerate(events)
                      if event["payload"].get("cf_plan", "free") not in ("free", "pro")]
            answer = {"errors": errors} if errors else {"event_uuid": "accepted"}
            reply = orjson.dumps(answer)
            self.send_response(400 if errors else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    with quiet_server(Handler) as url:
        yield url


@contextmanager
def serving(directory: Path) -> Iterator[tuple[str, Any, asyncio.AbstractEventLoop]]:
    settings = Settings(database_url=f"sqlite:///{directory / 'demo.db'}",
                        webhook_allowed_networks=("127.0.0.0/8",),
                        webhook_retry_delays=(0.2, 0.2, 0.2))
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(),),
                              daemon=True)
    thread.start()
    while not server.started:
        thread.join(0.01)
    try:
        yield f"http://127.0.0.1:{port}", app.state.store, loop
    finally:
        server.should_exit = True
        thread.join(30)


def body(event_type: str, email: str, name: str) -> dict[str, Any]:
    """The catalogue's example of the type, for this contact (with its name and city rather
    than the example's placeholders)."""
    example = EVENT_TYPES[event_type].example
    city, state = CITIES[sum(map(ord, email)) % len(CITIES)]
    person = {"name": name, "city": city, "state": state, "country": "Brasil",
              "job_title": "Marketing manager", "company_name": "Acme",
              "company_address": f"Rua do Sol 100, {city}"}
    payload = {key: value for key, value in example["payload"].items()
               if not (isinstance(value, str) and _PLACEHOLDER.search(value))}
    payload.update({key: value for key, value in person.items()
                    if key in EVENT_TYPES[event_type].fields_by_name}, email=email)
    if event_type == "CONVERSION":
        payload.update(name=name, conversion_identifier=random.choice(
            ["newsletter", "ebook-download", "webinar", "pricing-page"]),
            tags=random.sample(["mql", "b2b", "newsletter", "webinar", "vip"], 2),
            cf_plan=random.choice(["free", "pro", "enterprise"]))
    return {**example, "payload": payload}


def fill(url: str, token: str, clock: Clock) -> None:
    """A month of contacts and events, busier in the last day and the last hour."""
    random.seed(7)
    now = datetime.now(UTC)
    contacts = [(f"{name.split()[0].lower()}.{i}@example.com", name)
                for i, name in enumerate(NAMES * 4)]
    moments = sorted(
        [now - timedelta(days=random.uniform(1, 30)) for _ in range(len(contacts))]
        + [now - timedelta(hours=random.uniform(1, 24)) for _ in range(420)]
        + [now - timedelta(minutes=random.uniform(0, 60) ** 1.3 / 60 ** 0.3)
           for _ in range(260)])
    known: list[tuple[str, str]] = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                      timeout=30) as api:
        for moment in moments:
            clock.at = moment
            if len(known) < len(contacts) and (not known or random.random() < 0.3):
                email, name = contacts[len(known)]
                known.append((email, name))
                event_type = "CONVERSION"
            else:
                email, name = random.choice(known)
                event_type = random.choices(list(MIX), weights=list(MIX.values()))[0]
            sent = api.post("/platform/events", json=body(event_type, email, name))
            sent.raise_for_status()
            roll = random.random()
            if roll < 0.06:  # a funnel movement now and then
                clock.at = min(moment + timedelta(minutes=5), now)
                kind = random.choice(["OPPORTUNITY", "OPPORTUNITY", "SALE", "OPPORTUNITY_LOST"])
                payload: dict[str, Any] = {"email": email, "funnel_name": "default"}
                if kind == "SALE":
                    payload["value"] = random.choice([49.9, 99.0, 249.0])
                if kind == "OPPORTUNITY_LOST":
                    payload["reason"] = "price"
                api.post("/platform/events", json={"event_type": kind, "event_family": "CDP",
                                                   "payload": payload}).raise_for_status()
    clock.at = None


def reject(url: str, token: str) -> None:
    """Requests an integration gets wrong: an OPPORTUNITY before its contact's CONVERSION, a
    body that is not JSON, a token that expired; and last a CONVERSION whose e-mail is
    misspelt, with a legal basis RD does not know."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}",
                                             "User-Agent": "crm-sync/2.1"}) as api:
        api.post("/platform/events", json={"event_type": "OPPORTUNITY", "event_family": "CDP",
                                           "payload": {"email": "nina.costa@example.com",
                                                       "funnel_name": "default"}})
        api.post("/platform/events", content=b'{"event_type": "CONVERSION",',
                 headers={"Content-Type": "application/json"})
        api.post("/platform/events", json=body("CONVERSION", "otto@example.com", "Otto"),
                 headers={"Authorization": "Bearer rdv_expired-token"})
        api.post("/platform/events", json={
            "event_type": "CONVERSION", "event_family": "CDP",
            "payload": {"conversion_identifier": "webinar", "name": "Otto Ramos",
                        "emial": "otto.ramos@example.com", "tags": ["webinar"],
                        "legal_bases": [{"category": "communications", "type": "consent",
                                         "status": "yes"}]}})


def relay_now(url: str, token: str, clock: Clock, count: int, start: datetime) -> None:
    """`count` CONVERSIONs, one every 6 seconds from `start`, some with a plan the relay's
    upstream refuses."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                      timeout=30) as api:
        for i in range(count):
            clock.at = start + timedelta(seconds=6 * i)
            name = random.choice(NAMES)
            email = f"{name.split()[0].lower()}.{random.randrange(48)}@example.com"
            api.post("/platform/events", json=body("CONVERSION", email, name)).raise_for_status()
    clock.at = None


def relay(url: str, token: str, clock: Clock, store: Any, call: Callable[[Any], Any],
          account_id: int, upstream_url: str) -> str:
    """A relay that forwarded the events of the last minutes (the upstream refused some: dead
    letters), then got a budget of 10 events a minute, which the next events outgrew (a
    backlog)."""
    uuid: str = call(store.create_relay(account_id, upstream_url,
                                        RelayCredentials(token="upstream-token"), 0, False))

    def handled() -> int:
        [summary] = call(store.list_relays(account_id, uuid))
        return int(summary.sent + summary.dead)

    now = datetime.now(UTC)
    relay_now(url, token, clock, 30, now - timedelta(minutes=6))
    while handled() < 30:
        time.sleep(0.1)
    call(store.update_relay(uuid, lambda same: same, events_per_minute=10))
    relay_now(url, token, clock, 30, now - timedelta(minutes=3))
    while handled() <= 30:  # the budget let some through
        time.sleep(0.1)
    return uuid


def shoot(url: str, contact_uuid: str, webhook_uuid: str, request_uuid: str,
          relay_uuid: str) -> None:
    OUT.mkdir(exist_ok=True)
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 800})

        def snap(name: str, full: bool = True) -> None:
            page.screenshot(path=str(OUT / f"{name}.png"), full_page=full)

        page.goto(f"{url}/ui/")
        page.get_by_label("Username").fill(USERNAME)
        snap("sign-in", full=False)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{url}/ui/")
        snap("overview")
        page.goto(f"{url}/ui/events")
        page.wait_for_selector("text=Live: new events appear here as they arrive.")
        snap("events", full=False)
        page.locator("#events tbody tr a").first.click()
        page.wait_for_selector("pre.json")
        snap("event")
        page.goto(f"{url}/ui/contacts?tag=vip")
        snap("contacts", full=False)
        page.goto(f"{url}/ui/contacts/{contact_uuid}")
        snap("contact")
        page.goto(f"{url}/ui/funnel")
        snap("funnel")
        page.goto(f"{url}/ui/webhooks")
        snap("webhooks", full=False)
        page.goto(f"{url}/ui/webhooks/{webhook_uuid}")
        snap("webhook", full=False)
        page.goto(f"{url}/ui/requests")
        snap("requests", full=False)
        page.goto(f"{url}/ui/requests/{request_uuid}")
        snap("request")
        page.goto(f"{url}/ui/relays/{relay_uuid}")
        snap("relay", full=False)
        browser.close()


def main() -> None:
    clock = Clock()
    rdevents.ingest.events.utc_now = clock  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory() as directory, receiver() as hook_url, \
            upstream() as upstream_url, serving(Path(directory)) as (url, store, loop):
        def call(coroutine: Any) -> Any:
            return asyncio.run_coroutine_threadsafe(coroutine, loop).result(30)

        account = call(store.create_account("acme"))
        call(store.create_admin(account.id, USERNAME, hash_password(PASSWORD)))
        token = call(issue_token(store, account.id))
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as api:
            webhook = api.post("/integrations/webhooks", json={
                "event_type": "WEBHOOK.CONVERTED", "entity_type": "CONTACT", "url": hook_url,
                "http_method": "POST"}).json()
            fill(url, token, clock)
            # The client with the most events.
            contacts = api.get("/platform/contacts", params={
                "page_size": 100, "lifecycle_stage": "Client"}).json()
            best = max(contacts["contacts"], key=lambda c: len(api.get(
                f"/platform/contacts/{c['uuid']}/events", params={"page_size": 100}
            ).json()))
            relay_uuid = relay(url, token, clock, store, call, account.id, upstream_url)
            reject(url, token)
            while len(logged := api.get("/rdevents/v1/requests").json()["requests"]) < 3:
                time.sleep(0.1)
        shoot(url, best["uuid"], webhook["uuid"], logged[0]["uuid"], relay_uuid)
    print(f"Screenshots in {OUT}")


if __name__ == "__main__":
    main()
