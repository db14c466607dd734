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
    assert len(set(batch)) == len(batch)
    assert all(first < later for later in batch)


def test_callers_seeding_random_does_not_repeat_ids():
    random.seed(7)
    a = new_work_id()
    random.seed(7)
    b = new_work_id()
    assert _random_part(a) != _random_part(b)


def test_a_forked_child_does_not_repeat_its_parents_ids():
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave without running pytest's cleanup
        try:
            os.write(write_end, new_work_id().encode())
        finally:
            os._exit(0)
    os.close(write_end)
    parent_id = new_work_id()
    with os.fdopen(read_end, "rb") as pipe:
        child_id = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(child_id) == 32
    # Without the re-seed at fork both draw the same bits from the same generator state.
    assert _random_part(child_id) != _random_part(parent_id)
