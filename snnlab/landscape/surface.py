"""Loss surfaces: the loss at a point, 1-D and 2-D grids along directions, and several minima x losses at once."""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .batches import Batches, LossFn, _on_model_device
from .directions import _two_directions
from .restore import _Restore

__all__ = ["loss_at", "loss_surface_1d", "loss_surface_2d", "compare_landscapes"]


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


def _moving_params(params: Mapping[str, nn.Parameter], d1, d2) -> list:
    """``[(param, d1 part or None, d2 part or None)]`` for the parameters with a non-zero direction only
    (the rest keep their values untouched); the parts are cast to the parameter's dtype and device."""
    moving = []
    for n, p in params.items():
        a_dir = d1.get(n)
        b_dir = d2.get(n) if d2 is not None else None
        a_dir = a_dir if a_dir is not None and bool(a_dir.any()) else None
        b_dir = b_dir if b_dir is not None and bool(b_dir.any()) else None
        if a_dir is None and b_dir is None:
            continue
        moving.append((p, a_dir.to(p) if a_dir is not None else None, b_dir.to(p) if b_dir is not None else None))
    return moving


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
    moving = _moving_params(params, d1, d2)
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

    Returns a dict with the keys ``alphas``, ``betas``, ``models`` and ``losses`` (the names),
    ``surfaces`` (``{(model, loss): Z}`` with ``Z[j, i] = f(alphas[i], betas[j])``), ``center``
    (``{(model, loss): loss at theta}``), ``span``, ``resolution`` and ``seed``; draw it with
    ``plot_landscape_grid``.
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
