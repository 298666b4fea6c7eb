from __future__ import annotations

import numpy as np
import pytest

from equicat.train.references import (
    compute_normalization,
    element_energy_table,
    fit_element_references,
    reference_energy,
)

TRUE = {1: -3.4, 6: -7.1, 8: -4.9, 29: -0.3, 78: 0.8}


def synthetic(n: int, seed: int, noise: float = 0.0):
    rng = np.random.default_rng(seed)
    elements = np.array(sorted(TRUE))
    numbers = [rng.choice(elements, size=rng.integers(3, 30)) for _ in range(n)]
    energies = [reference_energy(z, TRUE) + noise * rng.normal() * len(z) for z in numbers]
    return numbers, energies


def test_fit_recovers_known_element_energies():
    numbers, energies = synthetic(40, 0)
    refs = fit_element_references(numbers, energies)
    assert list(refs) == sorted(TRUE)
    for z, e in TRUE.items():
        assert refs[z] == pytest.approx(e, abs=1e-9)


def test_fit_is_least_squares_under_noise():
    numbers, energies = synthetic(400, 1, noise=0.01)
    refs = fit_element_references(numbers, energies)
    for z, e in TRUE.items():
        assert refs[z] == pytest.approx(e, abs=0.02)
    # the residual is orthogonal to every composition column (normal equations)
    resid = np.array(
        [e - reference_energy(z, refs) for z, e in zip(numbers, energies, strict=True)]
    )
    counts = np.array([[np.sum(z == el) for el in sorted(TRUE)] for z in numbers])
    np.testing.assert_allclose(counts.T @ resid, 0.0, atol=1e-8)


def test_fit_rejects_mismatched_input():
    with pytest.raises(ValueError, match="one energy per structure"):
        fit_element_references([np.array([1, 1])], [1.0, 2.0])


def test_normalization_statistics():
    numbers, energies = synthetic(50, 2, noise=0.05)
    refs = fit_element_references(numbers, energies)
    rng = np.random.default_rng(3)
    forces = [rng.normal(0.0, 0.3, (len(z), 3)) for z in numbers]
    norm = compute_normalization(numbers, energies, forces, refs)
    per_atom = [
        (e - reference_energy(z, refs)) / len(z) for z, e in zip(numbers, energies, strict=True)
    ]
    assert norm.energy_std == pytest.approx(np.std(per_atom))
    assert norm.force_rms == pytest.approx(np.sqrt(np.mean(np.concatenate(forces) ** 2)))
    assert norm.scale == norm.force_rms
    zero = compute_normalization(numbers, energies, [np.zeros((len(z), 3)) for z in numbers], refs)
    assert zero.scale == zero.energy_std


def test_element_energy_table_is_indexed_by_atomic_number():
    table = element_energy_table({8: -4.9, 1: -3.4})
    assert len(table) == 9 and table[1] == -3.4 and table[8] == -4.9 and table[6] == 0.0
    assert element_energy_table({}) == ()
