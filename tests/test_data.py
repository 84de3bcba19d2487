"""Data: the digits split, the simulated event camera (physics, determinism, cache) and the error messages."""
import dataclasses
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from snnlab import data as D
from snnlab.data import embedded

C = 0.15
T_DVS = 4


# ----------------------------------------------------------------------------------------------------------
# fixtures: every dvs-digits set is generated once per session, in a temporary cache folder


@pytest.fixture(scope="module")
def digits():
    return D.load("digits")


@pytest.fixture(scope="module")
def dvs_root(tmp_path_factory):
    return tmp_path_factory.mktemp("dvs-cache")


@pytest.fixture(scope="module")
def dvs(dvs_root):
    return D.load("dvs-digits", T=T_DVS, root=dvs_root, seed=0)


@pytest.fixture(scope="module")
def dvs_seed1(dvs_root):
    return D.load("dvs-digits", T=T_DVS, root=dvs_root, seed=1)


@pytest.fixture(scope="module")
def some_images():
    return load_digits().images[:40] / 16.0


def all_x(ds):
    return ds.tensors[0]


def all_y(ds):
    return ds.tensors[1]


# ----------------------------------------------------------------------------------------------------------
# digits


def test_digits_shapes_values_and_split(digits):
    assert digits.name == "digits" and digits.num_classes == 10
    assert digits.input_shape == (1, 8, 8) and digits.temporal is False and digits.T is None
    assert len(digits.train) == 1437 and len(digits.test) == 360
    for ds in (digits.train, digits.test):
        x, y = ds.tensors
        assert x.shape[1:] == (1, 8, 8) and x.dtype == torch.float32
        assert y.dtype == torch.int64
        assert x.min() >= 0 and x.max() <= 1
        assert set(y.tolist()) == set(range(10))
    assert all_x(digits.train).max() == 1.0  # scaled by 16, not by the max of each image
    # stratified: every class has 20 % (+- 1) of its images in the test split
    test_counts = torch.bincount(all_y(digits.test), minlength=10)
    total_counts = test_counts + torch.bincount(all_y(digits.train), minlength=10)
    assert torch.all((test_counts - 0.2 * total_counts).abs() <= 1)


def test_digits_split_is_a_partition_of_sklearn_digits(digits):
    sk = load_digits()
    ours = torch.cat([all_x(digits.train), all_x(digits.test)]).reshape(-1, 64) * 16
    labels = torch.cat([all_y(digits.train), all_y(digits.test)])
    assert torch.equal(ours, ours.round())  # the original integer levels 0..16
    key = lambda rows, ys: sorted(tuple(r) + (int(t),) for r, t in zip(rows.tolist(), ys.tolist()))  # noqa: E731
    assert key(ours, labels) == key(torch.tensor(sk.data, dtype=torch.float32), torch.tensor(sk.target))


def test_digits_split_does_not_depend_on_seed(digits):
    other = D.load("digits", seed=7)
    for a, b in ((digits.train, other.train), (digits.test, other.test)):
        assert torch.equal(all_x(a), all_x(b)) and torch.equal(all_y(a), all_y(b))


def test_bundle_is_frozen(digits):
    with pytest.raises(dataclasses.FrozenInstanceError):
        digits.T = 4


def test_temporal_flag_matches_TEMPORAL(digits, dvs):
    assert digits.temporal == ("digits" in D.TEMPORAL)
    assert dvs.temporal == ("dvs-digits" in D.TEMPORAL)
    assert set(D.TEMPORAL) <= set(D.DATASETS)


# ----------------------------------------------------------------------------------------------------------
# dvs-digits


def test_dvs_shapes_dtype_and_counts(dvs, digits):
    assert dvs.name == "dvs-digits" and dvs.temporal is True and dvs.T == T_DVS
    assert dvs.input_shape == (2, 24, 24) and dvs.num_classes == 10
    assert len(dvs.train) == 1437 and len(dvs.test) == 360
    x = all_x(dvs.train)
    assert x.shape == (1437, T_DVS, 2, 24, 24) and x.dtype == torch.float32
    assert x.min() >= 0 and torch.equal(x, x.round()) and x.max() <= 255
    # the same images in the same split as digits
    assert torch.equal(all_y(dvs.train), all_y(digits.train)) and torch.equal(all_y(dvs.test), all_y(digits.test))
    assert dvs.info["simulated"] is True


def test_dvs_events_are_non_trivial(dvs):
    x = all_x(dvs.train)
    per_sample = x.sum(dim=(1, 2, 3, 4))
    assert per_sample.min() > 200 and 1000 < per_sample.mean() < 20000
    # a moving edge is brighter on one side and darker on the other: both polarities in the first saccade
    first = x[:, 0].sum(dim=(2, 3))  # [N, 2]
    assert (first > 0).all(dim=1).float().mean() > 0.99
    # every frame holds events (the digit moves all the time)
    assert (x.sum(dim=(2, 3, 4)) > 0).all()


def test_dvs_closed_path_balances_on_and_off_per_pixel(dvs):
    # the digit ends where it started, so every pixel's log intensity returns to its first value:
    # the events of each pixel sum to zero net change (as many ON as OFF)
    x = all_x(dvs.test)
    on, off = x[:, :, 0].sum(dim=1), x[:, :, 1].sum(dim=1)
    assert torch.equal(on, off)


def test_dvs_digit_stays_on_the_canvas(dvs):
    x = all_x(dvs.train).sum(dim=(0, 1, 2))  # [24, 24] all events
    assert x[:1].sum() == 0 and x[-1:].sum() == 0 and x[:, :1].sum() == 0 and x[:, -1:].sum() == 0
    assert x[8:16, 8:16].sum() > 0


def test_dvs_cache_file_and_second_load_identical(dvs, dvs_root, monkeypatch):
    files = sorted(p.name for p in Path(dvs_root).iterdir())
    assert "dvs-digits_T4_seed0_s24_c0.15_n60_a3_j0.1_m0_v1.npz" in files
    assert not [f for f in files if f.endswith(".tmp")]
    assert Path(dvs.info["cache"]).name in files

    def boom(*args, **kwargs):
        raise AssertionError("the second load must read the cache, not simulate again")

    monkeypatch.setattr(embedded, "simulate_events", boom)  # the module that calls it
    again = D.load("dvs-digits", T=T_DVS, root=dvs_root, seed=0)
    for a, b in ((dvs.train, again.train), (dvs.test, again.test)):
        assert torch.equal(all_x(a), all_x(b)) and torch.equal(all_y(a), all_y(b))


def test_corrupt_cache_is_regenerated_bit_identical(dvs, tmp_path):
    bad = tmp_path / Path(dvs.info["cache"]).name
    bad.write_bytes(b"this is not a zip file")
    with pytest.warns(UserWarning, match="regenerating"):
        fresh = D.load("dvs-digits", T=T_DVS, root=tmp_path, seed=0)
    # regenerated from scratch in another folder: the same seed gives bit-identical events
    assert torch.equal(all_x(fresh.train), all_x(dvs.train)) and torch.equal(all_x(fresh.test), all_x(dvs.test))
    with np.load(bad) as z:  # the file was replaced by a good one
        assert z["events"].shape == (1797, T_DVS, 2, 24, 24) and z["events"].dtype == np.uint8


def test_truncated_cache_is_regenerated(dvs, tmp_path):
    good = Path(dvs.info["cache"]).read_bytes()
    (tmp_path / Path(dvs.info["cache"]).name).write_bytes(good[: len(good) // 2])
    with pytest.warns(UserWarning, match="regenerating"):
        D.load("dvs-digits", T=T_DVS, root=tmp_path, seed=0, n_sim=60)  # same file name


def test_unwritable_cache_warns_and_keeps_the_data(tmp_path, monkeypatch):
    """A cache that cannot be written (full disk, read-only folder) is a warning: the events stay in memory,
    bit-identical to a cached load, and no temporary file is left behind."""

    def no_space(src, dst):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(os, "replace", no_space)
        with pytest.warns(UserWarning, match="could not write the cache file .*kept in memory only"):
            b = D.load("dvs-digits", T=2, root=tmp_path, n_sim=4)
    assert b.info["cache"] is None and list(tmp_path.iterdir()) == []
    cached = D.load("dvs-digits", T=2, root=tmp_path, n_sim=4)
    assert Path(cached.info["cache"]).is_file() and oct(os.stat(cached.info["cache"]).st_mode & 0o777) == "0o644"
    assert torch.equal(all_x(b.train), all_x(cached.train)) and torch.equal(all_x(b.test), all_x(cached.test))


def test_dvs_seed_changes_events_not_split(dvs, dvs_seed1):
    assert torch.equal(all_y(dvs.train), all_y(dvs_seed1.train))
    assert torch.equal(all_y(dvs.test), all_y(dvs_seed1.test))
    assert not torch.equal(all_x(dvs.train), all_x(dvs_seed1.train))
    # ... but the data stay the same kind of data
    m0, m1 = all_x(dvs.train).sum() / 1437, all_x(dvs_seed1.train).sum() / 1437
    assert abs(m0 - m1) / m0 < 0.05


def test_env_variable_sets_default_root(monkeypatch, tmp_path):
    monkeypatch.setenv("SNNLAB_DATA", str(tmp_path))
    assert D.default_root() == tmp_path
    monkeypatch.delenv("SNNLAB_DATA")
    assert D.default_root() == Path(__file__).resolve().parents[1] / "datasets"  # the repository's datasets/


# ----------------------------------------------------------------------------------------------------------
# the simulator on its own


def test_simulate_events_shape_dtype_and_determinism(some_images):
    a = D.simulate_events(some_images, T=3, rng=0)
    b = D.simulate_events(some_images, T=3, rng=np.random.default_rng(0))
    c = D.simulate_events(some_images, T=3, rng=1)
    assert a.shape == (40, 3, 2, 24, 24) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    big = D.simulate_events(some_images[:2], T=2, size=32, n_sim=12, rng=0)
    assert big.shape == (2, 2, 2, 32, 32)


def test_T_rebins_the_same_events(some_images):
    coarse = D.simulate_events(some_images, T=3, rng=0).astype(np.int64)  # 20 sub-steps per frame
    fine = D.simulate_events(some_images, T=12, rng=0).astype(np.int64)  # 5 sub-steps per frame
    assert coarse.shape[1] == 3 and fine.shape[1] == 12
    assert np.array_equal(coarse.sum(axis=1), fine.sum(axis=1))  # same totals per pixel and polarity
    assert np.array_equal(coarse, fine.reshape(40, 3, 4, 2, 24, 24).sum(axis=2))  # frames are sums of sub-frames


def test_T_for_load_sets_frames(dvs):
    assert all_x(dvs.train).shape[1] == T_DVS


def test_still_image_gives_no_events(some_images):
    assert D.simulate_events(some_images, T=4, amplitude=0.0, rng=0).sum() == 0
    assert D.simulate_events(np.zeros((3, 8, 8)), T=4, rng=0).sum() == 0  # motion of a black image
    log_i = np.log(some_images[:5] + 0.1)
    still = np.repeat(log_i[:, None], 7, axis=1)  # [N, 7, 8, 8]
    assert D.events_from_log_intensity(still, threshold=C).sum() == 0


def test_uniform_brightening_gives_exactly_two_on_events():
    rng = np.random.default_rng(0)
    intensity = rng.uniform(0, 1, (3, 10, 10)) + 0.1  # I + eps
    frames = np.log(np.stack([intensity, intensity * math.exp(2.5 * C)], axis=1))  # [N, 2, H, W]
    ev = D.events_from_log_intensity(frames, threshold=C)
    assert ev.shape == (3, 1, 2, 10, 10)
    assert np.all(ev[:, 0, 0] == 2) and np.all(ev[:, 0, 1] == 0)
    # darkening by the same factor: exactly 2 OFF events
    ev = D.events_from_log_intensity(frames[:, ::-1], threshold=C)
    assert np.all(ev[:, 0, 1] == 2) and np.all(ev[:, 0, 0] == 0)


def test_reference_follows_in_steps_of_C():
    # up by 1.6 C twice: 1 event, then 2 (the 0.6 C left over from the first step adds up), then back down
    base = np.zeros((1, 1, 1))
    steps = np.array([0.0, 1.6, 3.2, 0.0]) * C
    frames = (base + steps[None, :, None, None]).reshape(1, 4, 1, 1)
    ev = D.events_from_log_intensity(frames, threshold=C)[0, :, :, 0, 0]  # [S, 2]
    assert ev.tolist() == [[1, 0], [2, 0], [0, 3]]
    # per-pixel thresholds, binned into one frame
    frames = np.log(np.array([1.0, math.exp(0.5)])).reshape(1, 2, 1) * np.ones((1, 2, 3))
    ev = D.events_from_log_intensity(frames, threshold=np.array([0.1, 0.2, 0.3]), T=1)
    assert ev[0, 0, 0].tolist() == [5, 2, 1]


def test_higher_threshold_fewer_events(some_images):
    low = D.simulate_events(some_images, T=2, threshold=0.15, rng=0).sum()
    high = D.simulate_events(some_images, T=2, threshold=0.3, rng=0).sum()
    assert 0 < high < 0.7 * low


def test_threshold_noise_changes_events(some_images):
    a = D.simulate_events(some_images, T=2, rng=0)
    b = D.simulate_events(some_images, T=2, rng=0, threshold_noise=0.1)
    assert not np.array_equal(a, b)
    assert abs(int(b.sum()) - int(a.sum())) / a.sum() < 0.2


# ----------------------------------------------------------------------------------------------------------
# helpers and loaders


def test_to_time_first():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    y = D.to_time_first(x)
    assert y.shape == (3, 2, 4, 5) and y.is_contiguous()
    assert torch.equal(y[1, 0], x[0, 1])
    with pytest.raises(TypeError, match="torch.Tensor"):
        D.to_time_first(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="at least 2 dims"):
        D.to_time_first(torch.zeros(4))


def test_loaders_are_deterministic(digits):
    first = lambda seed: next(iter(digits.loaders(32, shuffle_seed=seed)[0]))  # noqa: E731
    (xa, ya), (xb, yb), (xc, yc) = first(0), first(0), first(1)
    assert xa.shape == (32, 1, 8, 8) and ya.shape == (32,)
    assert torch.equal(ya, yb) and torch.equal(xa, xb)
    assert not torch.equal(xa, xc)
    train, test = digits.loaders(100, drop_last=True)
    assert len(train) == 1437 // 100 and len(test) == 4  # the test loader keeps every sample
    xt, yt = next(iter(test))
    assert torch.equal(yt, all_y(digits.test)[:100])  # and its order


def test_dvs_loader_batches_time_second(dvs):
    x, y = next(iter(dvs.loaders(8)[0]))
    assert x.shape == (8, T_DVS, 2, 24, 24) and y.dtype == torch.int64
    assert D.to_time_first(x).shape == (T_DVS, 8, 2, 24, 24)


# ----------------------------------------------------------------------------------------------------------
# errors


def test_unknown_dataset():
    with pytest.raises(ValueError, match=re.escape(
            "unknown dataset 'mnist'; available: 'digits', 'dvs-digits', 'mnist1d', 'mnist1d-seq', 'cifar10', "
            "'cifar100', 'dvs-cifar10', 'imagenet'")):
        D.load("mnist")


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "dvs-cifar10", "imagenet"])
def test_paper_datasets_are_read_from_disk_not_downloaded(name, tmp_path):
    """The papers' datasets (formerly PLANNED) are loaded from files; with none there, a clear error, no download
    (tests/test_real_data.py loads small files in each real format)."""
    assert name in D.DATASETS and name not in D.PLANNED
    with pytest.raises(FileNotFoundError, match=rf"dataset '{name}' not found under .*Nothing is downloaded"):
        D.load(name, root=tmp_path)


@pytest.mark.parametrize("T", [0, -3, 2.5, "8", True, 8.0])
def test_bad_T(T):
    with pytest.raises(ValueError, match=r"T must be a positive integer; got " + re.escape(repr(T))):
        D.load("dvs-digits", T=T)


def test_static_dataset_takes_no_T():
    with pytest.raises(ValueError, match=r"static.*T=4.*repeats each image T times"):
        D.load("digits", T=4)


def test_unknown_kwargs():
    with pytest.raises(TypeError, match=r"unknown keyword argument\(s\) 'colour'; allowed: .*'threshold'"):
        D.load("dvs-digits", colour="red")
    with pytest.raises(TypeError, match=r"load\('digits'\) got unknown keyword argument\(s\) 'size'; allowed: none"):
        D.load("digits", size=24)


@pytest.mark.parametrize("threshold", [0, -0.1, float("nan")])
def test_bad_threshold(threshold):
    with pytest.raises(ValueError, match=r"threshold must be > 0.*got " + re.escape(repr(threshold))):
        D.load("dvs-digits", threshold=threshold)
    with pytest.raises(ValueError, match=r"threshold must be > 0"):
        D.simulate_events(np.zeros((1, 8, 8)), threshold=threshold)


def test_bad_size_n_sim_seed():
    with pytest.raises(ValueError, match=r"size must be an integer, at least the digit size 16; got 8"):
        D.load("dvs-digits", size=8)
    with pytest.raises(ValueError, match=r"n_sim must be an integer, at least T = 8; got 5"):
        D.load("dvs-digits", n_sim=5)
    with pytest.raises(ValueError, match=r"seed must be a non-negative integer; got -1"):
        D.load("dvs-digits", seed=-1)
    with pytest.raises(ValueError, match=r"images must be \[N, H, W\]"):
        D.simulate_events(np.zeros((8, 8)))
    with pytest.raises(ValueError, match=r"batch_size must be a positive integer; got 0"):
        D.load("digits").loaders(0)
