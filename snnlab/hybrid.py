"""Hybrid training for DSR: train an ANN first, then start the SNN from its weights and activation statistics.

What it is (Rathi et al., ICLR 2020, "Enabling deep spiking neural networks with hybrid conversion and
spike timing dependent backpropagation"; used by DSR for ImageNet, official code github.com/qymeng94/DSR,
README "ImageNet" and ``imagenet/main.py``, ``preresnet_ann.py``, ``preresnet_cal_Vth.py`` [code]):

1. train an ANN of the same architecture, with ReLU where the SNN has spiking neurons;
2. run the trained ANN over data and record, for every spiking layer, its post-ReLU activations; the
   99.9th percentile of them is the layer's initial threshold (DSR's ``DataStatus.max(fraction=0.999)``:
   ``relu``, sort, take element ``int(0.999 * n)``, after subsampling to at most 1e6 values);
3. load the ANN's weights (conv, linear, BN parameters and BN running statistics) into the SNN, set the
   thresholds, and train the SNN with DSR.

Why it works: a DSR neuron's firing rate approximates a clipped ReLU of its average input,
``r ~= clamp(xbar, 0, v_th)`` (IF) or ``clamp(xhat / tau, 0, v_th / dt)`` (LIF) (``snnlab.dsr``). With the
ANN's weights and ``v_th`` at the 99.9th percentile of each layer's ANN activations, the SNN computes the
ANN's function up to clipping of the top 0.1% of activations and the rate's quantisation (about
``v_th / T`` per layer), so at large T it starts close to the ANN's accuracy.

snnlab's choices (where the code leaves room):

* The ANN is the SNN model itself with every DSR neuron replaced by ``RateReLU`` (``ann_twin``): every other
  state-dict key is the same, so nothing has to be renamed. ``RateReLU`` is the ANN limit of the neuron's
  rate mapping without the clip: ``relu(x)`` for IF, ``relu(x) / tau`` for LIF (DSR uses tau = 1, so ReLU).
  On static data the ANN runs at T = 1 (the time axis has length one); the output head
  (linear - BN1d - neuron - rate) then gives ``relu(BN(linear(x)))`` as the class scores, as DSR's ANN
  (``fc -> bn3 -> relu4``), and the loss is the same cross-entropy ``snnlab`` uses for DSR.
* Thresholds from percentiles: IF ``v_th = p`` (the rate saturates at ``v_th``); LIF ``v_th = p * dt`` (the
  rate saturates at ``v_th / dt``; DSR's ``reassign_Vth`` multiplies by ``delta_t`` for LIF [code]); then
  raised to the neuron's lower bound if below it. A layer whose percentile is 0 (at least 99.9% of its
  activations are zero: a dead layer) therefore starts at the lower bound, with a warning.
* The percentile is an exact order statistic ``sorted[min(int(fraction * n), n - 1)]`` of a uniform random
  sample without replacement of at most ``max_values`` activations per layer over all batches (random keys,
  keep the smallest: deterministic for a seeded generator). DSR's code appends batches and, past 1e7 values,
  shrinks the pool to a random half, which favours later batches; then subsamples 1e6 with replacement.
* Calibration data: training batches (shuffled with the run's seed; ``hybrid_calib_batches`` caps them),
  the ANN in eval mode. DSR's code calibrates on the first 5 *validation* batches of 144 images [code];
  snnlab keeps the test set unseen.

In ``snnlab.train.fit`` (``TrainConfig.hybrid_ann_epochs > 0`` or ``hybrid_ann_checkpoint``, method "dsr"):
the ANN phase is an ordinary run written to ``<out_dir>/ann/`` (it resumes like any run), then calibration and
initialisation (``<out_dir>/hybrid.json``), then the SNN phase; a resumed SNN phase loads its own checkpoint and
never retrains the ANN. Public pieces: ``ann_twin``, ``activation_percentiles``,
``thresholds_from_percentiles``, ``init_snn_from_ann``, ``hybrid_init`` (the three steps after ANN training).
"""
from __future__ import annotations

import copy
import math
import warnings
from pathlib import Path

import torch
from torch import nn

from . import checkpoint
from .dsr import DSRLIF, dsr_neurons, firing_rate
from .layers import encode
from .seeding import epoch_seed

__all__ = [
    "RateReLU", "dsr_neurons", "ann_twin", "activation_percentiles", "thresholds_from_percentiles",
    "init_snn_from_ann", "load_ann", "ann_config", "hybrid_on", "calibrate", "hybrid_init",
]

class RateReLU(nn.Module):
    """The ANN limit of a DSR neuron: ``[T, B, ...] -> scale * relu(x)``, element-wise.

    ``scale`` is 1 for IF and ``1 / tau`` for LIF (the slope of the neuron's rate mapping, without its clip).
    ``rate`` is the neuron's: the plain mean over T (IF) or the weighted mean with ``beta`` (LIF); both are the
    identity at T = 1.
    """

    def __init__(self, scale: float = 1.0, beta: float | None = None):
        super().__init__()
        self.scale = float(scale)
        self.beta = beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_tensor(x) or x.dim() < 2:
            raise ValueError(f"RateReLU expects a time-first tensor [T, B, ...], got "
                             f"{tuple(x.shape) if torch.is_tensor(x) else type(x).__name__}")
        out = torch.relu(x)
        return out if self.scale == 1.0 else out * self.scale

    def rate(self, out: torch.Tensor) -> torch.Tensor:
        return firing_rate(out) if self.beta is None else firing_rate(out, weighted=True, beta=self.beta)

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}" + ("" if self.beta is None else f", beta={self.beta:g}")


def _twin_of(neuron: nn.Module) -> RateReLU:
    if isinstance(neuron, DSRLIF):
        return RateReLU(scale=1.0 / neuron.tau, beta=neuron.beta)
    return RateReLU()


def ann_twin(snn: nn.Module) -> nn.Module:
    """A deep copy of ``snn`` with every DSR neuron replaced by its ``RateReLU`` (same names, no thresholds).

    The twin's ``state_dict`` has the SNN's keys minus the neurons' ``v_th``; it returns what the SNN returns
    (``[1, B, classes]`` for ``snnlab.dsr_models``), so it trains with the same loss.
    """
    neurons = dsr_neurons(snn)
    if not neurons:
        raise ValueError(f"{type(snn).__name__} has no DSR neuron (DSRIF/DSRLIF): nothing to replace by a ReLU")
    twin = copy.deepcopy(snn)
    for name in neurons:
        parent_name, _, child = name.rpartition(".")
        parent = twin.get_submodule(parent_name) if parent_name else twin
        setattr(parent, child, _twin_of(parent.get_submodule(child)))
    return twin


# ------------------------------------------------------------------------------------------ percentiles
class _Reservoir:
    """A uniform random sample without replacement of at most ``size`` values from a stream of tensors.

    Every value gets a uniform random key; the sample is the values with the ``size`` smallest keys (so each
    value is kept with the same probability, whichever batch it came in). Deterministic for a seeded
    ``generator``; keys are drawn on the generator's device.
    """

    def __init__(self, size: int, generator: torch.Generator):
        self.size, self.generator = size, generator
        self.values: torch.Tensor | None = None
        self.keys: torch.Tensor | None = None
        self.seen = 0

    def add(self, x: torch.Tensor) -> None:
        v = x.detach().reshape(-1).float()
        self.seen += v.numel()
        k = torch.rand(v.numel(), generator=self.generator, device=self.generator.device).to(v.device)
        if self.values is not None and self.values.numel() >= self.size:  # full: only keys below the largest kept
            keep = k < self.keys.max()
            v, k = v[keep], k[keep]
        if self.values is not None:
            v, k = torch.cat([self.values, v]), torch.cat([self.keys, k])
        if v.numel() > self.size:
            idx = torch.topk(k, self.size, largest=False, sorted=False).indices
            v, k = v[idx], k[idx]
        self.values, self.keys = v, k

    def sample(self) -> torch.Tensor:
        return self.values if self.values is not None else torch.empty(0)


def _order_statistic(values: torch.Tensor, fraction: float) -> float:
    """DSR's ``sorted(values)[int(fraction * n)]`` (the maximum for fraction = 1)."""
    n = values.numel()
    return float(values.sort().values[min(int(fraction * n), n - 1)])


def _check_fraction(fraction) -> float:
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise ValueError(f"the percentile fraction must be in (0, 1] (0.999 = the 99.9th percentile), got {fraction!r}")
    return float(fraction)


@torch.no_grad()
def activation_percentiles(ann: nn.Module, loader, T: int, temporal: bool, fraction: float = 0.999,
                           max_values: int = 1_000_000, device=None, generator: torch.Generator | None = None,
                           max_batches: int | None = None, progress: bool = False) -> dict[str, float]:
    """``{neuron module name: percentile}`` of every ``RateReLU``'s outputs over ``loader`` (eval mode, no grad).

    Args:
        ann: an ``ann_twin`` (its ``RateReLU`` names are the SNN's neuron names).
        loader: ``(x, y)`` batches, encoded as in training (``snnlab.train.encode(x, T, temporal)``).

        fraction: 0.999 = the 99.9th percentile, as DSR; the value is ``sorted(a)[int(fraction * n)]`` of the
            post-ReLU activations ``a`` (zeros included), the maximum for fraction = 1.

        max_values: per layer, a uniform random sample of at most this many activations is kept (DSR: 1e6).
        generator: for the sample (default: a new one seeded with 0 on ``device``): same seed, same result.
        max_batches: use at most this many batches (default: all).

    A layer whose percentile is 0 gets a warning (a dead layer); a layer that never ran is left out with one.
    """
    fraction = _check_fraction(fraction)
    _check_sampling(max_values, max_batches)
    relus = {name: m for name, m in ann.named_modules() if isinstance(m, RateReLU)}
    if not relus:
        raise ValueError(f"{type(ann).__name__} has no RateReLU: pass the ANN made by ann_twin(snn)")
    device = torch.device(device) if device is not None else next(ann.parameters()).device
    if generator is None:
        generator = torch.Generator(device=device).manual_seed(0)
    pools = {name: _Reservoir(max_values, generator) for name in relus}
    batches = _record(ann, relus, pools, loader, T, temporal, device, max_batches, progress)
    if batches == 0:
        raise ValueError("activation_percentiles got no batches: the loader is empty")
    return _percentiles(pools, fraction)


def _check_sampling(max_values, max_batches) -> None:
    """``activation_percentiles``'s ``max_values`` (a positive int) and ``max_batches`` (one or None); ValueError."""
    if isinstance(max_values, bool) or not isinstance(max_values, int) or max_values < 1:
        raise ValueError(f"max_values must be a positive integer, got {max_values!r}")
    if max_batches is not None and (isinstance(max_batches, bool) or not isinstance(max_batches, int)
                                    or max_batches < 1):
        raise ValueError(f"max_batches must be a positive integer or None, got {max_batches!r}")


def _record(ann: nn.Module, relus: dict, pools: dict, loader, T: int, temporal: bool, device, max_batches,
            progress: bool) -> int:
    """Run ``ann`` (eval mode, then its mode restored) on up to ``max_batches`` batches, each ``RateReLU``'s outputs
    going into its pool; returns the number of batches run."""
    from tqdm.auto import tqdm

    handles = [m.register_forward_hook(lambda mod, inp, out, pool=pools[name]: pool.add(out))
               for name, m in relus.items()]
    was_training = ann.training
    ann.eval()
    batches = 0
    try:
        total = len(loader) if max_batches is None else min(max_batches, len(loader))
        for x, _ in tqdm(loader, total=total, desc="calibrating thresholds", leave=False, disable=not progress):
            if batches == total:
                break
            ann(encode(x.to(device), T, temporal))
            batches += 1
    finally:
        for h in handles:
            h.remove()
        ann.train(was_training)
    return batches


def _percentiles(pools: dict, fraction: float) -> dict[str, float]:
    """``{name: the fraction-quantile of its pool}``, warning (for the caller of ``activation_percentiles``) about the
    layers that never ran (left out) and those whose quantile is 0 (dead)."""
    out, dead, silent = {}, [], []
    for name, pool in pools.items():
        sample = pool.sample()
        if sample.numel() == 0:
            silent.append(name)
            continue
        out[name] = _order_statistic(sample, fraction)
        if out[name] == 0:
            dead.append(f"{name} ({pool.seen} activations)")
    if silent:
        warnings.warn(f"no activations recorded for {', '.join(silent)} (never called in the forward pass): "
                      "no percentile for them", stacklevel=3)
    if dead:
        warnings.warn(f"the {fraction:g}-quantile of the ANN's activations is 0 in {', '.join(dead)}: at least "
                      f"{fraction:.1%} of them are zero (a dead layer); its threshold will start at the neuron's "
                      "lower bound", stacklevel=3)
    return out


def thresholds_from_percentiles(snn: nn.Module, percentiles: dict[str, float]) -> dict[str, float]:
    """The thresholds whose saturation rate is each layer's percentile: IF ``p``, LIF ``p * dt`` (DSR's code)."""
    neurons = dsr_neurons(snn)
    unknown = sorted(set(percentiles) - set(neurons))
    if unknown:
        raise ValueError(f"percentiles for {unknown}, which are not DSR neurons of the SNN; its neurons: "
                         f"{sorted(neurons)}")
    return {name: p * neurons[name].dt if isinstance(neurons[name], DSRLIF) else p
            for name, p in percentiles.items()}


# ------------------------------------------------------------------------------------------ initialisation
def _check_same_state(expected: dict, given: dict, what: str) -> None:
    missing = sorted(set(expected) - set(given))
    extra = sorted(set(given) - set(expected))
    shapes = [f"{k} ({tuple(given[k].shape)} vs {tuple(expected[k].shape)})"
              for k in sorted(set(expected) & set(given)) if tuple(given[k].shape) != tuple(expected[k].shape)]
    if missing or extra or shapes:
        parts = ([f"missing {missing}"] if missing else []) + ([f"unexpected {extra}"] if extra else []) \
            + ([f"shape mismatch {', '.join(shapes)}"] if shapes else [])
        raise ValueError(f"{what}: the state does not match the model's: {'; '.join(parts)}")


def init_snn_from_ann(snn: nn.Module, ann: nn.Module, thresholds: dict[str, float]) -> nn.Module:
    """Copy every parameter and buffer of ``ann`` into ``snn`` and set the thresholds; return ``snn``.

    ``ann``'s state-dict keys must be exactly the SNN's without the neurons' ``v_th`` (same shapes), as for
    ``ann_twin(snn)``; otherwise ValueError lists the missing, unexpected and mis-shaped keys. Each neuron
    named in ``thresholds`` gets ``v_th = max(threshold, its v_th_lower_bound)``; the others keep theirs.
    """
    neurons = dsr_neurons(snn)
    unknown = sorted(set(thresholds) - set(neurons))
    if unknown:
        raise ValueError(f"thresholds for {unknown}, which are not DSR neurons of the SNN; its neurons: "
                         f"{sorted(neurons)}")
    bad = {k: v for k, v in thresholds.items()
           if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0}
    if bad:
        raise ValueError(f"thresholds must be finite numbers >= 0, got {bad}")
    snn_state = snn.state_dict()
    v_th_keys = {f"{name}.v_th" for name in neurons}
    ann_state = ann.state_dict()
    _check_same_state({k: v for k, v in snn_state.items() if k not in v_th_keys}, ann_state,
                      "cannot initialise the SNN from the ANN")
    snn.load_state_dict({**{k: snn_state[k] for k in v_th_keys}, **ann_state}, strict=True)
    with torch.no_grad():
        for name, v in thresholds.items():
            m = neurons[name]
            m.v_th.fill_(max(float(v), m.v_th_lower_bound))
    return snn


def load_ann(ann: nn.Module, path) -> nn.Module:
    """Load a checkpoint (``fit``'s ``checkpoint.pt``, e.g. ``<out>/ann/checkpoint.pt``, or a bare state dict)
    into ``ann`` (an ``ann_twin``), checking the keys first; return ``ann``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"hybrid_ann_checkpoint {str(path)!r} does not exist (expected a checkpoint.pt "
                                "written by a hybrid run's ANN phase, <out_dir>/ann/checkpoint.pt)")
    ck = checkpoint.load(path, require=(), what="ANN checkpoint")  # weights only: never runs code from the file
    state = ck["model"] if isinstance(ck, dict) and "model" in ck else ck
    if not isinstance(state, dict):
        raise ValueError(f"{str(path)!r} holds no state dict (got {type(state).__name__})")
    _check_same_state(ann.state_dict(), state, f"cannot load the ANN from {str(path)!r}")
    ann.load_state_dict(state)
    return ann


# ------------------------------------------------------------------------------------------ with TrainConfig
def hybrid_on(config) -> bool:
    """Whether ``config`` asks for hybrid training (an ANN phase or a trained ANN's checkpoint)."""
    return config.hybrid_ann_epochs > 0 or config.hybrid_ann_checkpoint is not None


def ann_config(config, temporal: bool):
    """The ``TrainConfig`` of the ANN phase: ``hybrid_ann_epochs`` epochs at T = 1 on static data (the frames' T on
    event data), the ``hybrid_ann_*`` optimiser settings where given, ``out_dir`` = ``<out_dir>/ann``, no T schedule
    and no eval_T; everything else (scheduler, warmup_iters, max_batches, seed, device, amp, ...) as ``config``."""
    d = type(config)()
    pick = lambda own, shared: shared if own is None else own  # noqa: E731
    return config.replace(
        T=config.T if temporal else 1, T_schedule=None, eval_T=None, epochs=config.hybrid_ann_epochs,
        optimizer=pick(config.hybrid_ann_optimizer, config.optimizer), lr=pick(config.hybrid_ann_lr, config.lr),
        weight_decay=pick(config.hybrid_ann_weight_decay, config.weight_decay),
        batch_size=pick(config.hybrid_ann_batch_size, config.batch_size),
        hybrid_ann_epochs=0, hybrid_ann_checkpoint=None, hybrid_percentile=d.hybrid_percentile,
        hybrid_calib_batches=None, hybrid_ann_optimizer=None, hybrid_ann_lr=None, hybrid_ann_weight_decay=None,
        hybrid_ann_batch_size=None,
        out_dir=str(Path(config.out_dir) / "ann") if config.out_dir else None,
        extra={**config.extra, "phase": "hybrid ANN (snnlab.hybrid.ann_twin: ReLU in place of the DSR neurons)"},
    )


def calibrate(ann: nn.Module, config, bundle, device=None, progress: bool = False) -> tuple[dict[str, float], int]:
    """Step 2 for a trained ``ann``: ``(percentiles, number of batches used)`` on ``bundle``'s training data.

    The batches are the ANN phase's size, shuffled with ``config.seed``, at most ``config.hybrid_calib_batches``;
    the sample's generator is seeded with ``config.seed``; the quantile is ``config.hybrid_percentile``.
    """
    acfg = ann_config(config, bundle.temporal)
    device = torch.device(device) if device is not None else next(ann.parameters()).device
    loader, _ = bundle.loaders(acfg.batch_size, shuffle_seed=epoch_seed(config.seed, 0), split=config.split)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    n = len(loader) if config.hybrid_calib_batches is None else min(config.hybrid_calib_batches, len(loader))
    percentiles = activation_percentiles(ann, loader, acfg.T, bundle.temporal, config.hybrid_percentile,
                                         device=device, generator=generator, max_batches=n, progress=progress)
    return percentiles, n


def hybrid_init(snn: nn.Module, ann: nn.Module, config, bundle, device=None, progress: bool = False) -> dict:
    """Steps 2 and 3 for a trained ``ann`` (``calibrate``, then ``init_snn_from_ann``), in one process.

    Returns ``{"percentiles", "thresholds" (as set, after the lower bound), "calib_batches"}``.
    """
    from .models.dsr import thresholds

    percentiles, n = calibrate(ann, config, bundle, device, progress)
    init_snn_from_ann(snn, ann, thresholds_from_percentiles(snn, percentiles))
    return {"percentiles": percentiles, "thresholds": thresholds(snn), "calib_batches": n}
