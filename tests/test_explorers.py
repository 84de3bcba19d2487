"""snnlab.explorers: the data of the kernel-free page explorers (their drawing is tested in test_docs_site.py)."""
import html
import json
import re

import numpy as np
import pytest
import torch

from snnlab import chi, explorers, widgets
from snnlab.landscape import compare_landscapes
from snnlab.losses import sdt_loss, tet_loss
from snnlab.models import TutorialSNN


def _data_of(page: explorers.PageExplorer) -> dict:
    m = re.search(r'<script type="application/json" class="snnlab-explorer-data">(.*?)</script>', page.to_html(), re.S)
    assert m, "the HTML holds its data in a JSON script tag"
    return json.loads(m.group(1))


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    model = TutorialSNN((1, 8, 8), 10)
    x, y = torch.rand(3, 8, 1, 8, 8) * 3, torch.randint(0, 10, (8,))
    return model, x, y


def test_page_explorer_html_round_trips_its_data_and_escapes_script_ends():
    page = explorers.PageExplorer("chi", {"text": "</script><b>", "v": [1.5, 2]})
    out = page.to_html()
    assert out.startswith('<div class="snnlab-explorer" data-kind="chi">')
    assert out.count("</script>") == 1                     # the payload cannot close the tag early
    assert _data_of(page) == {"text": "</script><b>", "v": [1.5, 2]}
    assert "JupyterLab" in html.unescape(out)              # the fallback note where no script runs
    assert page.size_bytes == len(out.encode()) and page._repr_html_() == out
    with pytest.raises(ValueError, match="kind must be one of 'surrogate', 'chi', 'landscape', got 'widget'"):
        explorers.PageExplorer("widget", {})
    with pytest.raises(ValueError):                        # JSON has no NaN: refused, not written as invalid JSON
        explorers.PageExplorer("chi", {"v": float("nan")}).to_html()


def test_surrogate_page_explorer_input_is_the_widget_input_scaled_by_drive():
    page = explorers.surrogate_page_explorer(shape="atan", width=0.5, drive=0.8, tau=0.3, seed=3)
    data = _data_of(page)
    assert data["shape"] == "atan" and data["shapes"] == ["rectangle", "triangle", "sigmoid", "atan", "gaussian"]
    base = torch.tensor(data["base_input"], dtype=torch.float64)
    for drive in (0.1, 0.8, 1.5):   # neuron_input is linear in drive: the page computes drive * base
        assert torch.equal(drive * base, widgets.neuron_input(60, drive, 3)[:, 0])
    with pytest.raises(ValueError, match="shape must be one of .* got 'box'"):
        explorers.surrogate_page_explorer(shape="box")
    with pytest.raises(ValueError, match=r"width must be a number in \[0.05, 5.0\].* got 9"):
        explorers.surrogate_page_explorer(width=9)


def test_chi_page_explorer_matches_chi_probe_at_every_grid_point(small):
    model, x, y = small
    grid = [[0.01, 0.3], [0.05, 1.0, 4.0]]
    data = _data_of(explorers.chi_page_explorer(model, x, y, grid, bins=12, progress=False))
    assert data["widths"] == grid and len(data["points"]) == 6 and len(data["edges"]) == 13
    assert data["neurons"] == list(chi.get_widths(model))
    for k, (w1, w2) in enumerate([(a, b) for a in grid[0] for b in grid[1]]):   # row-major, as the page indexes it
        res, neuron_chi, m = chi.probe(model, x, y, [w1, w2])
        for entry, (name, layer, _, neuron) in zip(data["points"][k], chi.weight_layers(m)):
            assert entry["chi"] == pytest.approx(res[name], abs=1e-12)
            if neuron:
                assert entry["chi_u"] == pytest.approx(neuron_chi[neuron], abs=1e-12)
            g = layer.weight.grad
            assert entry["zeros"] == int((g == 0).sum()) and entry["numel"] == g.numel()
            assert sum(entry["hist"]) == entry["numel"] - entry["zeros"]     # every non-zero gradient is binned
    with pytest.raises(ValueError, match="one list per spiking layer"):
        explorers.chi_page_explorer(model, x, y, [[0.1]], progress=False)
    with pytest.raises(ValueError, match="positive, finite and increasing"):
        explorers.chi_page_explorer(model, x, y, [[1.0, 0.1], [0.5]], progress=False)
    with pytest.raises(ValueError, match="bins must be an integer >= 2, got 1"):
        explorers.chi_page_explorer(model, x, y, [[0.1], [0.5]], bins=1, progress=False)


def test_landscape_page_explorer_holds_compare_landscapes_surfaces(small):
    model, x, y = small
    models, losses = {"SDT": model}, {"L_SDT": sdt_loss, "L_TET": tet_loss}
    page = explorers.landscape_page_explorer(models, [(x, y)], losses, spans=(0.5,), seeds=(0, 2), resolution=5,
                                             view="3d", progress=False)
    data = _data_of(page)
    assert data["view"] == "3d" and data["spans"] == [0.5] and data["seeds"] == [0, 2]
    assert sorted(data["surfaces"]) == sorted(f"SDT|{ln}|0.5|{s}" for ln in losses for s in (0, 2))
    ref = compare_landscapes(models, [(x, y)], losses, span=0.5, resolution=5, seed=2, progress=False)
    for ln in losses:
        np.testing.assert_allclose(data["surfaces"][f"SDT|{ln}|0.5|2"], ref["surfaces"][("SDT", ln)], rtol=1e-4)
    with pytest.raises(ValueError, match="resolution must be an odd integer >= 3 .* got 4"):
        explorers.landscape_page_explorer(models, [(x, y)], losses, resolution=4)
    with pytest.raises(ValueError, match="view must be one of .* got 'top'"):
        explorers.landscape_page_explorer(models, [(x, y)], losses, view="top")
    with pytest.raises(ValueError, match="at least one span and one seed"):
        explorers.landscape_page_explorer(models, [(x, y)], losses, seeds=())
