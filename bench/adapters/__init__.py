"""System adapters for the failure-detection benchmark."""

from .serf import SerfAdapter
from .swim_p2p import SwimP2PAdapter
from .swimraft import SwimraftAdapter

ADAPTERS = {
    "swimraft": SwimraftAdapter,
    "serf": SerfAdapter,
    "swim-p2p": SwimP2PAdapter,
}
