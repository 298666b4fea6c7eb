"""SCN: translation/permutation symmetry, batching, determinism, and what the paper says about
rotations (messages with m = 0 are roll-invariant, m in [-1, 1] are not; 4 taps restore
invariance to quarter-turn rolls; the whole model is only approximately rotation-equivariant,
m = 0 and 4 taps closer than 1 tap)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from equicat.models.scn.message import MessageBlock
from equicat.so3 import WignerD

from .physics import (
    assert_batch_consistency,
    assert_conservative_forces,
    assert_permutation_equivariance,
    predict,
    random_rotation,
    symmetry_errors,
)
from .scn_models import VARIANTS, small_scn
from .structures import STRUCTURES


@pytest.fixture(autouse=True)
def _one_thread():
    """Small models: one thread is fastest (and far faster on a loaded machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("structure", ["cu111_co", "cu_bulk"])
def test_translation_and_permutation(structure, variant):
    model, atoms = small_scn(variant), STRUCTURES[structure]()
    errors = symmetry_errors(model, atoms, np.eye(3), np.array([0.7, -1.3, 2.1]))
    assert max(errors.values()) < 1e-10, errors
    assert_permutation_equivariance(model, atoms)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_batched_equals_single(variant):
    structures = [STRUCTURES[k]() for k in sorted(STRUCTURES)]
    assert_batch_consistency(small_scn(variant), structures)


def test_deterministic():
    model, atoms = small_scn("m1_1tap"), STRUCTURES["cu111_co"]()
    a, b = predict(model, atoms), predict(model, atoms)
    assert torch.equal(a["energy"], b["energy"]) and torch.equal(a["forces"], b["forces"])


def _messages(block: MessageBlock, roll: float, seed: int = 0) -> torch.Tensor:
    """Messages of random embeddings on 5 random edges, with every edge frame rolled."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 16, 4, generator=gen, dtype=torch.float64)
    vec = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    edge = torch.randn(5, 8, generator=gen, dtype=torch.float64)
    src, tgt = torch.tensor([0, 1, 2, 3, 0]), torch.tensor([1, 2, 3, 0, 2])
    d = _roll(roll) @ WignerD(3)(vec)  # [E, 16, 16]: the edge frame, rolled about the edge (y)
    return block(x, edge, d, src, tgt)


def _roll(phi: float) -> torch.Tensor:
    c, s = math.cos(phi), math.sin(phi)
    r = torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], dtype=torch.float64)
    return WignerD(3).of_rotations(r[None])


@pytest.mark.parametrize(
    ("mmax", "taps", "roll", "invariant"),
    [(0, 1, 1.234, True), (1, 4, math.pi / 2, True), (1, 4, math.pi, True),
     (1, 1, math.pi / 2, False), (1, 1, 1.234, False), (1, 4, 1.234, False)],
)  # fmt: skip
def test_message_roll_invariance(mmax, taps, roll, invariant):
    """Eqs. 3-9: m = 0 messages ignore the roll of the edge frame; 4 taps make m in [-1, 1]
    messages invariant to quarter-turn rolls, not to arbitrary ones."""
    torch.manual_seed(0)
    block = MessageBlock(3, mmax, taps, channels=4, hidden_channels=16, edge_channels=8).double()
    with torch.no_grad():
        ref, rolled = _messages(block, 0.0), _messages(block, roll)
    err = float((ref - rolled).abs().max() / ref.abs().max())
    assert (err < 1e-12) if invariant else (err > 1e-4), err


def _rotation_error(variant: str, atoms, seeds=(1, 2, 3)) -> dict[str, float]:
    model, worst = small_scn(variant), {}
    for seed in seeds:
        errs = symmetry_errors(model, atoms, random_rotation(seed), np.zeros(3))
        for k, v in errs.items():
            worst[k] = max(worst.get(k, 0.0), v)
    return worst


@pytest.mark.parametrize("structure", ["cu111_co", "ethanol"])
def test_rotation_pattern_of_the_paper(structure, error_table):
    """Table 4: m = 0 and 4-tap much closer to equivariant than 1-tap m in [-1, 1]."""
    atoms = STRUCTURES[structure]()
    errs = {v: _rotation_error(v, atoms) for v in ("m0", "m1_1tap", "m1_4tap")}
    for v, e in errs.items():
        for q in ("energy_per_atom", "forces"):
            error_table.append(f"SCN {v} rotation {q}", e[q], float("nan"))
    for q in ("energy_per_atom", "forces"):
        assert errs["m1_1tap"][q] > 3 * errs["m0"][q], (q, errs)
        assert errs["m1_1tap"][q] > 3 * errs["m1_4tap"][q], (q, errs)


@pytest.mark.parametrize("variant", ["m0", "m1_4tap"])
def test_conservative_forces_are_energy_gradients(variant):
    model = small_scn(variant, forces="conservative")
    assert_conservative_forces(model, STRUCTURES["cu_bulk"](), rtol=1e-7)


def test_sum_aggregation_adds_the_summed_messages():
    """aggregation="sum" (the paper's "No 1x1 conv"): no grid network; a layer's update is
    the sum of the messages arriving at each atom."""
    model = small_scn("m1_sum")
    block = model.blocks[0]
    assert block.aggregate is None
    seen: dict[str, torch.Tensor] = {}
    block.messages[0].register_forward_hook(
        lambda mod, args, out: seen.update(msg=out, tgt=args[4])
    )
    block.register_forward_hook(lambda mod, args, out: seen.update(update=out))
    predict(model, STRUCTURES["cu111_co"]())
    summed = torch.zeros_like(seen["update"]).index_add(0, seen["tgt"], seen["msg"])
    assert seen["update"].abs().max() > 0
    torch.testing.assert_close(seen["update"], summed, rtol=0, atol=0)


@pytest.mark.parametrize("structure", ["cu111_co", "ethanol"])
def test_grid_aggregation_costs_force_equivariance(structure, error_table):
    """Table 4: the 1x1 convolution on the grid gives greater rotational differences for
    forces. With m = 0 messages (exactly equivariant) and sum aggregation, only the
    sphere-sampled output blocks are left to break the symmetry."""
    atoms, errs = STRUCTURES[structure](), {}
    for agg in ("grid", "sum"):
        model, worst = small_scn("m0", aggregation=agg), 0.0
        for seed in (1, 2, 3):
            e = symmetry_errors(model, atoms, random_rotation(seed), np.zeros(3))
            worst = max(worst, e["forces"])
        errs[agg] = worst
        error_table.append(f"SCN m0 {agg} aggregation rotation forces", worst, float("nan"))
    assert errs["grid"] > 3 * errs["sum"], errs


def test_two_band_grid_sees_the_inputs_band_limited_to_degree_l_minus_1():
    """num_bands=2 (section 3.2): 4C grid channels, the last 2C being x and m without their
    degree-L coefficients. With the full-band inputs' weights zeroed, changing degree L of
    x and m must leave the output unchanged; changing degree L - 1 must not."""
    from equicat.models.scn.block import GridConv

    torch.manual_seed(0)
    lmax, c = 3, 4
    conv = GridConv(lmax, c, num_bands=2).double()
    assert conv.fc1.in_features == 4 * c and conv.fc3.out_features == c
    with torch.no_grad():
        conv.fc1.weight[:, : 2 * c] = 0.0  # only the band-limited copies reach the network
    x = torch.randn(3, (lmax + 1) ** 2, c, dtype=torch.float64)
    m = torch.randn(3, (lmax + 1) ** 2, c, dtype=torch.float64)
    top, below = slice(lmax * lmax, None), slice((lmax - 1) ** 2, lmax * lmax)
    with torch.no_grad():
        ref = conv(m, x)
        x2, m2 = x.clone(), m.clone()
        x2[:, top] += 1.0
        m2[:, top] -= 2.0
        torch.testing.assert_close(conv(m2, x2), ref, rtol=0, atol=1e-12)
        x3 = x.clone()
        x3[:, below] += 1.0
        assert (conv(m, x3) - ref).abs().max() > 1e-3
