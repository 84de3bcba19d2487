"""The small models for the embedded data: ``TutorialSNN`` and ``SpikingMLP`` (``[T, B, C, H, W] -> [T, B, classes]``),
and ``TutorialSNN1d`` for 1-D signals (``[T, B, C, L]``, MNIST-1D).

Static images are repeated T times *before* the model (``snnlab.layers.DirectEncoder``), so the same model
serves static and event data, and can be evaluated at any T (TET's temporal scalability).
"""
from __future__ import annotations

import math
from collections.abc import Callable

from torch import nn

from ..layers import ConvBNSpike, Readout, TimeMerged
from .factory import check_any_shape, check_classes, check_shape, check_shape_1d, make_neuron, neuron_factory

__all__ = ["TutorialSNN", "TutorialSNN1d", "SpikingMLP", "conv_trunk"]


def conv_trunk(shape: tuple[int, int, int], channels: tuple[int, int],
               make: Callable[[], nn.Module]) -> tuple[nn.Sequential, int]:
    """``(conv3x3-BN-neuron -> avgpool2 -> conv3x3-BN-neuron -> avgpool2, its flat output size)`` on ``(C, H, W)``
    frames, widths ``channels``: ``TutorialSNN``'s feature extractor (also ``snnlab.models.dsr.DSRTutorialSNN``'s)."""
    c, h, w = shape
    c1, c2 = channels
    features = nn.Sequential(
        ConvBNSpike(c, c1, make()),
        TimeMerged(nn.AvgPool2d(2)),
        ConvBNSpike(c1, c2, make()),
        TimeMerged(nn.AvgPool2d(2)),
    )
    return features, c2 * (h // 4) * (w // 4)


def conv_trunk_1d(input_shape, channels: tuple[int, int],
                  make: Callable[[], nn.Module]) -> tuple[nn.Sequential, int]:
    """``conv_trunk`` for ``(C, L)`` signals: ``(conv1d(3)-BN-neuron -> avgpool2) x 2, its flat output size)``
    (``TutorialSNN1d``'s feature extractor, also ``snnlab.models.dsr.DSRTutorialSNN1d``'s)."""
    c, length = check_shape_1d(input_shape, min_len=4, why="two 2x poolings need a length of at least 4")
    c1, c2 = channels
    features = nn.Sequential(
        TimeMerged(nn.Conv1d(c, c1, 3, padding=1, bias=False), nn.BatchNorm1d(c1)), make(),
        TimeMerged(nn.AvgPool1d(2)),
        TimeMerged(nn.Conv1d(c1, c2, 3, padding=1, bias=False), nn.BatchNorm1d(c2)), make(),
        TimeMerged(nn.AvgPool1d(2)),
    )
    return features, c2 * (length // 4)


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
        c, h, w = check_shape(input_shape)
        self.input_shape = (c, h, w)  # one frame's shape (snnlab.export_nir reads it)
        self.features, n_features = conv_trunk((c, h, w), channels, neuron or make_neuron)
        self.readout = Readout(n_features, num_classes)

    def forward(self, x):
        return self.readout(self.features(x))


class TutorialSNN1d(nn.Module):
    """``TutorialSNN`` for 1-D signals (MNIST-1D): ``[T,B,C,L] -> conv1d(3)-BN-LIF -> avgpool2 -> conv1d(3)-BN-LIF
    -> avgpool2 -> linear -> [T,B,classes]``.

    Args:
        input_shape: ``(C, L)`` of one frame, e.g. ``(1, 40)`` for ``mnist1d``; L >= 4.
        num_classes: outputs per step.
        channels: widths of the two conv blocks.
        neuron: a zero-argument callable returning a fresh spiking module (default ``make_neuron()``).
    """

    def __init__(self, input_shape=(1, 40), num_classes: int = 10, channels: tuple[int, int] = (16, 32),
                 neuron: Callable[[], nn.Module] | None = None):
        super().__init__()
        self.input_shape = tuple(int(s) for s in input_shape)
        self.features, n_features = conv_trunk_1d(input_shape, channels, neuron_factory(neuron))
        self.readout = Readout(n_features, check_classes(num_classes))

    def forward(self, x):
        return self.readout(self.features(x))


class SpikingMLP(nn.Module):
    """``flatten -> linear -> BN -> LIF -> linear readout``: the smallest model, for quick experiments; any
    ``input_shape`` (images ``(C, H, W)``, signals ``(C, L)``, features ``(F,)``)."""

    def __init__(self, input_shape=(1, 8, 8), num_classes: int = 10, hidden: int = 128, neuron=None):
        super().__init__()
        n_in = math.prod(check_any_shape(input_shape))
        self.input_shape = tuple(int(s) for s in input_shape)
        neuron = neuron or make_neuron
        self.hidden = nn.Sequential(
            TimeMerged(nn.Flatten(), nn.Linear(n_in, hidden, bias=False), nn.BatchNorm1d(hidden)), neuron()
        )
        self.readout = Readout(hidden, num_classes)

    def forward(self, x):
        return self.readout(self.hidden(x))
