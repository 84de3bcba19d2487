"""snnTorch networks in snnlab: the neuron view, the multi-step wrapper, one neuron converted each way.

**The neuron view.** snnTorch's neurons (every subclass of ``snntorch.SpikingNeuron``: ``snn.Leaky``,
``snn.Synaptic``, ...) are registered with ``snnlab.neuron_base.register_neuron_type``, so ``chi.measure``, the
``ChiController``, ``snnlab.memory`` and ``spiking_neurons`` see them. Their view (``SnnTorchNeuronView``) reads and
writes through to the module: ``kind`` is ``"snntorch.<Class>"``, ``v_th`` the neuron's ``threshold``, and the
width is adaptable exactly when ``spike_grad`` is an snnlab surrogate (``spike_grad=snnlab.surrogate.Triangle(1.0)``).
A neuron with snnTorch's own ``spike_grad`` (a closure such as ``snntorch.surrogate.atan()``, the default) is a
spiking neuron whose width is *not adaptable*: chi lists it by name and kind, and setting its width raises a
ValueError that says how to make it adaptable. Membrane recording (chi's neuron-level view) wraps the neuron's
``fire`` while ``record`` is on and keeps the membrane it compares with the threshold, one entry per step.

**The multi-step wrapper.** snnTorch networks are written for one time step and keep their state in the neurons
(``init_hidden=True``, or a ``forward`` that calls ``self.lif(cur)`` without passing ``mem``: snnTorch 1.0 then keeps
``mem`` in the module between calls). ``MultiStep(net)`` runs such a network over a time-first input ``[T, B, ...]``:
it resets every snnTorch neuron's state first (so two batches never leak into each other, as the snnlab protocol
requires), calls ``net`` on each step and stacks what it returns, ``[T, B, C]``, then zeroes the state again (no graph
is kept alive in the neurons, and the model can be deep-copied). When a step returns a tuple (an
output layer with ``output=True`` returns ``(spk, mem)``), ``readout`` picks the element: ``"mem"`` (default: the output
layer's membrane as the logits ``O(t)`` that ``sdt_loss`` / ``tet_loss`` read, as snnTorch's tutorials do), ``"spk"``,
or an index. The result trains with ``snnlab.fit(config, model=MultiStep(net))`` under every method except DSR, whose
representation gradient needs its own neurons (``snnlab.dsr``): ``fit`` says so.

**Whole models each way.** ``to_snntorch(model)`` turns snnlab's tutorial models (``TutorialSNN``, ``TutorialSNN1d``,
``SpikingMLP``, and any ``nn.Sequential`` of ``TimeMerged`` blocks and ``LIF`` / ``IF`` neurons) into a snnTorch
``nn.Sequential`` for one time step, weights and BatchNorm statistics copied; ``from_snntorch(net)`` reads such a
sequential back into a time-first snnlab model. ``MultiStep(to_snntorch(model))`` gives ``model``'s outputs in eval
mode (tested for every supported model); anything else is a ValueError naming the module.

**One neuron each way.** snnlab's ``LIF`` (``u = tau * u + I``, fire, then reset) and ``snn.Leaky`` with
``reset_delay=False`` compute the same thing for ``beta = tau``, ``threshold = v_th`` and ``reset_mechanism="zero"``
(hard reset) or ``"subtract"``; ``IF`` is ``beta = 1``. ``leaky_from_lif`` / ``lif_from_leaky`` convert one neuron,
sharing the surrogate object (so a width the controller sets acts in both). Three differences are checked, not
hidden: snnTorch's ``fire`` through an snnlab surrogate uses the surrogate's forward, so the firing rule ``u >= v_th``
carries over; snnTorch's own surrogates fire on ``u > v_th``; and with ``"subtract"``, snnTorch subtracts the threshold
once more at the next step whenever the membrane is *still* at or above it after a reset (snnlab does not), so the
two agree exactly only while a reset brings the membrane below the threshold (always with hard reset). Settings
with no snnlab counterpart (``reset_delay=True``, learnable or per-neuron ``beta``, graded spikes, inhibition,
state quantisation) are a ValueError naming the setting.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

import snntorch as _snn
from snntorch._neurons.neurons import SpikingNeuron as _SnnTorchNeuron

from .. import surrogate as _surrogate
from ..layers import TimeMerged
from ..neuron_base import (as_spiking, check_sequence, is_spiking, register_neuron_type,
                           spiking_neurons)
from ..neurons import IF, LIF

__all__ = ["SnnTorchNeuronView", "MultiStep", "reset_states", "leaky_from_lif", "lif_from_leaky", "to_snntorch",
           "from_snntorch", "compare", "READOUTS"]

READOUTS = ("mem", "spk")  #: named choices of ``MultiStep(readout=...)`` besides an integer index


# ------------------------------------------------------------------------------------------------- the view
class _RecordingFire:
    """Stands in for a neuron's ``fire`` while recording: keeps the membrane compared with the threshold. A
    callable object (not a closure) so that ``copy.deepcopy`` of a recording model points it at the copy."""

    def __init__(self, module: nn.Module):
        self.module = module

    def __call__(self, mem):
        self.module._snnlab_mems.append(mem.detach())
        return type(self.module).fire(self.module, mem)


class SnnTorchNeuronView:
    """The snnlab neuron protocol (``snnlab.neuron_base.PROTOCOL``) of a snnTorch neuron, read and written through to
    the module; it keeps no state of its own (what recording needs lives on the module)."""

    __slots__ = ("module",)

    def __init__(self, module: nn.Module):
        self.module = module

    @property
    def kind(self) -> str:
        return f"snntorch.{type(self.module).__name__}"

    @property
    def v_th(self) -> float:
        th = self.module.threshold
        return float(th) if torch.is_tensor(th) and th.numel() == 1 else th

    @property
    def surrogate(self):
        sg = self.module.spike_grad
        return sg if isinstance(sg, _surrogate.Surrogate) else None

    @surrogate.setter
    def surrogate(self, sg) -> None:  # the ChiController gives each layer its own copy of a shared spike_grad
        if not isinstance(sg, _surrogate.Surrogate):
            raise TypeError(f"a snnTorch neuron's snnlab surrogate must be a snnlab.surrogate.Surrogate, got {sg!r}")
        self.module.spike_grad = sg

    @property
    def width_adaptable(self) -> bool:
        return self.surrogate is not None

    @property
    def width(self) -> float | None:
        sg = self.surrogate
        return sg.width if sg is not None else None

    @width.setter
    def width(self, value) -> None:
        sg = self.surrogate
        if sg is None:
            raise ValueError(f"{self.kind} has snnTorch's own spike_grad ({self.module.spike_grad!r}), whose width snnlab "
                             f"cannot set (to {value!r}); build the neuron with spike_grad=snnlab.surrogate.<Shape>(width) "
                             f"(e.g. Triangle(1.0) or ATan(width)) to make it adaptable")
        sg.width = value

    @property
    def record(self) -> bool:
        return bool(getattr(self.module, "_snnlab_record", False))

    @record.setter
    def record(self, on) -> None:
        m = self.module
        object.__setattr__(m, "_snnlab_record", bool(on))
        object.__setattr__(m, "_snnlab_mems", [])
        if on:
            object.__setattr__(m, "fire", _RecordingFire(m))
        elif isinstance(m.__dict__.get("fire"), _RecordingFire):
            del m.__dict__["fire"]

    @property
    def last_mem(self) -> torch.Tensor | None:
        """The membranes compared with the threshold at every step since recording (or the last ``MultiStep``
        forward) began, ``[T, B, ...]``; None when nothing was recorded."""
        mems = getattr(self.module, "_snnlab_mems", None)
        return torch.stack(mems) if mems else None

    @last_mem.setter
    def last_mem(self, value) -> None:
        if value is not None:
            raise ValueError("a snnTorch neuron's last_mem is recorded by its forward; it can only be cleared (None)")
        object.__setattr__(self.module, "_snnlab_mems", [])

    def __repr__(self) -> str:
        return f"SnnTorchNeuronView({self.kind}, v_th={self.v_th!r}, width={self.width!r})"


register_neuron_type(_SnnTorchNeuron, SnnTorchNeuronView)


# ------------------------------------------------------------------------------------------- the wrapper
def _snntorch_neurons(net: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in net.named_modules() if isinstance(m, _SnnTorchNeuron)]


def reset_states(net: nn.Module, records: bool = True) -> int:
    """Zero the state of every snnTorch neuron in ``net`` (``reset_mem()``: ``mem``, and ``syn`` where there is one)
    and, with ``records``, clear recorded membranes; returns how many neurons were reset."""
    n = 0
    for _, m in _snntorch_neurons(net):
        if hasattr(m, "reset_mem"):
            m.reset_mem()
        if records and getattr(m, "_snnlab_mems", None):
            object.__setattr__(m, "_snnlab_mems", [])
        n += 1
    return n


def _check_readout(readout):
    if isinstance(readout, bool) or not (readout in READOUTS or isinstance(readout, int)):
        raise ValueError(f"readout must be one of {READOUTS} or an integer index into the tuple a step returns, "
                         f"got {readout!r}")
    return readout


class MultiStep(nn.Module):
    """A snnTorch network written for one time step, as a time-first snnlab model ``[T, B, ...] -> [T, B, C]``.

    Args:
        net: an ``nn.Module`` whose ``forward(x_t)`` takes one step ``[B, ...]`` and returns the output of that step: a
            tensor ``[B, C]``, or a tuple such as ``(spk, mem)``. Its snnTorch neurons keep their state between steps
            (``init_hidden=True``, or no ``mem`` passed); ``MultiStep`` resets it before every sequence.
        readout: which element of a tuple output is ``O(t)``: ``"mem"`` (default: the last element, the output
            layer's membrane), ``"spk"`` (the first), or an integer index. Ignored when a step returns a tensor.

    ``net`` stays a submodule (``.net``): its parameters, buffers and state dict are the wrapper's under ``net.``.
    """

    def __init__(self, net: nn.Module, readout="mem"):
        super().__init__()
        if not isinstance(net, nn.Module):
            raise TypeError(f"MultiStep wraps an nn.Module (a snnTorch network for one time step), got {type(net).__name__}")
        self.net = net
        self.readout = _check_readout(readout)
        if not _snntorch_neurons(net):
            raise ValueError(f"{type(net).__name__} contains no snnTorch neuron (snntorch.Leaky, snntorch.Synaptic, ...): "
                             f"MultiStep is for snnTorch networks; an snnlab model is already multi-step")

    def extra_repr(self) -> str:
        return f"readout={self.readout!r}"

    def _pick(self, out, t: int):
        if torch.is_tensor(out):
            return out
        if isinstance(out, (tuple, list)) and out and all(torch.is_tensor(o) for o in out):
            if self.readout == "mem":
                return out[-1]
            if self.readout == "spk":
                return out[0]
            if not -len(out) <= self.readout < len(out):
                raise ValueError(f"readout={self.readout} is out of range: step {t} returned a tuple of {len(out)} tensors")
            return out[self.readout]
        raise TypeError(f"step {t}: {type(self.net).__name__}.forward returned {type(out).__name__}; MultiStep needs a "
                        f"tensor [B, C] or a tuple of tensors (e.g. (spk, mem)) per time step")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_sequence(x)
        reset_states(self.net)
        outs = []
        for t, x_t in enumerate(x.unbind(0)):
            o = self._pick(self.net(x_t), t)
            if o.dim() == 0 or o.shape[0] != x_t.shape[0]:
                raise ValueError(f"step {t}: {type(self.net).__name__}.forward returned shape {tuple(o.shape)} for a batch "
                                 f"of {x_t.shape[0]}; MultiStep needs the output of ONE time step, [B, ...]. A forward that "
                                 f"loops over time itself (snnTorch's tutorials' num_steps loop) must be rewritten as one "
                                 f"step, or called directly instead of through MultiStep")
            outs.append(o)
        # zero the state again: it would keep this sequence's graph alive, and a tensor inside a graph cannot be
        # deep-copied (chi.probe and the landscape tools copy the model); the recorded membranes stay
        reset_states(self.net, records=False)
        return torch.stack(outs)


# ---------------------------------------------------------------------------------------- one neuron each way
def _scalar(value, name: str) -> float:
    """One number of a snnTorch neuron: snnTorch keeps ``beta`` and ``threshold`` as float32 tensors (0.7 becomes
    0.699999988...), so a float32 value is read back as the shortest decimal that rounds to it (0.7)."""
    if torch.is_tensor(value):
        if value.numel() != 1:
            raise ValueError(f"{name} has {value.numel()} values (one per neuron); snnlab's LIF has one {name} per layer")
        if value.dtype == torch.float32:
            import numpy as np

            return float(str(np.float32(value.item())))
        return float(value)
    return float(value)


def leaky_from_lif(lif: LIF, init_hidden: bool = True, output: bool = False) -> _snn.Leaky:
    """The ``snn.Leaky`` that computes what snnlab's ``lif`` computes (an ``IF`` gives ``beta = 1``): ``beta = tau``,
    ``threshold = v_th``, ``reset_mechanism="zero"`` (hard) or ``"subtract"``, ``reset_delay=False``, the same surrogate
    object as ``spike_grad``. ``detach_reset=True`` and ``fire=">"`` have no snnTorch counterpart here: ValueError."""
    if not isinstance(lif, LIF):
        raise TypeError(f"leaky_from_lif converts snnlab.neurons.LIF or IF, got {type(lif).__name__}")
    if lif.detach_reset:
        raise ValueError("detach_reset=True: snnTorch's Leaky always backpropagates through its reset; convert a "
                         "neuron with detach_reset=False")
    if getattr(lif, "fire", ">=") != ">=":
        raise ValueError(f"fire={lif.fire!r}: snnTorch fires through its spike_grad, and an snnlab surrogate there "
                         f"fires on u >= v_th; convert a neuron with fire='>='")
    return _snn.Leaky(beta=1.0 if isinstance(lif, IF) else lif.tau, threshold=lif.v_th, spike_grad=lif.surrogate,
                      init_hidden=init_hidden, output=output,
                      reset_mechanism="zero" if lif.reset == "hard" else "subtract", reset_delay=False)


def lif_from_leaky(leaky: nn.Module) -> LIF:
    """snnlab's ``LIF`` (``IF`` for ``beta = 1``) computing what ``leaky`` (an ``snn.Leaky``) computes; ValueError for
    every setting that has no counterpart, naming it. The surrogate object is shared; snnTorch's own ``spike_grad``
    closures are a ValueError too (their shape parameter cannot be read back, and they fire on ``u > v_th``)."""
    if not isinstance(leaky, _snn.Leaky):
        raise TypeError(f"lif_from_leaky converts snntorch.Leaky, got {type(leaky).__name__}")
    bad = []
    if getattr(leaky, "reset_delay", True):
        bad.append("reset_delay=True (the reset acts one step late; snnlab resets in the step that fires: "
                   "use reset_delay=False)")
    if leaky.reset_mechanism not in ("zero", "subtract"):
        bad.append(f"reset_mechanism={leaky.reset_mechanism!r} (snnlab has 'zero' = hard and 'subtract')")
    if isinstance(leaky.beta, nn.Parameter) and leaky.beta.requires_grad:
        bad.append("learn_beta=True (snnlab's tau is a constant)")
    if isinstance(leaky.threshold, nn.Parameter) and leaky.threshold.requires_grad:
        bad.append("learn_threshold=True (snnlab's LIF threshold is a constant; DSR's neurons learn theirs)")
    if getattr(leaky, "inhibition", False):
        bad.append("inhibition=True")
    if getattr(leaky, "state_quant", False):
        bad.append("state_quant (quantised state)")
    gsf = getattr(leaky, "graded_spikes_factor", 1.0)
    if float(gsf) != 1.0:
        bad.append(f"graded_spikes_factor={float(gsf):g} (snnlab's spikes are 0 or 1)")
    if getattr(leaky, "surrogate_disable", False):
        bad.append("surrogate_disable=True")
    if not isinstance(leaky.spike_grad, _surrogate.Surrogate):
        bad.append(f"spike_grad={leaky.spike_grad!r} is snnTorch's own surrogate (it fires on u > v_th and its shape "
                   f"parameter is not readable); build the Leaky with spike_grad=snnlab.surrogate.<Shape>(width)")
    if bad:
        raise ValueError("this snntorch.Leaky has no snnlab counterpart: " + "; ".join(bad))
    beta = _scalar(leaky.beta, "beta")
    th = _scalar(leaky.threshold, "threshold")
    reset = "hard" if leaky.reset_mechanism == "zero" else "subtract"
    if beta == 1.0:
        return IF(v_th=th, reset=reset, surrogate=leaky.spike_grad)
    if not 0.0 < beta < 1.0:
        raise ValueError(f"beta={beta:g}: snnlab's tau must lie in (0, 1] (snnTorch clamps beta into [0, 1])")
    return LIF(tau=beta, v_th=th, reset=reset, surrogate=leaky.spike_grad)


# ------------------------------------------------------------------------------------------ whole models
def _sequential_parts() -> dict:
    """snnlab's model classes whose ``forward`` is their children in order: class -> the children's names."""
    from ..models.tutorial import SpikingMLP, TutorialSNN, TutorialSNN1d

    return {TutorialSNN: ("features", "readout"), TutorialSNN1d: ("features", "readout"),
            SpikingMLP: ("hidden", "readout")}


def _step_module(m: nn.Module, path: str) -> list[nn.Module]:
    """The one-step snnTorch modules computing what the snnlab module ``m`` (at ``path``) computes per step."""
    where = path or "the model"
    if isinstance(m, LIF):
        try:
            return [leaky_from_lif(m)]
        except ValueError as e:
            raise ValueError(f"{where} ({type(m).__name__}): {e}") from None
    if is_spiking(m):
        raise ValueError(f"{where} is a {as_spiking(m).kind} neuron ({type(m).__name__}), which has no snnTorch "
                         f"counterpart; to_snntorch converts snnlab.neurons.LIF and IF (DSR's neurons stay in snnlab)")
    if isinstance(m, TimeMerged):  # stateless layers applied to every step: the same layers on [B, ...]
        return [copy.deepcopy(layer) for layer in m]
    parts = _sequential_parts()
    if type(m) in parts:
        return [x for name in parts[type(m)] for x in _step_module(getattr(m, name), f"{path}.{name}".lstrip("."))]
    if isinstance(m, nn.Sequential) and type(m).forward is nn.Sequential.forward:  # nn.Sequential, ConvBNSpike, ...
        return [x for name, child in m.named_children() for x in _step_module(child, f"{path}.{name}".lstrip("."))]
    raise ValueError(f"{where} is a {type(m).__name__}, which to_snntorch cannot turn into one time step: it converts "
                     f"snnlab.layers.TimeMerged blocks (their layers run per step), LIF / IF neurons, nn.Sequential "
                     f"chains of these, and the models {', '.join(c.__name__ for c in _sequential_parts())}")


def to_snntorch(model: nn.Module) -> nn.Sequential:
    """snnlab ``model`` as a snnTorch network for one time step (``nn.Sequential`` of the same layers, copied, and one
    ``snn.Leaky`` per ``LIF`` / ``IF``, ``init_hidden=True``): ``MultiStep(to_snntorch(model))`` computes what ``model``
    computes. Weights and BatchNorm statistics are copied; in eval mode the outputs agree (tested to float
    tolerance: a convolution over ``[B]`` and over ``[T*B]`` may round differently; with subtractive reset only while
    every reset brings the membrane below the threshold, see the module docstring). In training mode BatchNorm
    then normalises each step's batch instead of all ``T`` steps together (snnlab's ``TimeMerged``, TET's code).
    The surrogate objects are shared with ``model``. ValueError naming the first module that cannot be converted."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"to_snntorch converts an nn.Module, got {type(model).__name__}")
    net = nn.Sequential(*_step_module(model, ""))
    return net.train(model.training)


def from_snntorch(net: nn.Module) -> nn.Sequential:
    """A snnTorch ``nn.Sequential`` for one time step (stateless layers and ``snn.Leaky`` neurons, as
    ``to_snntorch`` makes) as a time-first snnlab model ``[T, B, ...] -> [T, B, C]``: consecutive layers become one
    ``TimeMerged`` block, each ``Leaky`` an snnlab ``LIF`` / ``IF`` (``lif_from_leaky``; every setting without a
    counterpart is a ValueError naming the layer). The last layer must not spike: snnlab reads ``O(t)`` from a
    non-spiking readout. (To train a snnTorch network as it is, with a spiking output layer, use ``MultiStep``.)"""
    if type(net) is not nn.Sequential:
        raise ValueError(f"from_snntorch converts an nn.Sequential of layers and snntorch.Leaky neurons, got "
                         f"{type(net).__name__}: a network with its own forward cannot be read layer by layer; "
                         f"wrap it in MultiStep to train it as it is")
    items = list(net.named_children())
    if not items:
        raise ValueError("from_snntorch got an empty nn.Sequential")
    out, block = [], []
    for name, m in items:
        if isinstance(m, _SnnTorchNeuron):
            if not isinstance(m, _snn.Leaky):
                raise ValueError(f"layer {name!r} is a snntorch.{type(m).__name__}; from_snntorch converts snntorch.Leaky "
                                 f"(snnlab's LIF / IF): wrap the network in MultiStep to train it as it is")
            if getattr(m, "output", False) or not getattr(m, "init_hidden", False):
                raise ValueError(f"layer {name!r}: a Leaky inside an nn.Sequential must have init_hidden=True and "
                                 f"output=False (it returns spikes only)")
            try:
                neuron = lif_from_leaky(m)
            except ValueError as e:
                raise ValueError(f"layer {name!r}: {e}") from None
            if block:
                out.append(TimeMerged(*block))
                block = []
            out.append(neuron)
        elif any(True for _ in m.parameters(recurse=False)) or not list(m.children()):
            block.append(copy.deepcopy(m))
        else:
            raise ValueError(f"layer {name!r} ({type(m).__name__}) holds other modules; from_snntorch reads a flat "
                             f"nn.Sequential of layers and Leaky neurons")
    if not block:
        raise ValueError(f"the last layer ({items[-1][0]!r}) spikes: snnlab reads O(t) from a non-spiking readout; "
                         f"end the network with a linear layer, or train it as it is with MultiStep(net)")
    out.append(TimeMerged(*block))
    return nn.Sequential(*out).train(net.training)


def compare(a: nn.Module, b: nn.Module, x: torch.Tensor) -> dict:
    """Run two time-first models (snnlab or ``MultiStep``) on the same input ``x`` ``[T, B, ...]`` in eval mode (no
    gradient; modes restored) and compare them: ``max_abs_output`` (largest readout difference), ``spike_mismatch``
    (share of differing spike entries over every spiking layer, the layers paired in order), ``spike_rate`` (share of
    ``a``'s entries that spike) and ``layers`` (how many spiking layers each has; a different count gives an infinite
    difference). Two models with the same weights and dynamics give 0 and 0."""
    check_sequence(x)
    spikes: dict = {}

    def grab(key):
        def hook(_m, _i, out):
            spikes.setdefault(key, []).append((out[0] if isinstance(out, tuple) else out).detach().reshape(-1))
        return hook

    hooks = [m.register_forward_hook(grab((k, j))) for k, net in (("a", a), ("b", b))
             for j, m in enumerate(spiking_neurons(net).values())]
    modes = (a.training, b.training)
    try:
        a.eval(), b.eval()
        with torch.no_grad():
            ya, yb = a(x), b(x)
    finally:
        a.train(modes[0]), b.train(modes[1])
        for h in hooks:
            h.remove()
    sa = [torch.cat(v) for (k, _), v in sorted(spikes.items()) if k == "a"]
    sb = [torch.cat(v) for (k, _), v in sorted(spikes.items()) if k == "b"]
    rate = sum(float((s != 0).sum()) for s in sa) / max(1, sum(s.numel() for s in sa))
    if len(sa) != len(sb) or ya.shape != yb.shape or any(p.shape != q.shape for p, q in zip(sa, sb)):
        return {"max_abs_output": float("inf"), "spike_mismatch": 1.0, "spike_rate": rate,
                "layers": (len(sa), len(sb)), "why": f"{len(sa)} vs {len(sb)} spiking layers, outputs "
                                                     f"{tuple(ya.shape)} vs {tuple(yb.shape)}"}
    mism = sum(float((p != q).sum()) for p, q in zip(sa, sb)) / max(1, sum(p.numel() for p in sa))
    return {"max_abs_output": float((ya - yb).abs().max()), "spike_mismatch": mism, "spike_rate": rate,
            "layers": (len(sa), len(sb))}
