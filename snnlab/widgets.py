"""Interactive explorers (ipywidgets). Each has a *static twin*: a plain function that draws the same
figure for given values, used in printed notes, in CI and wherever widgets do not render.
"""
from __future__ import annotations

import numpy as np
import torch

from . import plot as _plot
from . import surrogate as _surrogate
from .neurons import LIF

__all__ = ["surrogate_figure", "surrogate_explorer", "neuron_input"]


def neuron_input(T: int = 60, drive: float = 0.6, seed: int = 0) -> torch.Tensor:
    """A reproducible input current for one neuron: ``drive`` times a smooth random signal, shape ``[T, 1]``."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(T + 8, generator=g, dtype=torch.float64)
    smooth = torch.nn.functional.avg_pool1d(noise.view(1, 1, -1), 9, stride=1).view(-1)[:T]
    return (drive * (1 + 1.5 * smooth)).view(T, 1)


def surrogate_figure(shape: str = "triangle", width: float = 1.0, drive: float = 0.6, tau: float = 0.5,
                     v_th: float = 1.0, T: int = 60, seed: int = 0):
    """Static twin of ``surrogate_explorer``: the derivative ``g`` (left) and a LIF neuron's membrane trace
    with the gradient ``g(u[t] - v_th)`` each step receives (right). Returns ``(fig, axes)``."""
    import matplotlib.pyplot as plt

    _plot.style()
    sg = _surrogate.get(shape, width)
    fig = plt.figure(figsize=(11, 4.2))
    gs = fig.add_gridspec(2, 2, width_ratios=[1, 1.6])
    ax_g = fig.add_subplot(gs[:, 0])
    x = torch.linspace(-3, 3, 601, dtype=torch.float64)
    ax_g.plot(x.numpy(), sg.grad(x).numpy(), color=_plot.COLORS[2])
    ax_g.set_title(f"{shape}: g(x), width (FWHM) = {width:g}")
    ax_g.set_xlabel("x = u - v_th")
    r = sg.effective_domain()
    ax_g.axvspan(-min(r, 3), min(r, 3), color=_plot.COLORS[2], alpha=0.1)
    spk, mem = LIF(tau=tau, v_th=v_th, surrogate=sg).simulate(neuron_input(T, drive, seed))
    axes = [fig.add_subplot(gs[0, 1])]
    axes.append(fig.add_subplot(gs[1, 1], sharex=axes[0]))
    _plot.neuron_gradient(mem[:, 0], sg, v_th, axes=axes)
    for ts in np.nonzero(spk[:, 0].numpy())[0]:
        axes[0].axvline(ts, color=_plot.COLORS[1], alpha=0.3, lw=2)
    fig.tight_layout()
    return fig, [ax_g, *axes]


def surrogate_explorer(shape: str = "triangle", width: float = 1.0, drive: float = 0.6, tau: float = 0.5,
                       show: bool = True):
    """Sliders for the surrogate shape, width, input drive and leak; redraws ``surrogate_figure``.

    Displays the widget (``show=True``, returns None) or returns it undisplayed (``show=False``).
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    controls = {
        "shape": w.Dropdown(options=list(_surrogate.FAMILY), value=shape, description="shape"),
        "width": w.FloatLogSlider(value=width, base=10, min=-1.3, max=0.7, step=0.02, description="width"),
        "drive": w.FloatSlider(value=drive, min=0.1, max=1.5, step=0.05, description="drive"),
        "tau": w.FloatSlider(value=tau, min=0.05, max=1.0, step=0.05, description="tau"),
    }
    out = w.Output()

    def redraw(**kw):
        with out:
            out.clear_output(wait=True)
            fig, _ = surrogate_figure(**kw)
            display(fig)
            plt.close(fig)

    ui = w.interactive_output(redraw, controls)
    box = w.VBox([w.HBox(list(controls.values())[:2]), w.HBox(list(controls.values())[2:]), out, ui])
    if show:
        display(box)
        return None
    return box
