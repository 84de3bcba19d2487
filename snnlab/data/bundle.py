"""What every data set's reader shares: the ``DataBundle`` it returns, the data folder and the argument checks.

Every reader of ``snnlab.data`` (``embedded``, ``cifar``, ``cifar10_dvs``, ``imagenet``) imports this module and
nothing else of the package but ``sources`` and ``cache``, so the package's imports go one way: readers ->
``bundle``; ``load`` -> readers.
"""
from __future__ import annotations

import functools
import numbers
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset, TensorDataset

__all__ = ["DataBundle", "SPLITS", "VAL_FRACTION", "VAL_SEED", "default_root", "names", "check_T", "check_seed",
           "check_kwargs", "check_bool", "check_positive_int", "check_split", "epoch_split", "final_split",
           "labels_of", "validation_indices"]

#: what a run evaluates (``TrainConfig.split``): ``"test"`` trains on the whole training split and evaluates the
#: test split (the papers' protocol); ``"val"`` trains on the training split minus its validation part and
#: evaluates that part (for every choice; the test split is never read); ``"final"`` trains like ``"val"`` and,
#: after the last epoch, evaluates the test split once.
SPLITS = ("test", "val", "final")


def epoch_split(split: str) -> str:
    """The split a run with ``TrainConfig.split == split`` measures every epoch: ``"test"`` or ``"val"``."""
    return "test" if check_split(split) == "test" else "val"


def final_split(split: str) -> str:
    """The split of a finished run's final views (per-step accuracy, other T): ``"val"`` only for ``"val"``."""
    return "val" if check_split(split) == "val" else "test"


VAL_FRACTION = 0.2  #: share of the training split held out for validation (stratified by class), embedded sets
VAL_SEED = 0  #: the validation split's seed: fixed, so every run of every method is chosen on the same samples


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

        val_fraction: the share of ``train`` held out as the validation split (``split("val")``): 0.2 for the
            embedded sets, 0.1 for the papers' data sets (e.g. 5,000 of CIFAR's 50,000 images).
        plain_train: for training data read with augmentation, a function returning the same samples with
            the test split's transform (the validation part is evaluated like the test split); None when
            ``train`` has no augmentation.
    """

    name: str
    train: TensorDataset
    test: TensorDataset
    num_classes: int
    input_shape: tuple
    temporal: bool
    T: int | None
    info: dict = field(default_factory=dict, compare=False)
    val_fraction: float = field(default=VAL_FRACTION, compare=False)
    plain_train: object = field(default=None, compare=False, repr=False)

    @functools.cached_property
    def _plain(self):
        return self.train if self.plain_train is None else self.plain_train()

    @functools.cached_property
    def val_indices(self) -> tuple[np.ndarray, np.ndarray]:
        """``(fit, val)``: sorted indices into ``train`` of the samples trained on and of the validation split
        (``validation_indices(labels, val_fraction, VAL_SEED)``: stratified, fixed, never depends on a run's seed)."""
        return validation_indices(labels_of(self.train), self.val_fraction, VAL_SEED)

    def split(self, which: str = "test") -> tuple:
        """``(train, evaluation)`` datasets of a split (``SPLITS``): ``"test"`` -> ``(train, test)``;
        ``"val"`` and ``"final"`` -> ``(train minus validation, validation)``."""
        check_split(which)
        if which == "test":
            return self.train, self.test
        fit, val = self.val_indices
        return _subset(self.train, fit), _subset(self._plain, val)

    def loaders(
        self,
        batch_size: int,
        *,
        shuffle_seed: int | None = 0,
        num_workers: int = 0,
        drop_last: bool = False,
        split: str = "test",
    ) -> tuple[DataLoader, DataLoader]:
        """``(train_loader, eval_loader)``. Batches are batch-first: ``x`` is ``[B, C, H, W]`` or ``[B, T, C, H, W]``.

        ``split`` (``SPLITS``) says which: ``"test"`` (default) the whole training split and the test split;
        ``"val"``/``"final"`` the training split without its validation part, and the validation part
        (``split``). The train loader shuffles with a ``torch.Generator`` seeded with ``shuffle_seed`` (same
        seed, same order; None draws a fresh random seed). ``drop_last`` applies to the train loader only; the
        evaluation loader keeps its order and every sample.
        """
        train_set, eval_set = self.split(split)
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
        generator = torch.Generator()
        if shuffle_seed is None:
            generator.seed()
        else:
            generator.manual_seed(int(shuffle_seed))
        train = DataLoader(
            train_set,
            batch_size=int(batch_size),
            shuffle=True,
            generator=generator,
            num_workers=num_workers,
            drop_last=drop_last,
        )
        test = DataLoader(eval_set, batch_size=int(batch_size), shuffle=False, num_workers=num_workers)
        return train, test


def check_split(which) -> str:
    """``which`` if it is one of ``SPLITS``, else ValueError naming it and the allowed ones."""
    if which not in SPLITS:
        raise ValueError(f"split must be one of {names(SPLITS)}; got {which!r}")
    return which


def labels_of(dataset) -> np.ndarray:
    """The int labels of a dataset of ``(x, y)`` pairs: a ``TensorDataset``'s second tensor, a torchvision
    dataset's ``targets``, a ``Subset``'s through its indices; else read sample by sample."""
    if isinstance(dataset, TensorDataset):
        return np.asarray(dataset.tensors[1].cpu().numpy(), dtype=np.int64)
    if isinstance(dataset, Subset):
        return labels_of(dataset.dataset)[np.asarray(dataset.indices, dtype=np.int64)]
    for attr in ("targets", "labels"):
        got = getattr(dataset, attr, None)
        if got is not None and len(got) == len(dataset):
            return np.asarray(got, dtype=np.int64)
    return np.asarray([int(dataset[i][1]) for i in range(len(dataset))], dtype=np.int64)


def validation_indices(labels, fraction: float, seed: int = VAL_SEED) -> tuple[np.ndarray, np.ndarray]:
    """``(fit, val)``: a stratified split of ``range(len(labels))`` with ``round(fraction * n)`` samples in
    ``val`` (scikit-learn's ``train_test_split`` with ``random_state=seed``), both sorted."""
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 < fraction < 1:
        raise ValueError(f"the validation fraction must be a number in (0, 1); got {fraction!r}")
    n = len(labels)
    n_val = int(round(fraction * n))
    classes = np.unique(labels)
    stratify = labels
    if n_val < len(classes) or n - n_val < len(classes) or np.bincount(labels).min(initial=2) < 2:
        warnings.warn(f"{fraction:g} of {n} samples with {len(classes)} classes cannot be a stratified validation "
                      "split (each part needs every class): drawn at random instead", stacklevel=2)
        stratify = None
    if n_val < 1 or n_val >= n:
        raise ValueError(f"cannot hold out {fraction:g} of {n} samples: the validation split would hold {n_val}")
    fit, val = train_test_split(np.arange(n), test_size=n_val, random_state=seed, stratify=stratify)
    return np.sort(fit), np.sort(val)


def _subset(dataset, idx: np.ndarray):
    """``dataset`` restricted to ``idx``: a new ``TensorDataset`` (indexed tensors) or a ``Subset``."""
    if isinstance(dataset, TensorDataset):
        t = torch.as_tensor(idx)
        return TensorDataset(*(x[t] for x in dataset.tensors))
    return Subset(dataset, idx.tolist())


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
