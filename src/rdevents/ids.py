"""Identifiers."""

import os
import random
import uuid

# A generator of our own, seeded from the OS: nobody else can reseed it (the global one can be,
# e.g. by test tools), and a forked child gets a fresh seed.
_random = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))


def new_uuid() -> str:
    """A random (version 4) UUID string.

    Unlike `uuid.uuid4()`, it makes no system call per id: on the hot path such a call releases
    the GIL and hands it to the writer thread. Event and contact ids must be unique, not secret.
    """
    return str(uuid.UUID(int=_random.getrandbits(128), version=4))
