"""EST for OC-style data: EquiformerV2 graph attention as message, EST block as update."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor, nn

from equicat.models.equiformer_v2.model import EquiformerV2, graph_attention
from equicat.models.est.block import ESTBlock, est_transform
from equicat.models.est.config import ESTConfig
from equicat.so3 import SeparableLayerNorm, SphericalTransform

if TYPE_CHECKING:
    from equicat.models.equiformer_v2.attention import EdgeContext

__all__ = ["EST", "ESTLayer"]


class ESTLayer(nn.Module):
    """``x + GA(LN(x))`` (EquiformerV2's message block), then the :class:`ESTBlock` update.

    Shapes: ``forward(x [N, (L+1)^2, C], ctx) -> [N, (L+1)^2, C]``.
    """

    def __init__(self, cfg: ESTConfig, transform: SphericalTransform) -> None:
        super().__init__()
        self.norm_attn = SeparableLayerNorm(cfg.lmax, cfg.sphere_channels)
        self.attn = graph_attention(cfg, out_channels=cfg.sphere_channels)
        self.update = ESTBlock.from_config(cfg, transform)

    def forward(self, x: Tensor, ctx: EdgeContext) -> Tensor:
        """Message, then update (shapes in the class docstring)."""
        x = x + self.attn(self.norm_attn(x), ctx)
        return self.update(x)


class EST(EquiformerV2):
    """The Equivariant Spherical Transformer in the paper's OC20 S2EF form (sec. 4.1, D.2).

    Identical to :class:`~equicat.models.equiformer_v2.EquiformerV2` (embeddings, graph
    attention, energy head, direct or conservative forces, stress) except that each layer's
    feed-forward network is replaced by an :class:`ESTBlock` (spherical attention and the
    mixture of hybrid experts). All layers share one spherical transform (constants only).

    ``forward(graph)`` returns ``{"energy": [B] eV, "forces": [N, 3] eV/Å}`` and, in
    conservative mode with ``compute_stress=True``, ``"stress": [B, 3, 3]`` eV/Å^3.

    Args:
        config: Hyper-parameters.
    """

    config: ESTConfig

    def __init__(self, config: ESTConfig) -> None:
        super().__init__(config)

    def _make_block(self, cfg: ESTConfig) -> nn.Module:  # type: ignore[override]
        """An :class:`ESTLayer`; the first call builds the transform all layers share."""
        if not hasattr(self, "transform"):
            self.transform = est_transform(cfg)
        return ESTLayer(cfg, self.transform)

    def extra_repr(self) -> str:
        """What this module maps (shown in ``print(model)``)."""
        return f"{super().extra_repr()}, sphere={self.transform.kind}"
