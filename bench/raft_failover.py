"""Raft failover: time from SIGKILL of the leader to the first write acknowledged by a survivor.

    python bench/raft_failover.py                    # swimraft + pysyncobj (defaults, 0.5-2.0 s), 30 trials
    python bench/raft_failover.py --trials 20 --systems swimraft
    python bench/raft_failover.py --quick            # 3 trials each, smoke run

Three voter processes on 127.0.0.1 per system. A writer proposes one small write every
``--write-period`` (5 ms), open loop, each with ``--write-timeout`` (1 s) and never waiting for the
previous one, so a write is always being proposed. For each trial the harness SIGKILLs the leader by
PID at ``t_kill`` and measures ``failover = t_ack - t_kill`` for the first write *proposed after the
kill* that is acknowledged (writes proposed before it could have been committed by the dead leader).
Then it restarts the killed node from its data directory, waits until it has applied everything
the leader had applied when it came back ("caught up"), and goes on. Every ``--restart-kill-every``
trial (default: every second one) kills the leader 0.1-1.0 s after that catch-up ("after restart");
the others wait 1.5-3 s ("settled").

* swimraft: ``python -m swimraft.agent`` voters (LAN preset); the writer is a non-voter client
  (``HybridCoordinator``, node id ``bench-client``) in this process, ``kv.set_async``.
* pysyncobj: ``bench/agents/pysyncobj_node.py`` (``SyncObj`` + ``ReplDict``, in-memory log); it has
  no client-only mode, so the writer runs in every node's own process (``ReplDict.set`` with a
  callback through that node); a write counts when a surviving node acknowledges it. Two
  configurations: library defaults (election timeout 0.4-1.4 s) and the orchestrator's
  ``raftMinTimeout=0.5, raftMaxTimeout=2.0``.

Leader changes are counted from the nodes' status lines (every 0.1 s): a new (term, leader) pair.
Each kill should cause exactly one; more are reported as extra. Results: a table on stdout,
``bench/results/raft_failover.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import raft_common as rc  # noqa: E402

say = rc.say


class AckLog:
    """Every write outcome: (t_submit, t_done, ok, kind, via), in the order they were reported."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.recs: List[Tuple[float, float, bool, str, str]] = []
        self.last_ok = 0.0
        self.inflight: Dict[str, int] = {}

    def add(self, t0: float, t1: float, ok: bool, kind: str, via: str) -> None:
        with self.lock:
            if len(self.recs) < 3_000_000:
                self.recs.append((t0, t1, ok, kind, via))
            if ok and t1 > self.last_ok:
                self.last_ok = t1

    def mark(self) -> int:
        with self.lock:
            return len(self.recs)

    def since(self, idx: int) -> List[Tuple[float, float, bool, str, str]]:
        with self.lock:
            return self.recs[idx:]


# -- swimraft -------------------------------------------------------------------------------------

class SwimraftWriter(threading.Thread):
    """A non-voter client in this process proposing ``kv.set_async`` open loop."""

    def __init__(self, voters: str, data_dir: str, acks: AckLog, period: float, timeout: float,
                 max_inflight: int) -> None:
        super().__init__(daemon=True, name="swimraft-writer")
        self.voters, self.data_dir, self.acks = voters, data_dir, acks
        self.period, self.timeout, self.max_inflight = period, timeout, max_inflight
        self.stop_evt = threading.Event()
        self.started_evt = threading.Event()
        self.error: Optional[str] = None
        self.inflight = 0
        self.skipped = 0

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as exc:
            self.error = repr(exc)
            say("swimraft writer failed:", self.error)
        finally:
            self.started_evt.set()

    async def _main(self) -> None:
        import swimraft
        coord = swimraft.HybridCoordinator(config=swimraft.Config(
            use_env=False, node_id="bench-client", raft_enabled=True, consensus_mode="raft",
            raft_voters=self.voters, bind_host="127.0.0.1", advertise_host="127.0.0.1", raft_port=0,
            cluster_name="bench", data_dir=self.data_dir))
        await coord.start()
        self.started_evt.set()
        tasks: set = set()
        seq = 0

        async def one(key: str, value: int) -> None:
            t0 = time.monotonic()
            try:
                await coord.kv.set_async(key, value, timeout=self.timeout)
                self.acks.add(t0, time.monotonic(), True, "ok", "client")
            except Exception as exc:  # every outcome is recorded; the writer goes on
                self.acks.add(t0, time.monotonic(), False, type(exc).__name__, "client")
            finally:
                self.inflight -= 1

        try:
            next_t = time.monotonic()
            while not self.stop_evt.is_set():
                now = time.monotonic()
                if now < next_t:
                    await asyncio.sleep(next_t - now)
                    continue
                next_t = max(next_t + self.period, now - self.period)
                if self.inflight >= self.max_inflight:
                    self.skipped += 1
                    continue
                seq += 1
                self.inflight += 1
                task = asyncio.ensure_future(one(f"w{seq % 100}", seq))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        finally:
            if tasks:
                await asyncio.wait(list(tasks), timeout=self.timeout + 2.0)
            await coord.stop()


class SwimraftCluster:
    label = "swimraft"

    def __init__(self, workdir: str, procs: rc.Procs, tracker: rc.LeaderTracker, acks: AckLog,
                 args: argparse.Namespace) -> None:
        self.workdir, self.tracker, self.acks, self.args = workdir, tracker, acks, args
        ports = rc.free_ports(3)
        self.voters = rc.voters_spec(ports)
        self.nodes: List[rc.NodeProc] = []
        hook = rc.swimraft_status_hook(tracker)
        for i, port in enumerate(ports):
            data = os.path.join(workdir, f"v{i}")
            os.makedirs(data, exist_ok=True)
            env = rc.swimraft_agent_env(f"v{i}", port, self.voters, workdir)
            self.nodes.append(procs.add(rc.NodeProc(f"v{i}", [sys.executable, "-m", "swimraft.agent"], env,
                                                    workdir, on_line=hook)))
        self.writer: Optional[SwimraftWriter] = None
        self.config = {"preset": "lan", "raft_timing": rc.swimraft_raft_timing(),
                       "writer": "non-voter client in the bench process (kv.set_async)"}

    def start(self) -> None:
        for n in self.nodes:
            n.start()

    def start_writer(self) -> None:
        cdir = os.path.join(self.workdir, "client")
        os.makedirs(cdir, exist_ok=True)
        self.writer = SwimraftWriter(self.voters, cdir, self.acks, self.args.write_period,
                                     self.args.write_timeout, self.args.max_inflight)
        self.writer.start()
        self.writer.started_evt.wait(30)
        if self.writer.error:
            raise RuntimeError(f"swimraft writer: {self.writer.error}")

    def writer_ok(self) -> Optional[str]:
        if self.writer is not None and self.writer.error:
            return self.writer.error
        return None

    def leader(self) -> Tuple[Optional[rc.NodeProc], int]:
        node, lid = rc.status_leader(self.nodes, "leader_id", "is_leader", sub="raft")
        if node is None or node.name != lid:
            return None, 0
        return node, int(node.last_status["raft"]["term"])

    def applied(self, node: rc.NodeProc) -> int:
        st = node.last_status or {}
        return int((st.get("raft") or {}).get("applied_index") or 0)

    def knows_leader(self, node: rc.NodeProc) -> bool:
        st = node.last_status or {}
        return bool((st.get("raft") or {}).get("leader_id"))

    def after_restart(self, node: rc.NodeProc) -> None:
        pass

    def stop(self) -> None:
        if self.writer is not None:
            self.writer.stop_evt.set()
            self.writer.join(timeout=self.args.write_timeout + 10)


# -- pysyncobj -----------------------------------------------------------------------------------

class PysyncobjCluster:
    def __init__(self, label: str, conf: Dict[str, Any], workdir: str, procs: rc.Procs,
                 tracker: rc.LeaderTracker, acks: AckLog, args: argparse.Namespace) -> None:
        self.label, self.conf = label, conf
        self.workdir, self.tracker, self.acks, self.args = workdir, tracker, acks, args
        ports = rc.free_ports(3)
        self.addrs = [f"127.0.0.1:{p}" for p in ports]
        self.by_addr: Dict[str, rc.NodeProc] = {}
        self.nodes: List[rc.NodeProc] = []

        def on_acks(node: rc.NodeProc, t: float, rec: Dict[str, Any]) -> None:
            if rec.get("event") != "acks":
                return
            for t0, t1 in rec.get("ok", []):
                acks.add(float(t0), float(t1), True, "ok", node.name)
            for t0, t1, code in rec.get("err", []):
                acks.add(float(t0), float(t1), False, f"fail_reason_{code}", node.name)
            acks.inflight[node.name] = int(rec.get("inflight", 0))

        hook = rc.pysyncobj_status_hook(tracker, on_acks)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        for i, addr in enumerate(self.addrs):
            partners = ",".join(a for a in self.addrs if a != addr)
            argv = [sys.executable, rc.PYSYNCOBJ_NODE, "--self", addr, "--partners", partners,
                    "--conf", json.dumps(conf), "--status-interval", "0.1"]
            node = procs.add(rc.NodeProc(f"n{i}", argv, env, workdir, on_line=hook))
            self.nodes.append(node)
            self.by_addr[addr] = node
        self.config = {"SyncObjConf": conf or "library defaults", "log": "in memory (no journal, no fsync)",
                       "writer": "in each node's own process (ReplDict.set with callback via that node)"}
        self.writing = False

    def start(self) -> None:
        for n in self.nodes:
            n.start()

    def _writer_cmd(self) -> Dict[str, Any]:
        return {"cmd": "writer", "period": self.args.write_period, "max_inflight": self.args.max_inflight,
                "report": 0.05}

    def start_writer(self) -> None:
        self.writing = True
        for n in self.nodes:
            n.send(self._writer_cmd())

    def writer_ok(self) -> Optional[str]:
        return None

    def leader(self) -> Tuple[Optional[rc.NodeProc], int]:
        node, lid = rc.status_leader(self.nodes, "leader", "is_leader")
        if node is None or self.by_addr.get(lid) is not node:
            return None, 0
        return node, int(node.last_status["term"])

    def applied(self, node: rc.NodeProc) -> int:
        return int((node.last_status or {}).get("last_applied") or 0)

    def knows_leader(self, node: rc.NodeProc) -> bool:
        return bool((node.last_status or {}).get("leader"))

    def after_restart(self, node: rc.NodeProc) -> None:
        if self.writing:
            node.send(self._writer_cmd())

    def stop(self) -> None:
        for n in self.nodes:
            try:
                if n.alive():
                    n.send({"cmd": "quit"})
            except (OSError, RuntimeError):
                pass


# -- the harness ------------------------------------------------------------------------------------

def wait_until(cond, timeout: float, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())


def run_system(cluster, args: argparse.Namespace, tracker: rc.LeaderTracker, acks: AckLog,
               rng: random.Random) -> Dict[str, Any]:
    out: Dict[str, Any] = {"system": cluster.label, "config": cluster.config, "trials": [], "problems": []}
    t_start = time.monotonic()
    steal0 = rc.host_steal_ticks()
    cluster.start()
    for n in cluster.nodes:
        if not n.ready.wait(30):
            raise RuntimeError(f"{cluster.label}: {n.name} not ready after 30 s")
    if not wait_until(lambda: cluster.leader()[0] is not None, 30):
        raise RuntimeError(f"{cluster.label}: no agreed leader 30 s after start")
    out["startup_s"] = round(time.monotonic() - t_start, 3)
    cluster.start_writer()
    if not wait_until(lambda: acks.last_ok > 0, 20):
        raise RuntimeError(f"{cluster.label}: no write acknowledged 20 s after start")
    time.sleep(1.0)
    t_ready = time.monotonic()
    out["leader_changes_during_startup"] = tracker.changes_total()
    out["startup_leaders"] = tracker.snapshot()["leaders"]
    rejoined_t = t_ready
    marks_kill: List[Tuple[int, float]] = []
    marks_restart: List[Tuple[int, float]] = []
    every = max(0, args.restart_kill_every)
    for trial in range(args.trials):
        err = cluster.writer_ok()
        if err:
            raise RuntimeError(f"{cluster.label}: writer died: {err}")
        after_restart = trial > 0 and every > 0 and trial % every == every - 1
        delay = rc.jitter(0.1, 1.0, rng) if after_restart else rc.jitter(args.settle_min, args.settle_max, rng)
        planned = rejoined_t + delay
        while time.monotonic() < planned:
            time.sleep(0.002)
        # Kill only with an agreed leader and writes flowing (bounded wait; the delay is recorded).
        deadline = time.monotonic() + 10
        leader, term = cluster.leader()
        while (leader is None or time.monotonic() - acks.last_ok > 0.2) and time.monotonic() < deadline:
            time.sleep(0.002)
            leader, term = cluster.leader()
        if leader is None:
            out["problems"].append(f"trial {trial}: no agreed leader 10 s after the planned kill; stopped")
            break
        mark = acks.mark()
        changes_before = tracker.changes_total()
        t_kill = leader.sigkill()
        marks_kill.append((changes_before, t_kill))
        actual_delay = t_kill - rejoined_t
        survivors = [n for n in cluster.nodes if n is not leader]
        first: Optional[Tuple[float, float, bool, str, str]] = None
        deadline = t_kill + args.trial_timeout
        while time.monotonic() < deadline and first is None:
            for r in acks.since(mark):
                if r[2] and r[0] >= t_kill and r[4] != leader.name:
                    if first is None or r[1] < first[1]:
                        first = r
            if first is None:
                time.sleep(0.003)
        failover = (first[1] - t_kill) if first else None
        # Let writes in flight at the kill resolve (their own timeout), and the statuses settle.
        time.sleep(max(0.5, args.write_timeout + 0.3 - (time.monotonic() - t_kill)))
        new_leader, new_term = cluster.leader()
        recs = [r for r in acks.since(mark) if r[1] > t_kill and r[4] != leader.name]
        inflight = [r for r in recs if r[0] < t_kill]
        errs_after: Dict[str, int] = {}
        for r in recs:
            if not r[2] and r[0] >= t_kill and (first is None or r[1] <= first[1]):
                errs_after[r[3]] = errs_after.get(r[3], 0) + 1
        infl_kinds: Dict[str, int] = {}
        for r in inflight:
            infl_kinds[r[3]] = infl_kinds.get(r[3], 0) + 1
        rec: Dict[str, Any] = {
            "trial": trial, "kind": "after_restart" if after_restart else "settled", "t_kill": round(t_kill, 4),
            "delay_after_rejoin_s": round(actual_delay, 4), "killed": leader.name, "killed_term": term,
            "failover_s": None if failover is None else round(failover, 4),
            "first_ack_via": first[4] if first else None,
            "first_ack_write_proposed_after_kill_s": None if first is None else round(first[0] - t_kill, 4),
            "errors_before_first_ack": errs_after,
            "inflight_at_kill": {"n": len(inflight), "outcomes": infl_kinds,
                                 "max_resolve_after_kill_s": round(max((r[1] - t_kill for r in inflight),
                                                                       default=0.0), 4)},
            "new_leader": new_leader.name if new_leader else None, "new_term": new_term,
        }
        if failover is None:
            out["problems"].append(f"trial {trial}: no write acknowledged within {args.trial_timeout} s of the kill")
        say(f"[{cluster.label}] trial {trial + 1}/{args.trials} {rec['kind']}: killed {leader.name} "
            f"(term {term}) -> {rec['failover_s']} s, new leader {rec['new_leader']} term {new_term}")
        # Restart the killed node from its data directory and wait until it has caught up.
        leader.stop(timeout=1.0)
        t_restart = time.monotonic()
        marks_restart.append((tracker.changes_total(), t_restart))
        leader.start()
        if not leader.ready.wait(30):
            out["problems"].append(f"trial {trial}: {leader.name} not ready 30 s after restart; stopped")
            out["trials"].append(rec)
            break
        cluster.after_restart(leader)
        target = max((cluster.applied(n) for n in survivors), default=0)
        ok = wait_until(lambda: (leader.last_status is not None and cluster.knows_leader(leader)
                                 and cluster.applied(leader) >= target), args.catchup_timeout, step=0.005)
        rejoined_t = time.monotonic()
        rec["restart_catchup_s"] = round(rejoined_t - t_restart, 3)
        rec["catchup_target_index"] = target
        if not ok:
            out["problems"].append(f"trial {trial}: {leader.name} not caught up {args.catchup_timeout} s "
                                   f"after restart (applied {cluster.applied(leader)} < {target})")
        out["trials"].append(rec)
    # Leader changes per trial: from the kill to the restart of the victim ("failover": 1 expected),
    # and from that restart to the next kill ("rejoin": 0 expected), with the longest gap between
    # two acknowledged writes in the rejoin window (a leader deposed by the rejoining node shows here).
    time.sleep(1.0)
    total = tracker.changes_total()
    t_end = time.monotonic()
    oks = sorted(r[1] for r in acks.since(0) if r[2])
    for i, rec in enumerate(out["trials"]):
        c_kill, _t_kill = marks_kill[i]
        c_restart, t_restart = marks_restart[i] if i < len(marks_restart) else (total, t_end)
        c_next, t_next = marks_kill[i + 1] if i + 1 < len(marks_kill) else (total, t_end)
        rec["leader_changes_failover"] = c_restart - c_kill
        rec["leader_changes_rejoin"] = c_next - c_restart
        rec["leader_changes"] = c_next - c_kill
        window = [t for t in oks if t_restart <= t <= t_next]
        gaps = [b - a for a, b in zip(window, window[1:])]
        rec["max_ack_gap_during_rejoin_s"] = round(max(gaps), 4) if gaps else None
        rec["previous_rejoin_changed_leader"] = None if i == 0 else bool(out["trials"][i - 1]["leader_changes_rejoin"])
    out["leader_changes_total"] = total
    out["leader_changes_during_trials"] = total - out["leader_changes_during_startup"]
    out["kills"] = len(out["trials"])
    out["extra_leader_changes"] = sum(max(0, r["leader_changes"] - 1) for r in out["trials"])
    out["extra_leader_changes_failover"] = sum(max(0, r["leader_changes_failover"] - 1) for r in out["trials"])
    out["leader_changes_on_rejoin"] = sum(r["leader_changes_rejoin"] for r in out["trials"])
    out["rejoins_with_leader_change"] = sum(1 for r in out["trials"] if r["leader_changes_rejoin"] > 0)
    out["kills_without_leader_change"] = sum(1 for r in out["trials"] if r["leader_changes_failover"] == 0)
    out["history"] = [[round(t, 4), n, term, l] for (t, n, term, l) in tracker.history[:5000]]
    out["host_steal_pct"] = rc.steal_pct(steal0, rc.host_steal_ticks())
    out["max_term"] = tracker.max_term
    out["leaders"] = tracker.snapshot()["leaders"]
    vals = [r["failover_s"] for r in out["trials"]]
    out["summary"] = {
        "all": rc.summarize(vals),
        "settled": rc.summarize([r["failover_s"] for r in out["trials"] if r["kind"] == "settled"]),
        "after_restart": rc.summarize([r["failover_s"] for r in out["trials"] if r["kind"] == "after_restart"]),
        "inflight_max_resolve_s": max((r["inflight_at_kill"]["max_resolve_after_kill_s"] for r in out["trials"]),
                                      default=None),
        "restart_catchup": rc.summarize([r.get("restart_catchup_s") for r in out["trials"]]),
        "max_ack_gap_during_rejoin": rc.summarize([r.get("max_ack_gap_during_rejoin_s") for r in out["trials"]]),
        "failed_trials": sum(1 for v in vals if v is None),
        "after_rejoin_that_changed_leader": rc.summarize(
            [r["failover_s"] for r in out["trials"] if r.get("previous_rejoin_changed_leader") is True]),
        "after_rejoin_without_leader_change": rc.summarize(
            [r["failover_s"] for r in out["trials"] if r.get("previous_rejoin_changed_leader") is False]),
    }
    return out


def print_tables(results: Dict[str, Any]) -> None:
    rows = []
    for label, res in results.items():
        if "error" in res:
            rows.append([label, "error: " + res["error"][:60]] + [""] * 13)
            continue
        s = res["summary"]
        a, r = s["all"], s["after_restart"]
        rows.append([rc.skew_label(label, res), a["n"], rc.fmt(a["median"], 0, 1000), rc.fmt(a["p90"], 0, 1000),
                     rc.fmt(a["max"], 0, 1000), f'{r["n"]}', rc.fmt(r["median"], 0, 1000), rc.fmt(r["max"], 0, 1000),
                     s["failed_trials"], res["leader_changes_during_trials"],
                     res["extra_leader_changes_failover"],
                     f'{res["leader_changes_on_rejoin"]} in {res["rejoins_with_leader_change"]}/{res["kills"]}',
                     rc.fmt(s["max_ack_gap_during_rejoin"]["max"], 0, 1000),
                     rc.fmt(s["inflight_max_resolve_s"], 0, 1000), rc.fmt(res.get("host_steal_pct"), 1)])
    print("\nFailover: SIGKILL of the leader -> first write acknowledged by a survivor (ms)\n")
    print(rc.table(["system", "kills", "median", "p90", "max", "after-restart kills", "ar median", "ar max",
                    "no ack", "leader changes", "extra at kill", "on rejoin", "rejoin max gap",
                    "in-flight resolved by", "steal %"], rows))
    rows2 = []
    for label, res in results.items():
        if "summary" not in res:
            continue
        s = res["summary"]
        for name, key in (("settled", "settled"), ("after restart", "after_restart"),
                          ("previous rejoin changed the leader", "after_rejoin_that_changed_leader"),
                          ("previous rejoin did not", "after_rejoin_without_leader_change")):
            v = s[key]
            rows2.append([label, name, v["n"], rc.fmt(v["median"], 0, 1000), rc.fmt(v["p90"], 0, 1000),
                          rc.fmt(v["max"], 0, 1000)])
        c = s["restart_catchup"]
        rows2.append([label, "(restart -> caught up)", c["n"], rc.fmt(c["median"], 0, 1000), rc.fmt(c["p90"], 0, 1000),
                      rc.fmt(c["max"], 0, 1000)])
    print(rc.table(["system", "trials", "n", "median ms", "p90 ms", "max ms"], rows2))
    print()


def run_one(system: str, args: argparse.Namespace, rng: random.Random) -> Dict[str, Any]:
    workdir = rc.make_workdir(f"raft_failover_{system}_")
    procs = rc.Procs()
    tracker = rc.LeaderTracker()
    acks = AckLog()
    cluster = None
    res: Dict[str, Any] = {}
    keep = args.keep_logs
    say(f"== {system} (logs in {workdir})")
    try:
        if system == "swimraft":
            cluster = SwimraftCluster(workdir, procs, tracker, acks, args)
        elif system == "pysyncobj-default":
            cluster = PysyncobjCluster("pysyncobj-default", {}, workdir, procs, tracker, acks, args)
        elif system == "pysyncobj-orch":
            cluster = PysyncobjCluster("pysyncobj-orch", {"raftMinTimeout": 0.5, "raftMaxTimeout": 2.0},
                                       workdir, procs, tracker, acks, args)
        else:
            raise ValueError(f"unknown system {system}")
        res = run_system(cluster, args, tracker, acks, rng)
        res["logs"] = workdir
    except Exception as exc:
        say(f"[{system}] failed: {exc!r}")
        res = {"error": repr(exc), "logs": workdir, "leaders": tracker.snapshot()}
        keep = True
    finally:
        if cluster is not None:
            try:
                cluster.stop()
            except Exception as exc:
                say(f"[{system}] stop: {exc!r}")
        procs.stop_all()
        if not keep and not res.get("problems") and "error" not in res:
            rc.remove_workdir(workdir, keep=False)
            res["logs"] = None
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--quick", action="store_true", help="3 trials per system")
    ap.add_argument("--systems", default="swimraft,pysyncobj-default,pysyncobj-orch",
                    help="comma list of swimraft, pysyncobj-default, pysyncobj-orch")
    ap.add_argument("--restart-kill-every", type=int, default=2,
                    help="every k-th trial kills 0.1-1.0 s after the previous victim caught up (0: never)")
    ap.add_argument("--settle-min", type=float, default=1.5)
    ap.add_argument("--settle-max", type=float, default=3.0)
    ap.add_argument("--write-period", type=float, default=0.005)
    ap.add_argument("--write-timeout", type=float, default=1.0)
    ap.add_argument("--max-inflight", type=int, default=400)
    ap.add_argument("--trial-timeout", type=float, default=15.0)
    ap.add_argument("--catchup-timeout", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=1)
    rc.add_run_options(ap, "raft_failover.json")
    args = ap.parse_args()
    if args.quick:
        args.trials = 3
    if args.trials < 1 or args.trials > 1000:
        ap.error("--trials must be 1..1000")
    rng = random.Random(args.seed)
    rc.install_sigterm()
    data = rc.new_run("raft_failover", dict(vars(args)))
    host = rc.HostCpu()
    rc.measure_systems(data, args.systems, args, lambda system: run_one(system, args, rng))
    path = rc.finish_run(data, args.output, host)
    print_tables(data["results"])
    print(f"JSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
