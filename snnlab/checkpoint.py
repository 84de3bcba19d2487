"""Checkpoint files: write them atomically, open them without running code, and say in one line what is wrong.

``load`` opens a file with ``torch.load(..., weights_only=True)``: tensors, numbers, strings, lists, tuples and
dicts only, so a checkpoint someone sent you cannot run code on your machine. Every way a file can be bad (missing,
a folder, empty, cut short, corrupted, not a torch file at all, a pickle that would need to import or call
something, a file that is not a snnlab checkpoint) raises ``CheckpointError`` (a ``ValueError``) with the message
``"<path>: <what is wrong>"`` on one line; the command line prints it as ``snnlab: error: ...``.

Every checkpoint ``snnlab.train.fit`` writes (model, optimizer, scheduler and scaler state dicts, the history
rows, the config dict, the callbacks' states, the hybrid phase's summary) holds only such plain types.
"""
from __future__ import annotations

import json
import os
import pickle
import pickletools
import re
import struct
import sys
import warnings
import zipfile
from pathlib import Path

import torch

from .io import atomic_write

__all__ = ["CheckpointError", "save", "load", "upgrade"]

_ZIP_START = b"PK\x03\x04"
_ZIP_END = b"PK\x05\x06"  # the end-of-central-directory record, in the last 22 bytes (+ a comment of <= 64 KiB)
_LEGACY_START = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"  # torch.save's pre-1.6 magic number
_HEAD = 1 << 20  # bytes read to tell what kind of file it is (and to look for a pickle's globals)
_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
# What torch.load raises for a bad file (torch 2.x): the weights-only unpickler's refusals and bad opcodes
# (UnpicklingError), the zip reader (RuntimeError; OSError when it seeks past the end of a cut-short file),
# and a garbled pickle stream (EOFError, KeyError, IndexError, struct.error, UnicodeDecodeError and ValueError).
_LOAD_ERRORS = (pickle.UnpicklingError, RuntimeError, OSError, EOFError, KeyError, IndexError, struct.error,
                ValueError)
_REFUSED = re.compile(r"(?:Unsupported global: GLOBAL|Trying to load unsupported GLOBAL) (.*?)"
                      r" (?:was not an allowed global|whose module)")


class CheckpointError(ValueError):
    """A file that cannot be opened as a checkpoint; the message is ``"<path>: <what is wrong>"``, one line."""

    def __init__(self, path, problem: str):
        self.path, self.problem = os.fspath(path), " ".join(str(problem).split())
        super().__init__(f"{self.path}: {self.problem}")


def save(obj, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` atomically (``snnlab.io.atomic_write``): the old file or the new one,
    never a half-written one. ``obj`` should hold only plain types, so that ``load`` can open it."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def upgrade(ck: dict) -> dict:
    """A training checkpoint in today's layout: snnlab 0.1 kept its one phase before training (DSR's hybrid ANN
    phase) under its own key, ``"hybrid"``; today every part's phase result is under ``"phases"``."""
    if isinstance(ck, dict) and "phases" not in ck:
        ck["phases"] = {"hybrid": ck["hybrid"]} if ck.get("hybrid") is not None else {}
    return ck


def load(path: str | os.PathLike, map_location="cpu", *, require=("model",), what: str = "checkpoint"):
    """Open a checkpoint with ``torch.load(..., weights_only=True)``; return what it holds.

    Args:
        path: the file (e.g. ``<out_dir>/checkpoint.pt``).
        map_location: as ``torch.load``'s (default: every tensor on the CPU).
        require: keys the loaded dict must have (``()``: any object is accepted).
        what: what the file should be, for the messages (e.g. ``"ANN checkpoint"``).

    Raises:
        CheckpointError: the file is missing, a folder, empty, cut short or corrupted, not a torch file, would need
            to run code to be opened, or is not a dict with the ``require``\\d keys.
    """
    head = _read_head(path, what)
    zip_end = _has_zip_end(path)
    if head.startswith(_ZIP_START) and not zip_end:
        raise CheckpointError(path, "truncated or corrupted (the zip archive has no end record: was the write "
                                    "cut short?)")
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the error below says it all
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(path, map_location=map_location, weights_only=True)
    except _LOAD_ERRORS as e:
        zipped = zip_end or head.startswith(_ZIP_START)
        if zipped and _zip_without_pickle(path):
            raise CheckpointError(path, "not a torch file (a zip archive without torch.save's data.pkl)") from None
        raise CheckpointError(path, _why(e, head, what, zipped)) from None
    return _check_keys(obj, path, require, what)


def _read_head(path, what: str) -> bytes:
    p = Path(path)
    if not p.exists():
        raise CheckpointError(path, f"no such file (expected {_a(what)} written by snnlab)")
    if p.is_dir():
        raise CheckpointError(path, f"is a folder, not {_a(what)} file")
    try:
        with open(p, "rb") as f:
            head = f.read(_HEAD)
    except OSError as e:
        raise CheckpointError(path, f"cannot be read ({e.strerror or type(e).__name__})") from None
    if not head:
        raise CheckpointError(path, f"empty file (0 bytes), not {_a(what)}")
    return head


def _has_zip_end(path) -> bool:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - (1 << 16) - 22))
        return _ZIP_END in f.read()


def _zip_without_pickle(path) -> bool:
    """Whether ``path`` is a readable zip archive (read by ``zipfile``: nothing is unpickled) with no
    ``<folder>/data.pkl``, the pickle every ``torch.save`` file holds."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):  # damaged: torch's own error says more
        return False
    return not any(n.count("/") == 1 and n.endswith("/data.pkl") for n in names)


def _why(e: Exception, head: bytes, what: str, zipped: bool) -> str:
    """What is wrong, from the exception torch raised and the first bytes of the file (``zipped``: it starts or
    ends like a zip archive, torch.save's format)."""
    inner = str(e.__context__) if isinstance(e.__context__, pickle.UnpicklingError) else str(e)
    name = _refused_global(inner)
    if name is None and not zipped:
        name = next(iter(_pickle_globals(head)), None)
    if name is not None or "must be imported to load" in inner:
        module = re.search(r"``(\S+?)``", inner)
        needs = f"the global {name}" if name is not None else f"{module.group(1) if module else 'a module'} imported"
        return (f"would need to run code to be opened (it needs {needs}); snnlab opens checkpoints with "
                "weights_only=True and never opens such files: re-save the plain state dicts (tensors, numbers, "
                "strings, lists, dicts) from a trusted session")
    if zipped:
        msg = " ".join(str(e).split())
        if msg.startswith("PytorchStreamReader failed "):
            return f"truncated or corrupted ({msg[len('PytorchStreamReader '):].split('. This is an internal')[0]})"
        if isinstance(e, OSError):
            return f"truncated or corrupted (the zip reader failed: {e.strerror or e})"
        return f"truncated or corrupted ({_short(e, inner)})"
    if head.startswith(_LEGACY_START):
        return f"truncated or corrupted ({_short(e, inner)})"
    return f"not a torch file ({_kind(head)}); expected {_a(what)} written by torch.save"


def _refused_global(msg: str) -> str | None:
    """The global the weights-only unpickler refused, if it looks like a real one (garbled bytes can look like a
    GLOBAL opcode too); ``torch.*`` names that do not exist (a cut-short name) count as corruption."""
    m = _REFUSED.search(msg)
    if m is None or not _NAME.fullmatch(m.group(1)):
        return None
    name = m.group(1)
    if name.split(".")[0] == "torch":
        module, _, attr = name.rpartition(".")
        if module in sys.modules and not hasattr(sys.modules[module], attr):
            return None
    return name


def _pickle_globals(head: bytes) -> list[str]:
    """The globals a pickle would import, read from its opcodes (nothing is unpickled): stops at the first bad
    opcode, so a file that is not a pickle gives ``[]``."""
    found, pushed, memo = [], [], {}
    try:
        for op, arg, _ in pickletools.genops(head):
            if op.name == "GLOBAL" and isinstance(arg, str):
                found.append(arg.replace(" ", "."))
            elif op.name == "STACK_GLOBAL" and len(pushed) >= 2:
                found.append(f"{pushed[-2]}.{pushed[-1]}")
            elif op.name == "MEMOIZE":
                memo[len(memo)] = pushed[-1] if pushed else None
            elif op.name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[arg] = pushed[-1] if pushed else None
            elif op.name in ("GET", "BINGET", "LONG_BINGET"):
                pushed.append(memo.get(arg))
            elif op.name != "FRAME":
                pushed.append(arg if isinstance(arg, str) else None)
    except ValueError:  # not (or no longer) a pickle
        pass
    return [g for g in found if _NAME.fullmatch(g)]


def _kind(head: bytes) -> str:
    if head.startswith(b"\x80"):
        return "a Python pickle, not written by torch.save"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # not just a character cut at the end of the head
            return f"binary data starting {head[:8]!r}"
        text = head[:e.start].decode("utf-8")
    try:
        json.loads(text)
        return "a JSON file"
    except ValueError:
        first = (text.strip().splitlines() or [""])[0]
        return f"a text file starting {first[:40]!r}"


def _a(what: str) -> str:
    return f"{'an' if what[:1].lower() in 'aeiou' else 'a'} {what}"


def _short(e: Exception, msg: str | None = None) -> str:
    msg = " ".join((str(e) if msg is None else msg).split()).split(". Please")[0]
    return f"{type(e).__name__}: {msg[:120]}" if msg else type(e).__name__


def _check_keys(obj, path, require, what: str):
    if not require:
        return obj
    if not isinstance(obj, dict):
        raise CheckpointError(path, f"not a snnlab {what}: holds a {type(obj).__name__}, not a dict")
    missing = [k for k in require if k not in obj]
    if missing:
        has = ", ".join(map(repr, list(obj)[:8])) + (", ..." if len(obj) > 8 else "")
        raise CheckpointError(path, f"not a snnlab {what}: missing keys {', '.join(map(repr, missing))} "
                                    f"(it has {has or 'no keys'})")
    return obj
