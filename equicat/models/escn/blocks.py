"""eSCN building blocks: edge features, SO(2) convolutions, messages, node updates, heads.

Edge-frame features are in the m-major order of :class:`~equicat.so3.CoefficientLayout`
(``m = 0`` for every degree, then ``+m`` and ``-m`` for ``m = 1..mmax``); node features are
l-major ``[N, (lmax+1)^2, C]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from equicat.models.escn.grouped import GroupedEdges
from equicat.so3 import CoefficientLayout, GridMLP, SphereGrid

__all__ = ["EdgeContext", "EdgeBlock", "SO2Block", "MessageBlock", "LayerBlock", "SphereHead"]


@dataclass
class EdgeContext:
    """What every layer needs about the edges (computed once per forward).

    Attributes:
        source: ``[E]`` neighbour index j (row 0 of ``edge_index``).
        target: ``[E]`` centre index i (row 1).
        z_src: ``[E]`` atomic number of the source.
        z_tgt: ``[E]`` atomic number of the target.
        basis: ``[E, K]`` Gaussian expansion of the edge length.
        rot: ``[E, n_red, n]`` Wigner rows (m-major, orders ``<= mmax``): global -> edge frame.
        num_nodes: ``N``.
        grouped: Edge groupings for the node-side first SO(2) layer (:mod:`.grouped`), or
            None to compute it per edge.
    """

    source: Tensor
    target: Tensor
    z_src: Tensor
    z_tgt: Tensor
    basis: Tensor
    rot: Tensor
    num_nodes: int
    grouped: GroupedEdges | None = None


class EdgeBlock(nn.Module):
    """Invariant edge features ``SiLU(W2 SiLU(W1 g(d) + a_src(Z_j) + a_tgt(Z_i)))``.

    Shapes: ``forward(basis [E, K], z_src [E], z_tgt [E]) -> [E, C_e]``.
    """

    def __init__(self, basis_size: int, edge_channels: int, num_elements: int) -> None:
        super().__init__()
        self.fc1_dist = nn.Linear(basis_size, edge_channels)
        self.source_embedding = nn.Embedding(num_elements, edge_channels)
        self.target_embedding = nn.Embedding(num_elements, edge_channels)
        nn.init.uniform_(self.source_embedding.weight, -0.001, 0.001)
        nn.init.uniform_(self.target_embedding.weight, -0.001, 0.001)
        self.fc1_edge_attr = nn.Linear(edge_channels, edge_channels)

    def forward(self, basis: Tensor, z_src: Tensor, z_tgt: Tensor) -> Tensor:
        """Edge features (shapes in the class docstring)."""
        h = self.fc1_dist(basis) + self.source_embedding(z_src) + self.target_embedding(z_tgt)
        return F.silu(self.fc1_edge_attr(F.silu(h)))


class SO2Conv(nn.Module):
    """One order ``m > 0`` of the SO(2) convolution.

    Two radially modulated two-layer maps ``R`` and ``I`` act as
    ``y_{+m} = R(x_{+m}) - I(x_{-m})``, ``y_{-m} = R(x_{-m}) + I(x_{+m})``.

    ``R(x) = W2r ((W1r x) * a(e))`` and ``I(x) = W2i ((W1i x) * b(e))`` with
    ``[a, b] = SiLU(W_e e)`` from the edge features. Both are applied identically to the
    ``+m`` and ``-m`` coefficients, so the map commutes with a roll about the edge.

    Shapes: ``forward(x [E, 2, K], edge [E, C_e]) -> [E, 2, K]``, ``K = (lmax + 1 - m) C``.
    """

    def __init__(self, width: int, hidden: int, edge_channels: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.fc1_dist = nn.Linear(edge_channels, 2 * hidden)
        self.fc1_r = nn.Linear(width, hidden, bias=False)
        self.fc2_r = nn.Linear(hidden, width, bias=False)
        self.fc1_i = nn.Linear(width, hidden, bias=False)
        self.fc2_i = nn.Linear(hidden, width, bias=False)

    @property
    def first_weight(self) -> Tensor:
        """``[2H, K]``: the first layers of ``R`` and ``I`` stacked."""
        return torch.cat((self.fc1_r.weight, self.fc1_i.weight), 0)

    def forward(self, x: Tensor, edge: Tensor) -> Tensor:
        """Apply (shapes in the class docstring)."""
        return self.finish(x @ self.first_weight.T, edge)  # one GEMM: [E, 2, K] -> [E, 2, 2H]

    def finish(self, hid: Tensor, edge: Tensor) -> Tensor:
        """Modulate the first-layer output ``[E, 2, 2H]`` and apply the second layers."""
        h = self.hidden
        hid = hid * F.silu(self.fc1_dist(edge))[:, None]  # [E, 2, 2H]
        r = hid[..., :h] @ self.fc2_r.weight.T  # [E, 2, K]
        i = hid[..., h:] @ self.fc2_i.weight.T
        return torch.stack((r[:, 0] - i[:, 1], r[:, 1] + i[:, 0]), dim=1)


class SO2Block(nn.Module):
    """The eSCN SO(2) convolution of edge-frame features, all orders ``m <= mmax``.

    ``m = 0``: ``W2 ((W1 x_0) * SiLU(W_e e))`` on the degrees stacked with the channels;
    ``m > 0``: :class:`SO2Conv`.

    Shapes: ``forward(x [E, n_red, C], edge [E, C_e]) -> [E, n_red, C]`` (m-major).
    """

    def __init__(
        self, layout: CoefficientLayout, channels: int, hidden: int, edge_channels: int
    ) -> None:
        super().__init__()
        self.layout, self.channels = layout, channels
        n0 = layout.m_sizes[0]
        self.fc1_dist0 = nn.Linear(edge_channels, hidden)
        self.fc1_m0 = nn.Linear(n0 * channels, hidden, bias=False)
        self.fc2_m0 = nn.Linear(hidden, n0 * channels, bias=False)
        self.orders = nn.ModuleList(
            SO2Conv(n * channels, hidden, edge_channels) for n in layout.m_sizes[1:]
        )

    def forward(self, x: Tensor, edge: Tensor) -> Tensor:
        """Apply (shapes in the class docstring)."""
        e, c = x.shape[0], self.channels
        sizes = self.layout.m_sizes
        hidden = [self.fc1_m0(x[:, : sizes[0]].reshape(e, sizes[0] * c))[:, None]]
        start = sizes[0]
        for n, conv in zip(sizes[1:], self.orders, strict=True):
            # [E, 2n, C] -> [E, 2, n C]: the +m plane, then the -m plane
            xm = x[:, start : start + 2 * n].reshape(e, 2, n * c)
            hidden.append(xm @ conv.first_weight.T)
            start += 2 * n
        return self.finish(hidden, edge)

    def node_projection(self, x: Tensor) -> list[Tensor]:
        """First layers applied per node to global-frame features (see :mod:`.grouped`).

        Args:
            x: ``[N, (L+1)^2, C]`` l-major node features.

        Returns:
            ``z_0 [N, n, H]`` and, for ``m > 0``, ``z_m [N, n - m^2, 2H]``.
        """
        lmax, mmax, c = self.layout.lmax, self.layout.mmax, self.channels
        w0 = self.fc1_m0.weight  # [H, (L+1) C]
        firsts = [conv.first_weight for conv in self.orders]  # [2H, (L+1-m) C]
        pieces: list[list[Tensor]] = [[] for _ in range(mmax + 1)]
        for l_ in range(lmax + 1):
            top = min(l_, mmax)
            blocks = [w0[:, l_ * c : (l_ + 1) * c]]
            blocks += [firsts[m - 1][:, (l_ - m) * c : (l_ - m + 1) * c] for m in range(1, top + 1)]
            w = torch.cat(blocks, 0)  # [H + 2H top, C]
            z = x[:, l_ * l_ : (l_ + 1) ** 2] @ w.T  # [N, 2l+1, H + 2H top]
            for m, part in enumerate(z.split([b.shape[0] for b in blocks], dim=2)):
                pieces[m].append(part)
        return [torch.cat(p, dim=1) for p in pieces]

    def finish(self, hidden: list[Tensor], edge: Tensor) -> Tensor:
        """Second layers from the first-layer outputs ``[E, 1, H]``, ``[E, 2, 2H]`` per m."""
        e, c = edge.shape[0], self.channels
        sizes = self.layout.m_sizes
        y0 = self.fc2_m0(hidden[0][:, 0] * F.silu(self.fc1_dist0(edge)))
        outs = [y0.reshape(e, sizes[0], c)]
        for n, conv, hid in zip(sizes[1:], self.orders, hidden[1:], strict=True):
            outs.append(conv.finish(hid, edge).reshape(e, 2 * n, c))
        return torch.cat(outs, dim=1)


class MessageBlock(nn.Module):
    """Messages ``D^T act_grid(SO2_s(D x_j) + SO2_t(D x_i))`` summed over neighbours.

    Both end points are rotated into the edge frame (orders ``<= mmax`` kept), convolved by
    their own :class:`SO2Block`, added, passed through SiLU on a sphere grid in the edge frame
    and rotated back.

    Shapes: ``forward(x [N, n, C], ctx) -> [N, n, C]``.
    """

    def __init__(
        self,
        layout: CoefficientLayout,
        channels: int,
        hidden: int,
        edge_channels: int,
        basis_size: int,
        num_elements: int,
        grid: SphereGrid,
    ) -> None:
        super().__init__()
        self.edge = EdgeBlock(basis_size, edge_channels, num_elements)
        self.so2_source = SO2Block(layout, channels, hidden, edge_channels)
        self.so2_target = SO2Block(layout, channels, hidden, edge_channels)
        self.grid = grid
        self.activation = F.silu  # applied point-wise on the edge-frame grid

    def forward(self, x: Tensor, ctx: EdgeContext) -> Tensor:
        """Messages aggregated on the targets (shapes in the class docstring)."""
        c = x.shape[2]
        edge = self.edge(ctx.basis, ctx.z_src, ctx.z_tgt)
        if ctx.grouped is not None:
            # first SO(2) layers on the nodes, contracted per edge with its Wigner rows
            h_src = ctx.grouped.hidden(self.so2_source, x, "source")
            h_tgt = ctx.grouped.hidden(self.so2_target, x, "target")
            msg = self.so2_source.finish(h_src, edge) + self.so2_target.finish(h_tgt, edge)
        else:
            # rotate both end points with one batched GEMM: [E, n_red, n] @ [E, n, 2C]
            both = ctx.rot @ torch.cat((x[ctx.source], x[ctx.target]), dim=2)
            msg = self.so2_source(both[..., :c], edge) + self.so2_target(both[..., c:], edge)
        msg = self.grid.apply(msg, self.activation)  # [E, n_red, C]
        msg = ctx.rot.transpose(1, 2) @ msg  # back to the global frame: [E, n, C]
        out = msg.new_zeros(ctx.num_nodes, msg.shape[1], c)
        return out.index_add_(0, ctx.target, msg)


class LayerBlock(nn.Module):
    """One eSCN layer: messages, then the non-linear aggregation.

    The aggregation is a point-wise MLP on the sphere grid of ``[x, messages]``.

    Shapes: ``forward(x [N, n, C], ctx) -> [N, n, C]`` (the update; residual added outside).
    """

    def __init__(self, message: MessageBlock, node_grid: SphereGrid, channels: int) -> None:
        super().__init__()
        self.message = message
        self.update = GridMLP(node_grid, channels, depth=3, in_channels=2 * channels)

    def forward(self, x: Tensor, ctx: EdgeContext) -> Tensor:
        """Apply (shapes in the class docstring)."""
        return self.update(torch.cat((x, self.message(x, ctx)), dim=2))


class SphereHead(nn.Module):
    """A SiLU MLP ``C -> C -> C -> 1`` evaluated at each sphere sample.

    Shapes: ``forward(values [N, S, C]) -> [N, S]``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, channels)
        self.fc2 = nn.Linear(channels, channels)
        self.fc3 = nn.Linear(channels, 1, bias=False)

    def forward(self, values: Tensor) -> Tensor:
        """Per-sample outputs (shapes in the class docstring)."""
        h = F.silu(self.fc2(F.silu(self.fc1(values))))
        return self.fc3(h)[..., 0]
