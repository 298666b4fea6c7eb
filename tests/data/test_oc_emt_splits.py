from __future__ import annotations

import json

import numpy as np
import pytest

from equicat.cli.main import main
from equicat.data import oc_emt
from equicat.data.dataset import read_frames
from equicat.data.oc_emt import Recipe, load_adsorbates, sample_info, sample_system, write_dataset
from equicat.data.oc_emt_splits import SPLITS, Holdout, choose_holdout, split_systems

SMALL_RECIPE = Recipe(relax_steps=4, rattle_frames=1, keep_every=2, max_force=None)


def catalyst(info: dict) -> str:
    return info["metal"] + info["facet"].removeprefix("fcc")


@pytest.mark.parametrize("seed", [0, 5])
def test_holdout_is_deterministic_per_seed_and_keeps_every_metal(seed):
    a = choose_holdout(seed, 8, 3)
    assert a == choose_holdout(seed, 8, 3)
    assert a != choose_holdout(seed + 1, 8, 3)
    assert len(a.adsorbates) == len(set(a.adsorbates)) == 8
    assert set(a.adsorbates) <= {x.name for x in load_adsorbates()}
    metals = [c[:2] for c in a.catalysts]
    assert len(set(metals)) == 3 and all(c[2:] in ("111", "100") for c in a.catalysts)
    # fewer held out is a prefix of the same draw: not a fresh choice
    assert set(choose_holdout(seed, 4, 1).adsorbates) <= set(a.adsorbates)
    with pytest.raises(ValueError, match="catalysts"):
        choose_holdout(seed, 0, 7)  # no metal would be left in training


def test_sample_info_matches_the_built_system():
    ads = load_adsorbates()
    for index in range(5):
        info = sample_system(index, 3, ads).info
        assert sample_info(index, 3, ads) == {k: info[k] for k in ("metal", "facet", "adsorbate")}


def test_split_without_holdout_is_the_old_val_choice():
    ads = load_adsorbates()
    infos = {i: sample_info(i, 2, ads) for i in range(20)}
    splits = split_systems(infos, 2, 0.1, Holdout())
    old = np.random.default_rng([2, 2**31]).permutation(20)[:2]  # what write_dataset did before
    assert splits["val_id"] == sorted(old.tolist())
    assert splits["train"] == sorted(set(range(20)) - set(old.tolist()))
    assert not any(splits[name] for name in SPLITS[2:])


def test_split_puts_each_system_where_its_adsorbate_and_catalyst_say():
    ads = load_adsorbates()
    infos = {i: sample_info(i, 1, ads) for i in range(60)}
    holdout = Holdout(
        adsorbates=tuple({infos[i]["adsorbate"] for i in range(0, 60, 7)}),
        catalysts=(catalyst(infos[1]), catalyst(infos[2])),
    )
    splits = split_systems(infos, 1, 0.2, holdout)
    ids = [i for name in SPLITS for i in splits[name]]
    assert sorted(ids) == list(range(60))  # a partition
    for name in SPLITS:
        for i in splits[name]:
            ads_out = infos[i]["adsorbate"] in holdout.adsorbates
            cat_out = catalyst(infos[i]) in holdout.catalysts
            expected = {(True, True): "val_ood_both", (True, False): "val_ood_ads",
                        (False, True): "val_ood_cat"}.get((ads_out, cat_out))  # fmt: skip
            assert name == (expected or name) and (expected or name in ("train", "val_id"))
    assert all(splits[name] for name in ("train", "val_id", "val_ood_ads", "val_ood_cat"))
    n_in = len(splits["train"]) + len(splits["val_id"])
    assert len(splits["val_id"]) == round(0.2 * n_in)


def test_write_dataset_with_holdout_writes_ood_files_and_resplits(tmp_path, monkeypatch):
    out, n = tmp_path / "oc", 6
    infos = {i: sample_info(i, 4, load_adsorbates()) for i in range(n)}
    holdout = Holdout(adsorbates=(infos[0]["adsorbate"],), catalysts=(catalyst(infos[1]),))
    paths = write_dataset(out, n, 4, None, SMALL_RECIPE, holdout=holdout, chunk_size=3,
                          progress=False)  # fmt: skip
    manifest = json.loads(paths["manifest"].read_text())
    assert manifest["holdout"] == {"adsorbates": list(holdout.adsorbates),
                                   "catalysts": list(holdout.catalysts)}  # fmt: skip
    seen = set()
    for key in ("train", "val", "val_ood_ads", "val_ood_cat", "val_ood_both"):
        if key not in paths:  # an empty split writes no file
            assert manifest[f"{key}_frames"] == 0 and not (out / f"{key}.extxyz").exists()
            continue
        ids = {f.info["system_id"] for f in read_frames(paths[key])}
        assert ids == set(manifest[f"{key}_systems"]), key
        assert manifest[f"{key}_frames"] == len(read_frames(paths[key]))
        assert not ids & seen
        seen |= ids
    assert seen == set(range(n))
    train = read_frames(paths["train"])
    assert not {f.info["adsorbate"] for f in train} & set(holdout.adsorbates)
    assert not {catalyst(f.info) for f in train} & set(holdout.catalysts)
    # the split is post-processing: a rerun without a holdout reuses every chunk
    calls = []
    real = oc_emt.generate_system
    monkeypatch.setattr(oc_emt, "generate_system", lambda i, *a: calls.append(i) or real(i, *a))
    paths = write_dataset(out, n, 4, None, SMALL_RECIPE, chunk_size=3, progress=False)
    assert calls == [] and set(paths) == {"train", "val", "manifest"}
    assert not (out / "val_ood_ads.extxyz").exists()
    assert len(read_frames(paths["train"])) + len(read_frames(paths["val"])) == sum(
        manifest[f"{k}_frames"] for k in ("train", "val", "val_ood_ads", "val_ood_cat",
                                          "val_ood_both")
    )  # fmt: skip


def test_cli_datagen_holdout(tmp_path, capsys):
    out = tmp_path / "d"
    args = ["datagen", "oc-emt", "--out", str(out), "--systems", "2", "--seed", "1"]
    args += ["--relax-steps", "2", "--rattle-frames", "0", "--no-progress"]
    assert main(args + ["--ood-adsorbates", "3", "--ood-catalysts", "2"]) == 0
    assert "held out: adsorbates" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["holdout"] == {k: list(v) for k, v in vars(choose_holdout(1, 3, 2)).items()}
    assert manifest["val_ood_both_frames"] >= 0
