"""Training: one config dataclass, ``fit(config)``, checkpoints that resume exactly.

The data flow (the README's "Architecture" section)::

    data -> encoder -> model -> outputs [T, B, C] -> loss -> backward (surrogate) -> optimizer
                                         callbacks observe every step (chi, metrics, checkpoints)

What ``fit`` writes into ``config.out_dir`` (nothing if ``out_dir`` is None):

* ``config.json``   -- the config of the run (also inside every checkpoint),
* ``metrics.csv``   -- one row per epoch (rewritten atomically each epoch),
* ``checkpoint.pt`` -- model, optimizer, scheduler, scaler, history, after every epoch, written atomically
  (to a temporary file, then ``os.replace``), so a crash never leaves a half-written checkpoint,
* ``results.json``  -- the final metrics,
* with DSR hybrid training (``hybrid_ann_epochs``, ``snnlab.hybrid``): ``ann/`` (the ANN phase, an ordinary run
  with the files above) and ``hybrid.json`` (the ANN's test accuracy, the calibrated thresholds, the SNN's test
  accuracy right after initialisation; also in ``results.json`` under ``final.hybrid``).

``resume=True`` continues from ``checkpoint.pt``; because each epoch's shuffling and random state are
derived from ``(seed, epoch)``, a run stopped after epoch k and resumed ends with exactly the weights of an
uninterrupted run on CPU.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import torch
from torch import nn

from . import checkpoint as _checkpoint
from . import data as _data
from . import distributed as _dist
from . import losses as _losses
from . import surrogate as _surrogate
from .layers import check_T, encode
from .models import MODELS, NEURONS, build_model, make_neuron
from .neurons import RESETS
from .callbacks import Callback, State as _State
from .seeding import epoch_seed as _epoch_seed, seed_everything
from .io import atomic_write, atomic_write_text as _atomic_write_text

__all__ = [
    "TrainConfig",
    "fit",
    "evaluate",
    "encode",
    "seed_everything",
    "resolve_device",
    "History",
    "Callback",
    "NonFiniteLossError",
    "load_checkpoint",
    "atomic_save",
    "sweep",
    "parse_T_schedule",
    "T_at_epoch",
    "temporal_scalability",
]

OPTIMIZERS = ("adam", "sgd")
SCHEDULERS = ("cosine", "none")
AMP_DTYPES = ("float16", "bfloat16")


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; otherwise ``torch.device(device)``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; use 'auto' or 'cpu'")
    return dev


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainConfig:
    """Everything that defines a run. Saved as JSON next to every checkpoint and result."""

    dataset: str = "digits"  #: "digits" or "dvs-digits" (see snnlab.data.DATASETS)
    model: str = "tutorial"  #: see snnlab.models.MODELS
    method: str = "sdt"  #: the loss: see snnlab.losses.LOSSES ("sdt" or "tet")
    lamb: float = 0.001  #: TET's MSE weight lambda (used by method="tet"; paper: 0.05 CIFAR, 0.001 DVS)
    phi: float = 1.0  #: TET's MSE target phi (= V_th)
    T: int = 4  #: time steps (for event data: number of frames)
    T_schedule: str | None = None  #: temporal inheritable training, e.g. "2:30,6:5" (T=2 for 30 epochs, then T=6 for 5)
    eval_T: list | None = None  #: after training, test accuracy at each of these T (temporal scalability)
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"  #: "adam" or "sgd" (momentum 0.9)
    weight_decay: float = 0.0
    scheduler: str = "cosine"  #: "cosine" (per epoch, to 0) or "none"
    warmup_iters: int = 0  #: linear learning-rate warm-up over the first N optimizer steps (DSR's code: 400)
    neuron: str = "lif"  #: "lif" or "if"
    tau: float = 0.5  #: LIF decay factor, u = tau * u + I (TET)
    v_th: float = 1.0
    reset: str = "hard"
    detach_reset: bool = False
    surrogate: str = "triangle"
    width: float = 1.0  #: surrogate FWHM (snnlab.surrogate)
    widths: list | None = None  #: per-spiking-layer widths (forward order), overriding ``width``
    chi_target: float | None = None  #: if set, a ChiController adapts each layer's width towards this chi
    chi_every: int = 10  #: measure chi every K steps
    chi_w_min: float = 0.05  #: the controller keeps widths in [chi_w_min, chi_w_max]
    chi_w_max: float = 4.0
    chi_signal: str = "neurons"  #: "neurons" (effective-domain share, default) or "weights" (the paper's chi)
    # DSR (method="dsr"; neuron "lif" or "if"). None = the neuron's default from DSR's code.
    dsr_v_th: float | None = None  #: initial trainable threshold (code: LIF 0.3, IF 6)
    dsr_alpha: float | None = None  #: fire at alpha * v_th (code: LIF 0.3, IF 0.5)
    dsr_tau: float = 1.0  #: LIF time constant (not TET's decay factor)
    dsr_dt: float = 0.05  #: LIF time step; beta = exp(-dt / tau)
    dsr_v_th_bound: float | None = None  #: lower bound of the threshold (code: LIF 5e-4, IF 0.01)
    dsr_threshold_grad: str = "code"  #: "code" (times dt, default) or "paper" (Eq. 14, divided by dt)
    # DSR hybrid training (snnlab.hybrid): an ANN twin (ReLU for the neurons) first, then the SNN from its weights
    # with thresholds at a percentile of its activations. Off unless hybrid_ann_epochs > 0 or a checkpoint is given.
    hybrid_ann_epochs: int = 0  #: train the ANN twin this many epochs before the SNN (0 = no ANN phase)
    hybrid_ann_checkpoint: str | None = None  #: instead, start from this trained ANN (<out>/ann/checkpoint.pt)
    hybrid_percentile: float = 0.999  #: threshold = this quantile of each layer's ANN activations (DSR: 0.999)
    hybrid_calib_batches: int | None = None  #: training batches for the percentiles (None = all)
    hybrid_ann_optimizer: str | None = None  #: the ANN phase's optimizer (None = optimizer)
    hybrid_ann_lr: float | None = None  #: the ANN phase's learning rate (None = lr)
    hybrid_ann_weight_decay: float | None = None  #: (None = weight_decay)
    hybrid_ann_batch_size: int | None = None  #: the ANN phase's (and the calibration's) batch size (None = batch_size)
    seed: int = 0  #: model init, shuffling
    data_seed: int = 0  #: event-camera simulation seed (dvs-digits)
    data_root: str | None = None  #: folder of the papers' datasets and the dvs-digits cache (None: $SNNLAB_DATA or datasets/)
    data_options: dict = field(default_factory=dict)  #: options of snnlab.data.load, e.g. {"cutout": True}
    device: str = "auto"
    amp: bool = True  #: mixed precision, used on CUDA only
    amp_dtype: str = "float16"  #: "float16" (with a GradScaler) or "bfloat16" (no scaler needed); CUDA only
    channels_last: bool = False  #: channels-last memory format for the 4-D convolutions; CUDA only
    cudnn_benchmark: bool = False  #: let cuDNN pick the fastest kernels (faster, not bitwise repeatable); CUDA only
    out_dir: str | None = None  #: where checkpoints/metrics go; None keeps everything in memory
    resume: bool = False
    progress: bool = True  #: tqdm progress bars
    max_batches: int | None = None  #: cap on training batches per epoch (quick runs)
    extra: dict = field(default_factory=dict)  #: free-form, saved with the run

    def validate(self) -> "TrainConfig":
        """Raise ValueError naming the first bad field, its value and what is allowed."""

        def choice(name, allowed):
            v = getattr(self, name)
            if v not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {v!r}")

        choice("dataset", _data.DATASETS)
        if self.method == "dsr":
            from .models.dsr import DSR_MODELS

            choice("model", tuple(DSR_MODELS))
            choice("dsr_threshold_grad", ("code", "paper"))
            if self.chi_target is not None or self.widths is not None:
                raise ValueError("method 'dsr' has no surrogate: chi_target and widths do not apply")
            for name in ("dsr_tau", "dsr_dt"):
                v = getattr(self, name)
                if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                    raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        else:
            choice("model", tuple(MODELS))
        choice("method", tuple(_losses.LOSSES))
        choice("optimizer", OPTIMIZERS)
        choice("scheduler", SCHEDULERS)
        choice("neuron", NEURONS)
        choice("reset", RESETS)
        choice("surrogate", tuple(_surrogate.SURROGATES))
        choice("amp_dtype", AMP_DTYPES)
        for name in ("amp", "channels_last", "cudnn_benchmark"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        check_T(self.T)
        if self.data_root is not None and not isinstance(self.data_root, str):
            raise ValueError(f"data_root must be a folder path (a string) or None, got {self.data_root!r}")
        if not isinstance(self.data_options, dict) or not all(isinstance(k, str) for k in self.data_options):
            raise ValueError(f"data_options must be a dict of option names to values, got {self.data_options!r}")
        if self.T_schedule is not None:
            phases = parse_T_schedule(self.T_schedule)
            total = sum(e for _, e in phases)
            if self.epochs != total:
                raise ValueError(
                    f"epochs ({self.epochs}) must equal the total of T_schedule {self.T_schedule!r} ({total})"
                )
            if self.T != phases[0][0]:
                raise ValueError(f"T ({self.T}) must be the first T of T_schedule {self.T_schedule!r} ({phases[0][0]})")
        if self.eval_T is not None:
            if not isinstance(self.eval_T, (list, tuple)) or not self.eval_T:
                raise ValueError(f"eval_T must be a non-empty list of positive integers, got {self.eval_T!r}")
            for t in self.eval_T:
                check_T(t)
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if isinstance(self.warmup_iters, bool) or not isinstance(self.warmup_iters, int) or self.warmup_iters < 0:
            raise ValueError(f"warmup_iters must be an integer >= 0, got {self.warmup_iters!r}")
        if self.max_batches is not None and (not isinstance(self.max_batches, int) or self.max_batches < 1):
            raise ValueError(f"max_batches must be a positive integer or None, got {self.max_batches!r}")
        for name, lo, lo_ok in (("lr", 0.0, False), ("weight_decay", 0.0, True), ("width", 0.0, False),
                                ("v_th", 0.0, False)):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < lo or (v == lo and not lo_ok):
                rel = ">=" if lo_ok else ">"
                raise ValueError(f"{name} must be a finite number {rel} {lo:g}, got {v!r}")
        if self.widths is not None:
            if not isinstance(self.widths, (list, tuple)) or not self.widths:
                raise ValueError(f"widths must be a non-empty list of positive numbers, got {self.widths!r}")
            for w in self.widths:
                if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w <= 0:
                    raise ValueError(f"every width must be a finite number > 0, got {w!r} in {self.widths!r}")
        if self.chi_target is not None:
            if not isinstance(self.chi_target, (int, float)) or not 0 < self.chi_target < 1:
                raise ValueError(f"chi_target must be in (0, 1), got {self.chi_target!r}")
            if isinstance(self.chi_every, bool) or not isinstance(self.chi_every, int) or self.chi_every < 1:
                raise ValueError(f"chi_every must be a positive integer, got {self.chi_every!r}")
            if not 0 < self.chi_w_min <= self.chi_w_max:
                raise ValueError(
                    f"need 0 < chi_w_min <= chi_w_max, got chi_w_min={self.chi_w_min!r}, chi_w_max={self.chi_w_max!r}"
                )
        if not isinstance(self.lamb, (int, float)) or not 0 <= self.lamb <= 1:
            raise ValueError(f"lamb (TET's MSE weight) must be in [0, 1], got {self.lamb!r}")
        if not isinstance(self.tau, (int, float)) or not 0 < self.tau <= 1:
            raise ValueError(f"tau (LIF decay factor) must be in (0, 1], got {self.tau!r}")
        self._validate_hybrid()
        resolve_device(self.device)
        return self

    def _validate_hybrid(self) -> None:
        def positive_int(name, none_ok):
            v = getattr(self, name)
            if v is None and none_ok:
                return
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer{' or None' if none_ok else ''}, got {v!r}")

        n = self.hybrid_ann_epochs
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"hybrid_ann_epochs must be an integer >= 0 (0 = no ANN phase), got {n!r}")
        ck = self.hybrid_ann_checkpoint
        if ck is not None and (not isinstance(ck, str) or not ck.strip()):
            raise ValueError(f"hybrid_ann_checkpoint must be a path (a string) or None, got {ck!r}")
        p = self.hybrid_percentile
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p <= 1:
            raise ValueError(f"hybrid_percentile must be in (0, 1] (0.999 = the 99.9th percentile, as DSR), got {p!r}")
        positive_int("hybrid_calib_batches", True)
        positive_int("hybrid_ann_batch_size", True)
        if self.hybrid_ann_optimizer is not None and self.hybrid_ann_optimizer not in OPTIMIZERS:
            raise ValueError(f"hybrid_ann_optimizer must be one of {', '.join(map(repr, OPTIMIZERS))} or None; "
                             f"got {self.hybrid_ann_optimizer!r}")
        for name, lo_ok in (("hybrid_ann_lr", False), ("hybrid_ann_weight_decay", True)):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                                  or v < 0 or (v == 0 and not lo_ok)):
                raise ValueError(f"{name} must be a finite number {'>=' if lo_ok else '>'} 0 or None, got {v!r}")
        on = n > 0 or ck is not None
        if on and self.method != "dsr":
            raise ValueError(f"hybrid training (hybrid_ann_epochs={n!r}, hybrid_ann_checkpoint={ck!r}) needs "
                             f"method 'dsr', got method {self.method!r}")
        if n > 0 and ck is not None:
            raise ValueError(f"give hybrid_ann_epochs (train an ANN) or hybrid_ann_checkpoint (use a trained one), "
                             f"not both: got {n!r} and {ck!r}")
        ann_only = ("hybrid_ann_optimizer", "hybrid_ann_lr", "hybrid_ann_weight_decay", "hybrid_ann_batch_size")
        set_ = [k for k in ann_only if getattr(self, k) is not None]
        if set_ and n == 0:
            raise ValueError(f"{', '.join(set_)} set but there is no ANN phase to use them (hybrid_ann_epochs=0)")
        if not on and self.hybrid_calib_batches is not None:
            raise ValueError("hybrid_calib_batches set but hybrid training is off (hybrid_ann_epochs=0 and no "
                             "hybrid_ann_checkpoint)")

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self, path: str | os.PathLike) -> None:
        _atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown config field(s) {sorted(unknown)}; allowed: {sorted(names)}")
        return cls(**d)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "TrainConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


# Fields that may differ between the run that wrote a checkpoint and the run that resumes it.
# The GPU options are how a run is computed on a machine, not what it computes: a run checkpointed on one
# machine may continue on another (e.g. a GPU without bfloat16, or a CPU).
_RESUME_FREE = {"resume", "progress", "device", "out_dir", "data_root", "amp", "amp_dtype", "channels_last", "cudnn_benchmark"}


class History(list):
    """The per-epoch metrics (a list of dicts), with the trained ``model`` and the ``config`` attached.

    ``hybrid``: with DSR hybrid training, what the ANN phase gave (``snnlab.hybrid``: the ANN's test accuracy, the
    calibrated thresholds, the SNN's test accuracy right after initialisation); None otherwise.
    """

    def __init__(self, rows=(), model: nn.Module | None = None, config: TrainConfig | None = None):
        super().__init__(rows)
        self.model = model
        self.config = config
        self.hybrid: dict | None = None

    @property
    def last(self) -> dict:
        return self[-1] if self else {}

    def frame(self):
        """The history as a ``pandas.DataFrame``."""
        import pandas as pd

        return pd.DataFrame(list(self))


# ----------------------------------------------------------------------------------------------------------
# files


def atomic_save(obj, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace``: never half-written."""
    _checkpoint.save(obj, path)


def _write_csv(path: Path, rows: list[dict]) -> None:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    w.writerows(rows)
    _atomic_write_text(path, buf.getvalue())


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint written by ``fit`` (a dict with ``model``, ``optimizer``, ``config``, ...)."""
    return _checkpoint.load(path, map_location=map_location)


# ----------------------------------------------------------------------------------------------------------
# pieces of the loop


def build_from_config(config: TrainConfig, bundle) -> nn.Module:
    if config.method == "dsr":
        from .models.dsr import build_dsr_model

        kw = {"v_th": config.dsr_v_th, "alpha": config.dsr_alpha, "v_th_lower_bound": config.dsr_v_th_bound}
        kw = {k: v for k, v in kw.items() if v is not None}
        if config.neuron == "lif":
            kw.update(tau=config.dsr_tau, dt=config.dsr_dt, threshold_grad=config.dsr_threshold_grad)
        return build_dsr_model(config.model, bundle.input_shape, bundle.num_classes, neuron=config.neuron, **kw)
    neuron = partial(
        make_neuron,
        config.neuron,
        tau=config.tau,
        v_th=config.v_th,
        reset=config.reset,
        detach_reset=config.detach_reset,
        surrogate=config.surrogate,
        width=config.width,
    )
    model = build_model(config.model, bundle.input_shape, bundle.num_classes, neuron=neuron)
    if config.widths is not None:
        from .chi import set_widths

        set_widths(model, config.widths)
    return model


def load_data(config: TrainConfig):
    """The dataset of a config (event data with ``T = config.T`` frames), read from ``config.data_root``."""
    opts = dict(config.data_options)
    kw = dict(T=config.T, seed=config.data_seed) if config.dataset in _data.TEMPORAL else {}
    try:
        return _data.load(config.dataset, root=config.data_root, **kw, **opts)
    except TypeError as e:  # an option the loader does not take: a bad config value, named as such
        if "unknown keyword argument" not in str(e):
            raise
        raise ValueError(f"data_options {opts!r} for {config.dataset!r}: {e}") from None


def parse_T_schedule(spec: str) -> list[tuple[int, int]]:
    """``"2:30,6:5"`` -> ``[(2, 30), (6, 5)]``: T=2 for 30 epochs, then T=6 for 5 (TET's TIT).

    Raises ValueError naming the bad part.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"T_schedule must look like '2:30,6:5' (T:epochs,...), got {spec!r}")
    phases = []
    for part in spec.split(","):
        try:
            T, ep = (int(v) for v in part.strip().split(":"))
        except ValueError:
            raise ValueError(
                f"bad T_schedule part {part.strip()!r} in {spec!r}: expected T:epochs with positive integers, "
                "e.g. '2:30,6:5'"
            ) from None
        if T < 1 or ep < 1:
            raise ValueError(f"bad T_schedule part {part.strip()!r} in {spec!r}: T and epochs must be >= 1")
        phases.append((T, ep))
    return phases


def T_at_epoch(config: TrainConfig, epoch: int) -> int:
    """The number of time steps used in (1-based) ``epoch``: ``config.T`` or the T_schedule's."""
    if config.T_schedule is None:
        return config.T
    end = 0
    for T, ep in parse_T_schedule(config.T_schedule):
        end += ep
        if epoch <= end:
            return T
    return T


def parse_T_list(spec) -> list[int]:
    """``"1,2,4"`` or ``[1, 2, 4]`` -> ``[1, 2, 4]``, each a positive integer."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = []
    for item in items:
        try:
            out.append(check_T(int(item) if isinstance(item, str) else item))
        except ValueError:
            raise ValueError(f"bad T {item!r} in {spec!r}: each T must be a positive integer") from None
    return out


def temporal_scalability(model: nn.Module, config: TrainConfig, Ts, device=None, bundle=None) -> dict[int, float]:
    """Test accuracy of a trained model at every T' in ``Ts``, without fine-tuning (TET Sec. 5.3, Fig. 4A).

    Static data is repeated T' times. Event data is re-simulated with T' frames (the same sub-steps binned
    into T' frames, so each frame holds about T/T' times the events of a training frame).
    """
    Ts = parse_T_list(Ts)
    out = {}
    for T in Ts:
        if bundle is not None and not bundle.temporal:
            b = bundle
        else:
            b = load_data(config.replace(T=T))
        _, test_loader = b.loaders(256)
        out[T] = evaluate(model, test_loader, T, b.temporal, device)["acc"]
    return out


def loss_from_config(config: TrainConfig):
    """The training loss of a config: ``sdt_loss`` or ``tet_loss`` with the config's ``lamb`` and ``phi``."""
    fn = _losses.get(config.method)
    if config.method == "tet":
        return partial(fn, lamb=config.lamb, phi=config.phi)
    return fn


@torch.no_grad()
def evaluate(model: nn.Module, loader, T: int, temporal: bool, device=None, loss_fn=_losses.sdt_loss,
             *, reduce=None) -> dict:
    """Loss and accuracy (prediction = argmax of ``mean_t O(t)``) of ``model`` over ``loader``.

    Also returns ``acc_per_step``: the accuracy of ``O(t)`` alone at every step t (TET's per-step view).
    ``reduce`` (several processes, each with a part of the test set): a function summing a float64 tensor
    over the processes, applied to the loss sum and the counts before dividing.
    """
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, loss_sum, correct = 0, 0.0, 0
    correct_t = None
    for x, y in loader:
        x, y = encode(x.to(device), T, temporal), y.to(device)
        out = model(x).float()
        loss_sum += float(loss_fn(out, y)) * len(y)
        correct += int((out.mean(0).argmax(-1) == y).sum())
        c_t = (out.argmax(-1) == y).sum(1)
        correct_t = c_t if correct_t is None else correct_t + c_t
        total += len(y)
    model.train(was_training)
    if reduce is not None:
        sums = reduce(torch.tensor([loss_sum, correct, total, *correct_t.tolist()], dtype=torch.float64))
        loss_sum, correct, total = float(sums[0]), int(sums[1]), int(sums[2])
        correct_t = sums[3:]
    return {
        "loss": loss_sum / total,
        "acc": correct / total,
        "acc_per_step": (correct_t.float() / total).tolist(),
    }


def fit(
    config: TrainConfig,
    *,
    callbacks: list[Callback] | tuple = (),
    stop_after: int | None = None,
    bundle=None,
    model: nn.Module | None = None,
) -> History:
    """Train ``config`` and return the per-epoch metrics (``History``; ``.model`` is the trained model).

    Args:
        config: the run (validated first: a bad field raises ValueError naming it).
        callbacks: ``Callback`` objects observing the loop.
        stop_after: stop after this epoch (1-based) as if interrupted; ``resume=True`` continues later.
        bundle: a ``snnlab.data.DataBundle`` to use instead of loading ``config.dataset``.
        model: a model to train instead of building ``config.model`` (e.g. to fine-tune).
    """
    config.validate()
    ctx, device = _dist.setup(resolve_device(config.device))
    try:
        return _fit(config, callbacks, stop_after, bundle, model, ctx, device)
    finally:
        ctx.close()


def _load_scaler(scaler, state: dict) -> None:
    """Restore a GradScaler unless the checkpoint's was disabled (e.g. written on a CPU or with bfloat16):
    then the scaler starts fresh (its scale is re-learnt within a few steps)."""
    if state:
        scaler.load_state_dict(state)


def _hybrid_phase(config, model, ann, bundle, ctx, device, loss_fn, out) -> dict:
    """DSR hybrid training before the SNN phase (snnlab.hybrid): train (or load) ``ann``, the model's ANN twin,
    calibrate the thresholds on the training data (rank 0, sent to the others), load the ANN into ``model``;
    return the ANN's and the initialised SNN's test accuracy and the thresholds."""
    from . import hybrid as _hybrid
    from .models.dsr import thresholds

    acfg = _hybrid.ann_config(config, bundle.temporal)
    if config.hybrid_ann_checkpoint is not None:
        ann = _hybrid.load_ann(ann, config.hybrid_ann_checkpoint).to(device)
        source = config.hybrid_ann_checkpoint
    else:
        _fit(acfg, (), None, bundle, ann, ctx, device, phase="ANN ")  # trains ``ann`` in place, in <out>/ann
        source = str(out / "ann" / "checkpoint.pt") if out is not None else None
    pct, n = _hybrid.calibrate(ann, config, bundle, device, progress=config.progress) if ctx.is_main else (None, None)
    if ctx.enabled:
        pct, n = ctx.broadcast_object((pct, n))
    _hybrid.init_snn_from_ann(model, ann, _hybrid.thresholds_from_percentiles(model, pct))
    _, test_loader = bundle.loaders(config.batch_size)
    if ctx.enabled:
        test_loader = _dist.shard_eval_loader(test_loader, ctx)
    reduce = ctx.all_reduce_sum if ctx.enabled else None
    T = T_at_epoch(config, 1)
    info = {
        "ann": source, "ann_epochs": acfg.epochs if config.hybrid_ann_checkpoint is None else None, "ann_T": acfg.T,
        "ann_test_acc": evaluate(ann, test_loader, acfg.T, bundle.temporal, device, loss_fn, reduce=reduce)["acc"],
        "percentile": config.hybrid_percentile, "calib_batches": n, "activation_percentiles": pct,
        "thresholds": thresholds(model), "T": T,
        "snn_init_test_acc": evaluate(model, test_loader, T, bundle.temporal, device, loss_fn, reduce=reduce)["acc"],
    }
    if out is not None and ctx.is_main:
        _atomic_write_text(out / "hybrid.json", json.dumps(info, indent=2) + "\n")
    return info


def _fit(config, callbacks, stop_after, bundle, model, ctx, device, phase: str = "") -> History:
    use_amp = bool(config.amp) and device.type == "cuda"
    amp_dtype = getattr(torch, config.amp_dtype)
    channels_last = bool(config.channels_last) and device.type == "cuda"
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = bool(config.cudnn_benchmark)
    if ctx.enabled:
        if config.batch_size % ctx.world_size:
            raise ValueError(
                f"batch_size {config.batch_size} is the global batch and must be divisible by the number of "
                f"processes {ctx.world_size} (each process takes batch_size / {ctx.world_size})"
            )
        if config.chi_target is not None:
            raise ValueError("chi_target (the chi controller) is not supported with several processes yet")
    main = ctx.is_main
    out = Path(config.out_dir) if config.out_dir else None
    ckpt_path = out / "checkpoint.pt" if out else None

    seed_everything(config.seed)
    given_bundle = bundle
    bundle = bundle if bundle is not None else load_data(config)
    bundles = {config.T: bundle}  # event data: one simulated dataset per T (TIT switches T)

    def bundle_for(T):
        if not bundle.temporal:
            return bundle
        if T not in bundles:
            if given_bundle is not None:
                raise ValueError(f"T changes to {T} but the given event bundle has T={bundle.T}; pass no bundle")
            bundles[T] = load_data(config.replace(T=T))
        return bundles[T]
    if model is None:
        model = build_from_config(config, bundle)
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    hybrid = config.method == "dsr" and (config.hybrid_ann_epochs > 0 or config.hybrid_ann_checkpoint is not None)
    if hybrid:  # the ANN twin is copied before DDP's synchronised BN (which holds the process group) goes in
        from .hybrid import ann_twin

        ann = ann_twin(model)
    train_model = _dist.wrap_model(model, ctx, device)  # DDP + synchronised BN; ``model`` itself if one process
    reduce = ctx.all_reduce_sum if ctx.enabled else None
    loss_fn = loss_from_config(config)
    if config.optimizer == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.SGD(
            model.parameters(), lr=config.lr, momentum=0.9, weight_decay=config.weight_decay
        )
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
        if config.scheduler == "cosine"
        else None
    )
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    callbacks = list(callbacks)
    if config.chi_target is not None:
        from .chi import ChiController

        callbacks.append(ChiController(target=config.chi_target, every=config.chi_every,
                                       w_min=config.chi_w_min, w_max=config.chi_w_max, signal=config.chi_signal))
    history = History(model=model, config=config)
    history.callbacks = callbacks
    start_epoch = 1
    global_step = 0  # optimizer steps taken so far (all epochs): drives the warm-up
    resumed_callbacks = None
    if ctx.enabled:  # rank 0 reads the checkpoint and sends it: the other machines need no shared disk
        ck = None
        if main and config.resume and ckpt_path is not None and ckpt_path.exists():
            ck = load_checkpoint(ckpt_path, map_location="cpu")
        ck = ctx.broadcast_object(ck)
    elif config.resume and ckpt_path is not None and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path, map_location=device)
    else:
        ck = None
    if ck is not None:
        saved = TrainConfig.from_dict(ck["config"])
        diff = {
            k: (getattr(saved, k), getattr(config, k))
            for k in saved.to_dict()
            if k not in _RESUME_FREE and getattr(saved, k) != getattr(config, k)
        }
        if diff:
            raise ValueError(
                f"cannot resume from {ckpt_path}: config differs in {', '.join(f'{k} (checkpoint {a!r}, now {b!r})' for k, (a, b) in diff.items())}"
            )
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(ck["scheduler"])
        _load_scaler(scaler, ck["scaler"])
        history.extend(ck["history"])
        start_epoch = ck["epoch"] + 1
        global_step = ck.get("global_step", 0)
        resumed_callbacks = ck.get("callbacks")
    if hybrid:  # a resumed SNN phase starts from its own checkpoint: the ANN phase is never repeated
        history.hybrid = ck.get("hybrid") if ck is not None else _hybrid_phase(
            config, model, ann, bundle, ctx, device, loss_fn, out)
        del ann
    if out is not None and main:  # after the ANN phase: a bad ANN checkpoint leaves the run folder as it was
        config.to_json(out / "config.json")

    state = _State(model=model, optimizer=optimizer, config=config, epoch=start_epoch, step=0, log={},
                   device=device)
    for cb in callbacks:
        cb.on_fit_start(state)
    if resumed_callbacks is not None:
        for cb, st in zip(callbacks, resumed_callbacks):
            cb.load_state_dict(st)

    from tqdm.auto import tqdm

    show = config.progress and main
    epochs = tqdm(range(start_epoch, config.epochs + 1), desc=f"{phase}epochs", disable=not show,
                  initial=start_epoch - 1, total=config.epochs)
    for epoch in epochs:
        state.epoch, state.log = epoch, {}
        T = T_at_epoch(config, epoch)
        data = bundle_for(T)
        seed_everything(_epoch_seed(config.seed, epoch) + ctx.rank)
        train_loader, test_loader = data.loaders(config.batch_size, shuffle_seed=_epoch_seed(config.seed, epoch))
        if ctx.enabled:  # this rank's part of each global batch; an interleaved part of the test set
            train_loader = _dist.shard_train_loader(train_loader, ctx)
            test_loader = _dist.shard_eval_loader(test_loader, ctx)
        model.train()
        t0 = time.perf_counter()
        n, loss_sum, correct = 0, 0.0, 0
        n_batches = len(train_loader) if config.max_batches is None else min(config.max_batches, len(train_loader))
        bar = tqdm(train_loader, total=n_batches, desc=f"{phase}epoch {epoch}", leave=False, disable=not show)
        epoch_lrs = [g["lr"] for g in optimizer.param_groups]  # the scheduler's rates for this epoch
        for step, (x, y) in enumerate(bar, start=1):
            if step > n_batches:
                break
            state.step = step
            x = x.to(device)
            if channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            x, y = encode(x, T, data.temporal), y.to(device)
            with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=use_amp):
                outputs = train_model(x)
                loss = loss_fn(outputs.float(), y)
            loss_value = float(loss.detach())
            finite = math.isfinite(loss_value)
            if ctx.enabled:
                # global batch size and "did any rank diverge", in one all-reduce; the loss is weighted so that
                # DDP's average of the ranks' gradients is the gradient of the global-batch mean loss
                n_global, bad = ctx.all_reduce_sum(torch.tensor([float(len(y)), float(not finite)])).tolist()
                finite = bad == 0
                loss = loss * (ctx.world_size * len(y) / n_global)
            if not finite:
                raise NonFiniteLossError(
                    f"loss is {'not finite on another process' if math.isfinite(loss_value) else loss_value} "
                    f"at epoch {epoch}, step {step} (lr={config.lr:g}); "
                    + (f"the last good checkpoint is {ckpt_path} (epoch {epoch - 1})" if ckpt_path and epoch > 1
                       else "no checkpoint was written yet")
                )
            if global_step < config.warmup_iters:  # DSR's warm-up: the epoch's rate times (k + 1) / N
                for g, lr in zip(optimizer.param_groups, epoch_lrs):
                    g["lr"] = lr * (global_step + 1) / config.warmup_iters
            global_step += 1
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            state.outputs, state.loss = outputs, loss_value
            for cb in callbacks:
                cb.on_after_backward(state)
            scaler.step(optimizer)
            scaler.update()
            for cb in callbacks:
                cb.on_step_end(state)
            n += len(y)
            loss_sum += loss_value * len(y)
            correct += int((outputs.detach().mean(0).argmax(-1) == y).sum())
            bar.set_postfix(loss=f"{loss_sum / n:.3f}", acc=f"{correct / n:.3f}")
        bar.close()
        train_time = time.perf_counter() - t0
        if ctx.enabled:
            n, loss_sum, correct = ctx.all_reduce_sum(torch.tensor([n, loss_sum, correct], dtype=torch.float64)).tolist()
            n, correct = int(n), int(correct)
        for g, lr in zip(optimizer.param_groups, epoch_lrs):  # undo the warm-up before the scheduler steps
            g["lr"] = lr
        if scheduler is not None:
            scheduler.step()
        ev = evaluate(model, test_loader, T, data.temporal, device, loss_fn, reduce=reduce)
        row = {
            "epoch": epoch,
            "T": T,
            # cost in T-weighted epochs (TIT): the sum of T over the epochs trained so far
            "T_epochs": (history.last.get("T_epochs", 0) if history else 0) + T,
            "train_loss": loss_sum / n,
            "train_acc": correct / n,
            "test_loss": ev["loss"],
            "test_acc": ev["acc"],
            "lr": optimizer.param_groups[0]["lr"],
            "epoch_time_s": train_time,
        }
        for cb in callbacks:
            cb.on_epoch_end(state)
        row.update(state.log)
        history.append(row)
        epochs.set_postfix(test_acc=f"{ev['acc']:.3f}")
        if out is not None and main:
            _write_csv(out / "metrics.csv", list(history))
            atomic_save(
                {
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "scaler": scaler.state_dict(),
                    "global_step": global_step,
                    "history": list(history),
                    "config": config.to_dict(),
                    "callbacks": [cb.state_dict() for cb in callbacks],
                    "hybrid": history.hybrid,
                },
                ckpt_path,
            )
        if out is not None:
            ctx.barrier()  # every rank goes on only once the epoch's checkpoint is on disk
        if stop_after is not None and epoch >= stop_after:
            break
    epochs.close()
    if start_epoch > config.epochs:  # resumed a finished run (e.g. a hybrid run's ANN phase): nothing to train
        T = T_at_epoch(config, config.epochs)
        data = bundle_for(T)
        _, test_loader = data.loaders(config.batch_size)
        if ctx.enabled:
            test_loader = _dist.shard_eval_loader(test_loader, ctx)
    if out is not None and history and history.last["epoch"] == config.epochs:
        final = dict(history.last)
        final["acc_per_step"] = evaluate(model, test_loader, T, data.temporal, device, loss_fn,
                                         reduce=reduce)["acc_per_step"]
        if not main:
            return history
        if config.eval_T:
            final["acc_by_T"] = temporal_scalability(model, config, config.eval_T, device, given_bundle)
        final["train_time_s"] = sum(r["epoch_time_s"] for r in history)
        if history.hybrid is not None:
            final["hybrid"] = history.hybrid
        _atomic_write_text(out / "results.json", json.dumps({"config": config.to_dict(), "final": final}, indent=2))
    return history


def sweep(base: TrainConfig, grid: list[dict], *, bundle=None, progress: bool = True, **fit_kwargs):
    """Train ``base`` once per dict of changes in ``grid``; return a ``pandas.DataFrame``, one row per run.

    Each row holds the changed fields, the final ``test_acc``/``train_acc``/``test_loss`` and the summed
    training time. The dataset is loaded once and shared when every run uses the same data.

    Example::

        grid = [dict(surrogate=s, width=w) for s in ("triangle", "atan") for w in (0.25, 1, 4)]
        df = snnlab.sweep(TrainConfig(dataset="dvs-digits", epochs=3), grid)
    """
    import pandas as pd
    from tqdm.auto import tqdm

    rows = []
    shared = bundle
    for changes in tqdm(grid, desc="sweep", disable=not progress):
        cfg = base.replace(**changes, progress=False)
        data_key = (cfg.dataset, cfg.T if cfg.dataset in _data.TEMPORAL else None, cfg.data_seed)
        if bundle is None:
            if shared is None or shared_key != data_key:
                shared, shared_key = load_data(cfg), data_key
        hist = fit(cfg, bundle=shared, **fit_kwargs)
        last = hist.last
        rows.append({**changes, "test_acc": last["test_acc"], "train_acc": last["train_acc"],
                     "test_loss": last["test_loss"], "train_time_s": sum(r["epoch_time_s"] for r in hist)})
    return pd.DataFrame(rows)
