"""Input embeddings: atom types, edge features and the edge-degree embedding."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from equicat.so3 import RadialMLP, spherical_harmonics, truncation_factor
from equicat.so3.constants import ConstantCache

__all__ = ["EdgeFeatures", "EdgeDegreeEmbedding"]


class EdgeFeatures(nn.Module):
    """Invariant edge features: ``[gaussians(d), emb_src(Z_j), emb_tgt(Z_i)]``.

    Shapes: ``forward(basis [E, K], z_src [E], z_tgt [E]) -> [E, K + 2 C_e]``.
    """

    def __init__(self, num_elements: int, channels: int) -> None:
        super().__init__()
        self.source_embedding = nn.Embedding(num_elements, channels)
        self.target_embedding = nn.Embedding(num_elements, channels)

    def forward(self, basis: Tensor, z_src: Tensor, z_tgt: Tensor) -> Tensor:
        """Concatenate distance basis and atom-type embeddings (shapes above)."""
        return torch.cat((basis, self.source_embedding(z_src), self.target_embedding(z_tgt)), 1)


class EdgeDegreeEmbedding(nn.Module):
    """Initial equivariant node features from each atom's neighbourhood (EquiformerV2 sec. 3).

    For each edge a radial MLP gives one value per degree and channel, placed on the ``m = 0``
    coefficient of the edge frame and rotated back to the global frame, then summed over
    neighbours and divided by ``avg_degree``. Rotating an ``m = 0`` coefficient back is
    multiplying by ``Y_l(r_hat) / sqrt(2l + 1)`` (times the degree scale of
    :meth:`~equicat.so3.CoefficientLayout.truncation_scale` for ``l > mmax``), which is what is
    computed here (no Wigner matrix needed).

    Shapes: ``forward(base [E, K], z_src [E], z_tgt [E], unit [E, 3], target [E], num_nodes,
    weight [E] or None) -> [N, (lmax+1)^2, C]``; ``weight`` (a cutoff envelope) scales each
    edge's contribution.
    """

    def __init__(
        self,
        lmax: int,
        channels: int,
        num_elements: int,
        basis_size: int,
        edge_channels: int,
        avg_degree: float,
        mmax: int,
    ) -> None:
        super().__init__()
        self.lmax, self.channels, self.avg_degree = lmax, channels, avg_degree
        self.edge = EdgeFeatures(num_elements, edge_channels)
        sizes = [basis_size + 2 * edge_channels, edge_channels, edge_channels]
        self.radial = RadialMLP([*sizes, (lmax + 1) * channels])
        deg = torch.tensor([l_ for l_ in range(lmax + 1) for _ in range(2 * l_ + 1)])
        self.register_buffer("degree_index", deg, persistent=False)
        scale = [
            truncation_factor(l_, mmax) / math.sqrt(2 * l_ + 1)
            for l_ in range(lmax + 1)
            for _ in range(2 * l_ + 1)
        ]
        # [n] float64, cast per call (exact in float64 runs)
        self.const = ConstantCache(sh_scale=torch.tensor(scale, dtype=torch.float64))

    def forward(
        self,
        base: Tensor,
        z_src: Tensor,
        z_tgt: Tensor,
        unit: Tensor,
        target: Tensor,
        num_nodes: int,
        weight: Tensor | None = None,
    ) -> Tensor:
        """Compute the embedding (shapes in the class docstring)."""
        e = base.shape[0]
        rad = self.radial(self.edge(base, z_src, z_tgt)).reshape(e, self.lmax + 1, self.channels)
        sh = spherical_harmonics(self.lmax, unit, normalize=False)  # [E, n]
        sh = sh * self.const.get("sh_scale", sh)
        # [E, n, C]: degree-l radial value times the degree-l harmonics of the edge direction
        msg = rad[:, self.degree_index] * sh[:, :, None]
        if weight is not None:
            msg = msg * weight[:, None, None]
        out = msg.new_zeros(num_nodes, msg.shape[1], self.channels)
        out.index_add_(0, target, msg)
        return out / self.avg_degree
