"""Static landscape figures: 1-D curves, contours, 3-D surfaces, power-iteration convergence, TET's Fig. 2 grid.

``landscape_figure`` is the static twin of ``landscape_explorer``: it computes one landscape and draws it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from torch import nn

from .. import plot
from .batches import Batches, LossFn
from .directions import _two_directions
from .surface import _grid_axis, loss_surface_1d, loss_surface_2d

__all__ = [
    "plot_surface_1d",
    "plot_contour",
    "plot_surface_3d",
    "plot_hessian_convergence",
    "plot_landscape_grid",
    "landscape_figure",
    "VIEWS",
]

#: Views understood by ``landscape_figure`` / ``landscape_explorer``.
VIEWS = ("1d", "contour", "3d")


def plot_surface_1d(alphas, losses_by_label: Mapping[str, Sequence[float]], ax=None, title: str | None = None,
                    xlabel: str = "alpha (filter-normalised step)", ylabel: str = "loss", logy: bool = False):
    """1-D loss curves ``f(a) = L(theta + a d)``, one line per label (e.g. SDT- vs TET-trained). ``(fig, ax)``."""
    plot.style()
    new = ax is None
    fig, ax = plot.fig_ax(ax, figsize=(5, 3.4))
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
    plot.style()
    new = ax is None
    fig, ax = plot.fig_ax(ax, figsize=(4.6, 3.8))
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

    plot.style()
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
    plot.style()
    new = ax is None
    fig, ax = plot.fig_ax(ax, figsize=(5, 3.4))
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


def _finite_values_and_range(surfaces: Mapping, vmin, vmax) -> tuple[np.ndarray, float, float]:
    """Every finite value of every surface, and the shared colour range (default: their min and max)."""
    allz = np.concatenate([np.asarray(z, dtype=float).ravel() for z in surfaces.values()])
    allz = allz[np.isfinite(allz)]
    lo = float(allz.min()) if vmin is None else float(vmin)
    hi = float(allz.max()) if vmax is None else float(vmax)
    return allz, lo, hi


def _grid_panel(fig, index: int, nr: int, nc: int, kind: str, alphas, betas, Z, title: str, lo: float, hi: float,
                levels, cmap):
    """Draw one panel of ``plot_landscape_grid`` at subplot ``index`` (1-based); ``levels`` are explicit."""
    if kind == "3d":
        ax = fig.add_subplot(nr, nc, index, projection="3d")
        plot_surface_3d(alphas, betas, Z, ax=ax, title=title, vmin=lo, vmax=hi, cmap=cmap, zlim=(lo, hi))
    else:
        ax = fig.add_subplot(nr, nc, index)
        plot_contour(alphas, betas, Z, ax=ax, title=title, levels=levels, cmap=cmap, colorbar=False)
    return ax


def plot_landscape_grid(result: dict, kind: str = "contour", levels=20, vmin=None, vmax=None, cmap="viridis"):
    """A models x losses grid of panels from ``compare_landscapes``, with one shared colour scale
    (``vmin``/``vmax`` default to the finite min/max over every panel) so flatness reads across panels.

    ``kind``: ``"contour"`` (filled contours and a shared colour bar) or ``"3d"`` (surfaces, shared z range).
    Returns ``(fig, axes)`` with ``axes`` a ``[n_models, n_losses]`` array.
    """
    import matplotlib as mpl
    import matplotlib.pyplot as plt

    if kind not in ("contour", "3d"):
        raise ValueError(f"kind must be 'contour' or '3d', got {kind!r}")
    plot.style()
    mnames, lnames = result["models"], result["losses"]
    allz, lo, hi = _finite_values_and_range(result["surfaces"], vmin, vmax)
    nr, nc = len(mnames), len(lnames)
    fig = plt.figure(figsize=(4.4 * nc + (0.9 if kind == "contour" else 0), 4.0 * nr), layout="constrained")
    axes = np.empty((nr, nc), dtype=object)
    for r, m in enumerate(mnames):
        for c, l in enumerate(lnames):
            lv = _levels(allz, levels, lo, hi) if kind != "3d" else None
            axes[r, c] = _grid_panel(fig, r * nc + c + 1, nr, nc, kind, result["alphas"], result["betas"],
                                     result["surfaces"][(m, l)], f"{l} around the {m} minimum", lo, hi, lv, cmap)
    if kind == "contour":
        sm = mpl.cm.ScalarMappable(norm=mpl.colors.Normalize(lo, hi), cmap=cmap)
        fig.colorbar(sm, ax=list(axes.ravel()), label="loss", shrink=0.8)
    return fig, axes


# ----------------------------------------------------------------------------------------------------------
# the explorer's static twin


def _check_view(view: str) -> None:
    if view not in VIEWS:
        raise ValueError(f"view must be one of {', '.join(map(repr, VIEWS))}, got {view!r}")


def landscape_figure(model: nn.Module, batches: Batches, loss_fn: LossFn, span: float = 1.0, resolution: int = 11,
                     view: str = "contour", seed: int = 0, title: str | None = None, progress: bool = False):
    """Static twin of ``landscape_explorer``: the landscape of one model under one loss, for given values.

    The directions are ``d1, d2`` drawn with ``seed`` (as in ``compare_landscapes``); the grid is
    ``linspace(-span, span, resolution)``. ``view``: ``"1d"`` (the curve along ``d1``: the ``beta = 0``
    row of the 2-D surface), ``"contour"`` or ``"3d"``. Returns ``(fig, ax)``.
    """
    _check_view(view)
    axis = _grid_axis(span, resolution)
    d1, d2 = _two_directions(model, seed)
    if view == "1d":
        f = loss_surface_1d(model, batches, loss_fn, d1, axis, progress=progress)
        return plot_surface_1d(axis, {title or "loss": f}, title=title)
    Z = loss_surface_2d(model, batches, loss_fn, d1, d2, axis, axis, progress=progress)
    if view == "3d":
        return plot_surface_3d(axis, axis, Z, title=title)
    return plot_contour(axis, axis, Z, title=title)
