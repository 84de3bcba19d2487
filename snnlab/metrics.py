"""Spikes and operations per layer, counted from the tensors a forward pass actually produces, and an energy
estimate.

``count_operations(model, x)`` runs one forward pass of ``model`` on the time-first input ``x`` (``[T, B, ...]``) and
returns an ``OpsReport``:

* ``layers``: one row per convolution / linear layer (``pandas.DataFrame``): what its input was (``"spikes"`` when every
  entry is 0 or 1, else ``"analog"``), the input's density (share of non-zero entries), the *dense* operation count
  (every output element times its in-bounds inputs, what an ANN does; NeuroBench's ``Dense``), the *effective*
  count (only the synapses a non-zero input drives through a non-zero weight: the layer applied to the input's non-zero mask with its non-zero
  weights set to 1, which counts padding exactly), and that count as accumulates (ACs, spike inputs: a spike adds a
  weight) or multiply-accumulates (MACs, analog inputs). All counts are per sample, summed over the T steps.
* ``rates``: for every spiking neuron (``snnlab.neuron_base.spiking_neurons``), its firing rate at every time step
  (mean over the batch and the neurons).
* ``energy(e_ac, e_mac)``: ``ACs * e_ac + MACs * e_mac`` in joules per sample, and ``ann_energy``: the dense count of
  the same layers for one step, all MACs (the network as an ANN). The default constants are the ones the SNN
  literature uses after Horowitz (ISSCC 2014, "Computing's energy problem", 45 nm CMOS, 32-bit float): 0.9 pJ for an
  addition (an AC) and 4.6 pJ for a multiply-accumulate (3.7 pJ multiply + 0.9 pJ add). They are a model of a chip,
  not a measurement, and ignore memory access, which often dominates.

The "spikes" test is on values: a layer after an average pooling of spikes sees 0, 0.25, 0.5, ... and counts as
analog (MACs), as NeuroBench's ``SynapticOperations`` counts it; a chip would fold the pooling into the weights and
accumulate. Read the counts of such layers with that in mind.
"""
from __future__ import annotations

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
    if isinstance(layer, nn.Linear):
        def apply(inp, w):
            return F.linear(inp, w)
    else:
        if layer.padding_mode != "zeros":
            raise ValueError(f"{type(layer).__name__} with padding_mode={layer.padding_mode!r}: only zero padding is counted")
        conv = {nn.Conv1d: F.conv1d, nn.Conv2d: F.conv2d, nn.Conv3d: F.conv3d}[type(layer)]

        def apply(inp, w):
            return conv(inp, w, None, layer.stride, layer.padding, layer.dilation, layer.groups)
    with torch.no_grad():
        eff = apply((x != 0).to(torch.float64), (layer.weight != 0).to(torch.float64))
        dense = apply(torch.ones_like(x, dtype=torch.float64), torch.ones_like(layer.weight, dtype=torch.float64))
    return int(round(float(eff.sum()))), int(round(float(dense.sum())))


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

    def summary(self) -> str:
        e, a = self.energy(), self.ann_energy()
        return (f"per sample, T = {self.T}: {self.acs:,} ACs + {self.macs:,} MACs = {e * 1e9:.3f} nJ "
                f"(0.9 pJ/AC, 4.6 pJ/MAC); the same layers as an ANN (one step, dense MACs): {a * 1e9:.3f} nJ; "
                f"SNN/ANN = {e / a:.3f}" if a else "no weight layer")


def _is_binary(x: torch.Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all())


def count_operations(model: nn.Module, x: torch.Tensor, e_ac: float = E_AC, e_mac: float = E_MAC) -> OpsReport:
    """One forward pass of ``model`` (in eval mode, no gradient; restored after) on ``x`` ``[T, B, ...]``: the
    operations of every convolution / linear layer and the firing rate of every spiking layer per step (see the
    module docstring). Layers inside ``TimeMerged`` see all ``T * B`` frames at once; the counts are per sample."""
    check_sequence(x, floating=True)
    if e_ac < 0 or e_mac < 0:
        raise ValueError(f"energies per operation must be >= 0, got e_ac={e_ac!r}, e_mac={e_mac!r}")
    T, B = x.shape[0], x.shape[1]
    rows, hooks, outs = [], [], {}
    names = {m: n for n, m in model.named_modules()}

    def on_layer(layer, inputs, _output):
        inp = inputs[0]
        eff, dense = synaptic_ops(layer, inp)
        spikes = _is_binary(inp)
        rows.append({"layer": names[layer], "type": type(layer).__name__, "input": "spikes" if spikes else "analog",
                     "density": float((inp != 0).float().mean()), "dense_ops": dense / B, "effective_ops": eff / B,
                     "ACs": eff / B if spikes else 0.0, "MACs": 0.0 if spikes else eff / B})

    def on_neuron(name):
        def hook(_m, _inputs, output):
            spk = output[0] if isinstance(output, tuple) else output
            outs.setdefault(name, []).append(spk.detach())
        return hook

    neurons = spiking_neurons(model)
    for m in model.modules():
        if isinstance(m, _LAYERS):
            hooks.append(m.register_forward_hook(on_layer))
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
    rates = {}
    for name, spk in outs.items():
        s = torch.stack(spk) if len(spk) > 1 else spk[0]  # a step-wise (snnTorch) neuron is called once per step
        s = s.reshape(T, -1)
        rates[name] = [float(v) for v in s.float().mean(1)]
    table = pd.DataFrame(rows, columns=["layer", "type", "input", "density", "dense_ops", "effective_ops", "ACs", "MACs"])
    if len(table) and table["layer"].duplicated().any():  # a step-wise network calls each layer once per step
        table = table.groupby("layer", sort=False).agg(
            type=("type", "first"), input=("input", lambda v: "spikes" if (v == "spikes").all() else "mixed"
                                            if (v == "spikes").any() else "analog"),
            density=("density", "mean"), dense_ops=("dense_ops", "sum"), effective_ops=("effective_ops", "sum"),
            ACs=("ACs", "sum"), MACs=("MACs", "sum")).reset_index()
    return OpsReport(table, rates, T, B, e_ac, e_mac,
                     extra={"kinds": {n: as_spiking(m).kind for n, m in neurons.items()}})
