"""The ipywidgets landscape explorer: controls for span, resolution, loss, minimum, view and seed; the default view is
drawn when the explorer is created, later changes when **compute** is pressed."""
from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from .batches import Batches, LossFn
from .plots import VIEWS, _check_view, landscape_figure

__all__ = ["landscape_explorer"]


def _named_inputs(models, losses) -> tuple[Mapping[str, nn.Module], Mapping[str, LossFn]]:
    """A single model or loss becomes a one-entry mapping (``"model"``, the loss's ``__name__``)."""
    if isinstance(models, nn.Module):
        models = {"model": models}
    if callable(losses) and not isinstance(losses, Mapping):
        losses = {getattr(losses, "__name__", "loss"): losses}
    if not models or not losses:
        raise ValueError("landscape_explorer needs at least one model and one loss")
    return models, losses


def _make_controls(w, models, losses, view, span, resolution, seed) -> dict:
    return {
        "model": w.Dropdown(options=list(models), description="minimum"),
        "loss": w.Dropdown(options=list(losses), description="loss"),
        "view": w.ToggleButtons(options=list(VIEWS), value=view, description="view"),
        "span": w.FloatSlider(value=float(span), min=0.05, max=5.0, step=0.05, description="span"),
        "resolution": w.IntSlider(value=int(resolution), min=3, max=51, step=2, description="resolution"),
        "seed": w.IntText(value=int(seed), description="seed"),
    }


def landscape_explorer(models: Mapping[str, nn.Module] | nn.Module, batches: Batches,
                       losses: Mapping[str, LossFn] | LossFn, span: float = 1.0, resolution: int = 11,
                       view: str = "contour", seed: int = 0, compute_now: bool = True):
    """ipywidgets explorer of loss landscapes: range (span), resolution, which loss, which minimum (model),
    1-D / contour / 3-D view and the direction seed. The default view (the first minimum and loss, ``view``,
    ``span``, ``resolution``, ``seed``) is drawn when the explorer is created, so it never shows an empty
    area (``compute_now=False`` skips that). A landscape costs ``resolution^2`` forward passes per batch, so
    nothing is recomputed while the controls move: after changing them, press **compute**. Draws
    ``landscape_figure`` (its static twin) into an ``Output``.

    Returns the widget box (also displayed); ``box.controls`` holds the controls by name, ``box.compute()``
    does what the button does and returns the figure.
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    models, losses = _named_inputs(models, losses)
    _check_view(view)
    controls = _make_controls(w, models, losses, view, span, resolution, seed)
    button = w.Button(description="compute", button_style="primary", icon="refresh")
    status = w.Label(value="change the controls, then press compute (cost: resolution^2 x batches forward passes)")
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
