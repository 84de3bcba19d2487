"""Command line: --help documents every option; bad values give one line and exit code 2."""
import subprocess
import sys

import pytest

from snnlab import cli
from snnlab.train import TrainConfig


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "snnlab", *args], capture_output=True, text=True, cwd=cwd)


def test_help_documents_every_option():
    out = run("train", "--help")
    assert out.returncode == 0
    for opt in ("--dataset", "--model", "--method", "--T", "--epochs", "--surrogate", "--width", "--lr",
                "--batch-size", "--seed", "--device", "--out", "--resume", "--tau", "--v-th", "--reset",
                "--detach-reset", "--neuron", "--amp", "--max-batches", "--warmup-iters", "--data-root", "--hybrid-ann-epochs",
                "--hybrid-ann-checkpoint", "--hybrid-percentile", "--hybrid-calib-batches", "--hybrid-ann-optimizer",
                "--hybrid-ann-lr", "--hybrid-ann-weight-decay", "--hybrid-ann-batch-size"):
        assert opt in out.stdout, opt
    assert "full width at half maximum" in out.stdout
    assert run("reproduce", "--help").returncode == 0
    top = run("--help")
    assert "train" in top.stdout and "reproduce" in top.stdout


@pytest.mark.parametrize(
    "args, match",
    [
        (["train", "--dataset", "mnist"], "argument --dataset: invalid choice: 'mnist'"),
        (["train", "--T", "abc"], "argument --T: invalid int value: 'abc'"),
        (["train", "--T", "0"], "T (number of time steps) must be a positive integer, got 0"),
        (["train", "--warmup-iters", "-1"], "warmup_iters must be an integer >= 0, got -1"),
        (["train", "--data-options", "cutout"], "--data-options must be a JSON object"),
        (["train", "--data-options", "[1]"], "data_options must be a dict of option names to values, got [1]"),
        (["train", "--width", "-1"], "width must be a finite number > 0, got -1.0"),
        (["train", "--tau", "2"], "tau (LIF decay factor) must be in (0, 1], got 2.0"),
        (["train", "--surrogate", "box"], "invalid choice: 'box'"),
        (["train", "--device", "tpu"], "unknown device 'tpu'"),
        (["train", "--detach-reset", "maybe"], "expected true or false, got 'maybe'"),
        (["train", "--T-schedule", "2:30,x"], "bad T_schedule part 'x' in '2:30,x'"),
        (["train", "--T-schedule", "2:30,6:5", "--epochs", "10"], "epochs (10) must equal the total of T_schedule"),
        (["train", "--eval-T", "1,0"], "bad T '0' in '1,0'"),
        (["train", "--lamb", "2"], "lamb (TET's MSE weight) must be in [0, 1], got 2.0"),
        (["train", "--method", "dsr", "--hybrid-ann-epochs", "2", "--hybrid-percentile", "99.9"],
         "hybrid_percentile must be in (0, 1] (0.999 = the 99.9th percentile, as DSR), got 99.9"),
        (["train", "--hybrid-ann-epochs", "2"], "hybrid training (hybrid_ann_epochs=2, hybrid_ann_checkpoint=None) "
                                                "needs method 'dsr', got method 'sdt'"),
        (["fly"], "invalid choice: 'fly'"),
        ([], "required: COMMAND"),
    ],
)
def test_bad_values_one_line_exit_2(args, match, tmp_path):
    out = run(*args, "--out", str(tmp_path)) if args and args[0] == "train" else run(*args)
    assert out.returncode == 2, out.stderr
    err = out.stderr.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert match in err


def test_train_end_to_end(tmp_path):
    out = run("train", "--dataset", "digits", "--model", "mlp", "--T", "2", "--epochs", "2", "--max-batches", "2",
              "--out", str(tmp_path / "r"), "--no-progress")
    assert out.returncode == 0, out.stderr
    assert "test acc" in out.stdout
    assert TrainConfig.from_json(tmp_path / "r" / "config.json").epochs == 2
    again = run("train", "--dataset", "digits", "--model", "mlp", "--T", "2", "--epochs", "3", "--max-batches", "2",
                "--out", str(tmp_path / "r"), "--resume", "--no-progress")
    assert again.returncode == 2 and "config differs in epochs" in again.stderr


def test_train_hybrid_end_to_end(tmp_path):
    out = run("train", "--method", "dsr", "--neuron", "if", "--T", "4", "--epochs", "1", "--max-batches", "2",
              "--hybrid-ann-epochs", "1", "--hybrid-calib-batches", "2", "--hybrid-ann-lr", "0.01",
              "--out", str(tmp_path / "h"), "--no-progress")
    assert out.returncode == 0, out.stderr
    assert "hybrid: ANN test acc" in out.stdout and "SNN right after initialisation" in out.stdout
    cfg = TrainConfig.from_json(tmp_path / "h" / "config.json")
    assert (cfg.hybrid_ann_epochs, cfg.hybrid_calib_batches, cfg.hybrid_ann_lr) == (1, 2, 0.01)
    assert (tmp_path / "h" / "ann" / "checkpoint.pt").exists() and (tmp_path / "h" / "hybrid.json").exists()


def test_parser_defaults_match_config():
    cfg = cli.config_from_args(cli.build_parser().parse_args(["train"]))
    assert cfg.replace(out_dir=None) == TrainConfig()
    assert cfg.out_dir == "runs/digits-tutorial-sdt-T4-s0"


def test_T_schedule_sets_T_and_epochs():
    cfg = cli.config_from_args(cli.build_parser().parse_args(["train", "--T-schedule", "2:3,6:1", "--eval-T", "1,2,8"]))
    assert (cfg.T, cfg.epochs, cfg.T_schedule, cfg.eval_T) == (2, 4, "2:3,6:1", [1, 2, 8])


def test_reproduce_fast(tmp_path):
    out = run("reproduce", "--fast", "--out", str(tmp_path / "res"), "--no-progress")
    assert out.returncode == 0, out.stderr
    for f in ("results.csv", "results.md", "comparisons.txt", "test_accuracy.png", "training_curves.png"):
        assert (tmp_path / "res" / f).exists()
    head = (tmp_path / "res" / "results.csv").read_text().splitlines()
    assert head[0] == "dataset,method,setting,T,epochs,seeds,test_acc,ci95,vs_sdt,train_time_s"
    assert {line.split(",")[0] for line in head[1:]} == {"digits", "mnist1d", "dvs-digits"}
    said = (tmp_path / "res" / "comparisons.txt").read_text().splitlines()
    assert len(said) == 9 and all("2 paired runs" in line for line in said)  # 3 methods vs SDT on 3 data sets
    import pandas as pd

    ops = pd.read_csv(tmp_path / "res" / "operations.csv")          # snnlab.metrics on every row's seed-0 model
    assert len(ops) == 12 and (tmp_path / "res" / "operations.png").exists()
    assert (ops["ann_energy_nJ"] > 0).all() and (ops["mean_rate"].between(0, 1)).all()
    assert (ops["energy_nJ"] == ((ops["ACs"] * 0.9 + ops["MACs"] * 4.6) / 1000).round(3)).all()
    assert "spikes and synaptic operations per sample" in out.stdout
    assert (ops["spikes"] > 0).all() and (ops["ACs"] > 0).all()     # pooled spikes fold into accumulates
    per_layer = pd.read_csv(tmp_path / "res" / "operations_layers.csv")
    assert set(per_layer["row"]) == set(ops["row"])
    sums = per_layer.groupby("row", sort=False)[["ACs", "spikes"]].sum()
    assert abs(sums.loc[ops["row"], "ACs"].values - ops["ACs"].values).max() <= 8  # each layer's count rounded
    assert abs(sums.loc[ops["row"], "spikes"].values - ops["spikes"].values).max() < 1
    runs = sorted((tmp_path / "res" / "runs").glob("*-s0"))                 # snnlab export-nir RUN_DIR
    sdt = next(r for r in runs if r.name.startswith("dvs-digits") and "sdt" in r.name.lower())
    nx = run("export-nir", str(sdt), "--out", str(tmp_path / "m.nir"))
    assert nx.returncode == 0, nx.stderr
    assert (tmp_path / "m.nir").is_file() and "read back and compared: equal outputs" in nx.stdout
    dsr = next(r for r in runs if "dsr" in r.name.lower())
    bad = run("export-nir", str(dsr))
    assert bad.returncode == 2 and "DSR" in bad.stderr and not (dsr / "model.nir").exists()
    missing = run("export-nir", str(tmp_path))
    assert missing.returncode == 2 and "no config.json" in missing.stderr
