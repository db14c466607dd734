"""Generated work ids: version-7 UUIDs, time-ordered, unique, fresh in a forked child."""

from __future__ import annotations

import os
import random
import time
import uuid

from swimraft.ids import new_work_id

# The 74 random bits of a version-7 id (everything but the time, version and variant).
_RANDOM_MASK = ((1 << 12) - 1) << 64 | ((1 << 62) - 1)


def _random_part(work_id: str) -> int:
    return int(work_id, 16) & _RANDOM_MASK


def test_ids_are_version_7_uuids_carrying_the_current_time():
    before = time.time_ns() // 1_000_000
    work_id = new_work_id()
    after = time.time_ns() // 1_000_000
    assert len(work_id) == 32 and work_id == work_id.lower()
    parsed = uuid.UUID(hex=work_id)
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert before <= int(work_id[:12], 16) <= after


def test_ids_sort_by_creation_time_and_do_not_repeat():
    first = new_work_id()
    time.sleep(0.005)
    batch = [new_work_id() for _ in range(20_000)]
    assert all(first < later for later in batch)
    # Strictly increasing, though thousands of them share a millisecond.
    assert all(a < b for a, b in zip(batch, batch[1:]))


def test_ids_of_one_millisecond_and_of_a_clock_stepped_back_keep_increasing(monkeypatch):
    import swimraft.ids as ids

    clock = {"ns": 1_800_000_000_000_000_000}
    monkeypatch.setattr(ids.time, "time_ns", lambda: clock["ns"])
    same_ms = [new_work_id() for _ in range(5_000)]
    clock["ns"] -= 10_000_000_000  # the wall clock steps back 10 s
    after_step = [new_work_id() for _ in range(100)]
    sequence = same_ms + after_step
    assert all(a < b for a, b in zip(sequence, sequence[1:]))
    for work_id in sequence:
        parsed = uuid.UUID(hex=work_id)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122


def test_callers_seeding_random_does_not_repeat_ids():
    random.seed(7)
    a = new_work_id()
    random.seed(7)
    b = new_work_id()
    assert _random_part(a) != _random_part(b)


def test_a_forked_child_does_not_repeat_its_parents_ids(wait_child):
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave without running pytest's cleanup
        try:
            os.write(write_end, new_work_id().encode())
        finally:
            os._exit(0)
    os.close(write_end)
    parent_id = new_work_id()
    # Reaped first (bounded): the 32 bytes wait in the pipe, and the read below cannot block
    # once the child, the last writer, has exited.
    assert wait_child(pid) == 0
    with os.fdopen(read_end, "rb") as pipe:
        child_id = pipe.read().decode()
    assert len(child_id) == 32
    # Without the re-seed at fork both draw the same bits from the same generator state.
    assert _random_part(child_id) != _random_part(parent_id)
