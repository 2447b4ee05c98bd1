"""Identifiers."""

import os
import random
import time

# A generator of our own, seeded from the OS: nobody else can reseed it (the global one can be,
# e.g. by test tools), and a forked child gets a fresh seed.
_random = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))


_VERSION_7 = 0x7 << 76
_VARIANT_RFC_9562 = 0x8 << 60
_RANDOM_BITS = (1 << 80) - 1 & ~((0xF << 76) | (0xC << 60))  # all but version and variant


def new_uuid() -> str:
    """A time-ordered (version 7, RFC 9562) UUID string: the milliseconds since 1970, then 74
    random bits. Ids made later sort later, so the unique indexes over events' and contacts'
    uuids grow at their end, as those over serial ids do. A random (version 4) uuid sends each
    insert to a page of its own, read, changed and written out again: with them a group of
    events wrote about twice the bytes, and the more so the larger the indexes grow.

    Unlike `uuid.uuid4()`, it makes no system call per id: on the hot path such a call releases
    the GIL and hands it to the writer thread. Ids must be unique, not secret: they show when
    they were made, as the records they name do.
    """
    h = ((time.time_ns() // 1_000_000) << 80 | _random.getrandbits(80) & _RANDOM_BITS
         | _VERSION_7 | _VARIANT_RFC_9562).to_bytes(16, "big").hex()  # cheaper than "%032x"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_request_id() -> str:
    """A request id: 32 random hexadecimal digits (cheaper than a UUID's formatting, on every
    request's path)."""
    return f"{_random.getrandbits(128):032x}"
