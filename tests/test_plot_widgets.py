"""Figures and the static twins of the widgets draw what they say (smoke + content checks)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from snnlab import plot, widgets  # noqa: E402
from snnlab.neurons import LIF  # noqa: E402
from snnlab.surrogate import Triangle  # noqa: E402


def test_raster_and_membrane():
    spk, mem = LIF().simulate(torch.rand(20, 1, 7) * 1.5)
    fig, ax = plot.raster(spk[:, 0])
    assert len(ax.collections[0].get_offsets()) == int(spk.sum())
    fig2, ax2 = plot.membrane(mem[:, 0, 0], spk[:, 0, 0], v_th=1.0)
    assert np.allclose(ax2.lines[0].get_ydata(), mem[:, 0, 0].numpy())
    plt.close("all")


def test_surrogates_plot_has_one_curve_per_shape():
    fig, axes = plot.surrogates(["triangle", "atan"], width=0.5)
    assert len(axes[1].lines) == 2
    for line in axes[0].lines[1:]:  # the smooth steps pass through 1/2 at 0 (integrated from -inf)
        x, y = line.get_xdata(), line.get_ydata()
        assert abs(np.interp(0.0, x, y) - 0.5) < 1e-3
    plt.close("all")


def test_neuron_gradient_matches_surrogate():
    mem = torch.linspace(0, 2, 21)
    fig, axes = plot.neuron_gradient(mem, Triangle(1.0))
    heights = [p.get_height() for p in axes[1].patches]
    assert np.allclose(heights, Triangle(1.0).grad(mem.double() - 1).numpy())
    plt.close("all")


def test_surrogate_figure_static_twin():
    fig, axes = widgets.surrogate_figure("gaussian", 0.5, drive=0.8)
    assert len(axes) == 3 and "gaussian" in axes[0].get_title()
    plt.close("all")


def test_surrogate_explorer_builds_widgets():
    box = widgets.surrogate_explorer("atan", 1.0, show=False)
    assert box.children and "Dropdown" in type(box.children[0].children[0]).__name__
    plt.close("all")


def test_training_curves_and_event_frames():
    hist = {"a": [{"epoch": 1, "train_loss": 1.0, "test_acc": 0.5}, {"epoch": 2, "train_loss": 0.5, "test_acc": 0.8}]}
    fig, axes = plot.training_curves(hist)
    assert list(axes[1].lines[0].get_ydata()) == [0.5, 0.8]
    frames = torch.zeros(3, 2, 6, 6)
    frames[1, 0, 2, 2] = 3
    fig, axes = plot.event_frames(frames)
    img = axes[1].images[0].get_array()
    assert img[2, 2, 0] == 1 and img[2, 2, 1] == 0  # ON event drawn red
    plt.close("all")


def test_chi_figure_titles_agree_with_chi_probe():
    from snnlab import chi
    from snnlab.models import TutorialSNN

    torch.manual_seed(0)
    model = TutorialSNN((1, 8, 8), 10)
    x, y = torch.rand(3, 8, 1, 8, 8) * 3, torch.randint(0, 10, (8,))
    fig, axes = widgets.chi_figure(model, x, y, [0.1, 1.0])
    res, neuron_chi, _ = chi.probe(model, x, y, [0.1, 1.0])
    assert len(axes) == len(res)
    for ax, name in zip(axes, res):
        assert ax.get_title().startswith(f"{name}: chi = {res[name]:.2f}")
    assert f"chi_u = {neuron_chi['features.0.1']:.3f} (w = 0.1)" in axes[0].get_title()
    plt.close(fig)
    box = widgets.chi_explorer(model, x, y, show=False)
    assert len(box.children[0].children) == 2            # one width slider per spiking layer
