"""EquiformerV2: equivariant Transformer on eSCN SO(2) convolutions."""

from equicat.models.equiformer_v2.config import EquiformerV2Config
from equicat.models.equiformer_v2.model import EquiformerV2

__all__ = ["EquiformerV2", "EquiformerV2Config"]
