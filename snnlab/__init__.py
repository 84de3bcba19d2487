"""snnlab: train spiking neural networks directly with gradients -- surrogate gradients and chi, TET, DSR.

Modules: ``surrogate`` (spike functions), ``neurons`` (multi-step LIF/IF), ``layers`` (time-merged layers),
``models`` (a package: ``tutorial``, the papers' architectures ``papers``, the DSR models ``dsr``), ``losses``,
``data`` (a package: embedded digits and simulated dvs-digits, and the papers' datasets ``real``), ``methods``
(the training methods as parts, and their registry), ``config`` (``TrainConfig``), ``loop`` and ``train``
(``fit``), ``chi`` (the indicator chi and the adaptive surrogate), ``landscape`` (loss surfaces, Hessian
sharpness), ``dsr`` (differentiation on spike representation), ``memory`` (saved-tensor bytes), ``plot`` and
``widgets`` (figures and explorers); ``fused`` (the default one-node LIF/IF backend, Triton on CUDA),
``recipes`` and ``registry`` (the papers' settings, measured results), ``distributed`` (torchrun/DDP inside
``fit``). ``real_data``, ``paper_models`` and ``dsr_models`` are the former names of ``data.real``,
``models.papers`` and ``models.dsr``, kept as aliases (see ``_alias``).
"""
__version__ = "0.1.0"

import os as _os
import sys as _sys


def fast_mode() -> bool:
    """True when the environment variable ``SNNLAB_FAST`` is set to 1 (CI runs notebooks this way)."""
    return _os.environ.get("SNNLAB_FAST", "0").strip().lower() in ("1", "true", "yes")


def _alias(old_name: str, module) -> None:
    """Make ``snnlab.<old_name>`` another name of ``module``, a module that moved into a subpackage.

    Registers ``sys.modules["snnlab.<old_name>"] = module`` and sets the package attribute, so that
    ``import snnlab.<old_name>``, ``from snnlab.<old_name> import X`` and ``snnlab.<old_name>`` all give the SAME
    module object as the new path: monkeypatching through either name affects both.
    """
    _sys.modules[f"{__name__}.{old_name}"] = module
    globals()[old_name] = module


from . import cpu  # noqa: E402

cpu.tune_malloc()  # bitwise the same results, faster CPU steps (see snnlab.cpu; SNNLAB_MALLOC_TUNE=0 to skip)

from . import data, dsr, layers, losses, memory, models, neurons, surrogate  # noqa: E402

_alias("real_data", data.real)
_alias("paper_models", models.papers)
_alias("dsr_models", models.dsr)

from .train import TrainConfig, fit, seed_everything, sweep  # noqa: E402


def export_nir(model, path, input_shape=None, check: bool = True):
    """Write ``model`` as a NIR graph file (``snnlab.interop.nir_graph.export_nir``: BatchNorm folded into the
    convolutions, LIF / IF as ``nir.LIF`` / ``nir.IF``, read back and compared with the model unless ``check=False``)."""
    from .interop.nir_graph import export_nir as _export

    return _export(model, path, input_shape=input_shape, check=check)


def import_nir(source):
    """A NIR graph (path or ``nir.NIRGraph``) as a time-first snnTorch model (``snnlab.interop.nir_graph``)."""
    from .interop.nir_graph import import_nir as _import

    return _import(source)

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
    "export_nir",
    "import_nir",
]
