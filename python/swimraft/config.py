"""Configuration from keyword arguments and the environment.

Keys are the ``RINGRIFT_*`` variable names in lower case without the prefix; durations carry
their unit (``swim_gossip_interval_ms``). Precedence: explicit keyword > environment > preset.
Validation happens in Rust when the object is built, so a bad value raises
:class:`~swimraft.errors.ConfigError` here, naming the key or variable.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Optional

from . import _native

__all__ = ["Config"]

_SECRET_KEYS = frozenset({"auth_token", "cluster_key"})


class Config:
    """A validated configuration.

    ``Config(swim_enabled=True, membership_mode="swim", swim_port=7947)`` reads the environment
    for every key not given; ``Config(use_env=False, ...)`` ignores the environment entirely
    (tests). ``Config.from_env()`` takes everything from ``RINGRIFT_*`` variables.
    """

    def __init__(self, *, use_env: bool = True, **keys: Any) -> None:
        self._explicit: Dict[str, Any] = {k: v for k, v in keys.items() if v is not None}
        self._use_env = use_env
        self._effective: Dict[str, Any] = json.loads(
            _native.resolve_config(json.dumps(self._explicit), use_env)
        )

    @classmethod
    def from_env(cls) -> "Config":
        """Everything from the environment (and the preset)."""
        return cls()

    @classmethod
    def from_mapping(cls, keys: Mapping[str, Any], *, use_env: bool = True) -> "Config":
        """From a mapping of explicit keys."""
        return cls(use_env=use_env, **dict(keys))

    def with_overrides(self, **keys: Any) -> "Config":
        """A new configuration with more explicit keys."""
        merged = dict(self._explicit)
        merged.update(keys)
        return Config(use_env=self._use_env, **merged)

    @property
    def explicit(self) -> Dict[str, Any]:
        """The keys given explicitly."""
        return dict(self._explicit)

    @property
    def use_env(self) -> bool:
        """Whether the environment is consulted."""
        return self._use_env

    def to_dict(self) -> Dict[str, Any]:
        """The effective configuration (secrets redacted)."""
        return json.loads(json.dumps(self._effective))

    def get(self, section: str, key: Optional[str] = None) -> Any:
        """A value of the effective configuration: ``get("node_id")`` or ``get("membership", "swim_port")``."""
        value = self._effective[section]
        return value if key is None else value[key]

    @property
    def node_id(self) -> str:
        return str(self._effective["node_id"])

    def _explicit_json(self) -> str:
        return json.dumps(self._explicit)

    def __repr__(self) -> str:
        shown = {k: ("***" if k in _SECRET_KEYS else v) for k, v in self._explicit.items()}
        return f"Config({', '.join(f'{k}={v!r}' for k, v in sorted(shown.items()))})"
