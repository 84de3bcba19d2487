"""Checkpoints: the files snnlab 0.1 wrote still open (weights only) and resume; every bad file gives one line
naming the path and the problem, a malicious pickle runs nothing, and an interrupted save keeps the old file."""
import io
import os
import pathlib
import pickle
import random
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

import snnlab
from snnlab import checkpoint, hybrid, train
from snnlab.checkpoint import CheckpointError
from snnlab.cli import main as cli_main

V0_1 = Path(__file__).parent / "fixtures" / "v0_1"
FIXTURES = ["sdt", "tet", "dsr_hybrid", "dsr_lif", "dsr_hybrid/ann"]


class TouchOnLoad:
    """Unpickling this creates ``marker``: what a malicious checkpoint could do, here harmlessly."""

    def __init__(self, marker):
        self.marker = pathlib.Path(marker)

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


class Opaque:
    """A class a pickle would have to import to be opened."""


def rebuild(cfg):
    return train.build_from_config(cfg, train.load_data(cfg))


def fixture_bytes(run="sdt"):
    return (V0_1 / run / "checkpoint.pt").read_bytes()


def snapshot(folder: Path) -> dict:
    """Every file below ``folder``: its bytes and its modification time (an identical rewrite counts too)."""
    return {p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else None, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


# --------------------------------------------------------------------------------- snnlab 0.1's run folders
def test_fixtures_are_small_and_hold_no_machine_paths():
    files = [p for p in V0_1.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 2_000_000
    # an absolute path of any machine (POSIX or Windows) at the start of a word or a quoted string
    absolute = re.compile(r'(?:^|[\s"\'(=,:])(?:/[\w.-]+/|[A-Za-z]:[\\/])', re.M)
    for p in files:
        if p.suffix in (".json", ".csv", ".md"):
            text = p.read_text()
            assert not absolute.search(text), (p, absolute.search(text))


@pytest.mark.parametrize("run", FIXTURES)
def test_v0_1_checkpoint_opens_weights_only_and_loads_into_a_rebuilt_model(run):
    ck = checkpoint.load(V0_1 / run / "checkpoint.pt")
    for key in ("epoch", "model", "optimizer", "scheduler", "scaler", "global_step", "history", "config",
                "callbacks", "hybrid"):
        assert key in ck, key
    cfg = train.TrainConfig.from_dict(ck["config"])
    model = rebuild(cfg)
    if run.endswith("ann"):  # the ANN phase's run folder: the SNN's ANN twin
        model = hybrid.ann_twin(model)
        hybrid.load_ann(hybrid.ann_twin(rebuild(cfg)), V0_1 / run / "checkpoint.pt")
    model.load_state_dict(ck["model"], strict=True)
    assert train.load_checkpoint(V0_1 / run / "checkpoint.pt")["epoch"] == ck["epoch"] == cfg.epochs


def test_v0_1_checkpoints_hold_the_callbacks_and_hybrid_state():
    chi = checkpoint.load(V0_1 / "sdt" / "checkpoint.pt")["callbacks"]
    assert len(chi) == 1 and set(chi[0]) == {"global_step", "history", "last", "widths"} and chi[0]["history"]
    info = checkpoint.load(V0_1 / "dsr_hybrid" / "checkpoint.pt")["hybrid"]
    assert info["ann"] == "dsr_hybrid/ann/checkpoint.pt" and info["thresholds"]  # a relative path
    assert checkpoint.load(V0_1 / "tet" / "checkpoint.pt")["config"]["T_schedule"] == "2:1,3:1"


@pytest.mark.parametrize("run", ["sdt", "dsr_hybrid"])
def test_v0_1_run_resumes(tmp_path, run):
    shutil.copytree(V0_1 / run, tmp_path / run)
    out = tmp_path / run
    ck = checkpoint.load(out / "checkpoint.pt")
    cfg = train.TrainConfig.from_dict(ck["config"]).replace(out_dir=str(out), resume=True, progress=False,
                                                           device="cpu")
    hist = train.fit(cfg)  # a finished run: nothing to train, its state comes back
    assert [r["epoch"] for r in hist] == [r["epoch"] for r in ck["history"]]
    assert all(torch.equal(v, ck["model"][k]) for k, v in hist.model.state_dict().items())
    if run == "sdt":
        assert hist.callbacks[-1].state_dict() == ck["callbacks"][0]
    else:
        assert hist.hybrid == ck["hybrid"]


# ------------------------------------------------------------------------------------------- bad files
def _truncated(p):
    p.write_bytes(fixture_bytes()[: len(fixture_bytes()) // 2])


def _cut_end(p):
    p.write_bytes(fixture_bytes()[:-200])


def _bad_zip_header(p):
    b = bytearray(fixture_bytes())
    i = b.index(b"archive/data.pkl") - 30  # the local header of the pickle inside the zip
    b[i:i + 4] = b"\0\0\0\0"
    p.write_bytes(bytes(b))


def _zip_without_pickle(p):
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("notes/readme.txt", "hello")


def _needs_a_class(p):
    torch.save({"model": {}, "extra": Opaque()}, p)


BAD = {
    "missing": (lambda p: None, "no such file"),
    "folder": (lambda p: p.mkdir(), "is a folder, not a checkpoint file"),
    "empty": (lambda p: p.write_bytes(b""), "empty file (0 bytes)"),
    "truncated": (_truncated, "truncated or corrupted ("),
    "cut end": (_cut_end, "truncated or corrupted ("),
    "bad zip header": (_bad_zip_header, "truncated or corrupted ("),
    "text": (lambda p: p.write_text("epoch,test_acc\n1,0.5\n"), "not a torch file (a text file starting 'epoch"),
    "json": (lambda p: p.write_text('{"model": {}}'), "not a torch file (a JSON file)"),
    "plain pickle": (lambda p: p.write_bytes(pickle.dumps({"model": {}})), "not a torch file (a Python pickle"),
    "zip, not torch": (_zip_without_pickle, "not a torch file (a zip archive"),
    "needs a class": (_needs_a_class, f"would need to run code to be opened (it needs the global {__name__}.Opaque)"),
    "not a dict": (lambda p: torch.save(torch.ones(3), p), "not a snnlab checkpoint: holds a Tensor, not a dict"),
    "no model": (lambda p: torch.save({"epoch": 1}, p), "not a snnlab checkpoint: missing keys 'model'"),
}


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_file_gives_one_line_naming_path_and_problem(tmp_path, kind):
    make, problem = BAD[kind]
    path = tmp_path / "checkpoint.pt"
    make(path)
    with pytest.raises(CheckpointError) as info:
        checkpoint.load(path)
    msg = str(info.value)
    assert isinstance(info.value, ValueError)
    assert msg.startswith(f"{path}: ") and "\n" not in msg and info.value.path == str(path)
    assert info.value.problem.startswith(problem), msg
    with pytest.raises(CheckpointError, match="^" + str(path).replace(".", r"\.")):
        train.load_checkpoint(path)


def test_a_bare_object_loads_when_no_keys_are_required(tmp_path):
    torch.save([1, 2], tmp_path / "x.pt")
    assert checkpoint.load(tmp_path / "x.pt", require=()) == [1, 2]
    with pytest.raises(CheckpointError, match="not a snnlab ANN checkpoint: holds a list"):
        checkpoint.load(tmp_path / "x.pt", what="ANN checkpoint")


def test_message_is_one_line_whatever_the_problem():
    assert str(CheckpointError("a/b.pt", "two\nlines")) == "a/b.pt: two lines"


def _evil_torch(p, marker):
    torch.save({"model": TouchOnLoad(marker)}, p)


@pytest.mark.parametrize("write", ["torch.save", "pickle-0", "pickle-2", "pickle-5"])
def test_malicious_pickle_runs_nothing(tmp_path, write):
    marker, path = tmp_path / "marker", tmp_path / "checkpoint.pt"
    if write == "torch.save":
        _evil_torch(path, marker)
    else:
        data = pickle.dumps({"model": TouchOnLoad(marker)}, protocol=int(write[-1]))
        path.write_bytes(data)
        pickle.loads(data)  # the payload is real: a plain unpickler runs it
        assert marker.exists()
        marker.unlink()
    with pytest.raises(CheckpointError) as info:
        checkpoint.load(path)
    assert not marker.exists()
    msg = str(info.value)
    assert msg.startswith(f"{path}: would need to run code to be opened (it needs the global ")
    assert "never opens such files" in msg and "\n" not in msg
    with pytest.raises(CheckpointError):
        train.load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("seed", [0, 1])
def test_damaged_files_load_or_give_checkpoint_error(tmp_path, seed):
    """Cut-short and overwritten copies of a real checkpoint: torch raises many kinds of errors for them; each
    one must come out as a CheckpointError (or the file still loads, when only tensor bytes were hit)."""
    rng, good = random.Random(seed), fixture_bytes("dsr_lif")
    path = tmp_path / "checkpoint.pt"
    for i in range(40):
        if i % 2:
            data = good[: rng.randrange(1, len(good))]
        else:
            b = bytearray(good)
            at = rng.randrange(len(b))
            b[at:at + 32] = bytes(rng.randrange(256) for _ in range(32))
            data = bytes(b[: len(good)])
        path.write_bytes(data)
        try:
            checkpoint.load(path)
        except CheckpointError as e:
            assert str(e).startswith(f"{path}: ") and "\n" not in str(e)


def test_load_ann_refuses_bad_files_and_keeps_bare_state_dicts(tmp_path):
    ann = hybrid.ann_twin(rebuild(train.TrainConfig(method="dsr", neuron="if", T=5, device="cpu")))
    (tmp_path / "ann.pt").write_text("not a checkpoint\n")
    with pytest.raises(CheckpointError, match=r"ann\.pt: not a torch file .* expected an ANN checkpoint"):
        hybrid.load_ann(ann, tmp_path / "ann.pt")
    _evil_torch(tmp_path / "evil.pt", tmp_path / "marker")
    with pytest.raises(CheckpointError, match="would need to run code"):
        hybrid.load_ann(ann, tmp_path / "evil.pt")
    assert not (tmp_path / "marker").exists()
    torch.save(ann.state_dict(), tmp_path / "bare.pt")  # a bare state dict still loads
    hybrid.load_ann(ann, tmp_path / "bare.pt")


# ------------------------------------------------------------------------------------------ the command line
CLI = ["train", "--dataset", "digits", "--epochs", "1", "--max-batches", "1", "--no-progress", "--device", "cpu"]


@pytest.mark.parametrize("kind", ["truncated", "text", "folder", "empty", "no model", "malicious"])
def test_resume_from_a_bad_checkpoint_says_one_line_and_touches_nothing(tmp_path, capsys, kind):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(V0_1 / "sdt" / "config.json", run / "config.json")
    ckpt = run / "checkpoint.pt"
    if kind == "malicious":
        _evil_torch(ckpt, tmp_path / "marker")
    else:
        BAD[kind][0](ckpt)
    before = snapshot(run)
    capsys.readouterr()
    assert cli_main(CLI + ["--out", str(run), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"snnlab: error: {ckpt}: ") and err.count("\n") == 1 and err.endswith("\n"), err
    assert snapshot(run) == before
    assert not (tmp_path / "marker").exists()


def test_resume_error_is_one_line_from_a_real_process(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    _truncated(run / "checkpoint.pt")
    env = {**os.environ, "PYTHONPATH": str(Path(snnlab.__file__).parents[1])}
    r = subprocess.run([sys.executable, "-m", "snnlab", *CLI, "--out", str(run), "--resume"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr == f"snnlab: error: {run / 'checkpoint.pt'}: truncated or corrupted (the zip archive has no " \
                       "end record: was the write cut short?)\n"


HYBRID = ["--method", "dsr", "--neuron", "if", "--T", "5"]


@pytest.mark.parametrize("kind", ["truncated", "json", "malicious"])
def test_bad_hybrid_ann_checkpoint_says_one_line(tmp_path, capsys, kind):
    bad = tmp_path / "ann.pt"
    _evil_torch(bad, tmp_path / "marker") if kind == "malicious" else BAD[kind][0](bad)
    capsys.readouterr()
    assert cli_main(CLI + HYBRID + ["--hybrid-ann-checkpoint", str(bad), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"snnlab: error: {bad}: ") and err.count("\n") == 1, err
    assert not (tmp_path / "marker").exists()


def test_bad_hybrid_ann_checkpoint_touches_nothing_in_the_run_folder(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (tmp_path / "ann.pt").write_text('{"model": {}}')
    before = snapshot(run)
    assert cli_main(CLI + HYBRID + ["--hybrid-ann-checkpoint", str(tmp_path / "ann.pt"), "--out", str(run)]) == 2
    assert snapshot(run) == before


# ------------------------------------------------------------------------------------------ interrupted saves
def _half_save(real):
    def save(obj, f, *a, **k):
        buf = io.BytesIO()
        real(obj, buf, *a, **k)
        f.write(buf.getvalue()[: len(buf.getvalue()) // 2])  # half the file is out, then the disk fills up
        raise OSError("disk full (simulated)")
    return save


@pytest.mark.parametrize("fail", ["torch.save", "os.replace"])
def test_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch, fail):
    path = tmp_path / "checkpoint.pt"
    checkpoint.save({"model": {"w": torch.zeros(3)}, "epoch": 1}, path)
    before = path.read_bytes()
    if fail == "torch.save":
        monkeypatch.setattr(torch, "save", _half_save(torch.save))
    else:
        def replace(src, dst):
            raise OSError("power cut (simulated)")
        monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="simulated"):
        checkpoint.save({"model": {"w": torch.ones(3)}, "epoch": 2}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    ck = checkpoint.load(path)
    assert ck["epoch"] == 1 and torch.equal(ck["model"]["w"], torch.zeros(3))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary file left


def test_save_then_load_round_trips(tmp_path):
    obj = {"model": {"w": torch.arange(4.0)}, "history": [{"epoch": 1, "acc": 0.5}], "config": {"T": 4},
           "callbacks": [{"global_step": 3, "widths": [1.0, 0.5]}], "hybrid": None}
    assert checkpoint.save(obj, tmp_path / "a" / "checkpoint.pt") == tmp_path / "a" / "checkpoint.pt"
    back = checkpoint.load(tmp_path / "a" / "checkpoint.pt")
    assert torch.equal(back["model"]["w"], obj["model"]["w"]) and back["history"] == obj["history"]
    assert back["callbacks"] == obj["callbacks"] and back["config"] == obj["config"]
