"""The L-set equivariant GCN (Lee, Galkin, Miret, "Deconstructing equivariant representations")."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from e3nn import o3
from torch import Tensor, nn

from equicat.models.gcn.config import GCNConfig
from equicat.models.gcn.conv import Convolution, node_irreps
from equicat.models.heads import conservative_outputs
from equicat.so3 import BesselBasis, DirectHarmonics, PolynomialEnvelope
from equicat.so3.constants import ConstantCache

if TYPE_CHECKING:
    from equicat.data import AtomicGraph

__all__ = ["LSetGCN"]


class LSetGCN(nn.Module):
    """Equivariant GCN whose features and edge harmonics span any degree set ``L``.

    Atoms enter as scalar embeddings; edges as Bessel distances (with a polynomial envelope)
    and direct spherical harmonics ``Y_L(r_ij)`` (:class:`~equicat.so3.DirectHarmonics`, each
    degree without recursion); ``num_layers`` :class:`Convolution` blocks map to
    ``h x (l, (-1)^l)`` for ``l`` in ``L``; a scalar readout of the ``l = 0`` block gives
    atomic energies ``E_i = energy_std * MLP(h_i^0) + e[Z_i]`` and
    ``E = sum_i E_i + energy_mean``. Forces are ``-dE/dr`` (and stress by strain).

    Args:
        config: Hyper-parameters.
    """

    def __init__(self, config: GCNConfig) -> None:
        super().__init__()
        self.config = cfg = config
        self.embedding = nn.Embedding(cfg.max_num_elements, cfg.atom_embedding_dim)
        self.harmonics = DirectHarmonics(cfg.degrees)
        self.bessel = BesselBasis(cfg.cutoff, cfg.num_bessel)
        self.envelope = PolynomialEnvelope(cfg.cutoff, cfg.envelope_exponent)
        irreps_sh = o3.Irreps([(1, (l_, (-1) ** l_)) for l_ in cfg.degrees])
        hidden = node_irreps(cfg.hidden_channels, cfg.degrees)
        irreps = [o3.Irreps(f"{cfg.atom_embedding_dim}x0e")] + [hidden] * cfg.num_layers
        self.layers = nn.ModuleList(
            Convolution(
                irreps[k],
                irreps_sh,
                irreps[k + 1],
                cfg.num_bessel,
                cfg.radial_hidden,
                cfg.avg_degree,
            )  # fmt: skip
            for k in range(cfg.num_layers)
        )
        self.readout = nn.Sequential(
            nn.Linear(cfg.hidden_channels, cfg.readout_hidden), nn.SiLU(),
            nn.Linear(cfg.readout_hidden, 1),
        )  # fmt: skip
        table = torch.zeros(cfg.max_num_elements, dtype=torch.float64)
        table[: len(cfg.element_energies)] = torch.tensor(cfg.element_energies, dtype=torch.float64)
        self.const = ConstantCache(element_energies=table)

    @property
    def cutoff(self) -> float:
        """Neighbour cutoff, Å."""
        return self.config.cutoff

    @property
    def max_neighbors(self) -> int | None:
        """Neighbours kept per atom."""
        return self.config.max_neighbors

    @property
    def conservative(self) -> bool:
        """Forces are ``-dE/dr`` (stress available)."""
        return True

    def extra_repr(self) -> str:
        """What this module maps (shown in ``print(model)``)."""
        c = self.config
        return (f"degrees={list(c.degrees)}, channels={c.hidden_channels}, "
                f"layers={c.num_layers}, cutoff={c.cutoff} Å")  # fmt: skip

    def _features(self, graph: AtomicGraph, vec: Tensor) -> Tensor:
        """Final node features ``[N, dim(h x L)]`` (e3nn layout, degrees ascending)."""
        source, target = graph.edge_index
        dist = vec.norm(dim=-1)  # [E] Å
        sh = self.harmonics(vec)  # [E, sum(2l + 1)]
        basis, u = self.bessel(dist), self.envelope(dist)  # [E, K], [E]
        h = self.embedding(graph.atomic_numbers)  # [N, embedding] scalars
        for layer in self.layers:
            h = layer(h, sh, basis, u, source, target)
        return h

    def node_embeddings(self, graph: AtomicGraph) -> dict[int, Tensor]:
        """Final node embeddings per degree, for analysis.

        Returns:
            ``{l: [N, hidden_channels, 2l + 1]}`` for each ``l`` in ``degrees``, detached.
        """
        with torch.no_grad():
            h = self._features(graph, graph.edge_vectors())
        out, start, c = {}, 0, self.config.hidden_channels
        for l_ in self.config.degrees:
            width = c * (2 * l_ + 1)
            out[l_] = h[:, start : start + width].reshape(-1, c, 2 * l_ + 1)  # mul-major
            start += width
        return out

    def atomic_energies(self, graph: AtomicGraph, vec: Tensor | None = None) -> Tensor:
        """Per-atom energies ``[N]`` eV (``energy_mean`` not included)."""
        vec = graph.edge_vectors() if vec is None else vec
        h = self._features(graph, vec)
        scalars = h[:, : self.config.hidden_channels]  # [N, h], the 0e block comes first
        e_atom = self.readout(scalars)[:, 0] * self.config.energy_std
        if self.config.element_energies:
            e_atom = e_atom + self.const.get("element_energies", e_atom)[graph.atomic_numbers]
        return e_atom

    def _energy(self, graph: AtomicGraph, vec: Tensor) -> Tensor:
        e_atom = self.atomic_energies(graph, vec)
        energy = torch.zeros(graph.num_systems, dtype=e_atom.dtype, device=e_atom.device)
        return energy.index_add_(0, graph.batch, e_atom) + self.config.energy_mean  # [B]

    def forward(self, graph: AtomicGraph, compute_stress: bool = False) -> dict[str, Tensor]:
        """Energies, forces ``-dE/dr`` and (optionally) stress.

        Returns:
            ``{"energy": [B], "forces": [N, 3], "stress"?: [B, 3, 3]}`` in eV, eV/Å, eV/Å^3.
        """
        z = graph.atomic_numbers
        bad = (z <= 0) | (z >= self.config.max_num_elements)
        if bool(bad.any()):
            idx = int(bad.nonzero()[0, 0])
            raise ValueError(f"atom {idx} has atomic number {int(z[idx])}, outside this "
                             f"model's range 1..{self.config.max_num_elements - 1}")  # fmt: skip
        return conservative_outputs(
            lambda vec: self._energy(graph, vec), graph, compute_stress, self.training
        )
