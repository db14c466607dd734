"""Run one swim-p2p (PyPI ``swim-p2p``, import name ``swim``) member and print
membership transitions as JSON lines, the same protocol as
``python -m swimraft.agent``:

  {"event": "ready", "node": ID, "swim_addr": "127.0.0.1:P", "probe_period_ms": 1000, "pid": N, "ts": T}
  {"event": "alive"|"suspected"|"failed"|"left", "node": ID, "ts": T}
  {"event": "status", "alive": [...], "suspected": [...], "failed": [...], "ts": T, ...}

swim-p2p identifies members by "host:port"; that string is the node id here.

The node runs with the library's default protocol configuration
(``swim.config.get_config()`` with no SWIM_* overrides) and the default
transport of its own CLI (``HybridTransport``: UDP, TCP for large messages).
Not started: the ZeroMQ application-messaging layer and the metrics HTTP API
of ``swim-node`` (they carry application messages, not failure detection).

Restarting on the same port right after a kill -9: the library's port
pre-check fails while the old TCP connections sit in TIME_WAIT, so the agent
then creates the node without that pre-check (the real binds succeed).

Transitions are taken from the node's member list: a synchronous event
handler re-reads it on every member event (immediate for transitions the
node decides itself), and a 50 ms poll catches transitions the library
applies silently (state merged from gossip / push-pull emits no event).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time

STATE_EVENT = {"ALIVE": "alive", "SUSPECT": "suspected", "DEAD": "failed"}
POLL_S = 0.05
STATUS_S = 1.0


# The library print()s diagnostics ("Metrics Report: ...") to stdout; keep the
# real stdout for the JSON protocol only and send everything else to stderr.
_OUT = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
sys.stdout = sys.stderr


def emit(obj: dict) -> None:
    obj.setdefault("ts", time.time())
    _OUT.write(json.dumps(obj, separators=(",", ":")) + "\n")
    _OUT.flush()


def parse_addr(s: str) -> tuple[str, int]:
    host, port = s.rsplit(":", 1)
    return host, int(port)


class Reporter:
    """Diffs the member list against what was last reported."""

    def __init__(self, node) -> None:
        self.node = node
        self.self_addr = node.transport.local_address
        self.last: dict[str, str] = {}

    def snapshot(self) -> dict[str, str]:
        out = {}
        for m in list(self.node.members.get_all_members(exclude_self=True)):
            if tuple(m.addr) == tuple(self.self_addr):
                continue
            out[f"{m.addr[0]}:{m.addr[1]}"] = m.state.name
        return out

    def reconcile(self, *_args) -> None:
        try:
            snap = self.snapshot()
        except Exception:  # member dict mutated while iterating; next poll
            return
        for addr, state in snap.items():
            if self.last.get(addr) != state:
                self.last[addr] = state
                ev = STATE_EVENT.get(state)
                if ev:
                    emit({"event": ev, "node": addr})
        for addr in list(self.last):
            if addr not in snap:
                del self.last[addr]
                emit({"event": "left", "node": addr})

    def status(self) -> None:
        groups = {"alive": [], "suspected": [], "failed": []}
        for addr, state in sorted(self.last.items()):
            groups[STATE_EVENT.get(state, "failed")].append(addr)
        period = getattr(self.node, "_current_protocol_period", None)
        emit({"event": "status", **groups,
              "protocol_period_s": period})


async def run(args) -> int:
    from swim.config import get_config
    from swim.events.dispatcher import EventDispatcher
    from swim.protocol.node import Node
    from swim.transport.hybrid import HybridTransport

    from swim.protocol.node import PortValidationError

    config = get_config()
    bind = parse_addr(args.bind)
    seeds = [parse_addr(s) for s in args.seeds.split(",") if s.strip()]
    dispatcher = EventDispatcher(max_history_size=100, enable_history=False)
    validate = True
    deadline = time.monotonic() + args.bind_retry_seconds
    while True:
        transport = HybridTransport(
            udp_max_size=config.get("UDP_MAX_SIZE", 1400),
            tcp_buffer_size=config.get("TCP_BUFFER_SIZE", 65536),
            tcp_max_connections=config.get("TCP_MAX_CONNECTIONS", 128),
        )
        try:
            node = await Node.create(bind_addr=bind, transport=transport,
                                     seed_addrs=seeds, config=dict(config),
                                     event_dispatcher=dispatcher,
                                     validate_ports=validate)
            break
        except PortValidationError as e:
            # The library's pre-check binds a TCP socket without SO_REUSEADDR,
            # which fails for ~60 s after a kill -9 (TIME_WAIT on the port)
            # although its real listeners (asyncio, SO_REUSEADDR) would bind.
            # Skip the pre-check; if the real bind fails, retry (bounded).
            logging.getLogger("swim_p2p_agent").warning("%s; retrying", e)
            if validate:
                validate = False
            elif time.monotonic() > deadline:
                raise
            try:
                await transport.close()
            except Exception:
                pass
            await asyncio.sleep(0.5)
    rep = Reporter(node)
    handler = rep.reconcile  # strong reference: the dispatcher keeps weak refs
    dispatcher.subscribe("*", handler, weak=False)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    await node.start()
    emit({"event": "ready", "node": f"{bind[0]}:{bind[1]}",
          "swim_addr": f"{bind[0]}:{bind[1]}",
          "probe_period_ms": int(float(config["PROTOCOL_PERIOD"]) * 1000),
          "pid": os.getpid()})
    next_status = time.monotonic()
    deadline = time.monotonic() + args.max_runtime
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            rep.reconcile()
            if time.monotonic() >= next_status:
                rep.status()
                next_status += STATUS_S
            try:
                await asyncio.wait_for(stop.wait(), POLL_S)
            except asyncio.TimeoutError:
                pass
    finally:
        try:
            await asyncio.wait_for(node.stop(), 5)
        except Exception:
            pass
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bind", required=True, help="127.0.0.1:PORT")
    ap.add_argument("--seeds", default="", help="comma-separated host:port")
    ap.add_argument("--max-runtime", type=float, default=6 * 3600,
                    help="exit after this many seconds (safety bound)")
    ap.add_argument("--log-level", default="WARNING")
    ap.add_argument("--bind-retry-seconds", type=float, default=30.0,
                    help="keep retrying a failed bind this long (restart on same port)")
    args = ap.parse_args()
    logging.basicConfig(stream=sys.stderr, level=args.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
