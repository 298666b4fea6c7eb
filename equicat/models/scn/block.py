"""One SCN layer: messages from every neighbour, non-linear aggregation on the sphere grid."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from equicat.models.scn.config import SCNConfig
from equicat.models.scn.message import EdgeEmbedding, MessageBlock
from equicat.so3 import CoefficientLayout, SphereGrid

__all__ = ["EdgeContext", "InteractionBlock", "GridConv"]


@dataclass
class EdgeContext:
    """Per-edge inputs shared by all layers.

    Attributes:
        source: ``[E]`` neighbour atoms.
        target: ``[E]`` centre atoms.
        z_src: ``[E]`` atomic numbers of the sources.
        z_tgt: ``[E]`` atomic numbers of the targets.
        basis: ``[E, G]`` Gaussian distance basis.
        wigner: ``[E, n, n]`` edge-frame Wigner-D (edge to +y).
        groups: Edge index lists ``[E_r]`` of each resolution (near first), or ``None``
            when every edge uses the first resolution.
        num_atoms: ``N``.
    """

    source: Tensor
    target: Tensor
    z_src: Tensor
    z_tgt: Tensor
    basis: Tensor
    wigner: Tensor
    groups: list[Tensor] | None
    num_atoms: int


class GridConv(nn.Module):
    """``G^-1(F_c(G(x), G(m)))`` (eq. 10): a 3-layer 1x1 convolution on the sphere grid.

    ``G`` samples the spherical channels on a ``2(L+1) x (2L+3)`` polar/azimuth grid;
    ``F_c`` is ``Linear(2C, 2C) -> SiLU -> Linear(2C, 2C) -> SiLU -> Linear(2C, C)``
    applied at every grid point. With two bands (section 3.2) ``F_c`` also sees ``x`` and
    ``m`` band-limited to degree ``L - 1`` (their degree-``L`` coefficients zeroed), on
    ``4C`` channels: ``Linear(4C, 4C) -> SiLU -> Linear(4C, 4C) -> SiLU -> Linear(4C, C)``.

    Shapes: ``m, x [N, (L+1)^2, C] -> [N, (L+1)^2, C]``.
    """

    def __init__(self, lmax: int, channels: int, num_bands: int = 1) -> None:
        super().__init__()
        self.grid = SphereGrid(
            CoefficientLayout(lmax, lmax),
            2 * (lmax + 1),
            2 * lmax + 3,
            order="l_major",
            normalization="integral",
        )
        self.num_bands = num_bands
        self.low = lmax * lmax  # l-major: coefficients of degrees < L come first
        width = 2 * num_bands * channels
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        self.fc3 = nn.Linear(width, channels)

    def forward(self, m: Tensor, x: Tensor) -> Tensor:
        """Aggregate (shapes in the class docstring)."""
        parts = [x, m]  # the published weights' channel order
        if self.num_bands == 2:
            zero = torch.zeros_like(x[:, self.low :])
            parts += [torch.cat((v[:, : self.low], zero), dim=1) for v in (x, m)]
        both = torch.cat(parts, dim=2)  # [N, n, 2 * bands * C]

        def conv(g: Tensor) -> Tensor:  # [k, G, 2 * bands * C] grid values -> [k, G, C]
            return self.fc3(F.silu(self.fc2(F.silu(self.fc1(g)))))

        return self.grid.apply_channels_last(both, conv)


class InteractionBlock(nn.Module):
    """One layer: messages summed at each target, then :class:`GridConv` (or nothing more).

    One message network per neighbour resolution (near / far).

    Shapes: ``[N, (L+1)^2, C] -> [N, (L+1)^2, C]`` (the update; the caller adds it).
    """

    def __init__(self, cfg: SCNConfig) -> None:
        super().__init__()
        c = cfg.sphere_channels
        self.edge_embedding = EdgeEmbedding(
            cfg.num_distance_basis, cfg.edge_channels, cfg.max_num_elements
        )
        resolutions = [(cfg.lmax, cfg.hidden_channels)]
        if cfg.near_neighbors is not None:
            resolutions.append((cfg.far_lmax, cfg.hidden_channels // 4))
        self.messages = nn.ModuleList(
            MessageBlock(lmax, cfg.mmax, cfg.num_taps, c, hidden, cfg.edge_channels)
            for lmax, hidden in resolutions
        )
        # "sum" (the paper's "No 1x1 conv"): the update is the summed messages themselves
        self.aggregate = GridConv(cfg.lmax, c, cfg.num_bands) if cfg.aggregation == "grid" else None

    def forward(self, x: Tensor, ctx: EdgeContext) -> Tensor:
        """Layer update (shapes in the class docstring)."""
        edge = self.edge_embedding(ctx.basis, ctx.z_src, ctx.z_tgt)  # [E, edge_channels]
        m = torch.zeros_like(x)
        groups = ctx.groups if ctx.groups is not None else [None]
        for block, idx in zip(self.messages, groups, strict=True):
            if idx is None:
                msg = block(x, edge, ctx.wigner, ctx.source, ctx.target)
                tgt = ctx.target
            else:
                tgt = ctx.target[idx]
                msg = block(x, edge[idx], ctx.wigner[idx], ctx.source[idx], tgt)
            # sum of messages at each target: [E, n_r, C] -> [N, n_r, C]
            m[:, : msg.shape[1]] = m[:, : msg.shape[1]].index_add(0, tgt, msg)
        return m if self.aggregate is None else self.aggregate(m, x)
