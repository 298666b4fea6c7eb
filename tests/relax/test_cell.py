"""Cell relaxation: our batched FIRE / L-BFGS with the Frechet cell filter against ase's
optimizers on ``ase.filters.FrechetCellFilter``, the cell forces against finite differences,
the cell-aware neighbour list, and the errors."""

from __future__ import annotations

import json

import ase.io
import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.filters import FrechetCellFilter
from ase.units import GPa

from equicat import checkpoints
from equicat.calculators import EquiCatCalculator
from equicat.cli.main import main
from equicat.data import AtomicGraph
from equicat.relax import AsePotential, ModelPotential, NeighborList, relax, relax_many
from equicat.relax.cell import GPA, cell_forces, new_cell_filter

from .systems import model, predictor
from .test_vs_ase import ASE

FMAX = 5e-3  # eV/Å, and eV on the cell rows


def strained(element: str, seed: int, strain: float = 0.03) -> object:
    """A 2x1x1 cubic fcc cell of ``element`` under a random strain, atoms rattled (8 atoms)."""
    a0 = {"Cu": 3.7, "Al": 4.1}[element]
    atoms = bulk(element, "fcc", a=a0, cubic=True).repeat((2, 1, 1))
    rng = np.random.default_rng(seed)
    atoms.set_cell(
        atoms.cell.array @ (np.eye(3) + strain * rng.standard_normal((3, 3))), scale_atoms=True
    )
    atoms.rattle(0.05, seed=seed)
    return atoms


def ase_cell_relax(atoms, calc, optimizer, fmax, steps=1000, **filter_kwargs):
    cls, kwargs = ASE[optimizer]
    atoms = atoms.copy()
    atoms.calc = calc
    opt = cls(FrechetCellFilter(atoms, **filter_kwargs), logfile=None, **kwargs)
    converged = opt.run(fmax=fmax, steps=steps)
    return atoms, opt.nsteps, converged


@pytest.mark.parametrize(
    "optimizer,pressure_gpa,factor",
    [("lbfgs", 0.0, None), ("fire", 0.0, None), ("lbfgs", 5.0, 3.0)],
)
def test_emt_same_path_as_ase(optimizer, pressure_gpa, factor, error_table):
    """Strained bulk cells (three in a queue of two for L-BFGS): the steps and minima of ase's
    optimizer on FrechetCellFilter, in float64 to round-off (the same algorithm)."""
    frames = [strained("Cu", 0), strained("Al", 1)]
    if optimizer == "lbfgs" and pressure_gpa == 0:
        frames.append(strained("Cu", 2))
    extra = {} if factor is None else {"exp_cell_factor": factor}
    ours = relax_many(
        frames, AsePotential(EMT()), batch_size=2, optimizer=optimizer, fmax=FMAX,
        steps=1000, relax_cell=True, pressure=pressure_gpa * GPA, **extra,
    )  # fmt: skip
    for atoms, res in zip(frames, ours, strict=True):
        ref, nsteps, converged = ase_cell_relax(
            atoms, EMT(), optimizer, FMAX, scalar_pressure=pressure_gpa * GPa, **extra
        )
        assert res.converged and converged
        assert res.steps == nsteps
        assert res.energy == pytest.approx(ref.get_potential_energy(), abs=1e-8)
        error_table.append("|dcell| vs ase / Å", np.abs(res.cell - ref.cell.array).max(), 1e-6)
        np.testing.assert_allclose(res.cell, ref.cell.array, atol=1e-6)
        np.testing.assert_allclose(res.positions, ref.positions, atol=1e-6)
        assert np.abs(res.cell - atoms.cell.array).max() > 0.05  # the cell did relax
        # at the minimum the stress balances the pressure: |cell force| ~ V |sigma + p| / c
        bound = 2 * FMAX * (factor or len(atoms)) / ref.get_volume()
        np.testing.assert_allclose(res.stress, -pressure_gpa * GPA * np.eye(3), atol=bound)


def test_cell_forces_are_minus_the_enthalpy_gradient():
    """-dH/dX by central differences of H = E + pV along each log-deformation component."""
    atoms = strained("Cu", 3, strain=0.05)
    atoms.calc = EMT()
    p, c = 2.0 * GPA, 4.0
    cell0, frac = atoms.cell.array.copy(), atoms.get_scaled_positions()
    stress = torch.from_numpy(atoms.get_stress(voigt=False))[None]
    filt = new_cell_filter(
        torch.from_numpy(cell0)[None], stress, torch.tensor([len(atoms)]),
        torch.tensor([c], dtype=torch.float64), torch.tensor([p], dtype=torch.float64),
    )  # fmt: skip
    x0 = np.array([[0.02, 0.01, -0.03], [0.0, -0.02, 0.01], [0.01, 0.03, 0.02]]) * c

    def enthalpy(x):
        f = torch.linalg.matrix_exp(torch.from_numpy(x / c)).numpy()
        a = atoms.copy()
        a.set_cell(cell0 @ f.T, scale_atoms=False)
        a.set_scaled_positions(frac)  # atoms move with the cell: u fixed
        a.calc = EMT()
        return a.get_potential_energy() + p * a.get_volume(), a

    _, moved = enthalpy(x0)
    filt.log_deformation = torch.from_numpy(x0)[None]
    filt.stress = torch.from_numpy(moved.get_stress(voigt=False))[None]
    got = cell_forces(filt, torch.from_numpy(moved.cell.array)[None])[0].numpy()
    h, fd = 1e-4, np.zeros((3, 3))
    for i in range(3):
        for j in range(3):
            d = np.zeros((3, 3))
            d[i, j] = h
            fd[i, j] = -(enthalpy(x0 + d)[0] - enthalpy(x0 - d)[0]) / (2 * h)
    np.testing.assert_allclose(got, fd, atol=1e-6)
    assert np.abs(fd).max() > 1e-2


@pytest.mark.parametrize("strain,stale", [(0.95, False), (0.8, True)])
def test_neighbor_list_under_cell_change(strain, stale):
    """An affine compression: within the rule the candidates still give the fresh graph;
    past it the system is searched again."""
    atoms = bulk("Cu", "fcc", a=3.6).repeat((2, 2, 2))
    atoms.rattle(0.05, seed=1)
    graph = AtomicGraph.from_atoms([atoms], 4.0, dtype=torch.float64)
    nl = NeighborList.build(graph, 4.0, None, skin=0.5)
    t = torch.eye(3, dtype=torch.float64) * strain
    t[0, 1] = 0.02
    moved = graph.with_positions(graph.positions @ t, graph.cell @ t)
    new = nl.update(moved)
    assert int(new.searches[0]) == (2 if stale else 1)
    got = new.select(moved)
    fresh = moved.rebuild_edges(4.0, None)

    def edges(g):
        rows = torch.cat([g.edge_index.T, g.cell_shifts.long()], 1).tolist()
        return set(map(tuple, rows))

    assert edges(got) == edges(fresh) and fresh.num_edges > 0


def test_model_same_path_as_ase():
    """The conservative test model on bulk Cu: 10 L-BFGS steps with cell, neighbour list with
    a skin, against ase's LBFGS on FrechetCellFilter with the calculator (fresh graphs)."""
    pred = predictor()
    start = strained("Cu", 4, strain=0.02)
    potential = ModelPotential.from_predictor(pred)
    (res,) = relax_many(
        [start], potential, fmax=1e-6, steps=10, relax_cell=True, skin=1.0,
        min_curvature=-np.inf,  # every pair stored, as ase does
    )  # fmt: skip
    ref, nsteps, _ = ase_cell_relax(start, EquiCatCalculator(pred), "lbfgs", 1e-6, steps=10)
    assert res.steps == nsteps == 10
    assert res.energy == pytest.approx(ref.get_potential_energy(), abs=1e-8)
    np.testing.assert_allclose(res.cell, ref.cell.array, atol=1e-8)
    np.testing.assert_allclose(res.positions, ref.positions, atol=1e-8)
    assert np.abs(res.cell - start.cell.array).max() > 1e-3


def test_errors():
    direct = ModelPotential(predictor(forces="direct").model)
    with pytest.raises(ValueError, match="only a conservative model"):
        relax_many([strained("Cu", 0)], direct, relax_cell=True)
    cluster = strained("Cu", 0)
    cluster.pbc = False
    with pytest.raises(ValueError, match="needs periodic systems"):
        relax([cluster], EMT(), relax_cell=True, progress=False)


def test_relax_api_writes_cells(tmp_path):
    start = strained("Al", 5)
    (out,) = relax([start], EMT(), relax_cell=True, fmax=0.05, trajectory=tmp_path, progress=False)
    assert out.info["converged"] and np.abs(out.cell.array - start.cell.array).max() > 0.05
    check = out.copy()
    check.calc = EMT()
    assert check.get_potential_energy() == pytest.approx(out.info["energy"], abs=1e-10)
    traj = ase.io.read(tmp_path / "relax_0.traj", ":")
    np.testing.assert_allclose(traj[0].cell.array, start.cell.array, atol=1e-12)
    np.testing.assert_allclose(traj[-1].cell.array, out.cell.array, atol=1e-12)
    np.testing.assert_allclose(traj[-1].positions, out.positions, atol=1e-12)


def test_cli_relax_cell(tmp_path, capsys):
    path, out = tmp_path / "in.extxyz", tmp_path / "out.extxyz"
    ase.io.write(path, [strained("Cu", 6, strain=0.02)])
    args = ["relax", str(path), "--out", str(out), "--dtype", "float64", "--device", "cpu",
            "--steps", "3", "--quiet", "--relax-cell", "--pressure", "1.0"]  # fmt: skip
    ckpt = checkpoints.save(model(), tmp_path / "m.pt")
    assert main([*args, "--checkpoint", str(ckpt)]) == 0
    got = ase.io.read(out)
    assert got.info["steps"] == 3
    assert np.abs(got.cell.array - ase.io.read(path).cell.array).max() > 1e-4
    summary = json.loads(out.with_name("out.summary.json").read_text())
    assert summary["relax_cell"] and summary["pressure_gpa"] == 1.0
    direct = checkpoints.save(model(forces="direct"), tmp_path / "d.pt")
    out.unlink()
    assert main([*args, "--checkpoint", str(direct)]) == 2
    assert "only a conservative model" in capsys.readouterr().err
    assert main([*args[:-3], "--pressure", "1.0", "--checkpoint", str(ckpt)]) == 2
    assert "add --relax-cell" in capsys.readouterr().err
