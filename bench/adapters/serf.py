"""HashiCorp Serf (Debian package ``serf``), default configuration.

Members are started as
  serf agent -node=NAME -bind=127.0.0.1:P -advertise=127.0.0.1:P
             -rpc-addr=127.0.0.1:R [-join=127.0.0.1:P0]
and their log (stdout) is read.  Lines used (seen in serf 0.9.4's output):

  [INFO] memberlist: Suspect NAME has failed, no acks received   -> suspected
      (logged only by the member whose probe of NAME failed; suspicion
      received by gossip is not logged, so this is the first suspicion)
  [INFO] memberlist: Marking NAME as failed, suspect timeout reached ... -> failed
  [INFO] serf: EventMemberFailed: NAME ADDR                      -> failed
  [INFO] serf: EventMemberJoin: NAME ADDR                        -> alive
  [INFO] serf: EventMemberLeave: NAME ADDR / EventMemberReap      -> left
  ==> Serf agent running!                                        -> ready

Serf/memberlist's default (LAN) probe interval is 1 s.
"""

from __future__ import annotations

import re
import shutil

from .base import (ALIVE, FAILED, LEFT, SUSPECTED, Adapter, MemberSpec, Parsed,
                   apt_install, run_quiet)

_PATTERNS = [
    (re.compile(r"memberlist: Suspect (\S+) has failed"), SUSPECTED),
    (re.compile(r"memberlist: Marking (\S+) as failed"), FAILED),
    (re.compile(r"serf: EventMemberFailed: (\S+)"), FAILED),
    (re.compile(r"serf: EventMemberJoin: (\S+)"), ALIVE),
    (re.compile(r"serf: EventMemberLeave(?: \(forced\))?: (\S+)"), LEFT),
    (re.compile(r"serf: EventMemberReap(?: \(forced\))?: (\S+)"), LEFT),
]


class SerfAdapter(Adapter):
    name = "serf"
    seed_indexes = (0,)
    suspicion_in_view = False  # a refuted suspicion is not logged

    def __init__(self) -> None:
        self.binary = shutil.which("serf")

    def check(self, install: bool) -> tuple[bool, str]:
        if not self.binary and install:
            ok, why = apt_install("serf")
            if not ok:
                return False, why
            self.binary = shutil.which("serf")
        if not self.binary:
            return False, "serf binary not found (apt-get install serf)"
        rc, out = run_quiet([self.binary, "version"], 20)
        if rc != 0:
            return False, f"'serf version' failed: {out.strip()[:200]}"
        version = out.strip().splitlines()[0] if out.strip() else "unknown"
        rc, pkg = run_quiet(["dpkg-query", "-W", "-f=${Version}", "serf"], 20)
        if rc == 0 and pkg.strip():
            version += f" (Debian package {pkg.strip()})"
        return True, version

    def command(self, m: MemberSpec, seeds: list[MemberSpec]) -> tuple[list, dict]:
        argv = [self.binary, "agent", f"-node={m.name}",
                f"-bind=127.0.0.1:{m.port}", f"-advertise=127.0.0.1:{m.port}",
                f"-rpc-addr=127.0.0.1:{m.aux_port}"]
        for s in seeds:
            if s.name != m.name:
                argv.append(f"-join=127.0.0.1:{s.port}")
        return argv, {}

    def parse(self, line: str) -> list[Parsed]:
        if "Serf agent running!" in line:
            return [Parsed("ready")]
        for rx, kind in _PATTERNS:
            mo = rx.search(line)
            if mo:
                return [Parsed("event", kind=kind, subject=mo.group(1))]
        return []

    def probe_period(self, ready_infos, statuses) -> tuple[float, str]:
        return 1.0, "memberlist DefaultLANConfig ProbeInterval"
