"""OC20-style splits of an OC-EMT data set: train, val-ID and three out-of-domain sets.

OC20 validates on four sets: in-domain (val-ID), unseen adsorbates (val-OOD-ads), unseen
catalysts (val-OOD-cat) and both unseen (val-OOD-both). OC-EMT does the same by system: a
system whose adsorbate is held out, whose catalyst is held out, or both, goes to the matching
OOD split and never to training; the rest are split into train and val-ID.

What is held out is a function of the data-set seed alone (:func:`choose_holdout`), so two
data sets with the same seed and different sizes hold out the same adsorbates and catalysts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SPLITS", "SPLIT_FILES", "Holdout", "choose_holdout", "split_systems"]

SPLITS = ("train", "val_id", "val_ood_ads", "val_ood_cat", "val_ood_both")
# split -> file name; ``val`` keeps the name it had before the OOD splits existed
SPLIT_FILES = {
    "train": "train.extxyz", "val_id": "val.extxyz", "val_ood_ads": "val_ood_ads.extxyz",
    "val_ood_cat": "val_ood_cat.extxyz", "val_ood_both": "val_ood_both.extxyz",
}  # fmt: skip


@dataclass(frozen=True)
class Holdout:
    """What the out-of-domain validation splits hold out (OC20's val-OOD-ads/-cat/-both).

    A *catalyst* here is a surface, ``"<metal><facet>"`` (e.g. ``"Pt111"``): OC-EMT slabs are
    unary and EMT models need every element in training for its reference energy, so whole
    metals cannot be held out; each held-out catalyst is one facet of a distinct metal, whose
    other facet stays in training.

    Attributes:
        adsorbates: Held-out adsorbate names (OC20 names, e.g. ``"*OH"``).
        catalysts: Held-out surfaces, ``"<metal><facet>"``.
    """

    adsorbates: tuple[str, ...] = ()
    catalysts: tuple[str, ...] = ()

    def split_of(self, info: dict) -> str | None:
        """``"val_ood_ads"``/``"val_ood_cat"``/``"val_ood_both"``, or ``None`` (in-domain)."""
        ads = info["adsorbate"] in self.adsorbates
        cat = f"{info['metal']}{str(info['facet']).removeprefix('fcc')}" in self.catalysts
        if ads and cat:
            return "val_ood_both"
        return "val_ood_ads" if ads else "val_ood_cat" if cat else None


def choose_holdout(seed: int, n_adsorbates: int = 0, n_catalysts: int = 0) -> Holdout:
    """The held-out adsorbates and catalysts of data-set ``seed`` (deterministic per seed).

    Adsorbates: the first ``n_adsorbates`` of a ``default_rng([seed, 2**31 + 1])``
    permutation of :func:`load_adsorbates`. Catalysts: the first ``n_catalysts`` metals of a
    ``default_rng([seed, 2**31 + 2])`` permutation of :data:`METALS`, each with a facet drawn
    from the same generator. Neither depends on the number of systems.
    """
    from equicat.data.oc_emt import METALS, load_adsorbates

    names = [a.name for a in load_adsorbates()]
    if not 0 <= n_adsorbates < len(names):
        raise ValueError(f"hold out 0..{len(names) - 1} adsorbates, got {n_adsorbates}")
    if not 0 <= n_catalysts < len(METALS):
        raise ValueError(f"hold out 0..{len(METALS) - 1} catalysts, got {n_catalysts}")
    ads_rng = np.random.default_rng([int(seed), 2**31 + 1])
    adsorbates = sorted(names[i] for i in ads_rng.permutation(len(names))[:n_adsorbates])
    cat_rng = np.random.default_rng([int(seed), 2**31 + 2])
    metals = [METALS[i] for i in cat_rng.permutation(len(METALS))[:n_catalysts]]
    catalysts = sorted(f"{m}{('111', '100')[cat_rng.integers(2)]}" for m in metals)
    return Holdout(tuple(adsorbates), tuple(catalysts))


def split_systems(
    infos: dict[int, dict], seed: int, val_fraction: float, holdout: Holdout
) -> dict[str, list[int]]:
    """System ids of each split in :data:`SPLITS`.

    Systems with a held-out adsorbate and/or catalyst go to the OOD splits; of the rest,
    ``max(1, round(val_fraction * n_in_domain))`` (when there are at least 2 and
    ``val_fraction > 0``) chosen by a ``default_rng([seed, 2**31])`` permutation of all ids
    form ``val_id``. With nothing held out this is the split OC-EMT always made.

    Args:
        infos: ``{system_id: info}`` with ``adsorbate``, ``metal`` and ``facet`` (ids ``0..n-1``).
        seed: Data-set seed.
        val_fraction: Fraction of the in-domain systems that form val-ID.
        holdout: What the OOD splits hold out.
    """
    out: dict[str, list[int]] = {name: [] for name in SPLITS}
    ood = {i: holdout.split_of(info) for i, info in infos.items()}
    for i, split in sorted(ood.items()):
        if split is not None:
            out[split].append(i)
    n_in = sum(split is None for split in ood.values())
    n_val = max(1, round(val_fraction * n_in)) if n_in >= 2 and val_fraction > 0 else 0
    order = np.random.default_rng([int(seed), 2**31]).permutation(len(infos)).tolist()
    val = set([i for i in order if ood[i] is None][:n_val])
    out["val_id"] = sorted(val)
    out["train"] = sorted(i for i in ood if ood[i] is None and i not in val)
    return out
