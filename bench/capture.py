"""Byte counting on the loopback interface, the same way for every system.

``tcpdump -i lo`` writes the headers (snaplen 96) of every packet to or from
the members' gossip ports to a pcap file; the file is then read here:

  * UDP datagram: UDP payload + 28 bytes (IPv4 20 + UDP 8)
  * TCP segment:  TCP payload + 40 bytes (IPv4 20 + TCP 20), pure ACKs too

Lengths come from the IP/UDP headers, not the captured length.  Each packet
on ``lo`` is captured once.  A packet is attributed to the member owning its
source port: a member's gossip port, or else an ephemeral port that a
sampler (``ss -tuanp`` every 0.5 s) saw owned by a member's PID (clients of
TCP connections, e.g. Serf's push-pull).  Bytes from ephemeral ports never
seen by the sampler are "unattributed"; they still count in the total, so
the total divided by N (mean per member) is exact.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import threading
import time

from adapters.base import apt_install, kill_group, spawn

_SS_RX = re.compile(r"^(tcp|udp)\s+\S+\s+\d+\s+\d+\s+127\.0\.0\.1:(\d+)\s+\S+\s+.*?pid=(\d+)")


def ensure_tcpdump(install: bool) -> tuple[bool, str]:
    if shutil.which("tcpdump") is None and install:
        ok, why = apt_install("tcpdump")
        if not ok:
            return False, why
    if shutil.which("tcpdump") is None:
        return False, "tcpdump not installed"
    if os.geteuid() != 0:
        return False, "capturing on lo needs root"
    if shutil.which("ss") is None:  # optional, only for attribution
        return True, "tcpdump (no ss: ephemeral-port TCP bytes stay unattributed)"
    return True, "tcpdump"


class _SocketSampler(threading.Thread):
    """Samples which PID owns which local 127.0.0.1 port, every ``period``."""

    def __init__(self, period: float = 0.5, max_seconds: float = 3600) -> None:
        super().__init__(daemon=True, name="ss-sampler")
        self.period = period
        self.max_seconds = max_seconds
        self.owner: dict[tuple[str, int], int] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        if shutil.which("ss") is None:
            return
        end = time.monotonic() + self.max_seconds
        while not self._halt.is_set() and time.monotonic() < end:
            try:
                out = subprocess.run(["ss", "-tuanpH"], capture_output=True, text=True,
                                     timeout=5, stdin=subprocess.DEVNULL).stdout
            except (subprocess.TimeoutExpired, OSError):
                out = ""
            for line in out.splitlines():
                mo = _SS_RX.match(line)
                if mo:
                    self.owner[(mo.group(1), int(mo.group(2)))] = int(mo.group(3))
            self._halt.wait(self.period)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)


class ByteCapture:
    def __init__(self, workdir: str, ports: list[int]) -> None:
        self.path = os.path.join(workdir, "capture.pcap")
        self.ports = sorted(set(ports))
        self.proc = None
        self.sampler = None
        self.stderr_path = os.path.join(workdir, "tcpdump.err")
        self.t_start = None
        self.t_stop = None

    def start(self, timeout: float = 10.0) -> None:
        flt = " or ".join(f"port {p}" for p in self.ports)
        err = open(self.stderr_path, "w")
        self.proc = spawn(["tcpdump", "-i", "lo", "-n", "-s", "96", "-U",
                           "--immediate-mode", "-w", self.path, flt], {},
                          stdout=subprocess.DEVNULL, stderr=err)
        err.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.stderr_path) as f:
                if "listening on" in f.read():
                    break
            if self.proc.poll() is not None:
                raise RuntimeError("tcpdump exited: " + open(self.stderr_path).read()[-300:])
            time.sleep(0.1)
        else:
            raise RuntimeError("tcpdump did not start listening")
        self.sampler = _SocketSampler()
        self.sampler.start()
        self.t_start = time.time()

    def stop(self, drain: float = 1.5) -> None:
        """Stop capturing.  Waits ``drain`` seconds first so that packets up to
        now are surely written (count() selects by packet time anyway)."""
        self.t_stop = time.time()
        if self.proc and self.proc.poll() is None and drain > 0:
            time.sleep(drain)
        if self.sampler:
            self.sampler.stop()
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.send_signal(2)  # SIGINT: tcpdump flushes and exits
                self.proc.wait(timeout=5)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        kill_group(self.proc)

    def count(self, t0: float, t1: float, member_ports: dict[int, str],
              pid_names: dict[int, str]) -> dict:
        """Count bytes of packets with pcap time in [t0, t1]."""
        owner = dict(self.sampler.owner) if self.sampler else {}
        per_member = {n: 0 for n in member_ports.values()}
        totals = {"udp": 0, "tcp": 0, "unattributed": 0, "packets": 0}
        for ts, proto, sport, dport, wire in read_pcap(self.path):
            if ts < t0 or ts > t1:
                continue
            if sport not in member_ports and dport not in member_ports:
                continue
            totals["packets"] += 1
            totals[proto] += wire
            name = member_ports.get(sport)
            if name is None:
                name = pid_names.get(owner.get((proto, sport), -1))
            if name is None:
                totals["unattributed"] += wire
            else:
                per_member[name] += wire
        total = totals["udp"] + totals["tcp"]
        return {"window_s": t1 - t0, "total_bytes": total, "udp_bytes": totals["udp"],
                "tcp_bytes": totals["tcp"], "unattributed_bytes": totals["unattributed"],
                "packets": totals["packets"], "per_member_bytes": per_member}


def read_pcap(path: str):
    """Yield (ts, "udp"|"tcp", sport, dport, counted_bytes) for IPv4 packets."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        raise ValueError("not a pcap file")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(end + "I", data[20:24])[0] & 0x0FFFFFFF
    rec = struct.Struct(end + "IIII")
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = rec.unpack_from(data, off)
        off += 16
        pkt = data[off:off + incl]
        off += incl
        ts = sec + frac / (1e9 if nano else 1e6)
        ip = _ipv4_start(pkt, linktype)
        if ip is None or len(pkt) < ip + 20:
            continue
        vihl = pkt[ip]
        if vihl >> 4 != 4:
            continue
        ihl = (vihl & 0x0F) * 4
        total_len = struct.unpack_from("!H", pkt, ip + 2)[0]
        proto = pkt[ip + 9]
        l4 = ip + ihl
        if len(pkt) < l4 + 4:
            continue
        sport, dport = struct.unpack_from("!HH", pkt, l4)
        if proto == 17 and len(pkt) >= l4 + 8:
            udp_len = struct.unpack_from("!H", pkt, l4 + 4)[0]
            yield ts, "udp", sport, dport, max(0, udp_len - 8) + 28
        elif proto == 6 and len(pkt) >= l4 + 13:
            doff = (pkt[l4 + 12] >> 4) * 4
            payload = max(0, total_len - ihl - doff)
            yield ts, "tcp", sport, dport, payload + 40


def _ipv4_start(pkt: bytes, linktype: int):
    if linktype == 1:        # Ethernet (what Linux lo gives)
        if len(pkt) >= 14 and pkt[12:14] == b"\x08\x00":
            return 14
        return None
    if linktype == 113:      # Linux cooked v1
        return 16 if len(pkt) >= 16 and pkt[14:16] == b"\x08\x00" else None
    if linktype == 276:      # Linux cooked v2
        return 20 if len(pkt) >= 20 and pkt[0:2] == b"\x08\x00" else None
    if linktype == 0:        # BSD loopback
        return 4
    if linktype in (12, 101, 228):  # raw IP
        return 0
    return None
