"""One pysyncobj node as a process, driven by the Raft benchmarks (bench/raft_*.py).

    python bench/agents/pysyncobj_node.py --self 127.0.0.1:7001 --partners 127.0.0.1:7002,127.0.0.1:7003 \
        [--conf '{"raftMinTimeout": 0.5, "raftMaxTimeout": 2.0}'] [--locks] [--status-interval 0.1]

A ``SyncObj`` with a ``ReplDict`` (and, with ``--locks``, a ``ReplLockManager``); the log stays in
memory (pysyncobj's default: no journal file, nothing fsynced). Prints JSON lines on stdout:

* ``{"event": "ready", "node", "pid", "conf"}`` once the object exists;
* ``{"event": "status", "is_leader", "leader", "term", "commit_idx", "last_applied", "has_quorum"}``
  every ``--status-interval`` seconds;
* ``{"event": "acks", "ok": [[t_submit, t_ack], ...], "err": [[t_submit, t_ack, code], ...]}`` from
  the writer (times are ``time.monotonic()``: CLOCK_MONOTONIC, comparable across processes);
* ``{"event": "result", ...}`` at the end of a workload.

Commands, one JSON object per stdin line:

* ``{"cmd": "writer", "period": 0.005, "max_inflight": 400, "report": 0.05}``: from now on, submit
  one ``ReplDict.set`` every ``period`` seconds through this node (asynchronous, with a callback:
  pysyncobj has no client-only mode, so the writer lives in each node's process);
* ``{"cmd": "run", "workload": "seq_set" | "pipelined" | "lock_cycles", "duration": s, "warmup": s,
  "window": n}``: a throughput run in this process, reported as one ``result`` line;
* ``{"cmd": "quit"}``: destroy the object and exit (so does EOF on stdin and SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from typing import Any, Dict, List

from pysyncobj import SyncObj, SyncObjConf
from pysyncobj.batteries import ReplDict, ReplLockManager

_out_lock = threading.Lock()
_MAX_RUN_S = 600.0
_MAX_LAT_SAMPLES = 2_000_000


def emit(rec: Dict[str, Any]) -> None:
    line = json.dumps(rec) + "\n"
    with _out_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def item_value(i: int) -> Dict[str, Any]:
    """About the size of a swimraft work item's fields."""
    return {"work_type": "selfplay", "priority": 50, "config": {}, "status": "pending",
            "timeout_seconds": 3600.0, "max_attempts": 3, "seq": i}


class Node:
    def __init__(self, args: argparse.Namespace) -> None:
        self.name = args.self
        conf_kwargs = json.loads(args.conf) if args.conf else {}
        self.conf_kwargs = conf_kwargs
        self.dict = ReplDict()
        consumers: List[Any] = [self.dict]
        self.locks = None
        if args.locks:
            self.locks = ReplLockManager(autoUnlockTime=30.0, selfID=self.name)
            consumers.append(self.locks)
        partners = [p for p in args.partners.split(",") if p]
        self.obj = SyncObj(args.self, partners, conf=SyncObjConf(**conf_kwargs), consumers=consumers)
        self.stop = threading.Event()
        self.writer_thread: threading.Thread | None = None
        self.status_interval = args.status_interval

    # -- status ---------------------------------------------------------------------------

    def status_loop(self) -> None:
        while not self.stop.wait(self.status_interval):
            try:
                leader = self.obj._getLeader()
                emit({"event": "status", "is_leader": bool(self.obj._isLeader()),
                      "leader": "" if leader is None else str(leader.id),
                      "term": int(self.obj.raftCurrentTerm), "commit_idx": int(self.obj.raftCommitIndex),
                      "last_applied": int(self.obj.raftLastApplied), "has_quorum": bool(self.obj.hasQuorum)})
            except Exception as exc:  # racy reads of another thread's state: report, keep going
                emit({"event": "status_error", "error": repr(exc)})

    # -- failover writer ----------------------------------------------------------------------

    def writer(self, period: float, max_inflight: int, report: float) -> None:
        lock = threading.Lock()
        ok: List[List[float]] = []
        err: List[List[Any]] = []
        inflight = [0]
        seq = 0

        def make_cb(t0: float):
            def cb(_result: Any, error: Any) -> None:
                t1 = time.monotonic()
                with lock:
                    inflight[0] -= 1
                    if error in (None, 0):
                        ok.append([t0, t1])
                    else:
                        err.append([t0, t1, int(error)])
            return cb

        next_t = time.monotonic()
        last_report = next_t
        skipped = 0
        while not self.stop.is_set():
            now = time.monotonic()
            if now >= next_t:
                next_t = max(next_t + period, now - period)
                with lock:
                    full = inflight[0] >= max_inflight
                    if not full:
                        inflight[0] += 1
                if full:
                    skipped += 1
                else:
                    seq += 1
                    self.dict.set(f"w{seq % 100}", seq, callback=make_cb(time.monotonic()))
            if now - last_report >= report:
                last_report = now
                with lock:
                    batch_ok, batch_err = ok[:], err[:]
                    ok.clear()
                    err.clear()
                    n_inflight = inflight[0]
                if batch_ok or batch_err:
                    emit({"event": "acks", "ok": batch_ok, "err": batch_err, "inflight": n_inflight,
                          "skipped": skipped})
            time.sleep(min(period, 0.002))

    # -- throughput workloads ---------------------------------------------------------------------

    def run(self, cmd: Dict[str, Any]) -> None:
        workload = cmd["workload"]
        duration = min(float(cmd.get("duration", 5.0)), _MAX_RUN_S)
        warmup = min(float(cmd.get("warmup", 1.0)), _MAX_RUN_S)
        window = int(cmd.get("window", 64))
        timeout = float(cmd.get("timeout", 10.0))
        errors: Dict[str, int] = {}
        lat: List[float] = []
        ops = 0
        try:
            if workload in ("seq_set", "lock_cycles"):
                ops, lat, errors, elapsed = self._sequential(workload, duration, warmup, timeout)
            elif workload == "pipelined":
                ops, lat, errors, elapsed = self._pipelined(duration, warmup, window, timeout)
            else:
                raise ValueError(f"unknown workload {workload}")
        except Exception as exc:
            emit({"event": "result", "workload": workload, "error": repr(exc)})
            return
        lat.sort()

        def pct(q: float) -> float | None:
            if not lat:
                return None
            return lat[min(len(lat) - 1, int(round((len(lat) - 1) * q / 100.0)))]

        emit({"event": "result", "workload": workload, "ops": ops, "elapsed": elapsed, "errors": errors,
              "lat_n": len(lat), "lat_p50": pct(50), "lat_p90": pct(90), "lat_p99": pct(99),
              "lat_max": lat[-1] if lat else None, "lat_mean": (sum(lat) / len(lat)) if lat else None,
              "is_leader": bool(self.obj._isLeader()), "term": int(self.obj.raftCurrentTerm)})

    def _sequential(self, workload: str, duration: float, warmup: float, timeout: float):
        from pysyncobj import SyncObjException
        errors: Dict[str, int] = {}
        lat: List[float] = []
        ops = 0
        i = 0
        start = time.monotonic()
        measure_from = start + warmup
        end = measure_from + duration
        t_meas = None
        while True:
            now = time.monotonic()
            if now >= end:
                break
            if t_meas is None and now >= measure_from:
                t_meas = now
                ops = 0
                lat.clear()
            i += 1
            t0 = time.monotonic()
            try:
                if workload == "seq_set":
                    self.dict.set(f"k{i % 1000}", item_value(i), sync=True, timeout=timeout)
                    n = 1
                else:
                    assert self.locks is not None, "start the node with --locks"
                    got = self.locks.tryAcquire("bench-lock", sync=True, timeout=timeout)
                    if not got:
                        errors["not_acquired"] = errors.get("not_acquired", 0) + 1
                    self.locks.release("bench-lock", sync=True, timeout=timeout)
                    n = 2
            except SyncObjException as exc:
                key = str(exc.errorCode) if hasattr(exc, "errorCode") else repr(exc)
                errors[key] = errors.get(key, 0) + 1
                continue
            t1 = time.monotonic()
            if t_meas is not None:
                ops += n
                if len(lat) < _MAX_LAT_SAMPLES:
                    lat.append(t1 - t0)
        elapsed = time.monotonic() - (t_meas or start)
        return ops, lat, errors, elapsed

    def _pipelined(self, duration: float, warmup: float, window: int, timeout: float):
        errors: Dict[str, int] = {}
        lat: List[float] = []
        state = {"ops": 0, "measuring": False}
        sem = threading.BoundedSemaphore(window)
        lock = threading.Lock()

        def make_cb(t0: float):
            def cb(_result: Any, error: Any) -> None:
                t1 = time.monotonic()
                with lock:
                    if error in (None, 0):
                        if state["measuring"] and t0 >= state["t_meas"]:
                            state["ops"] += 1
                            if len(lat) < _MAX_LAT_SAMPLES:
                                lat.append(t1 - t0)
                    else:
                        errors[str(error)] = errors.get(str(error), 0) + 1
                sem.release()
            return cb

        start = time.monotonic()
        measure_from = start + warmup
        end = measure_from + duration
        i = 0
        while True:
            now = time.monotonic()
            if now >= end:
                break
            if not state["measuring"] and now >= measure_from:
                with lock:
                    state["measuring"] = True
                    state["t_meas"] = now
            if not sem.acquire(timeout=timeout):
                errors["window_stuck"] = errors.get("window_stuck", 0) + 1
                break
            i += 1
            self.dict.set(f"k{i % 1000}", item_value(i), callback=make_cb(time.monotonic()))
        t_end = time.monotonic()
        # Let the window drain (bounded) so the next run starts clean; ops count only up to t_end.
        with lock:
            ops_at_end = state["ops"]
            lat_at_end = lat[:]
        drained = 0
        deadline = time.monotonic() + timeout
        while drained < window and time.monotonic() < deadline:
            if sem.acquire(timeout=max(0.0, deadline - time.monotonic())):
                drained += 1
        for _ in range(drained):
            sem.release()
        return ops_at_end, lat_at_end, errors, t_end - state.get("t_meas", start)

    # -- commands --------------------------------------------------------------------------

    def command_loop(self) -> None:
        for line in sys.stdin:
            if self.stop.is_set():
                break
            line = line.strip()
            if not line:
                continue
            try:
                cmd = json.loads(line)
            except ValueError:
                emit({"event": "error", "error": f"bad command {line[:100]!r}"})
                continue
            what = cmd.get("cmd")
            if what == "quit":
                break
            if what == "writer":
                if self.writer_thread is None:
                    self.writer_thread = threading.Thread(
                        target=self.writer, daemon=True,
                        args=(float(cmd.get("period", 0.005)), int(cmd.get("max_inflight", 400)),
                              float(cmd.get("report", 0.05))))
                    self.writer_thread.start()
            elif what == "run":
                self.run(cmd)
            else:
                emit({"event": "error", "error": f"unknown command {what!r}"})


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--self", required=True)
    ap.add_argument("--partners", default="")
    ap.add_argument("--conf", default="", help="SyncObjConf keyword arguments as JSON")
    ap.add_argument("--locks", action="store_true", help="also a ReplLockManager (autoUnlockTime 30 s)")
    ap.add_argument("--status-interval", type=float, default=0.1)
    args = ap.parse_args()
    if not args.self.startswith("127.0.0.1:") or any(p and not p.startswith("127.0.0.1:")
                                                      for p in args.partners.split(",")):
        sys.stderr.write("pysyncobj_node: loopback addresses only\n")
        return 2
    node = Node(args)
    signal.signal(signal.SIGTERM, lambda *_: (node.stop.set(), os._exit(0)))
    emit({"event": "ready", "node": node.name, "pid": os.getpid(), "conf": node.conf_kwargs})
    threading.Thread(target=node.status_loop, daemon=True).start()
    try:
        node.command_loop()
    finally:
        node.stop.set()
        try:
            node.obj.destroy()
        except Exception:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
