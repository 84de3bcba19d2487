"""Device kernels for snnlab's layers (optional; everything has a PyTorch fallback).

``triton_lif``: the fused multi-step LIF forward and backward as Triton kernels, used automatically by
``snnlab.fused`` (and so by ``snnlab.neurons.LIF``'s default ``backend="fused"``) for CUDA tensors when Triton
imports. Importing this package does not import Triton; ``triton_available()`` does, once.

On the CPU, small C kernels built on first use (``cbuild``): ``cpu_lif`` (the fused LIF), ``cpu_bn`` (BatchNorm2d
in training mode) and ``cpu_pool`` (2x2 average pooling), each computing bitwise what the PyTorch ops it
replaces compute.
"""
from __future__ import annotations

import functools
import math

import torch

from .. import surrogate as _surrogate

__all__ = ["triton_available", "triton_error", "shape_id", "SHAPE_IDS", "compare_threshold"]

#: the surrogate shapes the kernels implement, by id (a ``tl.constexpr`` in the kernel)
SHAPE_IDS = {
    _surrogate.Rectangle: 0,
    _surrogate.Triangle: 1,
    _surrogate.Sigmoid: 2,
    _surrogate.ATan: 3,
    _surrogate.Gaussian: 4,
}


def shape_id(surrogate) -> int | None:
    """The kernel's id of ``surrogate``'s shape, or None if it is not one of the five (exact type: a subclass
    may change ``grad``, so it gets the PyTorch path, which calls its ``.grad``)."""
    return SHAPE_IDS.get(type(surrogate))


@functools.lru_cache(maxsize=1)
def _probe() -> str | None:
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except Exception as e:  # ImportError, or a broken install raising anything at import
        return f"{type(e).__name__}: {e}"
    return None


def triton_available() -> bool:
    """True if Triton imports (it is needed for the CUDA kernels; the CPU path never needs it)."""
    return _probe() is None


def triton_error() -> str | None:
    """Why Triton does not import (None if it does)."""
    return _probe()


@functools.lru_cache(maxsize=256)
def compare_threshold(v_th: float, dtype: torch.dtype, strict: bool) -> float:
    """The ``c`` for which the kernel's ``u >= c`` is the firing rule on ``dtype`` values: ``v_th`` (rounded to
    ``dtype``, as PyTorch rounds a scalar operand) for ``u >= v_th``; with ``strict``, the next value of ``dtype``
    above it, for ``u > v_th`` (no ``dtype`` value lies between the two, and NaN fails both tests)."""
    v = torch.tensor(v_th, dtype=dtype)
    if strict:
        v = torch.nextafter(v, torch.tensor(math.inf, dtype=dtype))
    return float(v)
