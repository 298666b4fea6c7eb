"""EST: the Equivariant Spherical Transformer (spherical attention + hybrid experts)."""

from equicat.models.est.attention import RelativeOrientationEmbedding, SphericalAttention
from equicat.models.est.block import ESTBlock, est_transform
from equicat.models.est.config import ESTConfig
from equicat.models.est.model import EST, ESTLayer
from equicat.models.est.moe import HybridExperts, SphericalExperts, SteerableExpert

__all__ = [
    "EST",
    "ESTBlock",
    "ESTConfig",
    "ESTLayer",
    "HybridExperts",
    "RelativeOrientationEmbedding",
    "SphericalAttention",
    "SphericalExperts",
    "SteerableExpert",
    "est_transform",
]
