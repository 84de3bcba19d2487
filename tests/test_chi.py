"""chi: counted by hand on models whose zero-gradient entries are known by construction; the controller."""
import copy

import pytest
import torch
from torch import nn

import snnlab
from conftest import small_config
from snnlab import chi, layers
from snnlab.neurons import LIF
from snnlab.surrogate import Gaussian, Triangle
from snnlab.train import TrainConfig, fit


class TwoLayer(nn.Module):
    """x -> Linear(4, 3) -> LIF -> Linear(3, 2) readout, on [T, B, 4]."""

    def __init__(self, sg):
        super().__init__()
        self.fc1 = layers.TimeMerged(nn.Linear(4, 3, bias=False))
        self.lif = LIF(tau=0.5, v_th=1.0, surrogate=sg)
        self.fc2 = layers.TimeMerged(nn.Linear(3, 2, bias=False))

    def forward(self, x):
        return self.fc2(self.lif(self.fc1(x)))


def test_chi_counts_known_zero_entries():
    """Input feature 3 is always 0 -> its column of dW1 is 0; neuron 2 is far below threshold -> its row is 0."""
    torch.manual_seed(0)
    m = TwoLayer(Triangle(1.0))
    with torch.no_grad():
        m.fc1[0].weight.copy_(torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.4, 0.3, 0.6, 0.1], [-5.0, -5.0, -5.0, 1.0]]))
        m.fc2[0].weight.fill_(1.0)
    x = torch.rand(6, 8, 4) * 0.5 + 0.5
    x[..., 3] = 0
    m(x).pow(2).sum().backward()
    # membrane of neuron 2 <= -5*1.5... far outside the triangle's support: its gradient row is exactly 0
    r = chi.measure(m)
    g1 = m.fc1[0].weight.grad
    assert (g1[:, 3] == 0).all() and (g1[2] == 0).all()
    expected_fc1 = 6 / 12  # rows 0,1 x columns 0,1,2 are non-zero
    assert (g1[:2, :3] != 0).all()
    assert r["fc1.0"] == pytest.approx(expected_fc1)
    # readout: dW2[c, j] = sum dL/dO_c * s_j -> zero for the silent neuron 2 (count by hand)
    g2 = m.fc2[0].weight.grad
    assert r["fc2.0"] == pytest.approx(float((g2 != 0).sum()) / 6)
    assert r.tol == {"fc1.0": 0.0, "fc2.0": 0.0}
    assert r.total == pytest.approx((r["fc1.0"] * 12 + r["fc2.0"] * 6) / 18)


def test_infinite_support_uses_relative_tolerance():
    torch.manual_seed(0)
    m = TwoLayer(Gaussian(0.2))
    with torch.no_grad():
        m.fc1[0].weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 30.0, 0]]))
    x = torch.full((3, 2, 4), 0.99)  # neuron 0, 1 near threshold; neuron 2 at u = 29.7: g ~ exp(-huge) ~ 0
    m(x).sum().backward()
    g = m.fc1[0].weight.grad
    strict = chi.measure(m, tol=0.0)
    relaxed = chi.measure(m, tol=1e-3)
    assert relaxed.tol["fc1.0"] == 1e-3 and strict.tol["fc1.0"] == 0.0
    by_hand = float((g.abs() > 1e-3 * g.abs().max()).sum()) / g.numel()
    assert relaxed["fc1.0"] == pytest.approx(by_hand) and by_hand == pytest.approx(8 / 12)


def test_conv_model_counts_by_hand():
    torch.manual_seed(1)
    m = snnlab.models.TutorialSNN((1, 8, 8), 10, channels=(4, 6))
    x = torch.rand(3, 5, 1, 8, 8) * 2
    snnlab.losses.sdt_loss(m(x), torch.randint(0, 10, (5,))).backward()
    r = chi.measure(m)
    for name, layer, neuron, _ in chi.weight_layers(m):
        g = layer.weight.grad
        assert r[name] == pytest.approx(float((g != 0).sum()) / g.numel())
    assert [n for n, *_ in chi.weight_layers(m)] == ["features.0.0.0", "features.2.0.0", "readout.1"]
    assert [nn_ for *_, nn_ in chi.weight_layers(m)] == ["features.0.1", "features.2.1", None]


def test_chi_grows_with_width():
    torch.manual_seed(2)
    m = snnlab.models.TutorialSNN((1, 8, 8), 10, channels=(4, 6))
    x, y = torch.rand(4, 16, 1, 8, 8) * 2, torch.randint(0, 10, (16,))
    values, domain = [], []
    for w in (0.001, 0.05, 0.5, 4.0):
        chi.set_widths(m, [w, w])
        m.zero_grad()
        with chi.recording(m):
            snnlab.losses.sdt_loss(m(x), y).backward()
            domain.append(chi.neuron_domain_fraction(m)["features.2.1"])
        values.append(chi.measure(m)["features.2.0.0"])
    # the weight chi of a conv saturates (a weight is shared by every position and step) ...
    assert values == sorted(values) and values[0] < 1.0 and values[-1] == 1.0
    # ... while the neuron-level share grows strictly with the width
    assert domain == sorted(domain) and len(set(domain)) == 4


def test_neuron_domain_fraction_by_hand():
    m = TwoLayer(Triangle(0.5))
    x = torch.rand(5, 4, 4)
    with chi.recording(m) as neurons:
        m(x)
        mem = neurons[0].last_mem.clone()
        frac = chi.neuron_domain_fraction(m)
    assert frac["lif"] == pytest.approx(float(((mem - 1).abs() < 0.5).float().mean()))
    assert neurons[0].last_mem is None and neurons[0].record is False
    with pytest.raises(ValueError, match="no recorded membrane"):
        chi.neuron_domain_fraction(m)


def test_measure_without_backward():
    with pytest.raises(ValueError, match="call loss.backward"):
        chi.measure(TwoLayer(Triangle()))


def test_policy_sharpens_above_target_and_widens_below():
    p = chi.multiplicative_policy(0.5, step=2.0)
    assert p("l", 0.9, 1.0, 1) == 0.5 and p("l", 0.1, 1.0, 1) == 2.0
    with pytest.raises(ValueError, match="chi target must be in"):
        chi.multiplicative_policy(1.5)


@pytest.mark.parametrize("kw, match", [(dict(every=0), "every"), (dict(w_min=2, w_max=1), "w_min"),
                                        (dict(tol=-1), "tol"), (dict(signal="grads"), "signal must be")])
def test_controller_bad_args(kw, match):
    with pytest.raises(ValueError, match=match):
        chi.ChiController(**kw)


def small(tmp_path=None, **kw):
    return small_config(tmp_path, **{"model": "tutorial", "epochs": 2, **kw})


def test_controller_in_training_logs_and_moves_widths(tmp_path, digits):
    hist = fit(small(tmp_path, chi_target=0.99, chi_every=2, width=1.0), bundle=digits)
    ctrl = hist.callbacks[-1]
    assert isinstance(ctrl, chi.ChiController)
    assert len(ctrl.history) == 4 * 2  # 8 steps, every 2 -> 4 measurements x 2 layers
    # target 0.99 is above what chi reaches here, so every measurement widens (x 1.1)
    assert all(r["new_width"] == pytest.approx(min(r["width"] * 1.1, 4.0)) for r in ctrl.history if r["chi"] <= 0.99)
    assert "chi/features.0.0.0" in hist.last and "width/features.0.1" in hist.last
    assert (tmp_path / "chi.csv").read_text().startswith("step,epoch,layer,neuron,chi,chi_weights,width,new_width")
    # the logged neuron chi is the share of membranes inside the domain: in [0, 1], below 1 for width <= 4
    assert all(0 < r["chi"] < 1 for r in ctrl.history)
    widths = chi.get_widths(hist.model)
    assert list(widths.values()) == [r["new_width"] for r in ctrl.history[-2:]]


def test_controller_resume_is_exact(tmp_path, digits):
    cfg = dict(chi_target=0.3, chi_every=1)
    full = fit(small(tmp_path / "a", **cfg), bundle=digits)
    fit(small(tmp_path / "b", **cfg), bundle=digits, stop_after=1)
    res = fit(small(tmp_path / "b", resume=True, **cfg), bundle=digits)
    assert chi.get_widths(full.model) == chi.get_widths(res.model)
    sa, sb = full.model.state_dict(), res.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_disabled_controller_is_absent(digits):
    hist = fit(small(), bundle=digits)
    assert hist.callbacks == [] and not any(k.startswith("chi/") for k in hist.last)


def test_per_layer_widths_and_errors():
    m = snnlab.train.build_from_config(TrainConfig(widths=[0.3, 2.0]), snnlab.data.load("digits"))
    assert list(chi.get_widths(m).values()) == [0.3, 2.0]
    with pytest.raises(ValueError, match="got 3 widths for 2 spiking layers"):
        chi.set_widths(m, [1, 1, 1])
    with pytest.raises(ValueError, match="every width must be a finite number > 0, got -1"):
        TrainConfig(widths=[1.0, -1]).validate()
    with pytest.raises(ValueError, match="chi_target must be in \\(0, 1\\), got 1.5"):
        TrainConfig(chi_target=1.5).validate()


def test_weight_signal_controller_sharpens_when_chi_saturates(digits):
    hist = fit(small(chi_target=0.5, chi_every=1, chi_signal="weights", epochs=1), bundle=digits)
    ctrl = hist.callbacks[-1]
    assert all(r["chi"] == r["chi_weights"] for r in ctrl.history)
    assert all(r["new_width"] < r["width"] or r["width"] == 0.05 for r in ctrl.history if r["chi"] > 0.5)


def _tiny_conv_batch():
    torch.manual_seed(0)
    model = snnlab.models.TutorialSNN((1, 8, 8), 10)
    x = torch.rand(3, 8, 1, 8, 8) * 3
    y = torch.randint(0, 10, (8,))
    return model, x, y


def test_probe_uses_a_copy_at_the_given_widths_and_matches_a_manual_pass():
    model, x, y = _tiny_conv_batch()
    before = chi.get_widths(model)
    res, neuron_chi, copy_ = chi.probe(model, x, y, [0.2, 0.7])
    assert chi.get_widths(model) == before                      # the model itself is untouched
    assert all(p.grad is None for p in model.parameters())
    assert list(chi.get_widths(copy_).values()) == pytest.approx([0.2, 0.7])
    manual = copy.deepcopy(model)                               # the same pass written out
    chi.set_widths(manual, [0.2, 0.7])
    with chi.recording(manual):
        snnlab.losses.sdt_loss(manual(x), y).backward()
        expected_neurons = chi.neuron_domain_fraction(manual)
    assert dict(res) == dict(chi.measure(manual))
    assert neuron_chi == expected_neurons
    for a, b in zip(copy_.parameters(), manual.parameters()):
        assert torch.equal(a.grad, b.grad)


def test_probe_neuron_chi_grows_with_width():
    model, x, y = _tiny_conv_batch()
    narrow = chi.probe(model, x, y, [0.05, 0.05])[1]
    wide = chi.probe(model, x, y, [3.0, 3.0])[1]
    assert all(wide[k] > narrow[k] for k in narrow)


def test_controller_overhead_returns_windows_and_checks_arguments():
    model, x, y = _tiny_conv_batch()
    out = chi.controller_overhead(model, x, y, {"none": None, "every=1": chi.ChiController(target=0.4, every=1)},
                                  steps_per_window=2, windows=3)
    assert set(out) == {"none", "every=1"}
    assert all(len(v) == 3 and all(t > 0 for t in v) for v in out.values())
    with pytest.raises(ValueError, match="windows must be a positive integer, got 0"):
        chi.controller_overhead(model, x, y, {"none": None}, windows=0)
    with pytest.raises(ValueError, match="controllers is empty"):
        chi.controller_overhead(model, x, y, {})
