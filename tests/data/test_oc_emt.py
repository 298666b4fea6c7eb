from __future__ import annotations

import json

import numpy as np
import pytest
from ase.calculators.emt import EMT
from ase.constraints import FixAtoms

from equicat.cli.main import main
from equicat.data import oc_emt
from equicat.data.dataset import frame_labels, read_frames
from equicat.data.oc_emt import (
    EMT_ELEMENTS,
    Adsorbate,
    Recipe,
    build_slab,
    generate,
    generate_system,
    load_adsorbates,
    sample_system,
    write_dataset,
)

SMALL = {"relax_steps": 6, "rattle_frames": 1, "keep_every": 2}
SMALL_RECIPE = Recipe(**SMALL)


def fixed_mask(atoms) -> np.ndarray:
    mask = np.zeros(len(atoms), bool)
    for c in atoms.constraints:
        if isinstance(c, FixAtoms):
            mask[c.get_indices()] = True
    return mask


def test_adsorbates_are_the_86_oc20_ones_all_emt_compatible():
    ads = load_adsorbates()
    assert len(ads) == 86
    assert {s for a in ads for s in a.symbols} <= EMT_ELEMENTS
    assert all(np.shape(a.positions) == (len(a.symbols), 3) for a in ads)
    water_like = [a for a in ads if set(a.symbols) <= {"H", "O"}]
    assert load_adsorbates(frozenset({"H", "O"})) == water_like


@pytest.mark.parametrize("facet", ["111", "100"])
@pytest.mark.parametrize(("size", "layers"), [(2, 3), (3, 4)])
def test_slab_tags_and_fixed_layers(facet, size, layers):
    slab = build_slab("Cu", facet, size, layers)
    tags, fixed, z = slab.get_tags(), fixed_mask(slab), slab.positions[:, 2]
    assert sorted(set(tags)) == [0, 1]
    assert (tags == 1).sum() == size * size
    assert np.allclose(z[tags == 1], z.max())  # tag 1 is the top layer
    assert fixed.sum() == size * size * (layers - 2)
    assert z[fixed].max() < np.sort(np.unique(z.round(6)))[-2] - 0.5  # the two top layers move
    assert not fixed[tags == 1].any()


def test_system_placement_tags_and_clearance():
    ads_pool = load_adsorbates()
    for index in range(6):
        atoms = sample_system(index, 7, ads_pool)
        tags, fixed = atoms.get_tags(), fixed_mask(atoms)
        ads = next(a for a in ads_pool if a.name == atoms.info["adsorbate"])
        n = len(ads.symbols)
        assert list(tags[-n:]) == [2] * n and (tags[:-n] < 2).all()
        assert atoms.get_chemical_symbols()[-n:] == list(ads.symbols)
        assert not fixed[-n:].any()
        assert atoms.info["metal"] in oc_emt.METALS
        assert atoms.info["facet"] in ("fcc111", "fcc100")
        binding = atoms.positions[len(atoms) - n + np.array(ads.binding_indices), 2].mean()
        top = atoms.positions[tags == 1, 2].max()
        assert binding - top >= 1.8 - 1e-9  # ~2 Å, lifted only if some atom was too close
        d = atoms.get_all_distances(mic=True)[-n:, :-n]
        assert d.min() >= oc_emt.MIN_CLEARANCE - 1e-9
        assert atoms.cell[2, 2] - atoms.positions[:, 2].max() == pytest.approx(oc_emt.VACUUM)
        # the adsorbate keeps its gas-phase shape (rigid placement)
        inner = atoms[-n:].get_all_distances()
        pos = np.array(ads.positions)
        ref = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
        np.testing.assert_allclose(inner, ref, atol=1e-9)


def test_generate_is_deterministic_per_seed_and_per_system():
    a = generate(2, seed=3, **SMALL)
    b = generate(2, seed=3, **SMALL)
    assert len(a) == len(b) > 2
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.positions, y.positions)
        assert frame_labels(x)[0] == frame_labels(y)[0]
        assert x.info == y.info
    # system 1 does not depend on how many systems come before it
    alone = generate(1, seed=3, start=1, **SMALL)
    ones = [f for f in a if f.info["system_id"] == 1]
    assert [f.positions.tolist() for f in alone] == [f.positions.tolist() for f in ones]
    other = generate(2, seed=4, **SMALL)
    assert any(
        x.positions.shape != y.positions.shape or not np.allclose(x.positions, y.positions)
        for x, y in zip(a, other, strict=False)
    )


def test_labels_equal_emt_on_re_evaluation():
    frames = generate(2, seed=11, **SMALL)
    kinds = {f.info["frame_kind"] for f in frames}
    assert kinds == {"relax", "rattle"}
    for frame in frames:
        energy, forces = frame_labels(frame)
        atoms = frame.copy()
        atoms.calc = EMT()
        assert energy == pytest.approx(atoms.get_potential_energy(), abs=1e-10)
        np.testing.assert_allclose(forces, atoms.get_forces(apply_constraint=False), atol=1e-10)
    # fixed atoms carry their real (non-zero) forces, as a DFT code reports them
    assert any(np.abs(frame_labels(f)[1][fixed_mask(f)]).max() > 1e-4 for f in frames)


def test_relaxation_frames_are_kept_every_k_and_lower_the_energy():
    recipe = Recipe(relax_steps=12, keep_every=3, rattle_frames=2, max_force=None)
    frames = generate_system(0, 5, recipe=recipe)
    relax = [f for f in frames if f.info["frame_kind"] == "relax"]
    steps = [f.info["frame_index"] for f in relax]
    assert steps[:4] == [0, 3, 6, 9] and steps[-1] <= 12
    assert frame_labels(relax[-1])[0] < frame_labels(relax[0])[0]
    rattled = [f for f in frames if f.info["frame_kind"] == "rattle"]
    assert len(rattled) == 2
    moved = np.abs(rattled[0].positions - relax[-1].positions).max(axis=1) > 0
    np.testing.assert_array_equal(moved, ~fixed_mask(rattled[0]))


def test_frames_above_max_force_are_dropped():
    every = generate_system(3, 1, recipe=Recipe(relax_steps=6, keep_every=1, max_force=None))
    largest = [np.linalg.norm(frame_labels(f)[1], axis=1).max() for f in every]
    limit = float(np.median(largest))
    kept = generate_system(3, 1, recipe=Recipe(relax_steps=6, keep_every=1, max_force=limit))
    assert [f.info["frame_index"] for f in kept] == [
        f.info["frame_index"] for f, m in zip(every, largest, strict=True) if m <= limit
    ]
    assert 0 < len(kept) < len(every)


def test_emt_refuses_unknown_elements():
    iron = Adsorbate("*Fe", ("Fe",), ((0.0, 0.0, 0.0),), (0,))
    with pytest.raises(ValueError, match="EMT has no parameters for"):
        generate_system(0, 0, recipe=SMALL_RECIPE, adsorbates=[iron])


def test_write_dataset_splits_by_system_round_trips_and_resumes(tmp_path, monkeypatch):
    out = tmp_path / "oc"
    paths = write_dataset(out, 3, 2, None, SMALL_RECIPE, chunk_size=2, progress=False)
    names = sorted(p.name for p in (out / "chunks").iterdir())
    assert names == ["0000.extxyz", "0000.json", "0001.extxyz", "0001.json"]
    train, val = read_frames(paths["train"]), read_frames(paths["val"])
    train_ids = {f.info["system_id"] for f in train}
    val_ids = {f.info["system_id"] for f in val}
    assert not train_ids & val_ids and train_ids | val_ids == {0, 1, 2} and len(val_ids) == 1
    manifest = json.loads(paths["manifest"].read_text())
    assert manifest["val_systems"] == sorted(val_ids)
    assert manifest["train_frames"] == len(train)
    # labels, tags and constraints survive extxyz
    fresh = generate(3, seed=2, **SMALL)
    by_key = {(f.info["system_id"], f.info["frame_kind"], f.info["frame_index"]): f for f in fresh}
    for f in train + val:
        g = by_key[(f.info["system_id"], f.info["frame_kind"], f.info["frame_index"])]
        np.testing.assert_allclose(f.positions, g.positions, atol=1e-7)
        assert frame_labels(f)[0] == pytest.approx(frame_labels(g)[0], abs=1e-9)
        np.testing.assert_allclose(frame_labels(f)[1], frame_labels(g)[1], atol=1e-7)
        np.testing.assert_array_equal(f.get_tags(), g.get_tags())
        np.testing.assert_array_equal(fixed_mask(f), fixed_mask(g))
    # a rerun reuses the chunks; a missing chunk alone is regenerated
    calls = []
    real = oc_emt.generate_system
    monkeypatch.setattr(oc_emt, "generate_system", lambda i, *a: calls.append(i) or real(i, *a))
    write_dataset(out, 3, 2, None, SMALL_RECIPE, chunk_size=2, progress=False)
    assert calls == []
    (out / "chunks" / "0001.json").unlink()  # as if killed before the chunk was complete
    write_dataset(out, 3, 2, None, SMALL_RECIPE, chunk_size=2, progress=False)
    assert calls == [2]
    write_dataset(out, 4, 2, None, SMALL_RECIPE, chunk_size=2, progress=False)  # extend
    assert calls == [2, 2, 3]
    assert not list(out.rglob("*.tmp"))
    with pytest.raises(ValueError, match="other settings"):
        write_dataset(out, 3, 9, None, SMALL_RECIPE, chunk_size=2, progress=False)
    # a data set of the simple placement (no "placement" in its manifest) met by the new
    # default: the message names the flag that continues it
    with pytest.raises(ValueError, match="need --placement simple"):
        write_dataset(out, 3, 2, None, SMALL_RECIPE, chunk_size=2, progress=False,
                      placer=oc_emt.place_adsorbate, placement="adsorbml")  # fmt: skip


def test_cli_datagen(tmp_path, capsys):
    out = tmp_path / "d"
    args = ["datagen", "oc-emt", "--out", str(out), "--systems", "2", "--seed", "1"]
    args += ["--relax-steps", "4", "--rattle-frames", "1", "--max-force", "0", "--no-progress"]
    assert main(args) == 0
    assert (out / "train.extxyz").is_file() and (out / "val.extxyz").is_file()
    assert "train:" in capsys.readouterr().out


def test_alloy_slabs_are_binary_with_vegard_lattice_and_leave_other_systems_alone():
    from ase.data import atomic_numbers, reference_states

    ads = load_adsorbates()
    alloys = 0
    for i in range(12):
        unary = sample_system(i, 5, ads)
        mixed = sample_system(i, 5, ads, alloy_fraction=0.5)
        assert sample_system(i, 5, ads, alloy_fraction=0.5) == mixed  # deterministic
        if "alloy" not in mixed.info:  # not drawn as an alloy: the very same system
            assert mixed == unary and mixed.info == unary.info
            continue
        alloys += 1
        host, guest, share = mixed.info["metal"], mixed.info["alloy"], mixed.info["alloy_fraction"]
        slab = mixed[mixed.get_tags() < 2]
        symbols = slab.get_chemical_symbols()
        assert set(symbols) == {host, guest} and guest != host
        assert symbols.count(guest) == round(share * len(slab))
        a = [reference_states[atomic_numbers[m]]["a"] for m in (host, guest)]
        vegard = (1 - share) * a[0] + share * a[1]
        # the in-plane cell follows the lattice constant: |a1| = a/sqrt(2) on fcc(111)/(100)
        size = round(np.linalg.norm(unary.cell[0]) / (a[0] / np.sqrt(2)))
        assert np.linalg.norm(mixed.cell[0]) == pytest.approx(size * vegard / np.sqrt(2))
    assert 2 <= alloys <= 10  # about half of 12


def test_alloy_systems_label_with_emt_and_record_the_alloy():
    frames = generate_system(0, 3, EMT(), Recipe(**SMALL, alloy_fraction=1.0))
    assert frames and all("alloy" in f.info for f in frames)
    assert all(np.isfinite(f.calc.results["forces"]).all() for f in frames)
    with pytest.raises(ValueError, match="alloy_fraction"):
        Recipe(alloy_fraction=1.5)


def test_cli_datagen_adsorbml_placement_and_alloys(tmp_path, capsys):
    out = tmp_path / "d"
    args = ["datagen", "oc-emt", "--out", str(out), "--systems", "3", "--seed", "2"]
    args += ["--relax-steps", "2", "--rattle-frames", "0", "--max-force", "0", "--no-progress"]
    assert main(args + ["--placement", "adsorbml", "--alloys", "1.0"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["placement"] == "adsorbml" and manifest["alloy_fraction"] == 1.0
    frames = read_frames(out / "train.extxyz") + read_frames(out / "val.extxyz")
    assert {f.info["system_id"] for f in frames} == {0, 1, 2}
    assert all(f.info["site"] in {"ontop", "bridge", "hollow", "random"} for f in frames)
    # the same directory with another placement is refused, not silently mixed
    assert main(args + ["--placement", "simple", "--alloys", "1.0"]) != 0
    assert "placement: 'adsorbml' -> None" in capsys.readouterr().err
