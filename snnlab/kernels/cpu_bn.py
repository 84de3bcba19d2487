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
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import cbuild

__all__ = ["available", "error", "applies", "batch_norm", "self_check"]

_SRC = Path(__file__).with_name("cpu_bn.c")
_state: dict = {}
_LANES = (8, 16)  # PyTorch's vector widths for float32 (AVX2, AVX512); the self-check picks the one that matches


def _lib():
    if "lib" not in _state and "error" not in _state:
        try:
            if cbuild.switched_off("SNNLAB_FAST_BN"):
                raise RuntimeError("switched off by SNNLAB_FAST_BN=0")
            p, i64, d, i = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double, ctypes.c_int
            _state["lib"] = cbuild.load(_SRC, {
                "bn_forward_f32": [p, p, i64, i64, i64, p, p, p, p, p, p, d, d, p, p, i],
                "bn_backward_f32": [p, p, p, p, p, i64, i64, i64, p, p, p, i, p, i],
            })
            _state["lanes"] = _pick_lanes()
        except (OSError, RuntimeError) as e:
            _state.pop("lib", None)
            _state["error"] = f"{type(e).__name__}: {e}"
    return _state.get("lib")


def available() -> bool:
    """True if the kernel built and passed its bitwise check against PyTorch in this process."""
    return _lib() is not None


def error() -> str | None:
    """Why BatchNorm stays on PyTorch here (None if the kernel is used)."""
    _lib()
    return _state.get("error")


def _forward(x, weight, bias, running_mean, running_var, momentum: float, eps: float):
    N, C, H, W = x.shape
    y = torch.empty_like(x)
    save_mean, save_invstd, alpha, beta = (torch.empty(C, dtype=x.dtype) for _ in range(4))
    rm = None if running_mean is None else running_mean.detach().clone()
    rv = None if running_var is None else running_var.detach().clone()
    w = None if weight is None else weight.detach().contiguous()
    b = None if bias is None else bias.detach().contiguous()
    ptr = cbuild.ptr
    _state["lib"].bn_forward_f32(ptr(x), ptr(y), N, C, H * W, ptr(w), ptr(b), ptr(save_mean), ptr(save_invstd),
                                 ptr(rm), ptr(rv), float(momentum), float(eps), ptr(alpha), ptr(beta),
                                 torch.get_num_threads())
    if rm is not None:
        running_mean.copy_(rm)  # in place, as PyTorch updates them (and their version counters)
    if rv is not None:
        running_var.copy_(rv)
    return y, save_mean, save_invstd


def _backward(g, x, weight, save_mean, save_invstd, needs, lanes: int):
    N, C, H, W = x.shape
    dx = torch.empty_like(x) if needs[0] else None
    gw = torch.empty(C, dtype=x.dtype) if needs[1] else None
    gb = torch.empty(C, dtype=x.dtype) if needs[2] else None
    sums = torch.empty(2 * C, dtype=torch.float64)
    w = None if weight is None else weight.detach().contiguous()
    ptr = cbuild.ptr
    _state["lib"].bn_backward_f32(ptr(g), ptr(x), ptr(dx), ptr(gw), ptr(gb), N, C, H * W, ptr(w), ptr(save_mean),
                                  ptr(save_invstd), lanes, ptr(sums), torch.get_num_threads())
    return dx, gw, gb


class _BatchNorm2dTrain(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, momentum, eps):
        y, save_mean, save_invstd = _forward(x, weight, bias, running_mean, running_var, momentum, eps)
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
        dx, gw, gb = _backward(g.contiguous(), x, weight, save_mean, save_invstd, needs, _state["lanes"])
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


def self_check(lanes: int) -> str | None:
    """None if the kernel with ``lanes`` gives bitwise PyTorch's forward, statistics and gradients on the test
    batches; otherwise what differs."""
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
        y2, sm2, si2 = _forward(x, w, b, rm2, rv2, momentum, 1e-5)
        dx2, gw2, gb2 = _backward(dy, x, w, sm2, si2, (True, affine, affine), lanes)
        pairs = {"output": (y, y2), "mean": (sm, sm2), "invstd": (si, si2), "running_mean": (rm, rm2),
                 "running_var": (rv, rv2), "grad_input": (dx, dx2), "grad_weight": (gw, gw2),
                 "grad_bias": (gb, gb2)}
        for name, (a, c) in pairs.items():
            if (a is None) != (c is None) or (a is not None and not torch.equal(a, c)):
                return f"{name} differs from PyTorch's on a {list(shape)} batch"
    return None


def _pick_lanes() -> int:
    why = []
    for lanes in _LANES:
        problem = self_check(lanes)
        if problem is None:
            return lanes
        why.append(f"{lanes} lanes: {problem}")
    raise RuntimeError("the C BatchNorm does not reproduce this PyTorch build bitwise (" + "; ".join(why) + ")")
