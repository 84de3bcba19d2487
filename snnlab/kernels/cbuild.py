"""Build and load snnlab's small C kernels (``cpu_lif.c``, ``cpu_bn.c``) with the system C compiler, once.

Each source is compiled on first use into ``$SNNLAB_CACHE`` (default ``~/.cache/snnlab``)/kernels, one file per
source, flags and machine, written atomically (a concurrent build or a crash never leaves half a library); a
build takes about a second. ``Kernel`` is what each kernel module holds: its library, loaded once per process, or
the reason it is not there (no compiler, a build error, switched off, a failed check), which callers turn into
their PyTorch fallback.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = ["-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno", "-shared", "-fPIC"]


def cache_dir() -> Path:
    return Path(os.environ.get("SNNLAB_CACHE") or Path.home() / ".cache" / "snnlab") / "kernels"


def library_path(src: Path) -> Path:
    """Where the library built from ``src`` is (or would be)."""
    key = hashlib.sha256(src.read_bytes() + " ".join(FLAGS).encode() + platform.machine().encode()
                         + platform.node().encode()).hexdigest()[:16]
    return cache_dir() / f"{src.stem}-{key}.so"


def build(src: Path, out: Path) -> None:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise RuntimeError("no C compiler (cc or gcc) on PATH")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        lib = Path(tmp) / out.name
        errors = []
        for extra in (["-fopenmp"], []):  # OpenMP when the compiler has it
            r = subprocess.run([cc, *FLAGS, *extra, str(src), "-o", str(lib), "-lm"], capture_output=True, text=True)
            if r.returncode == 0:
                os.replace(lib, out)
                return
            errors.append(r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}")
        raise RuntimeError(f"{cc} failed: {errors[-1]}")


def load(src: Path, signatures: dict) -> ctypes.CDLL:
    """Build ``src`` if needed, load it and set ``argtypes`` from ``signatures`` (function name -> list)."""
    path = library_path(src)
    if not path.exists():
        build(src, path)
    lib = ctypes.CDLL(str(path))
    for name, argtypes in signatures.items():
        getattr(lib, name).argtypes = argtypes
    return lib


def switched_off(variable: str) -> bool:
    return os.environ.get(variable, "1").strip().lower() in ("0", "false", "no", "off")


class Kernel:
    """One C source of this folder, built and loaded on first use, once per process.

    ``lib()`` is the ``ctypes`` library, or None when it cannot be used: ``switch=0`` in the environment, no
    compiler, a failed build, or ``check(lib)`` raising ``RuntimeError``; ``error()`` then says why.
    """

    def __init__(self, source: str, signatures: dict, switch: str, check=None):
        self.src = Path(__file__).with_name(source)
        self.signatures, self.switch, self.check = signatures, switch, check
        self._tried, self._lib, self._error = False, None, None

    def lib(self):
        if not self._tried:
            self._tried = True
            try:
                if switched_off(self.switch):
                    raise RuntimeError(f"switched off by {self.switch}=0")
                lib = load(self.src, self.signatures)
                if self.check is not None:
                    self.check(lib)
                self._lib = lib
            except (OSError, RuntimeError) as e:
                self._error = f"{type(e).__name__}: {e}"
        return self._lib

    def available(self) -> bool:
        return self.lib() is not None

    def error(self) -> str | None:
        self.lib()
        return self._error


def ptr(t):
    """A tensor's data pointer for ctypes (None for None)."""
    return None if t is None else ctypes.c_void_p(t.data_ptr())
