"""``snnlab.sweep``: choosing a setting honestly. A grid of settings x seeds, trained on the training split
without its validation part, compared on the validation split, the test split never read (``split="val"``).

    >>> res = snnlab.sweep(TrainConfig(dataset="digits", method="tet", epochs=20), seeds=(0, 1, 2))
    >>> res.best                # e.g. {'lr': 0.01, 'lamb': 0.001}: the highest mean validation accuracy
    >>> res.table               # one row per setting: mean, 95% CI, every seed
    >>> final = res.best_config(split="final")   # train it again and read the test split once
    >>> print(res.sentence())   # is the best setting resolved from the runner-up?

The grid:

* ``None``: the method's own (``Method.grid``: the learning rate and one knob of the method: the surrogate
  width for SDT, lambda for TET, the chi target for the chi-adaptive surrogate, the neuron constants for DSR);
* ``{field: values}``: every combination; a key that is not a config field names a set of presets and its
  values are dicts of changes (``{"neuron constants": [{"dsr_v_th": 0.3, ...}, {"dsr_v_th": 0.6, ...}]}``);
* a list of dicts of changes: exactly those settings.

Each setting is trained once per seed; the choice is the setting with the highest mean accuracy on the
evaluated split at the last epoch (ties: the first in grid order). ``workers > 1`` trains that many runs at
once in separate processes (``threads`` torch threads each, default ``cores // workers``): on 2 cores two
one-thread runs finish sooner than one two-thread run. Accuracies depend on the thread count in the last
digits (oneDNN rounds convolution gradients differently), so compare runs made with the same ``threads``.
Worker processes import snnlab afresh: a method registered only in your session needs ``workers=1``, and a
script that sweeps with ``workers > 1`` must call it under ``if __name__ == "__main__":`` (the workers are
spawned and re-import the script; notebooks and ``snnlab sweep`` need nothing).
"""
from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from . import methods as _methods
from . import stats
from .config import TrainConfig
from .data.bundle import SPLITS, epoch_split
from .io import atomic_write_text

__all__ = ["sweep", "SweepResult", "expand_grid", "default_grid", "run_seeds", "setting_label"]


def default_grid(config: TrainConfig) -> dict:
    """The grid ``sweep`` searches for ``config`` by default: its method's learning rates, and the knob of its
    last active add-on that has one (the chi target), else the method's own knob."""
    parts = _methods.active_parts(config)
    grid = parts[0].grid(config)
    for addon in parts[1:]:
        own = addon.grid(config)
        if own:
            grid = {"lr": grid["lr"], **own} if "lr" in grid else own
    return grid


def _check_changes(changes, where: str) -> dict:
    if not isinstance(changes, dict):
        raise ValueError(f"{where}: a setting is a dict of config fields to values, got {changes!r}")
    names = set(TrainConfig.field_names())
    bad = sorted(set(changes) - names)
    if bad:
        raise ValueError(f"{where}: unknown config field(s) {bad}; allowed: the TrainConfig fields "
                         f"(TrainConfig.field_names())")
    fixed = {"seed", "split", "out_dir"} & set(changes)
    if fixed:
        raise ValueError(f"{where}: {sorted(fixed)} are set by sweep itself (seeds=, split=, out_dir=), "
                         "not by the grid")
    return dict(changes)


def expand_grid(grid) -> list[dict]:
    """The settings (dicts of config changes) of ``grid`` (a dict of values per key, or a list of dicts), in order."""
    if isinstance(grid, (list, tuple)):
        if not grid:
            raise ValueError("the grid is empty: give at least one setting")
        return [_check_changes(c, f"grid[{i}]") for i, c in enumerate(grid)]
    if not isinstance(grid, dict) or not grid:
        raise ValueError(f"grid must be a non-empty dict of field -> values or a list of dicts, got {grid!r}")
    names = set(TrainConfig.field_names())
    axes = []
    for key, values in grid.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise ValueError(f"grid[{key!r}] must be a list of values, got {values!r}")
        values = list(values)
        if not values:
            raise ValueError(f"grid[{key!r}] is empty: give at least one value")
        if key in names:
            axes.append([{key: v} for v in values])
        elif all(isinstance(v, dict) for v in values):
            axes.append([_check_changes(v, f"grid[{key!r}]") for v in values])
        else:
            raise ValueError(f"grid key {key!r} is not a config field; a key that is not one names presets and its "
                             f"values must be dicts of changes, got {values!r}")
    out = []
    for combo in itertools.product(*axes):
        changes: dict = {}
        for c in combo:
            changes.update(c)
        out.append(_check_changes(changes, "grid"))
    return out


def setting_label(changes: dict) -> str:
    """``"lr=0.01, lamb=0.001"``: a setting as text (also its run folders' name, with the seed)."""
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in changes.items()) or "base"


def _folder(changes: dict) -> str:
    text = setting_label(changes).replace(", ", "-").replace("=", "")
    return "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in text)


# -------------------------------------------------------------------------------------------------- running
_WORKER_DATA: dict = {}


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _train_one(config_dict: dict, bundle=None, model_fn=None) -> dict:
    """Train one run; return its last row and the training time (also in a worker process). ``model_fn``: a
    callable building the model (called after seeding with the run's seed, so its initial weights follow the seed),
    else the config's model."""
    from .evaluation import load_data
    from .loop import fit
    from .seeding import seed_everything

    cfg = TrainConfig.from_dict(config_dict)
    if bundle is None:
        key = (cfg.dataset, cfg.T, cfg.data_seed, cfg.data_root, json.dumps(cfg.data_options, sort_keys=True))
        if key not in _WORKER_DATA:
            _WORKER_DATA.clear()
            _WORKER_DATA[key] = load_data(cfg)
        bundle = _WORKER_DATA[key]
    model = None
    if model_fn is not None:
        seed_everything(cfg.seed)
        model = model_fn()
    hist = fit(cfg, bundle=bundle, model=model)
    return {**hist.last, "train_time_s": sum(r["epoch_time_s"] for r in hist)}


def _finished(cfg: TrainConfig) -> dict | None:
    """The last row of a finished run in ``cfg.out_dir`` with the same experiment, or None."""
    if not cfg.out_dir:
        return None
    res, conf = Path(cfg.out_dir) / "results.json", Path(cfg.out_dir) / "config.json"
    if not (res.exists() and conf.exists()):
        return None
    try:
        if TrainConfig.from_json(conf).experiment() != cfg.experiment():
            return None
        final = json.loads(res.read_text())["final"]
    except (ValueError, KeyError, OSError):
        return None
    if final.get("epoch") != cfg.epochs:
        return None
    return {k: v for k, v in final.items() if not isinstance(v, (dict, list))}


def run_seeds(configs: list[TrainConfig], *, workers: int = 1, threads: int | None = None, bundle=None,
              progress: bool = True, desc: str = "runs", model_fn=None) -> list[dict]:
    """Train every config (each is one run: a setting at one seed) and return their last rows, in order.

    A config whose ``out_dir`` holds a finished run of the same experiment is read back, not trained again (a
    sweep stopped half way continues where it was). ``workers > 1``: that many processes, ``threads`` torch
    threads each (default: the cores divided among them); ``bundle`` is only used with ``workers=1``. ``model_fn``:
    a callable building each run's model after seeding (your own network, e.g. ``lambda: MultiStep(net())``); with
    ``workers > 1`` it must be importable (a module-level function), as the worker processes unpickle it."""
    if model_fn is not None and not callable(model_fn):
        raise TypeError(f"model_fn must be a callable that builds a model, got {type(model_fn).__name__}")
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise ValueError(f"threads must be an integer >= 1 or None, got {threads!r}")
    for cfg in configs:
        cfg.validate()
    rows: list = [_finished(c) for c in configs]
    todo = [i for i, r in enumerate(rows) if r is None]
    bar = tqdm(total=len(configs), initial=len(configs) - len(todo), desc=desc, disable=not progress)
    if workers == 1 or len(todo) <= 1:
        import torch

        before = torch.get_num_threads()
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            for i in todo:
                rows[i] = _train_one(configs[i].to_dict(), bundle, model_fn)
                bar.update()
        finally:
            torch.set_num_threads(before)
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        threads = threads or max(1, (os.cpu_count() or 1) // workers)
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                 initializer=_init_worker, initargs=(threads,)) as pool:
            futures = {pool.submit(_train_one, configs[i].to_dict(), None, model_fn): i for i in todo}
            from concurrent.futures import as_completed

            for fut in as_completed(futures):
                rows[futures[fut]] = fut.result()
                bar.update()
    bar.close()
    return rows


# -------------------------------------------------------------------------------------------------- results
def _records(df: pd.DataFrame) -> list[dict]:
    """Rows as plain Python values, floats exact (pandas' to_json rounds to 10 digits)."""
    plain = lambda v: v.item() if hasattr(v, "item") else v  # noqa: E731  (numpy scalars)
    return [{k: plain(v) for k, v in row.items()} for row in df.to_dict(orient="records")]


@dataclass
class SweepResult:
    """What ``sweep`` found. ``runs``: one row per run (the setting's fields, seed, accuracy, loss, time);
    ``table``: one row per setting (mean accuracy, its 95% CI, every seed's); ``best``: the chosen changes."""

    base: TrainConfig
    settings: list
    seeds: tuple
    split: str
    runs: pd.DataFrame
    metric: str = "val_acc"
    level: float = 0.95
    table: pd.DataFrame = field(init=False)
    best: dict = field(init=False)

    def __post_init__(self):
        rows = []
        for i, changes in enumerate(self.settings):
            accs = [float(a) for a in self.runs.loc[self.runs["setting"] == i].sort_values("seed")[self.metric]]
            ci = stats.mean_ci(accs, self.level)
            rows.append({"setting": setting_label(changes), "mean": ci.mean, "ci_low": ci.low, "ci_high": ci.high,
                         "n": ci.n, "per_seed": accs})
        self.table = pd.DataFrame(rows)
        means = self.table["mean"].tolist()
        self.best_index = max(range(len(means)), key=lambda i: (means[i], -i))
        self.best = dict(self.settings[self.best_index])

    def accuracies(self, index: int | None = None) -> list[float]:
        """Per-seed accuracies of setting ``index`` (default: the best), in seed order."""
        i = self.best_index if index is None else index
        return self.table.loc[i, "per_seed"]

    def best_config(self, **changes) -> TrainConfig:
        """The base config with the best setting (and ``changes``, e.g. ``split="final"``, ``seed=3``)."""
        return self.base.replace(**{**self.best, "split": self.base.split, **changes})

    def runner_up(self) -> int | None:
        """Index of the second-best setting (None with one setting)."""
        order = sorted(range(len(self.settings)), key=lambda i: (-self.table.loc[i, "mean"], i))
        return order[1] if len(order) > 1 else None

    def sentence(self) -> str:
        """The best setting against the runner-up: paired difference over the seeds and whether it is resolved."""
        best = setting_label(self.best)
        j = self.runner_up()
        head = f"best on the {self.split} split: {best}, {self.metric} {stats.mean_ci(self.accuracies(), self.level)}"
        if j is None:
            return head
        d = stats.paired_difference(self.accuracies(), self.accuracies(j), self.level)
        return head + "; " + stats.sentence(f"[{best}]", f"[{setting_label(self.settings[j])}]", d)

    def to_dict(self) -> dict:
        return {"base": self.base.to_dict(), "settings": self.settings, "seeds": list(self.seeds),
                "split": self.split, "metric": self.metric, "level": self.level,
                "runs": _records(self.runs), "best": self.best, "table": _records(self.table)}

    def to_json(self, path) -> None:
        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def from_json(cls, path) -> "SweepResult":
        d = json.loads(Path(path).read_text())
        return cls(TrainConfig.from_dict(d["base"]), d["settings"], tuple(d["seeds"]), d["split"],
                   pd.DataFrame(d["runs"]), d["metric"], d["level"])

    def plot(self, ax=None, title: str | None = None):
        """Every seed's accuracy (dots) and the mean with its interval (bar) per setting; the best in colour."""
        from . import plot

        groups = dict(zip(self.table["setting"], self.table["per_seed"]))
        return plot.seed_points(groups, f"{self.metric} ({len(self.seeds)} seeds)", ax=ax, level=self.level,
                                highlight=self.table.loc[self.best_index, "setting"],
                                title=title or f"{self.base.dataset}, {self.base.method}: chosen on the "
                                               f"{self.split} split")


def sweep(base: TrainConfig, grid=None, *, seeds=(0,), split: str = "val", bundle=None, workers: int = 1,
          threads: int | None = None, out_dir=None, progress: bool = True, model_fn=None) -> SweepResult:
    """Train ``base`` at every setting of ``grid`` (see the module's docstring) for every seed, on ``split``
    (default ``"val"``: the validation split, the test split never read; ``"test"`` reproduces the papers'
    protocol of reporting the test split every epoch, a way to choose settings that overstates accuracy).

    ``out_dir``: each run's files in ``<out_dir>/<setting>-s<seed>/`` and ``sweep.json``; a sweep started again
    with the same ``out_dir`` reads the runs already finished (their config, not ``model_fn``, identifies them: give
    each network its own ``out_dir``). ``model_fn``: a callable building the model of every run, after seeding
    (see ``run_seeds``); default the config's model. Returns a :class:`SweepResult`.
    """
    if not isinstance(base, TrainConfig):
        raise TypeError(f"sweep() takes a TrainConfig as base, got {type(base).__name__}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    try:
        seeds = tuple(int(s) for s in ([seeds] if isinstance(seeds, int) else seeds))
    except (TypeError, ValueError):
        raise ValueError(f"seeds must be a list of non-negative integers, got {seeds!r}") from None
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty list of distinct non-negative integers, got {seeds!r}")
    settings = expand_grid(default_grid(base) if grid is None else grid)
    configs, index = [], []
    for i, changes in enumerate(settings):
        for s in seeds:
            where = str(Path(out_dir) / f"{_folder(changes)}-s{s}") if out_dir is not None else None
            try:
                cfg = base.replace(**changes, seed=s, split=split, out_dir=where, progress=False).validate()
            except (ValueError, TypeError) as e:
                raise ValueError(f"grid setting {setting_label(changes)!r}: {e}") from None
            configs.append(cfg)
            index.append((i, s))
    rows = run_seeds(configs, workers=workers, threads=threads, bundle=bundle, progress=progress, desc="sweep",
                     model_fn=model_fn)
    metric = f"{epoch_split(split)}_acc"
    runs = pd.DataFrame([{"setting": i, **settings[i], "seed": s, metric: r[metric],
                          f"{epoch_split(split)}_loss": r[f"{epoch_split(split)}_loss"], "train_acc": r["train_acc"],
                          "train_time_s": r["train_time_s"]} for (i, s), r in zip(index, rows)])
    result = SweepResult(base.replace(split=split), settings, seeds, split, runs, metric)
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        result.to_json(Path(out_dir) / "sweep.json")
    return result
