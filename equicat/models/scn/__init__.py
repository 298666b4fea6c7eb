"""SCN: spherical channels with edge-frame messages (Zitnick et al., 2022)."""

from equicat.models.scn.config import SCNConfig
from equicat.models.scn.model import SCN

__all__ = ["SCN", "SCNConfig"]
