"""snnlab.sweep (choosing a setting on the validation split) and the methods' own recipes (Method.defaults)."""
import json
import math

import pandas as pd
import pytest
import torch

import snnlab
import snnlab.data as D
from snnlab import stats, tuning
from snnlab.cli import main, parse_grid
from snnlab.config import method_defaults
from snnlab.train import TrainConfig, fit
from snnlab.tuning import SweepResult, default_grid, expand_grid, setting_label

from test_validation import _guarded


def tiny(**kw):
    base = dict(dataset="digits", model="mlp", T=2, epochs=2, batch_size=128, max_batches=3, progress=False)
    return TrainConfig(**{**base, **kw})


# ------------------------------------------------------------------------------------------ the methods' recipes
def test_dsr_trains_with_its_papers_recipe_unless_given():
    c = TrainConfig(method="dsr")
    assert (c.optimizer, c.lr, c.weight_decay, c.warmup_epochs, c.warmup_iters) == ("sgd", 0.1, 5e-4, 1.0, 0)
    c = TrainConfig(method="dsr", lr=0.05, optimizer="adam")
    assert (c.optimizer, c.lr, c.weight_decay) == ("adam", 0.05, 5e-4)  # what is given wins, the rest is DSR's
    c = TrainConfig(method="dsr", warmup_iters=400)  # the two warm-ups are one choice: no double warm-up
    assert (c.warmup_iters, c.warmup_epochs) == (400, 0.0) and c.validate()
    sdt, tet = TrainConfig(), TrainConfig(method="tet")  # TET's code: Adam 1e-3, cosine = the core defaults
    assert (sdt.optimizer, sdt.lr, tet.optimizer, tet.lr, tet.weight_decay) == ("adam", 1e-3, "adam", 1e-3, 0.0)
    assert method_defaults("dsr", given={"lr": 1}) == {"optimizer": "sgd", "weight_decay": 5e-4, "warmup_epochs": 1.0}
    assert method_defaults("nope") == {}


def test_a_saved_config_reads_back_as_what_it_ran():
    d = TrainConfig(method="dsr", optimizer="adam", lr=1e-2).to_dict()
    assert TrainConfig.from_dict(d) == TrainConfig(method="dsr", optimizer="adam", lr=1e-2)
    for k in ("warmup_epochs", "weight_decay"):  # fields a file written before they existed lacks
        d.pop(k)
    old = TrainConfig.from_dict(d)
    assert (old.warmup_epochs, old.weight_decay) == (0.0, 0.0)  # the field's default, not DSR's recipe


def test_warmup_epochs_is_warmup_iters_of_one_epochs_steps(digits):
    a = fit(tiny(epochs=2, warmup_epochs=1.0, optimizer="sgd", lr=0.1), bundle=digits)
    b = fit(tiny(epochs=2, warmup_iters=3, optimizer="sgd", lr=0.1), bundle=digits)  # max_batches=3 per epoch
    c = fit(tiny(epochs=2, optimizer="sgd", lr=0.1), bundle=digits)
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(a.model.parameters(), c.model.parameters()))
    with pytest.raises(ValueError, match=r"give one warm-up, warmup_iters \(3\) or warmup_epochs \(1.0\)"):
        TrainConfig(warmup_iters=3, warmup_epochs=1.0).validate()
    with pytest.raises(ValueError, match="warmup_epochs"):
        TrainConfig(warmup_epochs=-1).validate()


def test_cli_says_which_recipe_defaults_a_method_uses(capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--method dsr: 0.1 unless given" in " ".join(capsys.readouterr().out.split())
    rc = main(["train", "--method", "dsr", "--model", "tutorial", "--epochs", "1", "--max-batches", "1", "--T", "2",
               "--lr", "0.05", "--no-progress", "--out", str(tmp_path / "r")])
    said = capsys.readouterr().out.splitlines()[0]
    assert rc == 0 and said.endswith("recipe where no flag is given: --optimizer sgd --weight-decay 0.0005 "
                                     "--warmup-epochs 1.0")
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (saved["optimizer"], saved["lr"], saved["warmup_epochs"]) == ("sgd", 0.05, 1.0)


# ------------------------------------------------------------------------------------------ grids
def test_expand_grid_every_combination_in_order_with_presets():
    g = expand_grid({"lr": [0.1, 0.01], "c": [{"dsr_v_th": 0.3, "dsr_alpha": 0.3}, {"dsr_v_th": 0.6}]})
    assert g == [{"lr": 0.1, "dsr_v_th": 0.3, "dsr_alpha": 0.3}, {"lr": 0.1, "dsr_v_th": 0.6},
                 {"lr": 0.01, "dsr_v_th": 0.3, "dsr_alpha": 0.3}, {"lr": 0.01, "dsr_v_th": 0.6}]
    assert expand_grid([{"width": 1.0}, {"lr": 0.1}]) == [{"width": 1.0}, {"lr": 0.1}]
    assert setting_label({"lr": 0.01, "surrogate": "atan"}) == "lr=0.01, surrogate=atan"


@pytest.mark.parametrize("grid, match", [
    ({}, "non-empty dict"), ([], "the grid is empty"), ({"lr": []}, r"grid\['lr'\] is empty"),
    ({"lr": 0.1}, r"grid\['lr'\] must be a list"), ({"lrr": [0.1]}, "'lrr' is not a config field"),
    ({"p": [{"nope": 1}]}, r"unknown config field\(s\) \['nope'\]"), ({"seed": [0, 1]}, "set by sweep itself"),
    ([{"lr": 1}, 3], r"grid\[1\]: a setting is a dict"),
])
def test_bad_grids_are_named(grid, match):
    with pytest.raises(ValueError, match=match):
        expand_grid(grid)


def test_default_grids_are_each_methods_own():
    assert default_grid(TrainConfig()) == {"lr": (3e-3, 1e-2, 3e-2, 1e-1), "width": (0.5, 1.0, 2.0)}
    assert default_grid(TrainConfig(method="tet"))["lamb"] == (0.0, 0.001, 0.05)
    chi = default_grid(TrainConfig(method="tet", chi_target=0.3))  # the add-on's knob replaces the method's
    assert set(chi) == {"lr", "chi_target"}
    lif = expand_grid(default_grid(TrainConfig(method="dsr", neuron="lif")))
    assert len(lif) == 10 and {s["dsr_v_th"] for s in lif} == {0.3, 0.6} and {s["lr"] for s in lif} == {0.025, 0.05, 0.1, 0.2, 0.4}
    assert set(default_grid(TrainConfig(method="dsr", neuron="if"))) == {"lr", "dsr_alpha"}
    for cfg in (TrainConfig(method="dsr", neuron="lif"), TrainConfig(method="dsr", neuron="if"),
                TrainConfig(method="tet", chi_target=0.3)):  # every default setting is a valid config
        for s in expand_grid(default_grid(cfg)):
            cfg.replace(**s).validate()


# ------------------------------------------------------------------------------------------ choosing
def _result(per_setting):
    settings = [{"lr": 10.0 ** -i} for i in range(len(per_setting))]
    runs = pd.DataFrame([{"setting": i, "lr": settings[i]["lr"], "seed": s, "val_acc": a}
                         for i, accs in enumerate(per_setting) for s, a in enumerate(accs)])
    return SweepResult(TrainConfig(split="val"), settings, tuple(range(len(per_setting[0]))), "val", runs)


def test_the_best_setting_is_the_highest_mean_first_on_ties():
    r = _result([[0.90, 0.92, 0.94], [0.95, 0.91, 0.96], [0.95, 0.91, 0.96]])
    assert r.best_index == 1 and r.best == {"lr": 0.1} and r.runner_up() == 2
    assert r.table.loc[1, "mean"] == pytest.approx(0.94)
    ci = stats.mean_ci([0.95, 0.91, 0.96])
    assert (r.table.loc[1, "ci_low"], r.table.loc[1, "ci_high"]) == pytest.approx((ci.low, ci.high))
    assert "[lr=0.1] - [lr=0.01] = +0.0000" in r.sentence() and "not resolved" in r.sentence()
    assert r.best_config(split="final", seed=7).lr == 0.1 and r.best_config(split="final").split == "final"
    clear = _result([[0.90, 0.91, 0.90], [0.97, 0.98, 0.975]])
    assert clear.best_index == 1 and "resolved, [lr=0.1] higher" in clear.sentence()


def test_sweep_trains_every_setting_and_seed_on_validation_only(tmp_path):
    b = _guarded(D.load("digits"))  # a test split that fails when read
    r = snnlab.sweep(tiny(), {"lr": [1e-3, 3e-2]}, seeds=(0, 1), bundle=b, out_dir=tmp_path, progress=False)
    assert b.test.reads == 0 and r.split == "val" and r.metric == "val_acc"
    assert list(r.runs["lr"]) == [1e-3, 1e-3, 3e-2, 3e-2] and list(r.runs["seed"]) == [0, 1, 0, 1]
    again = fit(tiny(lr=3e-2, seed=1, split="val"), bundle=D.load("digits"))  # each run is the plain fit
    assert r.runs.loc[3, "val_acc"] == again.last["val_acc"]
    assert r.best == r.settings[int(r.table["mean"].idxmax())]
    saved = SweepResult.from_json(tmp_path / "sweep.json")
    assert saved.best == r.best and saved.table["mean"].tolist() == r.table["mean"].tolist()
    fig, _ = r.plot()
    assert len(fig.axes[0].collections) >= 2  # every seed drawn


def test_a_sweep_started_again_reads_its_finished_runs(tmp_path, monkeypatch, digits):
    first = snnlab.sweep(tiny(), {"lr": [1e-3, 3e-2]}, seeds=(0,), bundle=digits, out_dir=tmp_path, progress=False)

    def no_training(*a, **k):
        raise AssertionError("trained again")

    monkeypatch.setattr(tuning, "_train_one", no_training)
    second = snnlab.sweep(tiny(), {"lr": [1e-3, 3e-2]}, seeds=(0,), bundle=digits, out_dir=tmp_path, progress=False)
    assert second.runs["val_acc"].tolist() == first.runs["val_acc"].tolist()
    with pytest.raises(AssertionError, match="trained again"):  # another experiment in the same folder is trained
        snnlab.sweep(tiny(epochs=1), {"lr": [1e-3]}, seeds=(0,), bundle=digits, out_dir=tmp_path, progress=False)


def test_parallel_workers_give_the_runs_of_one_thread(digits):
    grid = {"lr": [1e-2, 3e-2]}
    one = snnlab.sweep(tiny(), grid, seeds=(0,), workers=1, threads=1, bundle=digits, progress=False)
    two = snnlab.sweep(tiny(), grid, seeds=(0,), workers=2, threads=1, progress=False)
    assert two.runs["val_acc"].tolist() == one.runs["val_acc"].tolist()


@pytest.mark.parametrize("kw, match", [
    (dict(seeds=()), "non-empty list"), (dict(seeds=(0, 0)), "distinct"), (dict(seeds=("a",)), "seeds must be"),
    (dict(split="dev"), "split must be one of"), (dict(workers=0), "workers must be an integer >= 1"),
    (dict(grid={"lr": [-1.0]}), r"grid setting 'lr=-1': .*lr"),
])
def test_bad_sweep_arguments_are_named(kw, match, digits):
    kw = {"grid": {"lr": [1e-2]}, **kw}
    with pytest.raises(ValueError, match=match):
        snnlab.sweep(tiny(), bundle=digits, progress=False, **kw)


def test_snnlab_sweep_cli(capsys, tmp_path):
    rc = main(["sweep", "--model", "mlp", "--T", "2", "--epochs", "1", "--max-batches", "2", "--no-progress",
               "--grid", "lr=0.001,0.03", "--seeds", "0,1", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0 and "lr=0.001" in out and "lr=0.03" in out and "chosen: lr=" in out and "--split final" in out
    res = json.loads((tmp_path / "sweep.json").read_text())
    assert res["split"] == "val" and len(res["runs"]) == 4 and not any(math.isnan(r["val_acc"]) for r in res["runs"])
    assert parse_grid(["chi-target=0.1,0.3", "surrogate=atan"]) == {"chi_target": [0.1, 0.3], "surrogate": ["atan"]}
    for bad, match in (("lr", "expected FIELD=V"), ("nope=1", "'nope' is not a field"), ("lr=abc", "bad value 'abc'"),
                       ("seed=1,2", "'seed' is not a field a sweep can vary")):
        assert main(["sweep", "--grid", bad, "--epochs", "1"]) == 2
        assert match in capsys.readouterr().err


def test_make_run_reads_a_validated_setting_only_for_its_own_row(tmp_path, digits):
    from snnlab import reproduce

    name, cfg = reproduce.rows()[0]
    with pytest.raises(FileNotFoundError, match=f"no validated setting for row '{name}'"):
        reproduce.chosen_setting(name, cfg, tmp_path)
    res = snnlab.sweep(tiny(), {"lr": [1e-3, 3e-2]}, seeds=(0,), bundle=digits, progress=False)
    res.to_json(tmp_path / f"{name}.json")
    with pytest.raises(ValueError, match="chosen for another config of row .*differs in .*model"):
        reproduce.chosen_setting(name, cfg, tmp_path)
    for name, cfg in reproduce.rows():  # every shipped choice is a sweep of its row, on the validation split
        best, shipped = reproduce.chosen_setting(name, cfg)
        assert shipped.split == "val" and shipped.seeds == reproduce.SWEEP_SEEDS and best in shipped.settings
        assert len(shipped.runs) == len(shipped.settings) * len(shipped.seeds)


def test_sweep_trains_your_own_network_built_after_seeding():
    import snntorch as snn
    from torch import nn

    from snnlab.interop.snntorch import MultiStep

    built = []

    def net():
        m = MultiStep(nn.Sequential(nn.Flatten(), nn.Linear(64, 16), snn.Leaky(beta=0.5, init_hidden=True),
                                    nn.Linear(16, 10)))
        built.append(m.net[1].weight.detach().clone())
        return m

    base = snnlab.TrainConfig(dataset="digits", T=2, epochs=1, max_batches=2, progress=False, device="cpu")
    with pytest.raises(ValueError, match="distinct"):
        snnlab.sweep(base, {"lr": [0.01]}, seeds=[0, 1, 0], progress=False, model_fn=net)
    res = snnlab.sweep(base, {"lr": [0.01, 0.1]}, seeds=[0, 1], progress=False, model_fn=net)
    assert len(built) == 4 and len(res.runs) == 4
    assert torch.equal(built[0], built[2]) and not torch.equal(built[0], built[1])  # initial weights follow the seed
    with pytest.raises(TypeError, match="model_fn must be a callable"):
        snnlab.sweep(base, {"lr": [0.01]}, seeds=[0], progress=False, model_fn=3)
