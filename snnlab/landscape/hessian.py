"""Sharpness: Hessian-vector products by double backward and the top Hessian eigenvalue by power iteration."""
from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from .batches import Batches, LossFn, _on_model_device
from .directions import _generator, landscape_parameters
from .restore import _Restore

__all__ = ["hessian_vector_product", "top_hessian_eigenvalue"]


def _resolve_params(model: nn.Module, params, ignore=("bn", "bias")) -> list[torch.Tensor]:
    if params is None:
        chosen = [p for _, p in landscape_parameters(model, ignore)]
    else:
        named = dict(model.named_parameters())
        chosen = []
        for p in params:
            if isinstance(p, str):
                if p not in named:
                    raise ValueError(f"{p!r} is not a parameter of the model; available: {sorted(named)}")
                p = named[p]
            elif not torch.is_tensor(p):
                raise TypeError(f"params must be parameter names or tensors, got {type(p).__name__}")
            chosen.append(p)
    if not chosen:
        raise ValueError("no parameters to take the Hessian over (all excluded by `ignore`?); pass params=")
    return chosen


def _hvp(model, batches, loss_fn, params, vec) -> list[torch.Tensor]:
    """``H v`` of the batch-size-weighted mean loss, accumulated batch by batch (memory of one batch)."""
    total = [torch.zeros_like(p) for p in params]
    n = 0
    for x, y in batches:
        b = int(y.shape[0])
        loss = loss_fn(model(x), y)
        grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
        gv = sum((g * v).sum() for g, v in zip(grads, vec) if g is not None)
        if torch.is_tensor(gv) and gv.requires_grad:
            hv = torch.autograd.grad(gv, params, allow_unused=True)
            for t, h in zip(total, hv):
                if h is not None:
                    t.add_(h.detach(), alpha=b)
        n += b
    if n == 0:
        raise ValueError("batches is empty: give at least one (x, y) batch")
    return [t / n for t in total]


class _GradMode:
    """Eval mode with gradients on, selected params requiring grad; restores flags and weights on exit."""

    def __init__(self, model, params):
        self.model, self.params = model, params

    def __enter__(self):
        self.restore = _Restore(self.model).__enter__()
        self.req = [p.requires_grad for p in self.params]
        for p in self.params:
            p.requires_grad_(True)
        self.model.eval()
        self.grad = torch.enable_grad()
        self.grad.__enter__()
        return self

    def __exit__(self, *exc):
        self.grad.__exit__(*exc)
        for p, r in zip(self.params, self.req):
            p.requires_grad_(r)
        self.restore.__exit__(*exc)
        return False


def hessian_vector_product(model: nn.Module, batches: Batches, loss_fn: LossFn, vector, params=None
                           ) -> list[torch.Tensor]:
    """``H v``, the Hessian of the loss w.r.t. ``params`` applied to ``vector`` (Pearlmutter 1994), by double
    backward: ``g = grad(L, params, create_graph=True)``, then ``H v = grad(g . v, params)``.

    ``L`` is the batch-size-weighted mean of ``loss_fn(model(x), y)`` over ``batches`` in eval mode (see
    ``top_hessian_eigenvalue``). ``vector`` is a list of tensors shaped like ``params`` (default params: as
    ``landscape_parameters``). For an SNN this is the *surrogate Hessian* (see ``top_hessian_eigenvalue``).
    """
    params = _resolve_params(model, params)
    vec = [torch.as_tensor(v).to(p) for v, p in zip(vector, params)]
    if len(vec) != len(params) or any(v.shape != p.shape for v, p in zip(vec, params)):
        raise ValueError("vector must be a list of tensors with the shapes of params")
    with _GradMode(model, params):
        return _hvp(model, _on_model_device(model, batches), loss_fn, params, vec)


def _unit_start_vector(params: list[torch.Tensor], seed) -> list[torch.Tensor]:
    """``v_0 ~ N(0, I)`` shaped like ``params`` (drawn on the CPU from ``seed``), scaled to norm 1."""
    g = _generator(seed)
    v = [torch.randn(p.shape, generator=g, dtype=p.dtype if p.is_floating_point() else None).to(p.device)
         for p in params]
    norm = torch.sqrt(sum((t * t).sum() for t in v))
    return [t / norm for t in v]


def _power_iteration(model, batches, loss_fn, params, v, iters: int, tol: float) -> list[float]:
    """Rayleigh quotients ``lambda_k = v_k . H v_k`` of power iteration from ``v`` (gradients must be on)."""
    history: list[float] = []
    for _ in range(int(iters)):
        hv = _hvp(model, batches, loss_fn, params, v)
        lam = float(sum((h * t).sum() for h, t in zip(hv, v)))
        history.append(lam)
        norm = float(torch.sqrt(sum((h * h).sum() for h in hv)))
        if norm == 0.0 or not math.isfinite(norm):
            break
        v = [h / norm for h in hv]
        if len(history) > 1 and abs(lam - history[-2]) <= tol * max(abs(history[-2]), 1e-12):
            break
    return history


def top_hessian_eigenvalue(model: nn.Module, batches: Batches, loss_fn: LossFn, iters: int = 20,
                           tol: float = 1e-3, seed: int = 0, params=None, ignore=("bn", "bias")
                           ) -> tuple[float, list[float]]:
    """Sharpness: the dominant eigenvalue of the Hessian ``H = nabla^2_theta L`` by power iteration.

    Power iteration with Hessian-vector products (Pearlmutter 1994; as PyHessian, Yao et al. 2020)::

        v_0 ~ N(0, I),  v_0 <- v_0 / ||v_0||
        repeat:  w = H v_k  (double backward),   lambda_k = v_k . w  (Rayleigh quotient),   v_{k+1} = w / ||w||

    stopping after ``iters`` products or when ``|lambda_k - lambda_{k-1}| / |lambda_{k-1}| < tol``.
    ``H v`` is computed by double backward: ``g = grad(L, params, create_graph=True)``, ``H v = grad(g . v)``.

    * Power iteration converges to the eigenvalue of largest *magnitude*, with its sign: at a minimum that is
      the top (positive) curvature; at a saddle whose most negative curvature dominates, the value is
      negative. Convergence is geometric with ratio ``|lambda_2 / lambda_1|``.
    * The model is in ``eval()`` mode: BatchNorm uses its running statistics, so the loss is a fixed function
      of the weights (in train mode the batch statistics would make it depend on the batch composition).
    * ``L`` is the batch-size-weighted mean over ``batches`` (the Hessian of the union's mean loss); products
      are accumulated batch by batch, so memory is that of one batch's double backward.
    * SNNs: the spike ``s = H(u - v_th)`` is piecewise constant, so the loss has no useful true Hessian in
      the hidden weights. Double backward through snnlab's neurons (either backend: the reference loop by plain
      autograd, the fused node by its differentiable backward, ``snnlab.fused``) computes the *surrogate Hessian*: the chain rule applied twice with the
      spike's first and second derivatives replaced by the surrogate ``g(x)`` and its slope ``g'(x)``
      (triangle: ``-sign(x) / gamma^2`` inside the support). Every use of a spike value is differentiated
      that way, including the resets and the later membranes that depend on earlier spikes, so it is
      symmetric (real eigenvalues; power iteration is well posed) -- but it is *not* the finite-difference
      Jacobian of the surrogate gradient, which treats the forward spike values as constants (the two agree
      for T = 1 and for smooth forwards such as ``SmoothSigmoid``; tests/test_landscape.py checks both
      facts). This is what PyHessian-style sharpness measurements of SNNs report.

    Args:
        params: parameters to take the Hessian over: None (default) for ``landscape_parameters(model,
            ignore)`` (weights with ``dim >= 2``; no BN, no biases: the space the landscapes move in), or a
            list of parameter names / tensors.
        iters: maximum number of Hessian-vector products.
        tol: relative-change stopping tolerance.
        seed: seed of the starting vector.

    Returns:
        ``(eigenvalue, history)`` with ``history[k] = lambda_k`` (one Rayleigh quotient per iteration), to
        plot with ``plot_hessian_convergence``. The weights and modes are restored afterwards.
    """
    if isinstance(iters, bool) or not isinstance(iters, numbers.Integral) or iters < 1:
        raise ValueError(f"iters must be a positive integer, got {iters!r}")
    params = _resolve_params(model, params, ignore)
    v = _unit_start_vector(params, seed)
    batches = _on_model_device(model, batches)
    with _GradMode(model, params):
        history = _power_iteration(model, batches, loss_fn, params, v, iters, tol)
    return history[-1], history
