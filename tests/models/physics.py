"""Reusable physics checks for equicat models (a function version of nequip's model test mixin).

Every check takes a model (anything with ``.cutoff``, ``.max_neighbors`` and
``forward(graph, compute_stress) -> {"energy", "forces", "stress"?}``) and ASE structures, runs
in float64, and returns the errors it measured so that callers can bound and report them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from torch import Tensor, nn

from equicat.data import AtomicGraph
from equicat.models.equiformer_v2 import EquiformerV2, EquiformerV2Config
from equicat.so3 import GridMLP, SeparableS2Activation

DTYPE = torch.float64

# a small EquiformerV2 with every block present (~0.05 s per structure on a CPU core); the
# divisors avg_degree / avg_num_nodes are set so that energies and forces are O(1)
SMALL = dict(
    num_layers=2, lmax=2, mmax=1, sphere_channels=16, attn_hidden_channels=8, num_heads=2,
    attn_alpha_channels=4, attn_value_channels=4, ffn_hidden_channels=16, edge_channels=16,
    num_distance_basis=32, cutoff=5.0, max_neighbors=None, grid_resolution=18,
    avg_degree=8.0, avg_num_nodes=4.0,
)  # fmt: skip


def perturb_parameters(model: nn.Module, scale: float, seed: int) -> nn.Module:
    """Add ``scale * N(0, 1)`` to every parameter, so no gain is 1 and no bias is 0."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, dtype=p.dtype, generator=gen))
    return model


def small_equiformer(seed: int = 0, **overrides) -> EquiformerV2:
    """A float64 :data:`SMALL` EquiformerV2 with randomly perturbed weights, in eval mode."""
    torch.manual_seed(seed)
    model = EquiformerV2(EquiformerV2Config(**{**SMALL, **overrides})).double().eval()
    return perturb_parameters(model, 0.3, seed)


def linearize_grid_nonlinearities(model: nn.Module) -> nn.Module:
    """Make a model exactly equivariant by taking the non-linearity out of its sphere grids.

    Each :class:`SeparableS2Activation` keeps SiLU on its invariants but maps the other
    degrees through ``from_grid(to_grid(x))`` unchanged; each :class:`GridMLP` applies only
    its first (channel-mixing, linear) layer on the grid. Both still exercise the grid
    transforms, frames and Wigner matrices, and are equivariant up to round-off (given grids
    of at least ``2 lmax + 1`` points per angle), so every symmetry of the result holds to
    ~1e-12 in float64.
    """
    for module in model.modules():
        if isinstance(module, SeparableS2Activation):
            grid = module.grid

            def act(scalars: Tensor, x: Tensor, grid=grid) -> Tensor:
                out = grid.from_grid(grid.to_grid(x))
                return torch.cat((F.silu(scalars)[:, None], out[:, 1:]), dim=1)

            module.forward = act
        elif isinstance(module, GridMLP):
            grid, first = module.grid, module.mlp[0]

            def mlp(x: Tensor, grid=grid, first=first) -> Tensor:
                return grid.from_grid(first(grid.to_grid(x)))

            module.forward = mlp
    return model


# --- evaluation -------------------------------------------------------------------------


def graph_of(model, atoms: Atoms | Sequence[Atoms]) -> AtomicGraph:
    """float64 graph with the model's cutoff and neighbour cap."""
    return AtomicGraph.from_atoms(atoms, model.cutoff, model.max_neighbors, dtype=DTYPE)


def predict(model, atoms, stress: bool = False) -> dict[str, Tensor]:
    """Detached model outputs for one structure (or a list, as one batch)."""
    out = model(graph_of(model, atoms), compute_stress=stress)
    return {k: v.detach() for k, v in out.items()}


def transform(atoms: Atoms, rotation: np.ndarray, shift: np.ndarray) -> Atoms:
    """``r -> R r + t`` on positions and (rigidly, without the shift) on the cell vectors."""
    out = atoms.copy()
    out.positions = atoms.positions @ rotation.T + shift
    out.set_cell(atoms.cell.array @ rotation.T, scale_atoms=False)
    return out


def random_rotation(seed: int) -> np.ndarray:
    """A random proper rotation (QR of a Gaussian matrix, det = +1)."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _rel(got: Tensor, want: Tensor) -> float:
    return float((got - want).abs().max() / want.abs().max().clamp_min(1e-300))


def symmetry_errors(model, atoms: Atoms, rotation: np.ndarray, shift: np.ndarray) -> dict:
    """Errors of ``E(Rr+t) = E(r)``, ``F(Rr+t) = R F(r)``, ``S' = R S R^T``.

    ``energy``: relative to ``|E|``; ``energy_per_atom``: absolute, eV/atom (the relative
    error is ill-conditioned for a random model whose energy happens to be near 0); forces
    and stress: relative to their largest component.
    """
    stress = getattr(model, "conservative", False) and bool(atoms.pbc.all())
    ref = predict(model, atoms, stress)
    new = predict(model, transform(atoms, rotation, shift), stress)
    rot = torch.from_numpy(rotation)
    errors = {
        "energy": _rel(new["energy"], ref["energy"]),
        "energy_per_atom": float((new["energy"] - ref["energy"]).abs().max()) / len(atoms),
        "forces": _rel(new["forces"], ref["forces"] @ rot.T),
    }
    if stress:
        errors["stress"] = _rel(new["stress"][0], rot @ ref["stress"][0] @ rot.T)
    return errors


def permutation_errors(model, atoms: Atoms, seed: int) -> dict:
    """Relative errors of ``E(P r) = E(r)`` and ``F(P r) = P F(r)`` for a random permutation."""
    perm = np.random.default_rng(seed).permutation(len(atoms))
    ref, new = predict(model, atoms), predict(model, atoms[perm])
    return {
        "energy": _rel(new["energy"], ref["energy"]),
        "forces": _rel(new["forces"], ref["forces"][torch.from_numpy(perm)]),
    }


def batch_errors(model, structures: Sequence[Atoms], stress: bool = False) -> dict:
    """Largest difference between one batched call and one call per structure."""
    batched = predict(model, list(structures), stress)
    single = [predict(model, a, stress) for a in structures]
    errors = {
        "energy": _rel(batched["energy"], torch.cat([s["energy"] for s in single])),
        "forces": _rel(batched["forces"], torch.cat([s["forces"] for s in single])),
    }
    if stress:
        errors["stress"] = _rel(batched["stress"], torch.cat([s["stress"] for s in single]))
    return errors


# --- derivatives ------------------------------------------------------------------------


def _energy(model, graph: AtomicGraph, positions: Tensor, cell: Tensor) -> float:
    """Energy with the graph's edges kept fixed (derivatives of the model, not of the list)."""
    return float(model(graph.with_positions(positions, cell))["energy"].detach().sum())


def central_difference(f: Callable[[float], float], h: float) -> float:
    """``f'(0)`` from central differences at ``h`` and ``h/2``, Richardson-extrapolated.

    Error ``O(h^4)`` instead of ``O(h^2)``: with ``h = 1e-4`` the truncation error is far
    below the tolerances used, so a mismatch means a wrong derivative, not a coarse step.
    """
    d_h = (f(h) - f(-h)) / (2 * h)
    d_half = (f(h / 2) - f(-h / 2)) / h
    return (4 * d_half - d_h) / 3


def directional_force_errors(model, atoms: Atoms, num_directions: int = 3, h: float = 1e-4,
                             seed: int = 0) -> list[tuple[float, float]]:  # fmt: skip
    """``(-F . U, d/dt E(r + t U))`` for random unit displacement fields ``U``."""
    graph = graph_of(model, atoms)
    forces = model(graph)["forces"].detach()
    gen = torch.Generator().manual_seed(seed)
    pairs = []
    for _ in range(num_directions):
        u = torch.randn(graph.positions.shape, dtype=DTYPE, generator=gen)
        u = u / u.norm()
        slope = central_difference(
            lambda t, u=u: _energy(model, graph, graph.positions + t * u, graph.cell), h
        )
        pairs.append((float(-(forces * u).sum()), slope))
    return pairs


def finite_difference_forces(model, atoms: Atoms, h: float = 1e-4) -> Tensor:
    """``[N, 3]`` finite-difference ``-dE/dr`` with fixed edges."""
    graph = graph_of(model, atoms)
    out = torch.zeros(graph.positions.shape, dtype=DTYPE)
    for i in range(graph.num_atoms):
        for k in range(3):
            step = torch.zeros_like(graph.positions)
            step[i, k] = 1.0
            out[i, k] = -central_difference(
                lambda t, s=step: _energy(model, graph, graph.positions + t * s, graph.cell), h
            )
    return out


def finite_difference_stress(model, atoms: Atoms, h: float = 1e-5) -> Tensor:
    """``[3, 3]`` ``(1/V) dE/d eps_ij`` for ``r -> r (I + eps)``, cell likewise, fixed edges."""
    graph = graph_of(model, atoms)
    volume = abs(float(torch.linalg.det(graph.cell[0])))
    out = torch.zeros(3, 3, dtype=DTYPE)
    for i in range(3):
        for j in range(3):
            unit = torch.zeros(3, 3, dtype=DTYPE)
            unit[i, j] = 1.0

            def energy(t: float, unit=unit) -> float:
                deform = torch.eye(3, dtype=DTYPE) + t * unit
                return _energy(model, graph, graph.positions @ deform, graph.cell @ deform)

            out[i, j] = central_difference(energy, h) / volume
    return out


class ModelCalculator(Calculator):
    """Minimal test-only ASE calculator (for ``ase.stress.calculate_numerical_stress``)."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        out = predict(self.model, self.atoms, stress="stress" in properties)
        self.results["energy"] = self.results["free_energy"] = float(out["energy"][0])
        self.results["forces"] = out["forces"].numpy()
        if "stress" in out:
            s = out["stress"][0].numpy()
            self.results["stress"] = s.flat[[0, 4, 8, 5, 2, 1]]  # Voigt xx yy zz yz xz xy


def ase_numerical_stress(model, atoms: Atoms, eps: float = 1e-5) -> np.ndarray:
    """``[3, 3]`` stress from ASE's own finite-difference routine (symmetric strains)."""
    atoms = atoms.copy()
    atoms.calc = ModelCalculator(model)
    try:
        from ase.calculators.fd import calculate_numerical_stress
    except ImportError:  # ase < 3.24
        return atoms.calc.calculate_numerical_stress(atoms, d=eps, voigt=False)
    return calculate_numerical_stress(atoms, eps=eps, voigt=False)


# --- assertions (for any model; tolerances in the units of the errors above) -------------


def assert_rotation_equivariance(model, atoms: Atoms, tol: float, seeds=(1, 2)) -> dict:
    """Energy invariant, forces (and stress) equivariant under random rotations + a shift."""
    worst: dict[str, float] = {}
    for seed in seeds:
        shift = np.random.default_rng(seed).normal(size=3)
        for k, v in symmetry_errors(model, atoms, random_rotation(seed), shift).items():
            worst[k] = max(worst.get(k, 0.0), v)
    assert max(worst.values()) < tol, worst
    return worst


def assert_permutation_equivariance(model, atoms: Atoms, tol: float = 1e-11) -> None:
    """Energy invariant and forces permuted under a relabelling of the atoms."""
    errors = permutation_errors(model, atoms, seed=3)
    assert max(errors.values()) < tol, errors


def assert_batch_consistency(model, structures: Sequence[Atoms], stress: bool = False,
                             tol: float = 1e-11) -> None:  # fmt: skip
    """One batched call equals one call per structure."""
    errors = batch_errors(model, structures, stress)
    assert max(errors.values()) < tol, errors


def assert_conservative_forces(model, atoms: Atoms, rtol: float = 1e-8) -> None:
    """Forces equal -dE/dr along random displacement fields (Richardson FD, h = 1e-4)."""
    for analytic, numeric in directional_force_errors(model, atoms):
        assert abs(analytic - numeric) < rtol * max(1.0, abs(numeric)), (analytic, numeric)
