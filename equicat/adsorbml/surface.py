"""Slabs with OC20 tags, and their adsorption sites from a periodic Delaunay triangulation.

OC20 tags: 0 = subsurface (held fixed), 1 = surface (free), 2 = adsorbate. Sites are found
on the *exposed* surface atoms: tag-1 atoms within ``top_depth`` Å of the highest one.

The exposed atoms' (x, y) positions, repeated over the 3x3 neighbouring in-plane images, are
triangulated (Delaunay); the triangles whose centroid lies in the home cell tile the surface
once. On-top sites are the atoms, bridge sites the midpoints of the triangle edges, hollow
sites the triangle centroids. Symmetry-equivalent sites are merged by a fingerprint: the
sorted minimum-image distances from a point 1 Å above the site to its nearest slab atoms.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.constraints import FixAtoms

__all__ = ["Site", "SurfaceMesh", "slab_from_bulk", "load_slab", "ensure_tags", "find_sites"]

IMAGES = np.array([(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)])  # [9, 2] in-plane shifts


@dataclass(frozen=True)
class Site:
    """One adsorption site.

    Attributes:
        kind: ``"ontop"``, ``"bridge"`` or ``"hollow"``.
        position: [3] Å, the site; z is the height of the highest atom that forms it.
    """

    kind: str
    position: tuple[float, float, float]


@dataclass(frozen=True)
class SurfaceMesh:
    """The triangulated exposed surface of a slab.

    Attributes:
        points: [P, 3] Å, exposed atom positions over the 3x3 in-plane images.
        triangles: [T, 3] indices into ``points``, triangles whose centroid is in the home cell.
        areas: [T] Å², in-plane triangle areas (they sum to the cell's in-plane area).
        centers: [T, 2] Å, in-plane circumcentres (the centroid where that falls outside).
        diagonal: [T, 3] bool, edge opposite vertex i joins two cocircular triangles (the
            diagonal of a square or rectangle, not a bridge).
    """

    points: np.ndarray
    triangles: np.ndarray
    areas: np.ndarray
    centers: np.ndarray
    diagonal: np.ndarray

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """[3] Å, a point drawn uniformly over the surface (triangle by area, then barycentric)."""
        t = rng.choice(len(self.triangles), p=self.areas / self.areas.sum())
        u, v = rng.random(2)
        if u + v > 1.0:
            u, v = 1.0 - u, 1.0 - v
        a, b, c = self.points[self.triangles[t]]
        point = a + u * (b - a) + v * (c - a)
        point[2] = self.points[self.triangles[t], 2].max()
        return point


def _check_cell(slab: Atoms) -> None:
    cell = slab.cell.array
    if abs(cell[0, 2]) > 1e-6 or abs(cell[1, 2]) > 1e-6 or np.linalg.norm(cell[:2]) < 1e-6:
        raise ValueError(
            "the slab's first two cell vectors must lie in the xy plane (surface normal along "
            "z); rotate the slab so that its surface faces +z"
        )


def ensure_tags(slab: Atoms, free_depth: float = 2.5) -> Atoms:
    """A copy of ``slab`` with OC20 tags, adding them when the slab has none.

    A slab that already has tag-1 atoms keeps its tags and constraints. Otherwise atoms within
    ``free_depth`` Å of the top get tag 1 and the rest tag 0 with a ``FixAtoms`` constraint.
    """
    _check_cell(slab)
    slab = slab.copy()
    slab.info.pop("adsorbate_info", None)  # ase.build's site table (not serialisable)
    tags = slab.get_tags()
    if np.any(tags == 2):
        raise ValueError(
            f"the slab has atoms tagged 2 (adsorbate): indices {np.flatnonzero(tags == 2)[:8]}; "
            "pass the clean slab"
        )
    if np.any(tags == 1):
        return slab
    z = slab.positions[:, 2]
    surface = z >= z.max() - free_depth
    slab.set_tags(surface.astype(int))
    slab.set_constraint(FixAtoms(indices=np.flatnonzero(~surface)))
    return slab


def slab_from_bulk(
    bulk: Atoms,
    miller: tuple[int, int, int],
    layers: int = 4,
    size: tuple[int, int] = (2, 2),
    free_layers: int = 2,
    vacuum: float = 8.0,
) -> Atoms:
    """A slab cut from ``bulk`` along ``miller`` with OC20 tags and fixed subsurface.

    Args:
        bulk: The bulk crystal (e.g. ``ase.build.bulk("Cu", "fcc", a=3.6)``).
        miller: Miller index of the surface.
        layers: Number of layers (``ase.build.surface`` layers).
        size: In-plane repeats.
        free_layers: Top layers tagged 1 and free; the rest tag 0 and fixed.
        vacuum: Å of vacuum on each side.
    """
    from ase.build import surface

    slab = surface(bulk, miller, layers, vacuum=vacuum, periodic=True)
    slab = slab.repeat((size[0], size[1], 1))
    z = np.round(slab.positions[:, 2], 2)
    levels = np.unique(z)[::-1]
    free = np.isin(z, levels[:free_layers])
    slab.set_tags(free.astype(int))
    slab.set_constraint(FixAtoms(indices=np.flatnonzero(~free)))
    return slab


def load_slab(path: str | os.PathLike) -> Atoms:
    """Read a slab file (any ASE format) and give it OC20 tags (see :func:`ensure_tags`)."""
    import ase.io

    try:
        slab = ase.io.read(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"slab file {str(path)!r} does not exist") from None
    except Exception as err:
        raise ValueError(f"cannot read slab file {str(path)!r}: {err}") from err
    return ensure_tags(slab)


def exposed(slab: Atoms, top_depth: float = 1.0) -> np.ndarray:
    """Indices of tag-1 atoms within ``top_depth`` Å of the highest tag-1 atom."""
    tags = slab.get_tags()
    surf = np.flatnonzero(tags == 1)
    if len(surf) == 0:
        raise ValueError("the slab has no surface atoms (tag 1); see ensure_tags")
    z = slab.positions[surf, 2]
    return surf[z >= z.max() - top_depth]


def surface_mesh(slab: Atoms, top_depth: float = 1.0) -> SurfaceMesh:
    """Triangulate the exposed surface periodically (see the module docstring)."""
    from scipy.spatial import Delaunay

    _check_cell(slab)
    pos = slab.positions[exposed(slab, top_depth)]
    ab = slab.cell.array[:2, :2]  # [2, 2] in-plane cell
    shifts = IMAGES @ ab  # [9, 2] Å
    points = np.concatenate([pos + np.append(s, 0.0) for s in shifts])  # [9 n, 3]
    delaunay = Delaunay(points[:, :2])
    tri = delaunay.simplices  # [T', 3]
    centers = _circumcenters(points[tri, :2])  # [T', 2]
    frac = np.linalg.solve(ab.T, points[tri, :2].mean(1).T).T  # [T', 2] centroid (a, b)
    home = np.all((frac >= -1e-9) & (frac < 1.0 - 1e-9), axis=1)
    nbr = delaunay.neighbors[home]  # [T, 3], -1 on the hull
    diagonal = (nbr >= 0) & (
        np.linalg.norm(centers[np.maximum(nbr, 0)] - centers[home][:, None], axis=-1) < 0.05
    )
    tri = tri[home]
    e1 = points[tri[:, 1], :2] - points[tri[:, 0], :2]
    e2 = points[tri[:, 2], :2] - points[tri[:, 0], :2]
    areas = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
    return SurfaceMesh(points, tri, areas, centers[home], diagonal)


def _circumcenters(corners: np.ndarray) -> np.ndarray:
    """[T, 2] circumcentres of [T, 3, 2] triangles; the centroid where it lies outside."""
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    d = 2.0 * (a[:, 0] * (b[:, 1] - c[:, 1]) + b[:, 0] * (c[:, 1] - a[:, 1])
               + c[:, 0] * (a[:, 1] - b[:, 1]))  # fmt: skip
    sq = (corners**2).sum(-1)  # [T, 3]
    ux = (sq[:, 0] * (b[:, 1] - c[:, 1]) + sq[:, 1] * (c[:, 1] - a[:, 1])
          + sq[:, 2] * (a[:, 1] - b[:, 1])) / d  # fmt: skip
    uy = (sq[:, 0] * (c[:, 0] - b[:, 0]) + sq[:, 1] * (a[:, 0] - c[:, 0])
          + sq[:, 2] * (b[:, 0] - a[:, 0])) / d  # fmt: skip
    center = np.stack([ux, uy], -1)
    # barycentric coordinates of the centre: all >= 0 (with slack) means inside or on an edge
    m = np.stack([b - a, c - a], -1)  # [T, 2, 2]
    uv = np.linalg.solve(m, (center - a)[..., None])[..., 0]
    inside = (uv >= -1e-6).all(-1) & (uv.sum(-1) <= 1 + 1e-6)
    return np.where(inside[:, None], center, corners.mean(1))


def _fingerprint(slab: Atoms, point: np.ndarray, n: int = 12) -> tuple[float, ...]:
    from ase.geometry import get_distances

    probe = point + np.array([0.0, 0.0, 1.0])
    _, d = get_distances(probe[None], slab.positions, cell=slab.cell, pbc=slab.pbc)
    return tuple(np.round(np.sort(d[0])[:n] / 0.05).astype(int).tolist())


def find_sites(slab: Atoms, unique: bool = True, top_depth: float = 1.0) -> list[Site]:
    """On-top, bridge and hollow sites of the slab's exposed surface.

    Args:
        slab: A tagged slab (see :func:`ensure_tags`).
        unique: Keep one site per symmetry-equivalence class (fingerprint within 0.05 Å).
        top_depth: Å below the top that counts as exposed.
    """
    mesh = surface_mesh(slab, top_depth)
    candidates = [Site("ontop", tuple(p)) for p in slab.positions[exposed(slab, top_depth)]]
    edges = set()
    for t, diag in zip(mesh.triangles, mesh.diagonal, strict=True):
        for v in range(3):
            i, j = (int(x) for x in np.delete(t, v))
            if not diag[v]:
                edges.add((min(i, j), max(i, j)))
    for i, j in sorted(edges):
        mid = 0.5 * (mesh.points[i] + mesh.points[j])
        mid[2] = max(mesh.points[i, 2], mesh.points[j, 2])
        candidates.append(Site("bridge", tuple(mid)))
    for t, center in zip(mesh.triangles, mesh.centers, strict=True):
        z = mesh.points[t, 2].max()
        candidates.append(Site("hollow", (float(center[0]), float(center[1]), float(z))))
    out: list[Site] = []
    seen: set = set()
    for site in candidates:
        if unique:
            key = (site.kind, _fingerprint(slab, np.asarray(site.position)))
            if key in seen:
                continue
            seen.add(key)
        elif _same_point(slab, site, out):
            continue
        out.append(site)
    return out


def _same_point(slab: Atoms, site: Site, sites: list[Site]) -> bool:
    """Whether ``site`` coincides (minimum image, 0.01 Å) with one in ``sites``."""
    from ase.geometry import get_distances

    if not sites:
        return False
    others = np.array([s.position for s in sites])
    _, d = get_distances(np.asarray(site.position)[None], others, cell=slab.cell, pbc=slab.pbc)
    return bool(d.min() < 1e-2)
