"""Tables of results: ``sharpness_table`` (timed top Hessian eigenvalues) and ``grid_summary`` (landscape stats)."""
from __future__ import annotations

import time
from collections.abc import Mapping

from torch import nn

from .batches import Batches, LossFn
from .hessian import top_hessian_eigenvalue

__all__ = ["sharpness_table", "grid_summary"]


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
