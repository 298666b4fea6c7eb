"""SCN (Zitnick et al., 2022, "Spherical Channels for Modeling Atomic Interactions")."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from equicat.models.heads import conservative_outputs
from equicat.models.scn.block import EdgeContext, InteractionBlock
from equicat.models.scn.config import SCNConfig
from equicat.models.scn.heads import SphereOutputs
from equicat.so3 import GaussianBasis, WignerD

if TYPE_CHECKING:
    from equicat.data import AtomicGraph

__all__ = ["SCN", "neighbor_ranks"]


def neighbor_ranks(distance: Tensor, target: Tensor, num_atoms: int) -> Tensor:
    """``[E]`` rank of each edge among its target's edges by distance (0 = nearest)."""
    order = torch.sort(distance, stable=True).indices
    order = order[torch.sort(target[order], stable=True).indices]  # by target, then distance
    counts = torch.bincount(target, minlength=num_atoms)
    start = torch.cumsum(counts, 0) - counts  # [N] first sorted position of each target
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(len(order), device=order.device) - start[target[order]]
    return ranks


class SCN(nn.Module):
    """Spherical Channel Network on an :class:`~equicat.data.AtomicGraph`.

    Node embeddings are ``C`` spherical functions per atom (coefficients
    ``[N, (L+1)^2, C]``, l-major), initialised from the atomic number in ``l = 0``. Each
    layer computes edge-frame messages (:class:`~equicat.models.scn.message.MessageBlock`),
    sums them at each target and aggregates them non-linearly on a sphere grid
    (:class:`~equicat.models.scn.block.GridConv`). Energy and forces are integrated over
    Fibonacci points (:class:`~equicat.models.scn.heads.SphereOutputs`).

    ``forward(graph)`` returns ``{"energy": [B] eV, "forces": [N, 3] eV/Å}`` and, in
    conservative mode with ``compute_stress=True``, ``"stress": [B, 3, 3]`` eV/Å^3.

    Edge frames are equicat's deterministic ones (:class:`~equicat.so3.WignerD`); the paper
    and the reference draw a random roll per edge and call, on which ``m in [-1, 1]`` messages
    depend (4 taps make them nearly roll-invariant).

    Args:
        config: Hyper-parameters.
    """

    def __init__(self, config: SCNConfig) -> None:
        super().__init__()
        self.config = cfg = config
        self.atom_embedding = nn.Embedding(cfg.max_num_elements, cfg.sphere_channels)
        self.distance_basis = GaussianBasis(
            0.0, cfg.cutoff, cfg.num_distance_basis, cfg.distance_basis_width
        )
        self.wigner = WignerD(cfg.lmax)
        self.blocks = nn.ModuleList(InteractionBlock(cfg) for _ in range(cfg.num_layers))
        self.outputs = SphereOutputs(
            cfg.lmax,
            cfg.sphere_channels,
            cfg.num_sphere_samples,
            cfg.forces == "direct",
            cfg.point_density_width,
        )

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
        """Whether forces are ``-dE/dr`` (and stress available)."""
        return self.config.forces == "conservative"

    def extra_repr(self) -> str:
        """What this module maps (shown in ``print(model)``)."""
        c = self.config
        return (
            f"lmax={c.lmax}, mmax={c.mmax}, taps={c.num_taps}, channels={c.sphere_channels}, "
            f"layers={c.num_layers}, cutoff={c.cutoff} Å, forces={c.forces}"
        )

    def _context(self, graph: AtomicGraph, vec: Tensor) -> EdgeContext:
        z = graph.atomic_numbers
        source, target = graph.edge_index
        dist = vec.norm(dim=-1)
        groups = None
        if self.config.near_neighbors is not None:
            with torch.no_grad():
                near = neighbor_ranks(dist, target, graph.num_atoms) < self.config.near_neighbors
            groups = [near.nonzero()[:, 0], (~near).nonzero()[:, 0]]
        return EdgeContext(
            source=source,
            target=target,
            z_src=z[source],
            z_tgt=z[target],
            basis=self.distance_basis(dist),
            wigner=self.wigner(vec),
            groups=groups,
            num_atoms=graph.num_atoms,
        )

    def _features(self, graph: AtomicGraph, vec: Tensor) -> Tensor:
        """Final node embeddings ``[N, (L+1)^2, C]``."""
        ctx = self._context(graph, vec)
        cfg = self.config
        x = vec.new_zeros(graph.num_atoms, (cfg.lmax + 1) ** 2, cfg.sphere_channels)
        x[:, 0] = self.atom_embedding(graph.atomic_numbers)
        for i, block in enumerate(self.blocks):
            update = block(x, ctx)
            x = update if i == 0 and not cfg.first_layer_residual else x + update
        return x

    def _energy(self, graph: AtomicGraph, vec: Tensor) -> tuple[Tensor, Tensor]:
        s = self.outputs.values(self._features(graph, vec))  # [N, P, C]
        per_atom = self.outputs.node_energy(s)  # [N]
        e = per_atom.new_zeros(graph.num_systems).index_add(0, graph.batch, per_atom)
        return e * self.config.energy_std + self.config.energy_mean, s

    def forward(self, graph: AtomicGraph, compute_stress: bool = False) -> dict[str, Tensor]:
        """Predict energies and forces (and stress, conservative mode only).

        Args:
            graph: Batch of systems with edges built for this model's cutoff.
            compute_stress: Return ``stress`` (conservative mode only).

        Returns:
            ``{"energy": [B], "forces": [N, 3], "stress"?: [B, 3, 3]}`` in eV, eV/Å, eV/Å^3.
        """
        self._check_elements(graph.atomic_numbers)
        if self.conservative:
            return conservative_outputs(
                lambda vec: self._energy(graph, vec)[0], graph, compute_stress, self.training
            )
        if compute_stress:
            raise ValueError(
                "stress needs a conservative model (forces='conservative'); this one predicts "
                "forces directly"
            )
        energy, s = self._energy(graph, graph.edge_vectors())
        forces = self.outputs.node_forces(s) * self.config.force_std
        return {"energy": energy, "forces": forces}

    def _check_elements(self, z: Tensor) -> None:
        bad = (z <= 0) | (z >= self.config.max_num_elements)
        if bool(bad.any()):
            idx = int(bad.nonzero()[0, 0])
            raise ValueError(
                f"atom {idx} has atomic number {int(z[idx])}, outside this model's range "
                f"1..{self.config.max_num_elements - 1}"
            )
