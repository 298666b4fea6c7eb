"""The AdsorbML anomaly rules on hand-built Cu(111) structures, positive and negative."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import fcc111
from ase.constraints import FixAtoms

from equicat.adsorbml import detect

A = 3.61  # Å, Cu lattice constant


def slab() -> Atoms:
    """Cu(111) 3x3x3, top layer tag 1, two lower layers tag 0 and fixed."""
    s = fcc111("Cu", size=(3, 3, 3), a=A, vacuum=8.0)
    layer = s.get_tags()  # ase: 1 = top
    s.set_tags(np.where(layer == 1, 1, 0))
    s.set_constraint(FixAtoms(indices=np.flatnonzero(layer > 1)))
    return s


def with_adsorbate(base: Atoms, symbols: str, positions) -> Atoms:
    atoms = base.copy()
    atoms += Atoms(symbols, positions=positions, tags=[2] * len(symbols))
    return atoms


def top_atom(s: Atoms, k: int = 0) -> np.ndarray:
    return s.positions[np.flatnonzero(s.get_tags() == 1)[k]]


def co_on_top(s: Atoms, height: float = 1.85, shift=(0.0, 0.0)) -> Atoms:
    p = top_atom(s) + np.array([shift[0], shift[1], height])
    return with_adsorbate(s, "CO", [p, p + [0, 0, 1.15]])


def test_sane_co_has_no_flags():
    s = slab()
    initial = co_on_top(s, height=2.3)
    final = co_on_top(s, height=1.85)
    final.positions[: len(s)] += np.random.default_rng(0).normal(0, 0.02, (len(s), 3))
    assert detect(initial, final, clean_slab=s) == []


def test_desorbed_co():
    s = slab()
    initial = co_on_top(s)
    final = co_on_top(s, height=5.0)
    assert detect(initial, final, clean_slab=s) == ["desorption"]


def test_dissociated_oh():
    s = slab()
    o = top_atom(s) + [0, 0, 1.9]
    initial = with_adsorbate(s, "OH", [o, o + [0, 0, 0.97]])
    # O stays on top; H moves to a neighbouring top site, 2.55 Å away
    h = top_atom(s, 1) + [0, 0, 1.55]
    final = with_adsorbate(s, "OH", [o, h])
    assert detect(initial, final, clean_slab=s) == ["dissociation"]


def test_reconstructed_surface():
    s = slab()
    initial = co_on_top(s, shift=(0.0, 0.0))
    final = initial.copy()
    # pull a top-layer atom far from the others (it stays bonded to nothing it was before)
    k = np.flatnonzero(s.get_tags() == 1)[4]
    final.positions[k, 2] += 2.5
    assert detect(initial, final, clean_slab=s) == ["surface_reconstruction"]


def test_intercalated_h():
    s = slab()
    # tetrahedral hole between the top two layers, right above a second-layer atom:
    # a*sqrt(3)/4 = 1.56 Å from its four neighbours (< r_H + r_Cu = 1.63 Å)
    second = np.flatnonzero(fcc111("Cu", size=(3, 3, 3), a=A, vacuum=8.0).get_tags() == 2)[4]
    p = s.positions[second] + [0, 0, A * np.sqrt(3) / 4]
    initial = with_adsorbate(s, "H", [top_atom(s) + [0, 0, 1.6]])
    final = with_adsorbate(s, "H", [p])
    assert detect(initial, final, clean_slab=s) == ["intercalation"]
    # an H in a surface hollow (1 Å up) is not intercalated
    hollow = with_adsorbate(s, "H", [s.positions[second] + [0, 0, 2.08 + 1.0]])
    assert detect(initial, hollow, clean_slab=s) == []


@pytest.mark.parametrize("edge", [0.02, 0.98])
def test_minimum_image_across_the_cell_boundary(edge):
    """An adsorbate near the cell edge is bonded through the periodic boundary."""
    s = slab()
    cell = s.cell.array
    # a point near the edge of the cell at fractional (edge, 0.5), 1.9 Å above the top layer
    xy = edge * cell[0] + 0.5 * cell[1]
    z = s.positions[:, 2].max() + 1.2
    initial = with_adsorbate(s, "O", [[xy[0], xy[1], z + 0.5]])
    final = with_adsorbate(s, "O", [[xy[0], xy[1], z]])
    assert detect(initial, final, clean_slab=s) == []
    # the same O, moved out of the image's reach only in z, desorbs
    far = with_adsorbate(s, "O", [[xy[0], xy[1], z + 4.0]])
    assert detect(initial, far, clean_slab=s) == ["desorption"]


def test_mismatched_inputs_are_refused():
    s = slab()
    a = co_on_top(s)
    with pytest.raises(ValueError, match="same atoms"):
        detect(a, a[:-1])
    with pytest.raises(ValueError, match="clean slab"):
        detect(a, a, clean_slab=s[:-1])
    with pytest.raises(ValueError, match="tag 2"):
        detect(s, s)


@pytest.mark.parametrize("name", ["*CO", "*OH"])
def test_emt_relaxed_heuristic_placements_are_valid(name):
    """Sane relaxed structures (EMT, on-top / bridge / hollow starts) raise no flag."""
    from ase.calculators.emt import EMT
    from ase.optimize import BFGS

    from equicat.adsorbml import PlacementConfig, adsorbate_by_name, placements
    from equicat.data.oc_emt import build_slab

    s = build_slab("Cu", "111", 2, 3)
    clean = s.copy()
    clean.calc = EMT()
    BFGS(clean, logfile=None).run(fmax=0.05, steps=100)
    for initial in placements(s, adsorbate_by_name(name), PlacementConfig(num_random=0)):
        final = initial.copy()
        final.calc = EMT()
        BFGS(final, logfile=None).run(fmax=0.05, steps=150)
        assert detect(initial, final, clean_slab=clean) == [], initial.info["site_kind"]
