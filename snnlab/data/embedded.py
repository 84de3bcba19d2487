"""The two embedded data sets, ``digits`` and ``dvs-digits``: scikit-learn's 8x8 digits and a simulated event camera.

Nothing is downloaded. Both data sets are built from scikit-learn's bundled 8x8 handwritten digits
(``sklearn.datasets.load_digits``: 1,797 images, 10 classes), with one fixed, stratified train/test split
(1,437 train / 360 test) that never depends on any seed.

``snnlab.data.load(name)`` returns a ``DataBundle`` holding two ``TensorDataset``s of ``(x, y)`` pairs:

* ``"digits"``: ``x`` is one static image ``[1, 8, 8]``, float32 in ``[0, 1]``. It carries no time: the
  model's encoder repeats it T times (direct encoding), so ``load("digits")`` takes no ``T``.
* ``"dvs-digits"``: ``x`` is a short clip of event frames ``[T, 2, 24, 24]``, float32 event *counts*
  (channel 0 = ON events, channel 1 = OFF events).

dvs-digits is SIMULATED, not a recording. It imitates how N-MNIST was made -- a real event camera (DVS)
was pointed at MNIST digits on a monitor and moved in three small saccades -- with a software model of the
camera:

1. Each digit is upsampled to 16x16 (bilinear) and placed in the middle of a dark ``size x size`` canvas.
2. The digit moves along a closed triangle (three saccades, each about ``amplitude`` = 3 px) and is sampled
   at ``n_sim`` sub-steps; sub-pixel positions use bilinear interpolation. Each sample gets a small random
   start phase, amplitude and offset (``jitter``) from ``numpy.random.default_rng(seed)``.
3. Every pixel of the camera keeps a reference log intensity and fires an event whenever the log
   intensity has moved by the contrast threshold ``C`` since its last event::

       L(t)  = log(I(t) + eps)                     eps = 0.1, the dark background level
       d     = L(t) - L_ref
       n_on  = floor(max(d, 0) / C)                ON events  (brighter)
       n_off = floor(max(-d, 0) / C)               OFF events (darker)
       L_ref = L_ref + (n_on - n_off) * C          the reference follows in steps of C

   ``L_ref`` starts at the first sub-step's ``L``, so a still image gives no events at all, and since the
   path is closed (the digit ends where it started) every pixel fires as many ON as OFF events (up to 1).
4. The ``n_sim`` sub-steps are binned into ``T`` frames of event counts: ``[T, 2, size, size]``.

Generating dvs-digits takes a few seconds; the result is cached as a compressed ``.npz`` in ``root``
(default: the repository's ``datasets/`` folder, or the folder in the environment variable
``SNNLAB_DATA``). The file name lists every parameter, so changing one makes a new file.

``simulate_events`` runs the camera model on any batch of images, ``events_from_log_intensity`` is the bare
pixel model (for your own movies).
"""
from __future__ import annotations

import json
import math
import numbers
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .bundle import DataBundle, check_kwargs, check_seed, check_T, default_root
from .cache import read_npz, write_npz

__all__ = [
    "EMBEDDED",
    "DEFAULT_T",
    "OBJECT_SIZE",
    "BACKGROUND",
    "DVS_DEFAULTS",
    "simulate_events",
    "events_from_log_intensity",
    "load",
]

EMBEDDED = ("digits", "dvs-digits")  #: ship with the install (generated from scikit-learn's digits)
DEFAULT_T = 8  #: frames of dvs-digits when ``T`` is not given
OBJECT_SIZE = 16  #: the digit is upsampled to OBJECT_SIZE x OBJECT_SIZE before it is put on the canvas
BACKGROUND = 0.1  #: eps in L = log(I + eps): the light level of a black pixel

#: parameters of the dvs-digits simulation that ``load("dvs-digits", **kwargs)`` accepts, with defaults
DVS_DEFAULTS = {
    "size": 24,  # canvas side in pixels
    "threshold": 0.15,  # contrast threshold C (log units)
    "n_sim": 60,  # simulation sub-steps for the whole triangle
    "amplitude": 3.0,  # saccade size in pixels
    "jitter": 0.1,  # per-sample randomness of amplitude, start phase and offset (0 = none)
    "threshold_noise": 0.0,  # std of the per-pixel threshold mismatch, relative to C (0 = none)
}
#: a change of exactly k * C gives k events even when float rounding makes it k * C - 1e-17 (a pixel that
#: returns to its start value then fires exactly as many OFF as ON events)
_TIE = 1e-9
_CACHE_VERSION = 1  # bump when the simulation changes, so old cache files are not reused


def load(name: str, *, T: int | None = None, root: str | os.PathLike | None = None, seed: int = 0,
         **kwargs) -> DataBundle:
    """Load one of ``EMBEDDED`` as a ``DataBundle`` (use ``snnlab.data.load``; see its docstring and this module's)."""
    if name not in EMBEDDED:
        raise ValueError(f"unknown dataset {name!r}; the embedded datasets are {', '.join(map(repr, EMBEDDED))}")
    if name == "digits":
        if T is not None:
            raise ValueError(
                f"'digits' is a static dataset, so load() takes no T (got T={T!r}): the model's encoder "
                "repeats each image T times, not the loader. Call load('digits') and set T in the model/config."
            )
        check_kwargs(name, kwargs, allowed=())
        return _load_digits_bundle()
    T = DEFAULT_T if T is None else check_T(T)
    check_kwargs(name, kwargs, allowed=tuple(DVS_DEFAULTS))
    return _load_dvs_bundle(T=T, root=root, seed=check_seed(seed), **{**DVS_DEFAULTS, **kwargs})


# ----------------------------------------------------------------------------------------------------------
# digits


def _digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 digit images ``[N, 8, 8]`` float64 in [0, 1] and their labels ``[N]`` int64."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images / 16.0, d.target.astype(np.int64)


def _split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fixed stratified split: indices of the 1,437 train and 360 test images (never seeded by the user)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    train_idx, test_idx = train_test_split(idx, test_size=0.2, random_state=0, stratify=labels)
    return train_idx, test_idx


def _bundle(name: str, x: torch.Tensor, labels: np.ndarray, *, input_shape: tuple, T: int | None,
            info: dict) -> DataBundle:
    """The ``DataBundle`` of samples ``x`` (one per digit) with ``labels``, split by ``_split``; temporal iff ``T``."""
    y = torch.from_numpy(labels)
    tr, te = (torch.from_numpy(i) for i in _split(labels))
    return DataBundle(
        name=name,
        train=TensorDataset(x[tr], y[tr]),
        test=TensorDataset(x[te], y[te]),
        num_classes=10,
        input_shape=input_shape,
        temporal=T is not None,
        T=T,
        info=info,
    )


def _load_digits_bundle() -> DataBundle:
    images, labels = _digits()
    x = torch.from_numpy(images.astype(np.float32)).unsqueeze(1)  # [N, 1, 8, 8]
    info = {"source": "sklearn.datasets.load_digits", "scale": "pixel / 16"}
    return _bundle("digits", x, labels, input_shape=(1, 8, 8), T=None, info=info)


# ----------------------------------------------------------------------------------------------------------
# the event camera model


def _dvs_step(log_i: np.ndarray, log_ref: np.ndarray, threshold) -> tuple[np.ndarray, np.ndarray]:
    """One sub-step of the pixel model. Returns ON and OFF counts and updates ``log_ref`` in place."""
    d = log_i - log_ref
    n_on = np.floor(np.maximum(d, 0.0) / threshold + _TIE)
    n_off = np.floor(np.maximum(-d, 0.0) / threshold + _TIE)
    log_ref += (n_on - n_off) * threshold
    return n_on, n_off


def _bin_of_step(n_steps: int, T: int) -> np.ndarray:
    """Frame index of each event sub-step: ``n_steps`` sub-steps split into ``T`` (nearly) equal bins."""
    return (np.arange(n_steps) * T) // n_steps


def events_from_log_intensity(log_frames: np.ndarray, *, threshold=0.15, T: int | None = None) -> np.ndarray:
    """The bare event-camera pixel model on a movie of log intensities.

    Args:
        log_frames: ``[N, S + 1, *pixels]`` log intensities ``L = log(I + eps)``; frame 0 only sets the
            reference ``L_ref`` of every pixel, frames 1..S emit events.
        threshold: contrast threshold ``C`` (> 0): a number, or an array that broadcasts to ``pixels``
            (per-pixel thresholds).

        T: bin the S sub-steps into T frames (T <= S); None keeps one frame per sub-step.

    Returns:
        int64 event counts ``[N, T or S, 2, *pixels]``; channel 0 = ON (brighter), 1 = OFF (darker).
    """
    log_frames = np.asarray(log_frames, dtype=np.float64)
    if log_frames.ndim < 2 or log_frames.shape[1] < 2:
        raise ValueError(f"log_frames must be [N, S + 1, ...] with S >= 1; got shape {log_frames.shape}")
    threshold = _check_threshold(threshold)
    n_steps = log_frames.shape[1] - 1
    T = n_steps if T is None else check_T(T)
    if T > n_steps:
        raise ValueError(f"T must be <= the number of sub-steps S = {n_steps}; got T={T}")
    out = np.zeros((log_frames.shape[0], T, 2) + log_frames.shape[2:], dtype=np.int64)
    log_ref = log_frames[:, 0].copy()
    for k, t in enumerate(_bin_of_step(n_steps, T)):
        n_on, n_off = _dvs_step(log_frames[:, k + 1], log_ref, threshold)
        out[:, t, 0] += n_on.astype(np.int64)
        out[:, t, 1] += n_off.astype(np.int64)
    return out


def _check_threshold(threshold):
    c = np.asarray(threshold, dtype=np.float64)
    if not np.all(np.isfinite(c)) or not np.all(c > 0):
        raise ValueError(f"threshold must be > 0 (the contrast threshold C in log units); got {threshold!r}")
    return float(c) if c.ndim == 0 else c


def _shift_axis(img: np.ndarray, shift: np.ndarray, axis: int) -> np.ndarray:
    """Move each image ``img[n]`` by ``shift[n]`` pixels (sub-pixel, linear interpolation) along ``axis`` (1 or 2).

    Pixels that come from outside the image are dark (0).
    """
    n, size = img.shape[0], img.shape[axis]
    src = np.arange(size)[None, :] - shift[:, None]  # [N, size]: where each output pixel comes from
    i0 = np.floor(src).astype(np.int64)
    w1 = src - i0  # weight of the right/lower neighbour
    pad = [(0, 0)] * img.ndim
    pad[axis] = (1, 1)
    padded = np.pad(img, pad)  # padded[..., 0] and padded[..., size + 1] are dark
    lo = np.clip(i0 + 1, 0, size + 1)
    hi = np.clip(i0 + 2, 0, size + 1)
    rows = np.arange(n)[:, None]
    if axis == 1:
        a, b = padded[rows, lo, :], padded[rows, hi, :]  # [N, size, W]
        return a * (1 - w1)[:, :, None] + b * w1[:, :, None]
    n_rows = np.arange(img.shape[1])[None, :, None]
    a, b = padded[rows[:, :, None], n_rows, lo[:, None, :]], padded[rows[:, :, None], n_rows, hi[:, None, :]]
    return a * (1 - w1)[:, None, :] + b * w1[:, None, :]


def _shift(img: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """Bilinear sub-pixel shift of each image ``[N, H, W]`` by ``(dy[n], dx[n])`` pixels (down, right)."""
    return _shift_axis(_shift_axis(img, dy, axis=1), dx, axis=2)


def _triangle(t: np.ndarray, amplitude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position ``(dy, dx)`` in pixels at cycle phase ``t`` in [0, 1) on the closed three-saccade path.

    The vertices (centred on the triangle's centroid) are top-left, bottom-middle and top-right:
    saccade 1 goes down-right, saccade 2 up-right, saccade 3 left, back to the start.
    """
    vy = np.array([-1 / 3, 2 / 3, -1 / 3, -1 / 3])  # the 4th vertex closes the loop
    vx = np.array([-1 / 2, 0.0, 1 / 2, -1 / 2])
    s = np.minimum(np.floor(t * 3).astype(np.int64), 2)  # which saccade
    f = t * 3 - s  # fraction of it done
    dy = vy[s] + f * (vy[s + 1] - vy[s])
    dx = vx[s] + f * (vx[s + 1] - vx[s])
    return dy * amplitude, dx * amplitude


def simulate_events(
    images: np.ndarray,
    *,
    T: int = DEFAULT_T,
    threshold: float = 0.15,
    n_sim: int = 60,
    size: int = 24,
    amplitude: float = 3.0,
    jitter: float = 0.1,
    threshold_noise: float = 0.0,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Simulate an event camera (DVS) watching ``images`` move in three saccades, as N-MNIST was recorded.

    Args:
        images: ``[N, H, W]`` grey images in [0, 1] (0 = black). Each is resized (bilinear) to 16x16 and
            put in the middle of a black ``size x size`` canvas.

        T: number of output frames; the ``n_sim`` sub-steps are split into T (nearly) equal bins.
        threshold: contrast threshold C, in log-intensity units (> 0).
        n_sim: simulation sub-steps for the whole closed triangle (>= T).
        size: canvas side in pixels (>= 16).
        amplitude: saccade size in pixels (0 = a still image, which gives no events).

        jitter: per-sample randomness in [0, 1): amplitude x U(1 - jitter, 1 + jitter), start phase
            U(0, jitter) of the cycle, triangle offset U(-jitter, jitter) x amplitude px in y and x.
        threshold_noise: std of the per-pixel threshold mismatch relative to C (one map for the camera,
            the same for every image); 0 gives every pixel exactly C.

        rng: ``numpy.random.Generator`` or seed for the jitter and the threshold map.

    Returns:
        uint8 event counts ``[N, T, 2, size, size]`` (channel 0 = ON, 1 = OFF), clipped at 255.

    The camera model (per pixel, at every sub-step, see the module docstring)::

        L = log(I + 0.1);  n_on = floor(max(L - L_ref, 0) / C);  n_off = floor(max(L_ref - L, 0) / C)
        L_ref += (n_on - n_off) * C
    """
    images, T, threshold, n_sim, size, amplitude, jitter, threshold_noise = _check_simulation(
        images, T, threshold, n_sim, size, amplitude, jitter, threshold_noise)
    rng = np.random.default_rng(rng)
    canvas = _scene(images, size)
    c, path = _camera(rng, canvas.shape[0], size, threshold, threshold_noise, amplitude, jitter)
    return _events(canvas, T, n_sim, c, path)


def _check_simulation(images, T, threshold, n_sim, size, amplitude, jitter, threshold_noise) -> tuple:
    """``simulate_events``'s arguments checked (ValueError) and converted, in its order, ``images`` as float64."""
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3:
        raise ValueError(f"images must be [N, H, W]; got shape {images.shape}")
    T = check_T(T)
    threshold = _check_threshold(threshold)
    if np.ndim(threshold) != 0:
        raise ValueError("threshold must be a number; use threshold_noise for per-pixel thresholds")
    n_sim = _check_int("n_sim", n_sim, minimum=T, why=f"at least T = {T}")
    size = _check_int("size", size, minimum=OBJECT_SIZE, why=f"at least the digit size {OBJECT_SIZE}")
    amplitude = _check_float("amplitude", amplitude, lo=0.0)
    jitter = _check_float("jitter", jitter, lo=0.0, hi=1.0)
    threshold_noise = _check_float("threshold_noise", threshold_noise, lo=0.0, hi=1.0)
    return images, T, threshold, n_sim, size, amplitude, jitter, threshold_noise


def _scene(images: np.ndarray, size: int) -> np.ndarray:
    """Step 1, the scene ``[N, size, size]``: each image resized to a 16x16 digit in the middle of a black canvas."""
    from scipy.ndimage import zoom

    n, h, w = images.shape
    digit = zoom(images, (1, OBJECT_SIZE / h, OBJECT_SIZE / w), order=1, grid_mode=False)
    digit = np.clip(digit[:, :OBJECT_SIZE, :OBJECT_SIZE], 0.0, 1.0)
    canvas = np.zeros((n, size, size))
    o = (size - OBJECT_SIZE) // 2
    canvas[:, o : o + OBJECT_SIZE, o : o + OBJECT_SIZE] = digit
    return canvas


def _camera(rng: np.random.Generator, n: int, size: int, threshold: float, threshold_noise: float,
            amplitude: float, jitter: float) -> tuple:
    """Step 2, the camera's draws: ``(c, (amp, phase, offset))``, the threshold (map) ``c``, then each sample's path.

    This order of draws is fixed (the same seed must give the same events).
    """
    c = threshold
    if threshold_noise > 0:
        c = threshold * np.clip(1 + threshold_noise * rng.standard_normal((size, size)), 0.1, None)
    amp = amplitude * rng.uniform(1 - jitter, 1 + jitter, n)
    phase = rng.uniform(0.0, jitter, n) if jitter > 0 else np.zeros(n)
    offset = rng.uniform(-jitter, jitter, (2, n)) * amplitude
    return c, (amp, phase, offset)


def _log_intensity(canvas: np.ndarray, k: int, n_sim: int, path: tuple) -> np.ndarray:
    """``L`` at sub-step ``k`` of the path ``(amp, phase, offset)``; ``k = n_sim`` is the start again (closed path)."""
    amp, phase, offset = path
    t = (phase + (k % n_sim) / n_sim) % 1.0
    dy, dx = _triangle(t, amp)
    return np.log(_shift(canvas, dy + offset[0], dx + offset[1]) + BACKGROUND)


def _events(canvas: np.ndarray, T: int, n_sim: int, c, path: tuple) -> np.ndarray:
    """Steps 3 and 4, the pixels: events at every sub-step, binned into T frames -> uint8 ``[N, T, 2, size, size]``."""
    n, size = canvas.shape[0], canvas.shape[1]
    out = np.zeros((n, T, 2, size, size), dtype=np.uint16)
    log_ref = _log_intensity(canvas, 0, n_sim, path)
    for k, t in enumerate(_bin_of_step(n_sim, T)):
        n_on, n_off = _dvs_step(_log_intensity(canvas, k + 1, n_sim, path), log_ref, c)
        out[:, t, 0] += np.minimum(n_on, 255).astype(np.uint16)
        out[:, t, 1] += np.minimum(n_off, 255).astype(np.uint16)
    return np.minimum(out, 255).astype(np.uint8)


def _check_int(name, value, *, minimum: int, why: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer, {why}; got {value!r}")
    return int(value)


def _check_float(name, value, *, lo: float, hi: float | None = None) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and value >= lo
    if ok and hi is not None:
        ok = value < hi
    if not ok:
        rng = f"in [{lo:g}, {hi:g})" if hi is not None else f">= {lo:g}"
        raise ValueError(f"{name} must be a finite number {rng}; got {value!r}")
    return float(value)


# ----------------------------------------------------------------------------------------------------------
# dvs-digits: generate once, cache as .npz


def _cache_name(T: int, seed: int, size: int, threshold, n_sim: int, amplitude, jitter, threshold_noise) -> str:
    return (
        f"dvs-digits_T{T}_seed{seed}_s{size}_c{threshold:g}_n{n_sim}"
        f"_a{amplitude:g}_j{jitter:g}_m{threshold_noise:g}_v{_CACHE_VERSION}.npz"
    )


def _read_cache(path: Path, shape: tuple, labels: np.ndarray) -> np.ndarray | None:
    """The cached events, or None (with a warning) when the file is missing, corrupt or does not match."""

    def read(z) -> np.ndarray:
        events, cached_labels = z["events"], z["labels"]
        if events.shape != shape or events.dtype != np.uint8 or not np.array_equal(cached_labels, labels):
            raise ValueError(f"unexpected contents (events {events.shape} {events.dtype})")
        return events

    return read_npz(path, read, redo="regenerating")


def _load_dvs_bundle(*, T: int, root, seed: int, **params) -> DataBundle:
    # check everything before any work (simulate_events checks again, with the same messages)
    _check_threshold(params["threshold"])
    if np.ndim(params["threshold"]) != 0:
        raise ValueError(f"threshold must be a number; got {params['threshold']!r}")
    _check_int("size", params["size"], minimum=OBJECT_SIZE, why=f"at least the digit size {OBJECT_SIZE}")
    _check_int("n_sim", params["n_sim"], minimum=T, why=f"at least T = {T}")
    _check_float("amplitude", params["amplitude"], lo=0.0)
    _check_float("jitter", params["jitter"], lo=0.0, hi=1.0)
    _check_float("threshold_noise", params["threshold_noise"], lo=0.0, hi=1.0)

    images, labels = _digits()
    size = int(params["size"])
    shape = (len(labels), T, 2, size, size)
    path = Path(root).expanduser() if root is not None else default_root()
    path = path / _cache_name(T, seed, **params)
    meta = {"name": "dvs-digits", "T": T, "seed": seed, **params, "version": _CACHE_VERSION}

    events = _read_cache(path, shape, labels)
    if events is None:
        events = simulate_events(images, T=T, rng=np.random.default_rng(seed), **params)
        arrays = {"events": events, "labels": labels, "meta": np.array(json.dumps(meta))}
        cached = write_npz(path, arrays, compressed=True, kept="data")
    else:
        cached = True

    x = torch.from_numpy(events.astype(np.float32))  # [N, T, 2, size, size] counts
    info = {**meta, "simulated": True, "cache": str(path) if cached else None}
    return _bundle("dvs-digits", x, labels, input_shape=(2, size, size), T=T, info=info)
