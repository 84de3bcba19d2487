"""2 x 2 average pooling (stride 2) on the CPU in C (``cpu_pool.c``), for ``snnlab.layers._AvgPool2x2``.

The same floating-point operations as its PyTorch version (and so as ``avg_pool2d``): bitwise the same results in
one pass over memory each way. Built on first use (``snnlab.kernels.cbuild``); without a compiler, or with
``SNNLAB_CPU_KERNEL=0``, ``available()`` is False and ``_AvgPool2x2`` runs its PyTorch ops.
"""
from __future__ import annotations

import ctypes

import torch

from . import cbuild

__all__ = ["available", "error", "forward", "backward"]

_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
_KERNEL = cbuild.Kernel("cpu_pool.c", {
    f"pool_{d}_{s}": [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_int]
    for d in ("forward", "backward") for s in ("f32", "f64")}, switch="SNNLAB_CPU_KERNEL")


def available() -> bool:
    return _KERNEL.available()


def error() -> str | None:
    return _KERNEL.error()


def forward(x: torch.Tensor) -> torch.Tensor:
    """The pooled ``[N, C, H/2, W/2]`` of a contiguous float32/float64 CPU ``x [N, C, H, W]`` with even H, W."""
    n, c, h, w = x.shape
    y = torch.empty(n, c, h // 2, w // 2, dtype=x.dtype)
    getattr(_KERNEL.lib(), f"pool_forward_{_SUFFIX[x.dtype]}")(cbuild.ptr(x), cbuild.ptr(y), n * c, h, w,
                                                        torch.get_num_threads())
    return y


def backward(g: torch.Tensor) -> torch.Tensor:
    """``dL/dx [N, C, 2h, 2w]`` from a contiguous ``dL/dy [N, C, h, w]``: ``g / 4`` spread over each window."""
    n, c, h, w = g.shape
    gx = torch.empty(n, c, 2 * h, 2 * w, dtype=g.dtype)
    getattr(_KERNEL.lib(), f"pool_backward_{_SUFFIX[g.dtype]}")(cbuild.ptr(g), cbuild.ptr(gx), n * c, 2 * h, 2 * w,
                                                         torch.get_num_threads())
    return gx
