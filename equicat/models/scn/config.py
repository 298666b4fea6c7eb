"""Typed configuration of SCN."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["SCNConfig"]


@dataclass(frozen=True)
class SCNConfig:
    """Hyper-parameters of :class:`~equicat.models.scn.SCN` (Zitnick et al., 2022).

    The defaults make a small model (the reference harness's ``scn-small``: ``lmax=4``,
    ``m in [-1, 1]`` messages with 4 taps). The paper's OC20 model is ``num_layers=16,
    lmax=6, mmax=1, sphere_channels=128, hidden_channels=1024, edge_channels=128,
    cutoff=8.0``, neighbour resolutions 12 / 40.

    Attributes:
        num_layers: Message-passing layers ``K``.
        lmax: Largest degree ``L`` of the spherical channels.
        mmax: Largest order used by the message network ``F_e``: 0 (``m = 0``, strictly
            equivariant messages) or 1 (``m in [-1, 1]``).
        num_taps: Rolls about the edge axis at which ``F_e`` is evaluated and averaged
            (eqs. 6-9): 1, or 4 for ``mmax = 1`` (``phi = 0, pi/2, pi, 3 pi/2``).
        sphere_channels: Channels ``C`` per coefficient of the node embeddings.
        hidden_channels: Width ``H`` of the message network.
        edge_channels: Width ``E`` of the atom-type and distance edge embedding.
        num_distance_basis: Gaussians on ``[0, cutoff]`` (the reference: one per 0.02 Å).
        distance_basis_width: Gaussian sigma in units of the centre spacing.
        cutoff: Neighbour cutoff radius, Å.
        max_neighbors: Neighbours kept per atom (nearest first); ``None`` keeps all.
        near_neighbors: ``None`` for one resolution; else the ``near_neighbors`` nearest
            neighbours of each atom use ``(lmax, hidden_channels)`` and the others
            ``(max(lmax - 2, 4), hidden_channels // 4)`` (App. B.1: 12).
        max_num_elements: Embedding table size (atomic numbers ``< max_num_elements``).
        num_sphere_samples: Fibonacci points integrating the energy and force blocks.
        point_density_width: ``None``: evenly weighted points. A width (the published
            implementation: 0.15, measured) weights each point by Gaussian counting of its
            neighbours (App. B.2), see :class:`~equicat.models.scn.heads.SphereOutputs`.
        first_layer_residual: Add the first layer's update to the initial embedding
            (eq. 10 as written). The published implementation replaces the embedding by the
            first layer's output instead (``False``); later layers always add.
        energy_mean: Added to each system's (scaled) energy, eV.
        energy_std: Scale of the network's energy output, eV.
        force_std: Scale of the direct-force output, eV/Å.
        forces: ``"direct"`` (the force block, eq. 12) or ``"conservative"`` (-dE/dr and
            stress by strain derivative).
        aggregation: ``"grid"``: the non-linear aggregation of eq. 10 (a 1x1 CNN on the
            sphere grid). ``"sum"``: the paper's "No 1x1 conv" ablation (Tables 1 and 4),
            where a layer's update is the summed messages themselves, with no grid
            network (later layers add it to the embedding; the first replaces the
            embedding unless ``first_layer_residual``, so with ``"sum"`` an atom without
            neighbours ends with a zero embedding: set ``first_layer_residual=True`` for
            isolated atoms).
        num_bands: Resolutions of the embedding and the summed messages that the grid
            aggregation sees (section 3.2): 1 (degree ``L``) or 2 (degrees ``L`` and
            ``L - 1``, the 2-band model of Table 1: ``4C`` channels on the grid). Not
            checked against the reference, which this repository's harness cannot build
            with two bands.
    """

    num_layers: int = 2
    lmax: int = 4
    mmax: int = 1
    num_taps: int = 4
    sphere_channels: int = 32
    hidden_channels: int = 64
    edge_channels: int = 64
    num_distance_basis: int = 300
    distance_basis_width: float = 1.0
    cutoff: float = 6.0
    max_neighbors: int | None = 20
    near_neighbors: int | None = None
    max_num_elements: int = 90
    num_sphere_samples: int = 128
    point_density_width: float | None = 0.15
    first_layer_residual: bool = False
    energy_mean: float = 0.0
    energy_std: float = 1.0
    force_std: float = 1.0
    forces: Literal["direct", "conservative"] = "direct"
    aggregation: Literal["grid", "sum"] = "grid"
    num_bands: int = 1

    def __post_init__(self) -> None:
        if self.mmax not in (0, 1) or self.mmax > self.lmax:
            raise ValueError(f"mmax must be 0 or 1 (and <= lmax), got mmax={self.mmax}")
        if self.num_taps < 1 or (self.mmax == 0 and self.num_taps != 1):
            raise ValueError(
                f"num_taps must be >= 1 (and 1 for mmax=0), got num_taps={self.num_taps}"
            )
        if self.forces not in ("direct", "conservative"):
            raise ValueError(f"forces must be 'direct' or 'conservative', got {self.forces!r}")
        if self.aggregation not in ("grid", "sum"):
            raise ValueError(f"aggregation must be 'grid' or 'sum', got {self.aggregation!r}")
        if self.num_bands not in (1, 2) or (self.num_bands == 2 and self.lmax < 1):
            raise ValueError(f"num_bands must be 1 or 2 (2 needs lmax >= 1), got {self.num_bands}")
        if self.num_bands == 2 and self.aggregation != "grid":
            raise ValueError("num_bands=2 feeds the grid aggregation; it needs aggregation='grid'")
        if self.cutoff <= 0:
            raise ValueError(f"cutoff must be positive, got {self.cutoff}")
        if self.near_neighbors is not None and self.near_neighbors < 1:
            raise ValueError(f"near_neighbors must be None or >= 1, got {self.near_neighbors}")
        if self.near_neighbors is not None and self.hidden_channels < 4:
            raise ValueError("near/far resolutions need hidden_channels >= 4")

    @property
    def far_lmax(self) -> int:
        """Degree of the far-neighbour messages (App. B.1: ``L - 2``, at least 4)."""
        return min(self.lmax, max(self.lmax - 2, 4))

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (stored in checkpoints)."""
        return asdict(self)
