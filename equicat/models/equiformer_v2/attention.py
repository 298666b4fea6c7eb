"""Equivariant graph attention on SO(2) convolutions (EquiformerV2 sec. 3.1-3.2)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from equicat.models.equiformer_v2.embedding import EdgeFeatures
from equicat.so3 import (
    CoefficientLayout,
    RadialMLP,
    SeparableS2Activation,
    SmoothLeakyReLU,
    SO2Linear,
    SO3Linear,
    SphereGrid,
)

__all__ = ["EdgeContext", "GraphAttention", "segment_softmax"]


class EdgeContext:
    """Per-call edge quantities shared by every attention layer.

    Attributes:
        source: ``[E]`` neighbour index j.
        target: ``[E]`` centre index i.
        z_src: ``[E]`` atomic number of j.
        z_tgt: ``[E]`` atomic number of i.
        basis: ``[E, K]`` radial basis of the edge length.
        rot: ``[E, n_red, n]`` Wigner rows taking global l-major coefficients to the
            m-major, order-truncated edge frame.
        rot_back: ``[E, n, n_red]`` the way back: ``rot^T`` with the degrees above ``mmax``
            scaled by :meth:`~equicat.so3.CoefficientLayout.truncation_scale`.
        weight: ``[E]`` smooth cutoff envelope of each edge, or ``None`` (no envelope).
        num_nodes: N.
    """

    def __init__(
        self,
        source: Tensor,
        target: Tensor,
        z_src: Tensor,
        z_tgt: Tensor,
        basis: Tensor,
        rot: Tensor,
        rot_back: Tensor,
        num_nodes: int,
        weight: Tensor | None = None,
    ) -> None:
        self.source, self.target = source, target
        self.z_src, self.z_tgt = z_src, z_tgt
        self.basis, self.rot, self.rot_back, self.num_nodes = basis, rot, rot_back, num_nodes
        self.weight = weight


def segment_softmax(
    logits: Tensor, index: Tensor, num_segments: int, weight: Tensor | None = None
) -> Tensor:
    """Softmax of ``logits [E, H]`` over the edges that share ``index [E]`` (per target).

    With ``weight [E]``: ``w_e * w_e exp(a_e) / sum_k w_k exp(a_k)``. The weighted
    normalisation lets an edge leave the other edges' weights smoothly, and the extra factor
    ``w_e`` makes the edge's own weight vanish even when it is its target's only edge (where
    the weighted softmax alone would be 1).
    """
    h = logits.shape[1]
    seg_max = logits.new_full((num_segments, h), float("-inf"))
    seg_max = seg_max.scatter_reduce(0, index[:, None].expand(-1, h), logits, "amax")
    ex = torch.exp(logits - seg_max[index].detach())
    if weight is not None:
        ex = ex * weight[:, None]
    denom = ex.new_zeros(num_segments, h).index_add_(0, index, ex)
    if weight is None:
        return ex / denom[index]
    denom = denom.clamp_min(torch.finfo(ex.dtype).tiny)
    return ex / denom[index] * weight[:, None]


class GraphAttention(nn.Module):
    """Multi-head SO(2) graph attention with attention re-normalisation and S^2 activation.

    For edge ``j -> i``: the concatenated features ``[x_j, x_i]`` are rotated into the edge
    frame, passed through a radially modulated SO(2) convolution that also emits invariant
    attention logits and gates, the logits are layer-normalised and activated (attention
    re-normalisation) and reduced per head with ``alpha_dot``; values go through the separable
    S^2 activation and a second SO(2) convolution, are weighted by the per-target softmax,
    rotated back and summed over neighbours, and a degree-wise linear layer projects the heads.

    Shapes: ``forward(x [N, (L+1)^2, C], ctx) -> [N, (L+1)^2, C_out]``.
    """

    def __init__(
        self,
        lmax: int,
        mmax: int,
        channels: int,
        hidden_channels: int,
        num_heads: int,
        alpha_channels: int,
        value_channels: int,
        out_channels: int,
        num_elements: int,
        basis_size: int,
        edge_channels: int,
        grid_resolution: int,
    ) -> None:
        super().__init__()
        self.lmax, self.mmax = lmax, mmax
        self.num_heads, self.alpha_channels = num_heads, alpha_channels
        self.hidden_channels, self.value_channels = hidden_channels, value_channels
        layout = CoefficientLayout(lmax, mmax)
        self.edge = EdgeFeatures(num_elements, edge_channels)
        extra = num_heads * alpha_channels + hidden_channels
        self.conv1 = SO2Linear(layout, 2 * channels, hidden_channels, extra_m0_channels=extra)
        sizes = [basis_size + 2 * edge_channels, edge_channels, edge_channels]
        self.radial = RadialMLP([*sizes, self.conv1.radial_size])
        self.alpha_norm = nn.LayerNorm(alpha_channels)
        self.alpha_act = SmoothLeakyReLU(0.2)
        self.alpha_dot = nn.Parameter(torch.randn(num_heads, alpha_channels) / alpha_channels**0.5)
        self.act = SeparableS2Activation(SphereGrid(layout, grid_resolution, grid_resolution))
        self.conv2 = SO2Linear(layout, hidden_channels, num_heads * value_channels)
        self.proj = SO3Linear(num_heads * value_channels, out_channels, lmax)

    def extra_repr(self) -> str:
        """What this module maps (shown in ``print(model)``)."""
        return f"lmax={self.lmax}, mmax={self.mmax}, heads={self.num_heads}"

    def forward(self, x: Tensor, ctx: EdgeContext) -> Tensor:
        """Attend over neighbours (shapes in the class docstring)."""
        e = ctx.source.shape[0]
        # [E, n, 2C] -> edge frame [E, n_red, 2C]
        msg = torch.cat((x[ctx.source], x[ctx.target]), dim=2)
        msg = torch.bmm(ctx.rot, msg)
        radial = self.radial(self.edge(ctx.basis, ctx.z_src, ctx.z_tgt))
        msg, extra = self.conv1(msg, radial)
        logits, gates = extra.split(
            [self.num_heads * self.alpha_channels, self.hidden_channels], dim=1
        )
        logits = self.alpha_act(
            self.alpha_norm(logits.reshape(e, self.num_heads, self.alpha_channels))
        )
        logits = (logits * self.alpha_dot).sum(-1)  # [E, H]
        alpha = segment_softmax(logits, ctx.target, ctx.num_nodes, ctx.weight)
        msg = self.act(gates, msg)
        msg, _ = self.conv2(msg)
        # [E, n_red, H * V] weighted per head
        msg = msg.reshape(e, msg.shape[1], self.num_heads, self.value_channels)
        msg = (msg * alpha[:, None, :, None]).reshape(
            e, msg.shape[1], self.num_heads * self.value_channels
        )
        msg = torch.bmm(ctx.rot_back, msg)  # back to the global frame [E, n, H * V]
        out = msg.new_zeros(ctx.num_nodes, msg.shape[1], msg.shape[2])
        out.index_add_(0, ctx.target, msg)
        return self.proj(out)
