"""The L-set equivariant GCN: NequIP-like convolutions over any set of degrees."""

from equicat.models.gcn.config import GCNConfig
from equicat.models.gcn.model import LSetGCN

__all__ = ["GCNConfig", "LSetGCN"]
