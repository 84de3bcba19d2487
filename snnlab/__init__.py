"""snnlab: train spiking neural networks directly with gradients -- surrogate gradients and chi, TET, DSR.

Modules: ``surrogate`` (spike functions), ``neurons`` (multi-step LIF/IF), ``layers`` (time-merged layers),
``models``, ``losses``, ``data`` (embedded digits and simulated dvs-digits), ``train`` (``fit``),
``plot`` and ``widgets`` (figures and explorers).
"""
__version__ = "0.1.0"

from . import data, layers, losses, models, neurons, surrogate  # noqa: E402
from .train import TrainConfig, fit, seed_everything  # noqa: E402

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
