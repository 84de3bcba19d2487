"""``nn.BatchNorm2d`` in training mode on the CPU in C (``cpu_bn.c``): bitwise PyTorch's results, faster.

``snnlab.layers.TimeMerged`` runs a plain ``nn.BatchNorm2d`` through ``batch_norm`` when ``applies`` says so
(training mode, a contiguous float32 ``[N, C, H, W]`` CPU batch with ``H * W > 1``, no hooks): the output, the
saved mean and inverse std, the running statistics (and ``num_batches_tracked``) and the gradients of input,
weight and bias are bitwise those of ``nn.BatchNorm2d`` itself. PyTorch sums each channel's statistics in one
sequential chain of double additions, each waiting for the last; the kernel advances several channels' chains
together, every chain in PyTorch's own order (so every rounding is the same), and vectorises the rest.

Because "the same operations as PyTorch's build" depends on how that build was compiled (its vector width, the
multiply-adds its compiler fused), the kernel is checked bitwise against ``torch.native_batch_norm`` and its
backward on a set of test batches (tails, odd channel counts, no affine, both momentum modes) once per process,
before first use; if anything differs, or the kernel cannot be built, or ``SNNLAB_FAST_BN=0``, BatchNorm stays
on PyTorch and ``error()`` says why. A double backward (``create_graph=True``, e.g. Hessian-vector products)
runs through PyTorch's own batch_norm, recomputed from the saved input.
"""
from __future__ import annotations

import ctypes

import torch
import torch.nn.functional as F
from torch import nn

from . import cbuild

__all__ = ["available", "error", "lanes", "applies", "batch_norm", "self_check"]

_LANES = (8, 16)  # PyTorch's vector widths for float32 (AVX2, AVX512); the self-check picks the one that matches
_picked: dict = {}  # "lanes": the width that passed the check


def _check(lib) -> None:
    """The kernel's bitwise check against PyTorch (``cbuild.Kernel``'s ``check``): keep the first vector width that
    passes, or raise RuntimeError saying what differed with each."""
    why = []
    for lanes in _LANES:
        problem = self_check(lanes, lib)
        if problem is None:
            _picked["lanes"] = lanes
            return
        why.append(f"{lanes} lanes: {problem}")
    raise RuntimeError("the C BatchNorm does not reproduce this PyTorch build bitwise (" + "; ".join(why) + ")")


_p, _i64, _d, _i = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double, ctypes.c_int
_KERNEL = cbuild.Kernel("cpu_bn.c", {
    "bn_forward_f32": [_p, _p, _i64, _i64, _i64, _p, _p, _p, _p, _p, _p, _d, _d, _p, _p, _i],
    "bn_backward_f32": [_p, _p, _p, _p, _p, _i64, _i64, _i64, _p, _p, _p, _i, _p, _i],
}, switch="SNNLAB_FAST_BN", check=_check)


def available() -> bool:
    """True if the kernel built and passed its bitwise check against PyTorch in this process."""
    return _KERNEL.available()


def error() -> str | None:
    """Why BatchNorm stays on PyTorch here (None if the kernel is used)."""
    return _KERNEL.error()


def lanes() -> int | None:
    """The vector width of PyTorch's reductions that the check found (None if the kernel is not used)."""
    return _picked.get("lanes") if available() else None


def _forward(lib, x, weight, bias, running_mean, running_var, momentum: float, eps: float):
    N, C, H, W = x.shape
    y = torch.empty_like(x)
    save_mean, save_invstd, alpha, beta = (torch.empty(C, dtype=x.dtype) for _ in range(4))
    rm = None if running_mean is None else running_mean.detach().clone()
    rv = None if running_var is None else running_var.detach().clone()
    w = None if weight is None else weight.detach().contiguous()
    b = None if bias is None else bias.detach().contiguous()
    ptr = cbuild.ptr
    lib.bn_forward_f32(ptr(x), ptr(y), N, C, H * W, ptr(w), ptr(b), ptr(save_mean), ptr(save_invstd),
                                 ptr(rm), ptr(rv), float(momentum), float(eps), ptr(alpha), ptr(beta),
                                 torch.get_num_threads())
    if rm is not None:
        running_mean.copy_(rm)  # in place, as PyTorch updates them (and their version counters)
    if rv is not None:
        running_var.copy_(rv)
    return y, save_mean, save_invstd


def _backward(lib, g, x, weight, save_mean, save_invstd, needs, lanes: int):
    N, C, H, W = x.shape
    dx = torch.empty_like(x) if needs[0] else None
    gw = torch.empty(C, dtype=x.dtype) if needs[1] else None
    gb = torch.empty(C, dtype=x.dtype) if needs[2] else None
    sums = torch.empty(2 * C, dtype=torch.float64)
    w = None if weight is None else weight.detach().contiguous()
    ptr = cbuild.ptr
    lib.bn_backward_f32(ptr(g), ptr(x), ptr(dx), ptr(gw), ptr(gb), N, C, H * W, ptr(w), ptr(save_mean),
                                  ptr(save_invstd), lanes, ptr(sums), torch.get_num_threads())
    return dx, gw, gb


class _BatchNorm2dTrain(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, momentum, eps):
        y, save_mean, save_invstd = _forward(_KERNEL.lib(), x, weight, bias, running_mean, running_var, momentum,
                                             eps)
        ctx.save_for_backward(x, weight, bias, save_mean, save_invstd)
        ctx.eps = eps
        return y

    @staticmethod
    def backward(ctx, g):
        x, weight, bias, save_mean, save_invstd = ctx.saved_tensors
        needs = ctx.needs_input_grad[:3]
        if torch.is_grad_enabled():  # create_graph=True: PyTorch's differentiable batch_norm on the saved input
            inputs = [t for t, n in zip((x, weight, bias), needs) if n]
            y = F.batch_norm(x, None, None, weight, bias, True, 0.0, ctx.eps)
            grads = iter(torch.autograd.grad(y, inputs, g, create_graph=True))
            return (*(next(grads) if n else None for n in needs), None, None, None, None)
        dx, gw, gb = _backward(_KERNEL.lib(), g.contiguous(), x, weight, save_mean, save_invstd, needs,
                               _picked["lanes"])
        return dx, gw, gb, None, None, None, None


def applies(m: nn.Module, x: torch.Tensor) -> bool:
    """``m`` is a plain ``nn.BatchNorm2d`` in training mode without hooks and ``x`` a contiguous float32 CPU
    ``[N, C, H, W]`` batch with ``H * W > 1`` (and more than one value per channel), and the kernel is available."""
    return (type(m) is nn.BatchNorm2d and m.training and x.dim() == 4 and x.device.type == "cpu"
            and x.dtype == torch.float32 and x.is_contiguous() and x.shape[2] * x.shape[3] > 1 and x.shape[0] > 0
            and x.shape[1] == m.num_features
            and not (m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks)
            and not (nn.modules.module._global_forward_hooks or nn.modules.module._global_forward_pre_hooks
                     or nn.modules.module._global_backward_hooks or nn.modules.module._global_backward_pre_hooks)
            and (m.weight is None or (m.weight.dtype == torch.float32 and m.weight.device.type == "cpu"))
            and available())


def batch_norm(m: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """``m(x)``: through the kernel when ``applies(m, x)`` (with ``nn.BatchNorm2d.forward``'s bookkeeping: the
    running statistics and ``num_batches_tracked``), else ``m(x)`` itself."""
    if not applies(m, x):
        return m(x)
    momentum = 0.0 if m.momentum is None else m.momentum
    if m.track_running_stats and m.num_batches_tracked is not None:
        m.num_batches_tracked.add_(1)
        momentum = 1.0 / float(m.num_batches_tracked) if m.momentum is None else m.momentum
    rm, rv = (m.running_mean, m.running_var) if m.track_running_stats else (None, None)
    return _BatchNorm2dTrain.apply(x, m.weight, m.bias, rm, rv, momentum, m.eps)


# ----------------------------------------------------------------------------------------------------------
# The bitwise check against PyTorch, once per process

_CHECK_SHAPES = ((6, 5, 2, 3), (5, 3, 7, 9), (4, 16, 8, 8), (3, 13, 6, 6), (2, 9, 3, 3), (2, 8, 24, 24))


def self_check(lanes: int, lib=None) -> str | None:
    """None if the kernel (``lib``, default: this module's, loaded) with ``lanes`` gives bitwise PyTorch's forward,
    statistics and gradients on the test batches; otherwise what differs."""
    lib = lib if lib is not None else _KERNEL.lib()
    g = torch.Generator().manual_seed(1234)
    for k, shape in enumerate(_CHECK_SHAPES):
        C = shape[1]
        x = torch.randn(shape, generator=g) * 2 + 0.5
        dy = torch.randn(shape, generator=g)
        affine = k % 3 != 2
        w = torch.randn(C, generator=g) if affine else None
        b = torch.randn(C, generator=g) if affine else None
        rm, rv = torch.randn(C, generator=g), torch.rand(C, generator=g) + 0.5
        momentum = (0.1, 1.0 / 3, 0.5)[k % 3]
        rm2, rv2 = rm.clone(), rv.clone()
        y, sm, si = torch.native_batch_norm(x, w, b, rm, rv, True, momentum, 1e-5)
        dx, gw, gb = torch.ops.aten.native_batch_norm_backward(dy, x, w, rm, rv, sm, si, True, 1e-5,
                                                               [True, affine, affine])
        y2, sm2, si2 = _forward(lib, x, w, b, rm2, rv2, momentum, 1e-5)
        dx2, gw2, gb2 = _backward(lib, dy, x, w, sm2, si2, (True, affine, affine), lanes)
        pairs = {"output": (y, y2), "mean": (sm, sm2), "invstd": (si, si2), "running_mean": (rm, rm2),
                 "running_var": (rv, rv2), "grad_input": (dx, dx2), "grad_weight": (gw, gw2),
                 "grad_bias": (gb, gb2)}
        for name, (a, c) in pairs.items():
            if (a is None) != (c is None) or (a is not None and not torch.equal(a, c)):
                return f"{name} differs from PyTorch's on a {list(shape)} batch"
    return None
