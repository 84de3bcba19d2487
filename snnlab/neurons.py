"""Multi-step spiking neurons on time-first tensors ``[T, B, ...]``.

The leaky integrate-and-fire (LIF) neuron, discretised as TET writes it (Deng et al. 2022, Sec. 3.1)::

    u[t] = tau * u_post[t-1] + I[t]           (1) leaky integration, u_post[0] = 0
    s[t] = H(u[t] - v_th)                     (2) fire (H(0) = 1; fire=">": H(0) = 0)
    u_post[t] = u[t] * (1 - s[t])             (3a) hard reset to 0        reset="hard"
    u_post[t] = u[t] - v_th * s[t]            (3b) soft reset             reset="subtract"

``tau`` is the *decay factor* in (0, 1] (snnTorch calls it ``beta``; in continuous time it is
``exp(-dt / tau_m)``). The integrate-and-fire neuron (IF) is the special case ``tau = 1``.

The neuron is a multi-step module: it takes the whole input current sequence ``I`` of shape
``[T, B, ...]`` and returns the spike sequence of the same shape. It keeps no state between calls, so two
batches never leak into each other. Only the element-wise recurrence (1)-(3) runs step by step; the
synaptic layers before it run once on the merged ``[T*B, ...]`` tensor (see ``snnlab.layers``).

Differences with ``snntorch.Leaky`` (kept as the step-by-step reference, see tests/test_neurons.py):
snnTorch computes the reset from the *previous* step's membrane and subtracts it *after* the decay,
``m[t] = beta * m[t-1] + I[t] - v_th * s[t-1]``, while here the reset acts on the same step and is then
decayed, ``u[t] = tau * (u[t-1] - v_th * s[t-1]) + I[t]``. The two agree exactly for ``tau = beta = 1``
(IF) with subtractive reset, and for any ``tau`` until the first spike. snnTorch also fires on ``m > v_th``
while we fire on ``u >= v_th`` by default.

Firing rule (``fire=``): ``">="`` (default) fires when the membrane reaches the threshold, ``u >= v_th``
(``H(0) = 1``, SpikingJelly's convention); ``">"`` fires only above it, ``u > v_th``, as TET's official ``ZIF``
(``(input > 0).float()`` on ``u - v_th``). They differ only on ties ``u == v_th``, frequent with inputs on a
coarse grid (0.25: 1,536 of 32,768 neuron-steps fire differently, 1,367 at ties and 169 after them,
tests/test_neurons.py); the surrogate gradient is the same. With ``fire=">"`` the reference backend is TET's
``LIFSpike`` loop bit for bit (spikes and gradients, tests/test_neurons.py); the fused backend and its C and Triton
kernels give the reference's spikes and membranes bitwise and its gradients as for the default rule
(tests/test_fused.py, tests/test_cpu_kernel.py). The strict rule needs a surrogate with the Heaviside forward (any
``snnlab.surrogate.FAMILY`` shape), as the fused backend does.

``detach_reset=True`` stops the gradient through the reset term (SpikingJelly's option); TET's official
code does *not* detach, which is our default.

Backends (``backend=``): the recurrence above runs either as

* ``"reference"``: the readable step loop in ``LIF._run_reference`` (a few autograd nodes per step), the version
  the notebooks derive by hand; or
* ``"fused"``: one autograd node over the whole sequence (``snnlab.fused``): bitwise the same spikes and
  membranes, gradients equal to the reference's (tests/test_fused.py), much less memory saved for the backward
  pass and faster; Triton kernels on CUDA.
* ``"auto"`` (default): fused when it supports the neuron, else the reference. The fused node needs a
  surrogate with the Heaviside forward (every ``snnlab.surrogate.FAMILY`` shape or a ``Surrogate`` subclass that
  keeps ``__call__``; ``SmoothSigmoid`` does not) and a floating-point input.

Both neurons derive from ``snnlab.neuron_base.SpikingNeuron`` (re-exported here, with ``is_spiking``,
``spiking_neurons``, ``as_spiking`` and ``register_neuron_type``), the protocol through which chi, memory and
the DSR tools find a model's spiking layers. ``RESETS`` and the argument checks are shared with ``snnlab.fused``
through that module.

``with snnlab.neurons.reference_backend():`` makes every ``"auto"`` neuron run the reference loop inside the
block (e.g. to inspect its per-step autograd graph). chi's neuron-level signal (``record=True``, ``last_mem``)
works with both backends.
"""
from __future__ import annotations

import contextlib
import threading

import torch

from . import fused as _fused
from . import surrogate as _surrogate
from .neuron_base import (FIRES, RESETS, SpikingNeuron, as_spiking, check_detach_reset, check_fire, check_reset,
                          check_sequence, check_tau, check_v_th, is_spiking, register_neuron_type, spiking_neurons)

__all__ = ["LIF", "IF", "RESETS", "FIRES", "BACKENDS", "lif_reference", "reference_backend", "SpikingNeuron",
           "is_spiking", "spiking_neurons", "as_spiking", "register_neuron_type", "set_fire"]

BACKENDS = ("auto", "fused", "reference")

_force = threading.local()


@contextlib.contextmanager
def reference_backend():
    """Inside the block, neurons with ``backend="auto"`` run the reference step loop (this thread only)."""
    old = getattr(_force, "reference", False)
    _force.reference = True
    try:
        yield
    finally:
        _force.reference = old


def _check_backend(backend) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return backend


class LIF(SpikingNeuron):
    """Multi-step LIF neuron ``[T, B, ...] -> [T, B, ...]`` (spikes in {0, 1}); a ``SpikingNeuron`` of kind ``"lif"``
    whose surrogate width is adaptable.

    Args:
        tau: decay factor in (0, 1] as in TET's ``u = tau * u + I`` (default 0.5, TET's value).
        v_th: firing threshold > 0 (default 1.0).
        reset: ``"hard"`` (to 0, TET) or ``"subtract"`` (by ``v_th``).
        detach_reset: if True the reset term carries no gradient.
        surrogate: a ``snnlab.surrogate.Surrogate`` or its name (default ``"triangle"``, TET's).
        width: surrogate width if ``surrogate`` is given by name (default: the shape's default, 1.0).

        backend: ``"auto"`` (default: fused when supported, else reference), ``"fused"`` (``snnlab.fused``; a
            ValueError at the forward pass if the surrogate does not allow it) or ``"reference"`` (the step loop).
        fire: ``">="`` (default: fire on ``u >= v_th``) or ``">"`` (fire on ``u > v_th``, TET's official ``ZIF``;
            needs a surrogate with the Heaviside forward). See the module docstring.
    """

    kind = "lif"

    def __init__(
        self,
        tau: float = 0.5,
        v_th: float = 1.0,
        reset: str = "hard",
        detach_reset: bool = False,
        surrogate: str | _surrogate.Surrogate = "triangle",
        width: float | None = None,
        backend: str = "auto",
        fire: str = ">=",
    ):
        super().__init__()  # SpikingNeuron: surrogate, record = False, last_mem = None
        self.tau = check_tau(tau)
        self.v_th = check_v_th(v_th)
        self.reset = check_reset(reset)
        self.detach_reset = check_detach_reset(detach_reset)
        self.surrogate = _surrogate.get(surrogate, width)
        self.backend = _check_backend(backend)
        self.fire = check_fire(fire)
        self._strict()  # a strict rule with a surrogate that cannot fire strictly: the error now, not at forward
        # Opt-in monitoring (chi's neuron-level view, plots): when ``self.record`` is True, forward stores the
        # pre-reset membrane [T, B, ...] in ``self.last_mem`` (detached). Off by default: no hidden state.

    def extra_repr(self) -> str:
        return (
            f"tau={self.tau:g}, v_th={self.v_th:g}, reset={self.reset!r}, "
            f"detach_reset={self.detach_reset}, surrogate={self.surrogate!r}"
            + ("" if getattr(self, "backend", "auto") == "auto" else f", backend={self.backend!r}")
            + ("" if getattr(self, "fire", ">=") == ">=" else f", fire={self.fire!r}")
        )

    def _strict(self) -> bool:
        """True for ``fire=">"`` (re-checked at every forward: ``fire`` and ``surrogate`` may be reassigned; a
        neuron pickled before ``fire`` existed fires on ``>=``). ValueError if the surrogate cannot fire strictly."""
        strict = check_fire(getattr(self, "fire", ">=")) == ">"
        if strict and not _fused.supports(self.surrogate):
            raise ValueError(f"fire='>' needs a surrogate with the Heaviside forward ({', '.join(_surrogate.FAMILY)}"
                             f" or a Surrogate subclass keeping its __call__); got {self.surrogate!r}")
        return strict

    def simulate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the recurrence; return ``(spk, mem)``, both ``[T, B, ...]``.

        ``mem[t]`` is the membrane ``u[t]`` *before* the reset of step t, the value compared with ``v_th``.
        """
        return self._run(x, keep_mem=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, keep_mem=self.record)[0]

    def uses_fused(self, x: torch.Tensor | None = None) -> bool:
        """True if a forward pass (on ``x``, if given) runs the fused node rather than the reference loop.

        Raises ValueError for ``backend="fused"`` when the fused node cannot run this neuron.
        """
        backend = _check_backend(getattr(self, "backend", "auto"))  # re-checked: it may have been reassigned
        if backend == "reference":
            return False
        why = None
        if not _fused.supports(self.surrogate):
            why = f"the surrogate {self.surrogate!r} has no Heaviside forward (or is not a snnlab Surrogate)"
        elif x is not None and not x.is_floating_point():
            why = f"the input dtype {x.dtype} is not a floating-point type"
        if backend == "fused":
            if why is not None:
                raise ValueError(f"backend='fused' cannot run this neuron: {why}; use backend='auto' or 'reference'")
            return True
        return why is None and not getattr(_force, "reference", False)

    def _run(self, x: torch.Tensor, keep_mem: bool):
        check_sequence(x)
        strict = self._strict()
        if self.uses_fused(x):
            spk, mem = _fused.run(x, self.tau, self.v_th, self.reset == "hard", self.detach_reset, self.surrogate,
                                  keep_mem, strict=strict)
            if self.record:
                self.last_mem = mem.detach()
            return spk, (mem if keep_mem else None)
        return self._run_reference(x, keep_mem, strict)

    def _run_reference(self, x: torch.Tensor, keep_mem: bool, strict: bool = False):
        """The recurrence (1)-(3) as a plain step loop (``backend="reference"``); ``strict``: fire on ``u > v_th``."""
        spikes, mems = [], []
        # unbind (not x[t]): its backward is one stack, where indexing x[t] would allocate and fill a
        # zero gradient of the full [T, B, ...] size for every step (measured: a third of a training step)
        for t, x_t in enumerate(x.unbind(0)):
            u = torch.add(x_t, u, alpha=self.tau) if t else x_t  # tau * u + x_t in one op
            s = self.surrogate(u - self.v_th, strict=True) if strict else self.surrogate(u - self.v_th)
            spikes.append(s)
            if keep_mem:
                mems.append(u)
            r = s.detach() if self.detach_reset else s
            u = u * (1.0 - r) if self.reset == "hard" else u - self.v_th * r
        spk = torch.stack(spikes)
        mem = torch.stack(mems) if keep_mem else None
        if self.record:
            self.last_mem = mem.detach()
        return spk, mem


class IF(LIF):
    """Multi-step integrate-and-fire neuron: ``LIF`` with ``tau = 1`` (no leak), kind ``"if"``. Default reset:
    subtract."""

    kind = "if"

    def __init__(
        self,
        v_th: float = 1.0,
        reset: str = "subtract",
        detach_reset: bool = False,
        surrogate: str | _surrogate.Surrogate = "triangle",
        width: float | None = None,
        backend: str = "auto",
        fire: str = ">=",
    ):
        super().__init__(1.0, v_th, reset, detach_reset, surrogate, width, backend, fire)

    def extra_repr(self) -> str:
        return super().extra_repr().replace("tau=1, ", "")


def set_fire(model: torch.nn.Module, fire: str) -> int:
    """Set the firing rule ``fire`` (one of ``FIRES``) of every ``LIF``/``IF`` in ``model``; returns how many.

    ValueError for a bad rule, or for ``">"`` when a neuron's surrogate cannot fire strictly (nothing is changed
    then)."""
    fire = check_fire(fire)
    lifs = [m for m in model.modules() if isinstance(m, LIF)]
    for m in lifs:
        if fire == ">" and not _fused.supports(m.surrogate):
            raise ValueError(f"fire='>' needs a surrogate with the Heaviside forward; {type(m).__name__} has "
                             f"{m.surrogate!r}")
    for m in lifs:
        m.fire = fire
    return len(lifs)


def lif_reference(x, tau=0.5, v_th=1.0, reset="hard", fire=">="):
    """Plain-Python LIF on a list of floats (no torch): the closed-form recurrence, for tests and teaching.

    Returns ``(spikes, mems)`` as lists; ``mems`` are pre-reset potentials. ``fire=">"``: fire on ``u > v_th``.
    """
    strict = check_fire(fire) == ">"
    u, spikes, mems = 0.0, [], []
    for i in x:
        u = tau * u + i
        s = 1.0 if (u > v_th if strict else u >= v_th) else 0.0
        spikes.append(s)
        mems.append(u)
        u = u * (1 - s) if reset == "hard" else u - v_th * s
    return spikes, mems
