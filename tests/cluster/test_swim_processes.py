"""Five node processes with the LAN preset: SIGKILL one by PID, every survivor marks it failed;
restart it with the same node id and port, every node sees it alive again."""

from __future__ import annotations

import time


def _sees_all_alive(agent, names) -> bool:
    status = agent.last_status()
    return status is not None and sorted(status["alive"]) == sorted(n for n in names if n != agent.node_id)


def test_kill9_is_detected_and_the_restarted_node_rejoins(cluster):
    names = [f"p{i}" for i in range(5)]
    first = cluster.start(names[0])
    seed = first.ready["swim_addr"]
    for name in names[1:]:
        cluster.start(name, seeds=seed)
    cluster.wait(lambda: all(_sees_all_alive(a, names) for a in cluster.agents.values()), 30, "convergence")

    victim = "p3"
    victim_port = int(cluster.agents[victim].ready["swim_addr"].rsplit(":", 1)[1])
    killed_at = cluster.kill9(victim)
    survivors = cluster.survivors(excluding=victim)
    assert len(survivors) == 4
    cluster.wait(lambda: all(a.saw("failed", victim, since=killed_at) for a in survivors), 30,
                 "every survivor to mark p3 failed")
    # Nobody else was suspected or failed during the run.
    for a in survivors:
        others = [e for e in a.history if e.get("event") in ("suspected", "failed") and e.get("node") != victim]
        assert not others, f"{a.node_id} wrongly suspected: {others}"

    restarted_at = time.time()
    cluster.start(victim, port=victim_port, seeds=seed)
    cluster.wait(lambda: all(a.saw("alive", victim, since=restarted_at) for a in survivors), 30,
                 "every survivor to see p3 alive again")
    cluster.wait(lambda: _sees_all_alive(cluster.agents[victim], names), 30, "p3 to see everyone")
    cluster.wait(lambda: all(_sees_all_alive(a, names) for a in survivors), 30, "full view everywhere")


def test_graceful_stop_is_seen_as_left(cluster):
    names = ["g0", "g1", "g2"]
    first = cluster.start(names[0], preset="local")
    for name in names[1:]:
        cluster.start(name, seeds=first.ready["swim_addr"], preset="local")
    cluster.wait(lambda: all(_sees_all_alive(a, names) for a in cluster.agents.values()), 30, "convergence")
    leaver = cluster.agents["g2"]
    import os
    import signal

    stopped_at = time.time()
    os.kill(leaver.pid, signal.SIGTERM)
    assert leaver.proc.wait(timeout=10) == 0
    rest = cluster.survivors(excluding="g2")
    cluster.wait(lambda: all(a.saw("left", "g2", since=stopped_at) for a in rest), 20, "left events")
    assert not any(a.saw("failed", "g2", since=stopped_at) for a in rest), "a leave must not be reported as a failure"
