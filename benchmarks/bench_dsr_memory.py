"""Memory and time of one training step: DSR vs surrogate-gradient BPTT, tutorial model, dvs-digits-sized input.

A surrogate-gradient LIF (``snnlab.models.TutorialSNN``, BPTT) keeps, for every time step, the tensors its
backward needs through time (membrane, surrogate inputs, reset products). A DSR layer (``snnlab.dsr``) runs its
recurrence without a graph and keeps two boolean masks of shape ``[B, ...]`` -- independent of T. The
convolutions, BatchNorms and pools keep the same ``[T*B, ...]`` tensors in both.

Memory is counted deterministically: every tensor autograd saves during the forward pass goes through
``torch.autograd.graph.saved_tensors_hooks``; we sum the bytes of the distinct storages, in total and for the
part saved inside the spiking-neuron modules. Optionally (``--rss``) each configuration also runs in its own
subprocess and reports the growth of the peak resident set size (``resource.getrusage``) over one step: noisy,
allocator-dependent, but what the OS sees.

    python benchmarks/bench_dsr_memory.py [--T 5 10 20] [--batch 32] [--repeats 7] [--threads 1] [--rss]
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

from snnlab import losses
from snnlab.memory import saved_tensor_bytes as saved_bytes
from snnlab.dsr_models import DSRTutorialSNN
from snnlab.models import TutorialSNN

SHAPE = (2, 24, 24)
MODELS = {
    "surrogate LIF (BPTT)": lambda: TutorialSNN(SHAPE, 10),
    "DSR LIF": lambda: DSRTutorialSNN(SHAPE, 10, neuron="lif"),
    "DSR IF": lambda: DSRTutorialSNN(SHAPE, 10, neuron="if"),
}


def batch(T: int, B: int):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(T, B, *SHAPE, generator=g) < 0.1).float()  # sparse event frames
    y = torch.randint(0, 10, (B,), generator=g)
    return x, y


def make_step(model, x, y):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step():
        loss = losses.sdt_loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def child(name: str, T: int, B: int) -> None:
    """Run in a fresh process: peak-RSS growth over the first training step (model and data built before).

    On Linux the peak (VmHWM) is reset to the current RSS first (``/proc/self/clear_refs``), so importing torch
    does not mask the step's peak; elsewhere ``ru_maxrss`` is used (then the growth can read 0).
    """
    torch.manual_seed(0)
    model = MODELS[name]()
    x, y = batch(T, B)
    step = make_step(model, x, y)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before, field = _status_kib("VmRSS"), "VmHWM"
    except OSError:
        before, field = None, None
    if before is None:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step()
    after = _status_kib(field) if field else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rss_kib": after - before}))


def rss_delta(name: str, T: int, B: int, threads: int) -> float:
    cmd = [sys.executable, __file__, "--child", name, "--T", str(T), "--batch", str(B), "--threads", str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["rss_kib"] / 1024


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--T", type=int, nargs="+", default=[5, 10, 20])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=1, help="intra-op threads (1: stable on shared cores)")
    p.add_argument("--rss", action="store_true", help="also measure peak-RSS growth in a subprocess per config")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.child:
        child(a.child, a.T[0], a.batch)
        return

    print(f"one training step (forward + backward + SGD), tutorial model, input [T, {a.batch}, 2, 24, 24], "
          f"cpu, torch {torch.__version__}, {a.threads} thread(s); median of {a.repeats} steps")
    head = f"{'T':>3}  {'model':22s} {'saved MiB':>10} {'in neurons':>11} {'step ms':>9}"
    print(head + ("  peak-RSS growth MiB" if a.rss else ""))
    for T in a.T:
        x, y = batch(T, a.batch)
        rows = {}
        for name, build in MODELS.items():
            torch.manual_seed(0)
            model = build()
            total, inside = saved_bytes(model, x)
            step = make_step(model, x, y)
            step(), step()  # warm-up
            rows[name] = [total, inside, model, step, []]
        for _ in range(a.repeats):  # interleaved: a noisy neighbour slows all alike
            for r in rows.values():
                t0 = time.perf_counter()
                r[3]()
                r[4].append(time.perf_counter() - t0)
        for name, (total, inside, _, _, ts) in rows.items():
            line = (f"{T:>3}  {name:22s} {total / 2**20:>10.2f} {inside / 2**20:>11.2f} "
                    f"{1000 * statistics.median(ts):>9.1f}")
            if a.rss:
                line += f"  {rss_delta(name, T, a.batch, a.threads):>10.1f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
