"""Tables of results: ``sharpness_table`` (timed top Hessian eigenvalues), ``grid_summary`` (landscape stats) and
``minimum_profile`` (every flatness measure of one minimum)."""
from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from .batches import Batches, LossFn
from .directions import random_direction
from .hessian import top_hessian_eigenvalue
from .measures import accuracy
from .surface import compare_landscapes, loss_at, loss_surface_1d

__all__ = ["sharpness_table", "grid_summary", "minimum_profile"]


def sharpness_table(models: Mapping[str, nn.Module], batches: Batches, losses: Mapping[str, LossFn],
                    iters: int = 20, tol: float = 1e-3, seed: int = 0):
    """``top_hessian_eigenvalue`` for every (minimum, loss) pair, timed.

    Returns ``(table, histories)``: a pandas DataFrame indexed by ``(minimum, loss)`` with columns
    ``lambda_max``, ``iterations`` and ``time_s``, and ``{"<minimum> minimum, <loss>": Rayleigh quotients}``
    for ``plot_hessian_convergence``.
    """
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


def minimum_profile(model: nn.Module, batches: Batches, test_batches: Batches, losses: Mapping[str, LossFn],
                    span: float = 1.0, resolution: int = 21, seed: int = 0, alpha: float = 0.3, noise_dirs: int = 10,
                    hess_iters: int = 20, hess_tol: float = 1e-3, readout: str = "readout.1.weight") -> dict:
    """Every flatness measure of one trained minimum, as a flat ``{column: float}`` (one row of a table).

    With ``first`` the name of the first loss in ``losses`` (the reference loss):

    * ``"test acc"``: ``accuracy`` on ``test_batches``;
    * ``"<first> at theta*"``: that loss at the minimum, on ``batches``;
    * ``"<loss> grid mean"`` for every loss: the mean of the ``resolution x resolution`` landscape over
      ``[-span, span]^2`` (``compare_landscapes`` with direction seed ``seed``, on ``batches``);
    * ``"test acc at alpha=<alpha>"``: the test accuracy at ``theta* + alpha d``, mean over ``noise_dirs``
      filter-normalised directions (``random_direction`` seeds ``1000, 1001, ...``);
    * ``"RMS output"``: the root mean square of the time-averaged outputs (logits) on ``batches``;
    * ``"CE curvature 1 - sum p^2"``: the mean over those samples of ``1 - sum_c p_c^2`` (``p`` the softmax of
      the time-averaged output), the trace of the cross-entropy's Hessian in the logits, ``diag(p) - p p^T``;
    * ``"readout weight norm"``: the norm of the parameter named ``readout``;
    * ``"lambda_max <loss>"`` for every loss: ``top_hessian_eigenvalue`` (``hess_iters``, ``hess_tol``,
      starting vector seed ``seed``) on ``batches``.

    The model's weights and modes are restored afterwards (every measure restores them).
    """
    if not losses:
        raise ValueError("losses is empty: give at least one {name: loss_fn}")
    first = next(iter(losses))
    grid = compare_landscapes({"m": model}, batches, losses, span=span, resolution=resolution, seed=seed,
                              progress=False)
    was_training = model.training
    with torch.no_grad():
        dev = next(model.parameters()).device
        mean_out = torch.cat([model.eval()(x.to(dev)).mean(0) for x, _ in batches])   # O-bar [N, C]
    model.train(was_training)
    p = torch.softmax(mean_out, -1)
    out = {"test acc": loss_at(model, test_batches, accuracy),
           f"{first} at theta*": grid["center"]["m", first]}
    out.update({f"{name} grid mean": float(grid["surfaces"]["m", name].mean()) for name in losses})
    out[f"test acc at alpha={alpha}"] = float(np.mean([loss_surface_1d(
        model, test_batches, accuracy, random_direction(model, seed=1000 + k), [alpha])[0] for k in range(noise_dirs)]))
    out["RMS output"] = float(mean_out.pow(2).mean().sqrt())
    out["CE curvature 1 - sum p^2"] = float((1 - p.pow(2).sum(-1)).mean())
    out["readout weight norm"] = float(dict(model.named_parameters())[readout].detach().norm())
    for name, fn in losses.items():
        out[f"lambda_max {name}"] = top_hessian_eigenvalue(model, batches, fn, iters=hess_iters, tol=hess_tol,
                                                           seed=seed)[0]
    return out
