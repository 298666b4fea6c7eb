"""The first SO(2) layer computed on nodes instead of edges (same function, fewer FLOPs).

The first linear layer of an eSCN SO(2) convolution reads the edge-frame coefficients
``(D_e x_j)_{l, +-m}`` and mixes degrees and channels. Because ``D_e`` only mixes orders within
a degree, ``W (D_e x_j) = sum_k A_e[k] (W_l(k) x_j[k])``: the channel-mixing part
``z_j[k] = W_l(k) x_j[k]`` is computed once per *node*, and each edge only contracts ``z_j``
over the ``n`` coefficients with one row ``A_e`` of its Wigner matrix per (order, sign):
``A_e[(m, +-)] = sum_{l >= m} D_e[(l, +-m), :]`` (the degree blocks do not overlap).

Edges are grouped by their end node and padded to the largest degree, so the per-edge
contraction is one batched GEMM per order, ``[N, D*rows, n] @ [N, n, cols]``, and the
``[E, n, H]`` gather of ``z`` never materialises.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from equicat.so3 import CoefficientLayout

__all__ = ["EdgeGroups", "GroupedEdges", "collapse_rows"]


def collapse_rows(rot: Tensor, layout: CoefficientLayout) -> list[Tensor]:
    """Per order ``m``, the collapsed Wigner rows ``A_m`` ``[E, rows_m, n_m]``.

    Args:
        rot: ``[E, n_red, n]`` Wigner rows in m-major order (orders ``<= mmax``).
        layout: The truncation.

    Returns:
        ``A_0 [E, 1, n]`` and, for ``m > 0``, ``A_m [E, 2, n - m^2]`` (``+m`` then ``-m``),
        restricted to the coefficients of degrees ``>= m`` (l-major order).
    """
    sizes = layout.m_sizes
    out = [rot[:, : sizes[0]].sum(dim=1, keepdim=True)]
    start = sizes[0]
    for m, k in enumerate(sizes[1:], start=1):
        plus = rot[:, start : start + k].sum(dim=1)
        minus = rot[:, start + k : start + 2 * k].sum(dim=1)
        out.append(torch.stack((plus, minus), dim=1)[:, :, m * m :])
        start += 2 * k
    return out


class EdgeGroups:
    """Edges grouped by one end node, padded to the largest group.

    Args:
        index: ``[E]`` node of each edge (source or target).
        num_nodes: ``N``.
    """

    def __init__(self, index: Tensor, num_nodes: int) -> None:
        e = index.shape[0]
        counts = torch.bincount(index, minlength=num_nodes)
        self.width = int(counts.max()) if e else 0
        order = torch.argsort(index, stable=True)
        starts = torch.cumsum(counts, 0) - counts
        slot = torch.empty_like(index)
        slot[order] = torch.arange(e, device=index.device) - starts[index[order]]
        self.flat = index * self.width + slot  # [E] row of each edge in the padded layout
        self.num_nodes = num_nodes

    @property
    def padded_rows(self) -> int:
        """``N * width``: padded edge slots."""
        return self.num_nodes * self.width

    def pad(self, a: Tensor) -> Tensor:
        """``[E, r, n] -> [N, width * r, n]`` (zeros in the padding)."""
        out = a.new_zeros(self.padded_rows, *a.shape[1:])
        out = out.index_copy(0, self.flat, a)
        return out.reshape(self.num_nodes, self.width * a.shape[1], a.shape[2])

    def contract(self, a_pad: Tensor, z: Tensor, rows: int) -> Tensor:
        """Per-edge ``A_e @ z_node``: ``[N, width*rows, n] @ [N, n, H] -> [E, rows, H]``."""
        out = torch.bmm(a_pad, z)  # [N, width * rows, H]
        return out.reshape(self.padded_rows, rows, z.shape[2])[self.flat]


@dataclass
class GroupedEdges:
    """Both groupings of a graph's edges with their padded collapsed Wigner rows.

    Attributes:
        source: Edges grouped by source node.
        target: Edges grouped by target node.
        a_source: Per order, ``[N, width * rows, n_m]`` padded :func:`collapse_rows`.
        a_target: The same for the target grouping.
    """

    source: EdgeGroups
    target: EdgeGroups
    a_source: list[Tensor]
    a_target: list[Tensor]

    @staticmethod
    def build(
        rot: Tensor,
        layout: CoefficientLayout,
        source: Tensor,
        target: Tensor,
        num_nodes: int,
        max_padding: float = 2.0,
    ) -> GroupedEdges | None:
        """Group the edges, or None where padding would more than ``max_padding``-fold them."""
        if source.numel() == 0:
            return None
        src, tgt = EdgeGroups(source, num_nodes), EdgeGroups(target, num_nodes)
        limit = max_padding * source.numel()
        if src.padded_rows > limit or tgt.padded_rows > limit:
            return None
        rows = collapse_rows(rot, layout)
        return GroupedEdges(src, tgt, [src.pad(a) for a in rows], [tgt.pad(a) for a in rows])

    def hidden(self, block, x: Tensor, side: str) -> list[Tensor]:
        """First-layer outputs of an SO2 block for every edge, computed on the nodes.

        Args:
            block: The :class:`~equicat.models.escn.blocks.SO2Block` of that side.
            x: ``[N, (L+1)^2, C]`` node features.
            side: ``"source"`` or ``"target"``.

        Returns:
            ``[E, 1, H]`` (m = 0) and ``[E, 2, 2H]`` per ``m > 0``, as the block's ``finish``
            expects.
        """
        groups, pads = (
            (self.source, self.a_source) if side == "source" else (self.target, self.a_target)
        )
        z = block.node_projection(x)
        return [
            groups.contract(a, zm, a.shape[1] // groups.width)
            for a, zm in zip(pads, z, strict=True)
        ]
