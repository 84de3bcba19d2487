"""The papers' datasets, read from small files in their real formats that these tests write themselves.

CIFAR: the python pickle batches (``cifar-10-batches-py/data_batch_1`` ...); CIFAR10-DVS: jAER AEDAT 2.0
``.aedat`` recordings in 10 class folders, written by ``write_aedat`` below from the format's specification (the
bit layout of TET's ``dat2mat.m``); ImageNet: an ImageFolder tree of JPEGs. Everything is loaded through
``snnlab.data.load`` exactly as a user does.
"""
import os
import pickle
import re
import struct
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from snnlab import data as D
from snnlab.data import cifar10_dvs as DVS
from snnlab.data import real as R
from snnlab.train import TrainConfig

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


# ----------------------------------------------------------------------------------------------------------
# writers of the real formats


def write_cifar(root, name, per_batch=4, n_test=6, seed=0):
    """The python pickle batches of CIFAR-10 (5 train batches + test_batch + batches.meta) or CIFAR-100
    (train, test, meta), each holding a few random 32x32 images. Returns (train images, train labels, test
    images, test labels) as uint8 [N, 32, 32, 3] and lists."""
    rng = np.random.default_rng(seed)
    n_classes = 10 if name == "cifar10" else 100
    label_key = "labels" if name == "cifar10" else "fine_labels"
    folder = root / ("cifar-10-batches-py" if name == "cifar10" else "cifar-100-python")
    folder.mkdir(parents=True)

    def batch(n):
        imgs = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, n_classes, n)]
        entry = {"data": imgs.transpose(0, 3, 1, 2).reshape(n, 3072), label_key: labels,
                 "filenames": [f"img_{i}.png" for i in range(n)]}
        if name == "cifar100":
            entry["coarse_labels"] = [v // 5 for v in labels]
        return imgs, labels, entry

    train_imgs, train_labels = [], []
    train_files = [f"data_batch_{i}" for i in range(1, 6)] if name == "cifar10" else ["train"]
    for f in train_files:
        imgs, labels, entry = batch(per_batch)
        (folder / f).write_bytes(pickle.dumps(entry, protocol=2))
        train_imgs.append(imgs)
        train_labels += labels
    test_imgs, test_labels, entry = batch(n_test)
    (folder / ("test_batch" if name == "cifar10" else "test")).write_bytes(pickle.dumps(entry, protocol=2))
    if name == "cifar10":
        meta = ("batches.meta", {"label_names": CIFAR10_NAMES, "num_cases_per_batch": per_batch, "num_vis": 3072})
    else:
        meta = ("meta", {"fine_label_names": [f"class{i}" for i in range(100)],
                         "coarse_label_names": [f"super{i}" for i in range(20)]})
    (folder / meta[0]).write_bytes(pickle.dumps(meta[1], protocol=2))
    return np.concatenate(train_imgs), train_labels, test_imgs, test_labels


AEDAT_HEADER = (b"#!AER-DAT2.0\r\n"
                b"# This is a raw AE data file - do not edit\r\n"
                b"# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each event\r\n"
                b"# Timestamps tick is 1 us\r\n")


def write_aedat(path, x, y, p, t, header=AEDAT_HEADER):
    """Events -> AEDAT 2.0, following the format: '#' header lines ending in CRLF, then per event a big-endian
    uint32 address and a big-endian uint32 timestamp. DVS128 address (dat2mat.m): bit 0 = OFF flag (0 = ON),
    bits 1-7 = sensor x_raw, bits 8-14 = sensor y_raw. The decoded image position is column 127 - y_raw,
    row 127 - x_raw (SpikingJelly's CIFAR10DVS), so x_raw = 127 - row, y_raw = 127 - column."""
    body = bytearray()
    for xi, yi, pi, ti in zip(x, y, p, t):
        addr = ((127 - int(xi)) << 8) | ((127 - int(yi)) << 1) | (1 - int(pi))
        body += struct.pack(">II", addr, int(ti))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + bytes(body))


def random_events(rng, n):
    return (rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n), np.sort(rng.integers(0, 10**6, n)))


DVS_INDICES = (0, 2, 10)  # numeric order 0, 2, 10; a lexicographic sort would give 0, 10, 2
T_DVS = 4


@pytest.fixture(scope="module")
def dvs_root(tmp_path_factory):
    """3 recordings per class (40-60 events each) in <root>/dvs-cifar10/<class>/cifar10_<class>_<i>.aedat."""
    root = tmp_path_factory.mktemp("dvs")
    rng = np.random.default_rng(1)
    for c in CIFAR10_NAMES:
        for i in DVS_INDICES:
            write_aedat(root / "dvs-cifar10" / c / f"cifar10_{c}_{i}.aedat", *random_events(rng, int(rng.integers(40, 61))))
    return root


@pytest.fixture(scope="module")
def dvs(dvs_root):
    return D.load("dvs-cifar10", root=dvs_root, T=T_DVS, train_per_class=2)


def write_imagenet(root, classes=("n01440764", "n01443537"), per_class=2, size=(40, 30), seed=0):
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        for c in classes:
            (root / "imagenet" / split / c).mkdir(parents=True)
            for i in range(per_class):
                img = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                Image.fromarray(img).save(root / "imagenet" / split / c / f"{c}_{i}.JPEG", quality=95)


# ----------------------------------------------------------------------------------------------------------
# registration


def test_names_are_registered():
    assert set(R.REAL_DATASETS) <= set(D.DATASETS) and D.PLANNED == ()
    assert "dvs-cifar10" in D.TEMPORAL and "cifar10" not in D.TEMPORAL
    for name in R.REAL_DATASETS:
        TrainConfig(dataset=name).validate()


# ----------------------------------------------------------------------------------------------------------
# CIFAR


@pytest.fixture(scope="module")
def cifar10(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    raw = write_cifar(root, "cifar10")
    return root, raw, D.load("cifar10", root=root, verify=False)


def test_cifar10_shapes_labels_and_normalisation(cifar10):
    _, (train_imgs, train_labels, test_imgs, test_labels), b = cifar10
    assert (b.name, b.num_classes, b.input_shape, b.temporal, b.T) == ("cifar10", 10, (3, 32, 32), False, None)
    assert len(b.train) == 20 and len(b.test) == 6
    mean, std = np.array([0.4914, 0.4822, 0.4465]), np.array([0.2023, 0.1994, 0.2010])  # TET's build_cifar
    for i in range(len(b.test)):
        x, y = b.test[i]
        assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y == test_labels[i]
        expected = (test_imgs[i] / 255.0 - mean) / std  # ToTensor + Normalize by hand, [H, W, C]
        np.testing.assert_allclose(x.permute(1, 2, 0).numpy(), expected, atol=1e-5)
    assert [b.train[i][1] for i in range(len(b.train))] == train_labels
    x, y = next(iter(b.loaders(8)[1]))
    assert x.shape == (8 if len(b.test) >= 8 else len(b.test), 3, 32, 32) and y.dtype == torch.int64


def test_cifar10_train_augmentation_is_random_and_test_is_not(cifar10):
    _, (train_imgs, *_), b = cifar10
    torch.manual_seed(0)
    draws = [b.train[0][0] for _ in range(8)]
    assert any(not torch.equal(draws[0], d) for d in draws[1:])
    assert all(torch.equal(b.test[0][0], b.test[0][0]) for _ in range(3))
    # every draw is a flip and/or a shift (zero-padded by 4) of the image: RandomCrop(32, padding=4) + flip
    mean, std = torch.tensor([0.4914, 0.4822, 0.4465]), torch.tensor([0.2023, 0.1994, 0.2010])
    img = torch.from_numpy(train_imgs[0]).permute(2, 0, 1).float() / 255
    padded = torch.nn.functional.pad(img, (4, 4, 4, 4))
    candidates = [((f(padded[:, dy:dy + 32, dx:dx + 32])) - mean[:, None, None]) / std[:, None, None]
                  for dy in range(9) for dx in range(9) for f in (lambda z: z, lambda z: z.flip(-1))]
    for d in draws:
        assert min(float((d - c).abs().max()) for c in candidates) < 1e-5


def test_cifar_without_augmentation_trains_on_the_test_transform(cifar10):
    root, _, b = cifar10
    plain = D.load("cifar10", root=root, verify=False, augment=False)
    assert torch.equal(plain.train[3][0], plain.train[3][0])
    assert "RandomCrop" in b.info["train_transform"] and "RandomCrop" not in plain.info["train_transform"]


def test_cifar_cutout_and_autoaugment_flags(cifar10):
    root, *_ = cifar10
    b = D.load("cifar10", root=root, verify=False, cutout=True, autoaugment=True)
    assert "Cutout(length=16, n_holes=1)" in b.info["train_transform"] and "AutoAugment" in b.info["train_transform"]
    assert b.train[0][0].shape == (3, 32, 32)
    with pytest.raises(ValueError, match="need augment=True"):
        D.load("cifar10", root=root, verify=False, augment=False, cutout=True)


def test_cutout_zeroes_one_clipped_square():
    torch.manual_seed(0)
    for _ in range(20):
        out = R.Cutout(16)(torch.ones(3, 32, 32))
        holes = (out == 0).all(0)
        rows, cols = holes.any(1).nonzero().flatten(), holes.any(0).nonzero().flatten()
        h, w = len(rows), len(cols)
        assert 8 <= h <= 16 and 8 <= w <= 16 and int(holes.sum()) == h * w  # one rectangle, clipped at edges
        assert (rows.diff() == 1).all() and (cols.diff() == 1).all()
        assert torch.equal(out[0], out[1])  # the same hole in every channel


def test_cifar100_uses_the_fine_labels(tmp_path):
    _, train_labels, test_imgs, test_labels = write_cifar(tmp_path, "cifar100", per_batch=5, n_test=3)
    b = D.load("cifar100", root=tmp_path, verify=False)
    assert b.num_classes == 100 and len(b.train) == 5 and len(b.test) == 3
    assert [b.test[i][1] for i in range(3)] == test_labels
    mean, std = np.array([0.5071, 0.4867, 0.4408]), np.array([0.2675, 0.2565, 0.2761])
    np.testing.assert_allclose(b.test[1][0].permute(1, 2, 0).numpy(), (test_imgs[1] / 255 - mean) / std, atol=1e-5)


def test_cifar_checksums_are_verified(cifar10):
    root, *_ = cifar10
    with pytest.raises(ValueError, match=r"cifar-10-batches-py/data_batch_1 is not the official cifar10 file: its MD5 "
                                         r"is [0-9a-f]{32}, expected c99cafc152244af753f735de768cd75f.*verify=False"):
        D.load("cifar10", root=root)


@pytest.mark.parametrize("name, folder, url", [
    ("cifar10", "cifar-10-batches-py", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
    ("cifar100", "cifar-100-python", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"),
])
def test_cifar_missing_files(tmp_path, name, folder, url):
    with pytest.raises(R.DatasetNotFoundError) as e:
        D.load(name, root=tmp_path)
    msg = str(e.value)
    assert isinstance(e.value, FileNotFoundError) and "\n" not in msg  # the CLI shows the first line only
    assert f"{tmp_path / folder}/" in msg and url in msg and "Nothing is downloaded" in msg
    # one file missing: exactly that one is named
    write_cifar(tmp_path, name)
    gone = tmp_path / folder / ("data_batch_3" if name == "cifar10" else "meta")
    gone.unlink()
    with pytest.raises(R.DatasetNotFoundError, match=rf"missing {re.escape(str(gone))}\. "):
        D.load(name, root=tmp_path, verify=False)


def test_static_real_datasets_take_no_T(cifar10):
    root, *_ = cifar10
    with pytest.raises(ValueError, match=r"'cifar10' is a static dataset, so load\(\) takes no T \(got T=4\)"):
        D.load("cifar10", root=root, T=4)
    with pytest.raises(TypeError, match=r"load\('cifar10'\) got unknown keyword argument\(s\) 'size'; allowed: "
                                        r"'augment', 'cutout', 'autoaugment', 'verify'"):
        D.load("cifar10", root=root, size=24)
    with pytest.raises(ValueError, match=r"verify must be True or False; got 'no'"):
        D.load("cifar10", root=root, verify="no")


# ----------------------------------------------------------------------------------------------------------
# CIFAR10-DVS: the reader


def test_read_aedat_decodes_hand_made_bytes(tmp_path):
    # address 0x00000A07: bit 0 = 1 (OFF), x_raw = (0x07 >> 1) = 3, y_raw = 0x0A = 10; then bits 15 and 16 set
    # (not part of the DVS128 address: ignored). Column = 127 - y_raw = 117, row = 127 - x_raw = 124.
    body = bytes.fromhex("00000A07" "000003E8") + bytes.fromhex("00018A06" "000007D0")
    path = tmp_path / "two.aedat"
    path.write_bytes(b"#!AER-DAT2.0\r\n# comment\r\n" + body)
    ev = R.read_aedat(path)
    assert ev.dtype.names == ("t", "x", "y", "p")
    assert ev["t"].tolist() == [1000, 2000] and ev["x"].tolist() == [117, 117]
    assert ev["y"].tolist() == [124, 124] and ev["p"].tolist() == [0, 1]


def test_aedat_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    x, y, p, t = random_events(rng, 500)
    write_aedat(tmp_path / "r.aedat", x, y, p, t)
    ev = R.read_aedat(tmp_path / "r.aedat")
    for field, want in zip("xypt", (x, y, p, t)):
        np.testing.assert_array_equal(ev[field], want)


def test_aedat_errors(tmp_path):
    write_aedat(tmp_path / "v3.aedat", [1], [2], [1], [3], header=b"#!AER-DAT3.1\r\n")
    with pytest.raises(ValueError, match=r"v3.aedat: AEDAT version 3.1 is not supported"):
        R.read_aedat(tmp_path / "v3.aedat")
    write_aedat(tmp_path / "cut.aedat", [1, 2], [2, 3], [1, 0], [3, 4])
    (tmp_path / "cut.aedat").write_bytes((tmp_path / "cut.aedat").read_bytes()[:-3])
    with pytest.raises(ValueError, match=r"cut.aedat: truncated AEDAT 2.0 data: 13 bytes"):
        R.read_aedat(tmp_path / "cut.aedat")


# ----------------------------------------------------------------------------------------------------------
# CIFAR10-DVS: framing


def make_events(rows):
    ev = np.zeros(len(rows), dtype=R.EVENT_DTYPE)
    for i, (x, y, p) in enumerate(rows):
        ev[i] = (i, x, y, p)
    return ev


def test_equal_event_count_framing_by_hand():
    # 7 events into T=3 frames: N // T = 2 events per frame, the 7th is dropped (TET's code)
    ev = make_events([(5, 9, 1), (5, 9, 1),   # frame 0: two ON events at row 9, column 5
                      (0, 0, 0), (127, 3, 1),  # frame 1: OFF at (0, 0), ON at row 3, column 127
                      (7, 7, 0), (8, 7, 0),    # frame 2: two OFF events
                      (1, 1, 1)])              # dropped
    counts = R.event_counts(ev, T=3)
    expected = np.zeros((3, 2, 128, 128), dtype=np.int64)
    expected[0, 0, 9, 5] = 2
    expected[1, 1, 0, 0] = 1
    expected[1, 0, 3, 127] = 1
    expected[2, 1, 7, 7] = expected[2, 1, 7, 8] = 1
    np.testing.assert_array_equal(counts, expected)
    # normalised per frame by its maximum, then 8 bits: no resize at the sensor's 128x128
    frames = R.events_to_frames(ev, T=3, size=128)
    np.testing.assert_array_equal(frames, np.round(255 * expected / expected.max(axis=(1, 2, 3), keepdims=True)))
    with pytest.raises(ValueError, match=r"cannot split 7 events into T=8 frames"):
        R.event_counts(ev, T=8)


def test_resize_to_48_keeps_uniform_frames_and_mean():
    rows = [(x, y, 1) for y in range(128) for x in range(128)]  # one ON event on every pixel: a uniform frame
    frames = R.events_to_frames(make_events(rows), T=1, size=48)
    assert frames.shape == (1, 2, 48, 48) and frames.dtype == np.uint8
    assert (frames[0, 0] == 255).all() and (frames[0, 1] == 0).all()
    rng = np.random.default_rng(0)
    ev = make_events(list(zip(rng.integers(0, 128, 4000), rng.integers(0, 128, 4000), rng.integers(0, 2, 4000))))
    counts = R.event_counts(ev, T=2).astype(float)
    norm = counts / counts.max(axis=(1, 2, 3), keepdims=True)
    small = R.events_to_frames(ev, T=2, size=48) / 255
    np.testing.assert_allclose(small.mean(axis=(2, 3)), norm.mean(axis=(2, 3)), atol=0.01)  # antialiased resize


def test_nda_augment_flips_and_rolls():
    x = torch.arange(2 * 2 * 6 * 6, dtype=torch.float32).reshape(2, 2, 6, 6)
    g = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(300):
        out = R.nda_augment(x, max_shift=1, generator=g)
        matches = [(f, dy, dx) for f in (0, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                   if torch.equal(out, torch.roll(x.flip(-1) if f else x, (dy, dx), dims=(-2, -1)))]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) == 18  # both flips and every shift in {-1, 0, 1}^2 occur


# ----------------------------------------------------------------------------------------------------------
# CIFAR10-DVS: load


def test_dvs_cifar10_shapes_split_and_labels(dvs, dvs_root):
    assert (dvs.name, dvs.num_classes, dvs.input_shape, dvs.temporal, dvs.T) == ("dvs-cifar10", 10, (2, 48, 48), True, 4)
    assert len(dvs.train) == 20 and len(dvs.test) == 10  # 2 + 1 per class
    assert dvs.train.index.tolist() == [0, 1] * 10 and dvs.test.index.tolist() == [2] * 10
    assert dvs.train.labels.tolist() == [k for k in range(10) for _ in range(2)]
    for k, c in enumerate(CIFAR10_NAMES):
        x, y = dvs.test[k]
        assert x.shape == (T_DVS, 2, 48, 48) and x.dtype == torch.float32 and y == k
        # the test recording of each class is the numerically last file, cifar10_<class>_10.aedat
        want = R.events_to_frames(R.read_aedat(dvs_root / "dvs-cifar10" / c / f"cifar10_{c}_10.aedat"), T_DVS, 48)
        torch.testing.assert_close(x, torch.from_numpy(want).float() / 255)
    x, y = next(iter(dvs.loaders(4)[0]))
    assert x.shape == (4, T_DVS, 2, 48, 48) and D.to_time_first(x).shape == (T_DVS, 4, 2, 48, 48)


def test_dvs_cifar10_train_augmentation(dvs, dvs_root):
    clean = dvs.train.frames[3].float() / 255
    torch.manual_seed(0)
    kinds = set()
    for _ in range(12):
        x, _ = dvs.train[3]
        match = [(f, dy, dx) for f in (0, 1) for dy in range(-5, 6) for dx in range(-5, 6)
                 if torch.equal(x, torch.roll(clean.flip(-1) if f else clean, (dy, dx), dims=(-2, -1)))]
        assert match, "a training sample is not a flip + roll (by at most 5 px) of its frames"
        kinds.add(match[0])
    assert len(kinds) > 1
    assert all(torch.equal(dvs.test[0][0], dvs.test[0][0]) for _ in range(3))
    plain = D.load("dvs-cifar10", root=dvs_root, T=T_DVS, train_per_class=2, augment=False)
    assert torch.equal(plain.train[3][0], clean)


def test_dvs_cifar10_cache_written_once_and_reused(dvs, dvs_root, monkeypatch, tmp_path):
    cache = dvs_root / "dvs-cifar10" / f"frames_T{T_DVS}_s48_v1.npz"
    assert dvs.info["cache"] == str(cache) and cache.is_file()
    assert not list(cache.parent.glob("*.tmp"))  # written atomically: no temporary file left

    def fail(path):
        raise AssertionError("read an .aedat file although the cache is there")

    monkeypatch.setattr(DVS, "read_aedat", fail)  # the module that calls it
    again = D.load("dvs-cifar10", root=dvs_root, T=T_DVS, train_per_class=2)
    assert torch.equal(again.train.frames, dvs.train.frames) and torch.equal(again.test.frames, dvs.test.frames)
    with pytest.raises(AssertionError, match="read an .aedat file"):  # another T is another cache file
        D.load("dvs-cifar10", root=dvs_root, T=2, train_per_class=2)


def test_dvs_cifar10_stale_cache_and_cache_only(tmp_path):
    rng = np.random.default_rng(3)
    for c in CIFAR10_NAMES:
        for i in range(2):
            write_aedat(tmp_path / "dvs-cifar10" / c / f"cifar10_{c}_{i}.aedat", *random_events(rng, 20))
    first = D.load("dvs-cifar10", root=tmp_path, T=2, size=16, train_per_class=1)
    # a recording changes: the cache no longer matches the files and is rebuilt
    write_aedat(tmp_path / "dvs-cifar10" / "cat" / "cifar10_cat_1.aedat", *random_events(rng, 30))
    with pytest.warns(UserWarning, match="made from other .aedat files"):
        second = D.load("dvs-cifar10", root=tmp_path, T=2, size=16, train_per_class=1)
    assert not torch.equal(first.test.frames[3], second.test.frames[3])
    # the recordings are deleted: the cache alone is enough
    for c in CIFAR10_NAMES:
        for f in (tmp_path / "dvs-cifar10" / c).iterdir():
            f.unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        third = D.load("dvs-cifar10", root=tmp_path, T=2, size=16, train_per_class=1)
    assert third.info["cache_only"] and torch.equal(third.test.frames, second.test.frames)


def test_dvs_cifar10_unwritable_cache_warns_and_keeps_frames(tmp_path, monkeypatch):
    """A cache that cannot be written (full disk, read-only folder) is a warning, not an error: the frames are
    returned from memory, and no temporary file is left behind."""
    rng = np.random.default_rng(5)
    for c in CIFAR10_NAMES:
        for i in range(2):
            write_aedat(tmp_path / "dvs-cifar10" / c / f"cifar10_{c}_{i}.aedat", *random_events(rng, 20))

    def no_space(src, dst):
        raise OSError(28, "No space left on device")

    for preprocess in ("tet", "dsr"):
        with monkeypatch.context() as m:
            m.setattr(os, "replace", no_space)
            with pytest.warns(UserWarning, match="could not write the cache file .*kept in memory only"):
                b = D.load("dvs-cifar10", root=tmp_path, T=2, size=16, train_per_class=1, preprocess=preprocess)
        base = tmp_path / "dvs-cifar10"
        name = "frames_dsr_T2*" if preprocess == "dsr" else "frames_T2*"
        assert b.info["cache"] is None and not list(base.glob(name)) and not list(base.glob("*.tmp"))
        written = D.load("dvs-cifar10", root=tmp_path, T=2, size=16, train_per_class=1, preprocess=preprocess)
        assert written.info["cache"] is not None and torch.equal(b.train.frames, written.train.frames)
        assert oct(os.stat(written.info["cache"]).st_mode & 0o777) == "0o644"


def test_dvs_cifar10_missing_files(tmp_path, dvs_root):
    with pytest.raises(R.DatasetNotFoundError) as e:
        D.load("dvs-cifar10", root=tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and f"{tmp_path / 'dvs-cifar10' / 'airplane'}/ (no .aedat files)" in msg
    assert "https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671" in msg
    assert "cifar10_airplane_0.aedat" in msg and "and 4 more" in msg  # 10 class folders named, 6 shown
    # only one class missing: just that one is named
    partial_root = tmp_path / "partial"
    for c in CIFAR10_NAMES[:-1]:
        write_aedat(partial_root / "dvs-cifar10" / c / f"cifar10_{c}_0.aedat", [1], [1], [1], [1])
    with pytest.raises(R.DatasetNotFoundError, match=r"missing \S*dvs-cifar10/truck/ \(no \.aedat files\)\. "):
        D.load("dvs-cifar10", root=partial_root)


def test_dvs_cifar10_bad_arguments(dvs_root):
    with pytest.raises(ValueError, match=r"train_per_class=900 leaves no test recordings for class\(es\) airplane \(3\)"):
        D.load("dvs-cifar10", root=dvs_root, T=T_DVS)
    with pytest.raises(ValueError, match=r"train_per_class must be a positive integer; got 0"):
        D.load("dvs-cifar10", root=dvs_root, train_per_class=0)
    with pytest.raises(ValueError, match=r"size must be at most the sensor's 128 pixels; got 200"):
        D.load("dvs-cifar10", root=dvs_root, size=200)
    with pytest.raises(ValueError, match=r"T must be a positive integer; got 0"):
        D.load("dvs-cifar10", root=dvs_root, T=0)


# ----------------------------------------------------------------------------------------------------------
# CIFAR10-DVS: preprocess="dsr" (DSR's code: SpikingJelly-style framing, raw counts, Resize, RandomCrop)


def test_dsr_framing_by_hand_remainder_to_last_frame_raw_counts():
    # 7 events into T=3 frames: N // T = 2 events per frame, the last frame takes the remaining 3
    ev = make_events([(5, 9, 1), (5, 9, 1),              # frame 0: two ON events at x=5, y=9
                      (0, 0, 0), (127, 3, 1),            # frame 1: OFF at (0, 0), ON at x=127, y=3
                      (7, 7, 0), (7, 7, 0), (1, 2, 1)])  # frame 2: two OFF events + the remainder
    counts = R.dsr_event_counts(ev, T=3)
    # DSR's layout: channel = p (0 = OFF, 1 = ON), row = 127 - x, column = y; counts not normalised
    expected = np.zeros((3, 2, 128, 128), dtype=np.int64)
    expected[0, 1, 127 - 5, 9] = 2
    expected[1, 0, 127, 0] = 1
    expected[1, 1, 0, 3] = 1
    expected[2, 0, 120, 7] = 2
    expected[2, 1, 126, 2] = 1
    np.testing.assert_array_equal(counts, expected)
    frames = R.dsr_events_to_frames(ev, T=3, size=128)  # no resize at 128: the counts themselves, float32
    assert frames.dtype == np.float32 and frames.max() == 2
    np.testing.assert_array_equal(frames, expected)
    # fewer events than frames: no error (as DSR's code), the first frames are empty, the last holds them all
    few = R.dsr_event_counts(ev[:2], T=3)
    assert few[:2].sum() == 0 and few[2, 1, 122, 9] == 2
    # with N divisible by T it is TET's counting in another layout: channels swapped, image rotated by 90 deg
    rng = np.random.default_rng(0)
    ev = make_events(list(zip(rng.integers(0, 128, 600), rng.integers(0, 128, 600), rng.integers(0, 2, 600))))
    np.testing.assert_array_equal(R.dsr_event_counts(ev, T=3),
                                  np.rot90(R.event_counts(ev, T=3)[:, ::-1], axes=(-2, -1)))


def test_dsr_layout_follows_dsr_read_bin_bit_by_bit(tmp_path):
    # DSR's read_bin: x = 127 - ((addr & 0xFE) >> 1), y = (addr & 0x7F00) >> 8, p = 1 - (addr & 1); the frame
    # is [channel (p == 0 -> 0, else 1), row y, column x]
    addrs = [0x00000A07, 0x00003C10, 0x00007FFE, 0x00000001]
    body = b"".join(struct.pack(">II", a, 10 * k) for k, a in enumerate(addrs))
    path = tmp_path / "bits.aedat"
    path.write_bytes(AEDAT_HEADER + body)
    counts = R.dsr_event_counts(R.read_aedat(path), T=1)
    expected = np.zeros((1, 2, 128, 128), dtype=np.int64)
    for a in addrs:
        x, y, p = 127 - ((a & 0xFE) >> 1), (a & 0x7F00) >> 8, 1 - (a & 1)
        expected[0, 0 if p == 0 else 1, y, x] += 1
    np.testing.assert_array_equal(counts, expected)


def test_dsr_resize_is_bilinear_without_antialiasing():
    rows = [(x, y, 1) for y in range(128) for x in range(128)] * 3  # 3 ON events on every pixel: uniform
    frames = R.dsr_events_to_frames(make_events(rows), T=1, size=48)
    assert frames.shape == (1, 2, 48, 48) and frames.dtype == np.float32
    np.testing.assert_allclose(frames[0, 1], 3, rtol=1e-6)  # raw counts, no normalisation
    assert (frames[0, 0] == 0).all()
    # the same as torchvision's Resize([48, 48]) on the float tensor without antialiasing (DSR's torchvision)
    from torchvision import transforms as tv

    rng = np.random.default_rng(1)
    ev = make_events(list(zip(rng.integers(0, 128, 5000), rng.integers(0, 128, 5000), rng.integers(0, 2, 5000))))
    counts = torch.from_numpy(R.dsr_event_counts(ev, T=2)).float()
    want = tv.Resize([48, 48], antialias=False)(counts)
    torch.testing.assert_close(torch.from_numpy(R.dsr_events_to_frames(ev, T=2, size=48)), want, rtol=0, atol=0)
    assert not torch.allclose(want, tv.Resize([48, 48], antialias=True)(counts))  # which is what DSR did not do


def test_dsr_float16_storage_is_checked():
    x = np.array([0.0, 1 / 36, 5 / 6, 3.0, 2047.0, 31.5], dtype=np.float32)
    np.testing.assert_allclose(DVS._dsr_float16(x).astype(np.float32), x, rtol=2.0 ** -11, atol=0)
    assert DVS._dsr_float16(x).dtype == np.float16
    for bad in (70000.0, 1e-6):  # overflows / subnormal: not within 2^-11
        with pytest.raises(ValueError, match="do not fit float16"):
            DVS._dsr_float16(np.array([1.0, bad], dtype=np.float32))


def test_dsr_augment_is_one_zero_padded_random_crop_of_the_whole_clip():
    x = torch.arange(1, 3 * 2 * 6 * 6 + 1, dtype=torch.float32).reshape(3, 2, 6, 6)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    g = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(1000):
        out = R.dsr_augment(x, generator=g)
        assert out.shape == x.shape
        offsets = [(i, j) for i in range(9) for j in range(9) if torch.equal(out, padded[..., i:i + 6, j:j + 6])]
        assert len(offsets) == 1  # one window, the same for every frame and channel
        seen.add(offsets[0])
        assert (out == 0).any() == (offsets[0] != (4, 4))  # shifted: zeros enter from the border (x has none)
    assert len(seen) == 81  # every offset in {0..8}^2 occurs
    # torch's global generator, as torchvision's RandomCrop(padding=4): same draws, same result, seeded repeat
    from torchvision import transforms as tv

    torch.manual_seed(5)
    ours = [R.dsr_augment(x) for _ in range(5)]
    torch.manual_seed(5)
    theirs = [tv.RandomCrop(6, padding=4)(x) for _ in range(5)]
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
    assert len({tuple(o.flatten().tolist()) for o in ours}) > 1  # different draws differ
    torch.manual_seed(5)
    assert all(torch.equal(a, R.dsr_augment(x)) for a in ours)


@pytest.fixture(scope="module")
def dsr(dvs_root):
    return D.load("dvs-cifar10", root=dvs_root, T=T_DVS, train_per_class=2, preprocess="dsr")


def test_dvs_cifar10_dsr_shapes_split_values(dsr, dvs, dvs_root):
    assert (dsr.input_shape, dsr.T) == ((2, 48, 48), T_DVS)
    assert (dsr.info["preprocess"], dsr.info["crop_padding"]) == ("dsr", 4)
    # the split: the first train_per_class recordings of each class by file number (DSR: 0..899 of 1,000)
    assert dsr.train.index.tolist() == [0, 1] * 10 and dsr.test.index.tolist() == [2] * 10
    assert dsr.train.labels.tolist() == dvs.train.labels.tolist() and dsr.test.labels.tolist() == list(range(10))
    assert dsr.train.frames.dtype == torch.float16
    for k, c in enumerate(CIFAR10_NAMES):
        x, y = dsr.test[k]
        assert x.shape == (T_DVS, 2, 48, 48) and x.dtype == torch.float32 and y == k
        ev = R.read_aedat(dvs_root / "dvs-cifar10" / c / f"cifar10_{c}_10.aedat")
        want = torch.from_numpy(R.dsr_events_to_frames(ev, T_DVS, 48))
        torch.testing.assert_close(x, want, rtol=2.0 ** -11, atol=0)
    x, _ = next(iter(dsr.loaders(4)[0]))
    assert x.shape == (4, T_DVS, 2, 48, 48) and x.dtype == torch.float32


def test_dvs_cifar10_dsr_train_augmentation(dsr, dvs_root):
    clean = dsr.train.frames[3].float()
    padded = torch.nn.functional.pad(clean, (4, 4, 4, 4))
    torch.manual_seed(0)
    first = [dsr.train[3][0] for _ in range(12)]
    for x in first:
        assert any(torch.equal(x, padded[..., i:i + 48, j:j + 48]) for i in range(9) for j in range(9)), \
            "a training sample is not a zero-padded crop of its frames"
    assert len({tuple(x.flatten().tolist()) for x in first}) > 1
    torch.manual_seed(0)
    assert all(torch.equal(a, dsr.train[3][0]) for a in first)  # seeded: the same crops again
    assert all(torch.equal(dsr.test[0][0], dsr.test[0][0]) for _ in range(3))  # the test set is not augmented
    plain = D.load("dvs-cifar10", root=dvs_root, T=T_DVS, train_per_class=2, preprocess="dsr", augment=False)
    assert torch.equal(plain.train[3][0], clean)


def test_dvs_cifar10_dsr_cache_separate_written_once_and_reused(dsr, dvs, dvs_root, monkeypatch):
    cache = dvs_root / "dvs-cifar10" / f"frames_dsr_T{T_DVS}_s48_v1.npz"
    tet_cache = dvs_root / "dvs-cifar10" / f"frames_T{T_DVS}_s48_v1.npz"
    assert dsr.info["cache"] == str(cache) and cache.is_file() and dvs.info["cache"] == str(tet_cache)
    assert not list(cache.parent.glob("*.tmp"))
    with np.load(cache) as z:
        assert z["frames"].dtype == np.float16
    with np.load(tet_cache) as z:  # TET's file is its own, untouched
        assert z["frames"].dtype == np.uint8
        assert np.array_equal(z["frames"][z["index"] < 2], dvs.train.frames.numpy())

    def fail(path):
        raise AssertionError("read an .aedat file although the cache is there")

    monkeypatch.setattr(DVS, "read_aedat", fail)  # the module that calls it
    again = D.load("dvs-cifar10", root=dvs_root, T=T_DVS, train_per_class=2, preprocess="dsr")
    assert torch.equal(again.train.frames, dsr.train.frames) and torch.equal(again.test.frames, dsr.test.frames)
    tet = D.load("dvs-cifar10", root=dvs_root, T=T_DVS, train_per_class=2, preprocess="tet")
    assert torch.equal(tet.train.frames, dvs.train.frames) and tet.info["cache"] == str(tet_cache)


def test_dvs_cifar10_dsr_stale_and_foreign_cache(tmp_path):
    rng = np.random.default_rng(4)
    for c in CIFAR10_NAMES:
        for i in range(2):
            write_aedat(tmp_path / "dvs-cifar10" / c / f"cifar10_{c}_{i}.aedat", *random_events(rng, 20))
    first = D.load("dvs-cifar10", root=tmp_path, T=2, size=16, train_per_class=1, preprocess="dsr")
    write_aedat(tmp_path / "dvs-cifar10" / "cat" / "cifar10_cat_1.aedat", *random_events(rng, 30))
    with pytest.warns(UserWarning, match="made from other .aedat files"):
        second = D.load("dvs-cifar10", root=tmp_path, T=2, size=16, train_per_class=1, preprocess="dsr")
    assert not torch.equal(first.test.frames[3], second.test.frames[3])
    # a uint8 (TET-style) file under the DSR name is not taken for DSR frames: rebuilt
    tet = D.load("dvs-cifar10", root=tmp_path, T=2, size=16, train_per_class=1)
    cache = tmp_path / "dvs-cifar10" / "frames_dsr_T2_s16_v1.npz"
    cache.write_bytes((tmp_path / "dvs-cifar10" / "frames_T2_s16_v1.npz").read_bytes())
    with pytest.warns(UserWarning, match="unreadable"):
        third = D.load("dvs-cifar10", root=tmp_path, T=2, size=16, train_per_class=1, preprocess="dsr")
    assert torch.equal(third.test.frames, second.test.frames) and tet.test.frames.dtype == torch.uint8


def test_dvs_cifar10_preprocess_default_T_and_bad_value(dvs_root):
    assert D.load("dvs-cifar10", root=dvs_root, train_per_class=2, preprocess="dsr").T == R.DSR_DEFAULT_T == 20
    assert "preprocess" in R._KWARGS["dvs-cifar10"] and R.DVS_DEFAULTS["preprocess"] == "tet"
    for bad in ("DSR", "spikingjelly", None):
        with pytest.raises(ValueError, match=rf"preprocess must be one of 'tet', 'dsr'; got {re.escape(repr(bad))}"):
            D.load("dvs-cifar10", root=dvs_root, T=T_DVS, train_per_class=2, preprocess=bad)


# ----------------------------------------------------------------------------------------------------------
# ImageNet


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet")
    write_imagenet(root)
    return root, D.load("imagenet", root=root)


def test_imagenet_shapes_labels_transforms(imagenet):
    root, b = imagenet
    assert (b.num_classes, b.input_shape, b.temporal) == (2, (3, 224, 224), False)
    assert len(b.train) == 4 and len(b.test) == 4
    assert [b.test[i][1] for i in range(4)] == [0, 0, 1, 1]
    x, _ = b.test[0]
    assert x.shape == (3, 224, 224) and torch.equal(x, b.test[0][0])  # val: deterministic
    torch.manual_seed(0)
    draws = [b.train[0][0] for _ in range(4)]
    assert all(d.shape == (3, 224, 224) for d in draws) and any(not torch.equal(draws[0], d) for d in draws[1:])


def test_imagenet_normalisation(tmp_path):
    """A uniform image stays uniform through Resize(256) + CenterCrop(224): x = (v / 255 - mean) / std."""
    for split in ("train", "val"):
        (tmp_path / "imagenet" / split / "n0").mkdir(parents=True)
        Image.new("RGB", (300, 260), (200, 100, 50)).save(tmp_path / "imagenet" / split / "n0" / "a.png")
    x, y = D.load("imagenet", root=tmp_path).test[0]
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    want = (torch.tensor([200, 100, 50]) / 255 - mean) / std
    torch.testing.assert_close(x, want[:, None, None].expand(3, 224, 224), atol=1e-5, rtol=0)


def test_imagenet_missing_and_unsorted_val(tmp_path):
    with pytest.raises(R.DatasetNotFoundError) as e:
        D.load("imagenet", root=tmp_path)
    msg = str(e.value)
    assert f"{tmp_path / 'imagenet' / 'train'}/<wnid>/*.JPEG" in msg and f"{tmp_path / 'imagenet' / 'val'}/" in msg
    assert "https://image-net.org/" in msg
    (tmp_path / "imagenet" / "train" / "n0").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "imagenet" / "train" / "n0" / "a.JPEG")
    (tmp_path / "imagenet" / "val").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "imagenet" / "val" / "ILSVRC2012_val_00000001.JPEG")
    with pytest.raises(R.DatasetNotFoundError, match=r"holds images but no class folders: sort the val images"):
        D.load("imagenet", root=tmp_path)
    (tmp_path / "imagenet" / "val" / "n1").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "imagenet" / "val" / "n1" / "b.JPEG")
    with pytest.raises(ValueError, match=r"must have the same class folders; these are in only one of them: n0, n1"):
        D.load("imagenet", root=tmp_path)


def test_train_reads_the_papers_data_from_data_root(dvs_root, tmp_path):
    """``TrainConfig.data_root`` / ``snnlab train --data-root``: the run's data come from that folder, and a folder
    without the files gives one line (exit code 2) naming the folder, the missing file and the option."""
    import subprocess
    import sys

    from snnlab.train import TrainConfig, load_data

    cfg = TrainConfig(dataset="dvs-cifar10", model="tutorial", T=T_DVS, data_root=str(dvs_root),
                      data_options={"train_per_class": 2})
    bundle = load_data(cfg)
    assert (bundle.name, bundle.T, len(bundle.train), len(bundle.test)) == ("dvs-cifar10", T_DVS, 20, 10)
    x, _ = bundle.train[0]
    want = R.events_to_frames(R.read_aedat(dvs_root / "dvs-cifar10" / CIFAR10_NAMES[0] /
                                           f"cifar10_{CIFAR10_NAMES[0]}_{DVS_INDICES[0]}.aedat"), T_DVS, 48)
    assert x.shape == (T_DVS, 2, 48, 48)
    assert torch.equal(bundle.train.frames[0], torch.from_numpy(want))  # the first recording, from data_root
    with pytest.raises(ValueError, match="train_per_klass"):  # a misspelt loader option is named
        load_data(cfg.replace(data_options={"train_per_klass": 2}))
    nowhere = tmp_path / "nowhere"
    p = subprocess.run([sys.executable, "-m", "snnlab", "train", "--dataset", "cifar10", "--model", "tutorial",
                        "--T", "1", "--epochs", "1", "--data-root", str(nowhere), "--out", str(tmp_path / "run")],
                       capture_output=True, text=True)
    assert p.returncode == 2, p.stderr
    err = p.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"not found under {nowhere}" in err and "data_batch_1" in err and "--data-root" in err


def test_dsr_recipe_loads_dsr_frames(dvs_root):
    """The recipe ``dsr-dvscifar10-vgg11-t20`` passes ``preprocess="dsr"`` to the loader via ``data_options``."""
    from snnlab import recipes
    from snnlab.train import load_data

    cfg = recipes.config("dsr-dvscifar10-vgg11-t20", device="cpu", data_root=str(dvs_root))
    assert cfg.data_options["preprocess"] == "dsr" and cfg.T == 20
    bundle = load_data(cfg.replace(data_options={**cfg.data_options, "train_per_class": 2}))
    assert (bundle.info["preprocess"], bundle.T, bundle.train.frames.dtype) == ("dsr", 20, torch.float16)
    assert bundle.info["cache"].endswith("frames_dsr_T20_s48_v1.npz")


def test_real_data_is_the_same_module_object_as_data_real(monkeypatch):
    import snnlab.real_data

    assert snnlab.real_data is R and R.read_aedat is DVS.read_aedat and R.DatasetNotFoundError is D.DatasetNotFoundError
    monkeypatch.setattr(snnlab.real_data, "REAL_DATASETS", ("cifar10",))  # through the old name ...
    assert R.REAL_DATASETS == ("cifar10",)  # ... the new module changes
    with pytest.raises(ValueError, match="the real datasets are 'cifar10'"):
        R.load("imagenet")


def test_cifar_validation_part_is_read_with_the_test_transform(cifar10):
    """split('val') holds out 10% of the training files, stratified, and evaluates them without augmentation."""
    root, (train_imgs, train_labels, *_), b = cifar10
    with pytest.warns(UserWarning, match="drawn at random"):  # 20 files of 9 classes: too few to stratify
        fit_idx, val_idx = b.val_indices
    assert len(val_idx) == 2 and len(fit_idx) == 18 and not set(fit_idx) & set(val_idx)
    _, val = b.split("val")
    plain = D.load("cifar10", root=root, verify=False, augment=False)
    for j, i in enumerate(val_idx):
        assert torch.equal(val[j][0], val[j][0]) and torch.equal(val[j][0], plain.train[int(i)][0])
        assert val[j][1] == train_labels[i]
