"""Triton kernels for the fused multi-step LIF (``snnlab.fused``): the time loop runs inside the kernel.

Each program owns ``BLOCK`` neurons and walks through all T steps with the membrane in registers, so a
neuron-step costs one read of ``I[t]`` and two writes (``s[t]``, ``u[t]``) in the forward kernel, and two reads
(``dL/ds[t]``, ``u[t]``) and one write (``dL/dI[t]``) in the backward kernel: 24 bytes per neuron-step in fp32,
12 in bf16/fp16, the bandwidth floor ``benchmarks/bench_neuron.py --gpu`` compares against.

Equations: those of ``snnlab.fused`` (forward (1)-(3), adjoint recurrence (A)), evaluated in fp32 whatever the
input dtype (fp32, bf16, fp16); spikes and gradients are written in the input dtype.

Rounding: the membrane update is an explicit fused multiply-add, ``u = fma(p, tau, I)``, one rounding, as
PyTorch's CPU ``torch.add(I, p, alpha=tau)`` (the reference's op) is. Bitwise equality with the eager CUDA
reference was not checked on a GPU. Under ``TRITON_INTERPRET=1`` Triton evaluates ``fma`` as a multiply then an
add (numpy), so the interpreted test uses inputs whose membranes are exact in fp32.

Firing rule: the kernels test ``u >= c`` with ``c = v_th`` for ``fire=">="`` and ``c`` = the next fp32 value above
``v_th`` for ``fire=">"`` (``snnlab.kernels.compare_threshold``: then ``u >= c`` is exactly ``u > v_th``
for every fp32 ``u``); ``v_th`` itself stays in the arithmetic (``u - v_th``, the subtractive reset).

Saved membranes in bf16/fp16: ``u[t]`` is stored in the input dtype, and the backward recomputes the spike as
``u_stored >= c``. Plain rounding could move a membrane just below the threshold onto it (or one on it
below), so the stored value is clamped to the correct side: ``min(rn(u), v_below)`` when ``s = 0`` and
``max(rn(u), v_above)`` when ``s = 1``, where ``v_below``/``v_above`` are the representable neighbours of ``c``.
The spike pattern seen by the backward pass is then exactly the forward's; the surrogate is evaluated
at the rounded membrane (an error of one rounding of ``u``).

Layout: the operation is element-wise over ``[B, ...]`` and sequential over T only. A tensor whose time
dimension is outermost and whose other dimensions form any dense, non-overlapping layout (contiguous, or a
channels-last ``[T*B, C, H, W]`` batch viewed as ``[T, B, C, H, W]``, i.e. ``x[t]`` is
``is_contiguous(memory_format=torch.channels_last)``) is processed in its flat storage order, and the outputs
get the same strides (``torch.empty_like``). Any other layout is copied to a contiguous one first.

Surrogate derivatives (``SHAPE`` is a compile-time constant, ``w`` the width, a runtime argument so a changed
width does not recompile); the formulas of ``snnlab.surrogate``::

    0 rectangle  (|x| < w/2) / w
    1 triangle   max(0, w - |x|) / w^2
    2 sigmoid    k sig(kx) sig(-kx),          k = 4 asinh(1) / w
    3 atan       (a/2) / (1 + (pi a x / 2)^2), a = 4 / (pi w)
    4 gaussian   exp(-(x/sigma)^2 / 2) / (sqrt(2 pi) sigma),  sigma = w / (2 sqrt(2 ln 2))

Testing without a GPU: with ``TRITON_INTERPRET=1`` set before Triton is imported, ``@triton.jit`` builds
interpreted kernels that run on CPU tensors (``tests/test_fused.py`` does this in a subprocess).
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from . import compare_threshold
from . import shape_id as _shape_id

__all__ = ["lif_forward", "lif_backward", "flat_layout"]

_SIGMOID_C = tl.constexpr(4 * math.asinh(1.0))
_PI = tl.constexpr(math.pi)
_FWHM_PER_SIGMA = tl.constexpr(2 * math.sqrt(2 * math.log(2)))
_SQRT_2PI = tl.constexpr(math.sqrt(2 * math.pi))

BLOCK = 1024
NUM_WARPS = 4


@triton.jit
def _surrogate_grad(x, w, SHAPE: tl.constexpr):
    if SHAPE == 0:  # rectangle
        g = tl.where(tl.abs(x) < w * 0.5, 1.0 / w, 0.0)
    elif SHAPE == 1:  # triangle
        g = tl.maximum(w - tl.abs(x), 0.0) * (1.0 / (w * w))
    elif SHAPE == 2:  # sigmoid
        k = _SIGMOID_C / w
        g = k * tl.sigmoid(k * x) * tl.sigmoid(-k * x)
    elif SHAPE == 3:  # atan
        a = 4.0 / (_PI * w)
        z = _PI * a * x / 2.0
        g = (a / 2.0) / (1.0 + z * z)
    else:  # gaussian
        sigma = w / _FWHM_PER_SIGMA
        z = x / sigma
        g = tl.exp(-0.5 * z * z) / (_SQRT_2PI * sigma)
    return g


@triton.jit(do_not_specialize=["N", "T"])
def _lif_fwd_kernel(x_ptr, spk_ptr, mem_ptr, N, T, tau, v_th, v_cmp, v_below, v_above,
                    HARD: tl.constexpr, KEEP_MEM: tl.constexpr, CLAMP_MEM: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    p = tl.zeros([BLOCK], dtype=tl.float32)  # post-reset membrane
    for _t in range(T):
        x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        u = tl.fma(p, tau, x)  # (1) I + tau p, one rounding: torch.add(I, p, alpha=tau) is an FMA too
        s = u >= v_cmp  # (2): u >= v_th (H(0) = 1), or u > v_th (strict) through v_cmp
        sf = s.to(tl.float32)
        tl.store(spk_ptr + offs, sf.to(spk_ptr.dtype.element_ty), mask=mask)
        if KEEP_MEM:
            if CLAMP_MEM:  # low-precision storage: keep each membrane on its side of the threshold
                ur = u.to(mem_ptr.dtype.element_ty).to(tl.float32)
                ur = tl.where(s, tl.maximum(ur, v_above), tl.minimum(ur, v_below))
                tl.store(mem_ptr + offs, ur.to(mem_ptr.dtype.element_ty), mask=mask)
            else:
                tl.store(mem_ptr + offs, u.to(mem_ptr.dtype.element_ty), mask=mask)
        if HARD:
            p = tl.where(s, 0.0, u)  # (3a) u (1 - s)
        else:
            p = u - v_th * sf  # (3b)
        offs += N


@triton.jit(do_not_specialize=["N", "T"])
def _lif_bwd_kernel(gs_ptr, mem_ptr, gx_ptr, N, T, tau, v_th, v_cmp, w,
                    HARD: tl.constexpr, DETACH: tl.constexpr, SHAPE: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    offs += (T - 1).to(tl.int64) * N  # start at the last step
    dp = tl.zeros([BLOCK], dtype=tl.float32)  # dL/dp[t], zero after the last step
    for _i in range(T):
        u = tl.load(mem_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        gs = tl.load(gs_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        g = _surrogate_grad(u - v_th, w, SHAPE)
        if HARD:
            j = tl.where(u >= v_cmp, 0.0, 1.0)  # 1 - s
            if not DETACH:
                j = j - u * g
        else:
            if DETACH:
                j = tl.full([BLOCK], 1.0, tl.float32)
            else:
                j = 1.0 - v_th * g
        du = gs * g + dp * j  # (A)
        tl.store(gx_ptr + offs, du.to(gx_ptr.dtype.element_ty), mask=mask)
        dp = tau * du
        offs -= N


def flat_layout(x: torch.Tensor) -> bool:
    """True if ``x [T, ...]`` can be processed as its flat storage: time outermost, the rest dense and
    non-overlapping in some dimension order (contiguous, channels-last, any permutation)."""
    if x.dim() < 1 or x.numel() == 0:
        return x.is_contiguous()
    n = x[0].numel()
    if x.shape[0] > 1 and x.stride(0) != n:
        return False
    inner = x[0]
    dims = sorted(range(inner.dim()), key=lambda d: (inner.stride(d), inner.shape[d]), reverse=True)
    return inner.permute(dims).is_contiguous()


def _flat(t: torch.Tensor) -> torch.Tensor:
    """The flat view ``[numel]`` of a tensor for which ``flat_layout`` holds."""
    return t.as_strided((t.numel(),), (1,))


def _neighbours(v_th: float, dtype: torch.dtype) -> tuple[float, float]:
    """The largest value of ``dtype`` below ``v_th`` (fp32) and the smallest at or above it (v_th > 0)."""
    v32 = torch.tensor(v_th, dtype=torch.float32)
    if dtype == torch.float32:
        return float(torch.nextafter(v32, torch.tensor(-math.inf))), float(v32)
    r = v32.to(dtype)  # round to nearest, then step to the correct side by one unit in the last place
    bits = r.view(torch.int16)  # positive values: integer order == float order
    above = r if r.float() >= v32 else (bits + 1).view(dtype)
    below = r if r.float() < v32 else (bits - 1).view(dtype)
    return float(below.float()), float(above.float())


def _launch_grid(n: int):
    return (max(1, triton.cdiv(n, BLOCK)),)


def lif_forward(x: torch.Tensor, tau: float, v_th: float, hard: bool, keep_mem: bool, strict: bool = False):
    """Forward kernel on ``x [T, B, ...]`` (fp32/bf16/fp16). Returns ``(spk, mem or None)`` in ``x.dtype``.
    ``strict``: fire on ``u > v_th``."""
    if x.dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise TypeError(f"the Triton LIF supports float32, bfloat16 and float16 inputs, got {x.dtype}")
    if not flat_layout(x):
        x = x.contiguous()
    T = x.shape[0]
    n = x[0].numel() if T else 0
    spk = torch.empty_like(x)
    mem = torch.empty_like(x) if keep_mem else None
    if x.numel() == 0:
        return spk, mem
    v_cmp = compare_threshold(v_th, torch.float32, strict)  # the kernel compares in fp32
    below, above = _neighbours(v_cmp, x.dtype)
    _lif_fwd_kernel[_launch_grid(n)](
        _flat(x), _flat(spk), _flat(mem) if keep_mem else _flat(spk), n, T, float(tau), float(v_th), v_cmp, below,
        above,
        HARD=bool(hard), KEEP_MEM=bool(keep_mem), CLAMP_MEM=x.dtype != torch.float32, BLOCK=BLOCK,
        num_warps=NUM_WARPS)
    return spk, mem


def lif_backward(grad_spk: torch.Tensor, mem: torch.Tensor, tau: float, v_th: float, hard: bool,
                 detach_reset: bool, surrogate, width: float, strict: bool = False) -> torch.Tensor:
    """Backward kernel: ``dL/dI [T, B, ...]`` from ``dL/ds`` and the saved membranes (recurrence (A));
    ``strict``: the spikes were ``u > v_th``."""
    sid = _shape_id(surrogate)
    if sid is None:
        raise ValueError(f"the Triton LIF implements the surrogates rectangle, triangle, sigmoid, atan, gaussian; "
                         f"got {surrogate!r}")
    if grad_spk.stride() != mem.stride() or not flat_layout(grad_spk):
        grad_spk = torch.empty_like(mem).copy_(grad_spk)  # the saved membranes' layout
    grad_x = torch.empty_like(mem)
    if mem.numel() == 0:
        return grad_x
    T = mem.shape[0]
    n = mem[0].numel()
    _lif_bwd_kernel[_launch_grid(n)](
        _flat(grad_spk), _flat(mem), _flat(grad_x), n, T, float(tau), float(v_th),
        compare_threshold(v_th, torch.float32, strict), float(width),
        HARD=bool(hard), DETACH=bool(detach_reset), SHAPE=sid, BLOCK=BLOCK, num_warps=NUM_WARPS)
    return grad_x
