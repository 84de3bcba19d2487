"""Speed of one training step: snnlab models (fused and reference LIF) vs the same models stepped with snntorch.Leaky.

One training step = forward + backward + Adam update, fp32, loss ``snnlab.losses.sdt_loss``. Two models:

* ``tutorial``: ``snnlab.models.TutorialSNN`` on ``[T, B, 2, 24, 24]`` (default T = 8, B = 64).
* ``vggsnn``: TET's CIFAR10-DVS architecture ``snnlab.paper_models.VGGSNN`` (``snnlab.models.MODELS["vggsnn"]``)
  on ``[T, B, 2, S, S]`` frames (default T = 10, S = 48 as in the paper, B = 2 so that a step stays around a
  second or two on a small CPU; the paper trains with B = 32 on GPUs).

Three rows per model, all with the same initial weights (copies of one built model):

* ``snnlab fused``: the snnlab model, every LIF with ``backend="fused"`` (one autograd node per layer).
* ``snnlab reference``: the same, every LIF with ``backend="reference"`` (the step loop inside the neuron).
  Both run every conv/BN/pool/linear once on the merged ``[T*B, ...]`` tensor.
* ``snnTorch stepped``: the same layers written the snnTorch way, a Python loop over time that calls every layer
  on ``[B, ...]`` and every neuron as ``snntorch.Leaky(beta=tau, threshold=v_th, reset_mechanism="zero",
  reset_delay=False, spike_grad=<the snnlab LIF's own surrogate object>)``: the same LIF dynamics (hard reset
  to 0 at the step that fires, reset not detached, triangle surrogate of width 1).

BatchNorm. snnlab's BN sits in ``TimeMerged`` and so normalises (in train mode) over ``T*B`` samples (TET's
tdBN); the stepped snnTorch network calls the same BN at every step and so normalises over the ``B`` samples of
that step, as an snnTorch user's network does. The two networks therefore differ in train mode, and are equal
in eval mode, where both use the running statistics. So the equality check runs in eval mode: before it, one
train-mode forward pass of the snnlab model sets every BN's running statistics to that batch's (cumulative
average, ``momentum=None``, then the momentum is restored), so that BN is not the identity and spikes reach the
last layer; the firing rate of every LIF layer is printed with the check to show it. The check asserts that
all three rows give the same outputs ``[T, B, classes]`` (max abs difference below ``--atol``, default 1e-4)
and fails loudly otherwise. The timed steps then run in train mode, each row with its own model copy and Adam.

Timing: one process, rows interleaved round by round (the order rotates so that no row always runs first), two
warm-up rounds, then ``--repeats`` rounds; per row the median time, and the speed-up over snnTorch as the median
of the per-round ratios ``t(snnTorch) / t(row)`` (a noisy neighbour slows a whole round alike). On a machine
shared with other jobs use ``--threads 1`` (the default): with more threads than free cores every op waits on
its OpenMP team (see ``snnlab.landscape.limit_threads``).

    python benchmarks/bench_step.py                          # both models, 1 thread, CPU
    python benchmarks/bench_step.py --model vggsnn --batch 4 --repeats 7 --threads 2
    python benchmarks/bench_step.py --tiny                   # seconds: a smoke test (tests/test_bench_step.py)

``main(argv)`` returns the results as a dict (``tests/test_bench_step.py``).
"""
from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import time
from typing import Callable, NamedTuple

import torch
from torch import nn

from snnlab.landscape import limit_threads
from snnlab.layers import TimeMerged
from snnlab.losses import sdt_loss
from snnlab.models import TutorialSNN
from snnlab.neurons import LIF
from snnlab.paper_models import VGGSNN

ROWS = ("snnlab fused", "snnlab reference", "snnTorch stepped")
BASELINE = "snnTorch stepped"
NUM_CLASSES = 10
WARMUP = 2


# ---------------------------------------------------------------------------------------------------------
# the models


class Bench(NamedTuple):
    """A benchmarked model: how to build it, its default sizes, and its layers in order (for the stepped copy)."""

    build: Callable[[int], nn.Module]  # frame size -> snnlab model on [T, B, 2, size, size]
    layers: Callable[[nn.Module], list[nn.Module]]  # the model's layers in forward order
    T: int
    batch: int
    size: int
    repeats: int
    fixed_size: bool = False  # True: --size does not apply


BENCHES = {
    "tutorial": Bench(lambda size: TutorialSNN((2, size, size), NUM_CLASSES),
                      lambda m: [m.features, m.readout], T=8, batch=64, size=24, repeats=15, fixed_size=True),
    # VGGSNN.forward is ``fc(features(x).flatten(2))``; the default neuron has no rate head
    "vggsnn": Bench(lambda size: VGGSNN((2, size, size), NUM_CLASSES),
                    lambda m: [m.features, nn.Flatten(), m.fc], T=10, batch=2, size=48, repeats=7),
}
#: ``--tiny``: per model (T, batch, size), 2 repeats
TINY = {"tutorial": (2, 4, 24), "vggsnn": (2, 2, 16)}


class SnnTorchStepped(nn.Module):
    """An snnlab model's layers written the snnTorch way: a Python loop over time through every layer.

    ``layers`` are the snnlab model's modules in forward order. They are unrolled (``nn.Sequential`` and
    ``TimeMerged`` into their children), the stateless layers are used as they are (so pass a copy to keep the
    snnlab model's weights apart), and every ``snnlab.neurons.LIF`` becomes an ``snntorch.Leaky`` with the same
    decay, threshold and surrogate object and snnlab's hard reset (see the module docstring).
    """

    def __init__(self, layers):
        super().__init__()
        import snntorch as snn

        def unroll(m):
            if isinstance(m, LIF):
                if m.reset != "hard" or m.detach_reset:
                    raise ValueError(f"only hard, non-detached resets map to snntorch.Leaky here, got {m!r}")
                return [snn.Leaky(beta=m.tau, threshold=m.v_th, spike_grad=m.surrogate, reset_mechanism="zero",
                                  reset_delay=False)]
            if isinstance(m, (nn.Sequential, TimeMerged)):  # TimeMerged is a Sequential; named for the reader
                return [layer for child in m for layer in unroll(child)]
            if any(True for _ in m.children()):
                raise ValueError(f"cannot step {type(m).__name__}: list its stateless layers and neurons instead")
            return [m]

        self.layers = nn.ModuleList(layer for m in layers for layer in unroll(m))
        self._is_neuron = [isinstance(layer, snn.Leaky) for layer in self.layers]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [T, B, ...] -> [T, B, classes]
        mems = [layer.init_leaky() if neuron else None for layer, neuron in zip(self.layers, self._is_neuron)]
        out = []
        for t in range(x.shape[0]):
            h = x[t]
            for i, layer in enumerate(self.layers):
                if self._is_neuron[i]:
                    h, mems[i] = layer(h, mems[i])
                else:
                    h = layer(h)
            out.append(h)
        return torch.stack(out)


def lif_layers(model: nn.Module) -> list[LIF]:
    return [m for m in model.modules() if isinstance(m, LIF)]


def with_backend(model: nn.Module, backend: str) -> nn.Module:
    """A copy of ``model`` with every LIF's ``backend`` set."""
    model = copy.deepcopy(model)
    for lif in lif_layers(model):
        lif.backend = backend
    return model


@torch.no_grad()
def calibrate_bn(model: nn.Module, x: torch.Tensor) -> None:
    """Set every BatchNorm's running statistics to those of one train-mode forward pass on ``x``."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average: after one batch, exactly its statistics
    model.train()
    model(x)
    for bn, momentum in zip(bns, momenta):
        bn.momentum = momentum


@torch.no_grad()
def check_equal(models: dict, x: torch.Tensor, atol: float) -> dict:
    """Eval-mode outputs of every row against ``snnlab fused``; raises AssertionError beyond ``atol``.

    Returns ``{"atol", "max_abs_diff": {row: float}, "firing_rates": [per LIF layer of snnlab fused]}``.
    """
    rates = []
    hooks = [lif.register_forward_hook(lambda m, i, s: rates.append(float(s.mean())))
             for lif in lif_layers(models["snnlab fused"])]
    outs = {}
    try:
        for name, model in models.items():
            model.eval()
            outs[name] = model(x)
    finally:
        for h in hooks:
            h.remove()
        for model in models.values():
            model.train()
    ref = outs["snnlab fused"]
    diff = {name: float((out - ref).abs().max()) for name, out in outs.items() if name != "snnlab fused"}
    bad = {name: d for name, d in diff.items() if not d <= atol}
    if bad:
        raise AssertionError(f"outputs differ from snnlab fused by more than atol={atol:g}: {bad}; the rows "
                             "would not time the same network")
    return {"atol": atol, "max_abs_diff": diff, "firing_rates": rates}


# ---------------------------------------------------------------------------------------------------------
# timing


def make_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    """One training step of ``model`` on ``(x, y)`` with its own Adam."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        loss = sdt_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(steps: dict, device: torch.device, repeats: int, warmup: int = WARMUP) -> dict:
    """Seconds per call of every step, rows alternating within each round (order rotated); warm-up dropped."""
    names = list(steps)
    times = {n: [] for n in names}
    for r in range(warmup + repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            _sync(device)
            t0 = time.perf_counter()
            steps[name]()
            _sync(device)
            if r >= warmup:
                times[name].append(time.perf_counter() - t0)
    return times


def bench_model(name: str, T: int, batch: int, size: int, repeats: int, device: torch.device, atol: float,
                seed: int = 0) -> dict:
    """Check equality, then time the three rows on one model; returns the model's results."""
    spec = BENCHES[name]
    torch.manual_seed(seed)
    x = (torch.rand(T, batch, 2, size, size, device=device) < 0.2).float()  # sparse events, like DVS frames
    y = torch.randint(0, NUM_CLASSES, (batch,), device=device)
    base = spec.build(size).to(device)
    calibrate_bn(base, x)
    models = {
        "snnlab fused": with_backend(base, "fused"),
        "snnlab reference": with_backend(base, "reference"),
        "snnTorch stepped": SnnTorchStepped(spec.layers(copy.deepcopy(base))).to(device),
    }
    check = check_equal(models, x, atol)
    times = time_interleaved({n: make_step(m, x, y) for n, m in models.items()}, device, repeats)
    median = {n: statistics.median(ts) for n, ts in times.items()}
    speedup = {n: statistics.median(b / t for b, t in zip(times[BASELINE], ts)) for n, ts in times.items()}
    return {"T": T, "batch": batch, "input": [T, batch, 2, size, size], "repeats": repeats,
            "parameters": sum(p.numel() for p in base.parameters()), "check": check,
            "times_s": times, "median_s": median, "speedup_vs_snntorch": speedup}


# ---------------------------------------------------------------------------------------------------------
# report


def cpu_model() -> str:
    """The CPU's name from /proc/cpuinfo (Linux), else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(device: torch.device) -> dict:
    info = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(device),
            "cpu": cpu_model(), "cpu_count": os.cpu_count()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def print_model(name: str, r: dict) -> None:
    c = r["check"]
    rates = ", ".join(f"{v:.3f}" for v in c["firing_rates"])
    diffs = ", ".join(f"{n} {d:.1e}" for n, d in c["max_abs_diff"].items())
    print(f"\n## {name}: input {'x'.join(map(str, r['input']))} (T x B x C x H x W), {r['parameters']:,} parameters, "
          f"median of {r['repeats']} interleaved steps")
    print(f"check (eval mode, same weights and input): max |output - snnlab fused| = {diffs} "
          f"(atol {c['atol']:g}); LIF firing rates {rates}")
    print(f"| {'row':<18} | {'median ms':>10} | {'speed-up vs snnTorch':>20} |")
    print(f"|{'-' * 20}|{'-' * 12}|{'-' * 22}|")
    for row in ROWS:
        print(f"| {row:<18} | {1e3 * r['median_s'][row]:>10.1f} | {r['speedup_vs_snntorch'][row]:>19.2f}x |")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=(*BENCHES, "all"), default="all")
    p.add_argument("--T", type=int, help="time steps (default: tutorial 8, vggsnn 10)")
    p.add_argument("--batch", type=int, help="batch size (default: tutorial 64, vggsnn 2)")
    p.add_argument("--size", type=int, help="VGGSNN frame height = width (default 48; >= 16)")
    p.add_argument("--repeats", type=int, help="timed steps per row (default: tutorial 15, vggsnn 7)")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads during the run (default 1)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--atol", type=float, default=1e-4, help="equality check tolerance on the outputs")
    p.add_argument("--tiny", action="store_true", help="tiny sizes, 2 repeats: a smoke test")
    a = p.parse_args(argv)
    for opt in ("T", "batch", "size", "repeats", "threads"):
        if getattr(a, opt) is not None and getattr(a, opt) < 1:
            p.error(f"--{opt} must be a positive integer, got {getattr(a, opt)}")
    if a.size is not None and a.size < 16 and a.model != "tutorial":
        p.error(f"--size must be >= 16 (VGGSNN's four 2x2 poolings), got {a.size}")
    device = torch.device(a.device)
    names = list(BENCHES) if a.model == "all" else [a.model]
    results = {"models": {}}
    with limit_threads(a.threads):
        results["machine"] = machine(device)
        m = results["machine"]
        print(f"one training step (forward + backward + Adam, fp32, sdt loss); torch {m['torch']}, "
              f"device {m['device']}, {m['threads']} thread(s), CPU {m['cpu']} ({m['cpu_count']} logical cores)"
              + (f", GPU {m['gpu']}" if "gpu" in m else ""))
        for name in names:
            spec = BENCHES[name]
            T, batch, size, repeats = spec.T, spec.batch, spec.size, spec.repeats
            if a.tiny:
                (T, batch, size), repeats = TINY[name], 2
            T, batch, repeats = a.T or T, a.batch or batch, a.repeats or repeats
            if a.size and not spec.fixed_size:
                size = a.size
            r = bench_model(name, T, batch, size, repeats, device, a.atol)
            results["models"][name] = r
            print_model(name, r)
    return results


if __name__ == "__main__":
    main()
