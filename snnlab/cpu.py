"""CPU speed settings that change no number: glibc's malloc keeps freed tensor memory instead of unmapping it.

A training step allocates and frees many tensors of a few MiB to a few tens of MiB (activations, gradients,
spikes). glibc's ``malloc`` serves blocks above its mmap threshold with fresh ``mmap`` pages and gives them back
on ``free``, so the next step page-faults and zero-fills the same memory again: on a 2-core CPU that is a
quarter of the tutorial network's step (measured in benchmarks/bench_step.py). ``tune_malloc`` raises the mmap
threshold to its largest value (32 MiB) and the trim threshold to 1 GiB, so such blocks are reused from the heap;
results are bitwise the same, and the process keeps up to that much freed memory for reuse.

``import snnlab`` calls it on Linux with glibc; ``SNNLAB_MALLOC_TUNE=0`` in the environment leaves malloc as it
is. PyTorch's own advice for CPU training (a caching allocator such as jemalloc or tcmalloc via ``LD_PRELOAD``)
does the same and more; this needs nothing installed.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

__all__ = ["tune_malloc", "malloc_tuned", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

MMAP_THRESHOLD = 32 * 2**20  #: bytes; glibc's maximum (``DEFAULT_MMAP_THRESHOLD_MAX`` on 64-bit)
TRIM_THRESHOLD = 2**30  #: bytes of free memory at the top of the heap before glibc returns it to the OS
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
_state = {"tuned": False, "why": "not tried"}


def tune_malloc() -> bool:
    """Apply the thresholds (once); True if they are in force. Linux with glibc only; never raises."""
    if _state["tuned"]:
        return True
    if os.environ.get("SNNLAB_MALLOC_TUNE", "1").strip().lower() in ("0", "false", "no", "off"):
        _state["why"] = "switched off by SNNLAB_MALLOC_TUNE=0"
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        _state["why"] = f"needs Linux with glibc, not {platform.system()} {platform.libc_ver()[0] or ''}".strip()
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    except (OSError, AttributeError) as e:
        _state["why"] = f"mallopt not available: {e}"
        return False
    _state.update(tuned=ok, why=None if ok else "mallopt refused the values")
    return ok


def malloc_tuned() -> tuple[bool, str | None]:
    """``(in force, why not)``."""
    return _state["tuned"], _state["why"]
