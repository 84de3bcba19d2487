"""The validation split: fixed, stratified, disjoint from what is trained on; split='val' never reads the test
split, split='final' reads it once, after the last epoch."""
import json

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

import snnlab.data as D
from snnlab.data.bundle import SPLITS, VAL_FRACTION, DataBundle, labels_of, validation_indices
from snnlab.evaluation import evaluate
from snnlab.train import TrainConfig, fit


@pytest.mark.parametrize("name, n_train", [("digits", 1437), ("mnist1d", 4000)])
def test_embedded_validation_split_is_stratified_disjoint_and_fixed(name, n_train):
    b = D.load(name)
    fit_idx, val_idx = b.val_indices
    assert len(fit_idx) + len(val_idx) == n_train and len(val_idx) == round(VAL_FRACTION * n_train)
    assert not set(fit_idx) & set(val_idx)
    y = labels_of(b.train)
    share = np.bincount(y[val_idx], minlength=10) / np.bincount(y, minlength=10)
    assert np.all(np.abs(share - VAL_FRACTION) < 0.01)  # every class held out in the same proportion
    again = D.load(name).val_indices  # the same samples in every run, whatever its seed
    assert np.array_equal(again[0], fit_idx) and np.array_equal(again[1], val_idx)
    train, val = b.split("val")
    assert torch.equal(val.tensors[0], b.train.tensors[0][torch.as_tensor(val_idx)])
    assert torch.equal(train.tensors[1], b.train.tensors[1][torch.as_tensor(fit_idx)])
    tl, vl = b.loaders(64, split="final")
    assert len(tl.dataset) == len(fit_idx) and len(vl.dataset) == len(val_idx)


def test_dvs_digits_holds_out_the_same_digits_as_digits(tmp_path):
    a, b = D.load("digits"), D.load("dvs-digits", T=2, n_sim=8, size=16, root=tmp_path)
    assert np.array_equal(a.val_indices[1], b.val_indices[1])
    assert np.array_equal(labels_of(a.train), labels_of(b.train))


def test_validation_indices_errors_and_closed_form():
    y = np.repeat(np.arange(4), 10)
    fit_idx, val_idx = validation_indices(y, 0.25, seed=3)
    assert len(val_idx) == 10 and sorted(np.bincount(y[val_idx])) == [2, 2, 3, 3]
    for bad in (0, 1, 1.5, -0.1, True, "0.2"):
        with pytest.raises(ValueError, match=r"validation fraction must be a number in \(0, 1\); got"):
            validation_indices(y, bad)
    with pytest.warns(UserWarning, match="cannot be a stratified validation split"):  # 2 of 40, 4 classes
        fit_idx, val_idx = validation_indices(y, 0.05)
    assert len(val_idx) == 2 and not set(fit_idx) & set(val_idx) and len(fit_idx) == 38
    with pytest.raises(ValueError, match="the validation split would hold 0"):
        validation_indices(y[:4], 0.01)
    b = D.load("digits")
    with pytest.raises(ValueError, match=r"split must be one of 'test', 'val', 'final'; got 'valid'"):
        b.split("valid")
    with pytest.raises(ValueError, match="split"):
        TrainConfig(split="dev").validate()
    assert SPLITS == ("test", "val", "final")


class _Forbidden(Dataset):
    """A test split that fails when read, counting the attempts."""

    def __init__(self):
        self.reads = 0

    def __len__(self):
        return 360

    def __getitem__(self, i):
        self.reads += 1
        raise AssertionError("the test split was read")


def _guarded(bundle):
    return DataBundle(name=bundle.name, train=bundle.train, test=_Forbidden(), num_classes=10,
                      input_shape=bundle.input_shape, temporal=False, T=None)


def test_split_val_never_reads_the_test_split(tmp_path):
    b = _guarded(D.load("digits"))
    cfg = TrainConfig(dataset="digits", epochs=2, max_batches=2, split="val", progress=False, eval_T=[1, 2],
                      out_dir=str(tmp_path))
    hist = fit(cfg, bundle=b)
    assert b.test.reads == 0
    assert "val_acc" in hist.last and "test_acc" not in hist.last
    final = json.loads((tmp_path / "results.json").read_text())["final"]
    assert final["split"] == "val" and set(final["acc_by_T"]) == {"1", "2"}
    with pytest.raises(AssertionError, match="test split was read"):  # final reads it, after the last epoch
        fit(cfg.replace(split="final", out_dir=None), bundle=b)


def test_split_final_reports_the_test_accuracy_once_of_the_final_model(tmp_path):
    b = D.load("digits")
    cfg = TrainConfig(dataset="digits", epochs=3, max_batches=3, split="final", progress=False,
                      out_dir=str(tmp_path))
    hist = fit(cfg, bundle=b)
    assert ["test_acc" in r for r in hist] == [False, False, True]
    assert all("val_acc" in r for r in hist)
    _, test_loader = b.loaders(64)
    assert hist.last["test_acc"] == evaluate(hist.model, test_loader, cfg.T, False)["acc"]
    _, val_loader = b.loaders(64, split="val")
    assert hist.last["val_acc"] == evaluate(hist.model, val_loader, cfg.T, False)["acc"]
    # trained on the same samples as split='val' (same weights), only the last row differs
    other = fit(cfg.replace(split="val", out_dir=None), bundle=b)
    assert all(torch.equal(p, q) for p, q in zip(hist.model.parameters(), other.model.parameters()))
    # and not on the same as split='test' (the whole training split)
    full = fit(cfg.replace(split="test", out_dir=None), bundle=b)
    assert not all(torch.equal(p, q) for p, q in zip(hist.model.parameters(), full.model.parameters()))


def test_split_final_resumes_to_the_uninterrupted_run(tmp_path):
    cfg = TrainConfig(dataset="digits", epochs=3, max_batches=2, split="final", progress=False,
                      out_dir=str(tmp_path / "a"))
    whole = fit(cfg)
    fit(cfg.replace(out_dir=str(tmp_path / "b")), stop_after=2)
    resumed = fit(cfg.replace(out_dir=str(tmp_path / "b"), resume=True))
    assert resumed.last["test_acc"] == whole.last["test_acc"]
    assert all(torch.equal(p, q) for p, q in zip(whole.model.parameters(), resumed.model.parameters()))


def test_subset_of_a_non_tensor_dataset_and_labels_read_sample_by_sample():
    class Pairs(Dataset):
        def __len__(self):
            return 20

        def __getitem__(self, i):
            return torch.full((1, 2, 2), float(i)), i % 2

    b = DataBundle(name="toy", train=Pairs(), test=TensorDataset(torch.zeros(2, 1, 2, 2), torch.zeros(2).long()),
                   num_classes=2, input_shape=(1, 2, 2), temporal=False, T=None, val_fraction=0.25)
    assert list(labels_of(b.train)) == [i % 2 for i in range(20)]
    train, val = b.split("val")
    assert len(val) == 5 and len(train) == 15
    assert sorted(int(val[j][0][0, 0, 0]) for j in range(5)) == sorted(b.val_indices[1].tolist())
