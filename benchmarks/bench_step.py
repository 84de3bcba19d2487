"""Speed of one training step: snnlab models (fused and reference LIF) vs the same models in snnTorch and SpikingJelly.

One training step = forward + backward + Adam update, fp32, loss ``snnlab.losses.sdt_loss``. Two models:

* ``tutorial``: ``snnlab.models.TutorialSNN`` on ``[T, B, 2, 24, 24]`` (default T = 8, B = 64).
* ``vggsnn``: TET's CIFAR10-DVS architecture ``snnlab.paper_models.VGGSNN`` (``snnlab.models.MODELS["vggsnn"]``)
  on ``[T, B, 2, S, S]`` frames (default T = 10, S = 48 as in the paper, B = 2 so that a step stays around a
  second or two on a small CPU; the paper trains with B = 32 on GPUs).

Four rows per model, all with the same initial weights (copies of one built model):

* ``snnlab fused``: the snnlab model, every LIF with ``backend="fused"`` (one autograd node per layer).
* ``snnlab reference``: the same, every LIF with ``backend="reference"`` (the step loop inside the neuron).
  Both run every conv/BN/pool/linear once on the merged ``[T*B, ...]`` tensor.
* ``snnTorch stepped``: the same layers written the snnTorch way, a Python loop over time that calls every layer
  on ``[B, ...]`` and every neuron as ``snntorch.Leaky(beta=tau, threshold=v_th, reset_mechanism="zero",
  reset_delay=False, spike_grad=<the snnlab LIF's own surrogate object>)``: the same LIF dynamics (hard reset
  to 0 at the step that fires, reset not detached, triangle surrogate of width 1).
* ``SpikingJelly multi-step``: the same layers written the SpikingJelly 2.0 way (``SpikingJellyMultiStep``): an
  ``nn.Sequential`` of ``spikingjelly.activation_based.layer.Conv2d/BatchNorm2d/AvgPool2d/Linear/Flatten`` with
  ``step_mode="m"`` (each stateless layer runs once on the merged ``[T*B, ...]`` tensor, like snnlab's
  ``TimeMerged``) and ``neuron.LIFNode(step_mode="m")``; the step calls ``functional.reset_net(net)`` before every
  forward pass, as a SpikingJelly user must (it is part of the timed step). The LIF maps exactly: SpikingJelly
  charges ``v = v - (v - v_reset) / tau_sj + x`` with ``decay_input=False``, so ``tau_sj = 1 / tau = 2``,
  ``v_reset = 0`` gives ``v = 0.5 v + x`` (``v - v / 2`` is exact in floating point, the same value as snnlab's
  ``0.5 u + x``), then fires ``H(v - v_th)`` with ``H(0) = 1`` and resets ``v = s * v_reset + (1 - s) v`` (same
  value and gradient as snnlab's ``u (1 - s)``); ``v_threshold = v_th = 1``, ``detach_reset=False``. The
  surrogate (``--sj-surrogate``): ``snnlab`` (default) passes the snnlab LIF's own surrogate object, wrapped in
  ``SnnlabSurrogate`` (an ``nn.Module`` calling it on ``x = v - v_th``: Heaviside forward, triangle backward);
  ``builtin`` uses SpikingJelly's ``surrogate.PiecewiseQuadratic(alpha=1 / width)``, the same triangle
  ``(alpha - alpha^2 |x|)+``. SpikingJelly 2.0's ``LIFNode`` has no ``backend=`` argument: the implementation
  follows the device and the surrogate. With the snnlab surrogate (not a SpikingJelly class) it is always the
  Torch reference step loop (``spikingjelly._ops.lif.reference.multi_step``, autograd through every step: what
  older SpikingJelly called ``backend="torch"``), on CPU and CUDA alike; with ``builtin`` on CPU it is
  SpikingJelly's registered ``sj_lif`` op, whose CPU forward is also an autograd step loop
  (``_ops.lif.reference._forward_impl``), and on CUDA, per SpikingJelly's documentation, its CUDA/Triton kernels
  (not measured here): so on a GPU ``--sj-surrogate builtin`` is the fair SpikingJelly row. tests/test_bench_step.py checks
  that the mapped neuron gives exactly snnlab's spikes and membranes and its input gradients (float64 and
  float32, both surrogates). If ``spikingjelly`` cannot be imported the row is skipped with a printed note and
  the result's ``skipped`` says why (``speedup_vs_spikingjelly`` is then None).

BatchNorm. snnlab's BN sits in ``TimeMerged`` and so normalises (in train mode) over ``T*B`` samples (TET's
tdBN); the stepped snnTorch network calls the same BN at every step and so normalises over the ``B`` samples of
that step, as an snnTorch user's network does. The two networks therefore differ in train mode, and are equal
in eval mode, where both use the running statistics. SpikingJelly's multi-step ``layer.BatchNorm2d`` flattens
``[T, B, C, H, W]`` to ``[T*B, C, H, W]`` and so normalises over ``T*B`` like ``TimeMerged``: it equals snnlab in
train mode too. So the equality check runs in eval mode on all rows (and, on copies, in train mode on the rows
whose BN sees ``T*B``: ``snnlab reference`` and ``SpikingJelly multi-step``): before it, one
train-mode forward pass of the snnlab model sets every BN's running statistics to that batch's (cumulative
average, ``momentum=None``, then the momentum is restored), so that BN is not the identity and spikes reach the
last layer; the firing rate of every LIF layer is printed with the check to show it. The check asserts that
all rows give the same outputs ``[T, B, classes]`` (max abs difference below ``--atol``, default 1e-4)
and fails loudly otherwise. The timed steps then run in train mode, each row with its own model copy and Adam.

Timing: one process, rows interleaved round by round (the order rotates so that no row always runs first), two
warm-up rounds, then ``--repeats`` rounds; per row the median time, and the speed-up over snnTorch as the median
of the per-round ratios ``t(snnTorch) / t(row)`` (a noisy neighbour slows a whole round alike), and likewise
the speed-up over SpikingJelly, ``t(SpikingJelly) / t(row)`` (``speedup_vs_spikingjelly``). On a machine
shared with other jobs use ``--threads 1`` (the default): with more threads than free cores every op waits on
its OpenMP team (see ``snnlab.landscape.limit_threads``).

    python benchmarks/bench_step.py                          # both models, 1 thread, CPU
    python benchmarks/bench_step.py --model vggsnn --batch 4 --repeats 7 --threads 2
    python benchmarks/bench_step.py --tiny                   # seconds: a smoke test (tests/test_bench_step.py)
    python benchmarks/bench_step.py --device cuda --sj-surrogate builtin   # SpikingJelly with its GPU kernels

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
from snnlab.surrogate import Surrogate, Triangle

ROWS = ("snnlab fused", "snnlab reference", "snnTorch stepped", "SpikingJelly multi-step")
BASELINE = "snnTorch stepped"
SJ_ROW = "SpikingJelly multi-step"
#: rows whose BatchNorm normalises over T*B like snnlab's: their train-mode outputs are checked too
TRAIN_EQUAL_ROWS = ("snnlab reference", SJ_ROW)
SJ_SURROGATES = ("snnlab", "builtin")
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


def import_spikingjelly():
    """SpikingJelly's ``(neuron, layer, functional, surrogate)`` modules; ImportError if it is not installed."""
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    return neuron, layer, functional, surrogate


def spikingjelly_version() -> str | None:
    """The installed SpikingJelly's version, or None if it cannot be imported."""
    try:
        import_spikingjelly()
    except ImportError:
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("spikingjelly")
    except PackageNotFoundError:  # importable but not installed as a distribution (a source checkout)
        return "unknown"


class SnnlabSurrogate(nn.Module):
    """An snnlab surrogate as SpikingJelly's ``surrogate_function``: ``x = v - v_th -> H(x)``, snnlab's backward.

    SpikingJelly's neurons call ``surrogate_function(h - v_threshold)``; an snnlab ``Surrogate`` is exactly such a
    callable (an autograd function of ``x``, Heaviside forward with ``H(0) = 1`` as SpikingJelly's). The wrapper
    holds the same object (so a width changed on the snnlab LIF is the one in force here) and names it in the
    module tree. ``spiking = True`` as SpikingJelly's surrogates (the output is binary).
    """

    spiking = True

    def __init__(self, surrogate: Surrogate):
        super().__init__()
        self.surrogate = surrogate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.surrogate(x)

    def extra_repr(self) -> str:
        return repr(self.surrogate)


def _sj_kwargs(m: nn.Module) -> tuple[str, dict] | None:
    """SpikingJelly layer name and constructor arguments of a stateless torch layer (exact type), else None."""
    t = type(m)
    if t is nn.Conv2d:
        return "Conv2d", dict(in_channels=m.in_channels, out_channels=m.out_channels, kernel_size=m.kernel_size,
                              stride=m.stride, padding=m.padding, dilation=m.dilation, groups=m.groups,
                              bias=m.bias is not None, padding_mode=m.padding_mode)
    if t is nn.BatchNorm2d:
        return "BatchNorm2d", dict(num_features=m.num_features, eps=m.eps, momentum=m.momentum, affine=m.affine,
                                   track_running_stats=m.track_running_stats)
    if t is nn.AvgPool2d:
        return "AvgPool2d", dict(kernel_size=m.kernel_size, stride=m.stride, padding=m.padding,
                                 ceil_mode=m.ceil_mode, count_include_pad=m.count_include_pad,
                                 divisor_override=m.divisor_override)
    if t is nn.Linear:
        return "Linear", dict(in_features=m.in_features, out_features=m.out_features, bias=m.bias is not None)
    if t is nn.Flatten:
        return "Flatten", dict(start_dim=m.start_dim, end_dim=m.end_dim)
    return None


def sj_neuron(lif: LIF, surrogate: str = "snnlab") -> nn.Module:
    """The SpikingJelly multi-step neuron with the dynamics of ``lif`` (see the module docstring).

    ``LIF(tau < 1)`` -> ``LIFNode(tau=1/tau, decay_input=False)``, ``tau = 1`` (IF) -> ``IFNode``; hard reset ->
    ``v_reset=0``, subtract -> ``v_reset=None``; same threshold and ``detach_reset``. Exact for ``tau = 0.5``
    (for other decays ``v - v / (1/tau)`` and ``tau * v`` may round differently). ``surrogate``: ``"snnlab"``
    (``lif.surrogate`` wrapped in ``SnnlabSurrogate``) or ``"builtin"`` (SpikingJelly's ``PiecewiseQuadratic``,
    for a triangle surrogate only).
    """
    neuron, _, _, sj_surrogate = import_spikingjelly()
    if surrogate == "snnlab":
        sf = SnnlabSurrogate(lif.surrogate)
    elif surrogate == "builtin":
        if not isinstance(lif.surrogate, Triangle):
            raise ValueError(f"--sj-surrogate builtin maps only the triangle surrogate, got {lif.surrogate!r}")
        sf = sj_surrogate.PiecewiseQuadratic(alpha=1.0 / lif.surrogate.width)  # (a - a^2 |x|)+ = triangle(1/a)
    else:
        raise ValueError(f"surrogate must be one of {SJ_SURROGATES}, got {surrogate!r}")
    kw = dict(v_threshold=float(lif.v_th), v_reset=0.0 if lif.reset == "hard" else None, surrogate_function=sf,
              detach_reset=lif.detach_reset, step_mode="m")
    if lif.tau == 1:
        return neuron.IFNode(**kw)
    return neuron.LIFNode(tau=1.0 / lif.tau, decay_input=False, **kw)


class SpikingJellyMultiStep(nn.Module):
    """An snnlab model's layers written the SpikingJelly 2.0 way: multi-step layers and neurons, ``[T, B, ...]``.

    ``layers`` as for ``SnnTorchStepped`` (the model's modules in forward order, each stateless layer meant for one
    step ``[B, ...]``). They are unrolled, every stateless layer becomes its ``spikingjelly.activation_based.layer``
    twin with ``step_mode="m"`` and a copy of its weights and buffers (the snnlab modules are not shared), every
    ``snnlab.neurons.LIF`` becomes ``sj_neuron(lif, surrogate)``. ``forward`` calls
    ``functional.reset_net`` and then the ``nn.Sequential`` ``self.net``: ``[T, B, ...] -> [T, B, classes]``. The
    copy is put on the device and dtype of the layers' first parameter.
    """

    def __init__(self, layers, surrogate: str = "snnlab"):
        super().__init__()
        _, sj_layer, _, _ = import_spikingjelly()

        def unroll(m):
            if isinstance(m, LIF):
                return [sj_neuron(m, surrogate)]
            if isinstance(m, (nn.Sequential, TimeMerged)):
                return [layer for child in m for layer in unroll(child)]
            spec = _sj_kwargs(m)
            if spec is None:
                raise ValueError(f"no SpikingJelly multi-step twin for {type(m).__name__} here")
            name, kw = spec
            twin = getattr(sj_layer, name)(**kw, step_mode="m")
            twin.load_state_dict(m.state_dict())
            return [twin.train(m.training)]

        layers = list(layers)
        self.net = nn.Sequential(*(layer for m in layers for layer in unroll(m)))
        like = next((p for m in layers for p in m.parameters()), None)
        if like is not None:  # the twins were built on the CPU in the default dtype: follow the model
            self.to(like.device, like.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [T, B, ...] -> [T, B, classes]
        _, _, functional, _ = import_spikingjelly()
        functional.reset_net(self.net)  # every LIFNode back to v = v_reset: a new sequence
        return self.net(x)


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
def check_equal(models: dict, x: torch.Tensor, atol: float, train_rows=()) -> dict:
    """Eval-mode outputs of every row against ``snnlab fused``; raises AssertionError beyond ``atol``.

    ``train_rows``: rows whose train-mode outputs must equal too (their BN normalises over ``T*B``); they run on
    copies, so that the models' BN running statistics are left as they are.

    Returns ``{"atol", "max_abs_diff": {row: float}, "train_max_abs_diff": {row: float},
    "firing_rates": [per LIF layer of snnlab fused]}``.
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
    train_rows = [n for n in train_rows if n in models]
    train_diff = {}
    if train_rows:
        ref = copy.deepcopy(models["snnlab fused"]).train()(x)
        train_diff = {n: float((copy.deepcopy(models[n]).train()(x) - ref).abs().max()) for n in train_rows}
    bad = {name: d for name, d in diff.items() if not d <= atol}
    bad.update({f"{name} (train mode)": d for name, d in train_diff.items() if not d <= atol})
    if bad:
        raise AssertionError(f"outputs differ from snnlab fused by more than atol={atol:g}: {bad}; the rows "
                             "would not time the same network")
    return {"atol": atol, "max_abs_diff": diff, "train_max_abs_diff": train_diff, "firing_rates": rates}


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


def _speedup(times: dict, baseline: str) -> dict:
    """Per row, the median over rounds of ``t(baseline) / t(row)``."""
    return {n: statistics.median(b / t for b, t in zip(times[baseline], ts)) for n, ts in times.items()}


def bench_model(name: str, T: int, batch: int, size: int, repeats: int, device: torch.device, atol: float,
                seed: int = 0, sj_surrogate: str = "snnlab") -> dict:
    """Check equality, then time the rows on one model; returns the model's results.

    The SpikingJelly row is skipped (``skipped`` says why, ``speedup_vs_spikingjelly`` is None) if SpikingJelly
    cannot be imported.
    """
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
    skipped = {}
    try:
        import_spikingjelly()
    except ImportError as e:
        skipped[SJ_ROW] = f"spikingjelly is not importable ({e})"
        print(f"note: row {SJ_ROW!r} skipped: {skipped[SJ_ROW]}")
    else:
        models[SJ_ROW] = SpikingJellyMultiStep(spec.layers(copy.deepcopy(base)), sj_surrogate).to(device)
    check = check_equal(models, x, atol, TRAIN_EQUAL_ROWS)
    times = time_interleaved({n: make_step(m, x, y) for n, m in models.items()}, device, repeats)
    median = {n: statistics.median(ts) for n, ts in times.items()}
    return {"T": T, "batch": batch, "input": [T, batch, 2, size, size], "repeats": repeats,
            "parameters": sum(p.numel() for p in base.parameters()), "rows": list(models), "skipped": skipped,
            "check": check, "times_s": times, "median_s": median,
            "speedup_vs_snntorch": _speedup(times, BASELINE),
            "speedup_vs_spikingjelly": _speedup(times, SJ_ROW) if SJ_ROW in times else None}


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
            "cpu": cpu_model(), "cpu_count": os.cpu_count(), "spikingjelly": spikingjelly_version()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def print_model(name: str, r: dict) -> None:
    c = r["check"]
    rates = ", ".join(f"{v:.3f}" for v in c["firing_rates"])
    diffs = ", ".join(f"{n} {d:.1e}" for n, d in c["max_abs_diff"].items())
    train = ", ".join(f"{n} {d:.1e}" for n, d in c["train_max_abs_diff"].items())
    print(f"\n## {name}: input {'x'.join(map(str, r['input']))} (T x B x C x H x W), {r['parameters']:,} parameters, "
          f"median of {r['repeats']} interleaved steps")
    print(f"check (eval mode, same weights and input): max |output - snnlab fused| = {diffs} "
          f"(atol {c['atol']:g}); LIF firing rates {rates}")
    if train:
        print(f"check (train mode, BN over T*B): max |output - snnlab fused| = {train}")
    sj = r["speedup_vs_spikingjelly"]
    print(f"| {'row':<23} | {'median ms':>10} | {'speed-up vs snnTorch':>20} | {'speed-up vs SpikingJelly':>24} |")
    print(f"|{'-' * 25}|{'-' * 12}|{'-' * 22}|{'-' * 26}|")
    for row in r["rows"]:
        vs_sj = f"{sj[row]:>23.2f}x" if sj else f"{'-':>24}"
        print(f"| {row:<23} | {1e3 * r['median_s'][row]:>10.1f} | {r['speedup_vs_snntorch'][row]:>19.2f}x | {vs_sj} |")
    for row, why in r["skipped"].items():
        print(f"| {row:<23} | skipped: {why}")


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
    p.add_argument("--sj-surrogate", choices=SJ_SURROGATES, default="snnlab",
                   help="SpikingJelly row's surrogate: the snnlab LIF's own (default; SpikingJelly's Torch reference "
                        "loop) or SpikingJelly's PiecewiseQuadratic (its registered op / GPU kernels)")
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
        results["sj_surrogate"] = a.sj_surrogate
        print(f"one training step (forward + backward + Adam, fp32, sdt loss); torch {m['torch']}, "
              f"spikingjelly {m['spikingjelly'] or 'not importable'} (surrogate {a.sj_surrogate!r}), "
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
            r = bench_model(name, T, batch, size, repeats, device, a.atol, sj_surrogate=a.sj_surrogate)
            results["models"][name] = r
            print_model(name, r)
    return results


if __name__ == "__main__":
    main()
