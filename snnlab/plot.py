"""Figures in one style. Every helper returns ``(fig, ax)`` (``ax`` may be an array of axes).

Pass ``ax=`` to draw into an existing axes; otherwise a new figure is made.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

import numpy as np
import torch

__all__ = [
    "style",
    "fig_ax",
    "raster",
    "membrane",
    "surrogates",
    "neuron_gradient",
    "training_curves",
    "accuracy_vs",
    "lines",
    "event_frames",
]

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def style() -> None:
    """Apply snnlab's matplotlib style (called by every helper)."""
    matplotlib.rcParams.update(
        {
            "figure.dpi": 90,
            "savefig.dpi": 90,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.prop_cycle": matplotlib.cycler(color=COLORS),
            "font.size": 10,
            "legend.frameon": False,
        }
    )


def fig_ax(ax=None, figsize=(6, 3.2), **kw):
    """``(fig, ax)``: ``ax``'s figure and ``ax`` when given, else a new figure in snnlab's style."""
    import matplotlib.pyplot as plt

    style()
    if ax is not None:
        return ax.figure, ax
    return plt.subplots(figsize=figsize, **kw)


_fig_ax = fig_ax  # the old private name


def _np(x):
    if torch.is_tensor(x):
        return x.detach().float().cpu().numpy()
    return np.asarray(x)


def raster(spk, ax=None, title: str | None = None, max_neurons: int = 200, color="k"):
    """Spike raster of ``spk`` with shape ``[T, N]`` (time steps x neurons): a dot per spike."""
    spk = _np(spk)
    if spk.ndim != 2:
        spk = spk.reshape(spk.shape[0], -1)
    spk = spk[:, :max_neurons]
    fig, ax = fig_ax(ax)
    t, n = np.nonzero(spk)
    ax.scatter(t, n, s=6, marker="|", color=color, linewidths=1.2)
    ax.set_xlim(-0.5, spk.shape[0] - 0.5)
    ax.set_ylim(-0.5, spk.shape[1] - 0.5)
    ax.set_xlabel("time step t")
    ax.set_ylabel("neuron")
    ax.grid(False)
    if title:
        ax.set_title(title)
    return fig, ax


def membrane(mem, spk=None, v_th: float = 1.0, inputs=None, ax=None, label="u[t] (before reset)", title=None,
             legend: str | None = "best"):
    """Membrane trace ``mem[t]`` of one neuron, the threshold, spikes as vertical marks, optional input."""
    mem = _np(mem).reshape(-1)
    fig, ax = fig_ax(ax)
    t = np.arange(len(mem))
    if inputs is not None:
        ax.bar(t, _np(inputs).reshape(-1), color="0.85", label="input I[t]", width=0.6)
    ax.plot(t, mem, "o-", ms=3, label=label)
    ax.axhline(v_th, color="k", ls="--", lw=1, label="v_th")
    if spk is not None:
        for ts in np.nonzero(_np(spk).reshape(-1))[0]:
            ax.axvline(ts, color=COLORS[1], alpha=0.35, lw=2)
        ax.plot([], [], color=COLORS[1], alpha=0.5, lw=2, label="spike")
    ax.set_xlabel("time step t")
    ax.set_ylabel("membrane potential")
    if legend:
        ax.legend(loc=legend, fontsize=8)
    if title:
        ax.set_title(title)
    return fig, ax


def surrogates(names: Sequence[str] | None = None, width: float = 1.0, x_range: float = 3.0, axes=None):
    """Left: the Heaviside step and each surrogate's integral (the smooth function it stands for).
    Right: the surrogate derivatives ``g(x)`` at ``width``, all of unit area and the same FWHM."""
    from . import surrogate as S

    names = list(names or S.FAMILY)
    x = torch.linspace(-x_range, x_range, 1201, dtype=torch.float64)
    if axes is None:
        fig, axes = fig_ax(None, figsize=(10, 3.4), ncols=2)
    else:
        fig = axes[0].figure
    axes[0].plot(_np(x), _np(S.heaviside(x)), "k", lw=2, label="Heaviside H(x)")
    for name in names:
        g = S.get(name, width).grad(x)
        # the smooth step G(x) = integral of g from -inf: add the (symmetric) tail mass left of the plot
        tail = (1.0 - torch.trapezoid(g, x)) / 2
        integral = torch.cumulative_trapezoid(g, x, dim=0) + tail
        axes[0].plot(_np(x[1:]), _np(integral), label=name)
        axes[1].plot(_np(x), _np(g), label=name)
    axes[0].set_title("forward: H(x) and the smooth steps")
    axes[1].set_title(f"backward: surrogate derivatives g(x), width = {width:g}")
    for a in axes:
        a.set_xlabel("x = u - v_th")
    axes[0].legend(fontsize=8)
    return fig, axes


def neuron_gradient(mem, sg, v_th: float = 1.0, axes=None, title=None):
    """A neuron's membrane trace (top) and the surrogate derivative ``g(u[t] - v_th)`` it gets (bottom).

    Where the bottom panel is zero no gradient passes through that time step.
    """
    mem = torch.as_tensor(_np(mem)).reshape(-1).double()
    g = sg.grad(mem - v_th)
    if axes is None:
        fig, axes = fig_ax(None, figsize=(7, 4.2), nrows=2, sharex=True)
    else:
        fig = axes[0].figure
    t = np.arange(len(mem))
    axes[0].plot(t, _np(mem), "o-", ms=3, label="u[t]")
    axes[0].axhline(v_th, color="k", ls="--", lw=1, label="v_th")
    r = sg.effective_domain()
    if np.isfinite(r):
        axes[0].axhspan(v_th - r, v_th + r, color=COLORS[2], alpha=0.12, label="effective domain")
    axes[0].set_ylabel("membrane")
    axes[0].legend(loc="upper right", fontsize=8)
    axes[1].bar(t, _np(g), color=COLORS[2], width=0.7)
    axes[1].set_ylabel("g(u - v_th)")
    axes[1].set_xlabel("time step t")
    frac = float((g > 1e-3 * g.max().clamp(min=1e-30)).double().mean()) if g.numel() else 0.0
    axes[0].set_title(title or f"{sg!r}: gradient flows at {100 * frac:.0f}% of steps")
    return fig, axes


def training_curves(histories: Mapping[str, Sequence[Mapping]], metrics=("train_loss", "test_acc"), axes=None):
    """Curves of ``metrics`` per epoch for each labelled history (a list of per-epoch dicts). A run that
    evaluated the validation split (``split="val"``/``"final"``) has ``val_*`` where others have ``test_*``:
    its ``val_acc`` is drawn for ``test_acc`` (and the title says so)."""
    if axes is None:
        fig, axes = fig_ax(None, figsize=(5 * len(metrics), 3.2), ncols=len(metrics))
    else:
        fig = np.ravel(axes)[0].figure
    axes = np.atleast_1d(axes)
    shown = [set() for _ in metrics]
    for label, hist in histories.items():
        ep = [r["epoch"] for r in hist]
        for a, m, names in zip(axes, metrics, shown):
            if hist and m not in hist[0] and m.startswith("test_"):
                m = "val_" + m[len("test_"):]
            names.add(m)
            a.plot(ep, [r[m] for r in hist], "o-", ms=3, label=label)
    for a, m, names in zip(axes, metrics, shown):
        a.set_xlabel("epoch")
        a.set_title(" / ".join(sorted(names)).replace("_", " ") if names else m.replace("_", " "))
    axes[-1].legend(fontsize=8)
    return fig, axes


def lines(x, groups: Mapping[str, Sequence], xlabel: str, ylabel: str, logx=False, ax=None,
          errors: Mapping[str, Sequence] | None = None, marker="o", ms=4):
    """One line per group: ``groups[name][i]`` against ``x[i]`` (optional error bars)."""
    fig, ax = fig_ax(ax)
    for name, ys in groups.items():
        if errors and name in errors:
            ax.errorbar(x, ys, yerr=errors[name], marker=marker, ms=ms, capsize=3, label=name)
        else:
            ax.plot(x, ys, marker=marker, ms=ms, label=name)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return fig, ax


def seed_points(groups: Mapping[str, Sequence[float]], ylabel: str = "test accuracy", ax=None, highlight=None,
                level: float = 0.95, title: str | None = None):
    """Every seed's value (dots) and the mean with its ``level`` t interval (black bar) per labelled group, so a
    reader sees the spread the interval summarises; ``highlight``: a label drawn in another colour."""
    from . import stats

    labels = list(groups)
    fig, ax = fig_ax(ax, figsize=(max(5.0, 0.55 * len(labels) + 2), 3.4))
    for i, name in enumerate(labels):
        vals = [float(v) for v in groups[name]]
        ax.scatter([i] * len(vals), vals, s=14, alpha=0.6, zorder=3, color="C1" if name == highlight else "C0")
        ci = stats.mean_ci(vals, level)
        if not np.isnan(ci.low):
            ax.errorbar([i], [ci.mean], yerr=[[ci.mean - ci.low], [ci.high - ci.mean]], fmt="_", color="k",
                        capsize=3, zorder=4)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=60 if len(labels) > 4 else 0, ha="right" if len(labels) > 4 else "center",
                       fontsize=7)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig, ax


def accuracy_vs(x, groups: Mapping[str, Sequence], xlabel: str, ylabel: str = "test accuracy", logx=False, ax=None,
                errors: Mapping[str, Sequence] | None = None):
    """Accuracy (or any metric) against ``x``, one line per group: ``lines`` with an accuracy label."""
    return lines(x, groups, xlabel, ylabel, logx=logx, ax=ax, errors=errors)


def event_frames(frames, label=None, axes=None, max_frames: int = 8):
    """Event frames ``[T, 2, H, W]``: ON events in red, OFF in blue, one panel per frame."""
    frames = _np(frames)
    T = min(frames.shape[0], max_frames)
    if axes is None:
        fig, axes = fig_ax(None, figsize=(1.6 * T, 1.9), ncols=T)
    else:
        fig = np.ravel(axes)[0].figure
    axes = np.atleast_1d(axes)
    vmax = max(frames[:T].max(), 1)
    for t in range(T):
        on, off = frames[t, 0] / vmax, frames[t, 1] / vmax
        img = np.ones(frames.shape[2:] + (3,))  # white; ON removes green+blue (red), OFF removes red+green
        img[..., 0] -= off
        img[..., 1] -= on + off
        img[..., 2] -= on
        axes[t].imshow(img.clip(0, 1), interpolation="nearest")
        axes[t].set_title(f"t={t}", fontsize=8)
        axes[t].axis("off")
    if label is not None:
        fig.suptitle(f"label {label}: ON red, OFF blue", fontsize=9)
    return fig, axes


def operations(table, ax=None, title: str | None = None):
    """Energy and spikes of each row of an operations table (``snnlab.reproduce``'s ``operations.csv``: columns
    ``row``, ``energy_nJ``, ``ann_energy_nJ``, ``mean_rate``). Left: energy per sample on a log axis (rows of
    different data sets differ by orders of magnitude), SNN bars (ACs and MACs at Horowitz's 45 nm constants) and the
    same layers as an ANN as a black tick, the ratio written inside; right: the mean firing rate. ``ax``: two axes
    sharing y (default: a new figure)."""
    rows = list(table["row"])
    if ax is None:
        fig, ax = fig_ax(None, figsize=(8, 0.3 * len(rows) + 1.4), ncols=2, sharey=True,
                         gridspec_kw={"width_ratios": (3, 1)})
    else:
        fig = ax[0].figure
    a_e, a_r = ax
    y = np.arange(len(rows))
    a_e.barh(y, table["energy_nJ"], color="C0", alpha=0.8, label="SNN (ACs 0.9 pJ, MACs 4.6 pJ)")
    a_e.scatter(table["ann_energy_nJ"], y, marker="|", s=200, color="k", zorder=3, label="same layers as an ANN")
    for yi, (e, ann) in enumerate(zip(table["energy_nJ"], table["ann_energy_nJ"])):
        a_e.text(e / 1.08, yi, f"{e / ann:.2f} x ANN", va="center", ha="right", fontsize=7, color="white")
    a_e.set_xscale("log")
    a_e.set_yticks(y, rows, fontsize=8)
    a_e.invert_yaxis()
    a_e.set_xlabel("energy per sample, nJ (45 nm model, no memory access)", fontsize=8)
    a_e.set_xlim(float(np.min(table["energy_nJ"])) / 4, 1.6 * float(np.max(table["ann_energy_nJ"])))
    a_e.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=2, frameon=False)
    a_r.barh(y, table["mean_rate"], color="C1", alpha=0.8)
    a_r.set_xlabel("mean firing rate", fontsize=8)
    a_r.set_xlim(0, max(0.05, 1.15 * float(np.max(table["mean_rate"]))))
    if title:
        fig.suptitle(title, fontsize=10)
    return fig, ax
