"""Shared helpers of the Raft benchmarks (raft_failover.py, raft_throughput.py, raft_memory.py).

* Node processes (swimraft agents, pysyncobj nodes) run in their own session (process group),
  print JSON lines on stdout, and are read by one thread each; every line is timestamped on
  receipt with ``time.monotonic()`` (CLOCK_MONOTONIC: the same clock in every process of the
  machine, so times taken inside a pysyncobj node process compare directly).
* ``LeaderTracker`` folds the status lines into leader changes and elections.
* Everything binds 127.0.0.1; every wait is bounded; ``Procs`` kills what it started (by PID /
  process group of each child, never by name).
"""

from __future__ import annotations

import io
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

# The failure-detection harness's process helpers (bench/ is on sys.path: the scripts run from it).
from adapters.base import host_cpu_times, kill_group, pip_install, process_cpu_seconds, run_quiet
from cluster import free_ports  # noqa: F401  (the scripts call rc.free_ports)

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS_DIR = os.path.join(HERE, "results")
PYSYNCOBJ_NODE = os.path.join(HERE, "agents", "pysyncobj_node.py")


def say(*parts: Any) -> None:
    """Progress on stderr (stdout carries the tables)."""
    sys.stderr.write(time.strftime("%H:%M:%S ") + " ".join(str(p) for p in parts) + "\n")
    sys.stderr.flush()


# -- statistics ---------------------------------------------------------------------------

def percentile(values: Iterable[float], q: float) -> Optional[float]:
    """Linear-interpolated percentile, q in [0, 100]; None for no values."""
    v = sorted(x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x)))
    if not v:
        return None
    if len(v) == 1:
        return v[0]
    pos = (len(v) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def summarize(values: Iterable[Optional[float]]) -> Dict[str, Any]:
    v = [x for x in values if x is not None]
    if not v:
        return {"n": 0, "median": None, "p90": None, "p99": None, "max": None, "min": None, "mean": None}
    return {"n": len(v), "median": percentile(v, 50), "p90": percentile(v, 90), "p99": percentile(v, 99),
            "max": max(v), "min": min(v), "mean": sum(v) / len(v)}


def fmt(x: Any, digits: int = 1, scale: float = 1.0) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x * scale:,.{digits}f}"


def table(headers: List[str], rows: List[List[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = []
    for n, r in enumerate(cells):
        out.append("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


# -- machine ----------------------------------------------------------------------------

def host_steal_ticks() -> tuple[int, int]:
    """(steal, total) jiffies of the whole machine, from /proc/stat. Steal is the time the
    hypervisor ran something else while this VM had work: on these shared 2-core VMs it moves
    every figure, so the benchmarks report it beside their results."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    return (vals[7] if len(vals) > 7 else 0), sum(vals[:8])


def steal_pct(t0: tuple[int, int], t1: tuple[int, int]) -> Optional[float]:
    """Percent of the machine's time stolen between two ``host_steal_ticks`` samples."""
    total = t1[1] - t0[1]
    return None if total <= 0 else 100.0 * (t1[0] - t0[0]) / total


class HostCpu:
    """Whole-machine busy % and steal % since construction (from /proc/stat)."""

    def __init__(self) -> None:
        self.t0 = host_cpu_times()
        self.s0 = host_steal_ticks()

    def busy_pct(self) -> Optional[float]:
        busy, total = host_cpu_times()
        db, dt = busy - self.t0[0], total - self.t0[1]
        return None if dt <= 0 else 100.0 * db / dt

    def steal_pct(self) -> Optional[float]:
        return steal_pct(self.s0, host_steal_ticks())


# Other heavy work on this 2-core machine that skews the figures: the failure-detection benchmark
# and the project's CI (cargo builds, test clusters). Regexes for ``pgrep -f``.
OTHER_LOAD = ["failure_detection[.]py", "[.]ci/run"]


def _pgrep(patterns: List[str]) -> List[Tuple[int, str]]:
    """(pid, command line) of running processes matching any of ``patterns`` (pgrep -af),
    this process excluded."""
    me = os.getpid()
    found: List[Tuple[int, str]] = []
    for pattern in patterns:
        try:
            out = subprocess.run(["pgrep", "-af", pattern], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        for line in out.stdout.splitlines():
            head = line.split(maxsplit=1)
            if head and head[0].isdigit() and int(head[0]) != me:
                found.append((int(head[0]), line))
    return found


def other_benchmark_running() -> List[str]:
    """Command lines of running processes matching OTHER_LOAD, this process excluded."""
    return [line for _, line in _pgrep(OTHER_LOAD)]


# Node processes of these benchmarks. One left running by an earlier, interrupted run (or by a
# hand-made cluster) keeps heart-beating, takes CPU and disk from the measured nodes and never
# ends by itself, so it is reported, not waited for.
NODE_PROCESSES = ["swimraft[.]agent", "pysyncobj_node[.]py"]


def _ancestors(pid: int) -> List[int]:
    chain: List[int] = []
    while pid > 1 and len(chain) < 64:
        try:
            with open(f"/proc/{pid}/status") as f:
                ppid = next(int(l.split()[1]) for l in f if l.startswith("PPid:"))
        except (OSError, StopIteration, ValueError):
            break
        chain.append(ppid)
        pid = ppid
    return chain


def stray_nodes() -> List[str]:
    """Command lines of node processes (NODE_PROCESSES) that this process did not start."""
    me = os.getpid()
    return [line for pid, line in _pgrep(NODE_PROCESSES) if me not in _ancestors(pid)]


def wait_for_quiet_machine(enabled: bool, poll: float = 30.0, give_up: float = 2400.0) -> Dict[str, Any]:
    """Waits (bounded) until neither failure_detection.py nor .ci/run runs, so that measurements are not skewed."""
    info: Dict[str, Any] = {"waited_s": 0.0, "other_benchmark_at_start": False, "gave_up": False}
    if not enabled:
        info["skipped"] = True
        return info
    t0 = time.monotonic()
    first = True
    while True:
        found = other_benchmark_running()
        if not found:
            break
        if first:
            info["other_benchmark_at_start"] = True
            say("other load (failure_detection.py / .ci/run) is running; waiting for it to finish (poll 30 s, at most "
                f"{give_up / 60:.0f} min):", found[0][:120])
            first = False
        if time.monotonic() - t0 >= give_up:
            info["gave_up"] = True
            say("gave up waiting: measuring while failure_detection.py / .ci/run still runs (figures skewed)")
            break
        time.sleep(poll)
    info["waited_s"] = round(time.monotonic() - t0, 1)
    info["loadavg_at_start"] = os.getloadavg()
    strays = stray_nodes()
    if strays:
        info["stray_nodes"] = strays[:10]
        say(f"{len(strays)} node process(es) not started by this run are running and skew the figures "
            "(stop them by PID):", "; ".join(l[:80] for l in strays[:3]))
    return info


class OtherBenchmarkMonitor:
    """Polls (every ``period`` s, in a thread) whether OTHER_LOAD runs, between start() and stop()."""

    def __init__(self, period: float = 5.0) -> None:
        self.period = period
        self.seen: List[str] = []
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "OtherBenchmarkMonitor":
        self.seen = other_benchmark_running()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True, name="other-bench-monitor")
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            found = other_benchmark_running()
            if found and not self.seen:
                self.seen = found
        return

    def stop(self) -> bool:
        """True when OTHER_LOAD was seen running meanwhile."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.period + 15)
        if not self.seen:
            self.seen = other_benchmark_running()
        return bool(self.seen)


def measure_quietly(name: str, enabled: bool, attempts: int, run: Callable[[], Dict[str, Any]]) -> Dict[str, Any]:
    """Waits until no OTHER_LOAD is running, runs ``run()``, and when one was seen running
    meanwhile, waits and runs again (at most ``attempts`` times). The last result is returned with
    ``machine``: the waits, and whether the figures are skewed."""
    waits: List[Dict[str, Any]] = []
    res: Dict[str, Any] = {}
    for attempt in range(max(1, attempts)):
        waits.append(wait_for_quiet_machine(enabled))
        build0 = swimraft_build()
        mon = OtherBenchmarkMonitor().start()
        host = HostCpu()
        res = run()
        busy = host.busy_pct()
        skewed = mon.stop()
        build1 = swimraft_build()
        changed = build0.get("sha256_12") != build1.get("sha256_12")
        strays = stray_nodes()
        res["machine"] = {"waits": waits, "attempt": attempt + 1, "host_busy_pct": busy,
                          "other_load_ran_meanwhile": skewed, "other_load_seen": mon.seen[:5],
                          "stray_nodes": strays[:10],
                          "swimraft_build": build0, "swimraft_reinstalled_meanwhile": changed,
                          "stale_swimraft_loaded_here": bool(build1.get("loaded_here_is_stale"))}
        if changed:
            say(f"[{name}] swimraft was reinstalled during the measurement ({build0.get('sha256_12')} -> "
                f"{build1.get('sha256_12')})")
        if not (skewed or changed) or not enabled:
            break
        say(f"[{name}] figures skewed" + ("; measuring again" if attempt + 1 < attempts
                                          else "; keeping them (marked skewed)"))
    return res


def install_sigterm() -> None:
    """SIGTERM ends the harness like Ctrl-C does, so every child is stopped by the finally blocks."""
    def handler(_sig: int, _frame: Any) -> None:
        raise KeyboardInterrupt("SIGTERM")
    signal.signal(signal.SIGTERM, handler)


def write_json(name: str, data: Dict[str, Any]) -> str:
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, name)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, default=str)
        f.write("\n")
    os.replace(tmp, path)
    return path


def swimraft_build() -> Dict[str, Any]:
    """Which build of the engine is installed (the native module's mtime and a hash prefix), found
    without importing swimraft, and whether this process runs a replaced (stale) copy of it."""
    import glob
    import hashlib
    import importlib.util
    spec = importlib.util.find_spec("swimraft")
    if spec is None or not spec.submodule_search_locations:
        return {}
    natives = sorted(glob.glob(os.path.join(list(spec.submodule_search_locations)[0], "_native*.so")))
    if not natives:
        return {}
    h = hashlib.sha256()
    with open(natives[0], "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    st = os.stat(natives[0])
    stale = False
    try:
        with open("/proc/self/maps") as f:
            stale = any("_native" in line and "(deleted)" in line for line in f)
    except OSError:
        pass
    return {"native": natives[0], "mtime": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(st.st_mtime)),
            "sha256_12": h.hexdigest()[:12], "loaded_here_is_stale": stale}


def versions() -> Dict[str, Any]:
    out: Dict[str, Any] = {"python": sys.version.split()[0]}
    try:  # without importing swimraft: a reinstall while waiting must not leave this process on the old build
        from importlib.metadata import version as dist_version
        out["swimraft"] = dist_version("swimraft")
        out["swimraft_build"] = swimraft_build()
    except Exception as exc:  # reported, not fatal
        out["swimraft"] = f"unavailable: {exc}"
    try:
        from pysyncobj.version import VERSION
        out["pysyncobj"] = VERSION
    except Exception as exc:
        out["pysyncobj"] = f"unavailable: {exc}"
    out["cpus"] = os.cpu_count()
    out["kernel"] = os.uname().release
    return out


# -- one benchmark run ---------------------------------------------------------------------

def add_run_options(ap: Any, output: str) -> None:
    """The options the failover and throughput benchmarks share (raft_memory.py spells them out:
    its children must not import this module)."""
    ap.add_argument("--no-wait", action="store_true", help="do not wait for failure_detection.py or .ci/run to finish")
    ap.add_argument("--attempts", type=int, default=2,
                    help="runs per system when failure_detection.py or .ci/run ran during the measurement")
    ap.add_argument("--keep-logs", action="store_true")
    ap.add_argument("--no-install", action="store_true", help=f"do not pip install {PYSYNCOBJ} when it is missing")
    ap.add_argument("--output", default=output)


def new_run(benchmark: str, params: Dict[str, Any]) -> Dict[str, Any]:
    """The JSON record of one benchmark run; ``results`` is filled per system."""
    return {"benchmark": benchmark, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "argv": sys.argv,
            "versions": versions(), "params": params, "results": {}}


# The competitor, pinned: the figures in the README were measured with this version.
PYSYNCOBJ = "pysyncobj==0.3.17"


def ensure_pysyncobj(install: bool) -> None:
    """Makes sure pysyncobj imports (pip-installing the pinned version when missing, unless
    ``install`` is false); otherwise exits with the reason before anything starts, instead of
    every pysyncobj node failing to come up."""
    probe = [sys.executable, "-c", "import pysyncobj.batteries, pysyncobj.version as v; print(v.VERSION)"]
    rc, out = run_quiet(probe, 60)
    if rc != 0 and install:
        say(f"pysyncobj is missing; pip install {PYSYNCOBJ}")
        ok, why = pip_install(PYSYNCOBJ)
        if not ok:
            raise SystemExit(why)
        rc, out = run_quiet(probe, 60)
    if rc != 0:
        raise SystemExit(f"pysyncobj cannot be imported ({out.strip()[-200:]}); "
                         f"pip install {PYSYNCOBJ}, or leave the pysyncobj systems out of --systems")


def measure_systems(data: Dict[str, Any], systems: str, args: Any,
                    run: Callable[[str], Dict[str, Any]]) -> None:
    """Runs ``run(system)`` for each of the comma-separated ``systems`` (quietly, see
    ``measure_quietly``), saving the JSON after each."""
    names = [s.strip() for s in systems.split(",") if s.strip()]
    if any(name.startswith("pysyncobj") for name in names):
        ensure_pysyncobj(install=not getattr(args, "no_install", False))
        data["versions"] = versions()  # now with pysyncobj's
    for system in names:
        data["results"][system] = measure_quietly(system, not args.no_wait, args.attempts,
                                                  lambda: run(system))
        write_json(args.output, data)


def finish_run(data: Dict[str, Any], output: str, host: Optional["HostCpu"] = None) -> str:
    """Records the machine's state at the end and writes the JSON; returns its path."""
    data["swimraft_build_at_end"] = swimraft_build()  # a reinstall during the run shows here
    if host is not None:
        data["host_busy_pct"] = host.busy_pct()
        data["host_steal_pct"] = host.steal_pct()
    data["other_benchmark_at_end"] = other_benchmark_running()
    return write_json(output, data)


def skew_label(system: str, result: Dict[str, Any]) -> str:
    """``system``, marked when other load, a stray node or a reinstall overlapped its measurement."""
    m = result.get("machine") or {}
    skewed = (m.get("other_load_ran_meanwhile") or m.get("swimraft_reinstalled_meanwhile")
              or m.get("stray_nodes"))
    return system + (" (SKEWED)" if skewed else "")


# -- node processes -----------------------------------------------------------------------


def _lines_until_closed(stream: Any) -> Iterator[bytes]:
    """The lines of a child's pipe until it ends or is closed by another thread (``stop()``
    closes it after killing the child, possibly while a reader is still iterating)."""
    while True:
        try:
            raw = stream.readline()
        except (ValueError, OSError):  # closed under us
            return
        if not raw:
            return
        yield raw


class NodeProc:
    """One child process that prints JSON lines; ``on_line(node, t, record)`` sees each of them."""

    def __init__(self, name: str, argv: List[str], env: Dict[str, str], log_dir: str,
                 on_line: Optional[Callable[["NodeProc", float, Dict[str, Any]], None]] = None) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_dir = log_dir
        self.on_line = on_line
        self.proc: Optional[subprocess.Popen] = None
        self.generation = 0
        self.ready = threading.Event()
        self.ready_t: Optional[float] = None
        self.last_status: Optional[Dict[str, Any]] = None
        self.last_status_t = 0.0
        self.started_t = 0.0
        self.exited = threading.Event()
        self._stdin_lock = threading.Lock()
        self.bad_lines = 0

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        self.generation += 1
        self.ready = threading.Event()
        self.exited = threading.Event()
        self.ready_t = None
        self.last_status = None
        self.last_status_t = 0.0
        err = open(os.path.join(self.log_dir, f"{self.name}.g{self.generation}.stderr"), "wb")
        self.started_t = time.monotonic()
        self.proc = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=err, start_new_session=True, bufsize=0)
        err.close()
        threading.Thread(target=self._read, args=(self.proc, self.generation), daemon=True,
                         name=f"reader-{self.name}").start()

    def _read(self, proc: subprocess.Popen, generation: int) -> None:
        # Runs until the child's stdout ends, or until stop() closes the pipe under it.
        out = open(os.path.join(self.log_dir, f"{self.name}.g{generation}.stdout"), "wb")
        try:
            assert proc.stdout is not None
            # Buffered: the pipe is unbuffered (bufsize=0), and a raw readline reads one byte per
            # system call, each taking and releasing the GIL in the measuring process.
            for raw in _lines_until_closed(io.BufferedReader(proc.stdout, 65536)):
                t = time.monotonic()
                if not raw.startswith(b'{"event": "status"'):  # status lines: folded by on_line
                    out.write(raw[:20000])
                try:
                    rec = json.loads(raw)
                except ValueError:
                    self.bad_lines += 1
                    continue
                if not isinstance(rec, dict):
                    continue
                ev = rec.get("event")
                if ev == "ready":
                    self.ready_t = t
                    self.ready.set()
                elif ev == "status":
                    self.last_status = rec
                    self.last_status_t = t
                if self.on_line is not None and generation == self.generation:
                    try:
                        self.on_line(self, t, rec)
                    except Exception as exc:  # a harness bug must not kill the reader silently
                        say(f"[{self.name}] on_line error: {exc!r}")
        finally:
            out.close()
            if generation == self.generation:
                self.exited.set()

    def send(self, obj: Dict[str, Any]) -> None:
        """One JSON command line on the child's stdin."""
        with self._stdin_lock:
            if self.proc is None or self.proc.stdin is None:
                raise RuntimeError(f"{self.name} not running")
            self.proc.stdin.write((json.dumps(obj) + "\n").encode())
            self.proc.stdin.flush()

    def sigkill(self) -> float:
        """SIGKILL by PID; returns the monotonic time just before the signal."""
        assert self.proc is not None
        t = time.monotonic()
        os.kill(self.proc.pid, signal.SIGKILL)
        return t

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the process group, then SIGKILL it after ``timeout``."""
        p = self.proc
        if p is None:
            return
        kill_group(p, grace=timeout)
        if p.poll() is None:
            say(f"[{self.name}] pid {p.pid} did not exit after SIGKILL")
        for s in (p.stdin, p.stdout):
            try:
                if s is not None:
                    s.close()
            except OSError:
                pass

    def cpu(self) -> Optional[float]:
        return process_cpu_seconds(self.proc.pid) if self.alive() else None


class LeaderTracker:
    """Leader changes and elections, from (node, term, leader_id) observations.

    A *leader change* is a new (term, leader) pair with a non-empty leader, counted once no matter
    how many nodes report it; the first pair seen is the initial leader, not a change.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pairs: Dict[Tuple[int, str], float] = {}
        self.max_term = 0
        self.history: List[Tuple[float, str, int, str]] = []
        self.per_node: Dict[str, Tuple[int, str]] = {}

    def observe(self, node: str, t: float, term: int, leader: str) -> None:
        with self.lock:
            self.max_term = max(self.max_term, term)
            key = (term, leader)
            if self.per_node.get(node) != key:
                self.per_node[node] = key
                if len(self.history) < 100000:
                    self.history.append((t, node, term, leader))
            if leader and key not in self.pairs:
                self.pairs[key] = t

    def leaders_between(self, t0: float, t1: float) -> List[Tuple[int, str, float]]:
        with self.lock:
            return sorted((term, leader, t) for (term, leader), t in self.pairs.items() if t0 <= t <= t1)

    def changes_between(self, t0: float, t1: float) -> int:
        return len(self.leaders_between(t0, t1))

    def term_at(self, t: float) -> int:
        with self.lock:
            terms = [term for (tt, _n, term, _l) in self.history if tt <= t]
        return max(terms) if terms else 0

    def changes_total(self) -> int:
        with self.lock:
            return max(0, len(self.pairs) - 1)

    def snapshot(self) -> Dict[str, Any]:
        with self.lock:
            return {"leaders": [[term, leader, round(t, 4)] for (term, leader), t in sorted(self.pairs.items())],
                    "max_term": self.max_term}


# -- swimraft voters ----------------------------------------------------------------------

def voters_spec(ports: List[int]) -> str:
    return ",".join(f"v{i}=127.0.0.1:{p}" for i, p in enumerate(ports))


def swimraft_agent_env(name: str, port: int, voters: str, parent_dir: str,
                       status_interval: float = 0.1) -> Dict[str, str]:
    """A swimraft voter agent on 127.0.0.1 with its data in ``parent_dir/name``."""
    from swimraft.agent import loopback_env  # imported late: after any wait for a quiet machine
    env = loopback_env(name, data_dir=parent_dir, cluster_name="bench", preset="lan",
                       status_interval=status_interval, raft_port=port, raft_voters=voters)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def swimraft_raft_timing() -> Dict[str, Any]:
    """The LAN preset's Raft timers, as the agents resolve them."""
    try:
        import swimraft
        cfg = swimraft.Config(use_env=False, node_id="x", raft_enabled=True, consensus_mode="raft", preset="lan")
        raft = cfg.get("raft")
        return {k: raft[k] for k in ("heartbeat_interval_ms", "election_timeout_min_ms", "election_timeout_max_ms",
                                      "snapshot_interval_ms")}
    except Exception as exc:
        return {"error": repr(exc)}


def swimraft_status_hook(tracker: LeaderTracker) -> Callable[[NodeProc, float, Dict[str, Any]], None]:
    def hook(node: NodeProc, t: float, rec: Dict[str, Any]) -> None:
        if rec.get("event") == "status" and isinstance(rec.get("raft"), dict):
            r = rec["raft"]
            tracker.observe(node.name, t, int(r.get("term") or 0), str(r.get("leader_id") or ""))
    return hook


def pysyncobj_status_hook(tracker: LeaderTracker,
                          extra: Optional[Callable[[NodeProc, float, Dict[str, Any]], None]] = None
                          ) -> Callable[[NodeProc, float, Dict[str, Any]], None]:
    def hook(node: NodeProc, t: float, rec: Dict[str, Any]) -> None:
        if rec.get("event") == "status":
            tracker.observe(node.name, t, int(rec.get("term") or 0), str(rec.get("leader") or ""))
        if extra is not None:
            extra(node, t, rec)
    return hook


def status_leader(nodes: Iterable[NodeProc], key_leader: str, key_is_leader: str, max_age: float = 0.5,
                  sub: Optional[str] = None) -> Tuple[Optional[NodeProc], Optional[str]]:
    """The node that says it leads, if the others that answer agree; (node, leader_id) or (None, None)."""
    now = time.monotonic()
    leaders, claimed = [], []
    for n in nodes:
        st = n.last_status
        if not n.alive() or st is None or now - n.last_status_t > max_age:
            continue
        if sub:
            st = st.get(sub) or {}
        leaders.append(str(st.get(key_leader) or ""))
        if st.get(key_is_leader):
            claimed.append(n)
    if len(claimed) != 1 or not leaders or any(l != leaders[0] for l in leaders) or not leaders[0]:
        return None, None
    return claimed[0], leaders[0]


class Procs:
    """Every child started, for the final cleanup."""

    def __init__(self) -> None:
        self.nodes: List[NodeProc] = []

    def add(self, node: NodeProc) -> NodeProc:
        self.nodes.append(node)
        return node

    def stop_all(self) -> None:
        for n in self.nodes:
            try:
                n.stop(timeout=3.0)
            except Exception as exc:
                say(f"stopping {n.name}: {exc!r}")


def make_workdir(prefix: str) -> str:
    return tempfile.mkdtemp(prefix=prefix)


def remove_workdir(path: str, keep: bool) -> None:
    if not keep:
        shutil.rmtree(path, ignore_errors=True)


def jitter(lo: float, hi: float, rng: random.Random) -> float:
    return lo + (hi - lo) * rng.random()
