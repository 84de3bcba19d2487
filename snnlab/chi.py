"""The indicator chi and a per-layer adaptive surrogate.

**A documented reconstruction.** Only the abstract of "Efficient surrogate gradients for training spiking
neural networks" (ICLR 2023 submission) is available: no body text, no code. What it
states, and what is kept exactly here:

* chi = the proportion of parameters with non-zero gradients during backpropagation;
* a sharp surrogate approximates the Dirac delta better but its effective domain (where the derivative is
  non-zero) shrinks, so fewer parameters learn (chi falls); a chi-based pipeline adapts each layer's
  surrogate to balance the two, at very low extra cost.

Everything else -- the per-layer attribution, the tolerance for infinite-support surrogates, the control
rule, its defaults -- is snnlab's reconstruction, chosen to be simple and inspectable.

Definitions used here:

* For a weight layer ``l`` (a ``Conv``/``Linear`` weight; biases and BatchNorm excluded),
  ``chi_l = #{ i : |dL/dW_l[i]| > tol_l * max_i |dL/dW_l[i]| } / numel(W_l)``.
  ``tol_l = 0`` (exact zeros) when the neuron after layer ``l`` has a compact-support surrogate
  (rectangle, triangle) or when no neuron follows it (the readout: its zeros come from silent inputs);
  otherwise ``tol_l = tol`` (default 1e-3), reported in the result.
* The total chi is the parameter-weighted mean over layers.
* Neuron-level view: the fraction of membrane values ``u[t]`` of a spiking layer that fall inside its
  surrogate's effective domain ``|u - v_th| < r`` (``Surrogate.effective_domain``).

The controller (``ChiController``) measures a chi signal every K steps and, by default, multiplies the
width of each spiking layer by ``1/step`` when its chi is above the target (sharpen) and by ``step`` when it
is below (widen), clamped to ``[w_min, w_max]``. Two signals:

* ``signal="neurons"`` (default): the share of the layer's neuron-steps whose membrane lies in the
  surrogate's effective domain -- where the surrogate spike derivative ``ds/du`` is non-zero (for
  infinite-support shapes: above ``rel_tol`` of its peak), i.e. the neuron-steps through which a gradient
  can pass from the spike back to the membrane;
* ``signal="weights"``: the paper's chi of the weight layer feeding the neuron.

Why the default is not the weight chi: a convolution's weight is shared over positions, time steps and the
batch, so one weight receives a non-zero gradient as soon as *any* of those thousands of terms does. On the
tutorial model the weight chi of every conv layer is 1.0 for every width from 0.01 to 4 (notebook 02 shows
it), so a controller driven by it can only ever sharpen. The neuron-level chi varies smoothly with width.

Which neurons chi sees: every spiking neuron of the ``snnlab.neuron_base`` protocol whose surrogate width is
adaptable (``width_adaptable``: snnlab's ``LIF``/``IF``, any ``SpikingNeuron`` subclass with an snnlab
``Surrogate``, registered foreign neurons), read and written through the protocol's ``width``. A spiking neuron
without one (DSR's neurons: no surrogate) gates no layer here and has no width; ``set_widths`` and
``ChiController`` name such neurons in their errors.
"""
from __future__ import annotations

import copy
import csv
import io
import math
import time
from collections.abc import Callable
from contextlib import contextmanager

import torch
from torch import nn

from .losses import sdt_loss
from .neuron_base import SpikingNeuron, as_spiking, spiking_neurons
from .neurons import LIF  # noqa: F401  (importable from here before the protocol; kept)
from .callbacks import Callback
from .io import atomic_write_text as _atomic_write_text

__all__ = [
    "weight_layers",
    "measure",
    "ChiResult",
    "recording",
    "neuron_domain_fraction",
    "ChiController",
    "multiplicative_policy",
    "fixed_schedule",
    "set_widths",
    "get_widths",
    "probe",
    "controller_overhead",
]

_WEIGHT_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def _adaptable(module):
    """The protocol view of ``module`` if it is a spiking neuron whose width can adapt, else None."""
    view = as_spiking(module)
    return view if view is not None and view.width_adaptable else None


def _neurons(model: nn.Module) -> tuple[list, list]:
    """``(adaptable, fixed)``: ``[(name, view)]`` of the spiking neurons whose width can / cannot adapt."""
    adaptable, fixed = [], []
    for name, m in spiking_neurons(model).items():
        view = as_spiking(m)
        (adaptable if view.width_adaptable else fixed).append((name, view))
    return adaptable, fixed


def _describe(fixed: list) -> str:
    return ", ".join(f"{name!r} ({view.kind})" for name, view in fixed)


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module, SpikingNeuron | None, str | None]]:
    """``(layer_name, layer, neuron_after, neuron_name)`` for every conv/linear layer, in forward order.

    ``neuron_after`` is the first spiking neuron with an adaptable width (its protocol view: the module itself for
    snnlab's neurons) that follows the layer in module order before the next weight layer -- the one whose
    surrogate gates the layer's gradient; None for the readout, and for a layer followed by a neuron without
    surrogate (DSR's).
    """
    mods = list(model.named_modules())
    out = []
    for i, (name, m) in enumerate(mods):
        if not isinstance(m, _WEIGHT_TYPES):
            continue
        neuron, neuron_name = None, None
        for n, mm in mods[i + 1:]:
            if isinstance(mm, _WEIGHT_TYPES):
                break
            view = _adaptable(mm)
            if view is not None:
                neuron, neuron_name = view, n
                break
        out.append((name, m, neuron, neuron_name))
    return out


class ChiResult(dict):
    """``{layer_name: chi}`` with ``.total`` (parameter-weighted), ``.tol`` and ``.numel`` per layer."""

    def __init__(self, values: dict, total: float, tol: dict, numel: dict):
        super().__init__(values)
        self.total = total
        self.tol = tol
        self.numel = numel

    def __repr__(self) -> str:
        inner = ", ".join(f"{k!r}: {v:.3f}" for k, v in self.items())
        return f"ChiResult({{{inner}}}, total={self.total:.3f}, tol={self.tol})"


def _check_tol(tol) -> float:
    if not isinstance(tol, (int, float)) or not 0 <= tol < 1 or math.isnan(tol):
        raise ValueError(f"tol must be a relative tolerance in [0, 1), got {tol!r}")
    return float(tol)


@torch.no_grad()
def measure(model: nn.Module, tol: float = 1e-3) -> ChiResult:
    """chi per weight layer from the gradients left by the last backward pass (see the module docstring).

    Raises ValueError if no weight has a gradient (call ``loss.backward()`` first).
    """
    tol = _check_tol(tol)
    values, tols, numel = {}, {}, {}
    for name, layer, neuron, _ in weight_layers(model):
        g = layer.weight.grad
        if g is None:
            continue
        t = tol if (neuron is not None and not neuron.surrogate.compact) else 0.0
        a = g.abs()
        m = a.max()
        nz = (a > t * m).sum() if m > 0 else torch.zeros((), dtype=torch.long)
        values[name] = float(nz) / g.numel()
        tols[name] = t
        numel[name] = g.numel()
    if not values:
        raise ValueError("no weight gradients found: call loss.backward() before chi.measure(model)")
    total = sum(values[k] * numel[k] for k in values) / sum(numel.values())
    return ChiResult(values, total, tols, numel)


@contextmanager
def recording(model: nn.Module):
    """Within the block every spiking neuron with an adaptable width keeps its last membrane in
    ``neuron.last_mem``; cleared after. Yields those neurons (their protocol views), in forward order."""
    neurons = [view for _, view in _neurons(model)[0]]
    for n in neurons:
        n.record = True
    try:
        yield neurons
    finally:
        for n in neurons:
            n.record = False
            n.last_mem = None


def neuron_domain_fraction(model: nn.Module, rel_tol: float = 1e-3) -> dict[str, float]:
    """Fraction of recorded membrane values inside each neuron's effective domain ``|u - v_th| < r``.

    Use after a forward pass inside ``with chi.recording(model):``. ``r`` is the surrogate's support for
    compact shapes, else where its derivative falls below ``rel_tol`` of its peak.
    """
    out = {}
    for name, m in _neurons(model)[0]:
        if getattr(m, "last_mem", None) is None:
            raise ValueError(f"neuron {name!r} has no recorded membrane: run a forward inside chi.recording(model)")
        r = m.surrogate.effective_domain(rel_tol=rel_tol)
        out[name] = float(((m.last_mem - m.v_th).abs() < r).float().mean())
    return out


def get_widths(model: nn.Module) -> dict[str, float]:
    """``{neuron_name: surrogate width}`` for every spiking neuron with an adaptable width, in forward order
    (a neuron without one, e.g. DSR's, is not listed: ``{}`` for a DSR model)."""
    return {n: m.width for n, m in _neurons(model)[0]}


def set_widths(model: nn.Module, widths) -> None:
    """Set per-neuron surrogate widths from a list (forward order) or a ``{neuron_name: width}`` dict.

    Only spiking neurons with an adaptable width count; ValueError naming the neuron(s) for a name that is a
    spiking neuron whose width cannot adapt, an unknown name, or a list of the wrong length.
    """
    neurons, fixed = _neurons(model)
    names = [n for n, _ in neurons]
    if isinstance(widths, dict):
        cannot = [n for n, _ in fixed if n in widths]
        if cannot:
            raise ValueError(f"spiking neuron(s) {cannot} have no adaptable surrogate width "
                             f"({_describe([f for f in fixed if f[0] in cannot])}); the neurons with one are {names}")
        unknown = set(widths) - set(names)
        if unknown:
            raise ValueError(f"unknown neuron(s) {sorted(unknown)}; the model's neurons are {names}")
        for n, m in neurons:
            if n in widths:
                m.width = widths[n]
        return
    widths = list(widths)
    if len(widths) != len(neurons):
        not_counted = f"; not counted, no adaptable width: {_describe(fixed)}" if fixed else ""
        raise ValueError(f"got {len(widths)} widths for {len(neurons)} spiking layers ({names}){not_counted}")
    for (_, m), w in zip(neurons, widths):
        m.width = w


Policy = Callable[[str, float, float, int], float]


def multiplicative_policy(target: float, step: float = 1.1) -> Policy:
    """The default reconstruction: sharpen (width / step) while chi > target, widen (width * step) below."""
    if not 0 < target < 1:
        raise ValueError(f"chi target must be in (0, 1), got {target!r}")
    if not step > 1:
        raise ValueError(f"step must be > 1, got {step!r}")

    def policy(layer: str, chi: float, width: float, global_step: int) -> float:
        return width / step if chi > target else width * step

    policy.__name__ = f"multiplicative(target={target}, step={step})"
    return policy


def fixed_schedule(widths_at: Callable[[int], float]) -> Policy:
    """A policy that ignores chi: ``width = widths_at(global_step)`` for every layer (an ablation)."""

    def policy(layer, chi, width, global_step):
        return widths_at(global_step)

    policy.__name__ = "fixed_schedule"
    return policy


class ChiController(Callback):
    """Measure chi every ``every`` steps and adapt each spiking layer's surrogate width (every neuron whose width
    is adaptable and that follows a weight layer; see the module docstring).

    Args:
        target: the chi to hold (default policy), in (0, 1).
        every: measure every K optimisation steps (K >= 1).
        w_min, w_max: the width is clamped to this range.
        step: the multiplicative step of the default policy.
        policy: ``f(layer_name, chi, width, global_step) -> new width``; default ``multiplicative_policy``.

        tol: relative tolerance for infinite-support surrogates (see ``measure``; also the ``rel_tol`` of
            the effective domain for the neuron signal).

        signal: ``"neurons"`` (default) or ``"weights"`` (the paper's chi); see the module docstring.

    Logs one row per measurement and layer (``self.history``: step, layer, neuron, chi, width) and adds the
    last ``chi/<layer>`` and ``width/<neuron>`` to the epoch's metrics; with an ``out_dir`` it also writes
    ``chi.csv``. Its state (widths, step counter, history) is saved in checkpoints, so a resumed run
    continues exactly. Not attached, it costs nothing. Layers that share one surrogate object (snnTorch's idiom:
    one ``spike_grad`` passed to every ``Leaky``) get their own copy at the start of ``fit``, so that each layer's
    width moves on its own.
    """

    def __init__(self, target: float = 0.5, every: int = 10, w_min: float = 0.05, w_max: float = 4.0,
                 step: float = 1.1, policy: Policy | None = None, tol: float = 1e-3, signal: str = "neurons"):
        if signal not in ("neurons", "weights"):
            raise ValueError(f"signal must be 'neurons' or 'weights', got {signal!r}")
        self.signal = signal
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every (chi measurement period in steps) must be a positive integer, got {every!r}")
        if not 0 < w_min <= w_max:
            raise ValueError(f"need 0 < w_min <= w_max, got w_min={w_min!r}, w_max={w_max!r}")
        self.policy = policy or multiplicative_policy(target, step)
        self.target, self.every, self.w_min, self.w_max, self.tol = target, every, w_min, w_max, _check_tol(tol)
        self.global_step = 0
        self.history: list[dict] = []
        self._last: dict = {}

    def on_fit_start(self, state) -> None:
        self.model = state.model
        self.layers = [(n, neuron, nn_name) for n, _, neuron, nn_name in weight_layers(state.model) if neuron is not None]
        if not self.layers:
            fixed = _neurons(state.model)[1]
            raise ValueError("ChiController found no weight layer followed by a spiking neuron with an adaptable "
                             "surrogate width in the model"
                             + (f" (its spiking neurons {_describe(fixed)} have none)" if fixed else ""))
        shared = {}  # one surrogate object in several layers (snnTorch's idiom: one spike_grad for every Leaky)
        for _, neuron, _ in self.layers:
            sg = neuron.surrogate
            if id(sg) in shared:  # would move every layer's width together: give this layer its own copy
                neuron.surrogate = copy.deepcopy(sg)
            shared[id(sg)] = sg
        for _, neuron, _ in self.layers:
            neuron.width = min(max(neuron.width, self.w_min), self.w_max)
        self._record(self.global_step % self.every == 0)

    def _record(self, on: bool) -> None:
        # the neuron signal needs the membranes of the forward pass of a measurement step only
        if self.signal == "neurons":
            for _, neuron, _ in self.layers:
                neuron.record = on
                if not on:
                    neuron.last_mem = None

    def _neuron_chi(self) -> dict:
        out = {}
        for layer, neuron, _ in self.layers:
            r = neuron.surrogate.effective_domain(rel_tol=self.tol)
            out[layer] = float(((neuron.last_mem - neuron.v_th).abs() < r).float().mean())
        return out

    def on_step_end(self, state) -> None:
        self._record(self.global_step % self.every == 0)  # is the next step a measurement step?

    def on_after_backward(self, state) -> None:
        self.global_step += 1
        if (self.global_step - 1) % self.every:
            return
        weights = measure(state.model, self.tol)
        chi = self._neuron_chi() if self.signal == "neurons" else weights
        for layer, neuron, neuron_name in self.layers:
            c, w = chi[layer], neuron.width
            new = min(max(float(self.policy(layer, c, w, self.global_step)), self.w_min), self.w_max)
            neuron.width = new
            row = {"step": self.global_step, "epoch": state.epoch, "layer": layer, "neuron": neuron_name,
                   "chi": c, "chi_weights": weights[layer], "width": w, "new_width": new}
            self.history.append(row)
            self._last[f"chi/{layer}"] = c
            self._last[f"width/{neuron_name}"] = new
        self._last["chi_weights/total"] = weights.total

    def on_epoch_end(self, state) -> None:
        state.log.update(self._last)
        out = getattr(state.config, "out_dir", None)
        if out and self.history:
            from pathlib import Path

            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=list(self.history[0]))
            w.writeheader()
            w.writerows(self.history)
            _atomic_write_text(Path(out) / "chi.csv", buf.getvalue())

    def state_dict(self) -> dict:
        return {"global_step": self.global_step, "history": list(self.history), "last": dict(self._last),
                "widths": [neuron.width for _, neuron, _ in self.layers]}

    def load_state_dict(self, d: dict) -> None:
        self.global_step, self.history, self._last = d["global_step"], list(d["history"]), dict(d["last"])
        for (_, neuron, _), w in zip(self.layers, d["widths"]):
            neuron.width = w


def probe(model: nn.Module, x: torch.Tensor, y: torch.Tensor, widths=None, loss_fn=sdt_loss,
          tol: float = 1e-3) -> tuple[ChiResult, dict[str, float], nn.Module]:
    """One backward pass of a *copy* of ``model`` on ``(x, y)``, optionally at other surrogate widths.

    Returns ``(weight chi per layer, neuron-level chi per spiking layer, the copy)``; the copy keeps its
    gradients so that histograms of ``dL/dW`` can be drawn. ``model`` itself is left untouched.
    ``widths``: a list (one per spiking layer, forward order) or ``{neuron_name: width}``, as ``set_widths``.
    """
    m = copy.deepcopy(model).train()
    if widths is not None:
        set_widths(m, widths)
    m.zero_grad(set_to_none=True)
    with recording(m):
        loss_fn(m(x), y).backward()
        neuron_chi = neuron_domain_fraction(m)
    return measure(m, tol), neuron_chi, m


def controller_overhead(model: nn.Module, x: torch.Tensor, y: torch.Tensor, controllers: dict,
                        steps_per_window: int = 10, windows: int = 5, lr: float = 1e-3,
                        loss_fn=sdt_loss) -> dict[str, list[float]]:
    """Time training steps of copies of ``model`` with each controller (``None``: no controller), interleaved.

    ``controllers``: ``{label: ChiController | None}``. One step of each setting is run in turn (the order
    rotates every round, so that no setting always follows the same one), after one warm-up step each.
    Returns ``{label: [ms per step, one value per window of steps_per_window steps]}``: compare windows, not
    single steps, on a shared machine. Used by notebook 02 and ``benchmarks/bench_chi.py``.
    """
    for name, value in (("steps_per_window", steps_per_window), ("windows", windows)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not controllers:
        raise ValueError("controllers is empty: give {label: ChiController or None}")
    runners = {}
    for label, ctrl in controllers.items():
        m = copy.deepcopy(model).train()
        opt = torch.optim.Adam(m.parameters(), lr=lr)
        state = _LoopState(m, opt)
        hooks = [ctrl] if ctrl is not None else []
        for cb in hooks:
            cb.on_fit_start(state)
        runners[label] = _timed_step(m, opt, state, hooks, x, y, loss_fn)
    for run in runners.values():        # warm-up: first-call costs are not timed
        run()
    labels = list(runners)
    secs = {k: [] for k in labels}
    for r in range(steps_per_window * windows):
        k0 = r % len(labels)
        for k in labels[k0:] + labels[:k0]:
            secs[k].append(runners[k]())
    return {k: [1000 * sum(v[i * steps_per_window:(i + 1) * steps_per_window]) / steps_per_window
                for i in range(windows)] for k, v in secs.items()}


class _LoopState:
    """The part of ``fit``'s loop state a callback reads, for timing steps outside ``fit``."""

    def __init__(self, model, optimizer):
        self.model, self.optimizer, self.epoch, self.step, self.log = model, optimizer, 1, 0, {}
        self.config = None


def _timed_step(m, opt, state, hooks, x, y, loss_fn):
    def step() -> float:
        t0 = time.perf_counter()
        loss = loss_fn(m(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for cb in hooks:
            cb.on_after_backward(state)
        opt.step()
        state.step += 1
        for cb in hooks:
            cb.on_step_end(state)
        return time.perf_counter() - t0
    return step
