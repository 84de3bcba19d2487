"""The models, by name: ``MODELS`` and ``build_model``; each maps ``[T, B, C, H, W] -> [T, B, num_classes]``.

The package's modules, each with one job, import one way: ``factory`` (``make_neuron``, ``NEURONS``, the
argument checks and the ResNet init the models share) <- ``tutorial`` (``TutorialSNN``, ``SpikingMLP``: small
models for the embedded data) and ``papers`` (ResNet-19, VGGSNN, Spiking-/SEW-ResNet-34) <- ``dsr`` (the models
trained with DSR, ``[T, B, ...] -> [1, B, classes]``) <- this file, the registry. ``snnlab.paper_models`` and
``snnlab.dsr_models`` are other names of ``snnlab.models.papers`` and ``snnlab.models.dsr``.

Static images are repeated T times *before* the model (``snnlab.layers.DirectEncoder``), so the same model
serves static and event data, and can be evaluated at any T (TET's temporal scalability).
"""
from __future__ import annotations

from torch import nn

from .. import neurons  # noqa: F401 -- names importable from snnlab.models before it became a package
from ..layers import ConvBNSpike, Readout, TimeMerged  # noqa: F401 -- the same
from . import dsr, factory, papers, tutorial
from .factory import NEURONS, make_neuron
from .papers import PAPER_MODELS
from .tutorial import SpikingMLP, TutorialSNN, TutorialSNN1d

__all__ = ["make_neuron", "TutorialSNN", "TutorialSNN1d", "SpikingMLP", "MODELS", "build_model", "NEURONS", "PAPER_MODELS"]

#: the models ``build_model`` and ``TrainConfig(model=...)`` know: the small ones (``tutorial``: "tutorial",
#: "tutorial1d" for 1-D signals, "mlp" for any input) and the papers' (``papers``: "resnet19", "vggsnn",
#: "spiking-resnet34", "sew-resnet34")
MODELS: dict[str, type[nn.Module]] = {"tutorial": TutorialSNN, "tutorial1d": TutorialSNN1d, "mlp": SpikingMLP,
                                      **PAPER_MODELS}


def build_model(name: str, input_shape, num_classes: int, neuron=None, **kwargs) -> nn.Module:
    """Build a model from ``MODELS`` by name: ``MODELS[name](input_shape, num_classes, neuron=neuron, **kwargs)``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(map(repr, MODELS))}")
    return MODELS[name](input_shape, num_classes, neuron=neuron, **kwargs)
