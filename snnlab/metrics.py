"""Spikes and operations per layer, counted from the tensors a forward pass actually produces, and an energy
estimate.

``count_operations(model, x)`` runs one forward pass of ``model`` on the time-first input ``x`` (``[T, B, ...]``) and
returns an ``OpsReport``:

* ``layers``: one row per convolution / linear layer (``pandas.DataFrame``): what its input was, the input's density
  (share of non-zero entries), the *dense* operation count (every output element times its in-bounds inputs, what an
  ANN does; NeuroBench's ``Dense``), the *effective* count (only the synapses a non-zero input drives through a
  non-zero weight: the layer applied to the input's non-zero mask with its non-zero weights set to 1, which counts
  padding exactly), and the operations as accumulates (ACs) or multiply-accumulates (MACs). Its input is

  - ``"spikes"`` when every non-zero entry has the same value (1, or a DSR neuron's amplitude, which folds into the
    weights): a spike adds a weight, so the effective count is ACs;
  - ``"pooled spikes"`` when it is the output of an average pooling (``nn.AvgPool*d``, or an ``nn.AdaptiveAvgPool*d``
    with equal windows) of spikes, and ``fold_pooling=True`` (the default): an entry ``k / area`` is ``k`` spikes of
    the window, and a chip folds ``1 / area`` into the weights and adds a weight once per spike, so the ACs are the
    layer applied to the spike *counts* with its non-zero weights set to 1 (at least the effective count when windows
    hold more than one spike). ``fold_pooling=False`` counts such a layer as NeuroBench's ``SynapticOperations``
    does: non-binary input, so MACs;
  - ``"analog"`` otherwise (the image, a membrane): MACs.

  All counts are per sample, summed over the T steps.
* ``rates``: for every spiking neuron (``snnlab.neuron_base.spiking_neurons``), its firing rate at every time step:
  the share of its outputs that are non-zero, over the batch and the neurons (spikes per neuron per step, whatever
  their amplitude: DSR's neurons emit spikes of amplitude ``v_th`` or ``v_th / dt``).
* ``spikes``: every spiking layer's spikes per sample over the T steps (``total_spikes``: their sum).
* ``energy(e_ac, e_mac)``: ``ACs * e_ac + MACs * e_mac`` in joules per sample, and ``ann_energy``: the dense count of
  the same layers for one step, all MACs (the network as an ANN). The default constants are the ones the SNN
  literature uses after Horowitz (ISSCC 2014, "Computing's energy problem", 45 nm CMOS, 32-bit float): 0.9 pJ for an
  addition (an AC) and 4.6 pJ for a multiply-accumulate (3.7 pJ multiply + 0.9 pJ add). They are a model of a chip,
  not a measurement, and ignore memory access, which often dominates.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .neuron_base import as_spiking, check_sequence, spiking_neurons

__all__ = ["count_operations", "OpsReport", "E_AC", "E_MAC", "synaptic_ops"]

E_AC = 0.9e-12   #: joules per accumulate (32-bit float add, 45 nm; Horowitz 2014)
E_MAC = 4.6e-12  #: joules per multiply-accumulate (32-bit float multiply 3.7 pJ + add 0.9 pJ, 45 nm; Horowitz 2014)
_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def synaptic_ops(layer: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """``(effective, dense)`` operation counts of ``layer`` (a convolution or linear layer) on the input ``x`` (a
    batch, the layer's own layout), summed over the batch: *effective* counts each (non-zero input, non-zero weight)
    pair that reaches an output, *dense* every (input, weight) pair that reaches an output whatever the values
    (padding taps are no operation in either; NeuroBench's ``Dense``)."""
    if not isinstance(layer, _LAYERS):
        raise TypeError(f"synaptic_ops counts nn.Conv1d/2d/3d and nn.Linear layers, got {type(layer).__name__}")
    with torch.no_grad():
        eff = _synapses(layer, (x != 0).to(torch.float64))
        dense = _synapses(layer, torch.ones_like(x, dtype=torch.float64), torch.ones_like(layer.weight, dtype=torch.float64))
    return int(round(float(eff.sum()))), int(round(float(dense.sum())))


def _synapses(layer: nn.Module, inp: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
    """``layer``'s linear map (no bias) of ``inp`` with the weights ``w`` (default: 1 where its weight is non-zero),
    in float64: with a 0/1 input, each output counts the (input, weight) pairs that reach it."""
    w = (layer.weight != 0).to(torch.float64) if w is None else w
    if isinstance(layer, nn.Linear):
        return F.linear(inp, w)
    if layer.padding_mode != "zeros":
        raise ValueError(f"{type(layer).__name__} with padding_mode={layer.padding_mode!r}: only zero padding is counted")
    conv = {nn.Conv1d: F.conv1d, nn.Conv2d: F.conv2d, nn.Conv3d: F.conv3d}[type(layer)]
    return conv(inp, w, None, layer.stride, layer.padding, layer.dilation, layer.groups)


@dataclass
class OpsReport:
    """What ``count_operations`` measured; counts per sample, summed over the ``T`` steps."""

    layers: pd.DataFrame
    rates: dict[str, list[float]]
    T: int
    batch: int
    e_ac: float = E_AC
    e_mac: float = E_MAC
    extra: dict = field(default_factory=dict)
    spikes: dict[str, float] = field(default_factory=dict)  #: spikes per sample of every spiking layer, all T steps

    @property
    def total_spikes(self) -> float:
        """Spikes per sample, all spiking layers and steps."""
        return float(sum(self.spikes.values()))

    @property
    def acs(self) -> int:
        return int(self.layers["ACs"].sum())

    @property
    def macs(self) -> int:
        return int(self.layers["MACs"].sum())

    def energy(self, e_ac: float | None = None, e_mac: float | None = None) -> float:
        """Joules per sample (all T steps): ``ACs * e_ac + MACs * e_mac`` (defaults: the report's constants)."""
        e_ac = self.e_ac if e_ac is None else e_ac
        e_mac = self.e_mac if e_mac is None else e_mac
        return self.acs * e_ac + self.macs * e_mac

    def ann_energy(self, e_mac: float | None = None) -> float:
        """Joules per sample of the same layers as an ANN: one step, every operation a dense MAC."""
        return float(self.layers["dense_ops"].sum()) / self.T * (self.e_mac if e_mac is None else e_mac)

    def mean_rate(self) -> dict[str, float]:
        """Each spiking layer's firing rate averaged over the steps."""
        return {k: sum(v) / len(v) for k, v in self.rates.items()}

    def row(self) -> dict:
        """The report as one table row (``snnlab.reproduce``'s ``operations.csv``, ``plot.operations``): mean rate
        over the spiking layers, spikes, ACs, MACs, energy and the ANN's in nJ per sample, and their ratio."""
        rates = self.mean_rate()
        e, a = self.energy(), self.ann_energy()
        return {"mean_rate": round(sum(rates.values()) / max(1, len(rates)), 4), "spikes": round(self.total_spikes, 1),
                **{f"rate {k}": round(v, 4) for k, v in rates.items()},
                "ACs": int(self.acs), "MACs": int(self.macs), "energy_nJ": round(e * 1e9, 3),
                "ann_energy_nJ": round(a * 1e9, 3), "snn_over_ann": round(e / a, 3) if a else float("nan")}

    def summary(self) -> str:
        e, a = self.energy(), self.ann_energy()
        return (f"per sample, T = {self.T}: {self.acs:,} ACs + {self.macs:,} MACs = {e * 1e9:.3f} nJ "
                f"(0.9 pJ/AC, 4.6 pJ/MAC); the same layers as an ANN (one step, dense MACs): {a * 1e9:.3f} nJ; "
                f"SNN/ANN = {e / a:.3f}" if a else "no weight layer")


def _spike_amplitude(x: torch.Tensor) -> float | None:
    """The one value every non-zero entry of ``x`` has (1.0 for an all-zero tensor), or None when there are several:
    spikes of amplitude 1, or of a DSR neuron's amplitude."""
    nz = x[x != 0]
    if nz.numel() == 0:
        return 1.0
    a = nz.flatten()[0]
    return float(a) if bool((nz == a).all()) and float(a) > 0 else None


_POOLS = {nn.AvgPool1d: 1, nn.AvgPool2d: 2, nn.AvgPool3d: 3,
          nn.AdaptiveAvgPool1d: 1, nn.AdaptiveAvgPool2d: 2, nn.AdaptiveAvgPool3d: 3}


def _pool_area(pool: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int | None:
    """The number of inputs every window of an average pooling averages, or None when windows differ (padding
    without ``count_include_pad``, an adaptive pooling whose input size is not a multiple of its output's)."""
    n = _POOLS[type(pool)]
    if type(pool).__name__.startswith("Adaptive"):
        ins, outs = inp.shape[-n:], out.shape[-n:]
        return None if any(i % o for i, o in zip(ins, outs)) else math.prod(i // o for i, o in zip(ins, outs))
    if getattr(pool, "divisor_override", None):
        return int(pool.divisor_override)
    k = pool.kernel_size if isinstance(pool.kernel_size, tuple) else (pool.kernel_size,) * n
    pad = pool.padding if isinstance(pool.padding, tuple) else (pool.padding,) * n
    return None if any(pad) and not pool.count_include_pad else math.prod(int(v) for v in k)


def count_operations(model: nn.Module, x: torch.Tensor, e_ac: float = E_AC, e_mac: float = E_MAC,
                     fold_pooling: bool = True) -> OpsReport:
    """One forward pass of ``model`` (in eval mode, no gradient; restored after) on ``x`` ``[T, B, ...]``: the
    operations of every convolution / linear layer and the firing rate of every spiking layer per step (see the
    module docstring; ``fold_pooling=False`` counts a layer fed by average-pooled spikes as NeuroBench does, MACs).
    Layers inside ``TimeMerged`` see all ``T * B`` frames at once; the counts are per sample."""
    check_sequence(x, floating=True)
    if e_ac < 0 or e_mac < 0:
        raise ValueError(f"energies per operation must be >= 0, got e_ac={e_ac!r}, e_mac={e_mac!r}")
    T, B = x.shape[0], x.shape[1]
    rows, hooks, outs = [], [], {}
    pooled = {}  # (data_ptr, numel) of an average pooling's output of spikes -> (that output, its spike counts)
    names = {m: n for n, m in model.named_modules()}

    def on_pool(pool, inputs, output):
        amp = _spike_amplitude(inputs[0])
        area = None if amp is None else _pool_area(pool, inputs[0], output)
        if area is None:
            return
        counts = (output.to(torch.float64) * area / amp)
        if bool(((counts - counts.round()).abs() < 1e-3).all()):  # keep ``output`` alive so its address is not reused
            pooled[output.data_ptr(), output.numel()] = (output, counts.round())

    def on_layer(layer, inputs, _output):
        inp = inputs[0]
        eff, dense = synaptic_ops(layer, inp)
        kind, acs = "analog", 0.0
        if _spike_amplitude(inp) is not None:
            kind, acs = "spikes", eff
        elif (inp.data_ptr(), inp.numel()) in pooled:  # a view (flatten, reshape) of a pooling of spikes
            with torch.no_grad():
                counts = pooled[inp.data_ptr(), inp.numel()][1].reshape(inp.shape)
                kind, acs = "pooled spikes", float(_synapses(layer, counts).sum())
        rows.append({"layer": names[layer], "type": type(layer).__name__, "input": kind,
                     "density": float((inp != 0).float().mean()), "dense_ops": dense / B, "effective_ops": eff / B,
                     "ACs": acs / B, "MACs": 0.0 if kind != "analog" else eff / B})

    def on_neuron(name):
        def hook(_m, _inputs, output):
            spk = output[0] if isinstance(output, tuple) else output
            outs.setdefault(name, []).append(spk.detach())
        return hook

    neurons = spiking_neurons(model)
    for m in model.modules():
        if isinstance(m, _LAYERS):
            hooks.append(m.register_forward_hook(on_layer))
        elif fold_pooling and type(m) in _POOLS:
            hooks.append(m.register_forward_hook(on_pool))
    for name, m in neurons.items():
        hooks.append(m.register_forward_hook(on_neuron(name)))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    rates, spikes = {}, {}
    for name, spk in outs.items():
        s = torch.stack(spk) if len(spk) > 1 else spk[0]  # a step-wise (snnTorch) neuron is called once per step
        s = s.reshape(T, -1) != 0
        rates[name] = [float(v) for v in s.float().mean(1)]
        spikes[name] = float(s.sum()) / B
    table = pd.DataFrame(rows, columns=["layer", "type", "input", "density", "dense_ops", "effective_ops", "ACs", "MACs"])
    if len(table) and table["layer"].duplicated().any():  # a step-wise network calls each layer once per step
        table = table.groupby("layer", sort=False).agg(
            type=("type", "first"), input=("input", lambda v: v.iloc[0] if (v == v.iloc[0]).all() else "mixed"),
            density=("density", "mean"), dense_ops=("dense_ops", "sum"), effective_ops=("effective_ops", "sum"),
            ACs=("ACs", "sum"), MACs=("MACs", "sum")).reset_index()
    return OpsReport(table, rates, T, B, e_ac, e_mac,
                     extra={"kinds": {n: as_spiking(m).kind for n, m in neurons.items()}}, spikes=spikes)
