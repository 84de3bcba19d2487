"""Cost of a loss landscape and of the sharpness measure (snnlab.landscape) on the tutorial model.

Trains TutorialSNN on digits (T=4) for a few epochs, then times on a fixed set of 2 batches x 128 samples:

* one 21x21 2-D surface (441 points, 2 forward passes each) -- target: under 2 minutes on a 2-core CPU,
* ``compare_landscapes`` of the minimum under both losses (SDT and TET) in one pass (same forwards),
* the top Hessian eigenvalue by power iteration (double backward through LIF + triangle surrogate).

Each is timed with torch's default intra-op thread count and with 1 thread (``landscape.limit_threads``):
on a small CPU shared with other processes, OpenMP spin-waits make the default far slower (see the
``limit_threads`` docstring).

    python benchmarks/bench_landscape.py [--resolution 21] [--epochs 3] [--iters 20] [--threads default,1]
"""
from __future__ import annotations

import argparse
import os
import time
from functools import partial

import numpy as np
import torch

from snnlab import data, landscape
from snnlab.losses import sdt_loss, tet_loss
from snnlab.train import TrainConfig, fit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=int, default=21)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--n-batches", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", default="1,default", help="comma list of thread counts to time ('default' = torch's)")
    args = ap.parse_args()

    default_threads = torch.get_num_threads()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {default_threads} default threads, {os.cpu_count()} CPUs, load avg {load:.2f}")

    t0 = time.perf_counter()
    with landscape.limit_threads(1):
        hist = fit(TrainConfig(dataset="digits", T=4, epochs=args.epochs, lr=1e-2, progress=False, device="cpu"))
    model = hist.model.cpu()
    print(f"trained TutorialSNN {args.epochs} epochs in {time.perf_counter() - t0:.1f} s: "
          f"test acc {hist.last.get('test_acc', float('nan')):.3f}")

    bundle = data.load("digits")
    batches = landscape.fixed_batches(bundle, T=4, n_batches=args.n_batches, batch_size=args.batch_size)
    n = args.resolution
    axis = np.linspace(-1.0, 1.0, n)
    d1, d2 = landscape._two_directions(model, 0)
    tet = partial(tet_loss, lamb=0)

    summary = []
    for spec in args.threads.split(","):
        k = default_threads if spec.strip() == "default" else int(spec)
        with landscape.limit_threads(k):
            # one warm-up forward so the first timed point does not pay the allocator / kernel setup
            landscape.loss_at(model, batches, sdt_loss)
            t = time.perf_counter()
            Z = landscape.loss_surface_2d(model, batches, sdt_loss, d1, d2, axis, axis, progress=False)
            t_grid = time.perf_counter() - t
            t = time.perf_counter()
            res = landscape.compare_landscapes({"SDT-trained": model}, batches, {"L_SDT": sdt_loss, "L_TET": tet},
                                               span=1.0, resolution=n, progress=False)
            t_cmp = time.perf_counter() - t
            assert np.array_equal(res["surfaces"][("SDT-trained", "L_SDT")], Z)
            t = time.perf_counter()
            lam, h = landscape.top_hessian_eigenvalue(model, batches, sdt_loss, iters=args.iters)
            t_hess = time.perf_counter() - t
        print(f"[{k} thread{'s' if k > 1 else ''}] {n}x{n} grid ({n * n} points x {len(batches)} batches of "
              f"{args.batch_size}): {t_grid:.1f} s ({1e3 * t_grid / (n * n):.1f} ms/point); "
              f"L_min {Z.min():.4f}, L(0,0) {Z[n // 2, n // 2]:.4f}, L_max {Z.max():.4f}")
        print(f"[{k} thread{'s' if k > 1 else ''}] compare_landscapes, 2 losses on one grid: {t_cmp:.1f} s")
        print(f"[{k} thread{'s' if k > 1 else ''}] top Hessian eigenvalue {lam:.5g} after {len(h)} HVPs "
              f"in {t_hess:.1f} s ({t_hess / len(h):.2f} s/iteration); history "
              + ", ".join(f"{v:.4g}" for v in h))
        summary.append(f"{k} thread{'s' if k > 1 else ''}: {t_grid:.1f} s {'MET' if t_grid < 120 else 'MISSED'}")
    print(f"target ({n}x{n} grid < 120 s): " + "; ".join(summary))


if __name__ == "__main__":
    main()
