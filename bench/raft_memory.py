"""Memory: RSS of a Python process running one Raft node, idle and after 100k work items.

    python bench/raft_memory.py                  # swimraft and pysyncobj, 100k items
    python bench/raft_memory.py --quick          # 10k items, short idle phases

Each system is measured in a fresh child process (``--child``), reading its own VmRSS / VmHWM from
``/proc/self/status`` at each phase:

* ``python``: the interpreter with this script's own modules (argparse, json, threading), nothing else;
* ``imported``: after importing the library;
* ``idle``: the node started, leading (single-node Raft), then ``--idle`` seconds idle;
* ``after_items``: after adding ``--items`` work items in batches of 100, then ``--idle`` s idle.

swimraft: ``HybridCoordinator(Config(use_env=False, node_id="m", raft_enabled=True,
consensus_mode="raft", bind_host="127.0.0.1", raft_port=0, data_dir=TMP))``, items added with
``work.add_batch(100 items, force=True)`` (``force`` because backpressure refuses new items beyond
1000 pending); all of them stay pending, as ``work.stats()`` reports.
pysyncobj: a single-node ``SyncObj`` with a ``ReplDict`` (library defaults, in-memory log), items
added as ``ReplDict.update`` of 100 item dicts of the same fields (one log entry per batch, like
``add_batch``), pipelined with callbacks.

Results: a table on stdout, ``bench/results/raft_memory.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from typing import Any, Dict, List, Optional

# Only the modules above are loaded before the "python" reading; the children import the rest
# (asyncio comes with swimraft itself) after it.

HERE = os.path.dirname(os.path.abspath(__file__))


def _status_kib(key: str) -> Optional[int]:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def emit(phase: str, **extra: Any) -> None:
    rec = {"phase": phase, "rss_kib": _status_kib("VmRSS"), "hwm_kib": _status_kib("VmHWM"),
           "threads": threading.active_count(), "t": time.monotonic(), **extra}
    sys.stdout.write(json.dumps(rec) + "\n")
    sys.stdout.flush()


def dir_bytes(path: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def item(i: int) -> Dict[str, Any]:
    return {"work_type": "selfplay", "priority": 50, "config": {"board": "hex8", "seq": i}}


# -- children ----------------------------------------------------------------------------------------

def child_swimraft(items: int, idle: float, data_dir: str) -> None:
    emit("python")
    import swimraft
    emit("imported", version=swimraft.__version__)
    import asyncio
    asyncio.run(_child_swimraft(swimraft, items, idle, data_dir))


async def _child_swimraft(swimraft: Any, items: int, idle: float, data_dir: str) -> None:
    import asyncio
    coord = swimraft.HybridCoordinator(config=swimraft.Config(
        use_env=False, node_id="m", raft_enabled=True, consensus_mode="raft", bind_host="127.0.0.1",
        advertise_host="127.0.0.1", raft_port=0, data_dir=data_dir, cluster_name="bench"))
    await coord.start()
    try:
        deadline = time.monotonic() + 20
        while not coord.is_leader() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if not coord.is_leader():
            raise RuntimeError("single-node swimraft did not become leader within 20 s")
        await asyncio.sleep(idle)
        emit("idle", disk_bytes=dir_bytes(data_dir))
        t0 = time.monotonic()
        added = 0
        errors: Dict[str, int] = {}
        while added < items:
            n = min(100, items - added)
            try:
                ids = coord.work.add_batch([item(added + k) for k in range(n)], force=True, timeout=10.0)
                added += len(ids)
            except swimraft.SwimraftError as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                if sum(errors.values()) > 100:
                    raise
        add_s = time.monotonic() - t0
        stats = coord.work.stats(timeout=10.0)
        emit("added", add_s=add_s, errors=errors)
        await asyncio.sleep(idle)
        st = coord.get_status()["raft"]
        emit("after_items", items=added, stats=stats, disk_bytes=dir_bytes(data_dir), add_s=add_s,
             raft={k: st.get(k) for k in ("applied_index", "snapshot_index", "work_queue_size")})
    finally:
        await coord.stop()


def child_pysyncobj(items: int, idle: float) -> None:
    emit("python")
    from pysyncobj import SyncObj
    from pysyncobj.batteries import ReplDict
    from pysyncobj.version import VERSION
    emit("imported", version=VERSION)
    import socket
    import uuid
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    d = ReplDict()
    obj = SyncObj(f"127.0.0.1:{port}", [], consumers=[d])
    try:
        deadline = time.monotonic() + 20
        while not obj._isLeader() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not obj._isLeader():
            raise RuntimeError("single-node pysyncobj did not become leader within 20 s")
        time.sleep(idle)
        emit("idle")
        t0 = time.monotonic()
        done = threading.Semaphore(0)
        errors: Dict[str, int] = {}
        window = threading.BoundedSemaphore(200)

        def cb(_res: Any, err: Any) -> None:
            if err not in (None, 0):
                errors[str(err)] = errors.get(str(err), 0) + 1
            window.release()
            done.release()

        batches = 0
        added = 0
        now = time.time()
        while added < items:
            n = min(100, items - added)
            batch = {}
            for k in range(n):
                it = item(added + k)
                batch[uuid.uuid4().hex] = {**it, "status": "pending", "created_at": now, "attempts": 0,
                                           "timeout_seconds": 3600.0, "max_attempts": 3, "depends_on": []}
            if not window.acquire(timeout=30):
                raise RuntimeError("pysyncobj: no callback for 30 s")
            d.update(batch, callback=cb)
            added += n
            batches += 1
        for _ in range(batches):
            if not done.acquire(timeout=60):
                raise RuntimeError("pysyncobj: updates not applied within 60 s")
        add_s = time.monotonic() - t0
        emit("added", add_s=add_s, errors=errors)
        time.sleep(idle)
        emit("after_items", items=len(d), add_s=add_s, log_len=obj.getStatus().get("log_len"))
    finally:
        obj.destroy()


# -- parent ------------------------------------------------------------------------------------------

def run_child(system: str, args: argparse.Namespace) -> Dict[str, Any]:
    import subprocess
    import tempfile
    sys.path.insert(0, HERE)
    import raft_common as rc
    from adapters.base import kill_group
    tmp = tempfile.mkdtemp(prefix=f"raft_memory_{system}_")
    argv = [sys.executable, os.path.abspath(__file__), "--child", system, "--items", str(args.items),
            "--idle", str(args.idle), "--data-dir", tmp]
    phases: Dict[str, Any] = {}
    out: Dict[str, Any] = {"phases": phases}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    stderr_buf: List[str] = []
    threading.Thread(target=lambda: stderr_buf.extend(proc.stderr.readlines()), daemon=True).start()
    timeout = 120 + args.items / 100.0 + 4 * args.idle
    deadline = time.monotonic() + timeout
    try:
        assert proc.stdout is not None
        lines: List[str] = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
        reader.start()
        while reader.is_alive() and time.monotonic() < deadline:
            reader.join(0.2)
        if reader.is_alive():
            out["error"] = f"child did not finish within {timeout:.0f} s"
        for line in lines:
            try:
                rec = json.loads(line)
                phases[rec["phase"]] = rec
            except (ValueError, KeyError):
                pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if proc.returncode not in (0, None) and "error" not in out:
            out["error"] = f"child exit {proc.returncode}: {''.join(stderr_buf)[-500:]}"
    finally:
        kill_group(proc)
        rc.remove_workdir(tmp, keep=bool(out.get("error")))
    if out.get("error"):
        out["stderr_tail"] = "".join(stderr_buf)[-2000:]
        out["data_dir"] = tmp
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--idle", type=float, default=5.0, help="idle seconds before each reading")
    ap.add_argument("--quick", action="store_true", help="10k items, 1 s idle")
    ap.add_argument("--systems", default="swimraft,pysyncobj")
    ap.add_argument("--child", choices=["swimraft", "pysyncobj"], help=argparse.SUPPRESS)
    ap.add_argument("--data-dir", help=argparse.SUPPRESS)
    # The options of raft_common.add_run_options, spelled out: a child must not import the
    # harness (its modules would count in the child's RSS readings).
    ap.add_argument("--no-wait", action="store_true", help="do not wait for failure_detection.py or .ci/run to finish")
    ap.add_argument("--attempts", type=int, default=2,
                    help="runs per system when failure_detection.py or .ci/run ran during the measurement")
    ap.add_argument("--no-install", action="store_true", help="do not pip install pysyncobj when it is missing")
    ap.add_argument("--output", default="raft_memory.json")
    args = ap.parse_args()
    if args.quick:
        args.items, args.idle = 10_000, 1.0
    if not (0 < args.items <= 1_000_000 and 0 <= args.idle <= 300):
        ap.error("--items must be in 1..1,000,000 and --idle in 0..300")
    if args.child == "swimraft":
        child_swimraft(args.items, args.idle, args.data_dir)
        return 0
    if args.child == "pysyncobj":
        child_pysyncobj(args.items, args.idle)
        return 0

    sys.path.insert(0, HERE)
    import raft_common as rc
    rc.install_sigterm()
    data = rc.new_run("raft_memory", {"items": args.items, "idle_s": args.idle})

    def run(system: str) -> Dict[str, Any]:
        rc.say(f"[memory] {system}: {args.items} items ...")
        return run_child(system, args)

    rc.measure_systems(data, args.systems, args, run)
    path = rc.finish_run(data, args.output)

    def mb(res: Dict[str, Any], phase: str, key: str = "rss_kib") -> str:
        v = res.get("phases", {}).get(phase, {}).get(key)
        return "-" if v is None else f"{v / 1024:.1f}"

    rows = []
    for system, res in data["results"].items():
        after = res.get("phases", {}).get("after_items", {})
        pending = "-"
        if system == "swimraft" and isinstance(after.get("stats"), dict):
            st = after["stats"]
            pending = str(st.get("pending", (st.get("by_status") or {}).get("pending", "?")))
        elif system == "pysyncobj" and "items" in after:
            pending = f'{after["items"]} (dict entries)'
        add_s = after.get("add_s")
        rows.append([rc.skew_label(system, res), mb(res, "python"), mb(res, "imported"), mb(res, "idle"), mb(res, "after_items"),
                     mb(res, "after_items", "hwm_kib"), pending, "-" if add_s is None else f"{add_s:.1f}",
                     res.get("error", "")[:60]])
    print(f"\nMemory (RSS, MB = MiB) of one process running one node; {args.items:,} items added in batches of 100\n")
    print(rc.table(["system", "python", "imported", "idle", "after items", "peak", "pending", "add s", "error"],
                   rows))
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
