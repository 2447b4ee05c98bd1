"""Why the database a URL names cannot be used, said in one line with what to do about it: a
malformed URL, a PostgreSQL server out of reach, a SQLite file that cannot be opened."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from . import StoreUnavailable

_WHERE = "--database (or RDEVENTS_DATABASE_URL)"
_FORMS = "sqlite:///relative/path.db, sqlite:////absolute/path.db or " \
         "postgresql://USER@HOST:PORT/DATABASE"


class DatabaseProblem(Exception):
    """The database cannot be used; the message says what to do."""


def check_url(url: str) -> None:
    """Raise DatabaseProblem unless `url` has one of the forms rdevents reads."""
    reason = _url_problem(url)
    if reason is not None:
        raise DatabaseProblem(f"The database URL {_hide_password(url)!r} is not valid "
                              f"({reason}): give {_FORMS} with {_WHERE}.")


def _url_problem(url: str) -> str | None:
    try:
        parsed = make_url(url)
        _ = parsed.port  # a port that is not a number fails here
    except ArgumentError:
        return "it cannot be read as a URL"
    except ValueError as exc:
        return str(exc)
    if parsed.drivername == "sqlite":
        return None if url.startswith("sqlite:///") and parsed.database else "it names no file"
    if parsed.drivername not in ("postgresql", "postgres"):
        return f"{parsed.drivername} is not a database rdevents uses"
    try:
        conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:  # an option libpq does not know
        return str(exc).strip()
    return None


@contextmanager
def explained(url: str) -> Iterator[None]:
    """Check the URL, then turn the errors of reaching its database into a DatabaseProblem."""
    check_url(url)
    try:
        yield
    except (DBAPIError, psycopg.OperationalError, sqlite3.Error, StoreUnavailable,
            OSError) as exc:
        problem = _problem(url, exc)
        if problem is None:
            raise
        raise problem from exc


def _problem(url: str, exc: Exception) -> DatabaseProblem | None:
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    if url.startswith("sqlite:"):
        if not isinstance(cause, (sqlite3.OperationalError, OSError, StoreUnavailable)) and \
                type(cause) is not sqlite3.DatabaseError:  # "file is not a database"
            return None
        return DatabaseProblem(
            f"Cannot open the SQLite database {make_url(url).database}: {_reason(cause)}. "
            f"Give a file rdevents may create or an rdevents database, with {_WHERE}.")
    if not isinstance(cause, (psycopg.OperationalError, StoreUnavailable)):
        return None
    parsed = make_url(url)
    return DatabaseProblem(
        f"Cannot connect to PostgreSQL at {parsed.host or 'localhost'}:{parsed.port or 5432}/"
        f"{parsed.database or ''}: {_reason(cause)}. Check that the server runs and accepts "
        f"connections, that the database exists, and {_WHERE}.")


def _reason(exc: BaseException) -> str:
    """The driver's own words, without what says where (already said) or how to read them."""
    if isinstance(exc, FileExistsError):  # making the file's directory
        return f"{exc.filename} is not a directory"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__
    # psycopg: 'connection failed: connection to server at "h", port 1 failed: FATAL:  why'
    return lines[0].rsplit(" failed: ", 1)[-1].removeprefix("FATAL:").strip()


def _hide_password(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)
