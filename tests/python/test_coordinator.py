"""HybridCoordinator through Python on real loopback sockets: peers, callbacks on the
caller's loop, status shape, lifecycle errors and fork safety."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest

import swimraft


async def wait_until(predicate, timeout: float = 15.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return bool(predicate())


async def test_two_nodes_find_each_other_and_callbacks_run_on_the_loop(local_config):
    loop_thread = threading.get_ident()
    alive_seen: list = []
    failed_seen: list = []
    threads: set = set()

    def on_alive(node_id: str) -> None:
        threads.add(threading.get_ident())
        alive_seen.append(node_id)

    def on_failed(node_id: str) -> None:
        threads.add(threading.get_ident())
        failed_seen.append(node_id)

    a = swimraft.HybridCoordinator(
        config=local_config("py-a"), on_member_alive=on_alive, on_member_failed=on_failed
    )
    assert await a.start() is True
    assert await a.start() is True  # second start: no-op
    seed = a.get_status()["swim"]["advertised_addr"]
    b = swimraft.HybridCoordinator(config=local_config("py-b", swim_seeds=seed))
    assert await b.start()
    try:
        assert await wait_until(lambda: a.get_alive_peers() == ["py-b"] and b.get_alive_peers() == ["py-a"])
        assert a.is_peer_alive("py-b") and not a.is_peer_alive("py-a")
        assert await wait_until(lambda: alive_seen == ["py-b"])
        await b.stop()
        assert await wait_until(lambda: failed_seen == ["py-b"])
        assert a.get_alive_peers() == []
        assert threads == {loop_thread}, "callbacks must run on the loop that called start()"
    finally:
        await a.stop()
        await b.stop()


async def test_status_has_the_design_shape(local_config):
    c = swimraft.HybridCoordinator(config=local_config("shape"))
    await c.start()
    try:
        st = c.get_status()
        assert st["membership_mode"] == "swim" and st["consensus_mode"] == "bully"
        for key in ("enabled", "available", "started", "alive_count", "suspected_count", "failed_count"):
            assert key in st["swim"]
        for key in ("enabled", "available", "initialized", "is_leader", "leader_address", "leader_id",
                    "term", "work_queue_size", "pending_jobs"):
            assert key in st["raft"]
        assert st["hybrid_status"] == {
            "swim_fallback_active": False,
            "swim_fallback_reason": None,
            "raft_fallback_active": False,
            "raft_fallback_reason": None,
        }
        assert c.is_leader() is False and c.get_leader_id() == ""
        assert c.started and c.membership_mode == "swim" and c.consensus_mode == "bully"
    finally:
        await c.stop()
    assert not c.started


async def test_a_failing_callback_does_not_stop_delivery(local_config):
    calls: list = []

    def boom(node_id: str) -> None:
        calls.append(node_id)
        raise RuntimeError("user code failed")

    a = swimraft.HybridCoordinator(config=local_config("cb-a"), on_member_alive=boom)
    await a.start()
    seed = a.get_status()["swim"]["advertised_addr"]
    others = [swimraft.HybridCoordinator(config=local_config(f"cb-{i}", swim_seeds=seed)) for i in range(2)]
    for o in others:
        await o.start()
    try:
        assert await wait_until(lambda: sorted(calls) == ["cb-0", "cb-1"])
    finally:
        for o in others:
            await o.stop()
        await a.stop()


async def test_calls_after_stop_are_clear(local_config):
    c = swimraft.HybridCoordinator(config=local_config("after-stop", membership_mode="hybrid"))
    await c.start()
    c.record_heartbeat("old-node")
    assert c.get_alive_peers() == ["old-node"]
    await c.stop()
    await c.stop()  # idempotent
    with pytest.raises(swimraft.ShutdownError):
        await c.start()
    # A stopped node reports no peers, and heartbeats arriving later are ignored.
    assert c.get_alive_peers() == [] and not c.is_peer_alive("old-node")
    c.record_heartbeat("late-node")
    assert c.get_alive_peers() == []
    assert c.get_status()["lifecycle"] == "stopped"
    assert c.is_leader() is False and c.get_leader_id() == ""


async def test_hybrid_mode_falls_back_with_a_reason_when_swim_is_disabled(local_config):
    c = swimraft.HybridCoordinator(config=local_config("hyb", swim_enabled=False, membership_mode="hybrid"))
    assert await c.start() is True
    try:
        hs = c.get_status()["hybrid_status"]
        assert hs["swim_fallback_active"] is True
        assert "RINGRIFT_SWIM_ENABLED" in hs["swim_fallback_reason"]
        c.record_heartbeat("old-node")
        assert c.get_alive_peers() == ["old-node"]
    finally:
        await c.stop()


def test_node_id_comes_from_the_orchestrator(local_config):
    class Orchestrator:
        node_id = "orch-node"

    c = swimraft.HybridCoordinator(Orchestrator(), config=local_config("ignored"))
    assert c.node_id == "orch-node"
    c2 = swimraft.HybridCoordinator(Orchestrator(), node_id="explicit", config=local_config("x"))
    assert c2.node_id == "explicit"


def test_sync_start_without_a_loop_delivers_on_the_dispatcher_thread(local_config):
    seen: list = []
    a = swimraft.HybridCoordinator(config=local_config("sync-a"), on_member_alive=lambda n: seen.append((n, threading.current_thread().name)))
    a.start_blocking()
    seed = a.get_status()["swim"]["advertised_addr"]
    b = swimraft.HybridCoordinator(config=local_config("sync-b", swim_seeds=seed))
    b.start_blocking()
    try:
        deadline = time.monotonic() + 15
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen and seen[0][0] == "sync-b"
        assert seen[0][1].startswith("swimraft-events")
    finally:
        b.stop_blocking()
        a.stop_blocking()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_use_after_fork_is_a_clear_error(local_config, wait_child):
    swimraft.Config(use_env=False)  # initialize the engine in this process
    pid = os.fork()
    if pid == 0:  # child: must raise, not hang
        code = 1
        try:
            swimraft.Config(use_env=False)
        except swimraft.ShutdownError as exc:
            code = 0 if "fork" in str(exc) else 3
        except BaseException:
            code = 2
        os._exit(code)
    assert wait_child(pid) == 0


# A program that exits without stopping its coordinator, while the completion and event threads
# wait inside the engine, and whose interpreter takes a while to finalize.
_EXIT_WITHOUT_STOP = r"""
import asyncio, sys, time
import swimraft

async def main():
    c = swimraft.HybridCoordinator(config=swimraft.Config(
        use_env=False, node_id="exits", raft_enabled=True, consensus_mode="raft", raft_port=0,
        bind_host="127.0.0.1", advertise_host="127.0.0.1", preset="local",
        cluster_name="exit-test", data_dir=sys.argv[1]))
    await c.start()
    await c.kv.set_async("k", 1, timeout=30)  # waits for the election; the completion thread runs from here on
    return c

coord = asyncio.run(main())

class SlowFinalization:
    def __del__(self):
        time.sleep(0.6)  # longer than either thread's wait: they wake while the interpreter finalizes

keep = SlowFinalization()
print("set", coord.kv.get("k", stale_ok=True), flush=True)
"""


def test_exiting_without_stop_ends_cleanly(tmp_path):
    """The helper threads return at exit instead of being ended by the finalizing interpreter,
    which aborted the process (exit status 134, "FATAL: exception not rethrown")."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _EXIT_WITHOUT_STOP, str(tmp_path / "data")],
                          capture_output=True, text=True, timeout=60)
    assert "set 1" in done.stdout, done.stderr
    assert "FATAL" not in done.stderr
    assert done.returncode == 0, done.stderr
