"""A membership node as a process: ``python -m swimraft.agent`` (or ``swimraft node``).

Configured by ``RINGRIFT_*`` variables only. Prints JSON lines on stdout, flushed:

* ``{"event": "ready", "node", "swim_addr", "probe_period_ms", "pid", "ts"}`` once started;
* ``{"event": "alive"|"suspected"|"failed"|"left", "node", "ts"}`` per transition of another member;
* ``{"event": "status", "alive": [...], "suspected": [...], "failed": [...], "left": [...], "ts"}``
  every ``SWIMRAFT_AGENT_STATUS_INTERVAL`` seconds (default 1), with a ``raft`` object
  (``is_leader``, ``leader_id``, ``term``, ``applied_index``, ...) when Raft is enabled.

SIGTERM or SIGINT leaves the cluster gracefully and exits 0. Used by the multi-process tests,
the benchmark and ``swimraft demo``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from typing import Any, Dict, Optional

from .coordinator import HybridCoordinator
from .errors import SwimraftError


def loopback_env(
    node_id: str,
    *,
    data_dir: str,
    swim_port: int = 0,
    seeds: str = "",
    cluster_name: str = "swimraft-local",
    preset: str = "lan",
    status_interval: float = 1.0,
    raft_port: int = 0,
    raft_voters: Optional[str] = None,
) -> Dict[str, str]:
    """The environment of an agent process bound to and advertising 127.0.0.1 only: the
    current environment without any ``RINGRIFT_*`` variable, plus this node's. The node runs
    SWIM; with ``raft_voters`` (``id=host:port,...``) it runs Raft on ``raft_port`` instead
    (SWIM off, membership from the heartbeat view). Data lives in ``data_dir/node_id``. Used by
    ``swimraft demo``, the multi-process tests and the benchmarks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGRIFT_")}
    env.update(
        RINGRIFT_NODE_ID=node_id,
        RINGRIFT_SWIM_ENABLED="true",
        RINGRIFT_MEMBERSHIP_MODE="swim",
        RINGRIFT_BIND_HOST="127.0.0.1",
        RINGRIFT_ADVERTISE_HOST="127.0.0.1",
        RINGRIFT_SWIM_PORT=str(swim_port),
        RINGRIFT_RAFT_PORT=str(raft_port),
        RINGRIFT_SWIM_SEEDS=seeds,
        RINGRIFT_CLUSTER_NAME=cluster_name,
        RINGRIFT_PRESET=preset,
        RINGRIFT_DATA_DIR=os.path.join(data_dir, node_id),
        SWIMRAFT_AGENT_STATUS_INTERVAL=str(status_interval),
    )
    if raft_voters is not None:
        env.update(
            RINGRIFT_SWIM_ENABLED="false",
            RINGRIFT_MEMBERSHIP_MODE="http",
            RINGRIFT_RAFT_ENABLED="true",
            RINGRIFT_CONSENSUS_MODE="raft",
            RINGRIFT_RAFT_VOTERS=raft_voters,
        )
    return env


def _emit(record: Dict[str, Any]) -> None:
    record["ts"] = time.time()
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


async def run() -> int:
    coord = HybridCoordinator(
        on_member_event=lambda node, state: _emit({"event": state, "node": node}),
    )
    await coord.start()
    status = coord.get_status()
    _emit(
        {
            "event": "ready",
            "node": coord.node_id,
            "swim_addr": status["swim"]["advertised_addr"],
            "raft_addr": status["raft"]["raft_address"],
            "probe_period_ms": coord.config.get("membership", "timing")["probe_period_ms"],
            "pid": os.getpid(),
        }
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    interval = float(os.environ.get("SWIMRAFT_AGENT_STATUS_INTERVAL", "1"))
    while not stop.is_set():
        members = coord.get_members()
        by_state: Dict[str, Any] = {"alive": [], "suspected": [], "failed": [], "left": []}
        for m in members:
            by_state.setdefault(m["state"], []).append(m["node_id"])
        record: Dict[str, Any] = {"event": "status", **by_state}
        raft = coord.get_status()["raft"]
        if raft["enabled"]:
            record["raft"] = {k: raft[k] for k in ("is_leader", "leader_id", "term", "applied_index",
                                                    "last_log_index", "voters")}
        _emit(record)
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except asyncio.TimeoutError:
            pass
    await coord.stop()
    _emit({"event": "stopped", "node": coord.node_id})
    return 0


def main() -> int:
    try:
        return asyncio.run(run())
    except SwimraftError as exc:
        sys.stderr.write(f"swimraft agent: {type(exc).__name__}: {exc}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
