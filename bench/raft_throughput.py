"""Raft throughput and latency of acknowledged replicated writes on 3 nodes, from Python.

    python bench/raft_throughput.py                  # swimraft + pysyncobj (defaults, unbatched), 10 s per run
    python bench/raft_throughput.py --duration 20 --systems swimraft
    python bench/raft_throughput.py --quick          # 2 s per run, smoke test

An *op* is one acknowledged replicated write. Workloads:

* swimraft (``python -m swimraft.agent`` voters, LAN preset; each op is committed on a majority
  with its log entry fsynced, per swimraft's storage design):
  - ``seq``: one client looping ``work.add`` -> ``work.claim_next`` -> ``work.complete`` (3 ops per
    cycle, sync methods);
  - ``conc64``: 64 asyncio tasks each looping ``add_async`` -> ``claim_next_async`` ->
    ``complete_async`` (a task completes whatever item its claim returned);
  - ``locks``: one client looping ``locks.acquire`` + ``locks.release`` (2 ops per cycle).
  Client placements: ``leader-process`` (this process hosts voter v0 and v0 leads),
  ``follower-process`` (this process hosts voter v0 and another voter leads: every op is forwarded
  by the local follower replica), ``client`` (all three voters are agent processes; this process is
  a non-voter client node that sends every op to a voter and follows leader hints).
* pysyncobj (``bench/agents/pysyncobj_node.py``: ``SyncObj`` + ``ReplDict`` + ``ReplLockManager``,
  in-memory log, nothing fsynced), with library defaults and with ``appendEntriesUseBatch=False``.
  pysyncobj has no client-only node, so the workload runs inside a node's process: the leader's
  (``leader-process``) or a follower's (``follower-process``, forwarded to the leader):
  - ``seq``: ``ReplDict.set(sync=True)`` in a loop;
  - ``conc64``: ``ReplDict.set`` with callbacks, 64 in flight (the shape of 64 concurrent clients);
  - ``pipe1000``: the same with 1000 in flight (pipelined);
  - ``locks``: ``ReplLockManager.tryAcquire(sync=True)`` + ``release(sync=True)``.

Each run: ``--warmup`` s, then ``--duration`` s measured. Latency = per op, submit to ack.
CPU per op = (utime+stime of every node process and of this process over the measured window) /
ops. Leader changes (new (term, leader) pairs in the nodes' 0.1 s status lines) are counted per run
and must be 0. Steal % = the share of the machine's time the hypervisor gave to other guests in the
measured window (``/proc/stat``): on a shared VM it is the main cause of run-to-run spread, so read
a figure together with it. Results: tables on stdout, ``bench/results/raft_throughput.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import raft_common as rc  # noqa: E402

say = rc.say
MAX_SAMPLES = 3_000_000


class Meter:
    """Ops and per-op latencies in the measured window."""

    def __init__(self) -> None:
        self.lat: List[float] = []
        self.ops = 0
        self.errors: Dict[str, int] = {}
        self.notes: Dict[str, int] = {}
        self.measuring = False

    def op(self, dt: float) -> None:
        if self.measuring:
            self.ops += 1
            if len(self.lat) < MAX_SAMPLES:
                self.lat.append(dt)

    def error(self, exc: BaseException) -> None:
        k = type(exc).__name__
        self.errors[k] = self.errors.get(k, 0) + 1

    def note(self, k: str) -> None:
        self.notes[k] = self.notes.get(k, 0) + 1


class CpuWindow:
    """CPU seconds of a set of PIDs (plus this process) between begin() and end()."""

    def __init__(self, pids: Callable[[], Dict[str, int]]) -> None:
        self.pids = pids

    def sample(self) -> Tuple[float, Dict[str, float]]:
        per: Dict[str, float] = {}
        for name, pid in self.pids().items():
            c = rc.process_cpu_seconds(pid)
            if c is not None:
                per[name] = c
        per["bench"] = rc.process_cpu_seconds(os.getpid()) or 0.0
        return time.monotonic(), per

    def begin(self) -> None:
        self.t0, self.c0 = self.sample()
        self.s0 = rc.host_steal_ticks()

    def end(self) -> Dict[str, Any]:
        t1, c1 = self.sample()
        wall = t1 - self.t0
        per = {k: c1[k] - self.c0[k] for k in c1 if k in self.c0}
        return {"wall_s": wall, "cpu_s": sum(per.values()), "per_process_cpu_s": per,
                "steal_pct": rc.steal_pct(self.s0, rc.host_steal_ticks())}


def result_record(ops: int, elapsed: float, lat: List[float], errors: Dict[str, int], cpu: Dict[str, Any],
                  leader_changes: int, extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    rate = ops / elapsed if elapsed > 0 else None
    cores = cpu["cpu_s"] / cpu["wall_s"] if cpu.get("wall_s") else None
    rec = {"ops": ops, "elapsed_s": round(elapsed, 3), "ops_per_s": rate,
           "lat_p50_ms": None, "lat_p90_ms": None, "lat_p99_ms": None, "lat_max_ms": None,
           "errors": errors, "cpu_cores": cores,
           "cpu_ms_per_op": (1000.0 * cores / rate) if (cores is not None and rate) else None,
           "cpu_per_process_s": {k: round(v, 3) for k, v in cpu.get("per_process_cpu_s", {}).items()},
           "leader_changes": leader_changes, "host_steal_pct": cpu.get("steal_pct")}
    if lat:
        rec["lat_p50_ms"] = 1000 * rc.percentile(lat, 50)
        rec["lat_p90_ms"] = 1000 * rc.percentile(lat, 90)
        rec["lat_p99_ms"] = 1000 * rc.percentile(lat, 99)
        rec["lat_max_ms"] = 1000 * max(lat)
    if extra:
        rec.update(extra)
    return rec


# -- swimraft -------------------------------------------------------------------------------------

class SwimraftSetup:
    """A 3-voter cluster for one placement: v0 in this process (or not at all for ``client``)."""

    def __init__(self, placement: str, args: argparse.Namespace, procs: rc.Procs) -> None:
        self.placement, self.args, self.procs = placement, args, procs
        self.workdir = rc.make_workdir(f"raft_tp_swimraft_{placement}_")
        self.tracker = rc.LeaderTracker()
        self.coord = None
        self.agents: List[rc.NodeProc] = []
        self.attempts = 0

    async def start(self) -> None:
        import swimraft
        for attempt in range(self.args.placement_attempts):
            self.attempts = attempt + 1
            ports = rc.free_ports(3)
            voters = rc.voters_spec(ports)
            base = os.path.join(self.workdir, f"a{attempt}")
            os.makedirs(base)
            hook = rc.swimraft_status_hook(self.tracker)
            first_agent = 0 if self.placement == "client" else 1
            self.agents = []
            for i in range(first_agent, 3):
                data = os.path.join(base, f"v{i}")
                os.makedirs(data)
                env = rc.swimraft_agent_env(f"v{i}", ports[i], voters, base)
                self.agents.append(self.procs.add(rc.NodeProc(f"v{i}", [sys.executable, "-m", "swimraft.agent"],
                                                              env, base, on_line=hook)))
            if self.placement == "client":
                cfg = swimraft.Config(use_env=False, node_id="bench-client", raft_enabled=True,
                                      consensus_mode="raft", raft_voters=voters, bind_host="127.0.0.1",
                                      advertise_host="127.0.0.1", raft_port=0, cluster_name="bench",
                                      data_dir=os.path.join(base, "client"))
            else:
                cfg = swimraft.Config(use_env=False, node_id="v0", raft_enabled=True, consensus_mode="raft",
                                      raft_voters=voters, raft_port=ports[0], bind_host="127.0.0.1",
                                      advertise_host="127.0.0.1", data_dir=os.path.join(base, "v0"),
                                      cluster_name="bench", preset="lan")
            self.coord = swimraft.HybridCoordinator(config=cfg)
            # Leader placement is not controllable (no leadership transfer): start v0 first when it
            # should lead, last when it should follow, and retry a fresh cluster when it came out wrong.
            if self.placement == "leader-process":
                await self.coord.start()
                await asyncio.sleep(0.3)
            for a in self.agents:
                a.start()
            for a in self.agents:
                if not await asyncio.get_running_loop().run_in_executor(None, a.ready.wait, 30):
                    raise RuntimeError(f"agent {a.name} not ready after 30 s")
            if self.placement == "follower-process":
                await self._wait(lambda: bool(rc.status_leader(self.agents, "leader_id", "is_leader",
                                                               sub="raft")[0]), 30)
                await self.coord.start()
            elif self.placement == "client":
                await self.coord.start()
            ok = await self._wait(self._leader_agreed, 30)
            if not ok:
                raise RuntimeError("no agreed leader 30 s after start")
            await asyncio.sleep(1.5)  # let the start-up settle, then check the placement again
            if self._leader_agreed() and self._placement_ok():
                return
            say(f"[swimraft {self.placement}] attempt {attempt + 1}: leader is {self._leader_id()}; "
                "starting a fresh cluster")
            await self.stop()
        raise RuntimeError(f"could not get placement {self.placement} in {self.args.placement_attempts} attempts")

    def _leader_id(self) -> str:
        return self.coord.get_leader_id() if self.coord is not None else ""

    def _leader_agreed(self) -> bool:
        node, lid = rc.status_leader(self.agents, "leader_id", "is_leader", sub="raft")
        local = self._leader_id()
        if self.placement == "leader-process" and self.coord.is_leader():
            return all((a.last_status or {}).get("raft", {}).get("leader_id") == "v0" for a in self.agents)
        # Otherwise an agent must lead with everyone agreeing (for leader-process, the placement
        # check then starts a fresh cluster instead of waiting here for v0 to lead).
        if node is None:
            return False
        return self.placement == "client" or local == lid

    def _placement_ok(self) -> bool:
        if self.placement == "leader-process":
            return bool(self.coord.is_leader())
        if self.placement == "follower-process":
            return not self.coord.is_leader() and self._leader_id() not in ("", "v0")
        return True

    async def _wait(self, cond, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return True
            await asyncio.sleep(0.05)
        return bool(cond())

    def pids(self) -> Dict[str, int]:
        return {a.name: a.pid for a in self.agents if a.alive()}

    def term_leader(self) -> Tuple[int, str]:
        """(highest term, its leader) over the in-process voter and the agents' last status lines."""
        seen: List[Tuple[int, str]] = []
        if self.placement != "client":  # a client node has no term of its own
            st = self.coord.get_status()["raft"]
            seen.append((int(st.get("term") or 0), str(st.get("leader_id") or "")))
        for a in self.agents:
            r = (a.last_status or {}).get("raft") or {}
            seen.append((int(r.get("term") or 0), str(r.get("leader_id") or "")))
        return max(seen) if seen else (0, "")

    async def stop(self) -> None:
        if self.coord is not None:
            try:
                await asyncio.wait_for(self.coord.stop(), 15)
            except Exception as exc:
                say(f"[swimraft {self.placement}] coordinator stop: {exc!r}")
            self.coord = None
        for a in self.agents:
            a.stop(timeout=5.0)


async def swimraft_run(setup: SwimraftSetup, workload: str, args: argparse.Namespace) -> Dict[str, Any]:
    coord = setup.coord
    m = Meter()
    timeout = args.op_timeout
    stop = threading.Event()
    loop = asyncio.get_running_loop()
    node_id = "worker-" + setup.placement

    def seq_body() -> None:
        while not stop.is_set():
            try:
                t0 = time.monotonic()
                wid = coord.work.add("selfplay", timeout=timeout)
                t1 = time.monotonic()
                m.op(t1 - t0)
                item = coord.work.claim_next(node_id, timeout=timeout)
                t2 = time.monotonic()
                m.op(t2 - t1)
                if item is None:
                    m.note("claim_next_none")
                    continue
                if item["work_id"] != wid:
                    m.note("claimed_other_item")
                ok = coord.work.complete(item["work_id"], {"r": 1}, timeout=timeout)
                t3 = time.monotonic()
                m.op(t3 - t2)
                if not ok:
                    m.note("complete_false")
            except Exception as exc:
                m.error(exc)
                if not isinstance(exc, (rc_sw().UnavailableError, rc_sw().TimeoutError, rc_sw().BackpressureError)):
                    raise

    def locks_body() -> None:
        while not stop.is_set():
            try:
                t0 = time.monotonic()
                tok = coord.locks.acquire("bench-lock", holder="bench-holder", ttl=30.0, timeout=timeout)
                t1 = time.monotonic()
                m.op(t1 - t0)
                if tok is None:
                    m.note("acquire_none")
                ok = coord.locks.release("bench-lock", holder="bench-holder", timeout=timeout)
                t2 = time.monotonic()
                m.op(t2 - t1)
                if not ok:
                    m.note("release_false")
            except Exception as exc:
                m.error(exc)
                if not isinstance(exc, (rc_sw().UnavailableError, rc_sw().TimeoutError)):
                    raise

    async def conc_task(i: int) -> None:
        me = f"{node_id}-{i}"
        while not stop.is_set():
            try:
                t0 = time.monotonic()
                await coord.work.add_async("selfplay", timeout=timeout)
                t1 = time.monotonic()
                m.op(t1 - t0)
                item = await coord.work.claim_next_async(me, timeout=timeout)
                t2 = time.monotonic()
                m.op(t2 - t1)
                if item is None:
                    m.note("claim_next_none")
                    continue
                ok = await coord.work.complete_async(item["work_id"], {"r": 1}, timeout=timeout)
                t3 = time.monotonic()
                m.op(t3 - t2)
                if not ok:
                    m.note("complete_false")
            except (rc_sw().UnavailableError, rc_sw().TimeoutError, rc_sw().BackpressureError) as exc:
                m.error(exc)

    cpu = CpuWindow(setup.pids)
    term0, leader0 = setup.term_leader()
    t_begin = time.monotonic()
    if workload == "conc64":
        runner = asyncio.gather(*[conc_task(i) for i in range(args.clients)])
    else:
        runner = loop.run_in_executor(None, seq_body if workload == "seq" else locks_body)
    runner = asyncio.ensure_future(runner)
    await asyncio.sleep(args.warmup)
    m.measuring = True
    t_meas = time.monotonic()
    cpu.begin()
    await asyncio.sleep(args.duration)
    m.measuring = False
    c = cpu.end()
    elapsed = time.monotonic() - t_meas
    stop.set()
    try:
        await asyncio.wait_for(runner, args.op_timeout + 10)
    except Exception as exc:
        m.error(exc)
        say(f"[swimraft {setup.placement} {workload}] runner ended with {exc!r}")
    term1, leader1 = setup.term_leader()
    changes = setup.tracker.changes_between(t_begin, time.monotonic())
    extra = {"notes": m.notes, "term_start": term0, "term_end": term1, "leader_start": leader0,
             "leader_end": leader1}
    if term1 != term0 or leader1 != leader0:
        changes = max(changes, 1)
    return result_record(m.ops, elapsed, m.lat, m.errors, c, changes, extra)


def rc_sw():
    import swimraft
    return swimraft


async def swimraft_all(args: argparse.Namespace, procs: rc.Procs, out: Dict[str, Any]) -> None:
    for placement in args.placements:
        setup = SwimraftSetup(placement, args, procs)
        res: Dict[str, Any] = {}
        out[placement] = res
        try:
            say(f"[swimraft] starting cluster for placement {placement}")
            await setup.start()
            res["cluster_attempts"] = setup.attempts
            res["leader_changes_before_runs"] = setup.tracker.changes_total()
            for workload in args.workloads_swimraft:
                say(f"[swimraft {placement}] {workload} ...")
                r = await swimraft_run(setup, workload, args)
                res[workload] = r
                say(f"[swimraft {placement}] {workload}: {rc.fmt(r['ops_per_s'], 0)} ops/s, p50 "
                    f"{rc.fmt(r['lat_p50_ms'], 2)} ms, p99 {rc.fmt(r['lat_p99_ms'], 2)} ms, "
                    f"cpu {rc.fmt(r['cpu_ms_per_op'], 3)} ms/op, leader changes {r['leader_changes']}, "
                    f"errors {r['errors']}, steal {rc.fmt(r['host_steal_pct'], 1)} %")
                await asyncio.sleep(0.5)
            st = setup.coord.get_status()["raft"]
            res["final_status"] = {k: st.get(k) for k in ("term", "leader_id", "applied_index", "last_log_index",
                                                          "snapshot_index", "work_queue_size")}
            res["leaders"] = setup.tracker.snapshot()["leaders"]
        except Exception as exc:
            say(f"[swimraft {placement}] failed: {exc!r}")
            res["error"] = repr(exc)
            res["logs"] = setup.workdir
        finally:
            await setup.stop()
            if "error" not in res and not args.keep_logs:
                rc.remove_workdir(setup.workdir, keep=False)


# -- pysyncobj -----------------------------------------------------------------------------------

PYSYNCOBJ_WORKLOADS = {
    "seq": {"workload": "seq_set"},
    "conc64": {"workload": "pipelined", "window": 64},
    "pipe1000": {"workload": "pipelined", "window": 1000},
    "locks": {"workload": "lock_cycles"},
}


def pysyncobj_config(label: str, conf: Dict[str, Any], args: argparse.Namespace, procs: rc.Procs,
                     out: Dict[str, Any]) -> None:
    workdir = rc.make_workdir(f"raft_tp_{label}_")
    tracker = rc.LeaderTracker()
    results: Dict[str, "queue.Queue[Dict[str, Any]]"] = {}

    def on_result(node: rc.NodeProc, t: float, rec: Dict[str, Any]) -> None:
        if rec.get("event") == "result":
            results[node.name].put(rec)

    hook = rc.pysyncobj_status_hook(tracker, on_result)
    ports = rc.free_ports(3)
    addrs = [f"127.0.0.1:{p}" for p in ports]
    nodes: List[rc.NodeProc] = []
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    for i, addr in enumerate(addrs):
        argv = [sys.executable, rc.PYSYNCOBJ_NODE, "--self", addr,
                "--partners", ",".join(a for a in addrs if a != addr), "--conf", json.dumps(conf), "--locks",
                "--status-interval", "0.1"]
        node = procs.add(rc.NodeProc(f"n{i}", argv, env, workdir, on_line=hook))
        results[node.name] = queue.Queue()
        nodes.append(node)
    by_addr = dict(zip(addrs, nodes))
    res: Dict[str, Any] = {"SyncObjConf": conf or "library defaults"}
    out[label] = res
    try:
        for n in nodes:
            n.start()
        for n in nodes:
            if not n.ready.wait(30):
                raise RuntimeError(f"{n.name} not ready after 30 s")
        deadline = time.monotonic() + 30
        leader = None
        while time.monotonic() < deadline:
            leader, lid = rc.status_leader(nodes, "leader", "is_leader")
            if leader is not None and by_addr.get(lid) is leader:
                break
            leader = None
            time.sleep(0.05)
        if leader is None:
            raise RuntimeError("no agreed leader 30 s after start")
        time.sleep(1.5)
        res["leader_changes_before_runs"] = tracker.changes_total()
        follower = next(n for n in nodes if n is not leader)
        for placement in args.placements:
            if placement == "client":
                continue  # pysyncobj has no client-only node
            node = leader if placement == "leader-process" else follower
            pres: Dict[str, Any] = {"node": node.name}
            res[placement] = pres
            for workload in args.workloads_pysyncobj:
                spec = dict(PYSYNCOBJ_WORKLOADS[workload])
                cmd = {"cmd": "run", "duration": args.duration, "warmup": args.warmup,
                       "timeout": args.op_timeout, **spec}
                say(f"[{label} {placement}] {workload} ...")
                cpu = CpuWindow(lambda: {n.name: n.pid for n in nodes if n.alive()})
                t_begin = time.monotonic()
                lead0 = rc.status_leader(nodes, "leader", "is_leader")[1]
                node.send(cmd)
                time.sleep(args.warmup)
                cpu.begin()
                try:
                    r = results[node.name].get(timeout=args.warmup + args.duration + 4 * args.op_timeout + 30)
                except queue.Empty:
                    raise RuntimeError(f"{node.name}: no result for {workload}")
                c = cpu.end()
                lead1 = rc.status_leader(nodes, "leader", "is_leader")[1]
                changes = tracker.changes_between(t_begin, time.monotonic())
                if r.get("error"):
                    pres[workload] = {"error": r["error"]}
                    continue
                lat_ms = {k: (None if r.get(k) is None else 1000 * r[k]) for k in
                          ("lat_p50", "lat_p90", "lat_p99", "lat_max")}
                rec = result_record(int(r["ops"]), float(r["elapsed"]), [], r.get("errors", {}), c, changes,
                                    {"leader_start": lead0, "leader_end": lead1, "term_end": r.get("term"),
                                     "ran_on_leader": r.get("is_leader"), "window": spec.get("window")})
                rec["lat_p50_ms"], rec["lat_p90_ms"] = lat_ms["lat_p50"], lat_ms["lat_p90"]
                rec["lat_p99_ms"], rec["lat_max_ms"] = lat_ms["lat_p99"], lat_ms["lat_max"]
                pres[workload] = rec
                say(f"[{label} {placement}] {workload}: {rc.fmt(rec['ops_per_s'], 0)} ops/s, p50 "
                    f"{rc.fmt(rec['lat_p50_ms'], 2)} ms, p99 {rc.fmt(rec['lat_p99_ms'], 2)} ms, "
                    f"cpu {rc.fmt(rec['cpu_ms_per_op'], 3)} ms/op, leader changes {changes}, errors {rec['errors']}, "
                    f"steal {rc.fmt(rec['host_steal_pct'], 1)} %")
                time.sleep(0.5)
        res["leaders"] = tracker.snapshot()["leaders"]
    except Exception as exc:
        say(f"[{label}] failed: {exc!r}")
        res["error"] = repr(exc)
        res["logs"] = workdir
    finally:
        for n in nodes:
            try:
                if n.alive():
                    n.send({"cmd": "quit"})
            except (OSError, RuntimeError):
                pass
        for n in nodes:
            n.stop(timeout=3.0)
        if "error" not in res and not args.keep_logs:
            rc.remove_workdir(workdir, keep=False)


# -- report -----------------------------------------------------------------------------------------

WORKLOAD_LABEL = {
    "seq": "sequential (1 client)",
    "conc64": "64 concurrent clients",
    "pipe1000": "pipelined, 1000 in flight",
    "locks": "lock acquire+release",
}


def median_of_rounds(rounds: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Per system, placement and workload: the run with the median ops/s over the rounds (the lower
    middle one for an even count), with every round's ops/s in ``ops_per_s_rounds``. A system's
    ``machine`` record is the first round's, marked skewed when any round was."""
    merged: Dict[str, Any] = {}
    for system in rounds[0]:
        per_round = [r[system] for r in rounds if isinstance(r.get(system), dict)]
        out: Dict[str, Any] = dict(per_round[0])
        machines = [r.get("machine") or {} for r in per_round]
        machine = dict(machines[0])
        for key in ("other_load_ran_meanwhile", "swimraft_reinstalled_meanwhile"):
            machine[key] = any(m.get(key) for m in machines)
        machine["stray_nodes"] = [line for m in machines for line in (m.get("stray_nodes") or [])][:10]
        out["machine"] = machine
        for placement, pres in per_round[0].items():
            if not isinstance(pres, dict) or placement in ("SyncObjConf", "machine", "raft_timing"):
                continue
            merged_placement = dict(pres)
            for workload, rec in pres.items():
                if not isinstance(rec, dict) or "ops_per_s" not in rec:
                    continue
                runs = [r[placement][workload] for r in per_round
                        if isinstance(r.get(placement), dict) and isinstance(r[placement].get(workload), dict)
                        and r[placement][workload].get("ops_per_s") is not None]
                ranked = sorted(runs, key=lambda x: x["ops_per_s"])
                chosen = dict(ranked[(len(ranked) - 1) // 2])
                chosen["ops_per_s_rounds"] = [x["ops_per_s"] for x in runs]
                merged_placement[workload] = chosen
            out[placement] = merged_placement
        merged[system] = out
    return merged


def print_tables(results: Dict[str, Any]) -> None:
    rows = []
    for workload in ("seq", "conc64", "pipe1000", "locks"):
        for system, sres in results.items():
            for placement, pres in sres.items():
                if not isinstance(pres, dict):
                    continue
                if "error" in pres and workload == "seq":
                    rows.append(["-", system, placement, "error: " + str(pres["error"])[:60]] + [""] * 7)
                if workload not in pres:
                    continue
                r = pres[workload]
                if "error" in r:
                    rows.append([WORKLOAD_LABEL[workload], system, placement, "error: " + r["error"][:50]] + [""] * 7)
                    continue
                what = workload
                cycles = ""
                if workload == "locks" and r.get("ops_per_s"):
                    cycles = rc.fmt(r["ops_per_s"] / 2, 0)
                errs = sum(r.get("errors", {}).values())
                ops = rc.fmt(r["ops_per_s"], 0)
                if len(r.get("ops_per_s_rounds") or []) > 1:
                    ops += f' ({rc.fmt(min(r["ops_per_s_rounds"]), 0)}-{rc.fmt(max(r["ops_per_s_rounds"]), 0)})'
                rows.append([WORKLOAD_LABEL[what], system, placement, ops, cycles,
                             rc.fmt(r["lat_p50_ms"], 2), rc.fmt(r["lat_p99_ms"], 2), rc.fmt(r["cpu_ms_per_op"], 3),
                             r["leader_changes"], errs, rc.fmt(r.get("host_steal_pct"), 1)])
        for system, sres in results.items():
            if "error" in sres and workload == "seq":
                rows.append(["-", system, "-", "error: " + str(sres["error"])[:60]] + [""] * 7)
    print("\nThroughput and latency of acknowledged replicated writes, 3 nodes on 127.0.0.1 (op = one write)\n")
    print(rc.table(["workload", "system", "client placement", "ops/s", "lock cycles/s", "p50 ms", "p99 ms",
                    "CPU ms/op", "leader changes", "errors", "steal %"], rows))
    print()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--quick", action="store_true", help="2 s runs, 0.5 s warm-up")
    ap.add_argument("--systems", default="swimraft,pysyncobj-default,pysyncobj-unbatched")
    ap.add_argument("--placements", default="leader-process,follower-process,client")
    ap.add_argument("--workloads", default="seq,conc64,pipe1000,locks",
                    help="seq, conc64, pipe1000 (pysyncobj only), locks")
    ap.add_argument("--clients", type=int, default=64, help="concurrent asyncio clients of conc64 (swimraft)")
    ap.add_argument("--op-timeout", type=float, default=5.0)
    ap.add_argument("--placement-attempts", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=1,
                    help="measure every system this many times, in turn, and report the median run of each "
                         "cell with the range (this machine's speed drifts by tens of per cent within minutes)")
    rc.add_run_options(ap, "raft_throughput.json")
    args = ap.parse_args()
    if args.quick:
        args.duration, args.warmup = 2.0, 0.5
    if not (0 < args.duration <= 600 and 0 <= args.warmup <= 60 and 1 <= args.clients <= 1000
            and 1 <= args.rounds <= 20):
        ap.error("--duration must be in (0, 600], --warmup in [0, 60], --clients in [1, 1000], --rounds in [1, 20]")
    args.placements = [p.strip() for p in args.placements.split(",") if p.strip()]
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    args.workloads_swimraft = [w for w in workloads if w in ("seq", "conc64", "locks")]
    args.workloads_pysyncobj = [w for w in workloads if w in PYSYNCOBJ_WORKLOADS]
    rc.install_sigterm()
    data = rc.new_run("raft_throughput", dict(vars(args)))
    procs = rc.Procs()
    host = rc.HostCpu()

    def run_one(system: str) -> Dict[str, Any]:
        holder: Dict[str, Any] = {}
        if system == "swimraft":
            out: Dict[str, Any] = {"raft_timing": rc.swimraft_raft_timing()}  # imports swimraft: after the wait
            holder[system] = out
            asyncio.run(swimraft_all(args, procs, out))
        elif system == "pysyncobj-default":
            pysyncobj_config(system, {}, args, procs, holder)
        elif system == "pysyncobj-unbatched":
            pysyncobj_config(system, {"appendEntriesUseBatch": False}, args, procs, holder)
        else:
            holder[system] = {"error": f"unknown system {system}"}
        return holder[system]

    rounds: List[Dict[str, Any]] = []
    try:
        for i in range(args.rounds):
            if args.rounds > 1:
                rc.say(f"round {i + 1}/{args.rounds}")
            data["results"] = {}
            rc.measure_systems(data, args.systems, args, run_one)
            rounds.append(data["results"])
            if args.rounds > 1:
                data["rounds"] = rounds
    finally:
        procs.stop_all()
    if args.rounds > 1:
        data["results"] = median_of_rounds(rounds)
    path = rc.finish_run(data, args.output, host)
    shown: Dict[str, Any] = {}
    for k, r in data["results"].items():
        label = rc.skew_label(k, r)
        shown[label] = {p: v for p, v in r.items()
                        if isinstance(v, dict) and p not in ("SyncObjConf", "machine", "raft_timing")}
        if "error" in r:
            shown[label]["error"] = r["error"]
    print_tables(shown)
    if args.rounds > 1:
        print(f"ops/s: the median of {args.rounds} rounds (lowest-highest); latency and CPU are those of the median run\n")
    print(f"JSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
