"""Explorers that need no kernel: the notebook computes their data once, the page draws it.

The ipywidgets explorers of ``snnlab.widgets`` and ``snnlab.landscape`` recompute their figure in Python every
time a control moves, so they only work beside a running kernel (JupyterLab). The explorers here are their
*page twins*: a notebook cell returns one of them, its output (``text/html``) is a ``<div>`` holding the data as
JSON, and the documentation site's script (``docs/_static/snnlab-explorers.js``) draws it with controls:

* ``surrogate_page_explorer``: the surrogate shapes and the LIF trace are closed forms and a few lines, so the page
  computes them itself (a JavaScript port of ``snnlab.surrogate`` and ``snnlab.neurons.LIF``, checked against them
  on a grid by ``tests/test_docs_site.py``); the data is only the input current's random part.
* ``chi_page_explorer``: chi and the gradient histograms of every weight layer, precomputed on a grid of widths
  (one axis per spiking layer); moving a slider swaps in the values of the nearest grid point.
* ``landscape_page_explorer``: loss surfaces of each minimum under each loss for a few spans and direction seeds;
  the page draws the 1-D slice, a contour map or a 3-D wireframe of the one selected.

In JupyterLab (where a notebook's HTML output runs no script) the output shows a one-line note instead; there the
ipywidgets explorers stay the interactive ones.
"""
from __future__ import annotations

import html
import itertools
import json
import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from . import chi as _chi
from . import surrogate as _surrogate
from .losses import sdt_loss

__all__ = ["PageExplorer", "surrogate_page_explorer", "chi_page_explorer", "landscape_page_explorer", "KINDS"]

KINDS = ("surrogate", "chi", "landscape")

_NOTE = ("Kernel-free {kind} explorer: its controls work on the documentation site (<code>make docs</code>), "
         "where the page draws it from the data stored in this output. In JupyterLab use the ipywidgets explorer "
         "above.")


class PageExplorer:
    """One page explorer: its ``kind`` (one of ``KINDS``) and its JSON-serialisable ``data``.

    Displayed in a notebook, it becomes ``text/html``: ``<div class="snnlab-explorer" data-kind=...>`` with the
    data in a ``<script type="application/json">`` and a fallback note. ``size_bytes`` is the size of that HTML.
    """

    def __init__(self, kind: str, data: Mapping):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(map(repr, KINDS))}, got {kind!r}")
        self.kind = kind
        self.data = dict(data)

    def to_html(self) -> str:
        payload = json.dumps(self.data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
        return (f'<div class="snnlab-explorer" data-kind="{self.kind}">'
                f'<script type="application/json" class="snnlab-explorer-data">{payload}</script>'
                f'<p class="snnlab-explorer-note">{_NOTE.format(kind=html.escape(self.kind))}</p></div>')

    @property
    def size_bytes(self) -> int:
        return len(self.to_html().encode())

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        return f"PageExplorer(kind={self.kind!r}, {self.size_bytes / 1024:.1f} KiB of data)"


def _round(values, digits: int = 6) -> list:
    """Floats with ``digits`` significant digits, as nested lists (JSON has no NaN: a non-finite value raises)."""
    arr = np.asarray(values, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise ValueError("a page explorer's data must be finite; got NaN or inf")
    return np.vectorize(lambda v: float(f"{v:.{digits}g}"), otypes=[float])(arr).tolist() if arr.size else []


def surrogate_page_explorer(shape: str = "triangle", width: float = 1.0, drive: float = 0.6, tau: float = 0.5,
                            v_th: float = 1.0, T: int = 60, seed: int = 0) -> PageExplorer:
    """The page twin of ``widgets.surrogate_explorer`` (same controls, ranges and starting values).

    The data is the input current at ``drive = 1`` (``widgets.neuron_input(T, 1.0, seed)``, which is linear in
    ``drive``), stored at full precision so that the page's LIF trace matches ``snnlab.neurons.LIF`` exactly.
    """
    from .widgets import neuron_input

    if shape not in _surrogate.FAMILY:
        raise ValueError(f"shape must be one of {', '.join(map(repr, _surrogate.FAMILY))}, got {shape!r}")
    for name, value, lo, hi in (("width", width, 0.05, 5.0), ("drive", drive, 0.1, 1.5), ("tau", tau, 0.05, 1.0)):
        if not (isinstance(value, (int, float)) and lo <= value <= hi):
            raise ValueError(f"{name} must be a number in [{lo}, {hi}] (the slider's range), got {value!r}")
    base = neuron_input(T, 1.0, seed)[:, 0].tolist()
    return PageExplorer("surrogate", {
        "shapes": list(_surrogate.FAMILY), "shape": shape, "width": float(width), "drive": float(drive),
        "tau": float(tau), "v_th": float(v_th), "base_input": base, "seed": int(seed),
        "ranges": {"log10_width": [-1.3, 0.7, 0.02], "drive": [0.1, 1.5, 0.05], "tau": [0.05, 1.0, 0.05]},
    })


def _width_grid(widths_per_layer, names: Sequence[str]) -> list[list[float]]:
    if widths_per_layer is None:
        return [np.round(np.logspace(-3.5, 0.5, 9), 6).tolist() for _ in names]
    grid = [list(map(float, w)) for w in widths_per_layer]
    if len(grid) != len(names):
        raise ValueError(f"widths_per_layer needs one list per spiking layer ({len(names)}: {names}), "
                         f"got {len(grid)}")
    for name, ws in zip(names, grid):
        if not ws or any(not math.isfinite(w) or w <= 0 for w in ws) or ws != sorted(set(ws)):
            raise ValueError(f"the widths of layer {name!r} must be positive, finite and increasing, got {ws}")
    return grid


def chi_page_explorer(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, widths_per_layer=None,
                      loss_fn=None, bins: int = 40, progress: bool = True) -> PageExplorer:
    """The page twin of ``widgets.chi_explorer``: ``chi.probe`` at every point of a grid of widths.

    ``widths_per_layer``: one increasing list of widths per spiking layer (forward order); default 9 log-spaced
    widths from 10^-3.5 to 10^0.5 each (81 probes for two layers). For every grid point and weight layer the data
    holds chi, the layer's neuron-level chi, the count of exact zeros and the histogram of ``log10 |dL/dW|`` over
    the non-zero entries, on bin edges shared by all grid points (so that histograms compare).
    """
    from tqdm.auto import tqdm

    names = list(_chi.get_widths(model))
    if not names:
        raise ValueError("the model has no spiking layers (snnlab.neurons.LIF/IF): nothing to explore")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
    grid = _width_grid(widths_per_layer, names)
    points, logs = [], []
    for widths in tqdm(list(itertools.product(*grid)), desc="chi grid", disable=not progress):
        res, neuron_chi, m = _chi.probe(model, x, y, list(widths), loss_fn=loss_fn or sdt_loss)
        layers = _chi.weight_layers(m)
        entry = []
        for lname, layer, _, neuron_name in layers:
            g = layer.weight.grad.detach().abs().flatten().double().cpu()
            logs.append(torch.log10(g[g > 0]).numpy())
            chi_u = float(neuron_chi[neuron_name]) if neuron_name else None
            entry.append({"chi": float(res[lname]), "chi_u": chi_u, "zeros": int((g == 0).sum()),
                          "numel": int(g.numel())})
        points.append(entry)
    finite = [v for v in logs if v.size]
    lo, hi = (min(float(v.min()) for v in finite), max(float(v.max()) for v in finite)) if finite else (-1.0, 0.0)
    edges = np.linspace(math.floor(lo), math.ceil(hi), bins + 1)
    k = 0
    for entry in points:
        for e in entry:
            e["hist"] = np.histogram(logs[k], bins=edges)[0].tolist()
            k += 1
    layer_info = [{"name": lname, "neuron": neuron_name or None} for lname, _, _, neuron_name in layers]
    return PageExplorer("chi", {
        "neurons": names, "widths": grid, "layers": layer_info, "edges": _round(edges), "points": points,
        "start": [min(range(len(ws)), key=lambda i, w=w: abs(math.log(ws[i]) - math.log(w)))
                  for ws, w in zip(grid, _chi.get_widths(model).values())],
        "batch": int(x.shape[1]),
    })


def landscape_page_explorer(models: Mapping[str, torch.nn.Module], batches, losses: Mapping, spans=(0.5, 1.0),
                            seeds=(0, 1), resolution: int = 21, view: str = "contour",
                            progress: bool = True) -> PageExplorer:
    """The page twin of ``landscape.landscape_explorer``: ``compare_landscapes`` for every span and seed.

    One grid per (span, seed) holds every (minimum, loss) surface, all losses from the same forward passes
    (``len(spans) * len(seeds) * len(models) * resolution^2`` evaluations of the batches). The page draws the
    selected surface as the 1-D slice along ``d1`` (the ``beta = 0`` row, so ``resolution`` must be odd), a
    contour map or a 3-D wireframe. It opens drawn, at ``view``, the last minimum and loss (TET's under its own
    loss, in the notebook's order), the middle span and the first seed.
    """
    from .landscape import VIEWS, compare_landscapes

    if view not in VIEWS:
        raise ValueError(f"view must be one of {', '.join(map(repr, VIEWS))}, got {view!r}")
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 3 or resolution % 2 == 0:
        raise ValueError(f"resolution must be an odd integer >= 3 (the 1-D view is the middle row), got {resolution!r}")
    spans = [float(s) for s in spans]
    seeds = [int(s) for s in seeds]
    if not spans or not seeds:
        raise ValueError("landscape_page_explorer needs at least one span and one seed")
    surfaces, centers = {}, {}
    for span, seed in itertools.product(spans, seeds):
        res = compare_landscapes(models, batches, losses, span=span, resolution=resolution, seed=seed,
                                 progress=progress)
        for (mname, lname), Z in res["surfaces"].items():
            surfaces[f"{mname}|{lname}|{span:g}|{seed}"] = _round(Z, 5)
            centers[f"{mname}|{lname}"] = float(res["center"][(mname, lname)])
    return PageExplorer("landscape", {
        "models": list(models), "losses": list(losses), "spans": spans, "seeds": seeds,
        "resolution": int(resolution), "views": list(VIEWS), "view": view, "surfaces": surfaces,
        "centers": centers,
        "start": {"model": list(models)[-1], "loss": list(losses)[-1], "span": spans[len(spans) // 2],
                  "seed": seeds[0]},
    })
