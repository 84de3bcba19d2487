"""Trainer: config validation, files, exact resume, repeatability, NaN handling, atomic checkpoints."""
import json

import pytest
import torch
from torch import nn

import snnlab
from conftest import small_config
from snnlab import train
from snnlab.train import NonFiniteLossError, TrainConfig, fit


small = small_config


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_fit_writes_files_and_learns(tmp_path, digits):
    cfg = small(tmp_path, epochs=4, max_batches=None, model="tutorial", lr=1e-2)
    hist = fit(cfg, bundle=digits)
    assert [r["epoch"] for r in hist] == [1, 2, 3, 4]
    assert hist.last["test_acc"] > 0.6  # 10 classes: chance is 0.1
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    for f in ("config.json", "metrics.csv", "checkpoint.pt", "results.json"):
        assert (tmp_path / f).exists(), f
    assert TrainConfig.from_json(tmp_path / "config.json") == cfg
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,T,T_epochs,train_loss,train_acc,test_loss,test_acc") and len(lines) == 5
    assert [r["T_epochs"] for r in hist] == [2, 4, 6, 8]
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["final"]["test_acc"] == pytest.approx(hist.last["test_acc"])
    assert len(res["final"]["acc_per_step"]) == cfg.T
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_same_seed_repeats_exactly(digits):
    h1, h2 = fit(small(), bundle=digits), fit(small(), bundle=digits)
    assert list(h1) != [] and [r["train_loss"] for r in h1] == [r["train_loss"] for r in h2]
    assert same_weights(h1.model.state_dict(), h2.model.state_dict())
    h3 = fit(small(seed=1), bundle=digits)
    assert not same_weights(h1.model.state_dict(), h3.model.state_dict())


def test_resume_ends_with_same_weights_as_uninterrupted(tmp_path, digits):
    full = fit(small(tmp_path / "full"), bundle=digits)
    part = fit(small(tmp_path / "part"), bundle=digits, stop_after=1)
    assert len(part) == 1 and not (tmp_path / "part" / "results.json").exists()
    resumed = fit(small(tmp_path / "part", resume=True), bundle=digits)
    assert [r["epoch"] for r in resumed] == [1, 2, 3]
    assert same_weights(full.model.state_dict(), resumed.model.state_dict())
    drop_time = lambda h: [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in h]  # noqa: E731
    assert drop_time(full) == drop_time(resumed)
    ck_full = train.load_checkpoint(tmp_path / "full" / "checkpoint.pt")
    ck_res = train.load_checkpoint(tmp_path / "part" / "checkpoint.pt")
    assert ck_full["optimizer"]["state"].keys() == ck_res["optimizer"]["state"].keys()
    for k, st in ck_full["optimizer"]["state"].items():
        assert torch.equal(st["exp_avg"], ck_res["optimizer"]["state"][k]["exp_avg"])


def test_resuming_a_finished_run_trains_nothing_and_rewrites_results(tmp_path, digits):
    full = fit(small(tmp_path), bundle=digits)
    (tmp_path / "results.json").unlink()
    again = fit(small(tmp_path, resume=True), bundle=digits)
    assert list(again) == list(full) and same_weights(full.model.state_dict(), again.model.state_dict())
    res = json.loads((tmp_path / "results.json").read_text())["final"]
    assert res["test_acc"] == pytest.approx(full.last["test_acc"]) and "hybrid" not in res


def test_resume_refuses_a_different_config(tmp_path, digits):
    fit(small(tmp_path), bundle=digits, stop_after=1)
    with pytest.raises(ValueError, match=r"config differs in lr \(checkpoint 0.005, now 0.001\)"):
        fit(small(tmp_path, resume=True, lr=1e-3), bundle=digits)


class NaNAfter(nn.Module):
    """Wraps a model and returns NaN outputs from the n-th training call on."""

    def __init__(self, model, n):
        super().__init__()
        self.model, self.n, self.calls = model, n, 0

    def forward(self, x):
        out = self.model(x)
        if self.training:
            self.calls += 1
            if self.calls >= self.n:
                return out * float("nan")
        return out


def test_nan_loss_stops_with_epoch_step_and_value_and_keeps_checkpoint(tmp_path, digits):
    cfg = small(tmp_path, max_batches=4)
    model = NaNAfter(snnlab.models.SpikingMLP((1, 8, 8), 10), n=6)  # epoch 2, step 2
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at epoch 2, step 2.*checkpoint.*epoch 1"):
        fit(cfg, bundle=digits, model=model)
    ck = train.load_checkpoint(tmp_path / "checkpoint.pt")
    assert ck["epoch"] == 1 and all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())


def test_checkpoint_write_is_atomic(tmp_path, digits, monkeypatch):
    fit(small(tmp_path), bundle=digits, stop_after=1)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    real_save = torch.save

    def failing_save(obj, f, *a, **k):
        real_save(obj, f, *a, **k)  # write most of it, then "crash"
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="simulated"):
        fit(small(tmp_path, resume=True), bundle=digits)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("dataset", "mnist", r"dataset must be one of 'digits', 'dvs-digits', .*; got 'mnist'"),
        ("model", "vgg", "model must be one of"),
        ("method", "xyz", "method must be one of 'sdt'"),
        ("T", 0, "T .*positive integer, got 0"),
        ("epochs", -1, "epochs must be a positive integer, got -1"),
        ("batch_size", 2.5, "batch_size must be a positive integer"),
        ("lr", 0.0, "lr must be a finite number > 0, got 0.0"),
        ("lr", float("nan"), "lr must be"),
        ("width", -1.0, "width must be a finite number > 0"),
        ("tau", 1.5, r"tau .* must be in \(0, 1\], got 1.5"),
        ("surrogate", "box", "surrogate must be one of"),
        ("reset", "zero", "reset must be one of 'hard', 'subtract'"),
        ("optimizer", "rmsprop", "optimizer must be one of 'adam', 'sgd'"),
        ("device", "tpu", "unknown device 'tpu'"),
    ],
)
def test_config_validation(field, value, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{field: value}).validate()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_requested_without_cuda():
    with pytest.raises(ValueError, match="CUDA is not available"):
        TrainConfig(device="cuda").validate()
    assert train.resolve_device("auto").type == "cpu"


def test_config_json_round_trip_and_unknown_fields(tmp_path):
    cfg = TrainConfig(dataset="dvs-digits", T=6, width=0.5, extra={"note": "x"})
    cfg.to_json(tmp_path / "c.json")
    assert TrainConfig.from_json(tmp_path / "c.json") == cfg
    with pytest.raises(ValueError, match=r"unknown config field\(s\) \['colour'\]"):
        TrainConfig.from_dict({"colour": "red"})


def test_evaluate_per_step_accuracy(digits):
    hist = fit(small(epochs=1), bundle=digits)
    _, test_loader = digits.loaders(256)
    ev = train.evaluate(hist.model, test_loader, T=3, temporal=False)
    assert len(ev["acc_per_step"]) == 3 and 0 <= ev["acc"] <= 1


def test_encode():
    x = torch.rand(4, 1, 8, 8)
    assert train.encode(x, 3, temporal=False).shape == (3, 4, 1, 8, 8)
    ev = torch.rand(4, 5, 2, 6, 6)
    assert torch.equal(train.encode(ev, 5, temporal=True)[2], ev[:, 2])


def test_callbacks_see_every_step_and_log(digits):
    class Count(train.Callback):
        def __init__(self):
            self.steps = 0

        def on_after_backward(self, state):
            assert all(p.grad is not None for p in state.model.parameters())
            self.steps += 1

        def on_epoch_end(self, state):
            state.log["steps_seen"] = self.steps

    cb = Count()
    hist = fit(small(epochs=2, max_batches=3), bundle=digits, callbacks=[cb])
    assert cb.steps == 6 and [r["steps_seen"] for r in hist] == [3, 6]


def test_sweep_returns_one_row_per_config(digits):
    res = snnlab.sweep(small(epochs=1, max_batches=2), [dict(width=0.5), dict(width=2.0)], bundle=digits,
                       progress=False)
    assert list(res.runs["width"]) == [0.5, 2.0] and {"val_acc", "train_time_s"} <= set(res.runs.columns)
    old = snnlab.sweep(small(epochs=1, max_batches=2), [dict(width=0.5)], split="test", bundle=digits, progress=False)
    assert old.metric == "test_acc" and "test_acc" in old.runs  # the papers' protocol, when asked for


def test_T_schedule_switches_T_carries_state_and_counts_cost(tmp_path, digits):
    cfg = small(tmp_path, T=2, T_schedule="2:2,4:1", epochs=3)
    hist = fit(cfg, bundle=digits)
    assert [r["T"] for r in hist] == [2, 2, 4] and [r["T_epochs"] for r in hist] == [2, 4, 8]
    # the schedule is the same as running epochs 1-2 at T=2 and resuming at T=4 with the same optimizer state
    part = fit(small(tmp_path / "p", T=2, T_schedule="2:2,4:1", epochs=3), bundle=digits, stop_after=2)
    assert len(part) == 2
    resumed = fit(small(tmp_path / "p", T=2, T_schedule="2:2,4:1", epochs=3, resume=True), bundle=digits)
    assert same_weights(hist.model.state_dict(), resumed.model.state_dict())


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(T_schedule="2:2,4", epochs=3), "bad T_schedule part '4'"),
        (dict(T_schedule="2:2,4:1", epochs=5), r"epochs \(5\) must equal the total of T_schedule '2:2,4:1' \(3\)"),
        (dict(T_schedule="2:2,4:1", epochs=3, T=4), r"T \(4\) must be the first T"),
        (dict(T_schedule="0:2", epochs=2), "T and epochs must be >= 1"),
        (dict(eval_T=[1, -2]), "T .*positive integer"),
    ],
)
def test_T_schedule_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kw).validate()


def test_eval_T_scalability_in_results(tmp_path, digits):
    cfg = small(tmp_path, epochs=1, eval_T=[1, 2, 4])
    fit(cfg, bundle=digits)
    res = json.loads((tmp_path / "results.json").read_text())
    assert list(res["final"]["acc_by_T"]) == ["1", "2", "4"]
    assert res["final"]["acc_by_T"]["2"] == pytest.approx(res["final"]["test_acc"])


def test_temporal_scalability_event_data_rebins(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNLAB_DATA", str(tmp_path))
    cfg = small(dataset="dvs-digits", T=2, epochs=1, max_batches=1)
    hist = fit(cfg)
    acc = train.temporal_scalability(hist.model, cfg, [2, 3])
    assert set(acc) == {2, 3} and all(0 <= a <= 1 for a in acc.values())


@pytest.mark.parametrize("neuron", ["lif", "if"])
def test_dsr_method_trains_thresholds_and_resumes_exactly(tmp_path, digits, neuron):
    from snnlab.dsr_models import thresholds

    # low initial thresholds so that some inputs saturate the mapping: only those give a threshold gradient
    kw = dict(method="dsr", model="tutorial", neuron=neuron, T=5, lr=1e-2, epochs=2, max_batches=3,
              dsr_v_th=0.02 if neuron == "lif" else 0.3)
    full = fit(small(tmp_path / "a", **kw), bundle=digits)
    th = thresholds(full.model)
    assert len(th) == 3 and all(v > 0 for v in th.values())
    fresh = thresholds(snnlab.train.build_from_config(small(**kw), digits))
    assert th != fresh  # the thresholds are trained
    fit(small(tmp_path / "b", **kw), bundle=digits, stop_after=1)
    res = fit(small(tmp_path / "b", resume=True, **kw), bundle=digits)
    assert same_weights(full.model.state_dict(), res.model.state_dict())
    assert len(json.loads((tmp_path / "a" / "results.json").read_text())["final"]["acc_per_step"]) == 1


def test_dsr_config_errors():
    with pytest.raises(ValueError, match="model must be one of 'tutorial', 'tutorial1d', 'preact_resnet18', 'vgg11', .*; got 'mlp'"):
        TrainConfig(method="dsr", model="mlp").validate()
    with pytest.raises(ValueError, match="no surrogate"):
        TrainConfig(method="dsr", chi_target=0.3).validate()
    with pytest.raises(ValueError, match="dsr_dt must be a finite number > 0"):
        TrainConfig(method="dsr", dsr_dt=0).validate()
    with pytest.raises(ValueError, match="dsr_threshold_grad must be one of 'code', 'paper'"):
        TrainConfig(method="dsr", dsr_threshold_grad="exact").validate()


# ------------------------------------------------------------------------------- GPU options, old configs
def test_gpu_options_validated_with_allowed_values():
    for bad, msg in ((dict(amp_dtype="fp8"), r"amp_dtype must be one of 'float16', 'bfloat16'; got 'fp8'"),
                     (dict(channels_last="yes"), r"channels_last must be True or False, got 'yes'"),
                     (dict(cudnn_benchmark=1), r"cudnn_benchmark must be True or False, got 1")):
        with pytest.raises(ValueError, match=msg):
            small(**bad).validate()
    small(amp_dtype="bfloat16", channels_last=True, cudnn_benchmark=True).validate()  # CUDA only: no-ops on CPU


def test_old_checkpoint_without_gpu_fields_resumes(tmp_path, digits):
    fit(small(tmp_path), bundle=digits, stop_after=1)
    ck = train.load_checkpoint(tmp_path / "checkpoint.pt")
    for k in ("amp_dtype", "channels_last", "cudnn_benchmark"):  # a checkpoint from before these fields
        del ck["config"][k]
    torch.save(ck, tmp_path / "checkpoint.pt")
    old = json.loads((tmp_path / "config.json").read_text())
    old.pop("amp_dtype")
    assert TrainConfig.from_dict(old).amp_dtype == "float16"
    resumed = fit(small(tmp_path, resume=True, amp_dtype="bfloat16"), bundle=digits)  # GPU options may change
    assert [r["epoch"] for r in resumed] == [1, 2, 3]


def test_scaler_state_of_a_cpu_checkpoint_is_skipped_on_an_amp_machine():
    enabled = torch.amp.GradScaler("cpu", enabled=True)
    disabled_state = torch.amp.GradScaler("cpu", enabled=False).state_dict()
    assert disabled_state == {}
    with pytest.raises(RuntimeError):
        enabled.load_state_dict(disabled_state)  # what resuming a CPU checkpoint with fp16 AMP used to hit
    train._load_scaler(enabled, disabled_state)  # starts fresh instead
    other = torch.amp.GradScaler("cpu", init_scale=8.0)
    train._load_scaler(other, enabled.state_dict())
    assert other.get_scale() == enabled.get_scale()


class LrLog(train.Callback):
    """Records the learning rate each optimizer step used."""

    def __init__(self):
        self.lrs = []

    def on_after_backward(self, state):
        self.lrs.append(state.optimizer.param_groups[0]["lr"])


def test_warmup_scales_the_epoch_rate_linearly_then_hands_over_to_the_schedule(digits):
    import math

    # 4 steps per epoch, warm-up over 6 steps: all of epoch 1 and half of epoch 2 (DSR's code does the same:
    # the epoch's cosine rate times (k + 1) / N for the first N steps of the run)
    cfg = small(epochs=3, warmup_iters=6, optimizer="sgd", lr=0.1)
    log = LrLog()
    fit(cfg, callbacks=[log], bundle=digits)
    cosine = [0.5 * 0.1 * (1 + math.cos(math.pi * e / 3)) for e in range(3)]  # per-epoch rate, to 0
    expected = [cosine[0] * (k + 1) / 6 for k in range(4)] + [cosine[1] * (k + 1) / 6 for k in (4, 5)]
    expected += [cosine[1]] * 2 + [cosine[2]] * 4
    assert log.lrs == pytest.approx(expected, rel=1e-12)
    plain = LrLog()
    fit(small(epochs=3, optimizer="sgd", lr=0.1), callbacks=[plain], bundle=digits)
    assert plain.lrs == pytest.approx([c for c in cosine for _ in range(4)], rel=1e-12)


def test_resume_in_the_middle_of_the_warmup_is_exact(tmp_path, digits):
    kw = dict(warmup_iters=6, optimizer="sgd", lr=0.05)
    full = fit(small(tmp_path / "full", **kw), bundle=digits)
    fit(small(tmp_path / "part", **kw), bundle=digits, stop_after=1)  # stops after step 4 of 6
    assert train.load_checkpoint(tmp_path / "part" / "checkpoint.pt")["global_step"] == 4
    resumed = fit(small(tmp_path / "part", resume=True, **kw), bundle=digits)
    assert same_weights(full.model.state_dict(), resumed.model.state_dict())
    with pytest.raises(ValueError, match=r"warmup_iters must be an integer >= 0, got -1"):
        small(warmup_iters=-1).validate()
