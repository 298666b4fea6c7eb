"""SCN message passing: edge embedding and the edge-frame message network (eqs. 2, 6-9)."""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from equicat.so3 import CoefficientLayout, WignerD
from equicat.so3.constants import ConstantCache

__all__ = ["EdgeEmbedding", "MessageBlock", "roll_matrices"]


class EdgeEmbedding(nn.Module):
    """Invariant edge features from the distance and both atomic numbers (Fig. 2a).

    ``e = SiLU(W2 SiLU(W1 g(|d|) + A_s[a_s] + A_t[a_t]))`` with ``g`` the Gaussian basis.

    Shapes: basis ``[E, G]``, atomic numbers ``[E]`` -> ``[E, edge_channels]``.
    """

    def __init__(self, basis_size: int, edge_channels: int, num_elements: int) -> None:
        super().__init__()
        self.distance_proj = nn.Linear(basis_size, edge_channels)
        self.source_embedding = nn.Embedding(num_elements, edge_channels)
        self.target_embedding = nn.Embedding(num_elements, edge_channels)
        self.edge_proj = nn.Linear(edge_channels, edge_channels)

    def forward(self, basis: Tensor, z_src: Tensor, z_tgt: Tensor) -> Tensor:
        """Embed edges (shapes in the class docstring)."""
        h = self.distance_proj(basis) + self.source_embedding(z_src) + self.target_embedding(z_tgt)
        return F.silu(self.edge_proj(F.silu(h)))


def roll_matrices(lmax: int, num_taps: int) -> Tensor:
    """``[T, n, n]`` float64 Wigner-D of rolls by ``phi_t = 2 pi t / T`` about the edge axis y."""
    return _roll_matrices(lmax, num_taps).clone()


@lru_cache(maxsize=16)
def _roll_matrices(lmax: int, num_taps: int) -> Tensor:
    phi = torch.arange(num_taps, dtype=torch.float64) * (2 * math.pi / num_taps)
    c, s, o, i = phi.cos(), phi.sin(), torch.zeros_like(phi), torch.ones_like(phi)
    rot = torch.stack((c, o, s, o, i, o, -s, o, c), dim=-1).view(-1, 3, 3)  # R_y(phi)
    return WignerD(lmax).of_rotations(rot)


class MessageBlock(nn.Module):
    """Edge-frame messages ``m_st = D^-1 F_e(D x_s, D x_t, |d|, a_s, a_t)`` for one resolution.

    ``F_e`` sees the coefficients with degree ``<= lmax`` and ``|m| <= mmax`` (``K`` of
    them, l-major) of both rotated embeddings, concatenated and flattened coefficient-major
    (``[2K, C] -> [2K C]``): ``h = SiLU(W_e e) * SiLU(W_x x)``, then two SiLU layers give
    ``[K, C]``. With ``T`` taps, ``F_e`` is evaluated on the rotated embeddings rolled by
    ``phi_t = 2 pi t / T`` about the edge axis and its outputs are rolled back and averaged,
    ``m~ = (1/T) sum_t P_t^-1 F_e(P_t D x_s, P_t D x_t, ...)`` (eqs. 6-9; for ``T = 4`` and
    ``m in [-1, 1]`` this is eqs. 7-9). The message is rotated back with ``D^T``.

    Args:
        lmax: Degree of this resolution.
        mmax: Largest order seen by ``F_e``.
        num_taps: ``T``.
        channels: ``C``.
        hidden_channels: ``H``.
        edge_channels: Width of the edge embedding.
    """

    def __init__(
        self,
        lmax: int,
        mmax: int,
        num_taps: int,
        channels: int,
        hidden_channels: int,
        edge_channels: int,
    ) -> None:
        super().__init__()
        self.lmax, self.mmax, self.num_taps, self.channels = lmax, mmax, num_taps, channels
        self.layout = CoefficientLayout(lmax, mmax)
        k = self.layout.size
        self.edge_to_hidden = nn.Linear(edge_channels, hidden_channels)
        self.pair_to_hidden = nn.Linear(2 * k * channels, hidden_channels)
        self.hidden = nn.Linear(hidden_channels, hidden_channels)
        self.out = nn.Linear(hidden_channels, k * channels)
        idx = torch.tensor(self.layout.l_major)
        rolls = roll_matrices(lmax, num_taps)[:, idx][:, :, idx]  # [T, K, K]
        self.register_buffer("rows", idx, persistent=False)
        self.const = ConstantCache(rolls=rolls)

    def extra_repr(self) -> str:
        """What this module maps (shown in ``print(model)``)."""
        return (
            f"lmax={self.lmax}, mmax={self.mmax}, taps={self.num_taps}, "
            f"coefficients={self.layout.size}, channels={self.channels}"
        )

    def forward(
        self, x: Tensor, edge: Tensor, wigner: Tensor, source: Tensor, target: Tensor
    ) -> Tensor:
        """Messages in the global frame.

        Args:
            x: ``[N, n, C]`` node embeddings (``n >= (lmax+1)^2``, l-major).
            edge: ``[E, edge_channels]`` edge embedding.
            wigner: ``[E, n', n']`` edge-frame Wigner-D (``n' >= (lmax+1)^2``).
            source: ``[E]`` source (neighbour) atoms.
            target: ``[E]`` target (centre) atoms.

        Returns:
            ``[E, (lmax+1)^2, C]`` messages.
        """
        n = (self.lmax + 1) ** 2
        rot = wigner[:, self.rows, :n]  # [E, K, n]
        x = x[:, :n]
        pair = torch.cat((rot @ x[source], rot @ x[target]), dim=1)  # [E, 2K, C]
        gate = F.silu(self.edge_to_hidden(edge))  # [E, H]
        rolls = self.const.get("rolls", x)
        acc = None
        for t in range(self.num_taps):
            # [K, K] roll on both halves: [E, 2K, C] -> [E, 2K C]
            rolled = (
                pair
                if t == 0
                else torch.cat(
                    (
                        rolls[t] @ pair[:, : self.layout.size],
                        rolls[t] @ pair[:, self.layout.size :],
                    ),
                    1,
                )
            )
            h = F.silu(self.pair_to_hidden(rolled.flatten(1))) * gate
            y = F.silu(self.out(F.silu(self.hidden(h)))).view(len(edge), -1, self.channels)
            y = y if t == 0 else rolls[t].T @ y  # roll back, [E, K, C]
            acc = y if acc is None else acc + y
        assert acc is not None
        if self.num_taps > 1:
            acc = acc / self.num_taps
        return rot.transpose(1, 2) @ acc  # [E, n, K] @ [E, K, C]
