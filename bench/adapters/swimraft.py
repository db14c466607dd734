"""swimraft, our engine, through its agent ``python -m swimraft.agent``.

The agent is configured only by environment variables and prints the
JSON-lines protocol described in ``adapters/jsonlines.py``.  Every member is
given members 0 and 1 as seeds.  The probe period is read from the agent's
``ready`` line (``probe_period_ms``).

The Python interpreter used to run the agent is ``sys.executable`` unless
``SWIMRAFT_PYTHON`` names another one (e.g. a virtualenv with the wheel).
"""

from __future__ import annotations

import os
import statistics
import sys

from .base import Adapter, MemberSpec, Parsed, run_quiet
from .jsonlines import parse_json_line


class SwimraftAdapter(Adapter):
    name = "swimraft"
    seed_indexes = (0, 1)

    def __init__(self) -> None:
        self.python = os.environ.get("SWIMRAFT_PYTHON") or sys.executable
        self.preset = os.environ.get("RINGRIFT_PRESET")  # default: agent's (lan)

    def check(self, install: bool) -> tuple[bool, str]:
        # Never installed by the harness: the project builds it.
        probe = [self.python, "-c",
                 "import importlib.util, importlib.metadata as m\n"
                 "spec = importlib.util.find_spec('swimraft.agent')\n"
                 "assert spec is not None, 'module swimraft.agent not found'\n"
                 "try:\n    v = m.version('swimraft')\n"
                 "except Exception:\n"
                 "    import swimraft; v = getattr(swimraft, '__version__', 'unknown')\n"
                 "print(v)\n"]
        rc, out = run_quiet(probe, 60)
        if rc != 0:
            last = out.strip().splitlines()[-1] if out.strip() else f"exit {rc}"
            return False, f"python -m swimraft.agent not runnable ({last})"
        return True, out.strip().splitlines()[-1]

    def command(self, m: MemberSpec, seeds: list[MemberSpec]) -> tuple[list, dict]:
        env = {
            "RINGRIFT_NODE_ID": m.name,
            "RINGRIFT_SWIM_ENABLED": "true",
            "RINGRIFT_MEMBERSHIP_MODE": "swim",
            "RINGRIFT_BIND_HOST": "127.0.0.1",
            "RINGRIFT_ADVERTISE_HOST": "127.0.0.1",
            "RINGRIFT_SWIM_PORT": str(m.port),
            "RINGRIFT_SWIM_SEEDS": ",".join(f"127.0.0.1:{s.port}" for s in seeds),
            "RINGRIFT_DATA_DIR": m.data_dir,
            "RINGRIFT_CLUSTER_NAME": "bench",
        }
        if self.preset:
            env["RINGRIFT_PRESET"] = self.preset
        return [self.python, "-m", "swimraft.agent"], env

    def parse(self, line: str) -> list[Parsed]:
        return parse_json_line(line)

    def probe_period(self, ready_infos, statuses) -> tuple[float, str]:
        vals = [float(i["probe_period_ms"]) / 1000.0 for i in ready_infos
                if isinstance(i.get("probe_period_ms"), (int, float))]
        if vals:
            return statistics.median(vals), "probe_period_ms from the agents' ready lines"
        return float("nan"), "no probe_period_ms in ready lines"
