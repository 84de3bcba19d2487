"""The fixed evaluation data of a landscape: ``fixed_batches`` (encoded, time-first) and moving it to the model.

Also the type aliases shared by the package: ``Batches`` (a sequence of ``(x [T, B, ...], y [B])``) and
``LossFn`` (``loss_fn(outputs [T, B, C], y) -> scalar``).
"""
from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..layers import encode

__all__ = ["Batches", "LossFn", "fixed_batches"]

Batches = Sequence[tuple[torch.Tensor, torch.Tensor]]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _check_fixed_batches_args(bundle, T, n_batches, batch_size, split) -> int:
    """Validate the arguments of ``fixed_batches``; return the number of time steps to encode with."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    for name, v in (("n_batches", n_batches), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if bundle.temporal:
        if T is not None and T != bundle.T:
            raise ValueError(
                f"event data {bundle.name!r} was made with T={bundle.T} frames; got T={T!r}. "
                f"Pass T=None (or T={bundle.T}), or load the data with T={T!r}."
            )
        return bundle.T
    if isinstance(T, bool) or not isinstance(T, numbers.Integral) or T < 1:
        raise ValueError(f"T (number of time steps) must be a positive integer for static data, got {T!r}")
    return T


def fixed_batches(bundle, T: int | None, n_batches: int = 2, batch_size: int = 128, split: str = "train",
                  seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A fixed, deterministic set of encoded batches on which every landscape point is evaluated.

    The samples are the first ``n_batches * batch_size`` of a permutation of ``split`` drawn with a
    ``torch.Generator`` seeded with ``seed`` (the same seed always gives the same samples, independent of the
    global random state). Each batch is encoded with ``snnlab.layers.encode`` and made contiguous once, so
    the grid never re-encodes: static images ``[B, C, H, W]`` are repeated T times (direct encoding), event
    data ``[B, T, C, H, W]`` is transposed to time-first.

    Args:
        bundle: a ``snnlab.data.DataBundle`` (e.g. ``snnlab.data.load("digits")``).
        T: time steps for static data. For event data the frames are already there: ``T`` must be None or
            equal ``bundle.T``.
        n_batches, batch_size: how many batches of how many samples (the last batch is smaller if the split
            has fewer than ``n_batches * batch_size`` samples).
        split: ``"train"`` or ``"test"``.
        seed: which samples.

    Returns:
        list of ``(x, y)`` with ``x`` ``[T, B, ...]`` float and ``y`` ``[B]`` int64, on the CPU (the landscape
        functions move them once to the model's device).
    """
    T = _check_fixed_batches_args(bundle, T, n_batches, batch_size, split)
    dataset = bundle.train if split == "train" else bundle.test
    g = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(len(dataset), generator=g)[: n_batches * batch_size]
    batches = []
    for chunk in order.split(int(batch_size)):
        xs, ys = zip(*(dataset[int(i)] for i in chunk))
        x = torch.stack([torch.as_tensor(v) for v in xs])
        y = torch.as_tensor(np.asarray([int(v) for v in ys]), dtype=torch.long)
        batches.append((encode(x, int(T), bundle.temporal).contiguous(), y))
    return batches


def _on_model_device(model: nn.Module, batches: Batches) -> list:
    """The batches moved (once) to the device of the model's parameters (a no-op when already there)."""
    p = next(model.parameters(), None)
    if p is None:
        return list(batches)
    return [(x.to(p.device), y.to(p.device)) for x, y in batches]
