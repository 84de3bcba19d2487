"""DSR hybrid training (snnlab.hybrid): the ANN twin, the percentile thresholds, the initialisation, and fit."""
import json
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from conftest import small_config
import snnlab.methods
from snnlab import hybrid, train
from snnlab.dsr import DSRIF
from snnlab.dsr_models import build_dsr_model, thresholds
from snnlab.layers import TimeMerged
from snnlab.train import TrainConfig, evaluate, fit


def dsr_model(neuron="if", **kw):
    torch.manual_seed(0)
    return build_dsr_model("tutorial", (1, 8, 8), 10, neuron=neuron, **kw)


def hybrid_config(tmp_path=None, **kw):
    base = dict(method="dsr", model="tutorial", neuron="if", T=4, epochs=2, max_batches=3, lr=1e-2,
                hybrid_ann_epochs=2, hybrid_calib_batches=2)
    base.update(kw)
    return small_config(tmp_path, **base)


def non_threshold_state(model):
    return {k: v for k, v in model.state_dict().items() if not k.endswith(".v_th")}


def same_tensors(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


# ------------------------------------------------------------------------------------------------- the twin
@pytest.mark.parametrize("neuron, tau", [("if", None), ("lif", 1.0), ("lif", 2.0)])
def test_twin_has_the_snn_keys_minus_thresholds_and_computes_relu(neuron, tau):
    snn = dsr_model(neuron, **({} if tau is None else {"tau": tau}))
    twin = hybrid.ann_twin(snn)
    names = set(hybrid.dsr_neurons(snn))
    assert names == {"features.0.1", "features.2.1", "head.neuron"}
    assert set(twin.state_dict()) == set(snn.state_dict()) - {f"{n}.v_th" for n in names}
    assert same_tensors(twin.state_dict(), non_threshold_state(snn))
    assert all(isinstance(twin.get_submodule(n), hybrid.RateReLU) for n in names)
    assert not hybrid.dsr_neurons(twin) and len(hybrid.dsr_neurons(snn)) == 3  # the SNN is left as it was
    scale = 1.0 if tau is None else 1.0 / tau
    z = torch.randn(3, 5, 16, 8, 8)
    assert torch.equal(twin.get_submodule("features.0.1")(z), torch.relu(z) * scale)
    # at T = 1 the output head gives scale * relu(BN(linear(features))) as the class scores, [1, B, classes]
    twin.eval()
    x = torch.randn(1, 7, 1, 8, 8)
    with torch.no_grad():
        out = twin(x)
        expected = torch.relu(twin.head.fc(twin.features(x))) * scale
    assert out.shape == (1, 7, 10) and torch.allclose(out, expected)
    # it trains with DSR's loss (CE of the output) like the SNN
    loss = train.loss_from_config(TrainConfig(method="dsr"))(twin.train()(x), torch.arange(7) % 10)
    loss.backward()
    assert all(p.grad is not None for p in twin.parameters())


def test_twin_needs_dsr_neurons():
    with pytest.raises(ValueError, match="has no DSR neuron"):
        hybrid.ann_twin(nn.Sequential(nn.Linear(2, 2)))


# ------------------------------------------------------------------------------------------------- percentiles
class Tiny(nn.Module):
    """x [T, B, 2] -> linear (fixed weights) -> DSRIF -> linear -> DSRIF (dead: its input is always <= 0)."""

    def __init__(self):
        super().__init__()
        self.lin = TimeMerged(nn.Linear(2, 3))
        self.n1 = DSRIF()
        self.lin2 = TimeMerged(nn.Linear(3, 2))
        self.n2 = DSRIF()
        with torch.no_grad():
            self.lin[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]]))
            self.lin[0].bias.zero_()
            self.lin2[0].weight.fill_(-1.0)
            self.lin2[0].bias.fill_(-0.5)

    def forward(self, x):
        return self.n2(self.lin2(self.n1(self.lin(x))))


def tiny_loader(n=50, batch=8):
    x = torch.tensor(np.random.default_rng(0).normal(size=(n, 2)), dtype=torch.float32)
    ds = torch.utils.data.TensorDataset(x, torch.zeros(n, dtype=torch.long))
    return torch.utils.data.DataLoader(ds, batch_size=batch), x


@pytest.mark.parametrize("fraction", [0.3, 0.5, 0.9, 0.999, 1.0])
def test_percentile_is_dsr_order_statistic_of_post_relu_activations(fraction):
    ann = hybrid.ann_twin(Tiny())
    loader, x = tiny_loader()
    with pytest.warns(UserWarning, match=r"n2 \(100 activations\).*dead layer"):
        p = hybrid.activation_percentiles(ann, loader, T=1, temporal=False, fraction=fraction)
    a = np.sort(np.maximum(x.numpy() @ np.array([[1, 0], [0, 1], [1, -1]]).T, 0).ravel())  # 150 values, zeros too
    assert p["n1"] == pytest.approx(a[min(int(fraction * a.size), a.size - 1)], abs=1e-6)
    assert p["n2"] == 0.0 and set(p) == {"n1", "n2"}
    # T repeats of a static input change nothing
    with pytest.warns(UserWarning):
        assert hybrid.activation_percentiles(ann, loader, T=3, temporal=False, fraction=fraction)["n1"] == \
            pytest.approx(p["n1"], abs=1e-6)


def test_percentile_subsample_is_seeded_and_from_the_data():
    ann = hybrid.ann_twin(Tiny())
    loader, x = tiny_loader(n=400, batch=32)
    a = np.maximum(x.numpy() @ np.array([[1, 0], [0, 1], [1, -1]]).T, 0).ravel()

    def run(seed):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return hybrid.activation_percentiles(ann, loader, 1, False, fraction=0.9, max_values=100,
                                                 generator=torch.Generator().manual_seed(seed))["n1"]

    assert run(1) == run(1)
    values = {run(s) for s in range(6)}
    assert len(values) > 1  # a sample, not the full data
    assert all(np.isclose(a, v, atol=1e-6).any() for v in values)
    assert all(abs(v - np.quantile(a, 0.9)) < 0.5 for v in values)


def test_reservoir_is_a_uniform_sample_without_replacement():
    res = hybrid._Reservoir(10_000, torch.Generator().manual_seed(0))
    stream = torch.arange(100_000, dtype=torch.float32)
    for chunk in stream.split(10_000):
        res.add(chunk)
    s = res.sample()
    assert s.numel() == 10_000 and s.unique().numel() == 10_000 and res.seen == 100_000
    per_batch = torch.bincount((s // 10_000).long(), minlength=10)
    assert (per_batch - 1000).abs().max() < 150, per_batch  # each batch equally represented (sd ~ 28)


def test_percentile_errors():
    ann = hybrid.ann_twin(Tiny())
    loader, _ = tiny_loader()
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\].*got 1.5"):
        hybrid.activation_percentiles(ann, loader, 1, False, fraction=1.5)
    with pytest.raises(ValueError, match="no batches"):
        hybrid.activation_percentiles(ann, [], 1, False)
    with pytest.raises(ValueError, match="no RateReLU"):
        hybrid.activation_percentiles(Tiny(), loader, 1, False)
    with pytest.raises(ValueError, match="max_values must be a positive integer, got 0"):
        hybrid.activation_percentiles(ann, loader, 1, False, max_values=0)


# ------------------------------------------------------------------------------------------------- init
@pytest.mark.parametrize("neuron", ["if", "lif"])
def test_init_copies_every_weight_and_sets_thresholds_above_the_bound(neuron):
    snn = dsr_model(neuron)
    ann = hybrid.ann_twin(snn)
    with torch.no_grad():  # make the ANN differ from the SNN everywhere, BN statistics included
        for t in ann.state_dict().values():
            if t.is_floating_point():
                t.add_(torch.rand_like(t) + 0.5)
            else:
                t.add_(7)
    bound = snn.head.neuron.v_th_lower_bound
    pct = {"features.0.1": 2.5, "features.2.1": 0.0, "head.neuron": bound / 10}
    th = hybrid.thresholds_from_percentiles(snn, pct)
    scale = 1.0 if neuron == "if" else snn.head.neuron.dt  # LIF saturates at v_th / dt: v_th = p * dt (DSR's code)
    assert th == pytest.approx({k: v * scale for k, v in pct.items()})
    assert hybrid.init_snn_from_ann(snn, ann, th) is snn
    assert same_tensors(non_threshold_state(snn), ann.state_dict())
    assert thresholds(snn) == pytest.approx({"features.0.1": 2.5 * scale, "features.2.1": bound,
                                             "head.neuron": bound})


def test_init_errors_name_the_mismatch():
    snn = dsr_model()
    other = hybrid.ann_twin(build_dsr_model("tutorial", (1, 8, 8), 10, neuron="if", channels=(8, 32)))
    with pytest.raises(ValueError, match=r"cannot initialise the SNN from the ANN.*shape mismatch "
                                         r"features.0.0.0.weight \(\(8, 1, 3, 3\) vs \(16, 1, 3, 3\)\)"):
        hybrid.init_snn_from_ann(snn, other, {})
    with pytest.raises(ValueError, match=r"missing \['head.fc.1.bias'"):
        twin = hybrid.ann_twin(snn)
        twin.head.fc[1].affine = False
        del twin.head.fc[1].bias
        hybrid.init_snn_from_ann(snn, twin, {})
    with pytest.raises(ValueError, match=r"thresholds for \['head'\], which are not DSR neurons"):
        hybrid.init_snn_from_ann(snn, hybrid.ann_twin(snn), {"head": 1.0})
    with pytest.raises(ValueError, match="thresholds must be finite numbers >= 0"):
        hybrid.init_snn_from_ann(snn, hybrid.ann_twin(snn), {"head.neuron": float("nan")})


# ------------------------------------------------------------------------------------------------- the point
def test_if_snn_from_a_trained_ann_matches_the_ann_at_large_T(digits):
    """The point of hybrid init: before any SNN training, the IF SNN is as accurate as the ANN at large T."""
    cfg = hybrid_config(epochs=1, max_batches=None, hybrid_ann_epochs=4, hybrid_calib_batches=None,
                        batch_size=64, lr=1e-2)
    snn = train.build_from_config(cfg, digits)
    ann = hybrid.ann_twin(snn)
    fit(hybrid.ann_config(cfg, temporal=False), bundle=digits, model=ann)
    info = hybrid.hybrid_init(snn, ann, cfg, digits)
    assert info["calib_batches"] == 23 and set(info["thresholds"]) == set(info["percentiles"])
    _, test = digits.loaders(256)
    ann_acc = evaluate(ann, test, 1, False)["acc"]
    acc = {T: evaluate(snn, test, T, False)["acc"] for T in (1, 5, 20, 50)}
    fresh = evaluate(train.build_from_config(cfg, digits), test, 50, False)["acc"]
    # measured (CPU, seed 0): ANN 0.989; SNN right after init T=1 0.458, T=5 0.967, T=20 0.989, T=50 0.989;
    # the same SNN untrained 0.100
    assert ann_acc > 0.95
    assert acc[50] >= ann_acc - 0.01 and acc[20] >= ann_acc - 0.02
    assert acc[1] < acc[5] <= acc[50] + 0.005  # the rate's quantisation error shrinks with T
    assert fresh < 0.5


# ------------------------------------------------------------------------------------------------- in fit
@pytest.mark.parametrize("neuron", ["if", "lif"])
def test_hybrid_fit_trains_the_ann_then_starts_the_snn_from_it(tmp_path, digits, neuron):
    class Start(train.Callback):
        def on_fit_start(self, state):
            self.state = {k: v.clone() for k, v in state.model.state_dict().items()}

    kw = dict(neuron=neuron, hybrid_ann_lr=2e-2, hybrid_ann_batch_size=64)
    if neuron == "lif":
        kw["dsr_v_th"] = 0.02
    start = Start()
    hist = fit(hybrid_config(tmp_path, **kw), bundle=digits, callbacks=[start])
    assert [r["epoch"] for r in hist] == [1, 2]
    for f in ("ann/checkpoint.pt", "ann/results.json", "ann/config.json", "hybrid.json", "results.json"):
        assert (tmp_path / f).exists(), f
    acfg = TrainConfig.from_json(tmp_path / "ann" / "config.json")
    assert (acfg.T, acfg.epochs, acfg.lr, acfg.batch_size, acfg.hybrid_ann_epochs) == (1, 2, 2e-2, 64, 0)
    assert "hybrid ANN" in acfg.extra["phase"]
    ann_state = train.load_checkpoint(tmp_path / "ann" / "checkpoint.pt")["model"]
    assert same_tensors({k: v for k, v in start.state.items() if not k.endswith(".v_th")}, ann_state)
    info = json.loads((tmp_path / "hybrid.json").read_text())
    assert {k: float(v) for k, v in start.state.items() if k.endswith(".v_th")} == \
        pytest.approx({f"{k}.v_th": v for k, v in info["thresholds"].items()})
    ann_res = json.loads((tmp_path / "ann" / "results.json").read_text())["final"]
    assert info["ann_test_acc"] == pytest.approx(ann_res["test_acc"])
    assert (info["ann_epochs"], info["ann_T"], info["T"], info["calib_batches"]) == (2, 1, 4, 2)
    assert 0 <= info["snn_init_test_acc"] <= 1 and info["ann"].endswith("ann/checkpoint.pt")
    final = json.loads((tmp_path / "results.json").read_text())["final"]
    assert final["hybrid"] == info and hist.hybrid == info


def test_resume_in_the_snn_phase_is_exact_and_never_retrains_the_ann(tmp_path, digits, monkeypatch):
    full = fit(hybrid_config(tmp_path / "full", epochs=3), bundle=digits)
    part = fit(hybrid_config(tmp_path / "part", epochs=3), bundle=digits, stop_after=1)
    assert len(part) == 1
    ann_ck = (tmp_path / "part" / "ann" / "checkpoint.pt").read_bytes()

    def no_ann_phase(*a, **k):
        raise AssertionError("the ANN phase ran again on resume")

    with monkeypatch.context() as m:
        m.setattr(snnlab.methods.get("hybrid"), "before_training", no_ann_phase)  # the ANN phase, a part's phase
        resumed = fit(hybrid_config(tmp_path / "part", epochs=3, resume=True), bundle=digits)
    assert [r["epoch"] for r in resumed] == [1, 2, 3]
    assert same_tensors(full.model.state_dict(), resumed.model.state_dict())
    drop_path = lambda h: {k: v for k, v in h.items() if k != "ann"}  # noqa: E731
    assert drop_path(resumed.hybrid) == drop_path(full.hybrid)  # kept in the checkpoint
    assert (tmp_path / "part" / "ann" / "checkpoint.pt").read_bytes() == ann_ck
    # stopped between the phases (the ANN done, no SNN checkpoint yet): the ANN is loaded, not trained again
    (tmp_path / "part" / "checkpoint.pt").unlink()
    again = fit(hybrid_config(tmp_path / "part", epochs=3, resume=True), bundle=digits)
    assert train.load_checkpoint(tmp_path / "part" / "ann" / "checkpoint.pt")["epoch"] == 2
    assert same_tensors(full.model.state_dict(), again.model.state_dict())


def test_start_from_a_trained_ann_checkpoint(tmp_path, digits):
    fit(hybrid_config(tmp_path / "a", epochs=1), bundle=digits)
    ck = str(tmp_path / "a" / "ann" / "checkpoint.pt")
    hist = fit(hybrid_config(tmp_path / "b", T=6, epochs=1, hybrid_ann_epochs=0, hybrid_ann_checkpoint=ck),
               bundle=digits)
    assert not (tmp_path / "b" / "ann").exists()
    first = json.loads((tmp_path / "a" / "hybrid.json").read_text())
    assert (hist.hybrid["ann"], hist.hybrid["ann_epochs"], hist.hybrid["T"]) == (ck, None, 6)
    assert hist.hybrid["ann_test_acc"] == pytest.approx(first["ann_test_acc"])
    assert hist.hybrid["thresholds"] == pytest.approx(first["thresholds"])  # same ANN, same calibration
    with pytest.raises(FileNotFoundError, match="hybrid_ann_checkpoint '.*nope.pt' does not exist"):
        fit(hybrid_config(hybrid_ann_epochs=0, hybrid_ann_checkpoint=str(tmp_path / "nope.pt")), bundle=digits)
    fit(small_config(tmp_path / "mlp", epochs=1, max_batches=1), bundle=digits)  # an SDT MLP: not this model
    with pytest.raises(ValueError, match=r"cannot load the ANN from .*missing \[.*unexpected \["):
        fit(hybrid_config(hybrid_ann_epochs=0, hybrid_ann_checkpoint=str(tmp_path / "mlp" / "checkpoint.pt")),
            bundle=digits)


@pytest.mark.parametrize("kw, match", [
    (dict(hybrid_ann_epochs=-1), r"hybrid_ann_epochs must be an integer >= 0 \(0 = no ANN phase\), got -1"),
    (dict(hybrid_ann_epochs=1.5), "hybrid_ann_epochs must be an integer >= 0"),
    (dict(hybrid_percentile=0), r"hybrid_percentile must be in \(0, 1\] .*got 0"),
    (dict(hybrid_percentile=99.9), r"hybrid_percentile must be in \(0, 1\] .*got 99.9"),
    (dict(method="sdt", model="mlp"), "hybrid training .* needs method 'dsr', got method 'sdt'"),
    (dict(hybrid_ann_checkpoint="x.pt"), "give hybrid_ann_epochs .* or hybrid_ann_checkpoint .*, not both"),
    (dict(hybrid_ann_checkpoint=""), "hybrid_ann_checkpoint must be a path"),
    (dict(hybrid_ann_optimizer="rmsprop"), "hybrid_ann_optimizer must be one of 'adam', 'sgd' or None; got 'rmsprop'"),
    (dict(hybrid_ann_lr=0.0), "hybrid_ann_lr must be a finite number > 0 or None, got 0.0"),
    (dict(hybrid_ann_weight_decay=-1.0), "hybrid_ann_weight_decay must be a finite number >= 0 or None"),
    (dict(hybrid_ann_batch_size=0), "hybrid_ann_batch_size must be a positive integer or None, got 0"),
    (dict(hybrid_calib_batches=0), "hybrid_calib_batches must be a positive integer or None, got 0"),
    (dict(hybrid_ann_epochs=0, hybrid_ann_lr=0.1, hybrid_calib_batches=None),
     r"hybrid_ann_lr set but there is no ANN phase to use them \(hybrid_ann_epochs=0\)"),
    (dict(hybrid_ann_epochs=0), "hybrid_calib_batches set but hybrid training is off"),
])
def test_bad_hybrid_values_are_named(kw, match):
    with pytest.raises(ValueError, match=match):
        hybrid_config(**kw).validate()
