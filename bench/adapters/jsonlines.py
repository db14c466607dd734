"""Parser for the JSON-lines agent protocol shared by ``python -m
swimraft.agent`` and ``bench/agents/swim_p2p_agent.py``:

  {"event": "ready", "node", "swim_addr", "probe_period_ms", "pid", "ts"}
  {"event": "alive"|"suspected"|"failed"|"left", "node", "ts"}
  {"event": "status", "alive": [...], "suspected": [...], "failed": [...], "ts"}

Lines that are not JSON objects are ignored (they are still logged).  The
"ts" fields are kept as information only; the harness times events by when
it reads the line.
"""

from __future__ import annotations

import json

from .base import KINDS, Parsed


def parse_json_line(line: str) -> list[Parsed]:
    s = line.strip()
    if not s.startswith("{"):
        return []
    try:
        obj = json.loads(s)
    except ValueError:
        return []
    if not isinstance(obj, dict):
        return []
    ev = obj.get("event")
    if ev == "ready":
        return [Parsed("ready", info=obj)]
    if ev in KINDS and isinstance(obj.get("node"), str):
        return [Parsed("event", kind=ev, subject=obj["node"], info=obj)]
    if ev == "status":
        return [Parsed("status", info=obj)]
    return []
