"""Identifiers."""

import os
import random
import time

# A generator of our own, seeded from the OS: nobody else can reseed it (the global one can be,
# e.g. by test tools), and a forked child gets a fresh seed.
_random = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))


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
    return _text(_prefix(), _random.getrandbits(80).to_bytes(10, "big").hex(), 0)


def new_uuids(count: int) -> list[str]:
    """`count` uuids as new_uuid makes them, their random bits drawn and written out at once:
    about half the work of as many calls of new_uuid."""
    prefix = _prefix()
    h = _random.getrandbits(80 * count).to_bytes(10 * count, "big").hex()
    return [_text(prefix, h, i) for i in range(0, 20 * count, 20)]


def _text(prefix: str, h: str, i: int) -> str:
    """A uuid of the millisecond `prefix` (see _prefix), its random part the 20 hexadecimal
    digits of `h` from `i`: 3 after the version's, one made the variant's (its two high bits
    10, its two low bits kept), then 15 (the last digit is not used)."""
    return f"{prefix}{h[i:i + 3]}-{_VARIANT[h[i + 3]]}{h[i + 4:i + 7]}-{h[i + 7:i + 19]}"


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}

# The beginning of the uuids of one millisecond, "tttttttt-tttt-7" (its 48 bits, then the
# version): (the millisecond, that text), made once a millisecond and swapped whole, so that
# threads making uuids at once never take one millisecond's text for another's.
_stamp = (-1, "")


def _prefix() -> str:
    global _stamp
    millisecond = time.time_ns() // 1_000_000
    stamp = _stamp
    if stamp[0] != millisecond:
        h = millisecond.to_bytes(6, "big").hex()
        stamp = _stamp = (millisecond, f"{h[:8]}-{h[8:]}-7")
    return stamp[1]


def new_request_id() -> str:
    """A request id: 32 random hexadecimal digits (cheaper than a UUID's formatting, on every
    request's path)."""
    return f"{_random.getrandbits(128):032x}"
