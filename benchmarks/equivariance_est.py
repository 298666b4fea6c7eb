"""EST equivariance vs sampling, in the format of the EST paper's Table 5.

Untrained EST-only networks of 1 to 6 layers (stacks of :class:`equicat.models.est.ESTBlock`,
PyTorch's default initialisation, seed ``--seed``) act on steerable node features of
molecules; for every molecule ``x`` and a random rotation ``R`` (one per molecule, seeded) the
error is

    err_k = mean |f_k(embed(R x)) - D(R) f_k(embed(x))|

(mean over atoms, coefficients and channels, then over molecules), where ``f_k`` is the
first ``k`` blocks of one 6-layer stack (so the k-layer networks are nested) and ``D(R)`` the
Wigner-D matrix. The same weights are evaluated on every point set (no parameter depends on
the points): Fibonacci lattice plain and refined, and the lat-long grid, at matched counts
(100 and 400 points; lat-long 10x10 and 20x20). The ``rel`` table divides by
``mean |f_k(embed(x))|``.

``embed`` is exactly equivariant and fixed (seeded): degree 0 holds a learned embedding of
the element; every degree gets ``sum_j Y(r_ij / |r_ij|) * g(|r_ij|, Z_j)`` over neighbours
within 5 Å, with ``g`` a random linear map of a Gaussian basis (times an element embedding)
per channel and degree, divided by 5. The paper embeds with its own (unspecified) message
layer, so absolute values are not comparable with its table; orderings and trends are.

Molecules: ``--n`` QM9 molecules drawn (seeded) from the first 5,000 (``equicat.data.qm9``,
needs ``qm9pack``); without QM9, ``--n`` rattled molecules from ASE's g2 set. float64.

    python benchmarks/equivariance.py --table est --n 1000     # the paper's count
    python benchmarks/equivariance_est.py --n 50 --threads 1   # a quick run
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.build import molecule
from ase.collections import g2
from torch import Tensor, nn
from tqdm import tqdm

from equicat.models.est import ESTBlock
from equicat.so3 import GaussianBasis, SphericalTransform, WignerD, spherical_harmonics

DTYPE = torch.float64
LAYERS = 6
# label, kind, argument(s)
SAMPLINGS = (
    ("FL / 100, w/o optim.", "fibonacci", (100, False)),
    ("FL / 100, w optim.", "fibonacci", (100, True)),
    ("lat-long / 10x10", "lat_long", (10, 10)),
    ("FL / 400, w/o optim.", "fibonacci", (400, False)),
    ("FL / 400, w optim.", "fibonacci", (400, True)),
    ("lat-long / 20x20", "lat_long", (20, 20)),
)
NETWORK = dict(num_heads=4, head_channels=8, orientation_degree=4, expert_channels=32,
               steerable_experts=1, spherical_experts=1)  # fmt: skip


class Embedding(nn.Module):
    """Exactly equivariant node features ``[N, (L+1)^2, C]`` of one molecule (module doc)."""

    def __init__(self, lmax: int, channels: int, cutoff: float = 5.0, basis: int = 16) -> None:
        super().__init__()
        self.lmax, self.cutoff = lmax, cutoff
        self.element = nn.Embedding(10, channels)
        self.neighbour = nn.Embedding(10, channels)
        self.basis = GaussianBasis(0.0, cutoff, basis, 2.0)
        self.radial = nn.Linear(basis, (lmax + 1) * channels)

    def forward(self, z: Tensor, pos: Tensor) -> Tensor:
        """``z [N]``, ``pos [N, 3]`` Å -> ``[N, (L+1)^2, C]``."""
        n, c = len(z), self.element.embedding_dim
        vec = pos[None, :, :] - pos[:, None, :]  # [N, N, 3], r_j - r_i
        dist = vec.norm(dim=-1)
        mask = (dist < self.cutoff) & (dist > 0)
        i, j = mask.nonzero(as_tuple=True)
        y = spherical_harmonics(self.lmax, vec[i, j])  # [E, n]
        g = self.radial(self.basis(dist[i, j])).view(-1, self.lmax + 1, c)  # [E, L+1, C]
        reps = torch.arange(self.lmax + 1) * 2 + 1
        g = torch.repeat_interleave(g, reps, dim=1) * self.neighbour(z[j])[:, None]  # [E, n, C]
        x = torch.zeros(n, (self.lmax + 1) ** 2, c, dtype=pos.dtype)
        x.index_add_(0, i, y[..., None] * g / 5.0)
        x[:, 0] = x[:, 0] + self.element(z)
        return x


def molecules(n: int, seed: int) -> tuple[list[Atoms], str]:
    """``n`` QM9 molecules (or g2 molecules without qm9pack) and where they came from."""
    rng = np.random.default_rng(seed)
    try:
        from equicat.data.qm9 import load_qm9

        pool = load_qm9(limit=5000)
        source = "QM9 (random draw from the first 5000)"
    except (ImportError, FileNotFoundError) as err:
        print(f"QM9 unavailable ({err}); using ASE g2 molecules", file=sys.stderr)
        pool = [molecule(name) for name in g2.names if len(molecule(name)) > 1]
        source = "ASE g2 (QM9 unavailable)"
    picks = rng.choice(len(pool), size=n, replace=n > len(pool))
    out = []
    for k, idx in enumerate(picks):
        atoms = pool[int(idx)].copy()
        atoms.rattle(0.01, seed=seed * 7919 + k)
        out.append(atoms)
    return out, source


def random_rotations(n: int, seed: int) -> Tensor:
    """``[n, 3, 3]`` random proper rotations (QR of Gaussian matrices, seeded)."""
    gen = torch.Generator().manual_seed(seed + 1)
    q, r = torch.linalg.qr(torch.randn(n, 3, 3, dtype=DTYPE, generator=gen))
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[:, None, :]
    flip = torch.det(q) < 0
    q[flip, :, 0] = -q[flip, :, 0]
    return q


def transform_of(kind: str, args: tuple, lmax: int) -> SphericalTransform:
    """The point set of one table row."""
    if kind == "fibonacci":
        return SphericalTransform.fibonacci(lmax, args[0], refined=args[1])
    return SphericalTransform.lat_long(lmax, *args)


def build_network(lmax: int, channels: int, seed: int) -> tuple[Embedding, list[ESTBlock]]:
    """The fixed embedding and a 6-block stack (default initialisation), float64, eval."""
    torch.manual_seed(seed)
    embed = Embedding(lmax, channels).double().eval()
    t = SphericalTransform.fibonacci(lmax, 100)
    blocks = [ESTBlock(t, lmax, channels, **NETWORK).double().eval() for _ in range(LAYERS)]
    return embed, blocks


@torch.no_grad()
def measure(blocks, embed, data, rotations, wigner) -> dict[str, list[float]]:
    """Per-depth mean |f(Rx) - D f(x)| and mean |f(x)| over molecules."""
    err = np.zeros((len(data), LAYERS))
    size = np.zeros((len(data), LAYERS))
    for m, atoms in enumerate(data):
        z = torch.from_numpy(atoms.numbers % 10)  # H C N O F -> distinct rows of a 10-table
        pos = torch.from_numpy(atoms.positions)
        rot = rotations[m]
        d = wigner.of_rotations(rot[None])[0]  # [n, n]
        x, xr = embed(z, pos), embed(z, pos @ rot.T)
        for k, block in enumerate(blocks):
            x, xr = block(x), block(xr)
            err[m, k] = float((xr - torch.einsum("ij,njc->nic", d, x)).abs().mean())
            size[m, k] = float(x.abs().mean())
    return {"mean_abs_error": err.mean(0).tolist(), "mean_abs_output": size.mean(0).tolist()}


def table(rows: list[dict], n: int, source: str) -> str:
    """Table 5 layout: one row per sampling, one column per depth; absolute then relative."""
    head = f"{'Sampling strategy / number':<26}" + "".join(
        f"{f'{k}-layer':>11}" for k in range(1, LAYERS + 1)
    )
    lines = [
        f"EST-only networks, untrained: mean |f(Rx) - D(R) f(x)| over {n} molecules, {source}",
    ]
    for title, key in (("absolute", None), ("relative to mean |f(x)|", "rel")):
        lines += ["", title, head]
        for r in rows:
            vals = r["mean_abs_error"]
            if key == "rel":
                vals = [e / s for e, s in zip(vals, r["mean_abs_output"], strict=True)]
            lines.append(f"{r['sampling']:<26}" + "".join(f"{v:>11.2e}" for v in vals))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1000, help="molecules (the paper: 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--lmax", type=int, default=3)
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--out", default="runs/bench_equivariance")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    data, source = molecules(a.n, a.seed)
    rotations = random_rotations(a.n, a.seed)
    wigner = WignerD(a.lmax)
    embed, base = build_network(a.lmax, a.channels, a.seed)
    rows = []
    for label, kind, args in SAMPLINGS:
        t = transform_of(kind, args, a.lmax)
        blocks = [b.with_transform(t) for b in base]
        start = time.perf_counter()
        res = measure(blocks, embed, tqdm(data, desc=label, file=sys.stderr), rotations, wigner)
        rows.append({"sampling": label, "points": t.num_points, **res,
                     "seconds": time.perf_counter() - start})  # fmt: skip
    settings = {"n": a.n, "seed": a.seed, "lmax": a.lmax, "channels": a.channels,
                "network": NETWORK, "molecules": source}  # fmt: skip
    path = Path(a.out) / "equivariance_est.json"
    from equivariance import write_json  # same folder; benchmarks are scripts, not a package

    write_json(path, {"settings": settings, "random_weights": True,
                      "torch": str(torch.__version__), "rows": rows})  # fmt: skip
    print(table(rows, a.n, source))
    print(f"\nwritten: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
