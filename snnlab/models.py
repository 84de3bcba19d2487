"""Small SNN models for the embedded data. Every model maps ``[T, B, C, H, W] -> [T, B, num_classes]``.

The papers' architectures (ResNet-19, VGGSNN, Spiking-/SEW-ResNet-34) live in ``snnlab.paper_models`` and are
registered in ``MODELS`` too.

Static images are repeated T times *before* the model (``snnlab.layers.DirectEncoder``), so the same model
serves static and event data, and can be evaluated at any T (TET's temporal scalability).
"""
from __future__ import annotations

import math
from collections.abc import Callable

from torch import nn

from . import neurons
from .layers import ConvBNSpike, Readout, TimeMerged
from .paper_models import PAPER_MODELS

__all__ = ["make_neuron", "TutorialSNN", "SpikingMLP", "MODELS", "build_model", "NEURONS"]

NEURONS = ("lif", "if")


def make_neuron(
    kind: str = "lif",
    *,
    tau: float = 0.5,
    v_th: float = 1.0,
    reset: str = "hard",
    detach_reset: bool = False,
    surrogate: str = "triangle",
    width: float | None = None,
) -> nn.Module:
    """A fresh neuron (with its own surrogate object, so widths can differ per layer).

    Defaults are TET's preset: LIF, tau = 0.5, v_th = 1, hard reset not detached, triangle gamma = 1.
    """
    if kind == "lif":
        return neurons.LIF(tau, v_th, reset, detach_reset, surrogate, width)
    if kind == "if":
        return neurons.IF(v_th, reset, detach_reset, surrogate, width)
    raise ValueError(f"unknown neuron {kind!r}; available: {', '.join(map(repr, NEURONS))}")


def _check_shape(input_shape) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape must be (channels, height, width), got {input_shape!r}")
    return shape  # type: ignore[return-value]


class TutorialSNN(nn.Module):
    """Two conv blocks and a non-spiking readout, small enough to train on a laptop CPU in seconds.

    ``[T,B,C,H,W] -> conv3x3-BN-LIF -> avgpool2 -> conv3x3-BN-LIF -> avgpool2 -> linear -> [T,B,classes]``

    Args:
        input_shape: ``(C, H, W)`` of one frame, e.g. ``(1, 8, 8)`` for digits, ``(2, 24, 24)`` for dvs-digits.
        num_classes: outputs per step.
        channels: widths of the two conv blocks.
        neuron: a zero-argument callable returning a fresh spiking module (default ``make_neuron()``).
    """

    def __init__(
        self,
        input_shape=(1, 8, 8),
        num_classes: int = 10,
        channels: tuple[int, int] = (16, 32),
        neuron: Callable[[], nn.Module] | None = None,
    ):
        super().__init__()
        c, h, w = _check_shape(input_shape)
        neuron = neuron or make_neuron
        c1, c2 = channels
        self.features = nn.Sequential(
            ConvBNSpike(c, c1, neuron()),
            TimeMerged(nn.AvgPool2d(2)),
            ConvBNSpike(c1, c2, neuron()),
            TimeMerged(nn.AvgPool2d(2)),
        )
        self.readout = Readout(c2 * (h // 4) * (w // 4), num_classes)

    def forward(self, x):
        return self.readout(self.features(x))


class SpikingMLP(nn.Module):
    """``flatten -> linear -> BN -> LIF -> linear readout``: the smallest model, for quick experiments."""

    def __init__(self, input_shape=(1, 8, 8), num_classes: int = 10, hidden: int = 128, neuron=None):
        super().__init__()
        n_in = math.prod(_check_shape(input_shape))
        neuron = neuron or make_neuron
        self.hidden = nn.Sequential(
            TimeMerged(nn.Flatten(), nn.Linear(n_in, hidden, bias=False), nn.BatchNorm1d(hidden)), neuron()
        )
        self.readout = Readout(hidden, num_classes)

    def forward(self, x):
        return self.readout(self.hidden(x))


#: the models ``build_model`` and ``TrainConfig(model=...)`` know: the small ones above and the papers'
#: (``snnlab.paper_models``: "resnet19", "vggsnn", "spiking-resnet34", "sew-resnet34")
MODELS: dict[str, type[nn.Module]] = {"tutorial": TutorialSNN, "mlp": SpikingMLP, **PAPER_MODELS}


def build_model(name: str, input_shape, num_classes: int, neuron=None, **kwargs) -> nn.Module:
    """Build a model from ``MODELS`` by name: ``MODELS[name](input_shape, num_classes, neuron=neuron, **kwargs)``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(map(repr, MODELS))}")
    return MODELS[name](input_shape, num_classes, neuron=neuron, **kwargs)
