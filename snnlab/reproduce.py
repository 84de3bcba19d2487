"""``snnlab reproduce``: the main job. Trains the tutorial SNN on the embedded datasets and writes a table.

Output (under ``out``, default ``results/``):

* ``results.csv`` and ``results.md`` -- dataset, method, T, test accuracy, train time per row,
* ``training_curves.png`` -- loss and test accuracy per epoch for every row,
* ``scalability.png`` -- test accuracy at T' = 1..8 of the digits models trained at T = 4 (TET Fig. 4A),
* ``landscape.png``, ``sharpness.csv/.png`` -- 2-D loss surfaces of the digits SDT and TET minima under
  both losses (TET Fig. 2) and their top Hessian eigenvalues,
* ``runs/<row>/`` -- each row's config.json, metrics.csv, checkpoint.pt, results.json.

Later issues add rows (TET, chi-adaptive surrogates, DSR) to ``ROWS``.
"""
from __future__ import annotations

import csv
import time
from pathlib import Path

from .train import TrainConfig, fit

__all__ = ["ROWS", "rows", "reproduce"]

# The main job: the tutorial model with TET's LIF preset, standard direct training (SDT), TET
# (lambda = 0.001, the paper's DVS setting) and the chi-adaptive surrogate on both embedded datasets, and DSR.
_DIGITS = dict(dataset="digits", T=4, epochs=20, batch_size=64, lr=1e-2, eval_T=[1, 2, 3, 4, 6, 8])
_DVS = dict(dataset="dvs-digits", T=8, epochs=15, batch_size=64, lr=5e-3)
ROWS: list[dict] = [
    dict(name="digits-sdt", method="sdt", **_DIGITS),
    dict(name="digits-tet", method="tet", lamb=0.001, **_DIGITS),
    dict(name="digits-sdt-chi", method="sdt", chi_target=0.3, chi_every=5, **_DIGITS),
    dict(name="dvs-digits-sdt", method="sdt", **_DVS),
    dict(name="dvs-digits-tet", method="tet", lamb=0.001, **_DVS),
    dict(name="dvs-digits-sdt-chi", method="sdt", chi_target=0.3, chi_every=5, **_DVS),
    # DSR at low latency (T = 5), LIF neurons with the official code's defaults, rate cross-entropy
    dict(name="digits-dsr", dataset="digits", method="dsr", neuron="lif", T=5, epochs=20, batch_size=64, lr=1e-2),
    dict(name="dvs-digits-dsr", dataset="dvs-digits", method="dsr", neuron="lif", T=5, epochs=15, batch_size=64,
         lr=1e-2),
]


def rows(fast: bool = False) -> list[tuple[str, TrainConfig]]:
    """The ``(name, config)`` pairs of the main job; ``fast`` shrinks them to a pipeline check."""
    out = []
    for r in ROWS:
        r = dict(r)
        name = r.pop("name")
        cfg = TrainConfig(model="tutorial", **r)
        if fast:
            cfg = cfg.replace(epochs=1, max_batches=3)
        out.append((name, cfg))
    return out


def reproduce(out: str | Path = "results", fast: bool = False, device: str = "auto", progress: bool = True):
    """Run every row, print the table, write ``results.csv``, ``results.md`` and ``training_curves.png``."""
    out = Path(out)
    table, histories, scal, minima = [], {}, {}, {}
    for name, cfg in rows(fast):
        cfg = cfg.replace(out_dir=str(out / "runs" / name), device=device, progress=progress)
        t0 = time.perf_counter()
        hist = fit(cfg)
        wall = time.perf_counter() - t0
        histories[name] = list(hist)
        if cfg.dataset == "digits" and cfg.chi_target is None and cfg.method != "dsr":
            minima[cfg.method.upper()] = (hist.model, cfg)
        if cfg.eval_T:
            import json

            final = json.loads((Path(cfg.out_dir) / "results.json").read_text())["final"]
            scal[name] = {int(t): a for t, a in final["acc_by_T"].items()}
        table.append(
            {
                "dataset": cfg.dataset,
                "method": cfg.method + (f"+chi({cfg.chi_target:g})" if cfg.chi_target is not None else ""),
                "T": cfg.T,
                "epochs": cfg.epochs,
                "test_acc": round(hist.last["test_acc"], 4),
                "train_time_s": round(sum(r["epoch_time_s"] for r in hist), 1),
                "wall_time_s": round(wall, 1),
            }
        )
        print(f"[{name}] test acc {hist.last['test_acc']:.4f}", flush=True)
    _write_table(out, table)
    from . import plot

    fig, _ = plot.training_curves(histories)
    fig.tight_layout()
    fig.savefig(out / "training_curves.png")
    written = [out / "results.csv", out / "results.md", out / "training_curves.png"]
    if scal:
        Ts = sorted(next(iter(scal.values())))
        fig, ax = plot.accuracy_vs(Ts, {k: [v[t] for t in Ts] for k, v in scal.items()},
                                   xlabel="T' at test (trained at T = 4)")
        ax.set_title("temporal scalability without fine-tuning (TET Fig. 4A, small scale)")
        fig.tight_layout()
        fig.savefig(out / "scalability.png")
        written.append(out / "scalability.png")
        print("\ntest accuracy at T' (trained at T=4): " + "; ".join(
            f"{k}: " + ", ".join(f"{t}:{a:.3f}" for t, a in v.items()) for k, v in scal.items()))
    if len(minima) == 2:
        written += _flatness(out, minima, fast)
    print(_markdown(table))
    print("\nwritten: " + ", ".join(map(str, written)))
    return table


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
