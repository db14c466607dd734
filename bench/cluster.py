"""A local cluster of one system's members on 127.0.0.1, and what each
member has said about the others.

Every stdout line of every member is parsed by the system adapter in the
member's reader thread and timestamped there with time.time().  Membership
events are kept in ``events`` (observer, subject, kind, t) and fold into
``views`` (what each observer currently believes of each other member), which
is what "converged" is judged on.  Status snapshots (JSON agents) replace the
observer's view.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass

from adapters.base import (ALIVE, FAILED, LEFT, SUSPECTED, Adapter, MemberProcess,
                           MemberSpec, cpu_seconds, kill_group, rss_kib)


@dataclass
class Event:
    t: float          # harness receive time
    observer: str
    subject: str
    kind: str
    generation: int   # observer's incarnation (restart count)


def free_ports(count: int, avoid: set[int] | None = None) -> list[int]:
    """Distinct ports free for both TCP and UDP on 127.0.0.1 right now."""
    avoid = set(avoid or ())
    out: list[int] = []
    held = []
    try:
        for _ in range(count * 20):
            if len(out) == count:
                break
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                t.close()
                u.close()
                continue
            held += [t, u]
            if port not in avoid and port not in out:
                out.append(port)
    finally:
        for s in held:
            s.close()
    if len(out) < count:
        raise RuntimeError("could not find enough free ports")
    return out


class Cluster:
    def __init__(self, adapter: Adapter, size: int, workdir: str, say=print) -> None:
        self.adapter = adapter
        self.size = size
        self.workdir = workdir
        self.say = say
        ports = free_ports(2 * size)
        self.specs: list[MemberSpec] = []
        for i in range(size):
            name = f"m{i}"
            data_dir = os.path.join(workdir, name)
            os.makedirs(data_dir, exist_ok=True)
            self.specs.append(MemberSpec(i, name, ports[i], ports[size + i], data_dir,
                                         os.path.join(workdir, f"{name}.log")))
        self.by_name = {s.name: s for s in self.specs}
        self.procs: dict[str, MemberProcess | None] = {s.name: None for s in self.specs}
        self.down: set[str] = set(self.by_name)      # killed or not started
        self.generation = {s.name: 0 for s in self.specs}
        self.cond = threading.Condition()
        self.events: list[Event] = []
        self.views: dict[str, dict[str, str]] = {s.name: {} for s in self.specs}
        self.statuses: list[dict] = []
        self.ready_infos: dict[str, dict] = {}
        self.unmapped_subjects = 0
        self._all_procs: list[MemberProcess] = []

    # ----------------------------------------------------------- output
    def _on_line(self, mp: MemberProcess, t: float, line: str) -> None:
        parsed = self.adapter.parse(line)
        if not parsed:
            return
        obs = mp.spec.name
        with self.cond:
            current = mp.generation == self.generation[obs]
            for p in parsed:
                if p.what == "ready":
                    mp.ready_info = p.info
                    self.ready_infos[obs] = p.info
                    mp.ready.set()
                elif p.what == "event":
                    subj = self.adapter.subject_to_name(p.subject, self.specs)
                    if subj is None:
                        self.unmapped_subjects += 1
                        continue
                    if subj == obs:
                        continue
                    self.events.append(Event(t, obs, subj, p.kind, mp.generation))
                    if p.kind == SUSPECTED and not self.adapter.suspicion_in_view:
                        continue
                    if current:
                        self.views[obs][subj] = p.kind
                elif p.what == "status" and current:
                    view = {}
                    for kind, key in ((ALIVE, "alive"), (SUSPECTED, "suspected"),
                                      (FAILED, "failed"), (LEFT, "left")):
                        for raw in p.info.get(key) or []:
                            n = self.adapter.subject_to_name(str(raw), self.specs)
                            if n and n != obs:
                                view[n] = kind
                    self.views[obs] = view
                    if len(self.statuses) < 200000:
                        self.statuses.append(p.info)
            self.cond.notify_all()

    # ----------------------------------------------------------- lifecycle
    def seeds(self) -> list[MemberSpec]:
        return [self.specs[i] for i in self.adapter.seed_indexes if i < self.size]

    def _spawn(self, name: str) -> MemberProcess:
        spec = self.by_name[name]
        argv, env = self.adapter.command(spec, self.seeds())
        with self.cond:
            self.generation[name] += 1
            self.views[name] = {}
        mp = MemberProcess(spec, self.generation[name], argv, env, self._on_line)
        with self.cond:
            self.procs[name] = mp
            self.down.discard(name)
            self._all_procs.append(mp)
        if self.adapter.ready_on_start:
            mp.ready.set()
        return mp

    def _wait_ready(self, mps: list[MemberProcess], timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        missing = []
        for mp in mps:
            while not mp.ready.is_set() and mp.alive() and time.monotonic() < deadline:
                mp.ready.wait(0.2)
            if not mp.ready.is_set() or not mp.alive():
                missing.append(mp.spec.name)
        return missing

    def start(self, ready_timeout: float = 60.0) -> None:
        """Start the seed(s), then everyone else; raise if one never gets ready."""
        first = [s.name for s in self.specs if s.index == 0]
        mps = [self._spawn(n) for n in first]
        missing = self._wait_ready(mps, ready_timeout)
        if missing:
            raise RuntimeError(f"member(s) not ready: {missing}; see logs in {self.workdir}")
        rest = [self._spawn(s.name) for s in self.specs if s.index != 0]
        missing = self._wait_ready(rest, ready_timeout)
        if missing:
            raise RuntimeError(f"member(s) not ready: {missing}; see logs in {self.workdir}")

    def live(self) -> list[str]:
        return [s.name for s in self.specs if s.name not in self.down]

    def kill(self, name: str) -> float:
        """SIGKILL a member by PID; returns the kill time."""
        mp = self.procs[name]
        with self.cond:
            self.down.add(name)
        t = mp.sigkill()
        try:
            mp.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        with self.cond:
            self.views[name] = {}
        return t

    def restart(self, name: str, ready_timeout: float = 60.0) -> bool:
        old = self.procs.get(name)
        if old is not None:
            kill_group(old.proc)
        mp = self._spawn(name)
        return not self._wait_ready([mp], ready_timeout)

    def stop_all(self, grace: float = 3.0) -> None:
        """SIGTERM every member's group, wait up to ``grace``, then SIGKILL."""
        mps = [mp for mp in self._all_procs if mp is not None]
        for mp in mps:
            if mp.alive():
                try:
                    os.killpg(mp.pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    pass
        deadline = time.monotonic() + grace
        for mp in mps:
            try:
                mp.proc.wait(timeout=max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for mp in mps:
            mp.stop(grace=0)
            mp.close_log()
        with self.cond:
            self.down = set(self.by_name)

    # ----------------------------------------------------------- queries
    def crashed(self) -> list[str]:
        """Members that should be running but whose process has exited."""
        return [n for n in self.live() if self.procs[n] is None or not self.procs[n].alive()]

    def _converged(self) -> bool:
        live = self.live()
        for o in live:
            mp = self.procs[o]
            if mp is None or not mp.alive():
                return False
            v = self.views[o]
            for s in live:
                if s != o and v.get(s) != ALIVE:
                    return False
        return True

    def not_converged_detail(self) -> str:
        with self.cond:
            live = self.live()
            bad = []
            for o in live:
                miss = [f"{s}:{self.views[o].get(s, '?')}" for s in live
                        if s != o and self.views[o].get(s) != ALIVE]
                if miss:
                    bad.append(f"{o} sees {','.join(miss[:6])}{'...' if len(miss) > 6 else ''}")
            crashed = self.crashed()
        out = "; ".join(bad[:5]) + (" ..." if len(bad) > 5 else "")
        if crashed:
            out += f"; exited: {crashed}"
        return out

    def wait_until(self, pred, timeout: float, poll: float = 0.2) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                if pred():
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(poll, left))

    def wait_converged(self, timeout: float) -> bool:
        """Wait until every live member sees every other live member alive;
        False on timeout or as soon as a live member's process has exited."""
        crashed = []

        def done():
            if self.crashed():
                crashed.append(True)
                return True
            return self._converged()

        return self.wait_until(done, timeout) and not crashed

    def first_times(self, subject: str, kinds: tuple, after: float,
                    observers: list[str]) -> dict[str, float]:
        """Per observer, the first time (>= after) it reported ``subject`` with
        one of ``kinds``.  Call with or without the lock held."""
        obs = set(observers)
        out: dict[str, float] = {}
        with self.cond:
            for e in self.events:
                if e.t >= after and e.subject == subject and e.kind in kinds \
                        and e.observer in obs and e.observer not in out:
                    out[e.observer] = e.t
        return out

    def events_between(self, t0: float, t1: float) -> list[Event]:
        with self.cond:
            return [e for e in self.events if t0 <= e.t <= t1]

    def pids(self) -> dict[int, str]:
        with self.cond:
            return {mp.pid: n for n, mp in self.procs.items()
                    if mp is not None and n not in self.down}

    def rss(self) -> dict[str, int]:
        out = {}
        for pid, name in self.pids().items():
            v = rss_kib(pid)
            if v is not None:
                out[name] = v
        return out

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by each live member (with its children)."""
        out = {}
        for pid, name in self.pids().items():
            v = cpu_seconds(pid)
            if v is not None:
                out[name] = v
        return out

    def member_ports(self) -> dict[int, str]:
        return {s.port: s.name for s in self.specs}
