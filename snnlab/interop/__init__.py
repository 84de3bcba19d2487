"""Other SNN libraries' networks in snnlab, and snnlab's networks in them.

* ``snnlab.interop.snntorch``: snnTorch's neurons (``snn.Leaky``, ``snn.Synaptic``, ...) seen by every snnlab tool
  (``chi``, ``memory``, the width controller) through the neuron protocol; ``MultiStep``, which turns a snnTorch
  network written for one time step into a time-first ``[T, B, ...] -> [T, B, C]`` model that ``snnlab.fit``, the
  losses, the landscape and sharpness tools accept; and ``leaky_from_lif`` / ``lif_from_leaky``, one neuron converted
  each way where the dynamics agree; ``to_snntorch`` / ``from_snntorch`` for whole models.
* ``snnlab.interop.nir_graph``: ``to_nir`` / ``export_nir`` / ``import_nir``, snnlab models as NIR graphs (the
  Neuromorphic Intermediate Representation other simulators and chips read), round-trip checked.

The adapter is registered as soon as snnlab looks for spiking neurons in a process that has imported snnTorch
(``snnlab.neuron_base``), so a snnTorch model needs no extra import.
"""
from . import snntorch

__all__ = ["snntorch", "nir_graph"]


def __getattr__(name):  # nir_graph imports nir and nirtorch: only when asked for
    if name == "nir_graph":
        import importlib

        return importlib.import_module(f"{__name__}.nir_graph")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
