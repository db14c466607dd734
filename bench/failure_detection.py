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
from adapters.base import FAILED, LEFT, SUSPECTED, kill_all, run_quiet  # noqa: E402
from capture import ByteCapture, ensure_tcpdump  # noqa: E402
from cluster import Cluster  # noqa: E402
from stats import fmt, summarize  # noqa: E402

DOWN = (FAILED, LEFT)
MAX_CLUSTER_RESETS = 3


def say(msg: str) -> None:
    sys.stderr.write(time.strftime("%H:%M:%S ") + msg + "\n")
    sys.stderr.flush()


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="SWIM failure-detection benchmark")
    ap.add_argument("--systems", default="swimraft,serf,swim-p2p")
    ap.add_argument("--sizes", default="5,20")
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--idle-seconds", type=float, default=60.0,
                    help="idle run with no kills, counting false suspicions "
                         "(includes the bytes window)")
    ap.add_argument("--bytes-window", type=float, default=60.0,
                    help="seconds of idle traffic captured for byte counts (60 s so that "
                         "30 s periodic push-pull syncs are included)")
    ap.add_argument("--settle", type=float, default=5.0,
                    help="seconds to wait after convergence before measuring")
    ap.add_argument("--trial-timeout", type=float, default=60.0)
    ap.add_argument("--rejoin-timeout", type=float, default=60.0)
    ap.add_argument("--converge-timeout", type=float, default=120.0)
    ap.add_argument("--ready-timeout", type=float, default=60.0)
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
    victim of a kill at that time (exempt: (subject, from, to))."""
    out = {"suspected": 0, "failed": 0, "examples": []}
    for e in events:
        if not (t0 <= e.t <= t1) or e.kind not in (SUSPECTED, FAILED):
            continue
        if any(e.subject == s and a <= e.t <= b for s, a, b in exempt):
            continue
        out["suspected" if e.kind == SUSPECTED else "failed"] += 1
        if len(out["examples"]) < 20:
            out["examples"].append({"t_offset_s": round(e.t - t0, 3), "observer": e.observer,
                                    "subject": e.subject, "kind": e.kind})
    return out


def segment_false(cluster: Cluster, t0: float, exempt: list) -> dict:
    t1 = time.time()
    return false_suspicions(cluster.events_between(t0, t1), t0, t1, exempt)


def add_false(acc: dict, new: dict) -> None:
    acc["suspected"] += new["suspected"]
    acc["failed"] += new["failed"]
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
    crashed = sleep_watch(cluster, args.bytes_window)
    tw1 = time.time()
    rss = cluster.rss()
    pid_names = cluster.pids()
    if cap is not None:
        cap.stop()
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
                               {"suspected": 0, "failed": 0, "examples": []})
    resets = res.setdefault("cluster_resets", [])
    cluster = ctx["cluster"]
    candidates = [s.name for s in cluster.specs if s.index >= 2]
    t_seg0 = time.time()
    exempt: list = []
    try:
        for i in range(args.trials):
            if not cluster.wait_converged(args.rejoin_timeout):
                detail = cluster.not_converged_detail()
                add_false(false_acc, segment_false(cluster, t_seg0, exempt))
                t_seg0 = None
                if len(resets) >= MAX_CLUSTER_RESETS:
                    resets.append({"before_trial": i, "reason": detail, "action": "gave up"})
                    break
                say(f"  cluster not converged before trial {i} ({detail}); restarting cluster")
                resets.append({"before_trial": i, "reason": detail, "action": "fresh cluster"})
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
            exempt.append((victim, t_kill, time.time()))
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
        run_trials(ctx, res, adapter, size, args, base_dir, rng)
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


def print_tables(out: dict) -> None:
    env = out["env"]
    print()
    print("Environment: python %s, %s, %s CPUs" % (env["python"], env["platform"], env["cpus"]))
    for s, v in env["versions"].items():
        print(f"  {s:9s} {v}")
    print(f"  bytes    {env['capture']}")
    p = out["params"]
    print(f"  params   trials={p['trials']} idle={p['idle_seconds']}s "
          f"bytes-window={p['bytes_window']}s trial-timeout={p['trial_timeout']}s")
    print()
    print("Failure detection after kill -9 (seconds; harness receive times)")
    hdr = (f"{'system':9s} {'N':>3s} {'trials':>6s} {'t/o':>3s}  "
           f"{'first suspicion med/p90/max':>28s}  {'all survivors failed med/p90/max':>32s}  "
           f"{'rejoin med':>10s}")
    print(hdr)
    print("-" * len(hdr))
    for r in out["runs"]:
        if r["status"] != "ok" or "trials" not in r:
            print(f"{r['system']:9s} {r['size']:>3d}  {r['status']}")
            continue
        a, b = r["first_detect_s"], r["all_failed_s"]
        print(f"{r['system']:9s} {r['size']:>3d} {len(r['trials']):>6d} {r['timeouts']:>3d}  "
              f"{fmt(a['median']):>8s} /{fmt(a['p90']):>7s} /{fmt(a['max']):>7s}    "
              f"{fmt(b['median']):>10s} /{fmt(b['p90']):>8s} /{fmt(b['max']):>8s}      "
              f"{fmt(r['rejoin_s']['median']):>10s}"
              + (f"  rejoin t/o {r['rejoin_timeouts']}" if r.get("rejoin_timeouts") else "")
              + (f"  cluster resets {len(r['cluster_resets'])}" if r.get("cluster_resets") else ""))
    print()
    print("Idle cost and false suspicions (suspected/failed events about live members)")
    hdr = (f"{'system':9s} {'N':>3s}  {'B/member/s':>10s} {'B/member/period':>15s} "
           f"{'period s':>8s} {'unattrib%':>9s}  {'false idle':>10s} {'idle s':>6s} "
           f"{'false trials':>12s}  {'RSS MiB med':>11s}")
    print(hdr)
    print("-" * len(hdr))
    for r in out["runs"]:
        if "bytes" not in r:
            if r["status"] == "ok" or "trials" in r:
                pass
            print(f"{r['system']:9s} {r['size']:>3d}  {r['status']}")
            continue
        b = r["bytes"]
        fi = r.get("false_suspicions_idle", {})
        ft = r.get("false_suspicions_trials")
        rss = r.get("rss_kib", {}).get("median")
        if b.get("status") == "ok":
            un = 100.0 * b["unattributed_bytes"] / b["total_bytes"] if b["total_bytes"] else 0.0
            bytes_cols = (f"{fmt(b['per_member_per_s_mean'], 0):>10s} "
                          f"{fmt(b['per_member_per_period_mean'], 0):>15s} "
                          f"{fmt(b['probe_period_s']):>8s} {fmt(un, 1):>9s}")
        else:
            bytes_cols = f"{b.get('status', '?')[:45]:>45s}"
        ftxt = f"{ft['suspected']}/{ft['failed']}" if ft else "-"
        print(f"{r['system']:9s} {r['size']:>3d}  {bytes_cols}  "
              f"{fi.get('suspected', 0)}/{fi.get('failed', 0):<8} "
              f"{fmt(r.get('idle_seconds'), 0):>6s} {ftxt:>12s}  "
              f"{fmt(rss / 1024 if rss else None, 1):>11s}"
              + ("" if r["status"] == "ok" else f"  ({r['status']})"))
    notes = [r for r in out["runs"] if r.get("bytes", {}).get("status") == "ok"
             and "observed" in r["bytes"].get("probe_period_source", "")]
    for r in notes:
        print(f"  note {r['system']} N={r['size']}: period {r['bytes']['probe_period_source']}")
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
