"""An integration's RD Station client, as an application would write it: it sends a sign-up as
a CONVERSION event and survives what RD Station does when things go wrong. test_signup.py
tests it against an rdevents sandbox.

What it does about each failure:
- 429 from RD's gateway (`{"message": ...}`): wait `Retry-After` seconds, then try again;
- 429 from RD's lead limiter (`{"error": ...}`): give up, the contact's quota is spent for the day;
- 401 with `WWW-Authenticate: ... error="expired_token"`: refresh the token once, try again;
- any other 401: give up, the credentials are wrong;
- 5xx, JSON or not (RD's gateway answers HTML when RD is down): wait, doubling, try again.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any


class RDStationError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"RD Station answered {status}: {body[:200]}")
        self.status = status


class ContactLimited(RDStationError):
    """RD's lead limiter: no more events for this contact today."""


class RDStation:
    def __init__(self, base_url: str, access_token: str,
                 refresh: Callable[[], str] | None = None, attempts: int = 4,
                 timeout: float = 10.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        self.access_token = access_token
        self.refresh = refresh
        self.attempts = attempts
        self.timeout = timeout
        self.sleep = sleep

    def _request(self, method: str, path: str,
                 document: Any = None) -> tuple[int, dict[str, str], str]:
        data = None if document is None else json.dumps(document).encode()
        request = urllib.request.Request(
            self.base_url + path, data, method=method,
            headers={"Authorization": f"Bearer {self.access_token}",
                     "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status, headers, body = response.status, response.headers, response.read()
        except urllib.error.HTTPError as answer:
            status, headers, body = answer.code, answer.headers, answer.read()
        # Header names in any case (HTTP/2 and many servers send them in lower case).
        return (status, {name.lower(): value for name, value in headers.items()},
                body.decode("utf-8", "replace"))

    def _call(self, method: str, path: str, document: Any = None) -> dict[str, Any]:
        refreshed = False
        for attempt in range(self.attempts):
            status, headers, body = self._request(method, path, document)
            if 200 <= status < 300:
                return json.loads(body)
            if status == 401:
                expired = 'error="expired_token"' in headers.get("www-authenticate", "")
                if expired and self.refresh is not None and not refreshed:
                    self.access_token, refreshed = self.refresh(), True
                    continue
                raise RDStationError(status, body)
            if status == 429:
                if "error" in json.loads(body):  # the lead limiter's body
                    raise ContactLimited(status, body)
                self.sleep(float(headers.get("retry-after", "1")))
                continue
            if status >= 500:  # the body may be RD's HTML page: it is not read
                self.sleep(2.0 ** attempt)
                continue
            raise RDStationError(status, body)
        raise RDStationError(status, body)

    def account_name(self) -> str:
        """What a client checks its credentials with on setup."""
        return str(self._call("GET", "/marketing/account_info")["name"])

    def send_signup(self, email: str, **fields: Any) -> str:
        """The sign-up as a CONVERSION; its event_uuid."""
        event = {"event_type": "CONVERSION", "event_family": "CDP",
                 "payload": {"conversion_identifier": "signup", "email": email, **fields}}
        return str(self._call("POST", "/platform/events", event)["event_uuid"])
