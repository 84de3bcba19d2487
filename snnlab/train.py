"""Training: ``fit(config)``, ``sweep``, and the names users import from here (config, loop, callbacks).

The pieces live in their own modules: ``snnlab.config`` (``TrainConfig``, each option declared once),
``snnlab.methods`` (what each method changes: model, loss, callbacks, phases), ``snnlab.loop`` (the loop's
steps, which name no method), ``snnlab.checkpoint`` (safe checkpoint files).

The data flow (the README's "Architecture" section)::

    data -> encoder -> model -> outputs [T, B, C] -> loss -> backward (surrogate) -> optimizer
                                         callbacks observe every step (chi, metrics, checkpoints)

What ``fit`` writes into ``config.out_dir`` (nothing if ``out_dir`` is None):

* ``config.json``   -- the config of the run (also inside every checkpoint),
* ``metrics.csv``   -- one row per epoch (rewritten atomically each epoch),
* ``checkpoint.pt`` -- model, optimizer, scheduler, scaler, history, after every epoch, written atomically
  (to a temporary file, then ``os.replace``), so a crash never leaves a half-written checkpoint,
* ``results.json``  -- the final metrics,
* a part's phase before training, e.g. DSR hybrid training (``hybrid_ann_epochs``, ``snnlab.hybrid``): ``ann/``
  (the ANN phase, an ordinary run with the files above) and ``hybrid.json`` (the ANN's test accuracy, the calibrated thresholds, the SNN's test
  accuracy right after initialisation; also in ``results.json`` under ``final.hybrid``).

``resume=True`` continues from ``checkpoint.pt``; because each epoch's shuffling and random state are
derived from ``(seed, epoch)``, a run stopped after epoch k and resumed ends with exactly the weights of an
uninterrupted run on CPU.
"""
from __future__ import annotations

from torch import nn

from . import methods as _methods
from .callbacks import Callback, State as _State  # noqa: F401  (_State: the loop's state, under its old name)
from .config import (AMP_DTYPES, OPTIMIZERS, SCHEDULERS, T_at_epoch, TrainConfig, parse_T_list,  # noqa: F401
                     parse_T_schedule, resolve_device)
from .io import atomic_write_text as _atomic_write_text  # noqa: F401  (kept for old imports)
from .layers import encode
from .evaluation import evaluate, load_data, temporal_scalability
from .loop import (History, NonFiniteLossError, atomic_save, fit, load_checkpoint,  # noqa: F401
                   restore_scaler as _load_scaler, run_fit, write_csv as _write_csv)
from .neuron_base import RESETS  # noqa: F401
from .seeding import epoch_seed as _epoch_seed, seed_everything  # noqa: F401
from .tuning import SweepResult, sweep  # noqa: F401

__all__ = [
    "TrainConfig",
    "fit",
    "evaluate",
    "encode",
    "seed_everything",
    "resolve_device",
    "History",
    "Callback",
    "NonFiniteLossError",
    "load_checkpoint",
    "atomic_save",
    "sweep",
    "parse_T_schedule",
    "T_at_epoch",
    "temporal_scalability",
    "build_from_config",
    "loss_from_config",
]


def build_from_config(config: TrainConfig, bundle) -> nn.Module:
    """The model ``config`` describes for ``bundle``'s inputs (built by the config's method)."""
    return _methods.method_of(config).build_model(config, bundle)


def loss_from_config(config: TrainConfig):
    """The training loss of a config (given by its method: ``sdt_loss``, ``tet_loss`` with ``lamb``/``phi``, ...)."""
    return _methods.method_of(config).loss(config)


_fit = run_fit  # the loop under its old private name (tests drive it with a fake process group)
