"""The papers' datasets from files you put on disk yourself: ``load`` for CIFAR-10/100, CIFAR10-DVS and ImageNet.

Nothing is ever downloaded. ``snnlab.data.load(name, root=...)`` dispatches here for the four names below;
``root`` defaults to ``snnlab.data.default_root()`` (``$SNNLAB_DATA``, else the repository's ``datasets/``).
When a file is missing, ``load`` raises ``DatasetNotFoundError`` (a ``FileNotFoundError``) whose message says
which files go where and where to get them.

==================  ===========================================================================================
name                what is read (under ``root``)
==================  ===========================================================================================
``"cifar10"``       ``cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``: the python pickle
                    batches of https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (untar into ``root``),
                    read by ``torchvision.datasets.CIFAR10(download=False)``. 50,000 / 10,000 images.
``"cifar100"``      ``cifar-100-python/{train, test, meta}`` from
                    https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz, by ``torchvision.datasets.CIFAR100``;
                    the 100 fine labels.
``"dvs-cifar10"``   ``dvs-cifar10/<class>/*.aedat`` for the 10 classes ``airplane .. truck``: the CIFAR10-DVS
                    recordings (Li et al. 2017, jAER's AEDAT 2.0), turned into ``[T, 2, 48, 48]`` frames once
                    and cached; the files, where to get them and the cache: ``snnlab.data.cifar10_dvs``.
``"imagenet"``      ``imagenet/train/<wnid>/*.JPEG`` and ``imagenet/val/<wnid>/*.JPEG`` (ILSVRC-2012, val sorted
                    into the same class folders), by ``torchvision.datasets.ImageFolder``.
==================  ===========================================================================================

Transforms and preprocessing follow TET's official code (github.com/brain-intelligence-lab/
temporal_efficient_training, ``data_loaders.py`` and ``preprocess/``), and DSR's for ``preprocess="dsr"``. Each
dataset has its own module, with the details: ``snnlab.data.cifar`` (CIFAR-10/100: TET's transforms, cutout,
autoaugment, MD5 checks), ``snnlab.data.cifar10_dvs`` (the AEDAT 2.0 reader, TET's and DSR's preprocessing
and the frame cache), ``snnlab.data.imagenet``. This module dispatches ``load`` to them and gathers their
public names; it is also ``snnlab.real_data`` (the same module object, its name before ``snnlab.data`` became
a package).

Randomness: every augmentation (snnlab's and torchvision's transforms) draws from torch's global generator, so
``snnlab.seed_everything`` and ``fit``'s per-epoch seeding make a run repeat; DataLoader workers get their own
seeds from it.
"""
from __future__ import annotations

import os
from pathlib import Path

from .bundle import DataBundle, check_kwargs, check_T, default_root
from .cifar import CIFAR_STATS, Cutout, cifar_transforms, load_cifar
from .cifar10_dvs import (DSR_DEFAULT_T, DSR_PADDING, DVS_CLASSES, DVS_DEFAULT_T, DVS_DEFAULTS, DVS_MAX_SHIFT,
                          DVS_PREPROCESS, DVS_SENSOR, EVENT_DTYPE, EventFrames, default_T, dsr_augment,
                          dsr_event_counts, dsr_events_to_frames, event_counts, events_to_frames, load_dvs_cifar10,
                          nda_augment, read_aedat)
from .imagenet import IMAGENET_STATS, imagenet_transforms, load_imagenet
from .sources import DatasetNotFoundError

__all__ = [
    "REAL_DATASETS",
    "DatasetNotFoundError",
    "CIFAR_STATS",
    "IMAGENET_STATS",
    "DVS_CLASSES",
    "DVS_SENSOR",
    "DVS_DEFAULT_T",
    "DVS_DEFAULTS",
    "DVS_PREPROCESS",
    "DVS_MAX_SHIFT",
    "DSR_DEFAULT_T",
    "DSR_PADDING",
    "EVENT_DTYPE",
    "cifar_transforms",
    "imagenet_transforms",
    "Cutout",
    "read_aedat",
    "event_counts",
    "events_to_frames",
    "nda_augment",
    "dsr_event_counts",
    "dsr_events_to_frames",
    "dsr_augment",
    "EventFrames",
    "load",
]

REAL_DATASETS = ("cifar10", "cifar100", "dvs-cifar10", "imagenet")

#: the keyword arguments ``load`` takes for each dataset
_KWARGS = {
    "cifar10": ("augment", "cutout", "autoaugment", "verify"),
    "cifar100": ("augment", "cutout", "autoaugment", "verify"),
    "dvs-cifar10": tuple(DVS_DEFAULTS),
    "imagenet": ("augment",),
}


def load(name: str, *, T: int | None = None, root: str | os.PathLike | None = None, **kwargs) -> DataBundle:
    """Load one of ``REAL_DATASETS`` as a ``snnlab.data.DataBundle`` (use ``snnlab.data.load``; see the modules
    ``cifar``, ``cifar10_dvs`` and ``imagenet`` for the files, transforms and options)."""
    if name not in REAL_DATASETS:
        raise ValueError(f"unknown dataset {name!r}; the real datasets are {', '.join(map(repr, REAL_DATASETS))}")
    check_kwargs(name, kwargs, allowed=_KWARGS[name])
    root = Path(root).expanduser() if root is not None else default_root()
    if name == "dvs-cifar10":
        T_default = default_T(kwargs.get("preprocess", "tet"))
        return load_dvs_cifar10(root, T_default if T is None else check_T(T), **kwargs)
    if T is not None:
        raise ValueError(
            f"{name!r} is a static dataset, so load() takes no T (got T={T!r}): the model's encoder repeats each "
            f"image T times, not the loader. Call load({name!r}) and set T in the model/config."
        )
    if name == "imagenet":
        return load_imagenet(root, **kwargs)
    return load_cifar(name, root, **kwargs)
