"""SO(2) linear layers: the eSCN reduction of an SO(3) convolution.

In an edge frame (edge along the polar axis) a rotation-equivariant linear map between
degree-l coefficients can only mix coefficients of the same order ``|m|``, and for ``m > 0``
it acts on the pair ``(+m, -m)`` as a complex multiplication (eSCN; EquiformerV2 App. A.3):

    y_{+m} = W_r x_{+m} - W_i x_{-m},     y_{-m} = W_r x_{-m} + W_i x_{+m}.

Here ``x_{+-m}`` stacks every degree ``l >= m`` and channel, so one dense matrix per order
mixes degrees and channels at once. ``m = 0`` is an ordinary linear layer with bias. The map
commutes with any roll about the edge, which is what makes messages equivariant.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from equicat.so3.layout import CoefficientLayout

__all__ = ["SO2Linear"]


class SO2Linear(nn.Module):
    """Per-order linear map on m-major edge-frame coefficients.

    Args:
        layout: Coefficients in and out (same ``lmax``, ``mmax``).
        in_channels: Channels per coefficient in.
        out_channels: Channels per coefficient out.
        extra_m0_channels: Extra invariant outputs computed from the ``m = 0`` block (e.g.
            attention logits and gates); returned separately.

    Shapes:
        ``forward(x [E, n, C_in], radial [E, R] or None) -> (y [E, n, C_out],
        extra [E, extra_m0_channels])``, ``R = sum_m size_m * C_in`` when given: an edge-wise
        factor multiplied into the input of each order (the radial modulation of eSCN).
    """

    def __init__(
        self,
        layout: CoefficientLayout,
        in_channels: int,
        out_channels: int,
        extra_m0_channels: int = 0,
    ) -> None:
        super().__init__()
        self.layout = layout
        self.in_channels, self.out_channels = in_channels, out_channels
        self.extra_m0_channels = extra_m0_channels
        sizes = layout.m_sizes
        self.fc_m0 = nn.Linear(sizes[0] * in_channels, sizes[0] * out_channels + extra_m0_channels)
        self.fc_m = nn.ModuleList(
            nn.Linear(n * in_channels, 2 * n * out_channels, bias=False) for n in sizes[1:]
        )

    @property
    def radial_size(self) -> int:
        """Width of the radial modulation this layer expects (``sum_m size_m * C_in``)."""
        return sum(self.layout.m_sizes) * self.in_channels

    def extra_repr(self) -> str:
        """What this module maps (shown in ``print(model)``)."""
        lay = self.layout
        return (
            f"lmax={lay.lmax}, mmax={lay.mmax}, in={self.in_channels}, out={self.out_channels}, "
            f"extra_m0={self.extra_m0_channels}"
        )

    def forward(self, x: Tensor, radial: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Apply the per-order maps; see the class docstring for shapes."""
        e = x.shape[0]
        c_in, c_out = self.in_channels, self.out_channels
        sizes = self.layout.m_sizes
        # m = 0: [E, L+1, C_in] -> [E, (L+1) C_in]
        x0 = x[:, : sizes[0]].reshape(e, sizes[0] * c_in)
        if radial is not None:
            x0 = x0 * radial[:, : sizes[0] * c_in]
        y0 = self.fc_m0(x0)
        extra, y0 = y0.split([self.extra_m0_channels, sizes[0] * c_out], dim=1)
        outs = [y0.reshape(e, sizes[0], c_out)]
        start, r_start = sizes[0], sizes[0] * c_in
        for n, fc in zip(sizes[1:], self.fc_m, strict=True):
            # [E, 2n, C_in] -> [E, 2 n C_in]: the +m block then the -m block
            xm = x[:, start : start + 2 * n].reshape(e, 2 * n * c_in)
            if radial is not None:
                r = radial[:, r_start : r_start + n * c_in]
                xm = xm * torch.cat((r, r), dim=1)
            # complex multiply as one real GEMM: [y+; y-] = [[Wr, -Wi], [Wi, Wr]] [x+; x-]
            w_r, w_i = fc.weight.split(n * c_out, dim=0)  # each [n C_out, n C_in]
            block = torch.cat((torch.cat((w_r, -w_i), 1), torch.cat((w_i, w_r), 1)), 0)
            outs.append((xm @ block.T).reshape(e, 2 * n, c_out))
            start += 2 * n
            r_start += n * c_in
        return torch.cat(outs, dim=1), extra
