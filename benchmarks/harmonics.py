"""Direct closed-form spherical harmonics vs e3nn for several degree sets.

    python benchmarks/harmonics.py --n 100000 --repeats 20 --threads 1

For each degree set: milliseconds per call on ``--n`` random directions (float32 unless
``--dtype float64``) for equicat's direct harmonics (``DirectHarmonics``, each degree on its
own), e3nn's ``o3.spherical_harmonics(degrees, ...)`` (a recursion through every degree up to
``max(degrees)``) and equicat's recursive ``spherical_harmonics(max(degrees))``; the cost per
requested degree; and ``e3nn / direct``. Median of ``--repeats`` timed calls after two
warm-ups. Rows are also written to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from e3nn import o3

from equicat.so3 import spherical_harmonics
from equicat.so3.harmonics_direct import DirectHarmonics

SETS = [[0, 1, 2], [0, 3, 4, 5, 6], list(range(7)), [0, 1, 2, 3, 4], [6], [10], list(range(11))]


def _time(fn, repeats: int) -> float:
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--out", default="runs/bench_harmonics/harmonics.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    vec = torch.randn(args.n, 3, generator=torch.Generator().manual_seed(0)).to(dtype)
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.2f}; timings are noisy", file=sys.stderr)
    rows = []
    header = (f"{'degrees':<36}{'direct ms':>10}{'ms/deg':>8}{'e3nn ms':>9}{'ms/deg':>8}"
              f"{'recur ms':>9}{'e3nn/direct':>12}")  # fmt: skip
    print(header)
    for degrees in SETS:
        module = DirectHarmonics(degrees)
        direct = _time(lambda m=module: m(vec), args.repeats)
        e3 = _time(lambda d=degrees: o3.spherical_harmonics(d, vec, True, "component"),
                   args.repeats)  # fmt: skip
        recur = _time(lambda d=degrees: spherical_harmonics(max(d), vec), args.repeats)
        k = len(degrees)
        row = dict(degrees=degrees, direct_ms=direct, direct_ms_per_degree=direct / k,
                   e3nn_ms=e3, e3nn_ms_per_degree=e3 / k, recursive_ms=recur,
                   e3nn_over_direct=e3 / direct)  # fmt: skip
        rows.append(row)
        print(f"{str(degrees):<36}{direct:>10.2f}{direct / k:>8.2f}{e3:>9.2f}{e3 / k:>8.2f}"
              f"{recur:>9.2f}{e3 / direct:>12.2f}")  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(
        n=args.n,
        dtype=args.dtype,
        threads=args.threads,
        repeats=args.repeats,
        torch=str(torch.__version__),
        machine=platform.machine(),
        load_average=load,
    )
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
