"""Overhead of the chi controller on a training step of the tutorial model (dvs-digits-sized input).

Runs the same step without a controller, with ChiController(every=10) and with every=1, interleaved, and
prints the median step time and the overhead relative to no controller. Target: under 5% at every=10.

    python benchmarks/bench_chi.py [--T 8] [--batch 64] [--repeats 30] [--signal neurons|weights]
"""
from __future__ import annotations

import argparse
import statistics

import torch

from snnlab import chi
from snnlab.chi import ChiController
from snnlab.models import TutorialSNN


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--T", type=int, default=8)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--signal", default="neurons", choices=("neurons", "weights"))
    a = p.parse_args()
    torch.manual_seed(0)
    x = (torch.rand(a.T, a.batch, 2, 24, 24) < 0.1).float()
    y = torch.randint(0, 10, (a.batch,))
    torch.manual_seed(0)
    model = TutorialSNN((2, 24, 24), 10)
    controllers = {"no controller": None,
                   "every=10": ChiController(target=0.3, every=10, signal=a.signal),
                   "every=1": ChiController(target=0.3, every=1, signal=a.signal)}
    windows = max(1, a.repeats // 10)
    ms = chi.controller_overhead(model, x, y, controllers, steps_per_window=10, windows=windows)
    print(f"chi controller overhead, tutorial model, T={a.T}, batch={a.batch}, signal={a.signal}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {windows} windows of 10 interleaved steps")
    base = ms["no controller"]
    for k, v in ms.items():
        ratio = statistics.median(w / b for w, b in zip(v, base))
        print(f"  {k:14s} median {statistics.median(v):7.1f} ms   overhead {100 * (ratio - 1):+5.1f}% (median over windows)")


if __name__ == "__main__":
    main()
