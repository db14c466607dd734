"""Three Raft voter processes; a client node in this process writes continuously; SIGKILL the
leader (or a follower) by PID; a new leader takes over; every acknowledged write is on every
node's SQLite state afterwards (read from the files themselves); the killed node restarts from
its data directory and catches up; no work item is ever claimed twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import time

import pytest

import swimraft


def raft_of(agent):
    status = agent.last_status()
    return None if status is None else status.get("raft")


def leader_name(cluster):
    """The leader that a majority of the live voters currently name, if any. (`is_leader`
    itself turns false whenever the quorum acknowledgement is older than the minimum election
    timeout, which a loaded machine can briefly cause; the agreed leader id is steadier.)"""
    votes: dict = {}
    for agent in cluster.agents.values():
        if agent.proc.poll() is None:
            r = raft_of(agent)
            if r and r["leader_id"]:
                votes[r["leader_id"]] = votes.get(r["leader_id"], 0) + 1
    for name, count in votes.items():
        if count >= 2 and cluster.agents.get(name) is not None and cluster.agents[name].proc.poll() is None:
            return name
    return None


@pytest.mark.parametrize("victim_role", ["leader", "follower"])
async def test_kill9_loses_no_acknowledged_write(cluster, tmp_path, victim_role, free_ports):
    names = ["v0", "v1", "v2"]
    ports = dict(zip(names, free_ports(len(names))))
    voters = ",".join(f"{n}=127.0.0.1:{ports[n]}" for n in names)
    for n in names:
        cluster.start(n, raft_port=ports[n], raft_voters=voters)
    cluster.wait(lambda: leader_name(cluster) is not None, 20, "a leader")

    client = swimraft.HybridCoordinator(config=swimraft.Config(
        use_env=False, node_id="tester", raft_enabled=True, consensus_mode="raft", raft_voters=voters,
        bind_host="127.0.0.1", advertise_host="127.0.0.1", raft_port=0, cluster_name="cluster-test",
        data_dir=str(tmp_path / "tester")))
    assert await client.start()
    acked: list = []
    claims: list = []
    unknown = 0
    killed_at = None
    victim = None
    deadline = time.monotonic() + 60
    i = 0
    try:
        while time.monotonic() < deadline:
            i += 1
            try:
                acked.append(await client.work.add_async("job", work_id=f"k{i}", timeout=5))
                if i % 3 == 0:
                    item = await client.work.claim_next_async(f"worker-{i % 4}", timeout=5)
                    if item is not None:
                        claims.append(item["work_id"])
            except (swimraft.UnavailableError, swimraft.TimeoutError):
                unknown += 1
            if killed_at is None and len(acked) >= 100:
                cluster.wait(lambda: leader_name(cluster) is not None, 20, "an agreed leader")
                leader = leader_name(cluster)
                victim = leader if victim_role == "leader" else next(n for n in names if n != leader)
                killed_at = time.monotonic()
                cluster.kill9(victim)
            if killed_at is not None and len(acked) >= 250:
                break
        assert killed_at is not None and len(acked) >= 250, f"only {len(acked)} writes acknowledged"
        # The cluster kept serving: a new leader among the survivors when the leader died.
        survivors = [n for n in names if n != victim]
        cluster.wait(lambda: leader_name(cluster) in survivors, 20, "a leader among the survivors")
        # The client node reports the leader it writes to.
        await client.kv.set_async("probe", 1, timeout=5)
        assert client.get_status()["raft"]["leader_id"] == leader_name(cluster)

        # Restart the killed node from its data directory; it catches up.
        cluster.start(victim, raft_port=ports[victim], raft_voters=voters)
        target = max(raft_of(cluster.agents[n])["applied_index"] for n in survivors)
        cluster.wait(lambda: (raft_of(cluster.agents[victim]) or {}).get("applied_index", 0) >= target, 30,
                     f"{victim} to catch up to index {target}")
    finally:
        await client.stop()

    assert len(claims) == len(set(claims)), "a work item was claimed twice"
    # Writes in flight at the kill were retried on the new leader within their 5 s timeout.
    assert unknown == 0, f"{unknown} writes ended without a definite outcome"
    # Stop every node, then read what each one has on disk.
    for agent in cluster.agents.values():
        if agent.proc.poll() is None:
            os.kill(agent.pid, signal.SIGTERM)
            agent.proc.wait(timeout=10)
    for n in names:
        db = sqlite3.connect(str(tmp_path / n / "raft" / "state.db"))
        stored = {row[0] for row in db.execute("SELECT work_id FROM work_items")}
        db.close()
        missing = [w for w in acked if w not in stored]
        assert not missing, f"{n} lost {len(missing)} acknowledged writes, e.g. {missing[:5]}"
    print(f"{victim_role} killed: {len(acked)} acknowledged, {unknown} unknown outcomes, {len(claims)} claims")
