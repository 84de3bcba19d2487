"""What every model is built from: the neuron factory ``make_neuron``, the checks of the model arguments, the init.

``tutorial``, ``papers`` and ``dsr`` import this module (and nothing of each other's but ``dsr`` -> ``papers``
and ``dsr`` -> ``tutorial``), so the package's imports go one way.
"""
from __future__ import annotations

from collections.abc import Callable

from torch import nn

from .. import neurons

__all__ = ["NEURONS", "make_neuron", "neuron_factory", "check_shape", "check_shape_1d", "check_any_shape",
           "check_classes", "init_resnet"]

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


def neuron_factory(neuron) -> Callable[[], nn.Module]:
    """``neuron`` checked as a zero-argument callable returning a fresh spiking module; None gives
    ``make_neuron`` (TET's LIF). ValueError for anything else (e.g. a module instead of a factory)."""
    if neuron is None:
        return make_neuron
    if not callable(neuron) or isinstance(neuron, nn.Module):
        raise ValueError(
            f"neuron must be a zero-argument callable returning a fresh spiking module (e.g. "
            f"functools.partial(snnlab.models.make_neuron, 'lif') or snnlab.dsr_models.make_dsr_neuron), got {neuron!r}"
        )
    return neuron


def check_shape(input_shape, min_hw: int = 1, why: str = "") -> tuple[int, int, int]:
    """``input_shape`` as ``(channels, height, width)`` ints, each >= 1 and H, W >= ``min_hw``; else ValueError
    (``why`` says what needs the ``min_hw``)."""
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape must be (channels, height, width), got {input_shape!r}")
    if min(shape[1:]) < min_hw:
        raise ValueError(f"input_shape {input_shape!r} is too small: {why}")
    return shape  # type: ignore[return-value]


def _ints(input_shape) -> tuple:
    try:
        return tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        return ()


def check_shape_1d(input_shape, min_len: int = 1, why: str = "") -> tuple[int, int]:
    """``input_shape`` as ``(channels, length)`` ints >= 1 with length >= ``min_len``; else ValueError."""
    shape = _ints(input_shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"input_shape must be (channels, length) for a 1-D model, got {input_shape!r}")
    if shape[1] < min_len:
        raise ValueError(f"input_shape {input_shape!r} is too short: {why}")
    return shape  # type: ignore[return-value]


def check_any_shape(input_shape) -> tuple:
    """``input_shape`` as a non-empty tuple of ints >= 1 (a model that flattens its input takes any); else ValueError."""
    shape = _ints(input_shape)
    if not shape or min(shape) < 1:
        raise ValueError(f"input_shape must be a non-empty tuple of positive sizes, e.g. (1, 8, 8) or (1, 40), "
                         f"got {input_shape!r}")
    return shape


def check_classes(num_classes) -> int:
    """``num_classes`` if it is a positive int, else ValueError."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    return num_classes


def init_resnet(model: nn.Module, *, zero_linear_bias: bool = False) -> None:
    """The ResNets' init, module by module in ``model.modules()`` order: conv weights ``kaiming_normal_(fan_out,
    relu)``, BatchNorm2d weight 1 and bias 0, and, with ``zero_linear_bias``, every linear bias 0."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and zero_linear_bias:
            nn.init.zeros_(m.bias)
