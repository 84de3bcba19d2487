"""The readers' ``.npz`` caches: read one back or write one atomically, warning (never failing) when that is impossible.

``embedded`` (the dvs-digits events) and ``cifar10_dvs`` (the CIFAR10-DVS frames) cache what they compute with
these two functions; a cache that is unreadable, stale or cannot be written only costs the time to recompute it.
The warnings' ``stacklevel`` assumes the call chains ``load -> reader -> _read_*cache -> read_npz`` and
``load -> reader -> write_npz`` (both readers), so they point at ``snnlab.data.load``'s dispatch.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..io import atomic_write

__all__ = ["read_npz", "write_npz"]


def read_npz(path: Path, read: Callable, *, redo: str):
    """``read(z)`` of the ``.npz`` file ``path`` opened as ``z``; None if it is missing, or if it is unreadable or
    ``read`` raises (then with a warning "cache file ... is unreadable (...); ``redo`` it", e.g. "regenerating")."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return read(z)
    except Exception as e:  # zip/npz errors, truncated files, missing keys, wrong shapes: make it again
        warnings.warn(f"cache file {path} is unreadable ({type(e).__name__}: {e}); {redo} it", stacklevel=5)
        return None


def write_npz(path: Path, arrays: dict, *, compressed: bool, kept: str) -> bool:
    """Write ``arrays`` to ``path`` (``np.savez_compressed`` or ``np.savez``) atomically (``snnlab.io.atomic_write``;
    an ordinary 0644 file). True if written; False, with a warning that the ``kept`` stay in memory only, if not."""
    save = np.savez_compressed if compressed else np.savez

    def write(f) -> None:
        save(f, **arrays)

    try:
        atomic_write(path, write, binary=True, mode=0o644)
        return True
    except OSError as e:
        warnings.warn(f"could not write the cache file {path} ({e}); the {kept} are kept in memory only",
                      stacklevel=4)
        return False
