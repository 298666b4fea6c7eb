"""Initial adsorbate placements on a slab, the AdsorbML way: heuristic sites plus random ones.

* **Heuristic**: every symmetry-distinct on-top, bridge and hollow site
  (:func:`~equicat.adsorbml.surface.find_sites`), ``heuristic_per_site`` times each. The
  adsorbate is turned so that it points away from the surface (the centroid of its atoms
  straight above the centroid of its binding atoms), tilted by a random angle of up to
  ``tilt_deg`` about a random horizontal axis, and spun by a random angle about z.
* **Random**: ``num_random`` sites drawn uniformly over the surface (area-weighted Delaunay
  triangles of the exposed atoms), each with a uniformly random orientation in SO(3).

In both, the binding atom (the centroid of the binding atoms when there are several) sits
straight above the site, and the adsorbate is put at the lowest height at which every
adsorbate-slab pair, over all in-plane periodic images, is at least the sum of their covalent
radii plus ``gap`` apart. Adsorbate atoms get tag 2; the slab keeps its tags and constraints.
Everything is drawn from ``numpy.random.default_rng(seed)``: same inputs, same placements.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols, covalent_radii

from equicat.adsorbml.surface import IMAGES, find_sites, surface_mesh

__all__ = [
    "AdsorbateSpec",
    "PlacementConfig",
    "adsorbate_by_name",
    "datagen_placer",
    "place",
    "placements",
    "random_rotation",
]


@dataclass(frozen=True)
class AdsorbateSpec:
    """An adsorbate in its gas-phase geometry and the atoms that bind to the surface.

    Attributes:
        name: A label (an OC20 name such as ``"*OH"`` for the shipped set).
        atoms: The molecule (positions in Å; cell and pbc ignored).
        binding_indices: Indices (into ``atoms``) of the atoms that bind.
    """

    name: str
    atoms: Atoms
    binding_indices: tuple[int, ...]

    def __post_init__(self) -> None:
        bad = [i for i in self.binding_indices if not 0 <= i < len(self.atoms)]
        if not self.binding_indices or bad:
            raise ValueError(
                f"adsorbate {self.name!r} has {len(self.atoms)} atoms; binding indices "
                f"{list(self.binding_indices)} must be non-empty and within range"
            )


def adsorbate_by_name(name: str) -> AdsorbateSpec:
    """The OC20 adsorbate called ``name`` (e.g. ``"*CO"``) from the shipped set."""
    from equicat.data.oc_emt import load_adsorbates

    pool = load_adsorbates(frozenset(chemical_symbols))
    for ads in pool:
        if ads.name == name:
            atoms = Atoms(ads.symbols, positions=np.asarray(ads.positions, dtype=float))
            return AdsorbateSpec(ads.name, atoms, tuple(ads.binding_indices))
    raise ValueError(
        f"no OC20 adsorbate named {name!r}; names look like '*OH', '*CO', '*OCHCH3' "
        f"(there are {len(pool)}, e.g. {', '.join(a.name for a in pool[:8])})"
    )


@dataclass(frozen=True)
class PlacementConfig:
    """How placements are drawn.

    Attributes:
        heuristic_per_site: Placements per symmetry-distinct site (each with its own spin).
        num_random: Random-site placements.
        tilt_deg: Largest tilt of heuristic placements, degrees.
        gap: Å added to the covalent-radius sum for the closest allowed approach.
        seed: Seed of the random generator.
    """

    heuristic_per_site: int = 1
    num_random: int = 8
    tilt_deg: float = 15.0
    gap: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.heuristic_per_site < 0 or self.num_random < 0 or self.gap < 0:
            raise ValueError("heuristic_per_site, num_random and gap must be >= 0")


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """[3, 3] rotation drawn uniformly from SO(3) (QR of a Gaussian matrix, sign-fixed)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    """[3, 3] rotation by ``angle`` rad about unit ``axis`` (Rodrigues)."""
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * k @ k


def _upright(pos: np.ndarray) -> np.ndarray:
    """Rotate [n, 3] positions (binding centroid at 0) so their centroid lies along +z."""
    up = pos.mean(0)
    norm = np.linalg.norm(up)
    if norm < 1e-6:
        return pos
    up = up / norm
    axis = np.cross(up, [0.0, 0.0, 1.0])
    s = np.linalg.norm(axis)
    if s < 1e-9:
        return pos if up[2] > 0 else pos * np.array([1.0, -1.0, -1.0])
    return pos @ _axis_angle(axis / s, float(np.arctan2(s, up[2]))).T


def _heuristic_orientation(pos: np.ndarray, rng: np.random.Generator, tilt: float) -> np.ndarray:
    pos = _upright(pos)
    phi = rng.uniform(0.0, 2.0 * np.pi)
    tilt_axis = np.array([np.cos(phi), np.sin(phi), 0.0])
    pos = pos @ _axis_angle(tilt_axis, rng.uniform(0.0, np.radians(tilt))).T
    return pos @ _axis_angle(np.array([0.0, 0.0, 1.0]), rng.uniform(0.0, 2.0 * np.pi)).T


def _lift(slab: Atoms, ads_pos: np.ndarray, ads_numbers: np.ndarray, gap: float) -> float:
    """Å, the smallest z-shift of ``ads_pos`` that keeps every pair >= r_i + r_j + gap apart.

    For a pair at in-plane distance h (any in-plane periodic image) and allowed distance R,
    the vertical separation must be at least sqrt(R^2 - h^2) when h < R.
    """
    ab = slab.cell.array[:2, :2]
    radii_s = covalent_radii[slab.numbers]  # [S]
    radii_a = covalent_radii[ads_numbers]  # [A]
    big_r = radii_a[:, None] + radii_s[None, :] + gap  # [A, S] Å
    delta = ads_pos[:, None, :2] - slab.positions[None, :, :2]  # [A, S, 2]
    frac = np.linalg.solve(ab.T, delta.reshape(-1, 2).T).T.reshape(delta.shape)
    delta = (frac - np.round(frac)) @ ab  # [A, S, 2] wrapped
    shift = -np.inf
    for img in IMAGES @ ab:  # [2] Å
        h = np.linalg.norm(delta + img, axis=-1)  # [A, S]
        need = np.sqrt(np.clip(big_r**2 - h**2, 0.0, None))
        close = h < big_r
        if close.any():
            dz = slab.positions[None, :, 2] + need - ads_pos[:, None, 2]  # [A, S]
            shift = max(shift, float(dz[close].max()))
    if not np.isfinite(shift):  # nothing within reach laterally: sit on the top atom height
        shift = float(slab.positions[:, 2].max() - ads_pos[:, 2].min())
    return shift


def place(
    slab: Atoms,
    adsorbate: AdsorbateSpec,
    site: np.ndarray,
    rotation: np.ndarray | None,
    rng: np.random.Generator,
    *,
    tilt_deg: float = 15.0,
    gap: float = 0.1,
) -> Atoms:
    """Slab + adsorbate with its binding centroid straight above ``site`` ([3] Å).

    ``rotation`` ([3, 3]) orients the gas-phase molecule about its binding centroid; ``None``
    gives a heuristic orientation (upright, random tilt up to ``tilt_deg``, random spin).
    """
    pos = adsorbate.atoms.positions - adsorbate.atoms.positions[
        list(adsorbate.binding_indices)
    ].mean(0)
    if rotation is None:
        pos = _heuristic_orientation(pos, rng, tilt_deg)
    else:
        pos = pos @ rotation.T
    pos = pos + np.array([site[0], site[1], 0.0])
    pos[:, 2] += _lift(slab, pos, adsorbate.atoms.numbers, gap)
    ads = Atoms(adsorbate.atoms.numbers, positions=pos, tags=[2] * len(pos))
    atoms = slab.copy()
    atoms.info.pop("adsorbate_info", None)  # ase.build's site table (not serialisable)
    atoms += ads
    top = atoms.positions[:, 2].max()
    if atoms.cell[2, 2] < top + 6.0:  # keep vacuum above the adsorbate
        cell = atoms.cell.array.copy()
        cell[2, 2] = top + 6.0
        atoms.set_cell(cell)
    return atoms


def placements(
    slab: Atoms, adsorbate: AdsorbateSpec, config: PlacementConfig = PlacementConfig()
) -> list[Atoms]:
    """Heuristic then random placements (see the module docstring), deterministic per seed.

    Each structure's ``info`` holds ``placement`` (its index), ``placement_kind``
    (``"heuristic"`` or ``"random"``), ``site_kind`` (``ontop``/``bridge``/``hollow`` or
    ``random``), ``site`` ([3] Å) and ``adsorbate`` (the name).
    """
    rng = np.random.default_rng(config.seed)
    out: list[Atoms] = []
    for site in find_sites(slab):
        for _ in range(config.heuristic_per_site):
            atoms = place(slab, adsorbate, np.asarray(site.position), None, rng,
                          tilt_deg=config.tilt_deg, gap=config.gap)  # fmt: skip
            _label(atoms, len(out), "heuristic", site.kind, site.position, adsorbate.name)
            out.append(atoms)
    mesh = surface_mesh(slab)
    for _ in range(config.num_random):
        point = mesh.sample(rng)
        atoms = place(slab, adsorbate, point, random_rotation(rng), rng, gap=config.gap)
        _label(atoms, len(out), "random", "random", point, adsorbate.name)
        out.append(atoms)
    return out


def datagen_placer(
    random_share: float = 0.5, tilt_deg: float = 15.0, gap: float = 0.1
) -> Callable[[Atoms, Any, np.random.Generator], Atoms]:
    """One AdsorbML placement per data-set system, for ``equicat.data.oc_emt``'s ``placer``.

    The returned function takes a slab, an OC-EMT adsorbate (``equicat.data.oc_emt.Adsorbate``)
    and the system's generator; with probability ``random_share`` it places the adsorbate at a
    random surface point in a random orientation, else on a random one of the
    symmetry-distinct heuristic sites in the heuristic orientation (the two kinds of
    :func:`placements`). ``info["site"]`` names the site kind (``"random"`` for random ones).
    """
    if not 0.0 <= random_share <= 1.0:
        raise ValueError(f"random_share must be in [0, 1], got {random_share}")

    def placer(slab: Atoms, adsorbate: Any, rng: np.random.Generator) -> Atoms:
        spec = AdsorbateSpec(
            adsorbate.name,
            Atoms(adsorbate.symbols, positions=np.asarray(adsorbate.positions, dtype=float)),
            tuple(adsorbate.binding_indices),
        )
        if rng.random() < random_share:
            point = surface_mesh(slab).sample(rng)
            atoms = place(slab, spec, point, random_rotation(rng), rng, gap=gap)
            atoms.info["site"] = "random"
        else:
            sites = find_sites(slab)
            site = sites[rng.integers(len(sites))]
            atoms = place(slab, spec, np.asarray(site.position), None, rng,
                          tilt_deg=tilt_deg, gap=gap)  # fmt: skip
            atoms.info["site"] = site.kind
        return atoms

    return placer


def _label(atoms: Atoms, k: int, kind: str, site_kind: str, site: Sequence, name: str) -> None:
    atoms.info.update(
        placement=k, placement_kind=kind, site_kind=site_kind,
        site=np.asarray(site, dtype=float), adsorbate=name,
    )  # fmt: skip
