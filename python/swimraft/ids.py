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

Monotonic within a process (in the spirit of RFC 9562 §6.2, "monotonic random"): an id that
would not sort after the previous one — the same millisecond, which a burst of adds hits hundreds of times, or a clock
stepped back — is the previous one plus one in its 74 random bits instead (a carry moves into
the time field). Without it, items added in one millisecond got random relative order, and
every write of one Raft proposal shares the leader's ``created_at``, so claims would have
followed the ids' random bits rather than the order of the adds. Ids of different processes
in one millisecond have no defined order.
"""

from __future__ import annotations

import os
import random
import threading
import time

__all__ = ["new_work_id"]

_RANDOM_BITS = 74
_RANDOM_MASK = (1 << _RANDOM_BITS) - 1
_TIME_MASK = (1 << 48) - 1
_rng = random.Random(os.urandom(32))
_lock = threading.Lock()
# The previous id's time and random bits as one number: (ms << 74) | random.
_last = 0


def _reseed() -> None:
    # A forked child starts a sequence of its own: continuing the parent's (previous + 1)
    # would hand both processes the same next id within a millisecond.
    global _last, _lock
    _rng.seed(os.urandom(32))
    _last = 0
    _lock = threading.Lock()  # a lock held by another thread at fork() is never released here


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)


def new_work_id() -> str:
    """A new time-ordered work id: 32 hex digits, a version-7 UUID without dashes."""
    global _last
    fresh = (time.time_ns() // 1_000_000 & _TIME_MASK) << _RANDOM_BITS | _rng.getrandbits(_RANDOM_BITS)
    with _lock:
        _last = fresh if fresh > _last else _last + 1
        value = _last
    ms = value >> _RANDOM_BITS & _TIME_MASK
    r = value & _RANDOM_MASK
    rand_a = r >> 62  # 12 bits
    rand_b = r & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return f"{value:032x}"
