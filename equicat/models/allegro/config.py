"""Typed configuration of Allegro."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["AllegroConfig"]


@dataclass(frozen=True)
class AllegroConfig:
    """Hyper-parameters of :class:`~equicat.models.allegro.Allegro`.

    The defaults make a small model for tests and quick training. The OC20 study of Allegro
    (Lombardo et al., App. E) used ``num_layers=3, cutoff=6.0, num_bessel=8,
    envelope_exponent=6, two_body_hidden=(64, 128, 256, 512), latent_hidden=(512,),
    edge_energy_hidden=(128,)`` with ``lmax`` 1 to 3.

    Attributes:
        num_layers: Allegro layers (tensor products); the receptive field stays one cutoff.
        lmax: Largest degree of the tensor track; it holds every ``l <= lmax`` with both
            parities (the spherical harmonics of the edge carry parity ``(-1)^l``).
        num_channels: Channels ``n`` of every irrep of the tensor track.
        two_body_hidden: Widths of the two-body MLP; its last width is the scalar-track size.
        latent_hidden: Hidden widths of the latent MLP (output width = scalar-track size).
        edge_energy_hidden: Hidden widths of the edge-energy MLP.
        num_bessel: Bessel radial functions on ``[0, cutoff]``.
        bessel_trainable: Learn the Bessel frequencies (as in the paper).
        envelope_exponent: ``p`` of the polynomial cutoff envelope.
        cutoff: Neighbour cutoff radius, Å (strict: the model is exactly local).
        max_neighbors: Neighbours kept per atom (nearest first); ``None`` keeps all (needed
            for energy conservation and exact locality).
        max_num_elements: Species table size (atomic numbers ``< max_num_elements``).
        avg_degree: Mean neighbours per atom (a dataset statistic): environment sums are
            divided by ``sqrt(avg_degree)`` and edge-energy sums by ``avg_degree``.
        energy_mean: Added to each system's energy, eV.
        energy_std: Scale of the per-atom network energy, eV.
        force_std: Unused (forces are always ``-dE/dr``); kept so the trainer can fit it.
        element_energies: Reference energy of each element, eV, indexed by atomic number
            (missing entries count as 0), added to each atom's energy.
    """

    num_layers: int = 2
    lmax: int = 2
    num_channels: int = 8
    two_body_hidden: tuple[int, ...] = (32, 32)
    latent_hidden: tuple[int, ...] = (32,)
    edge_energy_hidden: tuple[int, ...] = (16,)
    num_bessel: int = 8
    bessel_trainable: bool = True
    envelope_exponent: int = 6
    cutoff: float = 5.0
    max_neighbors: int | None = None
    max_num_elements: int = 90
    avg_degree: float = 10.0
    energy_mean: float = 0.0
    energy_std: float = 1.0
    force_std: float = 1.0
    element_energies: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        # stored configs hold lists; keep the frozen dataclass hashable and immutable
        for name in ("two_body_hidden", "latent_hidden", "edge_energy_hidden"):
            object.__setattr__(self, name, tuple(int(w) for w in getattr(self, name)))
        object.__setattr__(self, "element_energies", tuple(float(e) for e in self.element_energies))
        if len(self.element_energies) > self.max_num_elements:
            raise ValueError(
                f"element_energies has {len(self.element_energies)} entries but the model "
                f"knows only atomic numbers below {self.max_num_elements}"
            )
        if self.num_layers < 1 or self.lmax < 0 or self.num_channels < 1:
            raise ValueError("Allegro needs num_layers >= 1, lmax >= 0 and num_channels >= 1")
        if not self.two_body_hidden:
            raise ValueError("two_body_hidden needs at least one width (the scalar-track size)")
        if self.cutoff <= 0 or self.avg_degree <= 0:
            raise ValueError(f"cutoff and avg_degree must be positive, got {self.cutoff}, "
                             f"{self.avg_degree}")  # fmt: skip

    @property
    def latent_dim(self) -> int:
        """Width of the scalar track (the last two-body width)."""
        return self.two_body_hidden[-1]

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (stored in checkpoints)."""
        out = asdict(self)
        for name in ("two_body_hidden", "latent_hidden", "edge_energy_hidden",
                     "element_energies"):  # fmt: skip
            out[name] = list(out[name])
        return out
