"""The multi-step LIF as one autograd node: fast, and lean in what it keeps for the backward pass.

``snnlab.neurons.LIF`` written as a Python loop (the ``"reference"`` backend) records, for every time step, a
handful of autograd nodes and the tensors they need: the surrogate's input ``u[t] - v_th``, and for the hard
reset ``u[t] * (1 - s[t])`` both factors. Here the whole sequence ``[T, B, ...]`` is one
``torch.autograd.Function``: the forward runs the recurrence without a graph and keeps only the pre-reset
membranes ``u`` (one tensor ``[T, B, ...]`` in the input dtype); the backward recomputes the spikes from them
(``s = H(u - v_th)``) and runs the reverse-time (adjoint) recurrence itself.

Forward (the same equations and the same floating-point operations as ``snnlab.neurons``, so the spikes and
membranes are bitwise those of the reference backend)::

    u[0] = I[0],   u[t] = I[t] + tau * p[t-1]                     (1)  torch.add(I[t], p, alpha=tau)
    s[t] = H(u[t] - v_th)   (H(0) = 1; fire=">": H(0) = 0)        (2)
    p[t] = u[t] (1 - s[t])            reset="hard"                (3a)
    p[t] = u[t] - v_th s[t]           reset="subtract"            (3b)

``p[t]`` is the post-reset membrane. The comparison is done as ``u >= v_th``: for IEEE floats with gradual
underflow ``u - v_th`` is zero only when ``u == v_th`` and has the sign of ``u - v_th``, so the two tests agree
bit for bit (they could only differ with flush-to-zero on *and* a threshold below ~1e-30). With strict firing
(``fire=">"``, TET's official ``ZIF``) it is ``u > v_th`` and ``1 - s`` is ``u - v_th <= 0``; every
implementation (PyTorch ops, the C and Triton kernels) supports both rules, bitwise as the reference's
``surrogate(u - v_th, strict=True)`` (tests/test_fused.py, tests/test_cpu_kernel.py).

Backward (the adjoint recurrence). Let ``gs[t] = dL/ds[t]`` be the incoming gradient and ``g[t] =
surrogate.grad(u[t] - v_th, width)`` the surrogate derivative standing in for ``dH/du``, at the width that
was in force during the forward pass. Write ``du[t] = dL/du[t]`` (total derivative) and ``dp[t] = dL/dp[t]``.
``u[t]`` influences the loss through its spike and through the post-reset membrane ``p[t]``, which feeds
``u[t+1] = I[t+1] + tau p[t]`` only::

    dp[T-1] = 0                                   (the last reset is used by nothing)
    dp[t]   = tau * du[t+1]
    du[t]   = gs[t] g[t] + dp[t] J[t]             (A)
    dL/dI[t] = du[t]                              (I[t] enters u[t] with coefficient 1)

with ``J[t] = dp[t]/du[t]``, the derivative of the reset (3) seen through the spike's surrogate::

    hard,     detach_reset=False:  J = (1 - s) - u g     (product rule on u (1 - s), ds/du := g)
    hard,     detach_reset=True:   J = 1 - s
    subtract, detach_reset=False:  J = 1 - v_th g
    subtract, detach_reset=True:   J = 1

Unrolled, (A) is ``du[t] = A[t] + tau J[t] du[t+1]`` with ``A[t] = gs[t] g[t]``. The PyTorch implementation
(``_backward_torch``) runs it as one reverse pass over the ``[B, ...]`` slices, a handful of in-place element-wise
ops per step on reused scratch buffers (a slice stays in cache while it is used), with ``dp = tau du[t+1]`` folded
into the ``alpha``/``value`` arguments of the fused ops. (Computing ``A`` and ``J`` for all steps at once and
keeping only the multiply-add sequential was measured slower on CPU: more passes over memory.)
``tests/test_fused.py`` checks (A) against autograd's graph of the reference loop for every reset, detach flag
and surrogate shape, in float64.

No ``torch.compile``: the CPU path is plain eager ops, so it needs no compiler and has no warm-up; a compiled
variant was not built or measured.

``mem`` is a differentiable output too (``LIF.simulate`` returns it): a gradient ``gm[t] = dL/du[t]`` arriving
through it adds to (A), ``du[t] = gs[t] g[t] + gm[t] + dp[t] J[t]``.

Double backward (``create_graph=True``, e.g. Hessian-vector products in ``snnlab.landscape``): the usual
backward is a first-order kernel (in place, no graph). When autograd asks for a differentiable backward (grad
mode on inside the backward), (A) is evaluated instead with out-of-place autograd ops in which the saved ``u`` is
this node's own output (so it is differentiable with respect to ``I``), ``g = surrogate.grad(u - v_th)``
differentiates to ``g'`` and the spikes in ``J`` are ``surrogate(u - v_th)`` (Heaviside value, derivative ``g``):
every use of a spike value is differentiated through the surrogate, as autograd does through the reference loop,
so the second derivatives equal the reference backend's (tests/test_fused.py checks Hessian-vector products).
``snnlab.neurons.reference_backend()`` forces the reference loop where one wants it regardless.

On CUDA (when Triton imports) the same forward and backward run as two Triton kernels with the time loop inside
the kernel (``snnlab.kernels.triton_lif``); everywhere else they run as the vectorised PyTorch ops above.
"""
from __future__ import annotations

import torch

from . import surrogate as _surrogate
from .neuron_base import (RESETS, check_detach_reset, check_fire, check_reset, check_sequence, check_tau,
                          check_v_th)

__all__ = ["lif_fused", "run", "FusedLIFFunction", "supports", "IMPLS", "RESETS"]

# RESETS (re-exported) and the argument checks are snnlab.neuron_base's, shared with snnlab.neurons.LIF
IMPLS = ("auto", "torch", "triton", "c")  #: "auto": Triton on CUDA when it imports, the C kernel on the CPU when it
#: builds (snnlab.kernels.cpu_lif), else the PyTorch ops


def supports(surrogate) -> bool:
    """True if ``surrogate`` has the Heaviside forward that the fused node assumes (every member of
    ``snnlab.surrogate.FAMILY`` and any subclass of ``Surrogate`` that keeps its ``__call__``).

    ``SmoothSigmoid`` replaces the spike by a sigmoid in the forward pass: it needs the reference backend.
    """
    return isinstance(surrogate, _surrogate.Surrogate) and type(surrogate).__call__ is _surrogate.Surrogate.__call__


# ----------------------------------------------------------------------------------------------------------
# PyTorch implementation (any device, any dtype, any strides)


def _forward_torch(x: torch.Tensor, tau: float, v_th: float, hard: bool, keep_mem: bool, strict: bool = False):
    """Run (1)-(3) over ``x [T, B, ...]``; return ``(spk, mem or None)``. In-place ops on ``[B, ...]`` slices.
    ``strict``: fire on ``u > v_th`` (``fire=">"``) instead of ``u >= v_th``."""
    fire = torch.gt if strict else torch.ge
    T = x.shape[0]
    spk = torch.empty_like(x)
    mem = torch.empty_like(x) if keep_mem else None
    u_buf = None if keep_mem else torch.empty_like(x[0])
    p = torch.empty_like(x[0])  # post-reset membrane
    for t in range(T):
        u = mem[t] if keep_mem else u_buf
        if t == 0:
            u.copy_(x[0])
        else:
            torch.add(x[t], p, alpha=tau, out=u)  # I[t] + tau * p[t-1]: the reference's op
        s = spk[t]
        fire(u, v_th, out=s)  # H(u - v_th) with H(0) = 1 (strict: H(0) = 0), in the dtype of x
        if t == T - 1:
            break  # the last reset feeds nothing
        if hard:
            torch.addcmul(u, u, s, value=-1.0, out=p)  # u - u s = u (1 - s), exact for s in {0, 1}
        else:
            torch.sub(u, s, alpha=v_th, out=p)  # u - v_th s
    return spk, mem


def _backward_torch(grad_spk: torch.Tensor, mem: torch.Tensor, tau: float, v_th: float, hard: bool,
                    detach_reset: bool, surrogate: _surrogate.Surrogate, width: float,
                    grad_mem: torch.Tensor | None = None, strict: bool = False) -> torch.Tensor:
    """The adjoint recurrence (A) of the module docstring; returns ``dL/dI`` ``[T, B, ...]``. No graph.
    ``strict``: the spikes were ``u > v_th`` (``fire=">"``), so ``1 - s`` is ``u - v_th <= 0``.

    One reverse pass over time on ``[B, ...]`` slices (they stay in cache; scratch buffers are reused), with
    (A) regrouped to save passes over memory (same value, other rounding):

        hard:      du[t] = g (gs - u dp) + (1 - s) dp      (detached: gs g + (1 - s) dp)
        subtract:  du[t] = g (gs - v_th dp) + dp           (detached: gs g + dp)

    where ``dp = tau du[t+1]`` is folded into the ``alpha``/``value`` of the fused ops.
    """
    T = mem.shape[0]
    not_fired = torch.le if strict else torch.lt  # 1 - s from xs = u - v_th
    grad_x = torch.empty_like(mem)
    xs = torch.empty_like(mem[0])  # u - v_th, then 1 - s
    tmp = torch.empty_like(mem[0]) if not detach_reset else None
    for t in range(T - 1, -1, -1):
        u, gs, out = mem[t], grad_spk[t], grad_x[t]
        torch.sub(u, v_th, out=xs)
        g = surrogate.grad(xs, width)
        if g.dtype != out.dtype:
            g = g.to(out.dtype)
        nxt = grad_x[t + 1] if t < T - 1 else None  # du[t+1], dp[t] = tau du[t+1]; dp[T-1] = 0
        if nxt is None or detach_reset:
            torch.mul(gs, g, out=out)  # gs g
        if nxt is not None and hard:
            not_fired(xs, 0, out=xs)  # 1 - s  (s = H(u - v_th), H(0) = 1; strict: H(0) = 0)
            if not detach_reset:
                torch.addcmul(gs, nxt, u, value=-tau, out=tmp)  # gs - u dp
                torch.mul(tmp, g, out=out)
            out.addcmul_(xs, nxt, value=tau)  # + (1 - s) dp
        elif nxt is not None:
            if not detach_reset:
                torch.add(gs, nxt, alpha=-v_th * tau, out=tmp)  # gs - v_th dp
                torch.mul(tmp, g, out=out)
            out.add_(nxt, alpha=tau)  # + dp
        if grad_mem is not None:
            out.add_(grad_mem[t])  # + gm[t]
    return grad_x


def _backward_differentiable(grad_spk, grad_mem, mem, tau, v_th, hard, detach_reset, surrogate, width, strict=False):
    """(A) with out-of-place autograd ops, for ``create_graph=True``: ``mem`` is the node's saved output, so the
    result is differentiable with respect to the input through it (see the module docstring)."""
    xs = mem - v_th
    g = surrogate.grad(xs, width)
    if hard:
        s = _surrogate._SpikeFunction.apply(xs, surrogate, width, strict)  # H forward, g backward
        r = s.detach() if detach_reset else s
        J = 1.0 - r
        if not detach_reset:
            J = J - mem * g
    else:
        J = None if detach_reset else 1.0 - v_th * g
    A = grad_spk * g if grad_spk is not None else None
    if grad_mem is not None:
        A = grad_mem if A is None else A + grad_mem
    du = [A[-1]]
    for t in range(mem.shape[0] - 2, -1, -1):
        dp = tau * du[-1]
        du.append(A[t] + (dp if J is None else dp * J[t]))
    return torch.stack(du[::-1])


# ----------------------------------------------------------------------------------------------------------
# Dispatch


def _kernel(x: torch.Tensor, surrogate, impl: str) -> str:
    """Which implementation runs: ``"triton"``, ``"c"`` (the CPU kernel) or ``"torch"``."""
    if impl == "torch":
        return "torch"
    from . import kernels

    if impl == "triton":
        if not kernels.triton_available():
            raise RuntimeError(f"impl='triton' needs Triton, which does not import here: {kernels.triton_error()}")
        if kernels.shape_id(surrogate) is None:
            raise ValueError(f"impl='triton' supports the surrogates {', '.join(map(repr, _surrogate.FAMILY))}; "
                             f"got {surrogate!r} (use impl='torch' for other Surrogate subclasses)")
        return "triton"
    if x.is_cuda:
        ok = (x.dtype in (torch.float32, torch.float16, torch.bfloat16) and kernels.shape_id(surrogate) is not None
              and kernels.triton_available())
        return "triton" if ok else "torch"
    from .kernels import cpu_lif

    ok = x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and kernels.shape_id(surrogate) is not None
    if impl == "auto":  # where it measurably wins (benchmarks/bench_neuron.py --family)
        return "c" if ok and type(surrogate) in cpu_lif.AUTO_SHAPES[x.dtype] and cpu_lif.available() else "torch"
    if impl == "c":
        if not ok:
            raise ValueError(f"impl='c' runs float32/float64 CPU tensors with the surrogates "
                             f"{', '.join(map(repr, _surrogate.FAMILY))}; got {x.dtype} on {x.device}, {surrogate!r}")
        if not cpu_lif.available():
            raise RuntimeError(f"impl='c' needs the CPU kernel, which did not build: {cpu_lif.error()}")
        return "c"
    return "torch"


def _forward(x, tau, v_th, hard, keep_mem, kernel, strict=False):
    if kernel == "triton":
        from .kernels import triton_lif

        return triton_lif.lif_forward(x, tau, v_th, hard, keep_mem, strict)
    if kernel == "c":
        from .kernels import cpu_lif

        return cpu_lif.forward(x.contiguous(), tau, v_th, hard, keep_mem, strict)
    return _forward_torch(x, tau, v_th, hard, keep_mem, strict)


class FusedLIFFunction(torch.autograd.Function):
    """``(I, tau, v_th, hard, detach_reset, surrogate, width, kernel, strict) -> (spk, mem)``, both ``[T, B, ...]``
    (``strict``: fire on ``u > v_th``).

    Saves ``mem`` (the pre-reset membranes) only; see the module docstring for the backward pass.
    """

    @staticmethod
    def forward(ctx, x, tau, v_th, hard, detach_reset, surrogate, width, kernel, strict=False):
        spk, mem = _forward(x, tau, v_th, hard, True, kernel, strict)
        ctx.save_for_backward(mem)
        ctx.set_materialize_grads(False)  # no zero [T, ...] gradient for an output the loss does not use
        ctx.args = (tau, v_th, hard, detach_reset, surrogate, width, kernel, strict)
        return spk, mem

    @staticmethod
    def backward(ctx, grad_spk, grad_mem):
        nones = (None,) * 8
        if grad_spk is None and grad_mem is None:
            return (None, *nones)
        (mem,) = ctx.saved_tensors
        tau, v_th, hard, detach_reset, surrogate, width, kernel, strict = ctx.args
        if torch.is_grad_enabled():  # create_graph=True: a backward that is itself differentiable
            grad_x = _backward_differentiable(grad_spk, grad_mem, mem, tau, v_th, hard, detach_reset, surrogate,
                                              width, strict)
        elif kernel == "triton" and grad_mem is None:
            from .kernels import triton_lif

            grad_x = triton_lif.lif_backward(grad_spk, mem, tau, v_th, hard, detach_reset, surrogate, width, strict)
        elif kernel == "c":
            from . import kernels
            from .kernels import cpu_lif

            gs = torch.zeros_like(mem) if grad_spk is None else grad_spk.contiguous()
            grad_x = cpu_lif.backward(gs, mem, tau, v_th, hard, detach_reset, kernels.shape_id(surrogate),
                                      surrogate, width, None if grad_mem is None else grad_mem.contiguous(), strict)
        else:
            if grad_spk is None:
                grad_spk = torch.zeros_like(mem)
            grad_x = _backward_torch(grad_spk, mem, tau, v_th, hard, detach_reset, surrogate, width, grad_mem,
                                     strict)
        return (grad_x, *nones)


def run(x: torch.Tensor, tau: float, v_th: float, hard: bool, detach_reset: bool, surrogate, return_mem: bool,
        impl: str = "auto", strict: bool = False):
    """``lif_fused`` without argument checks (``snnlab.neurons.LIF`` validates once, at construction).
    Returns ``(spk, mem)``; ``mem`` is None when ``return_mem`` is False and no graph is recorded.
    ``strict``: fire on ``u > v_th`` (``fire=">"``)."""
    kernel = _kernel(x, surrogate, impl)
    if torch.is_grad_enabled() and x.requires_grad:
        return FusedLIFFunction.apply(x, tau, v_th, hard, detach_reset, surrogate, surrogate.width, kernel,
                                      bool(strict))
    # no graph: nothing to save, and no [T, ...] membrane buffer unless asked for
    return _forward(x, tau, v_th, hard, return_mem, kernel, bool(strict))


def lif_fused(x: torch.Tensor, tau: float = 0.5, v_th: float = 1.0, reset: str = "hard", detach_reset: bool = False,
              surrogate: str | _surrogate.Surrogate = "triangle", width: float | None = None,
              return_mem: bool = False, impl: str = "auto", fire: str = ">="):
    """The multi-step LIF (IF for ``tau = 1``) on ``x [T, B, ...]`` as one autograd node.

    Same arguments and meaning as ``snnlab.neurons.LIF`` (which calls this for ``backend="fused"``). The
    surrogate's width is read now and used by the matching backward pass, even if it is changed in between.

    Args:
        return_mem: also return the pre-reset membranes ``u`` ``[T, B, ...]`` (differentiable, as ``simulate``'s).

        impl: ``"auto"`` (Triton kernels for CUDA tensors when Triton imports, the C kernel for float32/float64
            CPU tensors when it builds, else PyTorch ops), ``"torch"``, ``"c"`` (forced), or ``"triton"`` (forced;
            on CPU only under ``TRITON_INTERPRET=1``, for tests).

        fire: ``">="`` (default, ``H(0) = 1``) or ``">"`` (strict, TET's official ``ZIF``), as ``LIF``'s.

    Returns:
        ``spk`` ``[T, B, ...]`` in the dtype of ``x``, or ``(spk, mem)`` with ``return_mem=True``.

    Raises:
        ValueError for a bad argument (the checks of ``snnlab.neuron_base``, as ``LIF``'s); TypeError if ``x`` is
        not a tensor.
    """
    check_sequence(x)
    reset = check_reset(reset)
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    tau, v_th, detach_reset = check_tau(tau), check_v_th(v_th), check_detach_reset(detach_reset)
    fire = check_fire(fire)
    sg = _surrogate.get(surrogate, width) if isinstance(surrogate, str) else surrogate
    if not supports(sg):
        raise ValueError(f"the fused LIF needs a surrogate with a Heaviside forward ({', '.join(_surrogate.FAMILY)}); "
                         f"got {sg!r}: use the reference backend")
    if width is not None and not isinstance(surrogate, str):
        sg.width = width
    spk, mem = run(x, tau, v_th, reset == "hard", detach_reset, sg, return_mem, impl, strict=fire == ">")
    return (spk, mem) if return_mem else spk
