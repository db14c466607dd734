"""The exception hierarchy: one root, one class per engine error kind.

The native module raises these by name (``swimraft._native`` maps each Rust ``ErrorKind``),
so every error that crosses from Rust is a :class:`SwimraftError` with a ``kind`` string.
"""

from __future__ import annotations

import builtins

__all__ = [
    "SwimraftError",
    "ConfigError",
    "InvalidArgumentError",
    "NotLeaderError",
    "UnavailableError",
    "TimeoutError",
    "StorageError",
    "ShutdownError",
    "BackpressureError",
]


class SwimraftError(Exception):
    """Root of every swimraft error. ``kind`` is the engine's stable error-kind name."""

    def __init__(self, message: str = "", kind: str = "error") -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind

    def __str__(self) -> str:
        return self.message


class ConfigError(SwimraftError, ValueError):
    """A configuration value is invalid; the message names the variable, value and what is allowed."""


class InvalidArgumentError(SwimraftError, ValueError):
    """An argument is out of range or malformed."""


class NotLeaderError(SwimraftError):
    """This node is not the leader; ``leader`` names it when known.

    Reserved for the legacy bully mode's queue, which is not part of this package yet: today no
    call raises it (bully mode's work operations raise :class:`UnavailableError` naming the mode,
    and Raft forwards every operation to the leader instead of refusing it)."""

    def __init__(self, message: str = "", kind: str = "not_leader", leader: str = "") -> None:
        super().__init__(message, kind)
        self.leader = leader


class UnavailableError(SwimraftError):
    """Not applied; safe to retry (no quorum, no leader, protocol not running)."""


class TimeoutError(SwimraftError, builtins.TimeoutError):  # noqa: A001 - deliberate: also the builtin
    """The deadline passed and the outcome is unknown. Also a builtin ``TimeoutError``."""


class StorageError(SwimraftError):
    """Disk or database failure."""


class ShutdownError(SwimraftError):
    """The engine was stopped (or used after ``fork()``)."""


class BackpressureError(SwimraftError):
    """The work queue refuses new items until it drains."""
