"""The EST block: pre-norm spherical attention, then a pre-norm mixture of hybrid experts."""

from __future__ import annotations

import copy

from torch import Tensor, nn

from equicat.models.est.attention import SphericalAttention
from equicat.models.est.config import ESTConfig
from equicat.models.est.moe import HybridExperts
from equicat.so3 import SeparableLayerNorm, SphericalTransform

__all__ = ["ESTBlock", "est_transform"]


def est_transform(cfg: ESTConfig) -> SphericalTransform:
    """The spherical transform an :class:`ESTConfig` asks for (Fibonacci or lat-long)."""
    if cfg.est_grid == "fibonacci":
        return SphericalTransform.fibonacci(
            cfg.lmax, cfg.est_points, cfg.est_refined, cfg.est_inverse
        )
    return SphericalTransform.lat_long(
        cfg.lmax, cfg.est_res_beta, cfg.est_res_alpha, cfg.est_inverse
    )


class ESTBlock(nn.Module):
    """``x + SA(LN(x))``, then ``x + MoE(LN(x))`` (EST sec. 3.2, pre-LayerNorm).

    ``LN`` is EquiformerV2's separable layer norm; ``SA`` is :class:`SphericalAttention`
    (queries, keys and values all from the node's own feature: EST's update-block use) and
    ``MoE`` the :class:`HybridExperts`. Usable on its own on node features, or as the update
    of :class:`~equicat.models.est.EST`.

    Differences from the paper: its appendix C.4 describes the spherical expert applied after
    the attention with the steerable expert as a parallel branch; here both kinds of expert
    sit in one routed mixture after the attention residual (the main text's sec. 3.2.3
    form). EST's variant that uses the block as a *message* block (keys and values from edge
    harmonics) is not implemented; there is no load-balancing loss (the paper's ablation
    found it hurt).

    Args:
        transform: Coefficients <-> samples (shared by attention and spherical experts).
        lmax: Largest degree ``L``.
        channels: Channels ``C``.
        num_heads: Attention heads.
        head_channels: Channels per head.
        orientation_degree: Degree of the relative orientation embedding.
        expert_channels: Hidden channels of the experts.
        steerable_experts: Number of steerable experts.
        spherical_experts: Number of spherical experts.
        top_k: 0 for dense routing, else experts kept per node.

    Shapes: ``[N, (L+1)^2, C] -> [N, (L+1)^2, C]``.
    """

    def __init__(
        self,
        transform: SphericalTransform,
        lmax: int,
        channels: int,
        num_heads: int = 2,
        head_channels: int = 8,
        orientation_degree: int = 4,
        expert_channels: int = 32,
        steerable_experts: int = 1,
        spherical_experts: int = 1,
        top_k: int = 0,
    ) -> None:
        super().__init__()
        if transform.lmax != lmax:
            raise ValueError(f"transform has lmax={transform.lmax}, block has lmax={lmax}")
        self.lmax, self.channels = lmax, channels
        self.norm_attn = SeparableLayerNorm(lmax, channels)
        self.attn = SphericalAttention(
            transform, channels, num_heads, head_channels, orientation_degree
        )
        self.norm_ffn = SeparableLayerNorm(lmax, channels)
        self.ffn = HybridExperts(
            transform, lmax, channels, expert_channels, steerable_experts, spherical_experts, top_k
        )

    @classmethod
    def from_config(cls, cfg: ESTConfig, transform: SphericalTransform | None = None) -> ESTBlock:
        """The block of an :class:`ESTConfig` (a new transform unless one is given)."""
        return cls(
            transform if transform is not None else est_transform(cfg),
            cfg.lmax,
            cfg.sphere_channels,
            cfg.est_heads,
            cfg.est_head_channels,
            cfg.est_orientation_degree,
            cfg.est_expert_channels,
            cfg.est_steerable_experts,
            cfg.est_spherical_experts,
            cfg.est_top_k,
        )

    def extra_repr(self) -> str:
        """What this module maps (shown in ``print(model)``)."""
        return f"lmax={self.lmax}, channels={self.channels}"

    def with_transform(self, transform: SphericalTransform) -> ESTBlock:
        """A copy with the same weights sampling on another point set.

        No parameter depends on the points, so this is the same learned function
        discretised differently: the way to compare samplings (or to co-rotate the points).
        """
        if transform.lmax != self.lmax:
            raise ValueError(f"transform has lmax={transform.lmax}, block has lmax={self.lmax}")
        out = copy.deepcopy(self)
        out.attn.transform = transform
        if out.ffn.spherical is not None:
            out.ffn.spherical.transform = transform
        return out

    def forward(self, x: Tensor) -> Tensor:
        """Apply the block (shapes in the class docstring)."""
        x = x + self.attn(self.norm_attn(x))
        return x + self.ffn(self.norm_ffn(x))
