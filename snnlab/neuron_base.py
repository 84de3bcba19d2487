"""What a spiking neuron is in snnlab: the ``SpikingNeuron`` protocol, the one test for it, and shared checks.

Every tool that must find the spiking layers of a model (``snnlab.chi``, ``snnlab.memory``, ``snnlab.dsr``'s
helpers) asks ``is_spiking(module)`` or ``spiking_neurons(model)``; nothing tests for a concrete class.

The protocol (``SpikingNeuron``):

* a multi-step ``nn.Module``: ``forward`` maps a time-first input current ``[T, B, ...]`` to spikes
  ``[T, B, ...]``, and keeps no state between calls (two batches never leak into each other);
* ``kind``: a short string naming the neuron model (``"lif"``, ``"if"``, ``"dsr-if"``, ...);
* ``v_th``: the firing threshold (a float, or a 0-d tensor when it is trainable);
* ``surrogate``: the ``snnlab.surrogate.Surrogate`` whose derivative stands in for the spike's in the backward
  pass, or None when the neuron has none (DSR's neurons: their backward is the representation mapping);
* ``width_adaptable``: True when ``width`` can be changed (the chi controller does): by default, when
  ``surrogate`` is a ``Surrogate``;
* ``width``: the surrogate's width (get/set); None when not adaptable, and setting it then raises ValueError;
* optional membrane recording (chi's neuron-level view): with ``record = True`` a forward stores the pre-reset
  membrane ``[T, B, ...]`` (detached) in ``last_mem``.

A subclass of ``SpikingNeuron`` is seen by every tool without any registration. A neuron class that cannot
derive from it (e.g. snnTorch's ``snn.Leaky``) is made visible with ``register_neuron_type(cls, adapter)``:
``adapter(module)`` returns a *view* with the protocol's attributes, reading and writing through to the module
(it keeps no state of its own). ``as_spiking(module)`` returns that view (snnlab's own neurons: themselves).

The argument checks shared by ``snnlab.neurons``, ``snnlab.fused`` and ``snnlab.dsr`` live here too
(``RESETS``, ``FIRES``, ``check_tau``, ``check_v_th``, ``check_reset``, ``check_detach_reset``, ``check_fire``,
``check_sequence``), so
that this module imports nothing else of snnlab's but ``surrogate`` and every neuron module can import it.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch
from torch import nn

from . import surrogate as _surrogate

__all__ = [
    "SpikingNeuron", "is_spiking", "spiking_neurons", "as_spiking", "register_neuron_type",
    "unregister_neuron_type", "neuron_types", "PROTOCOL", "RESETS", "check_number", "check_positive",
    "check_tau", "check_v_th", "check_reset", "check_detach_reset", "check_sequence", "FIRES", "check_fire",
]

RESETS = ("hard", "subtract")  #: the reset rules of ``snnlab.neurons.LIF`` and ``snnlab.fused``
#: the firing rules of ``snnlab.neurons.LIF`` and ``snnlab.fused``: ``">="`` fires at the threshold itself
#: (``H(0) = 1``, SpikingJelly's convention and snnlab's default), ``">"`` does not (TET's official ``ZIF``)
FIRES = (">=", ">")
PROTOCOL = ("kind", "v_th", "surrogate", "width_adaptable", "width")  #: what a neuron (or its view) exposes


class SpikingNeuron(nn.Module):
    """Base class of snnlab's spiking neurons (``LIF``, ``IF``, ``DSRIF``, ``DSRLIF``) and of users' own.

    The protocol (see the module docstring): multi-step, time-first ``[T, B, ...] -> [T, B, ...]`` spikes,
    stateless between calls; attributes ``kind``, ``v_th``, ``surrogate`` (a ``snnlab.surrogate.Surrogate`` or
    None), ``width_adaptable``, ``width``, and the optional ``record``/``last_mem`` membrane recording.

    A subclass calls ``super().__init__()`` (which sets ``surrogate = None``, ``record = False``,
    ``last_mem = None``), then sets ``v_th`` and, for a surrogate-gradient neuron, ``surrogate``; ``kind``
    defaults to the class name.
    """

    def __init__(self):
        super().__init__()
        self.surrogate: _surrogate.Surrogate | None = None
        self.record = False  # when True, forward stores the pre-reset membrane in last_mem (if it can)
        self.last_mem: torch.Tensor | None = None

    @property
    def kind(self) -> str:
        """The neuron model's name (subclasses set a class attribute; default: the class name)."""
        return type(self).__name__

    @property
    def width_adaptable(self) -> bool:
        """True if the surrogate width can be read and set: the neuron has an snnlab ``Surrogate``."""
        return isinstance(getattr(self, "surrogate", None), _surrogate.Surrogate)

    @property
    def width(self) -> float | None:
        """The surrogate's width, or None if this neuron has no adaptable width."""
        return self.surrogate.width if self.width_adaptable else None

    @width.setter
    def width(self, value) -> None:
        if not self.width_adaptable:
            raise ValueError(f"{type(self).__name__} (kind {self.kind!r}) has no adaptable surrogate width "
                             f"(surrogate={getattr(self, 'surrogate', None)!r}): it cannot be set to {value!r}")
        self.surrogate.width = value


# ---------------------------------------------------------------------------------------- the one test
_ADAPTERS: dict[type, Callable[[nn.Module], object]] = {}


def register_neuron_type(cls: type, adapter: Callable[[nn.Module], object]) -> None:
    """Make modules of class ``cls`` (and its subclasses) spiking neurons for every snnlab tool.

    ``adapter(module)`` must return a view with the attributes of ``PROTOCOL`` (and, for chi's neuron-level
    signal, ``record``/``last_mem``) that reads and writes through to ``module``. Registering ``cls`` again
    replaces its adapter. Subclasses of ``SpikingNeuron`` need no registration (ValueError).
    """
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(f"register_neuron_type needs an nn.Module subclass, got {cls!r}")
    if issubclass(cls, SpikingNeuron):
        raise ValueError(f"{cls.__name__} is a SpikingNeuron: it is spiking without registration")
    if not callable(adapter):
        raise ValueError(f"adapter must be callable (module -> view with {PROTOCOL}), got {adapter!r}")
    _ADAPTERS[cls] = adapter


def unregister_neuron_type(cls: type) -> None:
    """Undo ``register_neuron_type(cls, ...)``; ValueError if ``cls`` is not registered."""
    if cls not in _ADAPTERS:
        raise ValueError(f"{cls!r} is not a registered neuron type; registered: {list(_ADAPTERS)}")
    del _ADAPTERS[cls]


_FOREIGN = {"snntorch": "snnlab.interop.snntorch"}  #: library -> the snnlab module that registers its neurons
_FOREIGN_DONE: set = set()


def _register_foreign() -> None:
    """Register the neurons of every library in ``_FOREIGN`` this process has imported (once each): a model built
    from snnTorch neurons is seen by every tool without importing ``snnlab.interop`` first."""
    if len(_FOREIGN_DONE) == len(_FOREIGN):
        return
    import importlib
    import sys

    for lib, module in _FOREIGN.items():
        if lib not in _FOREIGN_DONE and lib in sys.modules:
            _FOREIGN_DONE.add(lib)
            importlib.import_module(module)


def neuron_types() -> tuple[type, ...]:
    """The classes whose instances are spiking neurons: ``SpikingNeuron`` and the registered ones (snnTorch's
    neurons once snnTorch is imported)."""
    _register_foreign()
    return (SpikingNeuron, *_ADAPTERS)


def is_spiking(module) -> bool:
    """True if ``module`` is a spiking neuron: a ``SpikingNeuron`` or an instance of a registered class."""
    return isinstance(module, neuron_types())


def as_spiking(module):
    """The protocol view of ``module``: itself for a ``SpikingNeuron``, its registered adapter's view for a
    registered class (the nearest registered base class wins), None if ``module`` is not a spiking neuron."""
    if isinstance(module, SpikingNeuron):
        return module
    _register_foreign()
    for cls in type(module).__mro__:
        if cls in _ADAPTERS:
            view = _ADAPTERS[cls](module)
            missing = [a for a in PROTOCOL if not hasattr(view, a)]
            if missing:
                raise TypeError(f"the adapter registered for {cls.__name__} returned {type(view).__name__}, "
                                f"which lacks {missing} (the protocol needs {PROTOCOL})")
            return view
    return None


def spiking_neurons(model: nn.Module) -> dict[str, nn.Module]:
    """``{module name: module}`` of every spiking neuron in ``model`` (``model`` itself included), in
    registration order (``named_modules``, which is forward order for snnlab's models). Values are the modules;
    ``as_spiking`` gives their protocol view."""
    return {name: m for name, m in model.named_modules() if is_spiking(m)}


# ---------------------------------------------------------------------------------------- shared checks
def check_number(name: str, value, allowed: str) -> float:
    """``value`` as a float; ValueError unless it is a finite real number (a bool or a str is not).

    ``allowed`` completes the message, e.g. ``"in (0, 1]"`` -> "tau must be a finite number in (0, 1], got ...".
    A one-element tensor counts as a number.
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if torch.is_tensor(value) and value.numel() == 1 and value.dtype != torch.bool:
        ok = True
    if not ok or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number {allowed}, got {value!r}")
    return float(value)


def check_positive(name: str, value) -> float:
    """``value`` as a float > 0, else ValueError naming ``name``."""
    value = check_number(name, value, "> 0")
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value


def check_tau(tau) -> float:
    """The LIF decay factor (``u = tau * u + I``) as a float in (0, 1], else ValueError."""
    tau = check_number("tau (decay factor)", tau, "in (0, 1]")
    if not 0.0 < tau <= 1.0:
        raise ValueError(f"tau (decay factor) must be in (0, 1], got {tau!r}")
    return tau


def check_v_th(v_th) -> float:
    """A firing threshold as a float > 0, else ValueError."""
    return check_positive("v_th", v_th)


def check_reset(reset) -> str:
    """One of ``RESETS``, else ValueError."""
    if not isinstance(reset, str) or reset not in RESETS:
        raise ValueError(f"reset must be one of {RESETS}, got {reset!r}")
    return reset


def check_fire(fire) -> str:
    """One of ``FIRES`` (``">="`` or ``">"``), else ValueError."""
    if not isinstance(fire, str) or fire not in FIRES:
        raise ValueError(f"fire must be one of {FIRES} (fire on u >= v_th, or only on u > v_th), got {fire!r}")
    return fire


def check_detach_reset(detach_reset) -> bool:
    """A bool (or 0/1), else ValueError: ``detach_reset="no"`` must not silently mean True."""
    if isinstance(detach_reset, (bool, numbers.Integral)) and detach_reset in (0, 1):
        return bool(detach_reset)
    if type(detach_reset).__name__ == "bool_":  # numpy.bool_
        return bool(detach_reset)
    raise ValueError(f"detach_reset must be True or False, got {detach_reset!r}")


def check_sequence(x, what: str = "input", floating: bool = False) -> None:
    """``x`` must be a time-first tensor ``[T, B, ...]`` (at least 2 dimensions, T >= 1): TypeError if it is not a
    tensor, ValueError for a bad shape (or, with ``floating=True``, a non-floating dtype)."""
    if not torch.is_tensor(x):
        raise TypeError(f"{what} must be a tensor of shape [T, B, ...], got {type(x).__name__}")
    if x.dim() < 2 or x.shape[0] < 1:
        raise ValueError(f"{what} must be a time-first tensor [T, B, ...] with at least 2 dimensions and T >= 1, "
                         f"got shape {tuple(x.shape)}")
    if floating and not x.is_floating_point():
        raise ValueError(f"{what} must be a floating-point tensor, got dtype {x.dtype}")
