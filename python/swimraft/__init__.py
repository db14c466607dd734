"""swimraft: SWIM membership and Raft consensus for peer-to-peer job orchestrators.

The engine is Rust (``swimraft._native``); this package is its Python face::

    import swimraft
    coord = swimraft.HybridCoordinator(node_id="gpu-1", config=swimraft.Config(
        swim_enabled=True, membership_mode="swim", swim_seeds="10.0.0.2:7947"))
    await coord.start()
    coord.get_alive_peers()
"""

from ._native import version as _engine_version
from .config import Config
from .coordinator import HybridCoordinator
from .errors import (
    BackpressureError,
    ConfigError,
    InvalidArgumentError,
    NotLeaderError,
    ShutdownError,
    StorageError,
    SwimraftError,
    TimeoutError,
    UnavailableError,
)

__version__ = _engine_version()

__all__ = [
    "HybridCoordinator",
    "Config",
    "SwimraftError",
    "ConfigError",
    "InvalidArgumentError",
    "NotLeaderError",
    "UnavailableError",
    "TimeoutError",
    "StorageError",
    "ShutdownError",
    "BackpressureError",
    "__version__",
]
