"""The results registry: one JSON file listing every ``snnlab train`` run, append-only.

Each entry: ``recipe`` (name or None), ``config``, ``overrides`` (fields departing from the recipe),
``test_acc`` (final epoch; None for ``split="val"``), ``val_acc`` (``split`` val or final), ``epochs_run``, ``train_time_s``, ``wall_time_s``, ``device``, ``torch``,
``snnlab``, ``timestamp`` (UTC). Writes go to a temporary file then ``os.replace``: never half-written.

``comparison()`` puts the papers' numbers next to the measured ones; a recipe with no faithful run says
"not run" -- nothing is ever filled in from the paper.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

__all__ = ["DEFAULT_PATH", "RegistryError", "default_path", "load", "append", "make_entry", "frame", "comparison"]

DEFAULT_PATH = Path("results") / "registry.json"


class RegistryError(ValueError):
    """The registry file exists but is not a JSON list of entries."""


def default_path(out_dir=None) -> Path:
    """``<parent of out_dir>/registry.json`` (next to the run folders), else ``results/registry.json``."""
    return Path(out_dir).parent / "registry.json" if out_dir else DEFAULT_PATH


def load(path=DEFAULT_PATH) -> list[dict]:
    """The entries of the registry at ``path`` ([] when the file does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise RegistryError(f"registry {path} is not valid JSON ({e}); fix or move the file") from None
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise RegistryError(f"registry {path} must hold a JSON list of entries, got {type(data).__name__}")
    return data


def append(path, entry: dict) -> list[dict]:
    """Append ``entry`` to the registry at ``path`` (atomically); return all entries."""
    from .io import atomic_write_text as _atomic_write_text

    path = Path(path)
    entries = load(path) + [entry]
    _atomic_write_text(path, json.dumps(entries, indent=1) + "\n")
    return entries


def make_entry(config, history, *, recipe: str | None = None, wall_time_s: float | None = None) -> dict:
    """A registry entry for a finished ``fit`` (``history`` is what ``fit`` returned)."""
    import platform

    import torch

    from . import __version__
    from .train import resolve_device

    overrides = None
    if recipe is not None:
        from .recipes import differences

        overrides = differences(recipe, config)
    last = history.last if len(history) else {}
    dev = resolve_device(config.device)
    return {
        "recipe": recipe,
        "config": config.flat(),
        "overrides": overrides,
        "test_acc": last.get("test_acc"),
        "val_acc": last.get("val_acc"),  # split val / final: the validation accuracy (val: no test_acc)
        "epochs_run": len(history),
        "completed": bool(last) and last.get("epoch") == config.epochs,
        "train_time_s": sum(r.get("epoch_time_s", 0.0) for r in history),
        "wall_time_s": wall_time_s,
        "device": str(dev) + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""),
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "torch": torch.__version__,
        "snnlab": __version__,
        "python": platform.python_version(),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def frame(path=DEFAULT_PATH):
    """All entries as a ``pandas.DataFrame`` (config flattened to ``dataset``, ``model``, ``method``, ``T``)."""
    import pandas as pd

    rows = []
    for e in load(path):
        c = e.get("config", {})
        rows.append({"recipe": e.get("recipe"), "dataset": c.get("dataset"), "model": c.get("model"),
                     "method": c.get("method"), "T": c.get("T"), "epochs_run": e.get("epochs_run"),
                     "test_acc": e.get("test_acc"), "overrides": e.get("overrides"),
                     "device": e.get("device"), "timestamp": e.get("timestamp")})
    return pd.DataFrame(rows)


def comparison(path=DEFAULT_PATH, entries: list[dict] | None = None):
    """Paper vs measured, one row per recipe.

    ``measured_top1`` (%) is the latest completed run of the recipe with no overrides (NaN otherwise);
    ``status`` is "not run", "measured (n runs)" or "only modified runs: <fields>".
    """
    import math

    import pandas as pd

    from .recipes import RECIPES

    entries = load(path) if entries is None else entries
    rows = []
    for r in RECIPES.values():
        mine = [e for e in entries if e.get("recipe") == r.name]
        faithful = [e for e in mine if e.get("completed") and not e.get("overrides") and e.get("test_acc") is not None]
        if faithful:
            measured, status = 100.0 * faithful[-1]["test_acc"], f"measured ({len(faithful)} run(s))"
        elif mine:
            fields = sorted({f for e in mine for f in (e.get("overrides") or [])})
            measured = math.nan
            status = "only modified runs: " + (", ".join(fields) if fields else "not completed")
        else:
            measured, status = math.nan, "not run"
        rows.append({"recipe": r.name, "paper": r.paper, "dataset": r.dataset, "model": r.model, "T": r.T,
                     "paper_top1": r.paper_top1, "measured_top1": measured, "status": status})
    return pd.DataFrame(rows)
