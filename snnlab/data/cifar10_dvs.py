"""CIFAR10-DVS from its AEDAT 2.0 recordings on disk: the reader, TET's and DSR's framing, the frame cache.

``snnlab.data.load("dvs-cifar10", root=...)`` reads ``root/dvs-cifar10/<class>/*.aedat`` for the 10 classes
``airplane .. truck``: the CIFAR10-DVS recordings (Li et al. 2017) as distributed on figshare (one zip per
class, 1,000 files ``cifar10_<class>_<i>.aedat`` each), in jAER's AEDAT 2.0 format (see ``read_aedat``).
They are turned into ``[T, 2, 48, 48]`` frames once and cached (``frames_T*_s*_v*.npz``; with
``preprocess="dsr"``: ``frames_dsr_T*_s*_v*.npz``). Nothing is downloaded.

The preprocessing follows TET's official code (github.com/brain-intelligence-lab/temporal_efficient_training,
``preprocess/``) or DSR's, tagged [code]; snnlab's own choices are tagged [snnlab].

* CIFAR10-DVS, ``preprocess="tet"`` (the default) [code ``preprocess/dvscifar_dataloader.py``,
  ``data_loaders.DVSCifar10``]:

  1. the events of one recording, in file order, are split into ``T`` (default 10) chunks of equal event
     count ``N // T`` (the last ``N mod T`` events are dropped, as the code does; SpikingJelly's
     ``split_by="number"`` puts them into the last frame instead);
  2. each chunk is accumulated into a ``2 x 128 x 128`` count frame (channel 0 = ON, 1 = OFF, snnlab's
     convention, as ``dvs-digits``);
  3. each frame is divided by its own maximum (over both channels and all pixels) [code];
  4. resized to ``48 x 48`` [code]; snnlab resizes with ``torch.nn.functional.interpolate(bilinear,
     antialias=True)`` on each channel and stores ``round(255 x)`` as uint8. The code goes through
     ``ToPILImage -> Resize((48, 48)) -> ToTensor``, which also yields multiples of 1/255, but PIL reads a
     2-channel image as luminance + alpha ("LA") and resizes it with premultiplied alpha, so channel 0 is
     erased wherever channel 1 is 0 (checked with torchvision 0.29): snnlab does not copy that;
  5. split per class: the first ``train_per_class`` (default 900) recordings of each class (by the number in
     the file name) train, the rest (100) test [docs/papers.md: 900/100; the published preprocessing script uses
     0.7 and does not run: it has a syntax error];
  6. training augmentation (NDA-style, [code ``DVSCifar10.__getitem__``]): a horizontal flip with
     probability 1/2, then ``torch.roll`` of the whole clip by ``(dy, dx)``, each uniform in ``{-5, ..., 5}``
     pixels (wrapping around). Test samples are never augmented.

  Orientation: the pixel address is decoded as SpikingJelly's ``CIFAR10DVS`` does (see ``read_aedat``). TET's
  MATLAB converter (``preprocess/dat2mat.m``) gives the left-right mirror image; the random flip makes the
  two equivalent for training.
* CIFAR10-DVS with ``preprocess="dsr"``: DSR's pipeline (Meng et al., CVPR 2022; github.com/qymeng94/DSR,
  ``cifar/utils/cifar10_dvs.py``, an early SpikingJelly ``CIFAR10DVS``, and the ``'CIFAR10DVS'`` branch of
  ``cifar/main_single_gpu.py``: ``CIFAR10DVS(split_ratio=0.9, frames_num=args.timesteps, split_by='number',
  normalization=None)``, train transform ``Resize([48, 48]), RandomCrop(48, padding=4)``, test ``Resize([48,
  48])``), tagged [code] as above:

  1. ``T`` frames (default 20, the script's ``--timesteps``) of ``N // T`` events each, in file order, the
     LAST frame taking the remainder: frame ``j`` holds events ``j*(N//T) <= i < (j+1)*(N//T)``, the last
     ``(T-1)*(N//T) <= i < N`` [code ``integrate_events_to_frames(split_by='number')``]. With fewer than ``T``
     events the code does not fail: the first ``T - 1`` frames are empty and the last one holds them all;
     snnlab does the same;
  2. raw event counts per pixel and polarity, NOT normalised (``normalization=None``: neither the ``'max'``
     of the class's default nor TET's per-frame maximum) [code];
  3. the frame layout of DSR's reader, which differs from snnlab's (``read_aedat``, ``event_counts``) [code
     ``CIFAR10DVS.read_bin``, ``integrate_events_to_frames``]: ``read_bin`` decodes ``x = 127 - x_raw``,
     ``y = y_raw`` (bits 1-7 and 8-14 of the address; the later SpikingJelly that ``read_aedat`` follows
     decodes ``x = 127 - y_raw``, ``y = 127 - x_raw``), the frame is indexed ``[row = y, column = x]``, and
     channel 0 counts ``p == 0`` with ``p = 1 - bit 0``, i.e. channel 0 = OFF, 1 = ON (snnlab: 0 = ON).
     In terms of snnlab's events (``read_aedat``'s ``x``, ``y``, ``p``): channel ``p``, row ``127 - x``,
     column ``y``; so each DSR frame is snnlab's layout with the two channels swapped and rotated by 90
     degrees (``np.rot90`` of the image, counter-clockwise). snnlab reproduces DSR's layout: for training
     from scratch it changes nothing (a fixed rotation / channel permutation, and no flip augmentation in
     DSR), but it keeps DSR's frames and checkpoints comparable;
  4. resized from 128 x 128 to ``size`` (48) as ``torchvision.transforms.Resize([48, 48])`` does on the float32
     frame tensor in the versions DSR required (PyTorch >= 1.7.1, torchvision 0.8-0.12): bilinear,
     ``align_corners=False``, WITHOUT antialiasing (those versions had none for tensors; torchvision >= 0.17
     antialiases by default, which would change DSR's inputs). snnlab calls
     ``torch.nn.functional.interpolate(bilinear, align_corners=False, antialias=False)``, which is what that
     ``Resize`` ran (and what today's ``Resize(antialias=False)`` gives). Resize is deterministic, so snnlab
     does it once, before caching (DSR does it per sample in the loader);
  5. storage [snnlab]: the resized counts are not bounded by 255, so they are cached as float16 (half the
     memory of float32: about 1.8 GB for T = 20). Every value is checked when the cache is built: finite and
     within a relative error of 2^-11 of the float32 result (counts up to 2,048 are exact; at 48 x 48 the
     values are multiples of 1/36 in exact arithmetic, far above float16's subnormal range); a recording that
     fails the check raises ValueError. Samples come back as float32 counts (no division by 255);
  6. split [code ``CIFAR10DVS.__init__``]: training takes files ``cifar10_<class>_<i>`` with
     ``i in range(int(0.9 * 1000))`` = 0..899 of every class, test 900..999; the class order is airplane ..
     truck (label order), then ``i`` ascending. That is snnlab's ``train_per_class=900`` (the default), with
     snnlab's index = the position in the natural sort of the file names, which equals ``i`` for the complete
     dataset (DSR builds the names from ``i`` and would fail on a missing file; snnlab takes what is there);
  7. training augmentation [code ``RandomCrop(48, padding=4)``]: the clip is zero-padded by 4 pixels on each
     side and one ``48 x 48`` window is cut at a uniformly random offset ``(i, j) in {0..8}^2``, the same for
     all frames and both channels (``dsr_augment``, drawn as torchvision's ``RandomCrop.get_params`` draws:
     row offset first); no flip, no roll. Test samples are only resized.

Randomness: the augmentations draw from torch's global generator (see ``snnlab.data.real``).
"""
from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .bundle import DataBundle, check_bool, check_positive_int
from .cache import read_npz, write_npz
from .sources import not_found

__all__ = [
    "DVS_CLASSES",
    "DVS_SENSOR",
    "DVS_DEFAULT_T",
    "DVS_DEFAULTS",
    "DVS_PREPROCESS",
    "DVS_MAX_SHIFT",
    "DSR_DEFAULT_T",
    "DSR_PADDING",
    "EVENT_DTYPE",
    "read_aedat",
    "event_counts",
    "events_to_frames",
    "nda_augment",
    "dsr_event_counts",
    "dsr_events_to_frames",
    "dsr_augment",
    "EventFrames",
    "check_preprocess",
    "default_T",
    "load_dvs_cifar10",
]

#: CIFAR10-DVS class folders, in label order 0..9 (the CIFAR-10 order)
DVS_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
DVS_SENSOR = 128  #: the DVS128 sensor is 128 x 128 pixels
DVS_DEFAULT_T = 10  #: frames per recording in TET's code
DVS_DEFAULTS = {"size": 48, "train_per_class": 900, "augment": True, "preprocess": "tet"}
DVS_PREPROCESS = ("tet", "dsr")  #: the values of ``preprocess`` (module docstring)
DVS_MAX_SHIFT = 5  #: the roll of TET's augmentation, in pixels
DSR_DEFAULT_T = 20  #: frames per recording in DSR's code (``--timesteps``)
DSR_PADDING = 4  #: the zero padding of DSR's ``RandomCrop(48, padding=4)``, in pixels
_DVS_CACHE_VERSION = 1  # bump when the preprocessing changes, so old caches are rebuilt
_DSR_CACHE_VERSION = 1  # the same for preprocess="dsr"
#: per preprocessing: the dtype of the cached frames
_DVS_CACHE_DTYPE = {"tet": np.uint8, "dsr": np.float16}

#: one event: timestamp (microseconds, as stored), column x, row y, polarity p (1 = ON, 0 = OFF)
EVENT_DTYPE = np.dtype([("t", np.int64), ("x", np.int16), ("y", np.int16), ("p", np.int8)])


def read_aedat(path: str | os.PathLike) -> np.ndarray:
    """Read one CIFAR10-DVS recording: a jAER AEDAT 2.0 file -> structured array of events (``EVENT_DTYPE``).

    The format (jAER's ``AEDAT 2.0``, as TET's ``dat2mat.m`` and SpikingJelly's ``CIFAR10DVS`` read it):

    * a text header of lines starting with ``#`` and ending in CRLF, the first one ``#!AER-DAT2.0``;
    * then 8 bytes per event, big-endian: a uint32 address, then a uint32 timestamp (1 us ticks);
    * the address of the DVS128 sensor: bit 0 polarity (0 = ON, 1 = OFF), bits 1-7 the sensor's
      ``x_raw`` and bits 8-14 its ``y_raw`` (0..127); the other bits are ignored.

    Decoded as SpikingJelly does: ``x = 127 - y_raw`` (column), ``y = 127 - x_raw`` (row), ``p = 1 - bit 0``.
    Timestamps are returned as stored (no wrap-around correction: the framing uses the event order only).
    Raises ValueError naming the file when the header announces another version or the data is truncated.
    """
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read()
    pos, version = 0, None
    while pos < len(raw) and raw[pos : pos + 1] == b"#":
        end = raw.find(b"\n", pos)
        end = len(raw) if end < 0 else end + 1
        line = raw[pos:end].strip()
        if line.startswith(b"#!AER-DAT"):
            version = line[len(b"#!AER-DAT"):].decode("ascii", "replace")
        pos = end
    if version is not None and not version.startswith("2."):
        raise ValueError(
            f"{path}: AEDAT version {version} is not supported; CIFAR10-DVS files are AEDAT 2.0 "
            "(header line '#!AER-DAT2.0', 8 bytes per event)"
        )
    body = raw[pos:]
    if len(body) % 8:
        raise ValueError(
            f"{path}: truncated AEDAT 2.0 data: {len(body)} bytes after the header is not a whole number of "
            "8-byte events (uint32 address + uint32 timestamp)"
        )
    words = np.frombuffer(body, dtype=">u4")
    addr, ts = words[0::2], words[1::2]
    events = np.empty(len(addr), dtype=EVENT_DTYPE)
    x_raw = (addr & 0xFE) >> 1
    y_raw = (addr & 0x7F00) >> 8
    events["t"] = ts
    events["x"] = 127 - y_raw
    events["y"] = 127 - x_raw
    events["p"] = 1 - (addr & 1)
    return events


def event_counts(events: np.ndarray, T: int, size: int = DVS_SENSOR) -> np.ndarray:
    """Split ``events`` (in order) into ``T`` chunks of ``N // T`` events and count them per pixel and polarity.

    Returns int64 ``[T, 2, size, size]``: ``out[k, c, y, x]`` counts the events ``k*(N//T) <= i < (k+1)*(N//T)``
    at row y, column x, with channel ``c = 0`` for ON (p = 1) and 1 for OFF. The last ``N mod T`` events are
    dropped (TET's code). Raises ValueError if there are fewer than T events.
    """
    T = check_positive_int("T", T)
    n = len(events)
    chunk = n // T
    if chunk == 0:
        raise ValueError(f"cannot split {n} events into T={T} frames of equal event count (need at least T events)")
    ev = events[: chunk * T]
    x, y = ev["x"].astype(np.int64), ev["y"].astype(np.int64)
    _check_on_sensor(x, y, size)
    return _count(np.arange(chunk * T) // chunk, 1 - ev["p"].astype(np.int64), y, x, T, size)


def _check_on_sensor(x: np.ndarray, y: np.ndarray, size: int) -> None:
    if len(x) and (x.min() < 0 or y.min() < 0 or x.max() >= size or y.max() >= size):
        raise ValueError(f"event coordinates outside the {size}x{size} sensor")


def _count(frame, channel, row, col, T: int, size: int) -> np.ndarray:
    """int64 ``[T, 2, size, size]``: how many events fall on each (frame, channel, row, column)."""
    flat = ((frame * 2 + channel) * size + row) * size + col
    return np.bincount(flat, minlength=T * 2 * size * size).reshape(T, 2, size, size)


def events_to_frames(events: np.ndarray, T: int = DVS_DEFAULT_T, size: int = 48) -> np.ndarray:
    """The preprocessing of one recording (module docstring, steps 1-4): uint8 ``[T, 2, size, size]``.

    ``event_counts`` -> each frame divided by its maximum (an empty frame stays 0) -> bilinear resize with
    antialiasing from 128 to ``size`` (skipped when ``size == 128``) -> ``round(255 x)``. Divide by 255 to get the
    model's input in [0, 1].
    """
    size = check_positive_int("size", size)
    counts = torch.from_numpy(event_counts(events, T)).to(torch.float32)
    peak = counts.amax(dim=(1, 2, 3), keepdim=True)
    frames = counts / peak.clamp(min=1.0)
    if size != DVS_SENSOR:
        frames = torch.nn.functional.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False,
                                                 antialias=True)
    return (frames * 255).round_().clamp_(0, 255).to(torch.uint8).numpy()


def nda_augment(x: torch.Tensor, max_shift: int = DVS_MAX_SHIFT, generator: torch.Generator | None = None):
    """TET's event augmentation of one clip ``[T, C, H, W]``: flip left-right with probability 1/2, then roll by
    ``(dy, dx)``, each uniform in ``{-max_shift, ..., max_shift}`` (``torch.roll``: pixels wrap around)."""
    if bool(torch.rand((), generator=generator) < 0.5):
        x = torch.flip(x, dims=(-1,))
    dy, dx = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,), generator=generator))
    return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))


def dsr_event_counts(events: np.ndarray, T: int, size: int = DVS_SENSOR) -> np.ndarray:
    """DSR's framing (module docstring, ``preprocess="dsr"`` steps 1-3): int64 ``[T, 2, size, size]``.

    Frame ``j < T - 1`` counts events ``j*(N//T) <= i < (j+1)*(N//T)``, the last frame the rest (the remainder
    goes to the last frame, as SpikingJelly's ``split_by='number'``). DSR's layout: ``out[j, c, r, k]`` counts
    the events with ``p == c`` (channel 0 = OFF, 1 = ON) at ``r = size - 1 - x``, ``k = y`` (``read_aedat``'s
    ``x``, ``y``, ``p``). Raw counts, no normalisation; fewer than T events leave the first frames empty.
    """
    T = check_positive_int("T", T)
    n = len(events)
    chunk = n // T
    frame = np.minimum(np.arange(n) // chunk, T - 1) if chunk else np.full(n, T - 1)
    channel = events["p"].astype(np.int64)
    x, y = events["x"].astype(np.int64), events["y"].astype(np.int64)
    _check_on_sensor(x, y, size)
    if n and (channel.min() < 0 or channel.max() > 1):
        raise ValueError("event polarities other than 0 and 1")
    return _count(frame, channel, size - 1 - x, y, T, size)


def dsr_events_to_frames(events: np.ndarray, T: int = DSR_DEFAULT_T, size: int = 48) -> np.ndarray:
    """DSR's preprocessing of one recording (module docstring, ``preprocess="dsr"`` steps 1-4): float32
    ``[T, 2, size, size]``: ``dsr_event_counts`` -> float32 -> bilinear resize WITHOUT antialiasing from 128 to
    ``size`` (``align_corners=False``, as torchvision's tensor ``Resize`` before 0.13; skipped when
    ``size == 128``). The values are (interpolated) event counts, not normalised."""
    size = check_positive_int("size", size)
    frames = torch.from_numpy(dsr_event_counts(events, T)).to(torch.float32)
    if size != DVS_SENSOR:
        frames = torch.nn.functional.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False,
                                                 antialias=False)
    return frames.numpy()


def _dsr_float16(frames: np.ndarray) -> np.ndarray:
    """``frames`` (float32) as float16, checked: finite and within a relative error of 2^-11 everywhere."""
    with np.errstate(over="ignore"):
        half = frames.astype(np.float16)
    err = np.abs(half.astype(np.float32) - frames)
    if not np.isfinite(half).all() or (err > np.abs(frames) * 2.0 ** -11).any():
        raise ValueError(
            f"event counts (max {float(frames.max()):g}) do not fit float16 within a relative error of 2^-11 "
            "(finite, at most 65504, not subnormal)"
        )
    return half


def dsr_augment(x: torch.Tensor, padding: int = DSR_PADDING, generator: torch.Generator | None = None):
    """DSR's training augmentation of one clip ``[..., H, W]``: torchvision's ``RandomCrop((H, W),
    padding=padding)`` on the whole tensor: zero padding on all four sides, then one window at row offset ``i``
    and column offset ``j``, each uniform in ``{0, ..., 2 * padding}`` (drawn in that order, as
    ``RandomCrop.get_params``), the same for every frame and channel."""
    if padding == 0:
        return x
    h, w = x.shape[-2:]
    padded = torch.nn.functional.pad(x, (padding, padding, padding, padding))
    i = int(torch.randint(0, 2 * padding + 1, size=(1,), generator=generator).item())
    j = int(torch.randint(0, 2 * padding + 1, size=(1,), generator=generator).item())
    return padded[..., i : i + h, j : j + w]


class EventFrames(Dataset):
    """Preprocessed event clips: ``x`` float32 ``[T, 2, size, size]``, ``y`` int64.

    ``preprocess="tet"``: ``frames`` are uint8 and ``x`` is ``frames / 255`` in [0, 1]; ``augment=True`` applies
    ``nda_augment`` to every sample it returns (training set). ``preprocess="dsr"``: ``frames`` are float16
    event counts and ``x`` is them as float32; ``augment=True`` applies ``dsr_augment``. ``frames`` and
    ``labels`` are the whole split, ``index`` the recording number of each sample within its class.
    """

    def __init__(self, frames: torch.Tensor, labels: torch.Tensor, index: torch.Tensor, augment: bool,
                 preprocess: str = "tet"):
        self.frames, self.labels, self.index, self.augment = frames, labels, index, bool(augment)
        self.preprocess = check_preprocess(preprocess)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        if getattr(self, "preprocess", "tet") == "dsr":
            x = self.frames[i].to(torch.float32)
            if self.augment:
                x = dsr_augment(x)
            return x, self.labels[i]
        x = self.frames[i].to(torch.float32).div_(255)
        if self.augment:
            x = nda_augment(x)
        return x, self.labels[i]


def _natural_key(p: Path):
    nums = re.findall(r"\d+", p.stem)
    return (int(nums[-1]) if nums else -1, p.name)


def _dvs_files(base: Path) -> dict[str, list[Path]]:
    return {c: sorted((base / c).glob("*.aedat"), key=_natural_key) if (base / c).is_dir() else []
            for c in DVS_CLASSES}


def _dvs_cache_path(base: Path, T: int, size: int, preprocess: str = "tet") -> Path:
    if preprocess == "dsr":
        return base / f"frames_dsr_T{T}_s{size}_v{_DSR_CACHE_VERSION}.npz"
    return base / f"frames_T{T}_s{size}_v{_DVS_CACHE_VERSION}.npz"


def _read_dvs_cache(path: Path, manifest: list | None, T: int, size: int, dtype=np.uint8):
    """``(frames, labels, index, manifest)`` from the cache, or None (with a warning) if unusable or stale."""

    def read(z):
        frames, labels, index = z["frames"], z["labels"], z["index"]
        cached = json.loads(str(z["manifest"]))
        if frames.shape[1:] != (T, 2, size, size) or frames.dtype != dtype or len(labels) != len(frames):
            raise ValueError(f"unexpected contents (frames {frames.shape} {frames.dtype})")
        return frames, labels, index, cached

    got = read_npz(path, read, redo="rebuilding")  # None: missing, or truncated or foreign (rebuild it)
    if got is None:
        return None
    frames, labels, index, cached = got
    if manifest is not None and cached != manifest:
        warnings.warn(f"cache file {path} was made from other .aedat files than those now present; rebuilding it",
                      stacklevel=4)
        return None
    return frames, labels, index, cached


def _build_frames(files: dict[str, list[Path]], T: int, size: int, preprocess: str):
    """``(frames, labels, index)`` of every recording in ``files``: class by class in label order, ``index`` the
    position of the recording within its class."""
    from tqdm.auto import tqdm  # the progress bar's notebook/terminal detection, only when frames are built

    paths = [(k, p) for k, c in enumerate(DVS_CLASSES) for p in files[c]]
    frames = np.empty((len(paths), T, 2, size, size), dtype=_DVS_CACHE_DTYPE[preprocess])
    labels = np.empty(len(paths), dtype=np.int64)
    index = np.empty(len(paths), dtype=np.int64)
    per_class = dict.fromkeys(range(len(DVS_CLASSES)), 0)
    for i, (k, p) in enumerate(tqdm(paths, desc="dvs-cifar10: events -> frames (once)", leave=False)):
        try:
            if preprocess == "dsr":
                frames[i] = _dsr_float16(dsr_events_to_frames(read_aedat(p), T, size))
            else:
                frames[i] = events_to_frames(read_aedat(p), T, size)
        except ValueError as e:
            raise ValueError(f"{p}: {e}") from None
        labels[i], index[i] = k, per_class[k]
        per_class[k] += 1
    return frames, labels, index


def load_dvs_cifar10(root: Path, T: int, *, size: int = 48, train_per_class: int = 900, augment: bool = True,
                     preprocess: str = "tet") -> DataBundle:
    """CIFAR10-DVS from ``root`` as a ``DataBundle`` of ``EventFrames`` (use ``snnlab.data.load``; module
    docstring): the frames from the cache when it matches the recordings, else built and cached."""
    preprocess = check_preprocess(preprocess)
    dtype = _DVS_CACHE_DTYPE[preprocess]
    size = check_positive_int("size", size)
    if size > DVS_SENSOR:
        raise ValueError(f"size must be at most the sensor's {DVS_SENSOR} pixels; got {size}")
    train_per_class = check_positive_int("train_per_class", train_per_class)
    check_bool("augment", augment)
    base = root / "dvs-cifar10"
    files = _dvs_files(base)
    cache = _dvs_cache_path(base, T, size, preprocess)
    missing = [f"{base / c}/ (no .aedat files)" for c, fs in files.items() if not fs]
    if len(missing) == len(DVS_CLASSES) and cache.exists():
        manifest = None  # the recordings were removed after the cache was made: use the cache alone
    elif missing:
        raise not_found("dvs-cifar10", root, missing,
                        extra="(Once the frames are cached in dvs-cifar10/frames_*.npz the .aedat files may go.)")
    else:
        manifest = [[f"{c}/{p.name}", p.stat().st_size] for c in DVS_CLASSES for p in files[c]]

    cache_only = manifest is None
    got = _read_dvs_cache(cache, manifest, T, size, dtype)
    if got is not None:
        frames, labels, index, manifest = got
        cached = True
    elif cache_only:
        raise not_found("dvs-cifar10", root, missing, extra=f"(The cache {cache} is unreadable.)")
    else:
        frames, labels, index = _build_frames(files, T, size, preprocess)
        arrays = {"frames": frames, "labels": labels, "index": index, "manifest": np.array(json.dumps(manifest))}
        cached = write_npz(cache, arrays, compressed=False, kept="frames")

    counts = np.bincount(labels, minlength=len(DVS_CLASSES))
    short = [f"{DVS_CLASSES[k]} ({n})" for k, n in enumerate(counts) if n <= train_per_class]
    if short:
        raise ValueError(
            f"train_per_class={train_per_class} leaves no test recordings for class(es) {', '.join(short)}: "
            f"each class needs more than train_per_class recordings (CIFAR10-DVS has 1,000 per class; default 900)"
        )
    is_train = index < train_per_class
    x, y, idx = torch.from_numpy(frames), torch.from_numpy(labels), torch.from_numpy(index)
    tr, te = torch.from_numpy(np.flatnonzero(is_train)), torch.from_numpy(np.flatnonzero(~is_train))
    return DataBundle(
        val_fraction=0.1,  # 10% of the training files held out by split('val')
        plain_train=lambda: EventFrames(x[tr], y[tr], idx[tr], augment=False, preprocess=preprocess),
        name="dvs-cifar10",
        train=EventFrames(x[tr], y[tr], idx[tr], augment=augment, preprocess=preprocess),
        test=EventFrames(x[te], y[te], idx[te], augment=False, preprocess=preprocess),
        num_classes=len(DVS_CLASSES), input_shape=(2, size, size), temporal=True, T=T,
        info={"source": str(base), "format": "AEDAT 2.0 (jAER)", "classes": list(DVS_CLASSES), "T": T, "size": size,
              "train_per_class": train_per_class, "augment": augment, "preprocess": preprocess,
              **({"crop_padding": DSR_PADDING} if preprocess == "dsr" else {"max_shift": DVS_MAX_SHIFT}),
              "recordings": int(len(labels)), "cache": str(cache) if cached else None,
              "cache_only": cache_only},
    )


def check_preprocess(v) -> str:
    """``v`` if it is one of ``DVS_PREPROCESS`` (``"tet"``, ``"dsr"``), else ValueError."""
    if not isinstance(v, str) or v not in DVS_PREPROCESS:
        raise ValueError(f"preprocess must be one of {', '.join(map(repr, DVS_PREPROCESS))}; got {v!r}")
    return v


def default_T(preprocess="tet") -> int:
    """Frames per recording when ``load`` gets no ``T``: ``DSR_DEFAULT_T`` for ``preprocess="dsr"``, else
    ``DVS_DEFAULT_T`` (ValueError for another ``preprocess``)."""
    return DSR_DEFAULT_T if check_preprocess(preprocess) == "dsr" else DVS_DEFAULT_T
