"""The replicated state through Python: a single-node Raft (the embedded default) and a
3-node cluster in one process on loopback, with sync and asyncio calls."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

import swimraft


async def wait_until(predicate, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return bool(predicate())


def raft_config(tmp_path, node_id: str, **extra) -> swimraft.Config:
    keys = dict(
        node_id=node_id,
        raft_enabled=True,
        consensus_mode="raft",
        bind_host="127.0.0.1",
        advertise_host="127.0.0.1",
        raft_port=0,
        preset="local",
        cluster_name="pytest-raft",
        data_dir=str(tmp_path / node_id),
    )
    keys.update(extra)
    return swimraft.Config(use_env=False, **keys)


@pytest.fixture
async def solo(tmp_path):
    leaders: list = []
    c = swimraft.HybridCoordinator(config=raft_config(tmp_path, "solo"), on_leader_change=leaders.append)
    assert await c.start()
    assert await wait_until(c.is_leader)
    c.leaders_seen = leaders  # type: ignore[attr-defined]
    yield c
    await c.stop()


async def test_work_item_lifecycle(solo):
    wid = solo.work.add("selfplay", priority=70, config={"board": "hex"})
    item = solo.work.get(wid)
    assert item["status"] == "pending" and item["priority"] == 70 and item["config"] == {"board": "hex"}
    claimed = solo.work.claim_next("gpu-1", capabilities=["selfplay"])
    assert claimed["work_id"] == wid and claimed["claimed_by"] == "gpu-1" and claimed["attempts"] == 1
    assert solo.work.claim_next("gpu-2") is None
    assert solo.work.start(wid, node_id="someone-else") is False  # not the claimant
    assert solo.work.start(wid, node_id="gpu-1") is True
    assert solo.work.complete(wid, {"games": 10}, node_id="gpu-1") is True
    assert solo.work.get(wid)["status"] == "completed"
    assert solo.work.get("no-such-id") is None
    assert solo.work.complete("no-such-id") is False
    stats = solo.work.stats()
    assert stats["completed"] == 1 and stats["total_added"] == 1
    assert solo.claim_work(solo.work.add("x")) is True


async def test_a_batch_of_equal_priority_items_is_claimed_in_list_order(solo):
    # One write: every item gets the same leader-assigned created_at, so the claim order falls
    # to the ids generated for them, which increase within a process even inside a millisecond.
    ids = await solo.work.add_batch_async([{"work_type": "burst", "priority": 5} for _ in range(100)])
    assert len({solo.work.get(wid)["created_at"] for wid in ids}) == 1
    claimed = [(await solo.work.claim_next_async("gpu-1"))["work_id"] for _ in ids]
    assert claimed == ids


async def test_async_forms_run_concurrently_and_errors_map(solo):
    ids = await asyncio.gather(*[solo.work.add_async("batch", priority=i % 100) for i in range(300)])
    assert len(set(ids)) == 300
    assert (await solo.work.stats_async())["pending"] == 300
    # Both forms raise the same class with the same engine kind.
    with pytest.raises(swimraft.InvalidArgumentError) as async_info:
        await solo.work.add_async(work_id=ids[0])
    with pytest.raises(swimraft.InvalidArgumentError) as sync_info:
        solo.work.add("x", priority=500)
    assert async_info.value.kind == sync_info.value.kind == "invalid_argument"
    # Values JSON cannot carry are refused in Python, naming the problem, by both forms.
    with pytest.raises(swimraft.InvalidArgumentError, match="JSON"):
        solo.kv.set("x", float("nan"))
    with pytest.raises(swimraft.InvalidArgumentError, match="JSON"):
        await solo.kv.set_async("x", float("inf"))
    with pytest.raises(swimraft.InvalidArgumentError, match="JSON"):
        solo.work.add("sets", config={"gpus": {1, 2}})
    assert solo.kv.get("x") is None
    with pytest.raises(swimraft.InvalidArgumentError):
        solo.work.get(ids[0], timeout=-1)
    # A request id makes a retried write idempotent.
    first = solo.work.add("idem", request_id="r-1")
    again = solo.work.add("idem", request_id="r-1")
    assert first == again


async def test_operations_started_in_one_loop_iteration_leave_together(solo):
    """The async forms hand everything one event-loop iteration started to the engine in one
    native call; each operation still gets its own outcome, one refused before it started
    (a bad timeout) among them, and one cancelled before it left is never sent."""
    native = solo._native
    sent: list = []

    class Spy:
        def __getattr__(self, name):
            return getattr(native, name)

        def submit_many(self, ops):
            sent.append([json.loads(op) for op, _token, _timeout in ops])
            return native.submit_many(ops)

    solo._native = Spy()
    try:
        results = await asyncio.gather(
            solo.work.add_async("together", work_id="t-1"),
            solo.kv.set_async("together", 1, timeout=-1),
            solo.kv.set_async("together", 2),
            solo.work.add_async("together", work_id="t-1"),  # the same id: one of the two is refused
            return_exceptions=True,
        )
        assert len(sent) == 1 and len(sent[0]) == 4
        assert isinstance(results[1], swimraft.InvalidArgumentError) and "timeout" in str(results[1])
        assert results[2] is None
        adds = sorted([results[0], results[3]], key=lambda r: isinstance(r, Exception))
        assert adds[0] == "t-1"
        assert isinstance(adds[1], swimraft.InvalidArgumentError) and "duplicate" in str(adds[1])
        assert solo.kv.get("together") == 2

        sent.clear()
        late = asyncio.ensure_future(solo.kv.set_async("cancelled-before-sending", 1))
        await asyncio.sleep(0)  # the task queues its write and waits; the send is scheduled after us
        late.cancel()
        with pytest.raises(asyncio.CancelledError):
            await late
        assert sent == []
        assert await solo.kv.get_async("cancelled-before-sending") is None
    finally:
        solo._native = native
    # After stop, an async call fails with the engine's shutdown error, like the sync form.
    await solo.stop()
    with pytest.raises(swimraft.ShutdownError):
        solo.kv.set("after-stop", 1)
    with pytest.raises(swimraft.ShutdownError):
        await solo.kv.set_async("after-stop", 1)


async def test_backpressure_refuses_then_force_bypasses(solo):
    for _ in range(10):
        solo.work.add_batch([{"work_type": "bp"} for _ in range(100)])
    solo.work.add("bp")  # 1001 pending
    with pytest.raises(swimraft.BackpressureError):
        solo.work.add("bp")
    assert solo.work.add("bp", force=True)
    with pytest.raises(swimraft.InvalidArgumentError):
        solo.work.add_batch([])


async def test_a_write_too_large_for_replication_is_refused_and_nothing_is_lost(solo):
    solo.kv.set("small", "kept")
    with pytest.raises(swimraft.InvalidArgumentError, match="limit of one write"):
        solo.kv.set("huge", "x" * (2 * 1024 * 1024))
    assert solo.kv.get("huge") is None
    assert solo.kv.get("small") == "kept"
    solo.kv.set("after", 1)  # the node keeps serving
    assert solo.kv.get("after") == 1


async def test_locks_kv_and_jobs(solo):
    t1 = solo.locks.acquire("model-upload")
    assert isinstance(t1, int)
    assert solo.locks.acquire("model-upload") == t1  # re-entrant for this node, same token
    assert solo.locks.acquire("model-upload", holder="worker-2") is None
    assert solo.locks.holder("model-upload")["holder"] == "solo"
    assert solo.locks.release("model-upload", holder="worker-2") is False
    assert await solo.locks.release_async("model-upload") is True
    t2 = await solo.locks.acquire_async("model-upload", holder="worker-2", ttl=5)
    assert t2 > t1, "fencing tokens strictly increase"

    solo.kv.set("cfg/lr", 0.01)
    await solo.kv.set_async("cfg/batch", 256)
    assert solo.kv.get("cfg/lr") == 0.01 and await solo.kv.get_async("cfg/batch") == 256
    assert solo.kv.compare_and_set("cfg/lr", 0.02, 1) is False
    assert solo.kv.compare_and_set("cfg/lr", 0.01, 0.001) is True
    assert solo.kv.list("cfg/") == {"cfg/batch": 256, "cfg/lr": 0.001}
    assert solo.kv.delete("cfg/lr") is True and solo.kv.delete("cfg/lr") is False

    assert solo.jobs.assign("job-1", "gpu-3", {"epochs": 2}) is True
    assert solo.jobs.start("job-1") is True
    assert [j["job_id"] for j in solo.jobs.for_node("gpu-3")] == ["job-1"]
    assert solo.jobs.complete("job-1", {"loss": 0.1}) is True
    assert solo.jobs.get("job-1")["status"] == "completed"
    assert solo.jobs.get("nope") is None


async def test_status_and_leader_callback(solo):
    st = solo.get_status()
    assert st["raft"]["is_leader"] and st["raft"]["leader_id"] == "solo" and st["raft"]["initialized"]
    assert st["hybrid_status"]["raft_fallback_active"] is False
    assert solo.get_leader_id() == "solo"
    assert await wait_until(lambda: "solo" in solo.leaders_seen)


def _raft_frame(cluster: str, kind: int, request_id: int, payload: bytes) -> bytes:
    # magic | version | cluster name length | name | kind | id (u64 BE) | length (u32 BE) | payload
    name = cluster.encode()
    return (b"SWRT" + bytes([1, len(name)]) + name + bytes([kind]) + request_id.to_bytes(8, "big")
            + len(payload).to_bytes(4, "big") + payload)


def _read_exact(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def _closed_without_answer(s: socket.socket) -> bool:
    try:
        return s.recv(100) == b""
    except ConnectionResetError:
        return True


async def test_the_raft_port_answers_or_refuses_each_kind_of_bad_input(solo):
    host, port = solo.get_status()["raft"]["raft_address"].rsplit(":", 1)
    addr = (host, int(port))
    # A well-formed frame of this cluster whose payload is not a Raft message: answered, on the
    # same connection, with the reason; the connection stays usable.
    with socket.create_connection(addr, timeout=5) as s:
        for request_id in (7, 8):
            s.sendall(_raft_frame("pytest-raft", 1, request_id, b"not json at all"))
            header = _read_exact(s, 4 + 2 + len("pytest-raft") + 1 + 8 + 4)
            assert header[:4] == b"SWRT" and header[6 + len("pytest-raft")] == 2  # a response
            assert int.from_bytes(header[-12:-4], "big") == request_id
            answer = json.loads(_read_exact(s, int.from_bytes(header[-4:], "big")))
            assert "malformed Raft message" in answer["Malformed"]
    assert solo.get_status()["raft"]["bad_frames"] == 0
    # Refused by closing that connection, each counted as a bad frame: an unknown frame kind,
    # a response sent as if it were a request, another cluster's frame, another protocol.
    refused = [_raft_frame("pytest-raft", 9, 1, b"{}"), _raft_frame("pytest-raft", 2, 1, b"{}"),
               _raft_frame("other-cluster", 1, 1, b"{}"), b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n"]
    for frame in refused:
        with socket.create_connection(addr, timeout=5) as s:
            s.sendall(frame)
            s.settimeout(5)
            assert _closed_without_answer(s)
    # Counted before the node closes the connection, so final once every close was seen.
    assert solo.get_status()["raft"]["bad_frames"] == len(refused)
    # A frame cut short by a disconnect is not an error of the peer's making to count.
    with socket.create_connection(addr, timeout=5) as s:
        s.sendall(_raft_frame("pytest-raft", 1, 1, b'{"read_index": null}')[:-5])
    assert solo.work.add("still-serving") is not None
    assert solo.get_status()["raft"]["bad_frames"] == len(refused)


async def test_bully_mode_says_where_the_queue_lives(tmp_path):
    c = swimraft.HybridCoordinator(config=raft_config(tmp_path, "bully", raft_enabled=False, consensus_mode="bully"))
    await c.start()
    try:
        with pytest.raises(swimraft.UnavailableError) as info:
            c.work.add("x")
        assert "bully" in str(info.value)
        assert c.is_leader() is False and c.get_leader_id() == ""
    finally:
        await c.stop()
    with pytest.raises(swimraft.ShutdownError):
        c.work.add("x")


async def test_three_nodes_in_one_process_forward_and_fail_over(tmp_path, free_ports):
    names = ["a", "b", "c"]
    ports = dict(zip(names, free_ports(len(names))))
    voters = ",".join(f"{n}=127.0.0.1:{ports[n]}" for n in names)
    nodes = [swimraft.HybridCoordinator(config=raft_config(tmp_path, n, raft_port=ports[n], raft_voters=voters))
             for n in names]
    await asyncio.gather(*[n.start() for n in nodes])
    try:
        assert await wait_until(lambda: sum(n.is_leader() for n in nodes) == 1)
        for i, n in enumerate(nodes):
            await n.work.add_async("fwd", work_id=f"w{i}")
        for n in nodes:
            assert (await n.work.stats_async())["pending"] == 3  # linearizable read everywhere
        # A write too large for one frame is refused by the follower it enters, with the reason,
        # instead of being forwarded, cutting the follower's connection to the leader and ending
        # as "may or may not have been applied" at the deadline.
        follower = next(n for n in nodes if not n.is_leader())
        with pytest.raises(swimraft.InvalidArgumentError, match="limit of one write"):
            await follower.work.add_async("huge", config={"blob": "x" * 70_000_000}, timeout=3)
        await follower.work.add_async("small", work_id="after-huge")
        leader = next(n for n in nodes if n.is_leader())
        await leader.stop()
        rest = [n for n in nodes if n is not leader]
        assert await wait_until(lambda: any(n.is_leader() for n in rest))
        await rest[0].work.add_async("after", work_id="after-failover")
        assert rest[1].work.get("after-failover")["status"] == "pending"
        assert rest[1].work.get("after-huge")["status"] == "pending"
    finally:
        for n in nodes:
            await n.stop()


async def test_the_leader_times_out_stale_claims_by_itself(solo):
    wid = solo.work.add("short", timeout_seconds=0.3, max_attempts=2)
    assert solo.work.claim(wid, "slow-worker")
    # No explicit check_timeouts call: the leader's own sweep requeues the claim.
    assert await wait_until(lambda: solo.work.get(wid)["status"] == "pending", timeout=10)
    item = solo.work.get(wid)
    assert item["error"] == "timeout" and item["claimed_by"] == ""
    assert solo.work.stats()["total_timeout"] == 1


async def test_a_voter_is_added_and_removed_at_run_time(tmp_path, free_ports):
    names = ["a", "b", "c"]
    ports = dict(zip(names + ["d"], free_ports(len(names) + 1)))
    voters = ",".join(f"{n}=127.0.0.1:{ports[n]}" for n in names)
    nodes = [swimraft.HybridCoordinator(config=raft_config(tmp_path, n, raft_port=ports[n], raft_voters=voters))
             for n in names]
    joiner = swimraft.HybridCoordinator(config=raft_config(tmp_path, "d", raft_port=ports["d"], raft_voters=voters,
                                                           raft_join=True))
    await asyncio.gather(*[n.start() for n in nodes + [joiner]])
    try:
        assert await wait_until(lambda: sum(n.is_leader() for n in nodes) == 1)
        nodes[0].kv.set("before", 1)
        with pytest.raises(swimraft.InvalidArgumentError):
            nodes[1].add_voter("d", "not-an-address")
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: nodes[1].add_voter("d", f"127.0.0.1:{ports['d']}", timeout=15))
        assert await wait_until(lambda: "d" in nodes[0].get_status()["raft"]["voters"])
        assert joiner.kv.get("before") == 1  # the new voter has the replicated state
        nodes[2].remove_voter("d")
        assert await wait_until(lambda: "d" not in nodes[0].get_status()["raft"]["voters"])
        nodes[0].kv.set("after", 2)
        assert nodes[2].kv.get("after") == 2
    finally:
        for n in nodes + [joiner]:
            await n.stop()
