"""How much activation memory a forward pass keeps for the backward pass.

Counted deterministically, not by the allocator: every tensor autograd saves during the forward goes through
``torch.autograd.graph.saved_tensors_hooks``; the bytes of the distinct storages still held when the forward
returns are summed. Parameters and buffers are left out (they are not activation memory). "Inside the spiking
neurons" means inside the modules for which ``snnlab.neuron_base.is_spiking`` holds. Used by notebook 05
(DSR keeps no graph through time) and ``benchmarks/bench_dsr_memory.py``.
"""
from __future__ import annotations

import weakref

import torch
from torch import nn

from .neuron_base import is_spiking, neuron_types

__all__ = ["saved_tensor_bytes", "spiking_modules"]


def spiking_modules() -> tuple[type, ...]:
    """The spiking-neuron module types: ``snnlab.neuron_base.SpikingNeuron`` (snnlab's LIF/IF and DSR neurons,
    and any user subclass) and the types registered with ``register_neuron_type`` (``neuron_types()``)."""
    return neuron_types()


def saved_tensor_bytes(model: nn.Module, x: torch.Tensor, inside: tuple[type, ...] | None = None) -> tuple[int, int]:
    """``(total, in_spiking)``: bytes that one forward of ``model`` on ``x`` saves for backward, in all and
    within the modules of the types ``inside`` (default: every spiking neuron, ``neuron_base.is_spiking``).

    A tensor saved by a branch of the graph that dies during the forward (e.g. the reset after a LIF's last
    step, which no output uses) is freed by autograd and not counted. Raises ValueError if the forward saves
    nothing for backward (no parameter or input requires a gradient, or grad mode is off).
    """
    inside_of = is_spiking if inside is None else (lambda m: isinstance(m, inside))
    depth = [0]
    records = []
    weights = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}

    def pre(*_):
        depth[0] += 1

    def post(*_):
        depth[0] -= 1

    handles = []
    for m in model.modules():
        if inside_of(m):
            handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]

    def pack(t):
        records.append((weakref.ref(t), depth[0] > 0))
        return t

    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model(x)
    finally:
        for h in handles:
            h.remove()
    if not records:
        raise ValueError("the forward saved nothing for backward: is grad mode on and does a parameter or the input "
                         "require a gradient?")
    seen: dict[int, tuple[int, bool]] = {}
    for ref, in_spk in records:
        t = ref()
        if t is None:
            continue
        st = t.untyped_storage()
        if st.data_ptr() not in weights:
            seen.setdefault(st.data_ptr(), (st.nbytes(), in_spk))
    del out
    return sum(n for n, _ in seen.values()), sum(n for n, s in seen.values() if s)
