"""swim-p2p from PyPI (import name ``swim``), default configuration, run by
``bench/agents/swim_p2p_agent.py`` which prints the swimraft JSON-lines
protocol.  Members are named by the library as "127.0.0.1:PORT"; the adapter
maps that back to the harness's member names by port.

Default protocol period: ``PROTOCOL_PERIOD`` = 1.0 s (swim/config.py), but
Lifeguard adaptive timing moves the actual period within 0.5-2.0 s; the agent
reports the current one in its status lines and the harness reports the
median it saw next to the nominal value.
"""

from __future__ import annotations

import os
import statistics
import sys

from .base import (Adapter, MemberSpec, Parsed, pip_install, run_quiet)
from .jsonlines import parse_json_line

AGENT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     "agents", "swim_p2p_agent.py")


class SwimP2PAdapter(Adapter):
    name = "swim-p2p"
    seed_indexes = (0,)

    def check(self, install: bool) -> tuple[bool, str]:
        probe = [sys.executable, "-c",
                 "import importlib.metadata as m, swim.protocol.node, swim.transport.hybrid;"
                 "print(m.version('swim-p2p'))"]
        rc, out = run_quiet(probe, 60)
        if rc != 0 and install:
            ok, why = pip_install("swim-p2p")
            if not ok:
                return False, why
            rc, out = run_quiet(probe, 60)
        if rc != 0:
            return False, "cannot import swim-p2p: " + out.strip()[-200:]
        return True, out.strip().splitlines()[-1]

    def command(self, m: MemberSpec, seeds: list[MemberSpec]) -> tuple[list, dict]:
        seed_s = ",".join(f"127.0.0.1:{s.port}" for s in seeds if s.name != m.name)
        argv = [sys.executable, AGENT, "--bind", f"127.0.0.1:{m.port}",
                "--seeds", seed_s]
        return argv, {}

    def parse(self, line: str) -> list[Parsed]:
        return parse_json_line(line)

    def subject_to_name(self, raw: str, members: list[MemberSpec]) -> str | None:
        try:
            port = int(raw.rsplit(":", 1)[1])
        except (IndexError, ValueError):
            return None
        for m in members:
            if m.port == port:
                return m.name
        return None

    def probe_period(self, ready_infos, statuses) -> tuple[float, str]:
        nominal = 1.0
        for info in ready_infos:
            if info.get("probe_period_ms"):
                nominal = float(info["probe_period_ms"]) / 1000.0
                break
        seen = [float(s["protocol_period_s"]) for s in statuses
                if isinstance(s.get("protocol_period_s"), (int, float))]
        if seen:
            return nominal, (f"PROTOCOL_PERIOD default; adaptive period observed "
                             f"median {statistics.median(seen):.2f}s "
                             f"(min {min(seen):.2f}, max {max(seen):.2f})")
        return nominal, "PROTOCOL_PERIOD default"
