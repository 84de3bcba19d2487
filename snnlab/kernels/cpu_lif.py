"""The C kernel of the fused LIF on the CPU (``cpu_lif.c``): built with the system C compiler on first use, cached.

``snnlab.fused`` uses it for float32 CPU tensors with every surrogate of the family, and for float64 with the
rectangle, triangle and atan, when it builds (``impl="c"``: all five shapes in both);
otherwise (no compiler, a build error, ``SNNLAB_CPU_KERNEL=0``) the PyTorch ops run as before, and
``error()`` says why. It runs the PyTorch path's floating-point operations (fused multiply-adds where PyTorch's
``add``/``addcmul`` use them, the scalars rounded as PyTorch rounds them), so its spikes, membranes and, for the
rectangle, triangle and atan surrogates, its gradients are bitwise the PyTorch path's; the sigmoid and gaussian
derivatives use the kernel's vectorised ``exp`` (float32) or the C library's (float64) and agree to rounding, with
exact zeros where PyTorch's are (tests/test_cpu_kernel.py). Both firing rules run here: the kernel compares
``u >= c`` with ``c = snnlab.kernels.compare_threshold(v_th, dtype, strict)``, ``v_th`` itself for ``fire=">="``
and the next value of the dtype above it for ``fire=">"`` (then ``u >= c`` is exactly ``u > v_th``). Built once
per source and machine into
``$SNNLAB_CACHE`` (default ``~/.cache/snnlab``)/kernels, written atomically; a build takes about a second.
"""
from __future__ import annotations

import ctypes
import math
from pathlib import Path

import torch

from .. import surrogate as _surrogate
from . import cbuild, compare_threshold

__all__ = ["available", "error", "forward", "backward", "library_path", "AUTO_SHAPES", "BITWISE_SHAPES"]

#: the shapes ``impl="auto"`` runs here, per dtype: in float32 all five (the sigmoid and gaussian derivatives use
#: the kernel's own vectorised ``exp``, equal to PyTorch's to rounding); in float64 those without an exponential,
#: since the C library's scalar ``exp`` is slower than PyTorch's vectorised one (measured), so the float64 sigmoid
#: and gaussian stay on the PyTorch ops unless ``impl="c"`` is asked for.
AUTO_SHAPES = {torch.float32: (_surrogate.Rectangle, _surrogate.Triangle, _surrogate.Sigmoid, _surrogate.ATan,
                               _surrogate.Gaussian),
               torch.float64: (_surrogate.Rectangle, _surrogate.Triangle, _surrogate.ATan)}
#: the shapes whose gradients are bitwise the PyTorch path's (the others agree to rounding)
BITWISE_SHAPES = (_surrogate.Rectangle, _surrogate.Triangle, _surrogate.ATan)

_p, _i64, _d, _i = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double, ctypes.c_int
_KERNEL = cbuild.Kernel("cpu_lif.c", {
    **{f"lif_forward_{s}": [_p, _p, _p, _p, _i64, _i64, _d, _d, _d, _i, _i] for s in ("f32", "f64")},
    **{f"lif_backward_{s}": [_p, _p, _p, _p, _i64, _i64, _d, _d, _d, _d, _d, _i, _i, _i, _d, _d, _i]
       for s in ("f32", "f64")},
}, switch="SNNLAB_CPU_KERNEL")


def library_path() -> Path:
    """Where the built library is (or would be): one file per source, flags and machine."""
    return cbuild.library_path(_KERNEL.src)


def available() -> bool:
    """True if the kernel built (or was built before) and loads."""
    return _KERNEL.available()


def error() -> str | None:
    """Why the kernel is not available (None when it is)."""
    return _KERNEL.error()


_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}


_ptr = cbuild.ptr


def forward(x: torch.Tensor, tau: float, v_th: float, hard: bool, keep_mem: bool, strict: bool = False):
    """``(spk, mem or None)`` for a contiguous float32/float64 CPU ``x [T, ...]``; ``strict``: fire on ``u > v_th``."""
    T = x.shape[0]
    spk = torch.empty_like(x)
    mem = torch.empty_like(x) if keep_mem else None
    p = torch.empty(x.numel() // T, dtype=x.dtype)  # the post-reset membrane of the current row
    getattr(_KERNEL.lib(), f"lif_forward_{_SUFFIX[x.dtype]}")(
        _ptr(x), _ptr(spk), _ptr(mem), _ptr(p), T, x.numel() // T, tau, v_th,
        compare_threshold(v_th, x.dtype, strict), int(hard), torch.get_num_threads())
    return spk, mem


def _shape_parameters(surrogate, width: float) -> tuple[float, float]:
    """The two constants of each shape, computed in double as ``snnlab.surrogate``'s ``_grad`` computes them (the
    kernel rounds them to the tensor's dtype as PyTorch rounds a scalar operand)."""
    w = float(width)
    kind = type(surrogate)
    if kind is _surrogate.Rectangle:
        return w / 2, 1.0 / w
    if kind is _surrogate.Triangle:
        return w, 1.0 / (w * w)
    if kind is _surrogate.Sigmoid:
        return _surrogate.Sigmoid.k_from_width(w), 0.0
    if kind is _surrogate.ATan:
        a = _surrogate.ATan.alpha_from_width(w)
        return math.pi * a, a / 2
    sigma = w / (2 * math.sqrt(2 * math.log(2)))
    return sigma, math.sqrt(2 * math.pi) * sigma  # Gaussian


def backward(grad_spk, mem, tau, v_th, hard, detach_reset, shape: int, surrogate, width, grad_mem=None,
             strict: bool = False):
    """``dL/dI`` ``[T, ...]`` from the incoming gradients and the saved pre-reset membranes (all contiguous);
    ``strict``: the spikes were ``u > v_th``."""
    T = mem.shape[0]
    grad_x = torch.empty_like(mem)
    p1, p2 = _shape_parameters(surrogate, width)
    getattr(_KERNEL.lib(), f"lif_backward_{_SUFFIX[mem.dtype]}")(
        _ptr(grad_spk), _ptr(mem), _ptr(grad_mem), _ptr(grad_x), T, mem.numel() // T, tau, -tau, -v_th * tau,
        v_th, compare_threshold(v_th, mem.dtype, strict), int(hard), int(detach_reset), shape, p1, p2,
        torch.get_num_threads())
    return grad_x
