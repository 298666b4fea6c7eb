"""The workflow end to end with EMT standing in for both the ML model and the oracle."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.calculators.emt import EMT

from equicat.adsorbml import PlacementConfig, WorkflowConfig, adsorbate_by_name, run_workflow
from equicat.data.oc_emt import build_slab

N_SLAB = 12  # Cu(111) 2x2x3


class CountingEMT(EMT):
    """EMT that counts its calculations by structure size, and can fail after ``fail_after``."""

    def __init__(self, fail_after: int | None = None):
        super().__init__()
        self.sizes: list[int] = []
        self.fail_after = fail_after

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        if self.fail_after is not None and len(self.sizes) >= self.fail_after:
            raise RuntimeError("oracle interrupted")
        self.sizes.append(len(atoms))
        super().calculate(atoms, properties, system_changes)

    def single_points(self, n_ads: int) -> int:
        return sum(s == N_SLAB + n_ads for s in self.sizes)


CONFIG = WorkflowConfig(
    placement=PlacementConfig(num_random=1, seed=1), k=3, fmax=0.1, steps=25, batch_size=5
)


def run(out, oracle, ml=None, report=False):
    slab = build_slab("Cu", "111", 2, 3)
    ml = ml if ml is not None else CountingEMT()
    return run_workflow(
        out, slab, adsorbate_by_name("*CO"), ml, oracle, CONFIG, progress=False, report=report
    )


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("adsorbml")
    return out, run(out, CountingEMT(), report=True)


def test_summary_fields(finished):
    tmp_path, summary = finished
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert summary["placements"] == 4 + 1
    flags = json.loads((tmp_path / "anomalies.json").read_text())
    assert summary["valid"] == sum(not v for v in flags.values()) >= 1
    for rule, count in summary["anomalies_by_rule"].items():
        assert count == sum(rule in v for v in flags.values())
    assert set(summary["anomalies_by_rule"]) == {
        "dissociation",
        "desorption",
        "surface_reconstruction",
        "intercalation",
    }
    top = summary["top_k"]
    assert len(top) == min(3, summary["valid"])
    ml = [t["ml_energy"] for t in top]
    assert ml == sorted(ml)
    # EMT is both model and oracle here: the single points equal the ML energies
    assert np.allclose(ml, [t["oracle_energy"] for t in top], atol=1e-8)
    assert summary["best_oracle_energy"] == min(t["oracle_energy"] for t in top)
    refs = summary["references"]
    eps = refs["element_references"]
    expected = summary["best_oracle_energy"] - refs["slab_energy"] - eps["C"] - eps["O"]
    assert summary["adsorption_energy"] == pytest.approx(expected)
    for name in ("chosen.extxyz", "report.png", "chosen.png", "anomalies.json"):
        assert (tmp_path / name).is_file(), name
    assert summary["chosen_structure"].endswith("chosen.extxyz")


def test_rerun_repeats_no_oracle_call_or_relaxation(finished):
    tmp_path, first = finished
    oracle, ml = CountingEMT(), CountingEMT()
    second = run(tmp_path, oracle, ml)
    assert oracle.sizes == [] and ml.sizes == []
    assert second["top_k"] == first["top_k"]


def test_interrupted_single_points_resume(tmp_path):
    # the oracle dies after its second call, inside the single-point stage
    with pytest.raises(RuntimeError, match="interrupted"):
        run(tmp_path, CountingEMT(fail_after=2))
    saved = json.loads((tmp_path / "oracle_single_points.json").read_text())
    assert len(saved) == 2
    oracle, ml = CountingEMT(), CountingEMT()
    summary = run(tmp_path, oracle, ml)
    assert ml.sizes == []  # ML relaxations were kept
    assert oracle.single_points(2) == len(summary["top_k"]) - 2  # only the missing ones
    done = {str(t["placement"]): t["oracle_energy"] for t in summary["top_k"]}
    assert all(done[k] == v for k, v in saved.items())


def test_other_settings_are_refused(finished):
    tmp_path, _ = finished
    slab = build_slab("Cu", "111", 2, 3)
    other = WorkflowConfig(placement=PlacementConfig(num_random=3), k=3, steps=25)
    with pytest.raises(ValueError, match="other settings"):
        run_workflow(
            tmp_path,
            slab,
            adsorbate_by_name("*CO"),
            EMT(),
            EMT(),
            other,
            progress=False,
            report=False,
        )


def test_larger_k_adds_only_the_new_single_points(finished):
    tmp_path, first = finished
    slab = build_slab("Cu", "111", 2, 3)
    oracle, ml = CountingEMT(), CountingEMT()
    more = WorkflowConfig(**{**CONFIG.__dict__, "k": 5})
    summary = run_workflow(tmp_path, slab, adsorbate_by_name("*CO"), ml, oracle, more,
                           progress=False, report=False)  # fmt: skip
    assert ml.sizes == []
    assert oracle.single_points(2) == len(summary["top_k"]) - len(first["top_k"])
    assert summary["top_k"][: len(first["top_k"])] == first["top_k"]
