"""``swimraft demo``: a local cluster on loopback that shows membership at work.

Starts N node processes (``python -m swimraft.agent``) bound to 127.0.0.1 with the LAN preset,
waits until every node sees every other, kills one with SIGKILL, reports how long it took until
the first survivor suspected it and until every survivor marked it failed, restarts it under the
same node id and port, and shows it rejoin. Every process is stopped at the end.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Optional, Tuple

from .agent import loopback_env


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Node:
    def __init__(self, node_id: str, port: int, seeds: str, data_dir: str, preset: str) -> None:
        self.node_id = node_id
        self.port = port
        env = loopback_env(node_id, data_dir=data_dir, swim_port=port, seeds=seeds,
                           cluster_name="swimraft-demo", preset=preset, status_interval=0.5)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "swimraft.agent"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        self.lines: "queue.Queue[Tuple[float, dict]]" = queue.Queue()
        self.status: Optional[dict] = None
        self.seen: List[Tuple[float, dict]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.lines.put((time.time(), json.loads(line)))
            except ValueError:
                continue

    def pump(self) -> None:
        while True:
            try:
                at, event = self.lines.get_nowait()
            except queue.Empty:
                return
            if event.get("event") == "status":
                self.status = event
            else:
                self.seen.append((at, event))

    def first(self, kind: str, node: str, since: float) -> Optional[float]:
        self.pump()
        for at, event in self.seen:
            if at >= since and event.get("event") == kind and event.get("node") == node:
                return at
        return None

    def alive(self) -> List[str]:
        self.pump()
        return sorted(self.status["alive"]) if self.status else []

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass


def _wait(predicate, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def run_demo(nodes: int = 5, preset: str = "lan") -> int:
    """Runs the demo; returns a process exit code (0 when every step worked)."""
    nodes = max(3, min(nodes, 20))
    data_dir = tempfile.mkdtemp(prefix="swimraft-demo-")
    ports = [_free_udp_port() for _ in range(nodes)]
    seeds = f"127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}"
    names = [f"node-{i}" for i in range(nodes)]
    cluster: Dict[str, _Node] = {}
    ok = True
    try:
        print(f"starting {nodes} nodes on 127.0.0.1 (SWIM ports {ports[0]}..{ports[-1]}, preset {preset})")
        for name, port in zip(names, ports):
            cluster[name] = _Node(name, port, seeds, data_dir, preset)
        t0 = time.time()
        converged = _wait(lambda: all(len(n.alive()) == nodes - 1 for n in cluster.values()), 30)
        print(f"  membership converged: {converged} after {time.time() - t0:.2f}s "
              f"(each node sees {nodes - 1} alive peers)")
        ok &= converged

        victim = names[nodes // 2]
        survivors = [n for name, n in cluster.items() if name != victim]
        print(f"SIGKILL {victim} (pid {cluster[victim].proc.pid})")
        killed = time.time()
        cluster[victim].stop(signal.SIGKILL)
        cluster[victim].proc.wait(timeout=10)
        detected = _wait(lambda: all(n.first("failed", victim, killed) for n in survivors), 30)
        suspects = [t for t in (n.first("suspected", victim, killed) for n in survivors) if t]
        fails = [t for t in (n.first("failed", victim, killed) for n in survivors) if t]
        if suspects:
            print(f"  first survivor suspected it after {min(suspects) - killed:.2f}s")
        if detected:
            print(f"  every survivor marked it failed after {max(fails) - killed:.2f}s")
        else:
            print("  not every survivor marked it failed within 30s")
        ok &= detected

        print(f"restarting {victim} with the same node id and port")
        restarted = time.time()
        cluster[victim] = _Node(victim, ports[names.index(victim)], seeds, data_dir, preset)
        back = _wait(lambda: all(n.first("alive", victim, restarted) for n in survivors)
                     and len(cluster[victim].alive()) == nodes - 1, 30)
        print(f"  {victim} alive again everywhere: {back} after {time.time() - restarted:.2f}s")
        ok &= back
    finally:
        for node in cluster.values():
            node.stop()
        for node in cluster.values():
            try:
                node.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                node.stop(signal.SIGKILL)
        print("all nodes stopped")
    return 0 if ok else 1
