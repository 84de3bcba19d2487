"""Results registry: append/load, atomic writes, bad files, and paper-vs-measured with 'not run' rows."""
import json
import math
import os

import pytest

from snnlab import cli, registry
from snnlab.train import History, TrainConfig


def _entry(recipe=None, acc=0.5, **cfg):
    c = TrainConfig(device="cpu", **cfg)
    hist = History([{"epoch": c.epochs, "test_acc": acc, "epoch_time_s": 1.5}], config=c)
    return registry.make_entry(c, hist, recipe=recipe, wall_time_s=2.0)


def test_append_load_roundtrip(tmp_path):
    path = tmp_path / "sub" / "registry.json"
    assert registry.load(path) == []
    registry.append(path, _entry(acc=0.25, epochs=1))
    entries = registry.append(path, _entry(acc=0.75, epochs=1))
    assert [e["test_acc"] for e in registry.load(path)] == [0.25, 0.75] == [e["test_acc"] for e in entries]
    e = entries[0]
    assert e["recipe"] is None and e["epochs_run"] == 1 and e["completed"] and e["device"] == "cpu"
    assert {"torch", "snnlab", "timestamp", "config", "wall_time_s"} <= set(e)
    assert [p.name for p in path.parent.iterdir()] == ["registry.json"]  # no temporary file left behind


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "registry.json"
    registry.append(path, _entry(epochs=1))
    before = path.read_text()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        registry.append(path, _entry(epochs=1))
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["registry.json"]


def test_bad_json_names_the_file(tmp_path):
    path = tmp_path / "registry.json"
    path.write_text("{not json")
    with pytest.raises(registry.RegistryError, match="registry .*registry.json is not valid JSON"):
        registry.load(path)
    path.write_text(json.dumps({"a": 1}))
    with pytest.raises(registry.RegistryError, match="must hold a JSON list of entries, got dict"):
        registry.load(path)


def test_comparison_marks_unrun_and_modified_rows():
    name = "tet-cifar10-resnet19-t4"
    from snnlab.recipes import get

    faithful = _entry(recipe=name, acc=0.9, **get(name).config)
    modified = _entry(recipe="tet-cifar10-resnet19-t2", acc=0.3, **{**get("tet-cifar10-resnet19-t2").config,
                                                                    "epochs": 1})
    df = registry.comparison(entries=[faithful, modified]).set_index("recipe")
    assert df.loc[name, "measured_top1"] == pytest.approx(90.0)
    assert df.loc[name, "status"] == "measured (1 run(s))"
    assert math.isnan(df.loc["tet-cifar10-resnet19-t2", "measured_top1"])
    assert df.loc["tet-cifar10-resnet19-t2", "status"] == "only modified runs: epochs"
    assert df.loc["tet-cifar10-resnet19-t6", "status"] == "not run"
    assert (df["status"] == "not run").sum() == len(df) - 2
    assert df.loc[name, "paper_top1"] == 94.44


def test_cli_train_appends_to_registry(tmp_path):
    argv = ["train", "--recipe", "tet-cifar10-resnet19-t4", "--dataset", "digits", "--model", "mlp", "--T", "2",
            "--epochs", "1", "--max-batches", "2", "--device", "cpu", "--no-progress", "--out", str(tmp_path / "r")]
    assert cli.main(argv) == 0
    entries = registry.load(tmp_path / "registry.json")
    assert len(entries) == 1
    e = entries[0]
    assert e["recipe"] == "tet-cifar10-resnet19-t4" and e["config"]["lamb"] == 0.05
    assert sorted(e["overrides"]) == ["T", "dataset", "epochs", "max_batches", "model"]
    assert 0 <= e["test_acc"] <= 1 and e["epochs_run"] == 1
