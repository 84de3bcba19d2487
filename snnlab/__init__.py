"""snnlab: train spiking neural networks directly with gradients -- surrogate gradients and chi, TET, DSR.

Modules: ``surrogate`` (spike functions), ``neurons`` (multi-step LIF/IF), ``layers`` (time-merged layers),
``models``, ``losses``, ``data`` (embedded digits and simulated dvs-digits), ``train`` (``fit``),
``chi`` (the indicator chi and the adaptive surrogate), ``landscape`` (loss surfaces, Hessian sharpness),
``dsr`` and ``dsr_models`` (differentiation on spike representation), ``memory`` (saved-tensor bytes),
``plot`` and ``widgets`` (figures and explorers); ``fused`` (the default one-node LIF/IF backend, Triton on
CUDA), ``paper_models`` and ``real_data`` (the papers' architectures and datasets), ``recipes`` and ``registry``
(the papers' settings, measured results), ``distributed`` (torchrun/DDP inside ``fit``).
"""
__version__ = "0.1.0"

import os as _os


def fast_mode() -> bool:
    """True when the environment variable ``SNNLAB_FAST`` is set to 1 (CI runs notebooks this way)."""
    return _os.environ.get("SNNLAB_FAST", "0").strip().lower() in ("1", "true", "yes")


from . import data, dsr, dsr_models, layers, losses, memory, models, neurons, surrogate  # noqa: E402
from .train import TrainConfig, fit, seed_everything, sweep  # noqa: E402

__all__ = [
    "__version__",
    "data",
    "dsr",
    "dsr_models",
    "layers",
    "losses",
    "memory",
    "models",
    "neurons",
    "surrogate",
    "TrainConfig",
    "fit",
    "seed_everything",
    "sweep",
    "fast_mode",
]
