"""What a training method is (``Method``: options, model, loss, callbacks, a phase before training) and the registry.

A method is a part that the training loop (``snnlab.loop``) calls without knowing its name::

    from dataclasses import dataclass
    import torch
    from snnlab.methods import Method, register
    from snnlab.options import option

    @dataclass
    class Options:
        smoothing: float = option(0.1, "label smoothing", lo=0, hi=1, group="my method")

    class Smoothed(Method):
        name, Options = "smooth", Options

        def loss(self, config):
            s = self.options(config).smoothing
            return lambda out, y: torch.nn.functional.cross_entropy(out.mean(0), y, label_smoothing=s)

    register(Smoothed())     # now TrainConfig(method="smooth", smooth_smoothing=0.2), --method smooth --smooth-smoothing 0.2

``kind = "method"``: chosen by ``config.method`` (exactly one per run). ``kind = "addon"``: on top of the method,
active when :meth:`Method.active` says so (the chi-adaptive surrogate: ``chi_target`` set; DSR's hybrid ANN phase).
A part's options live in ``config.method_options[part.name]`` (a dataclass of :func:`snnlab.options.option`
fields); their flat names ``<prefix><name>`` (``dsr_v_th``, ``chi_target``, TET's ``lamb``) work as keyword
arguments, attributes, JSON keys and ``--flags``.
"""
from __future__ import annotations

from functools import partial

from torch import nn

from .. import losses as _losses
from ..chi import set_widths
from ..models import MODELS, build_model, make_neuron
from ..options import Option, options_of

__all__ = ["Method", "register", "unregister", "reserve", "get", "names", "parts", "active_parts", "method_of",
           "flat_options", "owner_of"]

_REGISTRY: dict[str, "Method"] = {}


class Method:
    """One training method or add-on. Override what the method changes; the defaults are plain surrogate training.

    Attributes:
        name: the registry key, ``config.method``'s value for a method, the key in ``config.method_options``.
        kind: ``"method"`` or ``"addon"``.
        Options: a dataclass of :func:`snnlab.options.option` fields (None: the part has no options).
        prefix: the flat names of its options are ``prefix + field`` (default ``"<name>_"``).

        uses_surrogate: False for a method whose neurons have no surrogate (then ``widths`` and surrogate add-ons
            are refused).

        needs_surrogate: an add-on that adapts the surrogate (refused with a method that has none).
        supports_distributed: False if it cannot run in several processes yet.
        requires: an add-on's methods (empty: any method).
        models: the model names it can build (None: ``snnlab.models.MODELS``).
        cli_group: ``(title, description)`` of its section in ``--help``.

        cli_takes: ``{core field: own field}``: with this method, the core field's flag sets its own option
            instead (kept for flags that meant the method's option before it had its own flag).
        defaults: ``{core field: value}``: the method's own recipe (its paper's small-scale optimiser, learning
            rate, weight decay, warm-up), used for every field a config does not give (``TrainConfig(method=...)``,
            ``snnlab train --method ...``); a given value always wins. Empty: the core defaults. ``replace()``
            copies every value of the config it starts from: ``cfg.replace(method="dsr")`` keeps ``cfg``'s optimiser.
        sweep_grid: ``{field: values}``: the small grid ``snnlab.sweep`` searches by default (the learning rate
            and one knob of the method's own), on the validation split.
    """

    name: str = ""
    kind: str = "method"
    Options: type | None = None
    prefix: str | None = None
    uses_surrogate: bool = True
    needs_surrogate: bool = False
    supports_distributed: bool = True
    requires: tuple = ()
    models: tuple | None = None
    cli_group: tuple = ("", "")
    cli_takes: dict = {}
    defaults: dict = {}
    sweep_grid: dict = {"lr": (3e-3, 1e-2, 3e-2, 1e-1), "width": (0.5, 1.0, 2.0)}

    # ---------------------------------------------------------------------------------------- options
    def flat_prefix(self) -> str:
        return f"{self.name}_" if self.prefix is None else self.prefix

    def option_specs(self) -> dict[str, Option]:
        """``{flat name: Option}`` of its options."""
        return options_of(self.Options, self.flat_prefix()) if self.Options is not None else {}

    def options(self, config):
        """This part's options in ``config`` (an instance of ``Options``)."""
        return config.method_options[self.name]

    # ---------------------------------------------------------------------------------------- decisions
    def active(self, config) -> bool:
        """Whether the part takes part in ``config``'s run (a method: ``config.method == name``)."""
        return config.method == self.name

    def label(self, config) -> str:
        """How errors name the setting that turned it on."""
        return f"method {self.name!r}"

    def model_names(self) -> tuple:
        return tuple(MODELS) if self.models is None else tuple(self.models)

    def validate(self, config) -> None:
        """Checks across fields, once every option has its type (called for every registered part)."""

    def grid(self, config) -> dict:
        """The grid ``snnlab.sweep`` searches for ``config`` by default (a method: the learning rate and its knob;
        an add-on: its knob, which replaces the method's)."""
        return dict(self.sweep_grid)

    # ---------------------------------------------------------------------------------------- the run
    def build_model(self, config, bundle) -> nn.Module:
        """The model of ``config`` for ``bundle``'s inputs (default: ``snnlab.models`` with the config's neuron)."""
        neuron = partial(make_neuron, config.neuron, tau=config.tau, v_th=config.v_th, reset=config.reset,
                         detach_reset=config.detach_reset, surrogate=config.surrogate, width=config.width)
        model = build_model(config.model, bundle.input_shape, bundle.num_classes, neuron=neuron)
        if config.widths is not None:
            set_widths(model, config.widths)
        return model

    def check_model(self, model: nn.Module, config) -> None:
        """Called with a model given to ``fit(model=...)`` (not built from the config): raise ValueError, naming what
        is wrong, if this part cannot train it. Default: any model."""

    def loss(self, config):
        """The training loss ``(outputs [T, B, C], target [B]) -> scalar`` (default: ``losses.get(name)``)."""
        return _losses.get(self.name)

    def callbacks(self, config) -> list:
        """Callbacks it adds to the loop (after the user's)."""
        return []

    def prepare(self, run) -> None:
        """Called with the built model, before it is wrapped for several processes (keep copies here)."""

    def before_training(self, run) -> dict | None:
        """A phase before the first epoch (e.g. DSR's ANN phase); its result (plain types) goes into
        ``history.phases[name]``, the checkpoint and ``results.json``'s ``final[name]``. Not repeated on resume."""
        return None


# -------------------------------------------------------------------------------------------- the registry
_FLAT: dict[str, tuple[Method, str, Option]] = {}  # flat option name -> (part, field, Option)
_RESERVED: set[str] = set()  # the core config fields (snnlab.config reserves them)


def reserve(names_) -> None:
    """Names no part's option may take (``snnlab.config`` reserves ``TrainConfig``'s own fields)."""
    _RESERVED.update(names_)


def register(part: Method, *, replace: bool = False) -> Method:
    """Add ``part`` to the registry (``replace=True`` to swap one of the same name); returns it."""
    if not isinstance(part, Method):
        raise TypeError(f"register() takes a Method instance, got {part!r}")
    if not part.name or not part.name.isidentifier():
        raise ValueError(f"a method's name must be a Python identifier, got {part.name!r}")
    if part.kind not in ("method", "addon"):
        raise ValueError(f"{part.name}: kind must be 'method' or 'addon', got {part.kind!r}")
    if part.name in _REGISTRY and not replace:
        raise ValueError(f"a method named {part.name!r} is registered already (pass replace=True to swap it)")
    specs = part.option_specs()
    for flat in specs:
        owner = _FLAT.get(flat)
        if flat in _RESERVED or (owner is not None and owner[0].name != part.name):
            raise ValueError(f"{part.name}: option {flat!r} is taken by "
                             f"{'TrainConfig' if flat in _RESERVED else owner[0].name}")
    if part.name in _REGISTRY:
        unregister(part.name)
    _REGISTRY[part.name] = part
    prefix = part.flat_prefix()
    _FLAT.update({flat: (part, flat[len(prefix):], spec) for flat, spec in specs.items()})
    return part


def unregister(name: str) -> None:
    """Remove a part (e.g. a test's toy method); unknown names raise ``KeyError``."""
    del _REGISTRY[name]
    for flat in [f for f, (p, _, _) in _FLAT.items() if p.name == name]:
        del _FLAT[flat]


def get(name: str) -> Method:
    """The registered method called ``name`` (ValueError naming the registered ones for any other name)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; registered: {', '.join(map(repr, names()))}") from None


def names(kind: str = "method") -> tuple[str, ...]:
    """The registered methods (``kind="addon"``: the add-ons), in registration order."""
    return tuple(n for n, p in _REGISTRY.items() if p.kind == kind)


def parts() -> list[Method]:
    """Every registered part, methods first."""
    return [p for p in _REGISTRY.values() if p.kind == "method"] + [p for p in _REGISTRY.values()
                                                                    if p.kind == "addon"]


def method_of(config) -> Method:
    """The registered method a ``TrainConfig`` names (``config.method``)."""
    return get(config.method)


def active_parts(config) -> list[Method]:
    """The config's method, then its active add-ons."""
    return [method_of(config)] + [p for p in parts() if p.kind == "addon" and p.active(config)]


def flat_options() -> dict[str, Option]:
    """``{flat name: Option}`` of every registered part's options."""
    return {flat: spec for flat, (_, _, spec) in _FLAT.items()}


def owner_of(flat: str) -> tuple[Method, str] | None:
    """``(part, field name in its Options)`` for a flat option name, or None."""
    hit = _FLAT.get(flat)
    return (hit[0], hit[1]) if hit is not None else None
