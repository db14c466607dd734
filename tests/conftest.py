"""Fixtures shared by the Python and the multi-process cluster tests."""

from __future__ import annotations

import itertools
import os
import socket
from typing import Callable, Iterator, List

import pytest

# Ports for listeners a test names in advance (Raft voters are listed with their ports before
# any node binds). They come from below Linux's ephemeral range (32768-60999): a port taken
# from bind(0) and given back could meanwhile become the source port of an outgoing
# connection and fail the node's bind (seen in CI with the Rust cluster test). A process-wide
# walk never hands out a port twice; the start is spread by the pid.
_LOW, _SPAN = 20_000, 12_000
_next_offsets: Iterator[int] = itertools.count((os.getpid() * 7919) % _SPAN)


def _bindable(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def take_free_ports(count: int) -> List[int]:
    """`count` distinct ports bindable for TCP and UDP on 127.0.0.1 right now."""
    out: List[int] = []
    for _ in range(_SPAN):
        port = _LOW + next(_next_offsets) % _SPAN
        if _bindable(port):
            out.append(port)
            if len(out) == count:
                return out
    raise RuntimeError(f"fewer than {count} free ports in {_LOW}..{_LOW + _SPAN}")


@pytest.fixture
def free_ports() -> Callable[[int], List[int]]:
    """`free_ports(n)`: n ports for listeners that must be named before they bind."""
    return take_free_ports
