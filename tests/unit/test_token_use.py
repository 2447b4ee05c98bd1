"""Which token lookups record the token's use (http/auth.py), without a server; test_operator.py
has the uses the server records."""

from __future__ import annotations

import pytest

from rdevents.clock import utc_now
from rdevents.http.auth import use_to_record
from rdevents.store import Token


@pytest.mark.parametrize("expires_in, revoked, used_ago, recorded", [
    (None, False, None, True),
    (None, False, 61, True),
    (None, False, 30, False),
    (3600, False, None, True),
    (-1, False, None, False),
    (None, True, None, False),
], ids=["never", "over-a-minute", "within-a-minute", "expiring", "expired", "revoked"])
def test_which_lookups_record_a_use(expires_in, revoked, used_ago, recorded):
    token = Token(1, None if expires_in is None else utc_now(expires_in), revoked,
                  None if used_ago is None else utc_now(-used_ago))
    assert use_to_record(token) is recorded
