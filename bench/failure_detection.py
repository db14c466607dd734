#!/usr/bin/env python3
"""SWIM-style failure detection, three systems side by side.

  python bench/failure_detection.py [--systems swimraft,serf,swim-p2p]
         [--sizes 5,20] [--trials 10] [--idle-seconds 60]

For each system and cluster size: start N members on 127.0.0.1, wait until
everyone sees everyone alive, measure idle traffic / RSS / false suspicions,
then repeatedly SIGKILL a random member (never member 0 or 1) and time how
long until the first survivor suspects it and until every survivor has
declared it failed; restart it and wait for the cluster to heal.  Prints
tables and writes bench/results/failure_detection.json.  See README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from adapters import ADAPTERS  # noqa: E402
from adapters.base import (FAILED, LEFT, SUSPECTED, host_cpu_times, kill_all,  # noqa: E402
                           run_quiet)
from capture import ByteCapture, ensure_tcpdump  # noqa: E402
from cluster import Cluster  # noqa: E402
from stats import fmt, summarize  # noqa: E402

DOWN = (FAILED, LEFT)
MAX_CLUSTER_RESETS = 10  # per system and size; then the remaining trials are skipped


def say(msg: str) -> None:
    sys.stderr.write(time.strftime("%H:%M:%S ") + msg + "\n")
    sys.stderr.flush()


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="SWIM failure-detection benchmark")
    ap.add_argument("--systems", default="swimraft,serf,swim-p2p",
                    help="comma-separated, from: " + ", ".join(ADAPTERS))
    ap.add_argument("--sizes", default="5,20", help="cluster sizes, comma-separated (>= 3)")
    ap.add_argument("--trials", type=int, default=10, help="kill/restart trials per size")
    ap.add_argument("--idle-seconds", type=float, default=60.0,
                    help="idle run with no kills, counting false suspicions "
                         "(includes the bytes window)")
    ap.add_argument("--bytes-window", type=float, default=60.0,
                    help="seconds of idle traffic captured for byte counts (60 s so that "
                         "30 s periodic push-pull syncs are included)")
    ap.add_argument("--settle", type=float, default=5.0,
                    help="seconds to wait after convergence before measuring")
    ap.add_argument("--trial-timeout", type=float, default=60.0,
                    help="max seconds from a kill until all survivors report it failed")
    ap.add_argument("--rejoin-timeout", type=float, default=60.0,
                    help="max seconds for a restarted member to be seen alive by all")
    ap.add_argument("--converge-timeout", type=float, default=120.0,
                    help="max seconds for a new cluster to converge")
    ap.add_argument("--ready-timeout", type=float, default=60.0,
                    help="max seconds for a started member to print its ready line")
    ap.add_argument("--seed", type=int, default=None, help="RNG seed for victims")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "failure_detection.json"))
    ap.add_argument("--workdir", default=None, help="where member dirs/logs go (temp)")
    ap.add_argument("--keep-logs", action="store_true",
                    help="keep member logs even for successful runs")
    ap.add_argument("--no-install", action="store_true",
                    help="do not apt-get/pip install missing serf, swim-p2p, tcpdump")
    a = ap.parse_args(argv)
    a.systems = [s.strip() for s in a.systems.split(",") if s.strip()]
    a.sizes = [int(s) for s in a.sizes.split(",") if s.strip()]
    for s in a.systems:
        if s not in ADAPTERS:
            ap.error(f"unknown system {s!r}; known: {', '.join(ADAPTERS)}")
    for n in a.sizes:
        if n < 3:
            ap.error("sizes must be >= 3 (members 0 and 1 are never killed)")
    if a.trials < 0 or a.trials > 1000:
        ap.error("--trials must be in 0..1000")
    return a


def false_suspicions(events, t0: float, t1: float, exempt: list) -> dict:
    """Suspicion/failure events in [t0, t1] about members that were not the
    member killed in that phase.  exempt: [subject, t_kill, t_healed,
    t_phase_end]: events about the victim up to t_healed are the detection
    itself and are skipped; those after it (until the next kill) are counted
    apart as "after_rejoin" (e.g. probes in flight at the restart)."""
    out = {"suspected": 0, "failed": 0, "after_rejoin": 0, "examples": []}
    for e in events:
        if not (t0 <= e.t <= t1) or e.kind not in (SUSPECTED, FAILED):
            continue
        phase = [x for x in exempt if e.subject == x[0] and x[1] <= e.t <= x[3]]
        if phase:
            if e.t > phase[0][2]:
                out["after_rejoin"] += 1
            continue
        out["suspected" if e.kind == SUSPECTED else "failed"] += 1
        if len(out["examples"]) < 20:
            out["examples"].append({"t": round(e.t, 3), "observer": e.observer,
                                    "subject": e.subject, "kind": e.kind})
    return out


def segment_false(cluster: Cluster, t0: float, exempt: list) -> dict:
    t1 = time.time()
    return false_suspicions(cluster.events_between(t0, t1), t0, t1, exempt)


def add_false(acc: dict, new: dict) -> None:
    for k in ("suspected", "failed", "after_rejoin"):
        acc[k] += new[k]
    acc["examples"] = (acc["examples"] + new["examples"])[:20]


def sleep_watch(cluster: Cluster, seconds: float) -> list[str]:
    """Sleep; return members whose process exited meanwhile."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(min(1.0, max(0.0, end - time.monotonic())))
        crashed = cluster.crashed()
        if crashed:
            return crashed
    return []


def steady_phase(cluster: Cluster, args, capture_status: tuple) -> dict:
    """Idle period: byte window at its start, RSS at the window's end, false
    suspicions over the whole idle period."""
    res: dict = {}
    t_idle0 = time.time()
    cap = None
    if capture_status[0]:
        try:
            cap = ByteCapture(cluster.workdir, list(cluster.member_ports()))
            cap.start()
        except Exception as e:  # noqa: BLE001
            res["bytes"] = {"status": f"capture not possible: {e}"}
            cap = None
    else:
        res["bytes"] = {"status": f"capture not possible: {capture_status[1]}"}
    tw0 = time.time()
    cpu0, host0 = cluster.cpu(), host_cpu_times()
    try:
        crashed = sleep_watch(cluster, args.bytes_window)
        tw1 = time.time()
        cpu1, host1 = cluster.cpu(), host_cpu_times()
    finally:
        if cap is not None:
            cap.stop()
    rss = cluster.rss()
    cpu_pct = {n: 100.0 * (cpu1[n] - cpu0[n]) / (tw1 - tw0) for n in cpu1 if n in cpu0}
    host_busy = host1[0] - host0[0]
    host_total = host1[1] - host0[1]
    res["cpu_idle"] = {
        "member_pct_of_one_core": {**summarize(list(cpu_pct.values())),
                                   "sum": sum(cpu_pct.values())},
        "host_busy_pct": 100.0 * host_busy / host_total if host_total else None,
        "host_cores": os.cpu_count(),
    }
    pid_names = cluster.pids()
    if cap is not None:
        try:
            c = cap.count(tw0, tw1, cluster.member_ports(), pid_names)
            statuses = [s for s in list(cluster.statuses)
                        if isinstance(s.get("ts"), (int, float)) and tw0 <= s["ts"] <= tw1]
            period, period_src = cluster.adapter.probe_period(
                list(cluster.ready_infos.values()), statuses)
            n = cluster.size
            per_s_mean = c["total_bytes"] / n / c["window_s"]
            attributed = [v / c["window_s"] for v in c["per_member_bytes"].values()]
            per_s_median = summarize(attributed)["median"]
            c.update({
                "status": "ok",
                "per_member_per_s_mean": per_s_mean,
                "per_member_per_s_median_attributed": per_s_median,
                "probe_period_s": period,
                "probe_period_source": period_src,
                "per_member_per_period_mean": per_s_mean * period,
                "per_member_per_period_median_attributed":
                    None if per_s_median is None else per_s_median * period,
            })
            res["bytes"] = c
        except Exception as e:  # noqa: BLE001
            res["bytes"] = {"status": f"capture could not be read: {e}"}
        try:
            os.remove(cap.path)
        except OSError:
            pass
    res["rss_kib"] = {"per_member": rss, **summarize(list(rss.values()))}
    if not crashed:
        rest = max(args.idle_seconds, args.bytes_window) - (time.time() - t_idle0)
        if rest > 0:
            crashed = sleep_watch(cluster, rest)
    t_idle1 = time.time()
    res["idle_seconds"] = t_idle1 - t_idle0
    res["false_suspicions_idle"] = false_suspicions(
        cluster.events_between(t_idle0, t_idle1), t_idle0, t_idle1, [])
    if crashed:
        res["crashed_members"] = crashed
    return res


def new_cluster(adapter, size: int, args, base_dir: str, tag: str) -> tuple[Cluster, float]:
    workdir = os.path.join(base_dir, tag)
    os.makedirs(workdir, exist_ok=True)
    cluster = Cluster(adapter, size, workdir, say)
    t0 = time.time()
    try:
        cluster.start(args.ready_timeout)
        if not cluster.wait_converged(args.converge_timeout):
            raise RuntimeError("did not converge in %.0fs: %s"
                               % (args.converge_timeout, cluster.not_converged_detail()))
    except BaseException:
        cluster.stop_all()
        raise
    return cluster, time.time() - t0


def run_trials(ctx: dict, res: dict, adapter, size: int, args, base_dir: str, rng) -> None:
    """Kill/restart trials; appends to res["trials"] as it goes.  ctx["cluster"]
    is the running cluster (replaced if it has to be restarted)."""
    trials = res.setdefault("trials", [])
    false_acc = res.setdefault("false_suspicions_trials",
                               {"suspected": 0, "failed": 0, "after_rejoin": 0,
                                "examples": []})
    resets = res.setdefault("cluster_resets", [])
    cluster = ctx["cluster"]
    candidates = [s.name for s in cluster.specs if s.index >= 2]
    t_seg0 = time.time()
    exempt: list = []
    try:
        need_reset = False
        for i in range(args.trials):
            # After a healed rejoin the cluster is converged already; after a
            # rejoin timeout, start a fresh cluster at once.
            if need_reset or not cluster.wait_converged(10.0):
                detail = cluster.not_converged_detail()
                add_false(false_acc, segment_false(cluster, t_seg0, exempt))
                t_seg0 = None
                if len(resets) >= MAX_CLUSTER_RESETS:
                    resets.append({"before_trial": i, "reason": detail, "action": "gave up"})
                    break
                say(f"  cluster not converged before trial {i} ({detail}); starting a fresh cluster")
                resets.append({"before_trial": i, "reason": detail, "action": "fresh cluster"})
                need_reset = False
                cluster.stop_all()
                cluster, _ = new_cluster(adapter, size, args, base_dir, f"reset{len(resets)}")
                ctx["cluster"] = cluster
                time.sleep(args.settle)
                candidates = [s.name for s in cluster.specs if s.index >= 2]
                t_seg0, exempt = time.time(), []
            time.sleep(rng.uniform(0.5, 1.5))
            victim = rng.choice(candidates)
            survivors = [n for n in cluster.live() if n != victim]
            t_kill = cluster.kill(victim)
            if exempt:
                exempt[-1][3] = t_kill  # previous phase ends with this kill
            # [victim, kill, healed (set below), end of phase (next kill)]
            exempt.append([victim, t_kill, float("inf"), float("inf")])

            def all_down(v=victim, s=survivors, t=t_kill):
                return len(cluster.first_times(v, DOWN, t, s)) == len(s)

            done = cluster.wait_until(all_down, args.trial_timeout)
            first = cluster.first_times(victim, (SUSPECTED,) + DOWN, t_kill, survivors)
            down = cluster.first_times(victim, DOWN, t_kill, survivors)
            first_by = min(first, key=first.get) if first else None
            first_kind = None
            if first_by:
                sus = cluster.first_times(victim, (SUSPECTED,), t_kill, [first_by])
                first_kind = "suspected" if sus.get(first_by) == first[first_by] else "failed"
            tr = {
                "trial": i, "victim": victim, "survivors": len(survivors),
                "first_detect_s": (min(first.values()) - t_kill) if first else None,
                "first_detect_kind": first_kind, "first_detect_by": first_by,
                "all_failed_s": (max(down.values()) - t_kill) if done else None,
                "reported_failed": len(down), "timeout": not done,
            }
            trials.append(tr)
            # Restart the victim (same name, same port) and wait for healing.
            t_r = time.time()
            ok = cluster.restart(victim, args.ready_timeout)
            healed = ok and cluster.wait_converged(args.rejoin_timeout)
            tr["rejoin_s"] = (time.time() - t_r) if healed else None
            if not healed:
                tr["rejoin_timeout"] = True
                tr["rejoin_detail"] = cluster.not_converged_detail() if ok else "not ready"
            exempt[-1][2] = time.time()
            need_reset = not healed
            say(f"  trial {i}: kill {victim}: first {fmt(tr['first_detect_s'])}s "
                f"({first_kind}), all {fmt(tr['all_failed_s'])}s"
                f"{' TIMEOUT' if not done else ''}, rejoin {fmt(tr['rejoin_s'])}s")
    finally:
        if t_seg0 is not None:
            add_false(false_acc, segment_false(cluster, t_seg0, exempt))


def run_one(adapter, size: int, args, capture_status: tuple, rng, runs: list) -> dict:
    res = {"system": adapter.name, "size": size, "status": "ok"}
    runs.append(res)
    base_dir = tempfile.mkdtemp(prefix=f"fd-{adapter.name}-{size}-", dir=args.workdir)
    res["logs"] = base_dir
    ctx: dict = {"cluster": None}
    keep = args.keep_logs
    try:
        say(f"{adapter.name} N={size}: starting")
        try:
            ctx["cluster"], conv = new_cluster(adapter, size, args, base_dir, "c0")
        except RuntimeError as e:
            res["status"] = f"failed to start: {e}"
            keep = True
            return res
        res["converge_s"] = conv
        say(f"{adapter.name} N={size}: converged in {conv:.1f}s; settling {args.settle:.0f}s")
        time.sleep(args.settle)
        say(f"{adapter.name} N={size}: idle {max(args.idle_seconds, args.bytes_window):.0f}s "
            f"(bytes window {args.bytes_window:.0f}s)")
        res.update(steady_phase(ctx["cluster"], args, capture_status))
        if res.get("crashed_members"):
            res["status"] = f"member(s) exited during idle: {res['crashed_members']}"
            keep = True
            return res
        say(f"{adapter.name} N={size}: {args.trials} kill trials")
        h0 = host_cpu_times()
        try:
            run_trials(ctx, res, adapter, size, args, base_dir, rng)
        finally:
            h1 = host_cpu_times()
            if h1[1] > h0[1]:
                res["host_busy_pct_trials"] = 100.0 * (h1[0] - h0[0]) / (h1[1] - h0[1])
    except KeyboardInterrupt:
        res["status"] = "interrupted"
        keep = True
        raise
    except Exception as e:  # noqa: BLE001 - report, keep going with other systems
        res["status"] = f"error: {type(e).__name__}: {e}"
        keep = True
    finally:
        if ctx["cluster"] is not None:
            ctx["cluster"].stop_all()
        trials = res.get("trials")
        if trials is not None:
            res["first_detect_s"] = summarize([t["first_detect_s"] for t in trials])
            res["all_failed_s"] = summarize([t["all_failed_s"] for t in trials])
            res["rejoin_s"] = summarize([t["rejoin_s"] for t in trials])
            res["timeouts"] = sum(1 for t in trials if t["timeout"])
            res["rejoin_timeouts"] = sum(1 for t in trials if t.get("rejoin_timeout"))
            if res["timeouts"] or res["rejoin_timeouts"] or res.get("cluster_resets"):
                keep = True
        if not keep:
            shutil.rmtree(base_dir, ignore_errors=True)
            res["logs"] = None
    return res


def environment(args, versions: dict, capture_status: tuple) -> dict:
    rc, td = run_quiet(["tcpdump", "--version"], 10)
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "versions": versions,
        "capture": capture_status[1] if capture_status[0] else
                   f"unavailable: {capture_status[1]}",
        "tcpdump": td.splitlines()[0] if rc == 0 and td else None,
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }


def _table(header: list, rows: list) -> None:
    """Print rows of cells; a row of one cell (a status text) spans the rest."""
    widths = [len(h) for h in header]
    for r in rows:
        n = len(header) if len(r) == len(header) else 2
        widths = [max(w, len(c)) for w, c in zip(widths, r[:n])] + widths[n:]
    last = len(header) - 1

    def line(cells):
        return "  ".join(c.ljust(w) if i in (0, last) else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    print(line(header))
    print("-" * len(line(header)))
    for r in rows:
        if len(r) == len(header):
            print(line(r))
        else:
            print(line(r[:2]) + "  " + "  ".join(r[2:]))


def _mpm(d: dict) -> str:
    return f"{fmt(d.get('median'))} / {fmt(d.get('p90'))} / {fmt(d.get('max'))}"


def print_tables(out: dict) -> None:
    env = out["env"]
    p = out["params"]
    print()
    print(f"Environment: python {env['python']}, {env['platform']}, {env['cpus']} CPUs")
    for name, v in env["versions"].items():
        print(f"  {name:9s} {v}")
    print(f"  bytes     {env['capture']}")
    print(f"  params    trials={p['trials']} idle={p['idle_seconds']:g}s "
          f"bytes-window={p['bytes_window']:g}s trial-timeout={p['trial_timeout']:g}s "
          f"rejoin-timeout={p['rejoin_timeout']:g}s")
    print()
    print("Failure detection after kill -9, seconds from the kill (median / p90 / max)")
    rows = []
    for r in out["runs"]:
        head = [r["system"], str(r["size"])]
        if "trials" not in r or not r["trials"]:
            rows.append(head + [r["status"] if r["status"] != "ok" else "no trials run"])
            continue
        extra = []
        if r.get("rejoin_timeouts"):
            extra.append(f"rejoin timeouts {r['rejoin_timeouts']}")
        if r.get("cluster_resets"):
            extra.append(f"fresh clusters {len(r['cluster_resets'])}")
        if r["status"] != "ok":
            extra.append(r["status"])
        rows.append(head + [str(len(r["trials"])), str(r["timeouts"]),
                            _mpm(r["first_detect_s"]), _mpm(r["all_failed_s"]),
                            _mpm(r["rejoin_s"]), "; ".join(extra)])
    _table(["system", "N", "trials", "timeouts", "first suspicion",
            "all survivors: failed", "rejoin", "notes"], rows)
    print()
    print("Idle cost, RSS, false suspicions (suspected/failed events about live members;"
          " (+n) = about a just-restarted member)")
    rows = []
    for r in out["runs"]:
        head = [r["system"], str(r["size"])]
        if "bytes" not in r:
            rows.append(head + [r["status"]])
            continue
        b = r["bytes"]
        if b.get("status") == "ok":
            un = 100.0 * b["unattributed_bytes"] / b["total_bytes"] if b["total_bytes"] else 0.0
            bcols = [fmt(b["per_member_per_s_mean"], 0), fmt(b["per_member_per_period_mean"], 0),
                     fmt(b["probe_period_s"]), fmt(un, 1)]
        else:
            bcols = ["-", "-", "-", "-"]
        fi = r.get("false_suspicions_idle") or {}
        ft = r.get("false_suspicions_trials")
        ftxt = f"{ft['suspected']}/{ft['failed']}" if ft else "-"
        if ft and ft.get("after_rejoin"):
            ftxt += f" (+{ft['after_rejoin']})"
        rss = (r.get("rss_kib") or {}).get("median")
        cpu = r.get("cpu_idle") or {}
        host = f"{fmt(cpu.get('host_busy_pct'), 0)} / {fmt(r.get('host_busy_pct_trials'), 0)}"
        rows.append(head + bcols + [f"{fi.get('suspected', 0)}/{fi.get('failed', 0)}",
                                    fmt(r.get("idle_seconds"), 0), ftxt,
                                    fmt(rss / 1024 if rss else None, 1),
                                    fmt((cpu.get("member_pct_of_one_core") or {}).get("median"), 1),
                                    host,
                                    "" if b.get("status") == "ok" else b.get("status", "")])
    _table(["system", "N", "B/member/s", "B/member/period", "period s", "unattrib %",
            "false idle", "idle s", "false trials", "RSS MiB", "CPU %/member",
            "host busy % idle/trials", "notes"], rows)
    for r in out["runs"]:
        src = (r.get("bytes") or {}).get("probe_period_source", "")
        if "observed" in src:
            print(f"  {r['system']} N={r['size']}: period = {src}")
    print()


def write_json(path: str, out: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=1, default=str)
    os.replace(tmp, path)


def _sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGHUP, _sigterm)
    rng = random.Random(args.seed)
    install = not args.no_install
    out = {"params": {k: v for k, v in vars(args).items()}, "runs": []}
    interrupted = False
    try:
        capture_status = ensure_tcpdump(install)
        if not capture_status[0]:
            say(f"byte capture unavailable: {capture_status[1]}")
        versions, adapters = {}, {}
        for name in args.systems:
            adapter = ADAPTERS[name]()
            ok, detail = adapter.check(install)
            versions[name] = detail if ok else f"unavailable: {detail}"
            adapters[name] = adapter if ok else None
            say(f"{name}: {versions[name]}")
        out["env"] = environment(args, versions, capture_status)
        for name in args.systems:
            for size in args.sizes:
                if adapters[name] is None:
                    out["runs"].append({"system": name, "size": size,
                                        "status": versions[name]})
                    continue
                run_one(adapters[name], size, args, capture_status, rng, out["runs"])
                write_json(args.out, out)
    except KeyboardInterrupt:
        interrupted = True
        say("interrupted; stopping all members")
    finally:
        kill_all()
        if "env" in out:
            out["interrupted"] = interrupted
            write_json(args.out, out)
            print_tables(out)
            print(f"JSON: {args.out}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
