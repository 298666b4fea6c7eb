"""Batches: batched == one by one, masking of finished systems, the queue, FixAtoms, maxstep."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import molecule
from ase.calculators.emt import EMT

from equicat.relax import (
    AsePotential,
    ModelPotential,
    fire_init,
    fire_step,
    lbfgs_init,
    lbfgs_step,
    relax,
    relax_many,
)

from .systems import FIXED, emt_slab, near

OPTIMIZERS = {"lbfgs": (lbfgs_init, lbfgs_step), "fire": (fire_init, fire_step)}


class CountingEMT(AsePotential):
    """EMT that records the number of systems of every call."""

    def __init__(self):
        super().__init__(EMT())
        self.sizes = []

    def __call__(self, graph):
        self.sizes.append(graph.num_systems)
        return super().__call__(graph)


@pytest.mark.parametrize("optimizer", ["lbfgs", "fire"])
def test_batched_equals_one_by_one(optimizer, pred, minimum):
    co = molecule("CO")
    co.center(vacuum=3.0)
    co.rattle(0.05, seed=4)
    frames = [near(minimum, 0), co, near(minimum, 1, rattle=0.1)]
    kwargs = dict(optimizer=optimizer, fmax=1e-6, steps=10)
    batched = relax_many(frames, ModelPotential.from_predictor(pred), batch_size=3, **kwargs)
    for atoms, res in zip(frames, batched, strict=True):
        (single,) = relax_many([atoms], ModelPotential.from_predictor(pred), **kwargs)
        assert res.steps == single.steps == 10
        assert res.energy == pytest.approx(single.energy, abs=1e-10)
        np.testing.assert_allclose(res.positions, single.positions, atol=1e-10)
        np.testing.assert_allclose(res.forces, single.forces, atol=1e-10)
        assert np.abs(res.positions - atoms.positions).max() > 1e-3  # it moved


@pytest.mark.parametrize("optimizer", ["lbfgs", "fire"])
def test_converged_systems_stop(optimizer):
    init, step = OPTIMIZERS[optimizer]
    potential = AsePotential(EMT())
    frames = [emt_slab(0), emt_slab(1, rattle=0.2)]
    state = init(potential.graph(frames), potential, fmax=0.05)
    converged_at = [None, None]
    history = []
    while bool(state.active.any()):
        before = state
        state = step(state, potential)
        history.append((before, state))
        for b in range(2):
            if converged_at[b] is None and bool(state.converged[b]):
                converged_at[b] = int(state.steps[b])
    assert converged_at[0] != converged_at[1]
    for before, after in history:
        for b in range(2):
            lo, hi = 13 * b, 13 * (b + 1)
            if bool(before.converged[b]):  # finished: frozen, not counted, not re-evaluated
                assert int(after.steps[b]) == int(before.steps[b])
                assert torch.equal(after.graph.positions[lo:hi], before.graph.positions[lo:hi])
                assert torch.equal(after.forces[lo:hi], before.forces[lo:hi])
    assert state.steps.tolist() == converged_at
    assert bool((state.max_force < 0.05).all())


def test_finished_systems_are_not_evaluated():
    potential = CountingEMT()
    frames = [emt_slab(0), emt_slab(1, rattle=0.2)]
    state = lbfgs_init(potential.graph(frames), potential, fmax=0.05)
    while bool(state.active.any()):
        state = lbfgs_step(state, potential)
    # init evaluates both; each step only the systems still moving
    assert potential.sizes[0] == 2
    assert sum(potential.sizes[1:]) == int(state.steps.sum())
    assert 1 in potential.sizes


@pytest.mark.parametrize("optimizer", ["lbfgs", "fire"])
def test_queue_refill_in_input_order(optimizer):
    frames = [emt_slab(seed, rattle=0.05 + 0.04 * seed) for seed in range(5)]
    potential = CountingEMT()
    kwargs = dict(optimizer=optimizer, fmax=0.05, steps=200)
    results = relax_many(frames, potential, batch_size=2, **kwargs)
    assert [r.index for r in results] == list(range(5))
    assert max(potential.sizes) == 2
    # every system is evaluated once at its start and once per step, never after it finished
    assert sum(potential.sizes) == sum(r.steps for r in results) + 5
    for atoms, res in zip(frames, results, strict=True):
        (single,) = relax_many([atoms], AsePotential(EMT()), **kwargs)
        assert res.converged and res.steps == single.steps
        np.testing.assert_allclose(res.positions, single.positions, atol=1e-12)


@pytest.mark.parametrize("optimizer", ["lbfgs", "fire"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fixed_atoms_never_move(optimizer, dtype, minimum):
    from .systems import predictor

    frames = [near(minimum, 0, rattle=0.1), near(minimum, 1, rattle=0.1)]
    pred = predictor(dtype)
    out = relax(frames, pred, optimizer=optimizer, fmax=1e-6, steps=5, progress=False)
    for atoms, res in zip(frames, out, strict=True):
        assert np.array_equal(res.positions[list(FIXED)], atoms.positions[list(FIXED)])
        free = [i for i in range(len(atoms)) if i not in FIXED]
        assert np.abs(res.positions[free] - atoms.positions[free]).max() > 1e-3
        assert res.constraints[0].get_indices().tolist() == list(FIXED)


@pytest.mark.parametrize("optimizer", ["lbfgs", "fire"])
def test_maxstep_per_system(optimizer):
    init, step = OPTIMIZERS[optimizer]
    potential = AsePotential(EMT())
    frames = [emt_slab(0, rattle=0.2), emt_slab(1, rattle=0.2)]
    caps = torch.tensor([0.01, 0.03], dtype=torch.float64)
    state = init(potential.graph(frames), potential, fmax=1e-3, maxstep=caps)
    longest = []
    for _ in range(20):
        new = step(state, potential)
        dr = (new.graph.positions - state.graph.positions).norm(dim=1).reshape(2, 13)
        longest.append(dr.max(dim=1).values)
        state = new
    longest = torch.stack(longest)  # [steps, B]
    assert bool((longest <= caps * (1 + 1e-12)).all())
    # the caps were reached (so they did act), each system at its own cap
    assert torch.allclose(longest.max(dim=0).values, caps, rtol=1e-12)
