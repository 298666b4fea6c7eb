"""Allegro (Musaelian et al., 2023): strictly local, edge-based, energy = sum of edge energies."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from equicat.models.allegro.config import AllegroConfig
from equicat.models.allegro.layers import AllegroLayer, channel_times_harmonics, mlp, scatter_sum
from equicat.models.heads import conservative_outputs
from equicat.so3 import BesselBasis, PolynomialEnvelope, spherical_harmonics
from equicat.so3.constants import ConstantCache

if TYPE_CHECKING:
    from equicat.data import AtomicGraph

__all__ = ["Allegro"]


class Allegro(nn.Module):
    """Allegro on an :class:`~equicat.data.AtomicGraph`.

    Features live on directed edges ``ij`` (``i`` the centre, ``r_ij = r_j - r_i``):

    - two-body scalars ``x_ij = u(r_ij) MLP(1HOT(Z_i) || 1HOT(Z_j) || B(r_ij))`` (the one-hot
      inputs enter through the first layer, written as two embedding tables);
    - tensor track ``V_ij = w(x_ij) Y(r_ij)``, channel- and degree-wise weights;
    - ``num_layers`` :class:`AllegroLayer` updates (tensor products with the environment of
      ``i`` only, so the receptive field is exactly the cutoff sphere of ``i``);
    - edge energies ``E_ij = sigma_{Z_i Z_j} u(r_ij) MLP(x_ij)`` and atomic energies
      ``E_i = energy_std * sum_j E_ij / avg_degree + e[Z_i]``; ``E = sum_i E_i + energy_mean``.

    Forces are ``-dE/dr`` and stress the strain derivative
    (:func:`~equicat.models.heads.conservative_outputs`), so MD conserves energy.

    Args:
        config: Hyper-parameters.
    """

    def __init__(self, config: AllegroConfig) -> None:
        super().__init__()
        self.config = cfg = config
        h0, d = cfg.two_body_hidden[0], cfg.latent_dim
        self.bessel = BesselBasis(cfg.cutoff, cfg.num_bessel, cfg.bessel_trainable)
        self.envelope = PolynomialEnvelope(cfg.cutoff, cfg.envelope_exponent)
        # first two-body layer: Linear(1HOT(Z_i) || 1HOT(Z_j) || B) as two tables + a Linear
        self.embed_center = nn.Embedding(cfg.max_num_elements, h0)
        self.embed_neighbor = nn.Embedding(cfg.max_num_elements, h0)
        self.radial = nn.Linear(cfg.num_bessel, h0)
        self.two_body = nn.Sequential(nn.SiLU(), mlp(cfg.two_body_hidden))
        self.tensor_weights = nn.Linear(d, cfg.num_channels * (cfg.lmax + 1), bias=False)
        self.layers = nn.ModuleList(
            AllegroLayer(cfg.lmax, cfg.num_channels, d, cfg.latent_hidden, cfg.avg_degree)
            for _ in range(cfg.num_layers)
        )
        self.edge_energy = mlp([d, *cfg.edge_energy_hidden, 1])
        self.pair_scale = nn.Parameter(torch.ones(cfg.max_num_elements, cfg.max_num_elements))
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
        """Forces are always ``-dE/dr`` (stress available)."""
        return True

    def extra_repr(self) -> str:
        """What this module maps (shown in ``print(model)``)."""
        c = self.config
        return (f"lmax={c.lmax}, channels={c.num_channels}, latent={c.latent_dim}, "
                f"layers={c.num_layers}, cutoff={c.cutoff} Å")  # fmt: skip

    def atomic_energies(self, graph: AtomicGraph, vec: Tensor | None = None) -> Tensor:
        """Per-atom energies ``E_i`` ``[N]`` eV (``energy_mean`` not included).

        Args:
            graph: The batch.
            vec: ``[E, 3]`` Å edge vectors (default: computed from the graph).
        """
        cfg = self.config
        vec = graph.edge_vectors() if vec is None else vec
        source, target = graph.edge_index
        z, n = graph.atomic_numbers, graph.num_atoms
        dist = vec.norm(dim=-1)  # [E] Å
        u = self.envelope(dist)  # [E]
        sh = spherical_harmonics(cfg.lmax, vec)  # [E, (lmax + 1)^2]
        h = self.embed_center(z[target]) + self.embed_neighbor(z[source])
        x = self.two_body(h + self.radial(self.bessel(dist))) * u[:, None]  # [E, D]
        w = self.tensor_weights(x).view(-1, cfg.num_channels, cfg.lmax + 1)  # [E, C, L+1]
        v = channel_times_harmonics(w, sh, cfg.lmax, both_parities=True)  # [E, dim]
        for layer in self.layers:
            x, v = layer(x, v, sh, u, target, n)
        e_edge = self.edge_energy(x)[:, 0] * u * self.pair_scale[z[target], z[source]]  # [E]
        e_atom = scatter_sum(e_edge, target, n) * (cfg.energy_std / cfg.avg_degree)  # [N]
        if cfg.element_energies:
            e_atom = e_atom + self.const.get("element_energies", e_atom)[z]
        return e_atom

    def _energy(self, graph: AtomicGraph, vec: Tensor) -> Tensor:
        e_atom = self.atomic_energies(graph, vec)
        energy = scatter_sum(e_atom, graph.batch, graph.num_systems)  # [B]
        return energy + self.config.energy_mean

    def forward(self, graph: AtomicGraph, compute_stress: bool = False) -> dict[str, Tensor]:
        """Energies, forces ``-dE/dr`` and (optionally) stress.

        Args:
            graph: Batch of systems with edges built for this model's cutoff.
            compute_stress: Also return ``stress`` (needs a cell on every system).

        Returns:
            ``{"energy": [B], "forces": [N, 3], "stress"?: [B, 3, 3]}`` in eV, eV/Å, eV/Å^3.
        """
        _check_elements(graph.atomic_numbers, self.config.max_num_elements)
        return conservative_outputs(
            lambda vec: self._energy(graph, vec), graph, compute_stress, self.training
        )


def _check_elements(z: Tensor, max_num_elements: int) -> None:
    bad = (z <= 0) | (z >= max_num_elements)
    if bool(bad.any()):
        idx = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"atom {idx} has atomic number {int(z[idx])}, outside this model's range "
            f"1..{max_num_elements - 1}"
        )
