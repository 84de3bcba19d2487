"""snnlab: train spiking neural networks directly with gradients -- surrogate gradients and chi, TET, DSR.

Modules: ``surrogate`` (spike functions), ``neurons`` (multi-step LIF/IF), ``layers`` (time-merged layers),
``models``, ``losses``, ``data`` (embedded digits and simulated dvs-digits), ``train`` (``fit``),
``plot`` and ``widgets`` (figures and explorers).
"""
__version__ = "0.1.0"

from . import layers, losses, models, neurons, surrogate  # noqa: E402
# data and train are imported lazily until data.py lands

__all__ = [
    "__version__",
    "data",
    "layers",
    "losses",
    "models",
    "neurons",
    "surrogate",
    "TrainConfig",
    "fit",
    "seed_everything",
]
