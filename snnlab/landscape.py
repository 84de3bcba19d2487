"""Loss landscapes and sharpness of a trained SNN: TET's flat-minima figure (Deng et al., ICLR 2022, Fig. 2).

TET argues that its per-step loss finds *flatter* minima than standard direct training (SDT). Two ways to
look at flatness are implemented here.

**Loss surfaces along filter-normalised random directions** (Li, Xu, Taylor, Studer & Goldstein,
"Visualizing the Loss Landscape of Neural Nets", NeurIPS 2018). Around trained weights ``theta`` draw two
Gaussian directions ``d1, d2`` and evaluate::

    f(a)    = L(theta + a * d1)                       (1-D surface, ``loss_surface_1d``)
    f(a, b) = L(theta + a * d1 + b * d2)              (2-D surface, ``loss_surface_2d``)

A raw Gaussian direction is meaningless for networks whose layers are scale-invariant (BatchNorm follows
the convolutions, so ``W`` and ``10 W`` compute the same function). Li et al. therefore rescale the
direction *filter by filter* (``random_direction``)::

    d_{l,i}  <-  d_{l,i} / ||d_{l,i}||  *  ||theta_{l,i}||

where ``d_{l,i}`` is the i-th filter of layer l (a slice along dim 0 of a weight with ``dim >= 2``: an
output channel of a convolution, an output row of a linear layer) and ``||.||`` the Frobenius norm. BatchNorm
parameters and biases get a zero direction (Li et al.'s ``ignore='biasbn'``): the landscape moves only the
weights. Then a step ``a = 1`` changes every filter by as much as its own size, and landscapes of different
networks (or of SDT- and TET-trained minima) are comparable.

**Sharpness as the top Hessian eigenvalue** ``lambda_max(nabla^2 L(theta))`` (Keskar et al. 2017; Yao et
al., PyHessian 2020), found by power iteration with Hessian-vector products (``top_hessian_eigenvalue``).
A flat minimum has a small ``lambda_max``.

Conventions:

* ``batches`` is a fixed list of ``(x, y)`` with ``x`` time-first ``[T, B, ...]`` and ``y`` ``[B]``
  (``fixed_batches`` builds it from a ``DataBundle``), so every point of a landscape sees the same data.
  The loss at a point is the mean over the batches weighted by batch size (the loss of the union when
  ``loss_fn`` is a per-sample mean, as ``sdt_loss`` and ``tet_loss`` are).
* ``loss_fn(outputs, y)`` takes the model's ``outputs [T, B, C]`` and returns a scalar, e.g.
  ``snnlab.losses.sdt_loss`` or ``functools.partial(snnlab.losses.tet_loss, lamb=0)``.
* Surfaces are evaluated in ``model.eval()`` mode (BatchNorm uses its running statistics) under
  ``torch.no_grad()``. The weights are restored bit for bit afterwards and every module's train/eval flag is
  put back, also when an exception interrupts the grid.
* 2-D arrays are indexed ``Z[j, i] = f(alphas[i], betas[j])``: rows follow ``betas`` (y axis), columns
  ``alphas`` (x axis), which is what ``matplotlib``'s ``contour(alphas, betas, Z)`` expects.

Example (TET's Fig. 2 in a few lines)::

    from functools import partial
    from snnlab import landscape, losses
    batches = landscape.fixed_batches(bundle, T=4, n_batches=2, batch_size=128)
    res = landscape.compare_landscapes({"SDT": sdt_model, "TET": tet_model}, batches,
                                       {"L_SDT": losses.sdt_loss, "L_TET": partial(losses.tet_loss, lamb=0)})
    fig, axes = landscape.plot_landscape_grid(res, kind="3d")
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

__all__ = [
    "fixed_batches",
    "landscape_parameters",
    "random_direction",
    "loss_at",
    "loss_surface_1d",
    "loss_surface_2d",
    "hessian_vector_product",
    "top_hessian_eigenvalue",
    "sharpness_table",
    "grid_summary",
    "plot_surface_1d",
    "plot_contour",
    "plot_surface_3d",
    "plot_hessian_convergence",
    "compare_landscapes",
    "plot_landscape_grid",
    "landscape_figure",
    "landscape_explorer",
    "VIEWS",
    "limit_threads",
]

#: Views understood by ``landscape_figure`` / ``landscape_explorer``.
VIEWS = ("1d", "contour", "3d")

_NORM_LAYERS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)

Batches = Sequence[tuple[torch.Tensor, torch.Tensor]]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ----------------------------------------------------------------------------------------------------------
# speed


class limit_threads:
    """Context manager: run torch with ``n`` intra-op threads inside the block, restore the count after.

    A landscape is hundreds of small forward passes. On a small CPU shared with other processes, torch's
    OpenMP threads spin-wait for each other at every operation, and one descheduled thread stalls all the
    others: measured on a busy 2-core machine, ``TutorialSNN`` forwards took 0.5 s with 2 threads and 7 ms
    with 1 (environment variable ``OMP_WAIT_POLICY=PASSIVE`` also avoids most of it). Use
    ``with landscape.limit_threads(1): ...`` there; on a dedicated machine torch's default is right.
    """

    def __init__(self, n: int | None = 1):
        self.n = n

    def __enter__(self):
        self.old = torch.get_num_threads()
        if self.n is not None:
            torch.set_num_threads(int(self.n))
        return self

    def __exit__(self, *exc):
        torch.set_num_threads(self.old)
        return False


# ----------------------------------------------------------------------------------------------------------
# data


def fixed_batches(bundle, T: int | None, n_batches: int = 2, batch_size: int = 128, split: str = "train",
                  seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A fixed, deterministic set of encoded batches on which every landscape point is evaluated.

    The samples are the first ``n_batches * batch_size`` of a permutation of ``split`` drawn with a
    ``torch.Generator`` seeded with ``seed`` (the same seed always gives the same samples, independent of the
    global random state). Each batch is encoded with ``snnlab.train.encode`` and made contiguous once, so
    the grid never re-encodes: static images ``[B, C, H, W]`` are repeated T times (direct encoding), event
    data ``[B, T, C, H, W]`` is transposed to time-first.

    Args:
        bundle: a ``snnlab.data.DataBundle`` (e.g. ``snnlab.data.load("digits")``).
        T: time steps for static data. For event data the frames are already there: ``T`` must be None or
            equal ``bundle.T``.
        n_batches, batch_size: how many batches of how many samples (the last batch is smaller if the split
            has fewer than ``n_batches * batch_size`` samples).
        split: ``"train"`` or ``"test"``.
        seed: which samples.

    Returns:
        list of ``(x, y)`` with ``x`` ``[T, B, ...]`` float and ``y`` ``[B]`` int64, on the CPU (the landscape
        functions move them once to the model's device).
    """
    from .train import encode

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    for name, v in (("n_batches", n_batches), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if bundle.temporal:
        if T is not None and T != bundle.T:
            raise ValueError(
                f"event data {bundle.name!r} was made with T={bundle.T} frames; got T={T!r}. "
                f"Pass T=None (or T={bundle.T}), or load the data with T={T!r}."
            )
        T = bundle.T
    elif isinstance(T, bool) or not isinstance(T, numbers.Integral) or T < 1:
        raise ValueError(f"T (number of time steps) must be a positive integer for static data, got {T!r}")
    dataset = bundle.train if split == "train" else bundle.test
    g = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(len(dataset), generator=g)[: n_batches * batch_size]
    batches = []
    for chunk in order.split(int(batch_size)):
        xs, ys = zip(*(dataset[int(i)] for i in chunk))
        x = torch.stack([torch.as_tensor(v) for v in xs])
        y = torch.as_tensor(np.asarray([int(v) for v in ys]), dtype=torch.long)
        batches.append((encode(x, int(T), bundle.temporal).contiguous(), y))
    return batches


# ----------------------------------------------------------------------------------------------------------
# directions


def _norm_param_ids(model: nn.Module) -> set[int]:
    ids = set()
    for m in model.modules():
        if isinstance(m, _NORM_LAYERS):
            ids.update(id(p) for p in m.parameters(recurse=False))
    return ids


def landscape_parameters(model: nn.Module, ignore: Iterable[str] = ("bn", "bias")) -> list[tuple[str, nn.Parameter]]:
    """The parameters a landscape moves (and the Hessian is taken over): ``[(name, param), ...]``.

    A parameter is included when it has ``dim >= 2`` (it has filters to normalise: conv kernels, linear
    weights) and is not matched by ``ignore``:

    * ``"bn"``: parameters of normalisation layers (BatchNorm, GroupNorm, LayerNorm), found by module type
      (snnlab's BatchNorms sit inside ``TimeMerged`` containers, so their names do not contain "bn");
    * any other string: a substring of the parameter name (``"bias"`` drops every bias, ``"readout"`` would
      freeze the readout).

    Parameters with ``dim < 2`` (biases, BN affine parameters, scalar thresholds) are never included:
    Li et al. (2018) exclude them, as their ``ignore='biasbn'`` option does.
    """
    ignore = tuple(ignore)
    norm_ids = _norm_param_ids(model) if "bn" in ignore else set()
    subs = [s for s in ignore if s != "bn"]
    out = []
    for name, p in model.named_parameters():
        if p.dim() < 2 or id(p) in norm_ids or any(s in name for s in subs):
            continue
        out.append((name, p))
    return out


def _generator(seed) -> torch.Generator | None:
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed must be an int, a torch.Generator or None, got {seed!r}")
    return torch.Generator().manual_seed(int(seed))


def random_direction(model: nn.Module, seed: int | torch.Generator | None = None,
                     ignore: Iterable[str] = ("bn", "bias")) -> dict[str, torch.Tensor]:
    """A filter-normalised Gaussian direction in weight space (Li et al., NeurIPS 2018, Sec. 4).

    For every parameter ``W`` returned by ``landscape_parameters(model, ignore)`` (``dim >= 2``, not BN, not
    a bias) draw ``D ~ N(0, I)`` of the same shape and rescale each filter ``i`` (slice ``[i]`` along dim 0)::

        D[i]  <-  D[i] * ||W[i]|| / (||D[i]|| + 1e-10)          (Frobenius norms)

    so every filter of the direction has the norm of the corresponding filter of the weights. Every other
    parameter (BatchNorm, biases, any 1-D parameter) gets a zero direction.

    Args:
        model: the network at the point of interest (its current weights set the filter norms).
        seed: an int (deterministic: the same seed gives the same direction on any device), a
            ``torch.Generator`` (draws continue from its state: two calls give two independent directions),
            or None (the global torch RNG, reproducible after ``snnlab.seed_everything``).
        ignore: see ``landscape_parameters``.

    Returns:
        ``{name: tensor}`` for every ``model.named_parameters()`` entry, same shape, dtype and device as the
        parameter (detached).
    """
    g = _generator(seed)
    moved = {name for name, _ in landscape_parameters(model, ignore)}
    direction = {}
    for name, p in model.named_parameters():
        w = p.detach()
        if name not in moved:
            direction[name] = torch.zeros_like(w)
            continue
        dtype = w.dtype if w.is_floating_point() else torch.get_default_dtype()
        # drawn on the CPU so a seed gives the same direction on every device
        d = torch.randn(w.shape, generator=g, dtype=dtype).to(w.device)
        d_norm = d.flatten(1).norm(dim=1)
        w_norm = w.to(dtype).flatten(1).norm(dim=1)
        scale = (w_norm / (d_norm + 1e-10)).view(-1, *([1] * (d.dim() - 1)))
        direction[name] = (d * scale).to(w.dtype)
    return direction


def _two_directions(model: nn.Module, seed, ignore=("bn", "bias")):
    """``d1, d2`` drawn one after the other from one generator seeded with ``seed``."""
    g = _generator(seed)
    return random_direction(model, g, ignore), random_direction(model, g, ignore)


# ----------------------------------------------------------------------------------------------------------
# evaluation


class _Restore:
    """Context manager: snapshot parameters, buffers and every module's training flag; restore them on exit
    (normal or exceptional), bit for bit, in place (so references to the parameters stay valid)."""

    def __init__(self, model: nn.Module):
        self.model = model

    def __enter__(self):
        m = self.model
        self.params = {n: p.detach().clone() for n, p in m.named_parameters()}
        self.buffers = {n: b.detach().clone() for n, b in m.named_buffers()}
        self.modes = [(mod, mod.training) for mod in m.modules()]
        return self

    def __exit__(self, *exc):
        with torch.no_grad():
            for n, p in self.model.named_parameters():
                p.copy_(self.params[n])
            for n, b in self.model.named_buffers():
                if n in self.buffers:
                    b.copy_(self.buffers[n])
        for mod, mode in self.modes:
            mod.training = mode
        return False


def _on_model_device(model: nn.Module, batches: Batches) -> list:
    """The batches moved (once) to the device of the model's parameters (a no-op when already there)."""
    p = next(model.parameters(), None)
    if p is None:
        return list(batches)
    return [(x.to(p.device), y.to(p.device)) for x, y in batches]


def _evaluate(model: nn.Module, batches: Batches, loss_fns: Sequence[LossFn]) -> np.ndarray:
    """Batch-size-weighted mean of every loss over the batches, one forward per batch: ``[len(loss_fns)]``."""
    totals = np.zeros(len(loss_fns))
    n = 0
    for x, y in batches:
        out = model(x)
        b = int(y.shape[0])
        for k, fn in enumerate(loss_fns):
            totals[k] += float(fn(out, y)) * b
        n += b
    if n == 0:
        raise ValueError("batches is empty: give at least one (x, y) batch")
    return totals / n


def _check_direction(model: nn.Module, direction: Mapping[str, torch.Tensor], what: str) -> None:
    names = dict(model.named_parameters())
    unknown = set(direction) - set(names)
    if unknown:
        raise ValueError(f"{what} has entries that are not parameters of the model: {sorted(unknown)}")
    for n, d in direction.items():
        if tuple(d.shape) != tuple(names[n].shape):
            raise ValueError(f"{what}[{n!r}] has shape {tuple(d.shape)}, the parameter has {tuple(names[n].shape)}")


def _grid(model: nn.Module, batches: Batches, loss_fns: Sequence[LossFn], d1, d2, alphas, betas,
          progress=False, desc="loss surface") -> np.ndarray:
    """``Z[k, j, i] = loss_fns[k](theta + alphas[i] d1 + betas[j] d2)``; ``d2`` may be None (then betas=[0])."""
    from tqdm.auto import tqdm

    alphas = np.asarray(alphas, dtype=float).reshape(-1)
    betas = np.asarray(betas, dtype=float).reshape(-1)
    _check_direction(model, d1, "d1")
    if d2 is not None:
        _check_direction(model, d2, "d2")
    params = dict(model.named_parameters())
    # only parameters with a non-zero direction move; the rest keep their values untouched
    moving = []
    for n, p in params.items():
        a_dir = d1.get(n)
        b_dir = d2.get(n) if d2 is not None else None
        a_dir = a_dir if a_dir is not None and bool(a_dir.any()) else None
        b_dir = b_dir if b_dir is not None and bool(b_dir.any()) else None
        if a_dir is None and b_dir is None:
            continue
        moving.append((p, a_dir.to(p) if a_dir is not None else None, b_dir.to(p) if b_dir is not None else None))
    batches = _on_model_device(model, batches)
    Z = np.empty((len(loss_fns), len(betas), len(alphas)))
    with _Restore(model) as saved, torch.no_grad():
        model.eval()
        theta = {id(p): saved.params[n] for n, p in params.items()}
        rows = tqdm(range(len(betas)), desc=desc, disable=not progress, leave=False)
        for j in rows:
            b = float(betas[j])
            for i, a in enumerate(alphas):
                a = float(a)
                for p, da, db in moving:
                    p.copy_(theta[id(p)])
                    if da is not None and a != 0.0:
                        p.add_(da, alpha=a)
                    if db is not None and b != 0.0:
                        p.add_(db, alpha=b)
                Z[:, j, i] = _evaluate(model, batches, loss_fns)
    return Z


def loss_at(model: nn.Module, batches: Batches, loss_fn: LossFn) -> float:
    """The loss at the model's current weights, in eval mode, without gradients: the batch-size-weighted
    mean of ``loss_fn(model(x), y)`` over ``batches`` (the value a surface has at ``(0, 0)``)."""
    with _Restore(model), torch.no_grad():
        model.eval()
        return float(_evaluate(model, _on_model_device(model, batches), [loss_fn])[0])


def loss_surface_1d(model: nn.Module, batches: Batches, loss_fn: LossFn, direction: Mapping[str, torch.Tensor],
                    alphas, progress: bool = False) -> np.ndarray:
    """The 1-D loss curve ``f(a) = L(theta + a * d)`` for ``a`` in ``alphas`` (Li et al. 2018, Sec. 3).

    ``L`` is the batch-size-weighted mean of ``loss_fn(model(x), y)`` over ``batches``, with the model in
    ``eval()`` mode under ``torch.no_grad()``. The weights and the train/eval flags are restored exactly
    afterwards (also on error).

    Args:
        direction: ``{param name: tensor}`` (e.g. from ``random_direction``); missing names do not move.
        alphas: 1-D array of step sizes (include 0 to see the minimum itself).

    Returns:
        ``np.ndarray`` of shape ``[len(alphas)]``.
    """
    return _grid(model, batches, [loss_fn], direction, None, alphas, [0.0], progress)[0, 0]


def loss_surface_2d(model: nn.Module, batches: Batches, loss_fn: LossFn, d1: Mapping[str, torch.Tensor],
                    d2: Mapping[str, torch.Tensor], alphas, betas, progress: bool = True) -> np.ndarray:
    """The 2-D loss surface ``f(a, b) = L(theta + a * d1 + b * d2)`` (Li et al. 2018, Sec. 3; TET Fig. 2).

    Evaluated like ``loss_surface_1d`` (eval mode, no_grad, fixed batches, weights restored exactly). Each
    grid point costs one forward pass per batch; the parameters are updated in place
    (``p.copy_(theta); p.add_(d1, alpha=a); p.add_(d2, alpha=b)``) and only those with a non-zero direction.

    Returns:
        ``Z`` of shape ``[len(betas), len(alphas)]`` with ``Z[j, i] = f(alphas[i], betas[j])``: draw it with
        ``plot_contour(alphas, betas, Z)`` (or ``plt.contour(alphas, betas, Z)``).
    """
    return _grid(model, batches, [loss_fn], d1, d2, alphas, betas, progress)[0]


# ----------------------------------------------------------------------------------------------------------
# Hessian


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
    g = _generator(seed)
    v = [torch.randn(p.shape, generator=g, dtype=p.dtype if p.is_floating_point() else None).to(p.device)
         for p in params]
    norm = torch.sqrt(sum((t * t).sum() for t in v))
    v = [t / norm for t in v]
    history: list[float] = []
    batches = _on_model_device(model, batches)
    with _GradMode(model, params):
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
    return history[-1], history


# ----------------------------------------------------------------------------------------------------------
# plots


def sharpness_table(models: Mapping[str, nn.Module], batches: Batches, losses: Mapping[str, LossFn],
                    iters: int = 20, tol: float = 1e-3, seed: int = 0):
    """``top_hessian_eigenvalue`` for every (minimum, loss) pair, timed.

    Returns ``(table, histories)``: a pandas DataFrame indexed by ``(minimum, loss)`` with columns
    ``lambda_max``, ``iterations`` and ``time_s``, and ``{"<minimum> minimum, <loss>": Rayleigh quotients}``
    for ``plot_hessian_convergence``.
    """
    import time

    import pandas as pd

    if not models or not losses:
        raise ValueError(f"need at least one model and one loss, got {len(models)} model(s), {len(losses)} loss(es)")
    rows, hists = [], {}
    for mname, model in models.items():
        for lname, fn in losses.items():
            t0 = time.perf_counter()
            lam, hist = top_hessian_eigenvalue(model, batches, fn, iters=iters, tol=tol, seed=seed)
            rows.append({"minimum": mname, "loss": lname, "lambda_max": lam, "iterations": len(hist),
                         "time_s": time.perf_counter() - t0})
            hists[f"{mname} minimum, {lname}"] = hist
    return pd.DataFrame(rows).set_index(["minimum", "loss"]), hists


def grid_summary(result: dict):
    """For a ``compare_landscapes`` result: per (minimum, loss) the loss at the minimum, the mean of the grid
    (the average height of the bowl: lower is flatter under these directions) and its maximum, as a DataFrame."""
    import pandas as pd

    return pd.DataFrame([{"minimum": m, "loss": l, "at theta*": result["center"][m, l],
                          "grid mean": float(result["surfaces"][m, l].mean()),
                          "grid max": float(result["surfaces"][m, l].max())}
                         for m in result["models"] for l in result["losses"]]).set_index(["minimum", "loss"])


def _plot():
    from . import plot

    plot.style()
    return plot


def plot_surface_1d(alphas, losses_by_label: Mapping[str, Sequence[float]], ax=None, title: str | None = None,
                    xlabel: str = "alpha (filter-normalised step)", ylabel: str = "loss", logy: bool = False):
    """1-D loss curves ``f(a) = L(theta + a d)``, one line per label (e.g. SDT- vs TET-trained). ``(fig, ax)``."""
    plot = _plot()
    new = ax is None
    fig, ax = plot._fig_ax(ax, figsize=(5, 3.4))
    alphas = np.asarray(alphas, dtype=float)
    for k, (label, ys) in enumerate(losses_by_label.items()):
        ax.plot(alphas, np.asarray(ys, dtype=float), label=str(label), color=plot.COLORS[k % len(plot.COLORS)])
    ax.axvline(0.0, color="0.5", lw=0.8, ls=":")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if losses_by_label:
        ax.legend()
    if title:
        ax.set_title(title)
    if new:
        fig.tight_layout()
    return fig, ax


def _levels(Z, levels, vmin, vmax):
    if not np.isscalar(levels):
        return np.asarray(levels, dtype=float)
    finite = np.asarray(Z, dtype=float)[np.isfinite(Z)]
    lo = float(finite.min()) if vmin is None else float(vmin)
    hi = float(finite.max()) if vmax is None else float(vmax)
    if not hi > lo:
        hi = lo + 1e-6
    return np.linspace(lo, hi, int(levels))


def plot_contour(alphas, betas, Z, ax=None, title: str | None = None, levels=20, vmin=None, vmax=None,
                 cmap: str = "viridis", filled: bool = True, colorbar: bool = True):
    """Contour plot of a 2-D surface ``Z[j, i] = f(alphas[i], betas[j])`` (Li et al. 2018, Fig. 1 style).

    ``levels``: an int (that many equally spaced levels between ``vmin`` and ``vmax``, default the finite
    min and max of ``Z``) or an explicit array. ``filled`` adds a ``contourf`` under the lines. The minimum
    ``(0, 0)`` is marked with a star. Returns ``(fig, ax)``.
    """
    plot = _plot()
    new = ax is None
    fig, ax = plot._fig_ax(ax, figsize=(4.6, 3.8))
    Z = np.asarray(Z, dtype=float)
    lv = _levels(Z, levels, vmin, vmax)
    Zc = np.clip(Z, lv[0], lv[-1]) if filled else Z  # fill out-of-range values with the end colours
    if filled:
        cf = ax.contourf(alphas, betas, Zc, levels=lv, cmap=cmap, alpha=0.85)
        if colorbar:
            fig.colorbar(cf, ax=ax, label="loss")
    ax.contour(alphas, betas, Z, levels=lv, colors="k", linewidths=0.5)
    ax.plot([0], [0], marker="*", color="w", markeredgecolor="k", markersize=11, ls="none")
    ax.set_xlabel("alpha (d1)")
    ax.set_ylabel("beta (d2)")
    ax.set_aspect("equal", adjustable="box")
    ax.grid(False)
    if title:
        ax.set_title(title)
    if new:
        fig.tight_layout()
    return fig, ax


def plot_surface_3d(alphas, betas, Z, ax=None, title: str | None = None, vmin=None, vmax=None,
                    cmap: str = "viridis", zlim=None):
    """3-D surface of ``Z[j, i] = f(alphas[i], betas[j])`` (the view of TET's Fig. 2). ``ax`` must be a 3-D
    axes (``projection="3d"``) if given. Values above ``zlim[1]`` (if given) are clipped. ``(fig, ax)``."""
    import matplotlib.pyplot as plt

    _plot()
    if ax is None:
        fig = plt.figure(figsize=(5, 4))
        ax = fig.add_subplot(projection="3d")
    else:
        if getattr(ax, "name", "") != "3d":
            raise ValueError("plot_surface_3d needs a 3-D axes: fig.add_subplot(projection='3d')")
        fig = ax.figure
    A, B = np.meshgrid(np.asarray(alphas, dtype=float), np.asarray(betas, dtype=float))
    Z = np.asarray(Z, dtype=float)
    if zlim is not None:
        Z = np.clip(Z, zlim[0], zlim[1])
        ax.set_zlim(*zlim)
    ax.plot_surface(A, B, Z, cmap=cmap, vmin=vmin, vmax=vmax, linewidth=0, antialiased=True, rcount=60, ccount=60)
    ax.set_xlabel("alpha (d1)")
    ax.set_ylabel("beta (d2)")
    ax.set_zlabel("loss")
    if title:
        ax.set_title(title)
    return fig, ax


def plot_hessian_convergence(histories: Mapping[str, Sequence[float]], ax=None, title: str | None = None):
    """Power-iteration convergence: the Rayleigh quotient ``lambda_k`` against iteration k, one line per label
    (``histories`` maps a label to the ``history`` of ``top_hessian_eigenvalue``). Returns ``(fig, ax)``."""
    plot = _plot()
    new = ax is None
    fig, ax = plot._fig_ax(ax, figsize=(5, 3.4))
    for k, (label, hist) in enumerate(histories.items()):
        hist = np.asarray(hist, dtype=float)
        ax.plot(np.arange(1, len(hist) + 1), hist, marker="o", ms=3, color=plot.COLORS[k % len(plot.COLORS)],
                label=f"{label}: {hist[-1]:.4g}" if len(hist) else str(label))
    ax.set_xlabel("power iteration k")
    ax.set_ylabel("Rayleigh quotient lambda_k")
    if histories:
        ax.legend()
    ax.set_title(title or "top Hessian eigenvalue")
    if new:
        fig.tight_layout()
    return fig, ax


# ----------------------------------------------------------------------------------------------------------
# TET Figure 2: several minima under several losses


def _grid_axis(span: float, resolution: int) -> np.ndarray:
    span = float(span)
    if not math.isfinite(span) or span <= 0:
        raise ValueError(f"span must be a positive number, got {span!r}")
    if isinstance(resolution, bool) or not isinstance(resolution, numbers.Integral) or resolution < 2:
        raise ValueError(f"resolution must be an integer >= 2, got {resolution!r}")
    return np.linspace(-span, span, int(resolution))


def compare_landscapes(models: Mapping[str, nn.Module], batches: Batches, losses: Mapping[str, LossFn],
                       span: float = 1.0, resolution: int = 21, seed: int = 0, progress: bool = True) -> dict:
    """2-D surfaces of every (model, loss) pair on one shared grid: TET's Fig. 2 (Deng et al. 2022), the
    SDT- and TET-trained minima seen through both ``L_SDT`` and ``L_TET``.

    For each model, two filter-normalised directions are drawn with the same ``seed`` (``d1`` then ``d2``
    from one generator; filter normalisation makes them comparable across models of the same architecture)
    and the grid ``alphas = betas = linspace(-span, span, resolution)`` is evaluated once, all losses from the
    same forward pass.

    Returns:
        ``{"alphas", "betas", "models": [names], "losses": [names], "surfaces": {(model, loss): Z},
        "center": {(model, loss): loss at theta}, "span", "resolution", "seed"}`` with
        ``Z[j, i] = f(alphas[i], betas[j])``; draw it with ``plot_landscape_grid``.
    """
    if not models or not losses:
        raise ValueError("compare_landscapes needs at least one model and one loss")
    axis = _grid_axis(span, resolution)
    loss_names, loss_fns = list(losses), list(losses.values())
    surfaces, center = {}, {}
    for mname, model in models.items():
        d1, d2 = _two_directions(model, seed)
        Z = _grid(model, batches, loss_fns, d1, d2, axis, axis, progress, desc=f"landscape {mname}")
        for k, lname in enumerate(loss_names):
            surfaces[(mname, lname)] = Z[k]
            center[(mname, lname)] = loss_at(model, batches, loss_fns[k])
    return {"alphas": axis, "betas": axis.copy(), "models": list(models), "losses": loss_names,
            "surfaces": surfaces, "center": center, "span": float(span), "resolution": int(resolution),
            "seed": seed}


def plot_landscape_grid(result: dict, kind: str = "contour", levels=20, vmin=None, vmax=None, cmap="viridis"):
    """A models x losses grid of panels from ``compare_landscapes``, with one shared colour scale
    (``vmin``/``vmax`` default to the finite min/max over every panel) so flatness reads across panels.

    ``kind``: ``"contour"`` (filled contours and a shared colour bar) or ``"3d"`` (surfaces, shared z range).
    Returns ``(fig, axes)`` with ``axes`` a ``[n_models, n_losses]`` array.
    """
    import matplotlib.pyplot as plt

    if kind not in ("contour", "3d"):
        raise ValueError(f"kind must be 'contour' or '3d', got {kind!r}")
    _plot()
    mnames, lnames = result["models"], result["losses"]
    alphas, betas = result["alphas"], result["betas"]
    allz = np.concatenate([np.asarray(z, dtype=float).ravel() for z in result["surfaces"].values()])
    allz = allz[np.isfinite(allz)]
    lo = float(allz.min()) if vmin is None else float(vmin)
    hi = float(allz.max()) if vmax is None else float(vmax)
    nr, nc = len(mnames), len(lnames)
    fig = plt.figure(figsize=(4.4 * nc + (0.9 if kind == "contour" else 0), 4.0 * nr), layout="constrained")
    axes = np.empty((nr, nc), dtype=object)
    for r, m in enumerate(mnames):
        for c, l in enumerate(lnames):
            title = f"{l} around the {m} minimum"
            Z = result["surfaces"][(m, l)]
            if kind == "3d":
                ax = fig.add_subplot(nr, nc, r * nc + c + 1, projection="3d")
                plot_surface_3d(alphas, betas, Z, ax=ax, title=title, vmin=lo, vmax=hi, cmap=cmap, zlim=(lo, hi))
            else:
                ax = fig.add_subplot(nr, nc, r * nc + c + 1)
                plot_contour(alphas, betas, Z, ax=ax, title=title, levels=_levels(allz, levels, lo, hi),
                             cmap=cmap, colorbar=False)
            axes[r, c] = ax
    if kind == "contour":
        import matplotlib as mpl

        sm = mpl.cm.ScalarMappable(norm=mpl.colors.Normalize(lo, hi), cmap=cmap)
        fig.colorbar(sm, ax=list(axes.ravel()), label="loss", shrink=0.8)
    return fig, axes


# ----------------------------------------------------------------------------------------------------------
# explorer and its static twin


def landscape_figure(model: nn.Module, batches: Batches, loss_fn: LossFn, span: float = 1.0, resolution: int = 11,
                     view: str = "contour", seed: int = 0, title: str | None = None, progress: bool = False):
    """Static twin of ``landscape_explorer``: the landscape of one model under one loss, for given values.

    The directions are ``d1, d2`` drawn with ``seed`` (as in ``compare_landscapes``); the grid is
    ``linspace(-span, span, resolution)``. ``view``: ``"1d"`` (the curve along ``d1``: the ``beta = 0``
    row of the 2-D surface), ``"contour"`` or ``"3d"``. Returns ``(fig, ax)``.
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {', '.join(map(repr, VIEWS))}, got {view!r}")
    axis = _grid_axis(span, resolution)
    d1, d2 = _two_directions(model, seed)
    if view == "1d":
        f = loss_surface_1d(model, batches, loss_fn, d1, axis, progress=progress)
        return plot_surface_1d(axis, {title or "loss": f}, title=title)
    Z = loss_surface_2d(model, batches, loss_fn, d1, d2, axis, axis, progress=progress)
    if view == "3d":
        return plot_surface_3d(axis, axis, Z, title=title)
    return plot_contour(axis, axis, Z, title=title)


def landscape_explorer(models: Mapping[str, nn.Module] | nn.Module, batches: Batches,
                       losses: Mapping[str, LossFn] | LossFn, span: float = 1.0, resolution: int = 11,
                       view: str = "contour", seed: int = 0, compute_now: bool = False):
    """ipywidgets explorer of loss landscapes: range (span), resolution, which loss, which minimum (model),
    1-D / contour / 3-D view and the direction seed. A landscape costs ``resolution^2`` forward passes per
    batch, so nothing is recomputed while the controls move: press **compute** (``compute_now=True`` draws
    once at start). Draws ``landscape_figure`` (its static twin) into an ``Output``.

    Returns the widget box (also displayed); ``box.controls`` holds the controls by name, ``box.compute()``
    does what the button does and returns the figure.
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    if isinstance(models, nn.Module):
        models = {"model": models}
    if callable(losses) and not isinstance(losses, Mapping):
        losses = {getattr(losses, "__name__", "loss"): losses}
    if not models or not losses:
        raise ValueError("landscape_explorer needs at least one model and one loss")
    if view not in VIEWS:
        raise ValueError(f"view must be one of {', '.join(map(repr, VIEWS))}, got {view!r}")
    controls = {
        "model": w.Dropdown(options=list(models), description="minimum"),
        "loss": w.Dropdown(options=list(losses), description="loss"),
        "view": w.ToggleButtons(options=list(VIEWS), value=view, description="view"),
        "span": w.FloatSlider(value=float(span), min=0.05, max=5.0, step=0.05, description="span"),
        "resolution": w.IntSlider(value=int(resolution), min=3, max=51, step=2, description="resolution"),
        "seed": w.IntText(value=int(seed), description="seed"),
    }
    button = w.Button(description="compute", button_style="primary", icon="refresh")
    status = w.Label(value="press compute (cost: resolution^2 x batches forward passes)")
    out = w.Output()

    def compute(*_):
        c = {k: v.value for k, v in controls.items()}
        status.value = f"computing {c['resolution']}x{c['resolution']} ..."
        fig, _ = landscape_figure(models[c["model"]], batches, losses[c["loss"]], span=c["span"],
                                  resolution=c["resolution"], view=c["view"], seed=c["seed"],
                                  title=f"{c['loss']} around the {c['model']} minimum")
        with out:
            out.clear_output(wait=True)
            display(fig)
        plt.close(fig)
        status.value = "done: " + ", ".join(f"{k}={v}" for k, v in c.items())
        box.last_figure = fig
        return fig

    button.on_click(compute)
    box = w.VBox([w.HBox([controls["model"], controls["loss"]]), controls["view"],
                  w.HBox([controls["span"], controls["resolution"], controls["seed"]]),
                  w.HBox([button, status]), out])
    box.controls, box.button, box.output, box.compute, box.last_figure = controls, button, out, compute, None
    display(box)
    if compute_now:
        compute()
    return box
