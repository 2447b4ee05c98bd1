"""RD's rate limits as pure rules (limits.py); test_rate_limits.py has them through the app."""

from __future__ import annotations

from rdevents.limits import PER_CONTACT_PER_DAY, Quota, quota


def test_plans_and_own_limits():
    assert quota("standard", None, None) == Quota(120, PER_CONTACT_PER_DAY)
    assert quota("advanced", None, None) == Quota(500, 120)
    assert quota("advanced", 7, 3) == Quota(7, 3)
