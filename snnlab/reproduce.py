"""``snnlab reproduce``: the main job. Each method at its own validated setting on the three embedded data sets,
five seeds each, the test split read once per run, and a table with intervals.

For every row (data set x method) the setting was chosen on the validation split by ``snnlab.sweep`` over the
method's own grid (the learning rate and one knob of the method: surrogate width for SDT, lambda for TET, the chi
target for the chi-adaptive surrogate, the neuron constants for DSR; 3 seeds). The chosen sweeps ship with the
package (``snnlab/validated/<row>.json``) and are checked against the row's config: a row changed since its sweep
is an error, not a silently stale choice. ``--sweep`` re-runs the sweeps (``make sweep`` also copies them into
``snnlab/validated/``). Then every row trains at seeds 0-4 with ``split="final"``: trained without the validation
part, tested once after the last epoch.

Output (under ``out``, default ``results/``):

* ``results.csv`` and ``results.md`` -- data set, method, chosen setting, T, epochs, seeds, test accuracy (mean
  and 95% t interval), the paired difference to SDT on the same data set with its interval, train time per run,
* ``comparisons.txt`` -- one sentence per comparison (resolved or not),
* ``test_accuracy.png`` -- every seed's test accuracy per row, ``training_curves.png`` -- seed 0's curves,
* ``scalability.png`` -- test accuracy at T' = 1..8 of the digits models trained at T = 4 (TET Fig. 4A; mean
  over the seeds),
* ``landscape.png``, ``sharpness.csv/.png`` -- 2-D loss surfaces of the digits SDT and TET minima (seed 0)
  under both losses (TET Fig. 2) and their top Hessian eigenvalues,
* ``runs/<row>-s<seed>/`` -- each run's config.json, metrics.csv, checkpoint.pt, results.json.
"""
from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

from . import stats
from .config import TrainConfig
from .tuning import SweepResult, run_seeds, setting_label, sweep

__all__ = ["ROWS", "DATA", "SEEDS", "SWEEP_SEEDS", "VALIDATED", "rows", "chosen_setting", "reproduce", "load_run_model"]

#: per data set: the model, T and the epochs of every row (fewer epochs than one run alone would use, so that
#: 5 seeds x 11 rows fit the make-run budget on two cores)
DATA = {
    "digits": dict(dataset="digits", model="tutorial", T=4, epochs=12, batch_size=64),
    "mnist1d": dict(dataset="mnist1d", model="tutorial1d", T=4, epochs=12, batch_size=64),
    "dvs-digits": dict(dataset="dvs-digits", model="tutorial", T=8, epochs=8, batch_size=64),
}
#: per method: what the row sets besides the data (its optimiser is the method's own recipe, its lr and knob are
#: chosen by the sweep)
METHODS = {
    "sdt": dict(method="sdt"),
    "tet": dict(method="tet"),
    "sdt-chi": dict(method="sdt", chi_target=0.3, chi_every=5),
    "dsr": dict(method="dsr", neuron="lif"),
}
ROWS: list[dict] = [dict(name=f"{d}-{m}", **DATA[d], **METHODS[m]) for d in DATA for m in METHODS]
SEEDS = (0, 1, 2, 3, 4)       # the final runs of every row
SWEEP_SEEDS = (0, 1, 2)       # the runs of every setting in a sweep
SCALABILITY_T = [1, 2, 3, 4, 6, 8]
VALIDATED = Path(__file__).resolve().parent / "validated"


def rows(fast: bool = False) -> list[tuple[str, TrainConfig]]:
    """The ``(name, base config)`` pairs of the main job (before the chosen setting); ``fast`` shrinks them."""
    out = []
    for r in ROWS:
        r = dict(r)
        name = r.pop("name")
        cfg = TrainConfig(**r)
        if fast:
            cfg = cfg.replace(epochs=1, max_batches=3)
        out.append((name, cfg))
    return out


def _sweep_base(cfg: TrainConfig) -> TrainConfig:
    return cfg.replace(split="val", eval_T=None, progress=False, out_dir=None)


def chosen_setting(name: str, cfg: TrainConfig, folder: str | Path = VALIDATED) -> tuple[dict, SweepResult]:
    """The setting chosen on validation for row ``name`` (``<folder>/<name>.json``, a ``SweepResult``), checked
    to be a sweep of this row's config."""
    path = Path(folder) / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no validated setting for row {name!r}; run 'snnlab reproduce --sweep' "
                                f"(or 'make sweep') first")
    res = SweepResult.from_json(path)
    want, got = _sweep_base(cfg).experiment(), _sweep_base(res.base).experiment()
    diff = sorted(k for k in {**want, **got} if want.get(k) != got.get(k))
    if diff:
        raise ValueError(f"{path}: chosen for another config of row {name!r} (differs in {', '.join(diff)}); "
                         f"run 'snnlab reproduce --sweep' again")
    return res.best, res


def _workers(workers: int | None) -> int:
    return workers if workers is not None else max(1, min(2, os.cpu_count() or 1))


def reproduce(out: str | Path = "results", fast: bool = False, device: str = "auto", progress: bool = True,
              run_sweep: bool = False, workers: int | None = None, seeds=SEEDS, save_validated: bool = False):
    """Choose (``run_sweep``) or read each row's validated setting, train it at ``seeds`` with the test split
    read once, print and write the table, the comparisons and the plots. ``workers`` runs at once (one torch
    thread each; default: 2 on a machine with 2 or more cores). ``save_validated``: write the sweeps' results
    into ``snnlab/validated/`` (what later runs read; ``make sweep``)."""
    if save_validated and (fast or not run_sweep):
        raise ValueError("save_validated needs run_sweep=True and fast=False (a fast sweep chooses nothing)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    workers = _workers(workers)
    seeds = tuple(seeds) if not fast else tuple(seeds)[:2]
    t_start = time.perf_counter()
    chosen, sweeps = {}, {}
    for name, cfg in rows(fast):
        if run_sweep:
            grid = None
            if fast:  # a pipeline check: the first two settings of the method's grid, one seed
                from .tuning import default_grid, expand_grid

                grid = expand_grid(default_grid(cfg))[:2]
            res = sweep(_sweep_base(cfg), grid, seeds=SWEEP_SEEDS[:1] if fast else SWEEP_SEEDS, workers=workers,
                        threads=1, out_dir=out / "sweeps" / name, progress=progress)
            chosen[name], sweeps[name] = res.best, res
            if save_validated:
                VALIDATED.mkdir(exist_ok=True)
                res.to_json(VALIDATED / f"{name}.json")
            print(f"[{name}] {res.sentence()}", flush=True)
        else:
            full = dict(rows(False))[name]
            chosen[name], sweeps[name] = chosen_setting(name, full)
    configs, index = [], []
    for name, cfg in rows(fast):
        for s in seeds:
            configs.append(cfg.replace(**chosen[name], split="final", seed=s, device=device, progress=False,
                                       eval_T=SCALABILITY_T if cfg.dataset == "digits" and cfg.method != "dsr"
                                       else None, out_dir=str(out / "runs" / f"{name}-s{s}")))
            index.append(name)
    last = run_seeds(configs, workers=workers, threads=1, progress=progress, desc="final runs")
    by_row: dict[str, list] = {}
    for name, cfg, r in zip(index, configs, last):
        by_row.setdefault(name, []).append((cfg, r))
    table, sentences = _table(by_row, chosen)
    _write_table(out, table)
    (out / "comparisons.txt").write_text("\n".join(sentences) + "\n")
    written = [out / "results.csv", out / "results.md", out / "comparisons.txt"] + _plots(out, by_row, fast)
    print(_markdown(table))
    print("\n" + "\n".join(sentences))
    print(f"\n{len(configs)} runs ({len(by_row)} rows x {len(seeds)} seeds, {workers} at once, 1 thread each) in "
          f"{time.perf_counter() - t_start:.0f} s")
    print("written: " + ", ".join(map(str, written)))
    return table


def _row_label(cfg: TrainConfig) -> str:
    return cfg.method + ("+chi" if cfg.chi_target is not None else "")


def _table(by_row: dict, chosen: dict) -> tuple[list[dict], list[str]]:
    table, sentences, sdt = [], [], {}
    for name, runs in by_row.items():
        cfg = runs[0][0]
        accs = [r["test_acc"] for _, r in runs]
        ci = stats.mean_ci(accs)
        row = {"dataset": cfg.dataset, "method": _row_label(cfg), "setting": setting_label(chosen[name]),
               "T": cfg.T, "epochs": cfg.epochs, "seeds": len(accs), "test_acc": round(ci.mean, 4),
               "ci95": f"{ci.low:.4f}..{ci.high:.4f}", "vs_sdt": "", "train_time_s": round(
                   sum(r["train_time_s"] for _, r in runs) / len(runs), 1)}
        if cfg.method == "sdt" and cfg.chi_target is None:
            sdt[cfg.dataset] = accs
        elif cfg.dataset in sdt:
            d = stats.paired_difference(accs, sdt[cfg.dataset])
            row["vs_sdt"] = (f"{d.mean:+.4f} ({d.low:+.4f}..{d.high:+.4f})" + (" resolved" if d.resolved else ""))
            sentences.append(f"{cfg.dataset}: " + stats.sentence(row["method"].upper(), "SDT", d))
        table.append(row)
    return table, sentences


def _plots(out: Path, by_row: dict, fast: bool) -> list[Path]:
    import pandas as pd

    from . import plot

    written = []
    fig, _ = plot.seed_points({n: [r["test_acc"] for _, r in runs] for n, runs in by_row.items()},
                              title="test accuracy of every seed (bar: mean, 95% CI)")
    fig.savefig(out / "test_accuracy.png")
    written.append(out / "test_accuracy.png")
    histories = {n: pd.read_csv(Path(runs[0][0].out_dir) / "metrics.csv").to_dict("records")
                 for n, runs in by_row.items()}
    fig, _ = plot.training_curves(histories, metrics=("train_loss", "val_acc"))
    fig.tight_layout()
    fig.savefig(out / "training_curves.png")
    written.append(out / "training_curves.png")
    scal = {}
    for name, runs in by_row.items():
        if runs[0][0].eval_T:
            per_seed = [json.loads((Path(c.out_dir) / "results.json").read_text())["final"]["acc_by_T"]
                        for c, _ in runs]
            scal[name] = {int(t): sum(p[t] for p in per_seed) / len(per_seed) for t in per_seed[0]}
    if scal:
        Ts = sorted(next(iter(scal.values())))
        fig, ax = plot.accuracy_vs(Ts, {k: [v[t] for t in Ts] for k, v in scal.items()},
                                   xlabel="T' at test (trained at T = 4)")
        ax.set_title(f"temporal scalability without fine-tuning (mean of {len(runs)} seeds)")
        fig.tight_layout()
        fig.savefig(out / "scalability.png")
        written.append(out / "scalability.png")
        print("\ntest accuracy at T' (trained at T=4, mean over seeds): " + "; ".join(
            f"{k}: " + ", ".join(f"{t}:{a:.3f}" for t, a in v.items()) for k, v in scal.items()))
    written += _operations(out, by_row)
    minima = {}
    for name, runs in by_row.items():
        cfg = runs[0][0]
        if cfg.dataset == "digits" and cfg.chi_target is None and cfg.method in ("sdt", "tet"):
            minima[cfg.method.upper()] = (load_run_model(cfg), cfg)
    if len(minima) == 2:
        written += _flatness(out, minima, fast)
    return written


def _operations(out: Path, by_row: dict, n_samples: int = 256) -> list[Path]:
    """Spikes and synaptic operations of every row's seed-0 model on the first ``n_samples`` test samples
    (``snnlab.metrics``): ``operations.csv`` (a row per table row), ``operations_layers.csv`` (per weight layer: input
    kind, density, ACs, MACs; per spiking layer: rate and spikes) and ``operations.png``."""
    import pandas as pd

    from . import data, metrics, plot
    from .layers import encode

    rows, layer_rows, inputs = [], [], {}  # one input batch per (data set, T), shared by that data set's rows
    for name, runs in by_row.items():
        cfg = runs[0][0]
        if (cfg.dataset, cfg.T) not in inputs:
            bundle = data.load(cfg.dataset, T=cfg.T) if cfg.dataset == "dvs-digits" else data.load(cfg.dataset)
            x, _ = next(iter(bundle.loaders(n_samples)[1]))
            inputs[cfg.dataset, cfg.T] = encode(x, cfg.T, bundle.temporal).float()
        rep = metrics.count_operations(load_run_model(cfg), inputs[cfg.dataset, cfg.T])
        rates = rep.mean_rate()
        rows.append({"row": name, "dataset": cfg.dataset, "method": _row_label(cfg), "T": cfg.T, **rep.row()})
        for _, lr in rep.layers.iterrows():
            layer_rows.append({"row": name, "layer": lr["layer"], "type": lr["type"], "input": lr["input"],
                               "density": round(lr["density"], 4), "ACs": round(lr["ACs"]), "MACs": round(lr["MACs"])})
        for k, v in rates.items():
            layer_rows.append({"row": name, "layer": k, "type": rep.extra["kinds"][k], "input": "",
                               "rate": round(v, 4), "spikes": round(rep.spikes[k], 1)})
    table = pd.DataFrame(rows)
    table.to_csv(out / "operations.csv", index=False)
    pd.DataFrame(layer_rows).to_csv(out / "operations_layers.csv", index=False)
    fig, _ = plot.operations(table, title=f"seed-0 models, {n_samples} test samples: energy per sample")
    fig.tight_layout()
    fig.savefig(out / "operations.png")
    cols = ["row", "T", "mean_rate", "spikes", "ACs", "MACs", "energy_nJ", "ann_energy_nJ", "snn_over_ann"]
    print("\nspikes and synaptic operations per sample (seed-0 models, snnlab.metrics; 0.9 pJ/AC, 4.6 pJ/MAC):\n"
          + table[cols].to_string(index=False))
    return [out / "operations.csv", out / "operations_layers.csv", out / "operations.png"]


def load_run_model(cfg: TrainConfig, bundle=None):
    """The trained model of a finished run (its checkpoint; weights only); ``bundle``: its data, if loaded already."""
    from . import data
    from .loop import load_checkpoint
    from .train import build_from_config

    model = build_from_config(cfg, bundle if bundle is not None else data.load(cfg.dataset))
    model.load_state_dict(load_checkpoint(Path(cfg.out_dir) / "checkpoint.pt")["model"])
    return model.eval()


def _markdown(table: list[dict]) -> str:
    keys = list(table[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in table]
    return "\n".join(lines)


def _write_table(out: Path, table: list[dict]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(table[0]))
        w.writeheader()
        w.writerows(table)
    (out / "results.md").write_text(_markdown(table) + "\n")


def _flatness(out: Path, minima: dict, fast: bool) -> list[Path]:
    """TET's Fig. 2 at small scale: surfaces and top Hessian eigenvalues of the SDT and TET minima."""
    import functools

    from . import data, landscape, losses, plot

    cfg = next(iter(minima.values()))[1]
    bundle = data.load(cfg.dataset)
    batches = landscape.fixed_batches(bundle, cfg.T, n_batches=2, batch_size=128)
    loss_fns = {"L_SDT": losses.sdt_loss, "L_TET": functools.partial(losses.tet_loss, lamb=0.0)}
    models = {f"{k}-trained": m for k, (m, _) in minima.items()}
    t0 = time.perf_counter()
    res = landscape.compare_landscapes(models, batches, loss_fns, span=1.0, resolution=5 if fast else 21,
                                       progress=False)
    t_grid = time.perf_counter() - t0
    fig, _ = landscape.plot_landscape_grid(res, kind="contour")
    fig.savefig(out / "landscape.png")
    rows, hist = [], {}
    for mname, model in models.items():
        for lname, fn in loss_fns.items():
            eig, h = landscape.top_hessian_eigenvalue(model, batches, fn, iters=3 if fast else 30, tol=1e-3)
            rows.append({"minimum": mname, "loss": lname, "top_hessian_eigenvalue": round(eig, 3),
                         "iterations": len(h)})
            hist[f"{mname}, {lname}"] = h
    with open(out / "sharpness.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    fig, ax = plot.lines(list(range(1, 1 + max(len(h) for h in hist.values()))), {
        k: h + [float("nan")] * (max(map(len, hist.values())) - len(h)) for k, h in hist.items()},
        xlabel="power iteration", ylabel="Rayleigh quotient")
    ax.set_title("top Hessian eigenvalue (sharpness), digits, T = 4")
    fig.tight_layout()
    fig.savefig(out / "sharpness.png")
    print(f"\nloss landscapes: {len(models)} x 2 surfaces of {res['resolution']}x{res['resolution']} in {t_grid:.1f} s")
    print("sharpness (top Hessian eigenvalue): " + "; ".join(
        f"{r['minimum']} under {r['loss']}: {r['top_hessian_eigenvalue']:.2f}" for r in rows))
    return [out / "landscape.png", out / "sharpness.csv", out / "sharpness.png"]
