"""Overhead of the chi controller on a training step of the tutorial model (dvs-digits-sized input).

Runs the same step without a controller, with ChiController(every=10) and with every=1, interleaved, and
prints the median step time and the overhead relative to no controller. Target: under 5% at every=10.

    python benchmarks/bench_chi.py [--T 8] [--batch 64] [--repeats 30] [--signal neurons|weights]
"""
from __future__ import annotations

import argparse
import statistics
import time
from types import SimpleNamespace

import torch

import snnlab
from snnlab.chi import ChiController
from snnlab.models import TutorialSNN


def make_step(model, x, y, controller):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    state = SimpleNamespace(model=model, optimizer=opt, epoch=1, step=0, log={}, config=SimpleNamespace(out_dir=None))
    if controller is not None:
        controller.on_fit_start(state)

    def step():
        loss = snnlab.losses.sdt_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        if controller is not None:
            controller.on_after_backward(state)
        opt.step()
        if controller is not None:
            controller.on_step_end(state)

    return step


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
    steps = {}
    for name, every in (("no controller", None), ("every=10", 10), ("every=1", 1)):
        torch.manual_seed(0)
        model = TutorialSNN((2, 24, 24), 10)
        ctrl = None if every is None else ChiController(target=0.3, every=every, signal=a.signal)
        steps[name] = make_step(model, x, y, ctrl)
    for s in steps.values():
        s(), s()
    times = {k: [] for k in steps}
    for _ in range(a.repeats):
        for k, s in steps.items():
            t0 = time.perf_counter()
            s()
            times[k].append(time.perf_counter() - t0)
    base = statistics.median(times["no controller"])
    print(f"chi controller overhead, tutorial model, T={a.T}, batch={a.batch}, signal={a.signal}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {a.repeats} interleaved steps")
    for k, ts in times.items():
        m = statistics.median(ts)
        print(f"  {k:14s} median {1000 * m:7.1f} ms   overhead {100 * (m / base - 1):+5.1f}%")


if __name__ == "__main__":
    main()
