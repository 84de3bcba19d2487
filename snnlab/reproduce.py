"""``snnlab reproduce``: the main job. Trains the tutorial SNN on the embedded datasets and writes a table.

Output (under ``out``, default ``results/``):

* ``results.csv`` and ``results.md`` -- dataset, method, T, test accuracy, train time per row,
* ``training_curves.png`` -- loss and test accuracy per epoch for every row,
* ``runs/<row>/`` -- each row's config.json, metrics.csv, checkpoint.pt, results.json.

Later issues add rows (TET, chi-adaptive surrogates, DSR) to ``ROWS``.
"""
from __future__ import annotations

import csv
import time
from pathlib import Path

from .train import TrainConfig, fit

__all__ = ["ROWS", "rows", "reproduce"]

# The main job: standard direct training (SDT) of the tutorial model with TET's LIF preset.
ROWS: list[dict] = [
    dict(name="digits-sdt", dataset="digits", method="sdt", T=4, epochs=20, batch_size=64, lr=1e-2),
    dict(name="dvs-digits-sdt", dataset="dvs-digits", method="sdt", T=8, epochs=15, batch_size=64, lr=5e-3),
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
    table, histories = [], {}
    for name, cfg in rows(fast):
        cfg = cfg.replace(out_dir=str(out / "runs" / name), device=device, progress=progress)
        t0 = time.perf_counter()
        hist = fit(cfg)
        wall = time.perf_counter() - t0
        histories[name] = list(hist)
        table.append(
            {
                "dataset": cfg.dataset,
                "method": cfg.method,
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
    print(_markdown(table))
    print(f"\nwritten: {out / 'results.csv'}, {out / 'results.md'}, {out / 'training_curves.png'}")
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
