"""The index of contacts by tag: a row (account, tag key, contact) for each tag a contact has, so
that listing the contacts with a tag reads the index rather than every contact's tags.

A tag key is a 64-bit hash of the tag, not the tag: tags have no length limit, and a B-tree
cannot hold long text on PostgreSQL. The list query checks the tag itself, so a collision only
costs a row read.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable

import orjson
from sqlalchemy import Connection, text

TABLE = "contact_tags"
COLUMNS = ("account_id", "tag_key", "contact_id")
_CHUNK = 5_000


def tag_key(tag: str) -> int:
    return _cached_key(tag) if len(tag) <= _CACHED_LENGTH else _key(tag)


def _key(tag: str) -> int:
    digest = hashlib.blake2b(tag.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


# The keys of short tags are remembered: most contacts share a few tags. (Long ones are not,
# so that the cache stays small whatever tags clients send.)
_CACHED_LENGTH = 64
_cached_key = functools.lru_cache(maxsize=4096)(_key)


def tag_keys(tags: Iterable[str]) -> set[int]:
    return {tag_key(tag) for tag in tags}


def rebuild(connection: Connection) -> None:
    """Index the tags of every contact (after a migration or a copy), a chunk at a time."""
    connection.execute(text(f"DELETE FROM {TABLE}"))
    last_id = 0
    while True:
        contacts = connection.execute(text(
            "SELECT id, account_id, tags FROM contacts WHERE id > :last ORDER BY id LIMIT :n"),
            {"last": last_id, "n": _CHUNK}).all()
        if not contacts:
            return
        rows = [{"account_id": account_id, "tag_key": key, "contact_id": contact_id}
                for contact_id, account_id, tags in contacts
                for key in tag_keys(orjson.loads(tags) if isinstance(tags, str) else tags)]
        if rows:
            connection.execute(text(f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES "
                                    "(:account_id, :tag_key, :contact_id)"), rows)
        last_id = contacts[-1][0]
