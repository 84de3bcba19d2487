"""The names of the data sets and ``load``, which sends each name to its reader (``embedded`` or ``real``)."""
from __future__ import annotations

import os

from . import embedded, mnist1d, real
from .bundle import DataBundle, names

__all__ = ["DATASETS", "EMBEDDED", "REAL", "TEMPORAL", "PLANNED", "load"]

EMBEDDED = embedded.EMBEDDED + mnist1d.MNIST1D  #: ship with the install (generated offline: scikit-learn's digits, MNIST-1D)
REAL = real.REAL_DATASETS  #: read from files on disk (``snnlab.data.real``)
DATASETS = EMBEDDED + REAL  #: the names ``load`` accepts
TEMPORAL = ("dvs-digits", "dvs-cifar10", "mnist1d-seq")  #: data sets whose samples are already event frames ``[T, C, H, W]``
PLANNED: tuple = ()  #: names reserved for a later version (none now)


def load(
    name: str,
    *,
    T: int | None = None,
    root: str | os.PathLike | None = None,
    seed: int = 0,
    **kwargs,
) -> DataBundle:
    """Load a data set as a ``DataBundle``.

    Args:
        name: one of ``DATASETS``: ``"digits"``, ``"dvs-digits"``, ``"mnist1d"``, ``"mnist1d-seq"`` (embedded:
            generated offline; ``snnlab.data.mnist1d``), ``"cifar10"``, ``"cifar100"``,
            ``"dvs-cifar10"``, ``"imagenet"`` (files on disk: ``snnlab.data.real``).
        T: frames per sample, for event data only (dvs-digits: default 8; dvs-cifar10: default 10, 20 with
            preprocess="dsr"; mnist1d-seq: 40, one signal sample per step). Static data take no T: the model's
            encoder repeats each image T times.
        root: data folder (default: ``default_root()``): the cache of dvs-digits, and where the papers'
            datasets are read from (``root/cifar-10-batches-py``, ``root/dvs-cifar10``, ...).

        seed: seed of the event-camera simulation (dvs-digits only). The train/test split never depends on it.

        ``**kwargs``: dvs-digits: simulation parameters, see ``DVS_DEFAULTS`` (``size``, ``threshold``, ``n_sim``,
            ``amplitude``, ``jitter``, ``threshold_noise``). The papers' datasets: ``augment`` (all),
            ``cutout``, ``autoaugment``, ``verify`` (CIFAR), ``size``, ``train_per_class``, ``preprocess``
            ("tet" | "dsr") (dvs-cifar10).

    Returns:
        ``DataBundle``. digits / dvs-digits: 1,437 train and 360 test samples, ``x`` ``[1, 8, 8]`` in [0, 1] /
        ``[T, 2, size, size]`` float32 event counts. The papers' datasets: see ``snnlab.data.real``.

    Raises:
        ValueError for an unknown name or a bad argument; ``snnlab.data.DatasetNotFoundError`` (a
        ``FileNotFoundError``) when a paper dataset's files are missing, saying which and where to get them.
    """
    key = name.strip().lower().replace("_", "-") if isinstance(name, str) else name
    if key in PLANNED:
        raise NotImplementedError(
            f"dataset {name!r} is planned but its loader is not in this version of snnlab yet; "
            f"available now: {names(DATASETS)}"
        )
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; available: {names(DATASETS)}")
    if key in REAL:
        return real.load(key, T=T, root=root, **kwargs)
    if key in mnist1d.MNIST1D:  # generated, fixed: no root, and the split never depends on a seed
        return mnist1d.load(key, T=T, **kwargs)
    return embedded.load(key, T=T, root=root, seed=seed, **kwargs)
