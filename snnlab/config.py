"""``TrainConfig``: everything that defines a run, each field declared once (``snnlab.options``).

The core fields (data, model, neuron, optimisation, run) are ``TrainConfig``'s own; each method's and add-on's
options live with it (``snnlab.methods``) and are held in ``config.method_options[<part>]``. Their flat names
(``lamb``, ``dsr_v_th``, ``chi_target``, ``hybrid_ann_epochs``, ...) keep working everywhere: as keyword
arguments, attributes, in ``replace``, in old flat JSON and on the command line::

    cfg = TrainConfig(method="dsr", dsr_v_th=0.3)
    cfg.method_options["dsr"].v_th == cfg.dsr_v_th == 0.3

``to_dict`` writes the grouped form (``"method_options": {"dsr": {"v_th": 0.3, ...}, ...}``); ``flat()`` gives
the flat view (tables, recipes, the resume check).
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from . import methods as _methods
from .data import DATASETS
from .data.bundle import SPLITS
from .io import atomic_write_text
from .layers import check_T
from .models import NEURONS
from .neuron_base import RESETS
from .optim import OPTIMIZERS, SCHEDULERS
from .options import Option, check, check_all, option, options_of
from .surrogate import SURROGATES

__all__ = ["TrainConfig", "method_defaults", "resolve_device", "parse_T_schedule", "parse_T_list", "T_at_epoch",
           "core_options", "AMP_DTYPES", "OPTIMIZERS", "SCHEDULERS"]

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


def T_at_epoch(config, epoch: int) -> int:
    """The number of time steps used in (1-based) ``epoch``: ``config.T`` or the T_schedule's."""
    if config.T_schedule is None:
        return config.T
    end = 0
    for T, ep in parse_T_schedule(config.T_schedule):
        end += ep
        if epoch <= end:
            return T
    return T


# -------------------------------------------------------------------------------------------- value checks
def _check_eval_T(v) -> None:
    if not v:
        raise ValueError(f"eval_T must be a non-empty list of positive integers, got {v!r}")
    for t in v:
        check_T(t)


def _check_widths(v) -> None:
    if not v:
        raise ValueError(f"widths must be a non-empty list of positive numbers, got {v!r}")
    for w in v:
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not w == w or abs(w) == float("inf") or w <= 0:
            raise ValueError(f"every width must be a finite number > 0, got {w!r} in {v!r}")


def _check_data_options(v) -> None:
    if not all(isinstance(k, str) for k in v):
        raise ValueError(f"data_options must be a dict of option names to values, got {v!r}")


def _floats(text: str) -> list[float]:
    try:
        return [float(w) for w in text.split(",")]
    except ValueError:
        raise ValueError(f"--widths must be comma-separated numbers, e.g. 1.0,0.5; got {text!r}") from None


def _json_object(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"--data-options must be a JSON object, e.g. '{{\"cutout\": true}}'; got {text!r} "
                         f"({e.msg})") from None


def _model_choices(config) -> tuple:
    return _methods.get(config.method).model_names() if config is not None else ()


def _method_choices(config=None) -> tuple:
    return _methods.names()


DATA, NEURON, OPTIM, RUN, GPU = "data and model", "neuron and surrogate", "optimisation", "run", "GPU and distributed"


@dataclass(init=False)
class TrainConfig:
    """Everything that defines a run. Saved as JSON next to every checkpoint and result.

    The fields are declared with ``snnlab.options.option`` (type, default, allowed values, help, CLI flag); the
    methods' options are in ``method_options`` and under their flat names (``lamb``, ``dsr_v_th``, ...).
    """

    dataset: str = option("digits", "dataset: embedded (digits, dvs-digits) or read from --data-root",
                          choices=DATASETS, group=DATA)
    model: str = option("tutorial", "architecture (the method says which it can build)", choices=_model_choices,
                        group=DATA)
    method: str = option("sdt", "training method: sdt = CE of the time-averaged output, tet = CE at every step + "
                                "lamb * MSE(O(t), phi), dsr = differentiation on spike representation (rate CE, "
                                "gradients through the firing-rate mapping); or a registered one (snnlab.methods)",
                         choices=_method_choices, group=DATA)
    T: int = option(4, "time steps; for event data the number of frames", lo=1, label="T (number of time steps)",
                    group=DATA, default_help="4, or the first T of --T-schedule")
    T_schedule: str | None = option(None, "temporal inheritable training (TET): e.g. 2:30,6:5 trains T=2 for 30 "
                                          "epochs then T=6 for 5, carrying weights and optimizer state; sets "
                                          "--epochs to the total", kind=str, check=parse_T_schedule,
                                    metavar="T:EPOCHS,...", group=DATA)
    eval_T: list | None = option(None, "after training, test accuracy at each of these T without fine-tuning "
                                       "(temporal scalability), e.g. 1,2,4,6,8; saved in results.json", kind=list,
                                 allowed="a non-empty list of positive integers", check=_check_eval_T,
                                 parse=parse_T_list, metavar="T,T,...", group=DATA)
    split: str = option("test", "what the run evaluates: test = train on the whole training split, test accuracy "
                                "every epoch (the papers' protocol); val = train without the validation part "
                                "(a fixed, stratified 20%% of the embedded sets' training split, 10%% of the "
                                "papers'), validation accuracy every epoch, the test split never read (for "
                                "choosing settings); final = as val, then the test accuracy once after the last "
                                "epoch (the run of a chosen setting)", choices=SPLITS, group=DATA)
    epochs: int = option(10, "epochs to train", lo=1, group=OPTIM, default_help="10, or the total of --T-schedule")
    batch_size: int = option(64, "batch size (the global batch with several processes)", lo=1, group=OPTIM)
    lr: float = option(1e-3, "learning rate", lo=0, lo_open=True, group=OPTIM)
    optimizer: str = option("adam", "adam, or sgd (momentum 0.9)", choices=OPTIMIZERS, group=OPTIM)
    weight_decay: float = option(0.0, "weight decay", lo=0, group=OPTIM)
    scheduler: str = option("cosine", "learning-rate schedule: cosine (per epoch, to 0) or none",
                            choices=SCHEDULERS, group=OPTIM)
    warmup_iters: int = option(0, "linear learning-rate warm-up over the first N optimizer steps (DSR's code: 400)",
                               lo=0, metavar="N", group=OPTIM)
    warmup_epochs: float = option(0.0, "linear learning-rate warm-up over the first E epochs' optimizer steps, "
                                       "whatever the data set's steps per epoch (DSR's 400 iterations are about one "
                                       "epoch of CIFAR's 391: --method dsr warms up for 1); not with --warmup-iters",
                                  lo=0, metavar="E", group=OPTIM)
    neuron: str = option("lif", "spiking neuron", choices=NEURONS, group=NEURON)
    tau: float = option(0.5, "LIF decay factor in (0, 1], u = tau*u + I (TET)", lo=0, hi=1, lo_open=True,
                        label="tau (LIF decay factor)", group=NEURON)
    v_th: float = option(1.0, "firing threshold > 0", lo=0, lo_open=True, group=NEURON)
    reset: str = option("hard", "reset after a spike", choices=RESETS, group=NEURON)
    detach_reset: bool = option(False, "stop the gradient through the reset", metavar="BOOL", group=NEURON)
    surrogate: str = option("triangle", "surrogate spike derivative", choices=tuple(SURROGATES), group=NEURON)
    width: float = option(1.0, "surrogate width = full width at half maximum of its derivative, > 0", lo=0,
                          lo_open=True, group=NEURON)
    widths: list | None = option(None, "per-spiking-layer surrogate widths in forward order, e.g. 1.0,0.5 "
                                       "(overrides --width)", kind=list,
                                 allowed="a non-empty list of positive numbers", check=_check_widths, parse=_floats,
                                 metavar="W,W,...", group=NEURON)
    seed: int = option(0, "seed of initialisation and shuffling", lo=0, setting=False, group=RUN)
    data_seed: int = option(0, "seed of the event-camera simulation (dvs-digits)", lo=0, setting=False, group=DATA)
    data_root: str | None = option(None, "folder holding the papers' datasets (cifar-10-batches-py/, dvs-cifar10/, "
                                         "imagenet/) and the dvs-digits cache", kind=str,
                                   allowed="a folder path (a string)", experiment=False, metavar="PATH", group=RUN,
                                   default_help="$SNNLAB_DATA, else the repository's datasets/")
    data_options: dict = option({}, "options of the data loader as a JSON object, e.g. '{\"cutout\": true}' "
                                    "(CIFAR) or '{\"train_per_class\": 900}' (dvs-cifar10); see snnlab.data.load",
                                allowed="a dict of option names to values", check=_check_data_options,
                                parse=_json_object, metavar="JSON", group=RUN)
    device: str = option("auto", "'auto' (CUDA when present), 'cpu', 'cuda', 'cuda:N'", check=resolve_device,
                         experiment=False, group=RUN)
    amp: bool = option(True, "mixed precision on CUDA", experiment=False, metavar="BOOL", group=RUN)
    amp_dtype: str = option("float16", "mixed-precision type on CUDA; bfloat16 needs no loss scaling",
                            choices=AMP_DTYPES, experiment=False, group=GPU)
    channels_last: bool = option(False, "channels-last memory format for the 4-D convolutions on CUDA",
                                 experiment=False, action="store_true", group=GPU)
    cudnn_benchmark: bool = option(False, "let cuDNN pick the fastest kernels on CUDA (not bitwise repeatable)",
                                   experiment=False, action="store_true", group=GPU)
    out_dir: str | None = option(None, "output folder for config.json, metrics.csv, checkpoint.pt", kind=str,
                                 experiment=False, flag="--out", metavar="PATH", group=RUN,
                                 default_help="runs/<dataset>-<model>-<method>-T<T>-s<seed>")
    resume: bool = option(False, "continue from <out>/checkpoint.pt", experiment=False, action="store_true",
                          group=RUN)
    progress: bool = option(True, "progress bars (the flag: no progress bars)", experiment=False, flag="--no-progress",
                            action="store_false", group=RUN)
    max_batches: int | None = option(None, "cap on training batches per epoch, for quick runs", kind=int, lo=1,
                                     group=OPTIM, default_help="all")
    extra: dict = option({}, "free-form notes, saved with the run", setting=False, flag="", group=RUN)
    method_options: dict = field(default_factory=dict)  #: {part name: its options}: see snnlab.methods

    # ------------------------------------------------------------------------------------- construction
    def __init__(self, **kw):
        core = core_options()
        flat = {k: kw.pop(k) for k in list(kw) if k in _methods.flat_options()}
        unknown = set(kw) - set(core) - {"method_options"}
        if unknown:
            raise TypeError(f"TrainConfig got unknown field(s) {sorted(unknown)}; allowed: "
                            f"{sorted(set(core) | set(_methods.flat_options()))}")
        own = method_defaults(kw.get("method", core["method"].default), given=kw)
        for name, opt in core.items():
            default = own.get(name, opt.default)
            default = type(default)(default) if isinstance(default, (list, dict)) else default
            object.__setattr__(self, name, kw.get(name, default))
        self.method_options = _group_options(kw.get("method_options") or {})
        for k, v in flat.items():
            setattr(self, k, v)

    def __getattr__(self, name):  # only for names that are not attributes: the methods' flat option names
        if name.startswith("__") or name == "method_options":
            raise AttributeError(name)
        hit = _methods.owner_of(name)
        if hit is None:
            raise AttributeError(f"'TrainConfig' has no field {name!r}")
        part, own = hit
        return getattr(self.method_options[part.name], own)

    def __setattr__(self, name, value):
        hit = _methods.owner_of(name) if name not in _CORE_NAMES else None
        if hit is not None:
            setattr(self.method_options[hit[0].name], hit[1], value)
        else:
            object.__setattr__(self, name, value)

    # ------------------------------------------------------------------------------------- validation
    def validate(self) -> "TrainConfig":
        """Raise ValueError naming the first bad field, its value and what is allowed."""
        core = core_options()
        check(core["method"], self.method, self)
        check_all(core, lambda n: getattr(self, n), self)
        check_all(_methods.flat_options(), lambda n: getattr(self, n), self)
        if self.T_schedule is not None:
            phases = parse_T_schedule(self.T_schedule)
            total = sum(e for _, e in phases)
            if self.epochs != total:
                raise ValueError(
                    f"epochs ({self.epochs}) must equal the total of T_schedule {self.T_schedule!r} ({total})"
                )
            if self.T != phases[0][0]:
                raise ValueError(f"T ({self.T}) must be the first T of T_schedule {self.T_schedule!r} ({phases[0][0]})")
        if self.warmup_iters and self.warmup_epochs:
            raise ValueError(f"give one warm-up, warmup_iters ({self.warmup_iters}) or warmup_epochs "
                             f"({self.warmup_epochs}), not both (set the other to 0)")
        _validate_parts(self)
        return self

    # ------------------------------------------------------------------------------------- views and files
    def to_dict(self) -> dict:
        """The grouped form (what ``config.json`` holds): core fields and ``method_options``."""
        return asdict(self)

    def flat(self) -> dict:
        """The flat form: core fields, then every method option under its flat name (``dsr_v_th``, ...)."""
        d = {k: v for k, v in self.to_dict().items() if k != "method_options"}
        d.update({name: getattr(self, name) for name in _methods.flat_options()})
        return d

    def experiment(self) -> dict:
        """The flat fields that define what the run computes (``experiment=True``): compared on resume."""
        specs = {**core_options(), **_methods.flat_options()}
        return {k: v for k, v in self.flat().items() if specs[k].experiment}

    def to_json(self, path: str | os.PathLike) -> None:
        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def field_names(cls) -> list[str]:
        """Every name a config takes: the core fields, then the methods' options under their flat names."""
        return list(core_options()) + list(_methods.flat_options())

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """From ``to_dict``'s grouped form or an older flat one (``dsr_v_th``, ``chi_target``, ... at the top).

        A saved config is complete: a core field it lacks (one added since it was written) takes the field's own
        default, never the method's recipe (``Method.defaults``), so an old run reads back as what it ran."""
        names = set(cls.field_names()) | {"method_options"}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown config field(s) {sorted(unknown)}; allowed: {sorted(names)}")
        absent = {k: o.default for k, o in core_options().items() if k not in d}
        return cls(**{**absent, **d})

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "TrainConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def replace(self, **changes) -> "TrainConfig":
        """A copy with ``changes`` (core or flat method-option names)."""
        return dataclasses.replace(self, **changes)


def method_defaults(method: str, given=()) -> dict:
    """The core fields ``method`` sets when a config does not give them: its paper's small-scale recipe
    (``Method.defaults``, e.g. DSR: SGD, lr 0.1, weight decay 5e-4, one epoch of warm-up). Fields in ``given`` are
    left out, and a method's ``warmup_epochs`` gives way to a given ``warmup_iters`` (the two are one choice)."""
    try:
        own = dict(_methods.get(method).defaults)
    except (ValueError, TypeError):  # an unknown method: validate() names it
        return {}
    if "warmup_iters" in given:
        own.pop("warmup_epochs", None)
    return {k: v for k, v in own.items() if k not in given}


def core_options() -> dict[str, Option]:
    """``{name: Option}`` of ``TrainConfig``'s own fields (the methods' options: ``snnlab.methods.flat_options``);
    a new dict each call (the Options themselves are frozen)."""
    return dict(_CORE)


_CORE = options_of(TrainConfig)
_CORE_NAMES = frozenset(_CORE) | {"method_options"}
_methods.reserve(_CORE_NAMES)


def _group_options(given: dict) -> dict:
    """``{part name: Options instance}`` for every registered part with options, from ``given`` (instances or
    dicts; copied, never shared with another config)."""
    if not isinstance(given, dict):
        raise ValueError(f"method_options must be a dict of part name to options, got {given!r}")
    parts = {p.name: p for p in _methods.parts() if p.Options is not None}
    unknown = set(given) - set(parts)
    if unknown:
        raise ValueError(f"method_options has options for {sorted(unknown)}, not registered parts with options; "
                         f"registered: {sorted(parts)}")
    out = {}
    for name, part in parts.items():
        g = given.get(name)
        if g is None:
            out[name] = part.Options()
        elif isinstance(g, part.Options):
            out[name] = dataclasses.replace(g)
        elif isinstance(g, dict):
            allowed = {f.name for f in dataclasses.fields(part.Options)}
            if set(g) - allowed:
                raise ValueError(f"unknown option(s) {sorted(set(g) - allowed)} in method_options[{name!r}]; "
                                 f"allowed: {sorted(allowed)}")
            out[name] = part.Options(**g)
        else:
            raise ValueError(f"method_options[{name!r}] must be a dict or {part.Options.__name__}, got {g!r}")
    return out


def _validate_parts(config) -> None:
    """The checks across the method and its add-ons."""
    method = _methods.method_of(config)
    active = _methods.active_parts(config)
    if not method.uses_surrogate:
        needs = [p.label(config) for p in _methods.parts() if p.needs_surrogate] + ["widths"]
        if config.widths is not None or any(p.needs_surrogate for p in active):
            raise ValueError(f"method {method.name!r} has no surrogate: {' and '.join(needs)} do not apply")
    for p in active[1:]:
        if p.requires and config.method not in p.requires:
            raise ValueError(f"{p.label(config)} needs method {' or '.join(map(repr, p.requires))}, got method "
                             f"{config.method!r}")
    for p in _methods.parts():
        p.validate(config)
