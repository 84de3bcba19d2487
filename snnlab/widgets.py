"""Interactive explorers (ipywidgets). Each has a *static twin*: a plain function that draws the same
figure for given values, used in printed notes, in CI and wherever widgets do not render.
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from . import plot as _plot
from . import surrogate as _surrogate
from .neurons import LIF

__all__ = ["surrogate_figure", "surrogate_explorer", "neuron_input", "chi_figure", "chi_explorer"]


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


def chi_figure(model, x: torch.Tensor, y: torch.Tensor, widths=None, loss_fn=None, bins: int = 40):
    """Static twin of ``chi_explorer``: one backward pass of a copy of ``model`` on ``(x, y)`` at ``widths``
    (one per spiking layer, or None for the model's own), and per weight layer the histogram of
    ``log10 |dL/dW|`` over the non-zero entries, titled with the layer's chi, its neuron-level chi and width
    and the count of exact zeros. Returns ``(fig, axes)``."""
    import matplotlib.pyplot as plt

    from . import chi as _chi
    from .losses import sdt_loss

    _plot.style()
    res, neuron_chi, m = _chi.probe(model, x, y, widths, loss_fn=loss_fn or sdt_loss)
    layers = _chi.weight_layers(m)
    fig, axes = plt.subplots(1, len(layers), figsize=(4.3 * len(layers), 3), squeeze=False)
    axes = list(axes[0])
    widths_now = _chi.get_widths(m)
    for ax, (name, layer, _, neuron_name) in zip(axes, layers):
        g = layer.weight.grad.detach().abs().flatten().float().cpu()
        if (g > 0).any():
            ax.hist(torch.log10(g[g > 0]).numpy(), bins=bins, color=_plot.COLORS[0])
        extra = (f", chi_u = {neuron_chi[neuron_name]:.3f} (w = {widths_now[neuron_name]:.3g})"
                 if neuron_name else "")
        ax.set_title(f"{name}: chi = {res[name]:.2f}{extra}\n{int((g == 0).sum())} of {g.numel()} gradients are 0",
                     fontsize=9)
        ax.set_xlabel("log10 |dL/dW|")
        ax.set_ylabel("weights")
    fig.tight_layout()
    return fig, axes


def chi_explorer(model, x: torch.Tensor, y: torch.Tensor, widths=None, loss_fn=None, show: bool = True):
    """One log-scale width slider per spiking layer of ``model``; redraws ``chi_figure`` on ``(x, y)``.

    Displays the widget (``show=True``, returns None) or returns it undisplayed (``show=False``).
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    from . import chi as _chi

    start = _chi.get_widths(model)
    if widths is not None:
        probe_copy = copy.deepcopy(model)
        _chi.set_widths(probe_copy, widths)
        start = _chi.get_widths(probe_copy)
    if not start:
        raise ValueError("the model has no spiking layers (snnlab.neurons.LIF/IF): nothing to explore")
    names = list(start)
    controls = {f"w{i}": w.FloatLogSlider(value=start[n], base=10, min=-3.5, max=0.6, step=0.05,
                                          continuous_update=False, description=f"w {n}")
                for i, n in enumerate(names)}
    out = w.Output()

    def redraw(**kw):
        with out:
            out.clear_output(wait=True)
            fig, _ = chi_figure(model, x, y, [kw[f"w{i}"] for i in range(len(names))], loss_fn=loss_fn)
            display(fig)
            plt.close(fig)

    ui = w.interactive_output(redraw, controls)
    box = w.VBox([w.HBox(list(controls.values())), out, ui])
    if show:
        display(box)
        return None
    return box
