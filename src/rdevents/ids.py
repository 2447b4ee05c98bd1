"""Identifiers."""

import os
import random

# A generator of our own, seeded from the OS: nobody else can reseed it (the global one can be,
# e.g. by test tools), and a forked child gets a fresh seed.
_random = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))


_VERSION_4 = 0x4 << 76
_VARIANT_RFC_4122 = 0x8 << 60
_CLEAR = ~((0xF << 76) | (0xC << 60))


def new_uuid() -> str:
    """A random (version 4) UUID string, as `str(uuid.uuid4())` gives.

    Unlike `uuid.uuid4()`, it makes no system call per id: on the hot path such a call releases
    the GIL and hands it to the writer thread. Event and contact ids must be unique, not secret.
    """
    h = "%032x" % (_random.getrandbits(128) & _CLEAR | _VERSION_4 | _VARIANT_RFC_4122)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_request_id() -> str:
    """A request id: 32 random hexadecimal digits (cheaper than a UUID's formatting, on every
    request's path)."""
    return f"{_random.getrandbits(128):032x}"
