"""What every data set's reader shares: the ``DataBundle`` it returns, the data folder and the argument checks.

Every reader of ``snnlab.data`` (``embedded``, ``cifar``, ``cifar10_dvs``, ``imagenet``) imports this module and
nothing else of the package but ``sources`` and ``cache``, so the package's imports go one way: readers ->
``bundle``; ``load`` -> readers.
"""
from __future__ import annotations

import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

__all__ = ["DataBundle", "default_root", "names", "check_T", "check_seed", "check_kwargs", "check_bool",
           "check_positive_int"]


@dataclass(frozen=True)
class DataBundle:
    """A loaded data set.

    Attributes:
        name: one of ``snnlab.data.DATASETS``.
        train, test: datasets of ``(x, y)`` pairs (``TensorDataset`` for the embedded sets, torchvision's or
            ``snnlab.data.cifar10_dvs.EventFrames`` for the others); ``y`` is an int64 label ``0 .. num_classes-1``.
        num_classes: 10 for the digits, CIFAR-10 and CIFAR10-DVS, 100 for CIFAR-100, 1000 for ImageNet.
        input_shape: shape of one frame, without time: ``(1, 8, 8)``, ``(2, size, size)``, ``(3, 32, 32)``,
            ``(3, 224, 224)``.
        temporal: False: ``x`` is a static image ``[C, H, W]`` (the model repeats it T times);
            True: ``x`` is already ``T`` event frames ``[T, C, H, W]``.
        T: number of frames of temporal data; None for static data.
        info: the parameters the data were made with (and the cache file, if any).
    """

    name: str
    train: TensorDataset
    test: TensorDataset
    num_classes: int
    input_shape: tuple
    temporal: bool
    T: int | None
    info: dict = field(default_factory=dict, compare=False)

    def loaders(
        self,
        batch_size: int,
        *,
        shuffle_seed: int | None = 0,
        num_workers: int = 0,
        drop_last: bool = False,
    ) -> tuple[DataLoader, DataLoader]:
        """``(train_loader, test_loader)``. Batches are batch-first: ``x`` is ``[B, C, H, W]`` or ``[B, T, C, H, W]``.

        The train loader shuffles with a ``torch.Generator`` seeded with ``shuffle_seed`` (same seed, same
        order; None draws a fresh random seed). ``drop_last`` applies to the train loader only; the test
        loader keeps its order and every sample.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
        generator = torch.Generator()
        if shuffle_seed is None:
            generator.seed()
        else:
            generator.manual_seed(int(shuffle_seed))
        train = DataLoader(
            self.train,
            batch_size=int(batch_size),
            shuffle=True,
            generator=generator,
            num_workers=num_workers,
            drop_last=drop_last,
        )
        test = DataLoader(self.test, batch_size=int(batch_size), shuffle=False, num_workers=num_workers)
        return train, test


def default_root() -> Path:
    """The data folder: ``$SNNLAB_DATA`` if set, else the repository's ``datasets/`` folder."""
    env = os.environ.get("SNNLAB_DATA")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2] / "datasets"  # snnlab/data/bundle.py -> the repository


def names(values) -> str:
    """``values`` as a comma-separated list of reprs, for error messages: ``'a', 'b'``."""
    return ", ".join(map(repr, values))


def check_positive_int(name: str, v) -> int:
    """``v`` as an int; ValueError naming ``name`` unless it is an integer >= 1 (bools are not)."""
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
        raise ValueError(f"{name} must be a positive integer; got {v!r}")
    return int(v)


def check_T(T) -> int:
    """The number of frames ``T`` as an int (a positive integer, else ValueError)."""
    return check_positive_int("T", T)


def check_seed(seed) -> int:
    """``seed`` as an int (a non-negative integer, else ValueError)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    return int(seed)


def check_bool(name: str, v) -> None:
    """ValueError naming ``name`` unless ``v`` is True or False."""
    if not isinstance(v, bool):
        raise ValueError(f"{name} must be True or False; got {v!r}")


def check_kwargs(name: str, kwargs: dict, allowed: tuple) -> None:
    """TypeError listing the keyword arguments of ``load(name, ...)`` that are not in ``allowed``."""
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise TypeError(
            f"load({name!r}) got unknown keyword argument(s) {names(unknown)}; "
            f"allowed: {names(allowed) if allowed else 'none'}"
        )
