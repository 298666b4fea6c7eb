from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.data import covalent_radii

from equicat.adsorbml import (
    AdsorbateSpec,
    PlacementConfig,
    adsorbate_by_name,
    find_sites,
    placements,
    slab_from_bulk,
)
from equicat.adsorbml.placements import datagen_placer
from equicat.adsorbml.surface import ensure_tags, surface_mesh
from equicat.data.oc_emt import build_slab


def min_clearance(atoms: Atoms) -> float:
    """Å, min over adsorbate-slab pairs (all images) of distance - (r_i + r_j)."""
    tags = atoms.get_tags()
    ads, slab = np.flatnonzero(tags == 2), np.flatnonzero(tags != 2)
    sup = atoms.repeat((3, 3, 1))
    n = len(atoms)
    centre = 4 * n  # image (1, 1) of the 3x3 repeat
    others = np.array([j for j in range(len(sup)) if j % n in set(slab.tolist())])
    d = np.linalg.norm(sup.positions[centre + ads][:, None] - sup.positions[others][None], axis=-1)
    r = covalent_radii[atoms.numbers[ads]][:, None] + covalent_radii[sup.numbers[others]][None]
    return float((d - r).min())


@pytest.mark.parametrize("facet,expected", [("111", 4), ("100", 3)])
def test_sites_are_the_high_symmetry_ones(facet, expected):
    slab = build_slab("Cu", facet, 2, 3)
    sites = find_sites(slab)
    kinds = sorted(s.kind for s in sites)
    want = {"111": ["bridge", "hollow", "hollow", "ontop"], "100": ["bridge", "hollow", "ontop"]}
    assert len(sites) == expected and kinds == want[facet]
    # all sites, not merged: 2x2 cell has 4 atoms; (111): 12 bridges, 8 hollows; (100): 8, 4
    every = find_sites(slab, unique=False)
    counts = {k: sum(s.kind == k for s in every) for k in ("ontop", "bridge", "hollow")}
    assert counts == (
        {"ontop": 4, "bridge": 12, "hollow": 8}
        if facet == "111"
        else {"ontop": 4, "bridge": 8, "hollow": 4}
    )


def test_mesh_tiles_the_cell_once():
    slab = build_slab("Pt", "111", 3, 3)
    mesh = surface_mesh(slab)
    area = abs(np.linalg.det(slab.cell.array[:2, :2]))
    assert mesh.areas.sum() == pytest.approx(area, rel=1e-9)


@pytest.mark.parametrize("name", ["*CO", "*OH", "*CH2*O", "*OCHCH3"])
def test_placements_geometry(name):
    slab = build_slab("Cu", "111", 3, 3)
    ads = adsorbate_by_name(name)
    config = PlacementConfig(num_random=4, gap=0.1, seed=3)
    frames = placements(slab, ads, config)
    assert len(frames) == 4 + 4
    for atoms in frames:
        n = len(slab)
        assert list(atoms.get_tags()[n:]) == [2] * len(ads.atoms)
        assert np.allclose(atoms.positions[:n], slab.positions)
        clearance = min_clearance(atoms)
        # every pair at least r_i + r_j + gap apart, and the lowest height that does it
        assert clearance >= 0.1 - 1e-6
        assert clearance == pytest.approx(0.1, abs=1e-6)
        binding = atoms.positions[n + np.array(ads.binding_indices)].mean(0)
        assert np.allclose(binding[:2], atoms.info["site"][:2], atol=1e-9)
        # adsorbate keeps its gas-phase shape (a rigid rotation + translation)
        d0 = np.linalg.norm(ads.atoms.positions[:, None] - ads.atoms.positions[None], axis=-1)
        p = atoms.positions[n:]
        assert np.allclose(np.linalg.norm(p[:, None] - p[None], axis=-1), d0, atol=1e-9)


def test_heuristic_points_away_from_surface():
    slab = build_slab("Cu", "111", 2, 3)
    ads = adsorbate_by_name("*OH")
    for atoms in placements(slab, ads, PlacementConfig(num_random=0, tilt_deg=15.0)):
        o, h = atoms.positions[-2], atoms.positions[-1]
        tilt = np.degrees(np.arccos((h - o)[2] / np.linalg.norm(h - o)))
        assert tilt <= 15.0 + 1e-6


def test_placements_are_deterministic():
    slab = build_slab("Au", "100", 2, 3)
    ads = adsorbate_by_name("*CHO")
    a = placements(slab, ads, PlacementConfig(num_random=3, seed=7))
    b = placements(slab, ads, PlacementConfig(num_random=3, seed=7))
    c = placements(slab, ads, PlacementConfig(num_random=3, seed=8))
    assert all(np.array_equal(x.positions, y.positions) for x, y in zip(a, b, strict=True))
    assert not all(np.allclose(x.positions, y.positions) for x, y in zip(a, c, strict=True))


def test_random_sites_cover_the_cell():
    slab = build_slab("Cu", "111", 2, 3)
    mesh = surface_mesh(slab)
    rng = np.random.default_rng(0)
    pts = np.array([mesh.sample(rng)[:2] for _ in range(2000)])
    frac = np.linalg.solve(slab.cell.array[:2, :2].T, pts.T).T % 1.0
    hist, _, _ = np.histogram2d(frac[:, 0], frac[:, 1], bins=2, range=[[0, 1], [0, 1]])
    assert hist.min() > 0.2 * 2000 / 4  # each quarter of the cell is sampled (uniform: 500)


def test_custom_adsorbate_and_errors():
    ads = AdsorbateSpec(
        "NH3",
        Atoms(
            "NHHH",
            positions=[[0, 0, 0], [0.94, 0, -0.3], [-0.47, 0.81, -0.3], [-0.47, -0.81, -0.3]],
        ),
        (0,),
    )
    slab = build_slab("Ni", "111", 2, 3)
    frames = placements(slab, ads, PlacementConfig(num_random=1))
    n = len(slab)
    assert all(a.positions[n, 2] < a.positions[n + 1 :, 2].min() for a in frames[:-1])
    with pytest.raises(ValueError, match="no OC20 adsorbate named"):
        adsorbate_by_name("*XYZ")
    with pytest.raises(ValueError, match="binding indices"):
        AdsorbateSpec("bad", Atoms("CO"), (5,))


def test_slab_from_bulk_and_tags():
    slab = slab_from_bulk(bulk("Cu", "fcc", a=3.6), (1, 1, 1), layers=4, free_layers=2)
    tags = slab.get_tags()
    fixed = slab.constraints[0].get_indices()
    assert set(tags) == {0, 1} and np.array_equal(np.sort(fixed), np.flatnonzero(tags == 0))
    assert slab.positions[tags == 1, 2].min() > slab.positions[tags == 0, 2].max()
    untagged = slab.copy()
    untagged.set_tags(0)
    untagged.set_constraint()
    retagged = ensure_tags(untagged, free_depth=2.5)
    assert np.array_equal(retagged.get_tags(), tags)
    assert len(find_sites(slab)) == 4


def test_datagen_placer_puts_one_adsorbate_at_covalent_distance():
    from equicat.data.oc_emt import load_adsorbates, sample_system

    placer = datagen_placer()
    ads = load_adsorbates()
    kinds = set()
    for i in range(8):
        atoms = sample_system(i, 0, ads, placer=placer)
        assert sample_system(i, 0, ads, placer=placer) == atoms  # deterministic per system
        kinds.add(atoms.info["site"])
        tags = atoms.get_tags()
        n_ads = int((tags == 2).sum())
        name = atoms.info["adsorbate"]
        assert n_ads == len(next(a for a in ads if a.name == name).symbols)
        slab_idx, ads_idx = np.flatnonzero(tags < 2), np.flatnonzero(tags == 2)
        closest = min(
            atoms.get_distance(a, s, mic=True)
            - covalent_radii[atoms.numbers[a]] - covalent_radii[atoms.numbers[s]]
            for a in ads_idx for s in slab_idx
        )  # fmt: skip
        assert closest >= 0.1 - 1e-6  # the default gap
        assert closest < 1.0  # and actually on the surface, not floating away
    assert "random" in kinds and kinds & {"ontop", "bridge", "hollow"}
