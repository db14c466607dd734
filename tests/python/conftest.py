"""Shared fixtures: configurations that bind and advertise 127.0.0.1 only, in temp dirs."""

from __future__ import annotations

import os
import select
import signal
import time
from typing import Any, Callable

import pytest

import swimraft


@pytest.fixture(autouse=True)
def _clean_ringrift_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start from an environment without RINGRIFT_* variables."""
    for key in list(os.environ):
        if key.startswith("RINGRIFT_"):
            monkeypatch.delenv(key)


@pytest.fixture
def local_config(tmp_path) -> Callable[..., swimraft.Config]:
    """A factory of loopback SWIM configurations with the fast local preset."""
    counter = {"n": 0}

    def make(node_id: str, **overrides: Any) -> swimraft.Config:
        counter["n"] += 1
        keys: dict = dict(
            node_id=node_id,
            swim_enabled=True,
            membership_mode="swim",
            preset="local",
            bind_host="127.0.0.1",
            advertise_host="127.0.0.1",
            swim_port=0,
            raft_port=0,
            cluster_name="pytest",
            data_dir=str(tmp_path / f"{node_id}-{counter['n']}"),
        )
        keys.update(overrides)
        return swimraft.Config(use_env=False, **keys)

    return make


@pytest.fixture
def wait_child() -> Callable[[int], int]:
    """Waits (bounded) for a forked child and returns its exit code; a child still running after
    ``timeout`` s is SIGKILLed by its pid and the test fails, so a regression that makes the
    child hang (what the fork tests exist to catch) fails the suite instead of hanging it."""

    def wait(pid: int, timeout: float = 15.0) -> int:
        if hasattr(os, "pidfd_open"):
            # The pidfd becomes readable when the child exits: await that, bounded.
            fd = os.pidfd_open(pid)
            try:
                select.select([fd], [], [], timeout)
            finally:
                os.close(fd)
            done, status = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return os.waitstatus_to_exitcode(status)
        else:  # no pidfd (not Linux): poll, bounded
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done == pid:
                    return os.waitstatus_to_exitcode(status)
                time.sleep(0.01)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail(f"forked child {pid} still running after {timeout} s (killed)")

    return wait
