"""MNIST-1D (Greydanus 2020, "Scaling down deep learning"): ten 1-D digit templates, padded, sheared, shifted,
scaled and noised into 40-sample signals; harder than the 8x8 digits (in its paper: about 32% for logistic
regression, 68% for an MLP, 94% for a CNN, 91% for a GRU) yet small enough for a laptop.

The data are generated offline, never downloaded: the ``mnist1d`` package's ``make_dataset`` with its default
arguments (``get_dataset_args()``: 5,000 samples, seed 42, an 80/20 split) gives 4,000 training and 1,000 test
signals of 40 float values, standardised over the whole set. Its global ``random``/``numpy`` seeding is kept
inside the call (the caller's random state is restored). The package also offers a download of the published
pickle (made by the same function, per its documentation); snnlab does not use it (no network), and could not
compare against it here.

Two encodings, two names:

* ``"mnist1d"``: static, ``x`` is ``[1, 40]`` (one channel of 40 samples); the model's encoder repeats it T
  times, like ``digits``.
* ``"mnist1d-seq"``: temporal, the signal fed one sample per time step: ``x`` is ``[40, 1]`` (T = 40 frames of
  one value), so the membrane has to carry the signal's history: a genuinely temporal task.
"""
from __future__ import annotations

import functools
import random

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .bundle import DataBundle, check_kwargs

__all__ = ["MNIST1D", "SEQ_T", "load", "raw"]

MNIST1D = ("mnist1d", "mnist1d-seq")
SEQ_T = 40  #: time steps of the sequence encoding: one per sample of the signal


@functools.lru_cache(maxsize=1)
def _make() -> dict:
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as e:  # a dependency of snnlab; say how to get it if an environment lacks it
        raise ImportError("MNIST-1D needs the 'mnist1d' package (pip install mnist1d); it is in snnlab's "
                          f"requirements: {e}") from e
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        d = make_dataset(get_dataset_args())
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return {k: np.array(d[k]) for k in ("x", "y", "x_test", "y_test")}


def raw() -> dict:
    """The generated arrays: ``x`` ``[4000, 40]``, ``y`` ``[4000]``, ``x_test`` ``[1000, 40]``, ``y_test`` (copies)."""
    return {k: v.copy() for k, v in _make().items()}


def load(name: str, *, T: int | None = None, **kwargs) -> DataBundle:
    """``DataBundle`` of ``"mnist1d"`` (static ``[1, 40]``) or ``"mnist1d-seq"`` (``[40, 1]``, T = 40)."""
    if name not in MNIST1D:
        raise ValueError(f"unknown MNIST-1D variant {name!r}; available: {', '.join(map(repr, MNIST1D))}")
    check_kwargs(name, kwargs, allowed=())
    d = _make()
    x, x_test = (torch.from_numpy(d[k].astype(np.float32)) for k in ("x", "x_test"))
    y, y_test = (torch.from_numpy(d[k].astype(np.int64)) for k in ("y", "y_test"))
    info = {"source": "mnist1d.data.make_dataset(get_dataset_args())", "seed": 42, "train": len(y),
            "test": len(y_test), "standardised": "over all 5,000 signals (mean 0, std 1)"}
    if name == "mnist1d":
        if T is not None:
            raise ValueError(f"'mnist1d' is static, so load() takes no T (got T={T!r}): the model's encoder repeats "
                             "the signal T times. For one signal sample per time step use 'mnist1d-seq'.")
        dim, input_shape, steps = 1, (1, 40), None  # [1, 40]
    else:
        if T is not None and T != SEQ_T:
            raise ValueError(f"'mnist1d-seq' feeds one of the signal's {SEQ_T} samples per time step, so T must be "
                             f"{SEQ_T} (or None); got T={T!r}")
        info["encoding"] = "one sample per time step"
        dim, input_shape, steps = 2, (1,), SEQ_T  # [40, 1]
    return DataBundle(name=name, train=TensorDataset(x.unsqueeze(dim), y),
                      test=TensorDataset(x_test.unsqueeze(dim), y_test), num_classes=10, input_shape=input_shape,
                      temporal=steps is not None, T=steps, info=info)
