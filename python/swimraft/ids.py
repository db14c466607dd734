"""Work ids the library generates when the caller gives none: time-ordered UUIDs (version 7).

Why not ``uuid4``: ``work_id`` is the primary key of ``work_items``, a B-tree on every replica.
Random ids land on a random leaf page each, so every add dirties (and writes to the WAL, and
later checkpoints) a page of its own; ids that start with the creation time append at the end
of the index, where one page takes many adds. Measured on the 3-node benchmark (64 asyncio
clients, 8 alternating runs each): 6 % less CPU per operation and 7 % more operations per
second than with ``uuid4``. The ids also sort by creation time, so items of equal priority and
``created_at`` are claimed in the order they were added.

Layout (RFC 9562, UUIDv7), as 32 lowercase hex digits like ``uuid4().hex``: 48 bits of Unix
time in milliseconds, the version ``7``, 74 random bits around the two variant bits ``10``.
The random bits come from a private generator seeded from ``os.urandom``: no system call per
id (``uuid4`` makes one), unaffected by ``random.seed`` in the caller's code (two processes
seeded alike would otherwise collide), and re-seeded in a forked child, which would otherwise
repeat its parent's ids.
"""

from __future__ import annotations

import os
import random
import time

__all__ = ["new_work_id"]

_RANDOM_BITS = 74
_rng = random.Random(os.urandom(32))


def _reseed() -> None:
    _rng.seed(os.urandom(32))


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)


def new_work_id() -> str:
    """A new time-ordered work id: 32 hex digits, a version-7 UUID without dashes."""
    ms = time.time_ns() // 1_000_000 & ((1 << 48) - 1)
    r = _rng.getrandbits(_RANDOM_BITS)
    rand_a = r >> 62  # 12 bits
    rand_b = r & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return f"{value:032x}"
