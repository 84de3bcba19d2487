"""The data sets: ``load(name)`` -> ``DataBundle``, for the embedded ``digits`` and ``dvs-digits`` and the papers' own.

* ``digits`` and ``dvs-digits`` ship with the install: scikit-learn's 8x8 digits, and the same digits seen by a
  simulated event camera (``snnlab.data.embedded``: the camera model, ``simulate_events``, and its cache).
* ``mnist1d`` and ``mnist1d-seq``: Greydanus' MNIST-1D, generated offline by the ``mnist1d`` package (static
  ``[1, 40]`` signals, or the same signals fed one sample per time step; ``snnlab.data.mnist1d``).
* ``"cifar10"``, ``"cifar100"``, ``"dvs-cifar10"`` (CIFAR10-DVS) and ``"imagenet"`` are read from files you
  put on disk yourself (``snnlab.data.real``, the dispatcher, and the readers ``cifar``, ``cifar10_dvs``,
  ``imagenet``); nothing is downloaded.

The package's modules, each with one job, import one way: ``bundle`` (``DataBundle``, ``default_root``, the
shared checks), ``sources`` (``DatasetNotFoundError``) and ``cache`` (the ``.npz`` caches) <- the readers
(``embedded``, ``cifar``, ``cifar10_dvs``, ``imagenet``) <- ``real`` (the papers' datasets) <- ``catalog`` (the
names, ``load``) <- this file, which only gathers the public names. ``snnlab.real_data`` is another name of
``snnlab.data.real``.

``to_time_first`` (from ``snnlab.layers``) turns a loader batch ``[B, T, ...]`` into the library's time-first
layout ``[T, B, ...]``.
"""
from __future__ import annotations

from ..layers import to_time_first
from . import bundle, cache, catalog, cifar, cifar10_dvs, embedded, imagenet, mnist1d, real, sources
from .bundle import DataBundle, default_root
from .catalog import DATASETS, EMBEDDED, PLANNED, REAL, TEMPORAL, load
from .embedded import BACKGROUND, DEFAULT_T, DVS_DEFAULTS, OBJECT_SIZE, events_from_log_intensity, simulate_events
from .sources import DatasetNotFoundError

__all__ = [
    "DATASETS",
    "EMBEDDED",
    "REAL",
    "TEMPORAL",
    "PLANNED",
    "DataBundle",
    "DatasetNotFoundError",
    "load",
    "to_time_first",
    "simulate_events",
    "events_from_log_intensity",
    "default_root",
    "DEFAULT_T",
    "OBJECT_SIZE",
    "BACKGROUND",
    "DVS_DEFAULTS",
]
