"""What every system adapter provides, and the member process wrapper.

An adapter knows how to start one member of its system (argv + env), how to
read that member's output lines, and how to name members.  Everything about
clusters, kills and timing lives in ``bench/cluster.py``.

Each started process is put in its own session (process group) and recorded
in ``_LIVE`` so that :func:`kill_all` can always end it, also on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

# Kinds of membership events every adapter reports.
ALIVE, SUSPECTED, FAILED, LEFT = "alive", "suspected", "failed", "left"
KINDS = (ALIVE, SUSPECTED, FAILED, LEFT)


@dataclass
class Parsed:
    """One thing an adapter understood in a line of output.

    what: "ready" (info: dict), "event" (kind, subject: raw id),
          "status" (info: {"alive": [...], "suspected": [...], "failed": [...],
          plus optional extras}).
    """
    what: str
    kind: str = ""
    subject: str = ""
    info: dict = field(default_factory=dict)


@dataclass
class MemberSpec:
    """A cluster member's fixed identity (kept across restarts)."""
    index: int
    name: str
    port: int             # gossip port, UDP and TCP
    aux_port: int         # spare TCP port (Serf RPC); unused by the others
    data_dir: str
    log_path: str


class Adapter:
    """Base class; subclasses fill in the system specifics."""

    name = "base"
    # Index of members whose address every member is given as seed / join.
    seed_indexes: tuple = (0,)
    # A member is "ready" once a line parsed as "ready" arrives; systems
    # without such a line set ready_on_start to consider it ready at once.
    ready_on_start = False
    # False when the system's output shows suspicion but never its end (Serf
    # logs "Suspect X has failed" but nothing when X refutes it): suspicion
    # is then recorded as an event but does not change the observer's view.
    suspicion_in_view = True

    def check(self, install: bool) -> tuple[bool, str]:
        """(True, version) if usable, else (False, reason).  May install."""
        raise NotImplementedError

    def command(self, m: MemberSpec, seeds: list[MemberSpec]) -> tuple[list, dict]:
        """argv and extra environment to start member ``m``."""
        raise NotImplementedError

    def parse(self, line: str) -> list[Parsed]:
        """Understand one stdout line (stderr is only logged)."""
        raise NotImplementedError

    def subject_to_name(self, raw: str, members: list[MemberSpec]) -> str | None:
        """Map a raw member id from the output to a member name."""
        for m in members:
            if raw == m.name:
                return m.name
        return None

    def probe_period(self, ready_infos: list[dict], statuses: list[dict]) -> tuple[float, str]:
        """(seconds, how it was determined)."""
        raise NotImplementedError


# ---------------------------------------------------------------- processes

_LIVE: dict[int, subprocess.Popen] = {}
_LIVE_LOCK = threading.Lock()


def kill_group(proc: subprocess.Popen, grace: float = 0.0) -> None:
    """End a process we started, and its process group (it leads its own
    session).  With ``grace`` > 0, SIGTERM first and wait that long."""
    if proc is None:
        return
    try:
        pgid = proc.pid  # start_new_session=True: pgid == pid
        if grace > 0 and proc.poll() is None:
            try:
                os.killpg(pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    finally:
        with _LIVE_LOCK:
            _LIVE.pop(proc.pid, None)


def kill_all() -> None:
    """Kill every process group this harness started that is still known."""
    with _LIVE_LOCK:
        procs = list(_LIVE.values())
    for p in procs:
        kill_group(p)


def spawn(argv: list, env_extra: dict, cwd: str | None = None,
          stdout=subprocess.PIPE, stderr=subprocess.PIPE) -> subprocess.Popen:
    env = dict(os.environ)
    env.update({k: str(v) for k, v in env_extra.items()})
    env.setdefault("PYTHONUNBUFFERED", "1")
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=stdout, stderr=stderr,
                            start_new_session=True)
    with _LIVE_LOCK:
        _LIVE[proc.pid] = proc
    return proc


class MemberProcess:
    """One running incarnation of a member, with a reader thread per stream.

    ``on_line(member_process, t, line)`` is called for every stdout line with
    t = time.time() taken when the harness read it.  Both streams are copied
    to the member's log file.
    """

    def __init__(self, spec: MemberSpec, generation: int, argv: list,
                 env_extra: dict, on_line) -> None:
        self.spec = spec
        self.generation = generation
        self.on_line = on_line
        self.ready = threading.Event()
        self.ready_info: dict = {}
        self.started_at = time.time()
        self._log = open(spec.log_path, "a", buffering=1, errors="replace")
        self._log_lock = threading.Lock()
        self._log_write(f"### start generation {generation}: {' '.join(map(str, argv))}\n")
        self.proc = spawn(argv, env_extra, cwd=spec.data_dir)
        self.pid = self.proc.pid
        self._threads = [
            threading.Thread(target=self._read, args=(self.proc.stdout, True),
                             daemon=True, name=f"{spec.name}-out"),
            threading.Thread(target=self._read, args=(self.proc.stderr, False),
                             daemon=True, name=f"{spec.name}-err"),
        ]
        for t in self._threads:
            t.start()

    def _log_write(self, s: str) -> None:
        with self._log_lock:
            try:
                self._log.write(s)
            except ValueError:  # closed
                pass

    def _read(self, stream, parse: bool) -> None:
        try:
            for raw in iter(stream.readline, b""):
                t = time.time()
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                self._log_write(("" if parse else "[stderr] ") + line + "\n")
                if parse:
                    try:
                        self.on_line(self, t, line)
                    except Exception as e:  # never let a parse bug kill the reader
                        self._log_write(f"### harness parse error: {e!r}\n")
        except (OSError, ValueError):
            pass

    def alive(self) -> bool:
        return self.proc.poll() is None

    def sigkill(self) -> float:
        """SIGKILL this member by PID (then its process group, which it leads,
        so that helper children die too); returns the kill time."""
        t = time.time()
        os.kill(self.pid, signal.SIGKILL)
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return t

    def stop(self, grace: float = 3.0) -> None:
        kill_group(self.proc, grace=grace)
        for t in self._threads:
            t.join(timeout=2)
        self._log_write(f"### stopped generation {self.generation}\n")

    def close_log(self) -> None:
        with self._log_lock:
            try:
                self._log.close()
            except Exception:
                pass


def _vmrss(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _group_pids(pid: int) -> list[int]:
    """pid plus the other processes in its process group."""
    out = [pid]
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == pid:
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            if int(stat.rsplit(")", 1)[1].split()[2]) == pid:
                out.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return out


def process_cpu_seconds(pid: int) -> float | None:
    """utime+stime (seconds) of one process (all its threads), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def cpu_seconds(pid: int) -> float | None:
    """utime+stime (seconds) of a member process and its process group."""
    times = [t for t in map(process_cpu_seconds, _group_pids(pid)) if t is not None]
    return sum(times) if times else None


def host_cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    total = sum(vals[:8])
    return total - idle, total


def rss_kib(pid: int) -> int | None:
    """VmRSS (from /proc/PID/status) in KiB of a member process plus any
    other process in its process group (helpers it started), or None."""
    own = _vmrss(pid)
    if own is None:
        return None
    return own + sum(_vmrss(p) or 0 for p in _group_pids(pid)[1:])


def run_quiet(argv: list, timeout: float) -> tuple[int, str]:
    """Run a helper command (bounded); (returncode, combined output)."""
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout, text=True, errors="replace")
        return r.returncode, (r.stdout or "") + (r.stderr or "")
    except FileNotFoundError as e:
        return 127, str(e)
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {timeout:.0f}s: {' '.join(argv)}"


_APT_UPDATED = False


def apt_install(package: str, timeout: float = 600) -> tuple[bool, str]:
    """apt-get install (running apt-get update once first). Needs root."""
    global _APT_UPDATED
    if os.geteuid() != 0:
        return False, "not root, cannot apt-get install"
    env_argv = ["env", "DEBIAN_FRONTEND=noninteractive"]
    if not _APT_UPDATED:
        rc, out = run_quiet(env_argv + ["apt-get", "update", "-qq"], timeout)
        if rc != 0:
            return False, "apt-get update failed: " + out.strip()[-300:]
        _APT_UPDATED = True
    rc, out = run_quiet(env_argv + ["apt-get", "install", "-y", "-qq", package], timeout)
    if rc != 0:
        return False, f"apt-get install {package} failed: " + out.strip()[-300:]
    return True, "installed"


def pip_install(package: str, timeout: float = 600) -> tuple[bool, str]:
    import sys
    rc, out = run_quiet([sys.executable, "-m", "pip", "install", "-q", package], timeout)
    if rc != 0:
        return False, f"pip install {package} failed: " + out.strip()[-300:]
    return True, "installed"
