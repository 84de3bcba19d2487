"""BPTT memory of TET's VGGSNN at T = 10: fused LIF (``backend="fused"``) vs the unrolled reference loop.

The model is ``snnlab.paper_models.VGGSNN`` on CIFAR10-DVS-sized frames ``[T, B, 2, 48, 48]`` (8 conv-BN-LIF
blocks, 4 poolings, the classifier and its output neuron), all neurons TET's LIF (tau 0.5, hard reset, triangle),
the same weights for both backends.

Two measurements:

* saved for backward (default, exact and deterministic): ``snnlab.memory.saved_tensor_bytes``, the bytes of the
  distinct storages autograd keeps from the forward pass for the backward pass, in the whole model and inside
  the LIF modules. This is BPTT's activation memory, what grows with T and B.
* ``--rss``: the growth of the peak resident set size over one training step (forward, SDT loss, backward), each
  backend in its own fresh subprocess. What the OS sees; allocator-dependent and somewhat noisy.

    python benchmarks/bench_fused_memory.py                  # T = 10, B = 4
    python benchmarks/bench_fused_memory.py --batch 8 --rss
    python benchmarks/bench_fused_memory.py --tiny           # seconds: a smoke test
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

import torch

from snnlab import losses
from snnlab.memory import saved_tensor_bytes
from snnlab.neurons import LIF
from snnlab.paper_models import VGGSNN

BACKENDS = ("reference", "fused")


def build(backend: str, size: int, seed: int = 0) -> VGGSNN:
    torch.manual_seed(seed)
    return VGGSNN((2, size, size), 10, neuron=lambda: LIF(backend=backend))


def frames(T: int, batch: int, size: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (torch.rand(T, batch, 2, size, size, generator=g) < 0.1).float()  # sparse event frames


def saved(T: int, batch: int, size: int) -> dict:
    x = frames(T, batch, size)
    return {b: dict(zip(("total", "in_lif"), saved_tensor_bytes(build(b, size), x))) for b in BACKENDS}


def _status_bytes(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return None


def _peak_rss_child(backend: str, T: int, batch: int, size: int) -> None:
    """In a fresh process: peak RSS growth (bytes) over one training step, printed as JSON.

    Linux: the peak (VmHWM) is reset to the current RSS just before the step (``/proc/self/clear_refs``); the
    growth is the peak after the step minus the RSS before. ``ru_maxrss`` is not used where avoidable: a child
    inherits its parent's value across fork and exec."""
    torch.set_num_threads(1)
    model, x = build(backend, size), frames(T, batch, size)
    y = torch.arange(batch) % 10
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before, peak = _status_bytes("VmRSS"), lambda: _status_bytes("VmHWM")
    except OSError:
        before = None
    if before is None:
        before, peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                        lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    losses.sdt_loss(model(x), y).backward()
    print(json.dumps({"rss_growth": peak() - before}))


def peak_rss(T: int, batch: int, size: int) -> dict:
    out = {}
    for b in BACKENDS:
        r = subprocess.run([sys.executable, __file__, "--child", b, "--T", str(T), "--batch", str(batch),
                            "--size", str(size)], capture_output=True, text=True, check=True)
        out[b] = json.loads(r.stdout.strip().splitlines()[-1])["rss_growth"]
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--T", type=int, default=10, help="time steps (default 10)")
    p.add_argument("--batch", type=int, default=4, help="batch size (default 4)")
    p.add_argument("--size", type=int, default=48, help="frame height = width (default 48, >= 16)")
    p.add_argument("--rss", action="store_true", help="also the peak RSS growth of a training step, per backend")
    p.add_argument("--tiny", action="store_true", help="T = 2, B = 1, 16x16 frames: a smoke test")
    p.add_argument("--child", choices=BACKENDS, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.tiny:
        a.T, a.batch, a.size = 2, 1, 16
    if a.T < 1 or a.batch < 1 or a.size < 16:
        p.error(f"--T and --batch must be >= 1 and --size >= 16, got {a.T}, {a.batch}, {a.size}")
    if a.child:
        _peak_rss_child(a.child, a.T, a.batch, a.size)
        return {}
    res = {"T": a.T, "batch": a.batch, "size": a.size, "saved": saved(a.T, a.batch, a.size)}
    s = res["saved"]
    res["ratio_total"] = s["fused"]["total"] / s["reference"]["total"]
    res["ratio_in_lif"] = s["fused"]["in_lif"] / s["reference"]["in_lif"]
    mib = 2.0 ** 20
    print(f"## VGGSNN BPTT memory, input [T={a.T}, B={a.batch}, 2, {a.size}, {a.size}], torch {torch.__version__}")
    print("| | reference (MiB) | fused (MiB) | fused / reference |")
    print("|---|---|---|---|")
    print(f"| saved for backward, whole model | {s['reference']['total'] / mib:.1f} | {s['fused']['total'] / mib:.1f} "
          f"| {res['ratio_total']:.3f} |")
    print(f"| saved for backward, in the LIFs | {s['reference']['in_lif'] / mib:.1f} | "
          f"{s['fused']['in_lif'] / mib:.1f} | {res['ratio_in_lif']:.3f} |")
    if a.rss:
        r = peak_rss(a.T, a.batch, a.size)
        res["rss"] = r
        res["ratio_rss"] = r["fused"] / r["reference"] if r["reference"] > 0 else float("nan")
        print(f"| peak RSS growth, one training step | {r['reference'] / mib:.1f} | {r['fused'] / mib:.1f} | "
              f"{res['ratio_rss']:.3f} |")
    return res


if __name__ == "__main__":
    main()
