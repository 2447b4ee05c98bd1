"""The unit tests: rules and pure functions, run without a server, a subprocess or a database
(`make check` runs them alone, in seconds). The fixtures of ../conftest.py that start something
are refused here: a test that needs one belongs in tests/."""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

import pytest

STARTS_SOMETHING = ("server", "api", "own_server", "empty_database", "postgres_url", "receiver",
                    "stub", "upstream")


def _refused(name: str) -> Callable[[], NoReturn]:
    @pytest.fixture(name=name)
    def refuse() -> NoReturn:
        pytest.fail(f"a unit test may not use the fixture {name!r}, which starts a server or a "
                    "database: the test belongs in tests/, not tests/unit/")

    return refuse


for _name in STARTS_SOMETHING:
    globals()[f"refuse_{_name}"] = _refused(_name)
