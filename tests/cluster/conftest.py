"""Multi-process cluster harness: swimraft agent processes on 127.0.0.1, read line by line.

Every process is started in its own process group and killed at teardown, whatever happened.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import pytest

from swimraft.agent import loopback_env


@dataclass
class Agent:
    """One `python -m swimraft.agent` process and the events it printed."""

    node_id: str
    proc: subprocess.Popen
    events: "queue.Queue[dict]" = field(default_factory=queue.Queue)
    history: List[dict] = field(default_factory=list)
    ready: Optional[dict] = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def drain(self) -> None:
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return
            if event.get("event") == "ready":
                self.ready = event
            self.history.append(event)

    def saw(self, state: str, node: str, since: float = 0.0) -> bool:
        self.drain()
        return any(e.get("event") == state and e.get("node") == node and e["_rx"] >= since for e in self.history)

    def last_status(self) -> Optional[dict]:
        self.drain()
        for e in reversed(self.history):
            if e.get("event") == "status":
                return e
        return None


class Cluster:
    """Starts, kills and restarts agent processes; cleans everything up."""

    def __init__(self, tmp_path) -> None:
        self.tmp_path = tmp_path
        self.agents: Dict[str, Agent] = {}
        self.everything: List[subprocess.Popen] = []

    def start(self, node_id: str, port: int = 0, seeds: str = "", preset: str = "lan",
              extra_env: Optional[Dict[str, str]] = None, raft_port: int = 0,
              raft_voters: Optional[str] = None) -> Agent:
        env = loopback_env(node_id, data_dir=str(self.tmp_path), swim_port=port, seeds=seeds,
                           cluster_name="cluster-test", preset=preset, status_interval=0.25,
                           raft_port=raft_port, raft_voters=raft_voters)
        env.update(extra_env or {})
        proc = subprocess.Popen(
            [sys.executable, "-m", "swimraft.agent"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.everything.append(proc)
        agent = Agent(node_id=node_id, proc=proc)

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                event["_rx"] = time.time()
                agent.events.put(event)

        threading.Thread(target=read, daemon=True).start()
        self.agents[node_id] = agent
        deadline = time.time() + 20
        while agent.ready is None and time.time() < deadline:
            agent.drain()
            if proc.poll() is not None:
                err = proc.stderr.read() if proc.stderr else ""
                raise AssertionError(f"{node_id} exited with {proc.returncode}: {err}")
            time.sleep(0.02)
        assert agent.ready is not None, f"{node_id} did not become ready"
        return agent

    def kill9(self, node_id: str) -> float:
        agent = self.agents[node_id]
        os.kill(agent.pid, signal.SIGKILL)
        agent.proc.wait(timeout=10)
        return time.time()

    def survivors(self, excluding: str) -> List[Agent]:
        return [a for n, a in self.agents.items() if n != excluding and a.proc.poll() is None]

    def wait(self, predicate, timeout: float, what: str) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        assert predicate(), f"timed out after {timeout}s waiting for {what}"

    def close(self) -> None:
        for proc in self.everything:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.time() + 5
        for proc in self.everything:
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.close()
