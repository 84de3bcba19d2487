"""The training loop: a few named steps that ask the registry (``snnlab.methods``) for everything method-specific.

``run_fit`` = ``Run(...)`` (data, model, the parts' preparations, optimizer) -> ``resume_from_checkpoint`` ->
``before_training`` (the parts' phases, then ``config.json``) -> ``train_epoch`` / ``end_epoch`` per epoch ->
``finish`` (``results.json``). The loop never names a method: the method gives the model and the loss, the active
add-ons give callbacks and phases.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from . import checkpoint as _checkpoint
from . import distributed as _dist
from . import methods as _methods
from .callbacks import Callback, State
from .config import T_at_epoch, TrainConfig, resolve_device
from .data.bundle import epoch_split, final_split
from .evaluation import evaluate, load_data, temporal_scalability
from .io import atomic_write_text
from .layers import encode
from .optim import make_optimizer, make_scheduler
from .seeding import epoch_seed, seed_everything

__all__ = ["fit", "run_fit", "Run", "History", "NonFiniteLossError", "load_checkpoint", "atomic_save", "Callback",
           "write_csv", "restore_scaler"]


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class History(list):
    """The per-epoch metrics (a list of dicts), with the trained ``model`` and the ``config`` attached.

    ``phases``: what each part's phase before training gave, ``{part name: dict}``; also as an attribute named
    after the part (``history.<part name>``, None when the part had no phase in this run).
    """

    def __init__(self, rows=(), model: nn.Module | None = None, config: TrainConfig | None = None):
        super().__init__(rows)
        self.model = model
        self.config = config
        self.phases: dict = {}
        self.callbacks: list = []

    def __getattr__(self, name):  # only for names that are not attributes: a registered part's phase result
        if not name.startswith("_") and name in _methods.names() + _methods.names("addon"):
            return self.__dict__.get("phases", {}).get(name)
        raise AttributeError(f"'History' has no attribute {name!r}")

    @property
    def last(self) -> dict:
        return self[-1] if self else {}

    def frame(self):
        """The history as a ``pandas.DataFrame``."""
        import pandas as pd

        return pd.DataFrame(list(self))


# ----------------------------------------------------------------------------------------------------- files
def atomic_save(obj, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace``: never half-written."""
    _checkpoint.save(obj, path)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint written by ``fit`` (a dict with ``model``, ``optimizer``, ``config``, ...); a bad file
    raises ``snnlab.checkpoint.CheckpointError`` naming it and what is wrong."""
    ck = _checkpoint.load(path, map_location=map_location)
    return _checkpoint.upgrade(ck)


def write_csv(path: Path, rows: list[dict]) -> None:
    """Write ``rows`` (one dict per epoch) as CSV, atomically; the columns are every key in order of first use."""
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


# ----------------------------------------------------------------------------------------------------- data
class _Data:
    """The run's datasets: one bundle, or for event data one simulated bundle per T (TIT switches T)."""

    def __init__(self, config, given):
        self.config, self.given = config, given
        self.first = given if given is not None else load_data(config)
        self.by_T = {config.T: self.first}

    def at(self, T):
        if not self.first.temporal:
            return self.first
        if T not in self.by_T:
            if self.given is not None:
                raise ValueError(f"T changes to {T} but the given event bundle has T={self.first.T}; pass no bundle")
            self.by_T[T] = load_data(self.config.replace(T=T))
        return self.by_T[T]


def restore_scaler(scaler, state: dict) -> None:
    """Restore a GradScaler unless the checkpoint's was disabled (e.g. written on a CPU or with bfloat16):
    then the scaler starts fresh (its scale is re-learnt within a few steps)."""
    if state:
        scaler.load_state_dict(state)


# ----------------------------------------------------------------------------------------------------- the run
class Run:
    """One training run in progress: what the loop's steps and the parts' phases share.

    Built in one go: the data, the model (the method's, unless one is given), each active part's ``prepare``,
    the wrapper for several processes, the loss, optimizer, scheduler and scaler, the callbacks (the user's, then
    the parts'), and an empty ``History``.
    """

    def __init__(self, config, ctx, device, bundle=None, model=None, callbacks=(), phase=""):
        self.config, self.ctx, self.device, self.phase = config, ctx, device, phase
        self.is_main = ctx.is_main
        self.out = Path(config.out_dir) if config.out_dir else None
        self.ckpt_path = self.out / "checkpoint.pt" if self.out else None
        self.use_amp = bool(config.amp) and device.type == "cuda"
        self.amp_dtype = getattr(torch, config.amp_dtype)
        self.channels_last = bool(config.channels_last) and device.type == "cuda"
        self.parts = _methods.active_parts(config)
        self.scratch: dict = {}  # the parts' own objects between prepare and before_training
        seed_everything(config.seed)
        self.data = _Data(config, bundle)
        self.bundle = self.data.first
        if model is not None:
            for p in self.parts:
                p.check_model(model, config)
        model = model if model is not None else self.parts[0].build_model(config, self.bundle)
        self.model = model.to(device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        for p in self.parts:
            p.prepare(self)
        self.train_model = _dist.wrap_model(self.model, ctx, device)  # DDP + synchronised BN; the model itself if one
        self.reduce = ctx.all_reduce_sum if ctx.enabled else None
        self.loss_fn = self.parts[0].loss(config)
        self.optimizer = make_optimizer(config.optimizer, self.model.parameters(), config.lr, config.weight_decay)
        self.scheduler = make_scheduler(config.scheduler, self.optimizer, config.epochs)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)
        self.callbacks = list(callbacks) + [cb for p in self.parts for cb in p.callbacks(config)]
        self.history = History(model=self.model, config=config)
        self.history.callbacks = self.callbacks
        self.start_epoch, self.global_step = 1, 0  # optimizer steps taken so far (all epochs): drive the warm-up
        self.warmup_steps = config.warmup_iters  # train_epoch sets it from warmup_epochs once it knows the steps
        self.state = State(model=self.model, optimizer=self.optimizer, config=config, epoch=1, step=0, log={},
                           device=device)

    # ---- for the parts' phases
    def train(self, config, model, phase: str = "") -> History:
        """Train ``model`` in place with another ``config`` on this run's data, processes and device."""
        return run_fit(config, (), None, self.bundle, model, self.ctx, self.device, phase=phase)

    def T_at(self, epoch: int) -> int:
        return T_at_epoch(self.config, epoch)

    def broadcast(self, obj):
        """``obj`` from rank 0 on every process (itself with one process)."""
        return self.ctx.broadcast_object(obj) if self.ctx.enabled else obj

    def test_loader(self, T: int, split: str | None = None):
        """The evaluation loader at ``T``: the config's per-epoch split (test, or validation for ``split`` val and
        final) unless ``split`` is given."""
        split = split or epoch_split(self.config.split)
        _, loader = self.data.at(T).loaders(self.config.batch_size, split=split)
        return _dist.shard_eval_loader(loader, self.ctx) if self.ctx.enabled else loader

    def test_accuracy(self, model, T: int) -> float:
        """Accuracy of ``model`` on the run's per-epoch evaluation split (the test split, or the validation one)."""
        return evaluate(model, self.test_loader(T), T, self.bundle.temporal, self.device, self.loss_fn,
                        reduce=self.reduce)["acc"]


def check_processes(config, ctx) -> None:
    """What several processes need: a divisible global batch; parts that support them."""
    if not ctx.enabled:
        return
    if config.batch_size % ctx.world_size:
        raise ValueError(
            f"batch_size {config.batch_size} is the global batch and must be divisible by the number of "
            f"processes {ctx.world_size} (each process takes batch_size / {ctx.world_size})"
        )
    for p in _methods.active_parts(config):
        if not p.supports_distributed:
            raise ValueError(f"{p.label(config)} ({p.name}) is not supported with several processes yet")


def read_checkpoint(run: Run) -> dict | None:
    """The checkpoint to resume from (``config.resume`` and one exists); rank 0 reads it and sends it to the
    others, which need no shared disk."""
    config, path = run.config, run.ckpt_path
    found = config.resume and path is not None and path.exists()
    if run.ctx.enabled:
        return run.ctx.broadcast_object(load_checkpoint(path, map_location="cpu") if run.is_main and found
                                        else None)
    return load_checkpoint(path, map_location=run.device) if found else None


def resume_from_checkpoint(run: Run, ck: dict) -> None:
    """Check that ``ck`` is this run's (same experiment) and restore the model, optimizer, history, ..."""
    saved, now = TrainConfig.from_dict(ck["config"]).experiment(), run.config.experiment()
    diff = {k: (saved.get(k), now.get(k)) for k in {**saved, **now} if saved.get(k) != now.get(k)}
    if diff:
        raise ValueError(f"cannot resume from {run.ckpt_path}: config differs in "
                         + ", ".join(f"{k} (checkpoint {a!r}, now {b!r})" for k, (a, b) in diff.items()))
    run.model.load_state_dict(ck["model"])
    run.optimizer.load_state_dict(ck["optimizer"])
    if run.scheduler is not None:
        run.scheduler.load_state_dict(ck["scheduler"])
    restore_scaler(run.scaler, ck["scaler"])
    run.history.extend(ck["history"])
    run.start_epoch = ck["epoch"] + 1
    run.global_step = ck.get("global_step", 0)


def before_training(run: Run, ck: dict | None) -> None:
    """The parts' phases (not repeated on resume: their results come from the checkpoint), ``config.json``,
    then the callbacks' start (and their saved state on resume)."""
    if ck is not None:
        run.history.phases.update(ck.get("phases") or {})
    else:
        for p in run.parts:
            info = p.before_training(run)
            if info is not None:
                run.history.phases[p.name] = info
    if run.out is not None and run.is_main:  # after the phases: a bad file they open leaves the folder as it was
        run.config.to_json(run.out / "config.json")
    run.state.epoch = run.start_epoch
    for cb in run.callbacks:
        cb.on_fit_start(run.state)
    if ck is not None and ck.get("callbacks") is not None:
        for cb, st in zip(run.callbacks, ck["callbacks"]):
            cb.load_state_dict(st)


def warmup_steps(config, steps_per_epoch: int) -> int:
    """Optimizer steps of linear warm-up: ``warmup_iters``, or ``warmup_epochs`` epochs of ``steps_per_epoch``."""
    if config.warmup_iters:
        return config.warmup_iters
    return int(round(config.warmup_epochs * steps_per_epoch))


def train_step(run: Run, x, y, T: int, temporal: bool, epoch: int, epoch_lrs: list) -> tuple:
    """One optimizer step on a batch: forward, loss, the divergence check, warm-up, backward, callbacks.
    Returns ``(outputs, y on the device, loss value)``."""
    config, ctx, state = run.config, run.ctx, run.state
    x = x.to(run.device)
    if run.channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    x, y = encode(x, T, temporal), y.to(run.device)
    with torch.autocast(device_type=run.device.type, dtype=run.amp_dtype, enabled=run.use_amp):
        outputs = run.train_model(x)
        loss = run.loss_fn(outputs.float(), y)
    loss_value = float(loss.detach())
    finite = math.isfinite(loss_value)
    if ctx.enabled:
        # global batch size and "did any rank diverge", in one all-reduce; the loss is weighted so that
        # DDP's average of the ranks' gradients is the gradient of the global-batch mean loss
        n_global, bad = ctx.all_reduce_sum(torch.tensor([float(len(y)), float(not finite)])).tolist()
        finite = bad == 0
        loss = loss * (ctx.world_size * len(y) / n_global)
    if not finite:
        raise NonFiniteLossError(
            f"loss is {'not finite on another process' if math.isfinite(loss_value) else loss_value} "
            f"at epoch {epoch}, step {state.step} (lr={config.lr:g}); "
            + (f"the last good checkpoint is {run.ckpt_path} (epoch {epoch - 1})" if run.ckpt_path and epoch > 1
               else "no checkpoint was written yet")
        )
    if run.global_step < run.warmup_steps:  # warm-up: the epoch's rate times (k + 1) / N
        for g, lr in zip(run.optimizer.param_groups, epoch_lrs):
            g["lr"] = lr * (run.global_step + 1) / run.warmup_steps
    run.global_step += 1
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    state.outputs, state.loss = outputs, loss_value
    for cb in run.callbacks:
        cb.on_after_backward(state)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    for cb in run.callbacks:
        cb.on_step_end(state)
    return outputs, y, loss_value


def train_epoch(run: Run, epoch: int, show: bool) -> tuple[dict, object]:
    """Train one epoch, step the schedule, evaluate; return the epoch's metrics row and the test loader."""
    config, ctx = run.config, run.ctx
    run.state.epoch, run.state.log = epoch, {}
    T = T_at_epoch(config, epoch)
    data = run.data.at(T)
    seed_everything(epoch_seed(config.seed, epoch) + ctx.rank)
    train_loader, test_loader = data.loaders(config.batch_size, shuffle_seed=epoch_seed(config.seed, epoch),
                                             split=config.split)
    if ctx.enabled:  # this rank's part of each global batch; an interleaved part of the evaluation split
        train_loader = _dist.shard_train_loader(train_loader, ctx)
        test_loader = _dist.shard_eval_loader(test_loader, ctx)
    run.model.train()
    t0 = time.perf_counter()
    n, loss_sum, correct = 0, 0.0, 0
    n_batches = len(train_loader) if config.max_batches is None else min(config.max_batches, len(train_loader))
    run.warmup_steps = warmup_steps(config, n_batches)
    bar = tqdm(train_loader, total=n_batches, desc=f"{run.phase}epoch {epoch}", leave=False, disable=not show)
    epoch_lrs = [g["lr"] for g in run.optimizer.param_groups]  # the scheduler's rates for this epoch
    for step, (x, y) in enumerate(bar, start=1):
        if step > n_batches:
            break
        run.state.step = step
        outputs, y, loss_value = train_step(run, x, y, T, data.temporal, epoch, epoch_lrs)
        n += len(y)
        loss_sum += loss_value * len(y)
        correct += int((outputs.detach().mean(0).argmax(-1) == y).sum())
        bar.set_postfix(loss=f"{loss_sum / n:.3f}", acc=f"{correct / n:.3f}")
    bar.close()
    train_time = time.perf_counter() - t0
    if ctx.enabled:
        n, loss_sum, correct = ctx.all_reduce_sum(torch.tensor([n, loss_sum, correct], dtype=torch.float64)).tolist()
        n, correct = int(n), int(correct)
    for g, lr in zip(run.optimizer.param_groups, epoch_lrs):  # undo the warm-up before the scheduler steps
        g["lr"] = lr
    if run.scheduler is not None:
        run.scheduler.step()
    ev = evaluate(run.model, test_loader, T, data.temporal, run.device, run.loss_fn, reduce=run.reduce)
    split = epoch_split(config.split)
    row = {
        "epoch": epoch, "T": T,
        # cost in T-weighted epochs (TIT): the sum of T over the epochs trained so far
        "T_epochs": run.history.last.get("T_epochs", 0) + T,
        "train_loss": loss_sum / n, "train_acc": correct / n, f"{split}_loss": ev["loss"], f"{split}_acc": ev["acc"],
        "lr": run.optimizer.param_groups[0]["lr"], "epoch_time_s": train_time,
    }
    if config.split == "final" and epoch == config.epochs:  # the one look at the test split
        test_loader = run.test_loader(T, split="test")
        ev = evaluate(run.model, test_loader, T, data.temporal, run.device, run.loss_fn, reduce=run.reduce)
        row.update(test_loss=ev["loss"], test_acc=ev["acc"])
    return row, test_loader


def end_epoch(run: Run, epoch: int, row: dict) -> None:
    """The callbacks' epoch end (their log joins the row), the row into the history, metrics.csv and the
    checkpoint (rank 0; every rank waits until it is on disk)."""
    for cb in run.callbacks:
        cb.on_epoch_end(run.state)
    row.update(run.state.log)
    run.history.append(row)
    if run.out is not None and run.is_main:
        write_csv(run.out / "metrics.csv", list(run.history))
        atomic_save(
            {
                "epoch": epoch,
                "model": run.model.state_dict(),
                "optimizer": run.optimizer.state_dict(),
                "scheduler": run.scheduler.state_dict() if run.scheduler is not None else None,
                "scaler": run.scaler.state_dict(),
                "global_step": run.global_step,
                "history": list(run.history),
                "config": run.config.to_dict(),
                "callbacks": [cb.state_dict() for cb in run.callbacks],
                "phases": run.history.phases,
            },
            run.ckpt_path,
        )
    if run.out is not None:
        run.ctx.barrier()


def finish(run: Run, test_loader, given_bundle) -> None:
    """After the last epoch: ``results.json`` with the final row, the per-step accuracy, the temporal
    scalability (``eval_T``), the training time and the parts' phases."""
    config, history = run.config, run.history
    if run.out is None or not history or history.last["epoch"] != config.epochs:
        return
    T = T_at_epoch(config, config.epochs)
    if test_loader is None:  # resumed a finished run: nothing was trained (split final: the last epoch's
        test_loader = run.test_loader(T, split=final_split(config.split))  # loader is the test split's)
    final = dict(history.last)
    final["split"] = config.split
    final["acc_per_step"] = evaluate(run.model, test_loader, T, run.data.at(T).temporal, run.device, run.loss_fn,
                                     reduce=run.reduce)["acc_per_step"]
    if not run.is_main:
        return
    if config.eval_T:
        final["acc_by_T"] = temporal_scalability(run.model, config, config.eval_T, run.device, given_bundle,
                                                 split=final_split(config.split))
    final["train_time_s"] = sum(r["epoch_time_s"] for r in history)
    final.update(history.phases)
    atomic_write_text(run.out / "results.json", json.dumps({"config": config.to_dict(), "final": final}, indent=2))


def run_fit(config, callbacks, stop_after, bundle, model, ctx, device, phase: str = "") -> History:
    """The loop: set up, resume, the phases before training, the epochs, the results (see the module's doc)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = bool(config.cudnn_benchmark)
    check_processes(config, ctx)
    run = Run(config, ctx, device, bundle, model, callbacks, phase)
    ck = read_checkpoint(run)
    if ck is not None:
        resume_from_checkpoint(run, ck)
    before_training(run, ck)
    show = config.progress and run.is_main
    epochs = tqdm(range(run.start_epoch, config.epochs + 1), desc=f"{phase}epochs", disable=not show,
                  initial=run.start_epoch - 1, total=config.epochs)
    test_loader = None
    for epoch in epochs:
        row, test_loader = train_epoch(run, epoch, show)
        end_epoch(run, epoch, row)
        split = epoch_split(config.split)
        epochs.set_postfix({f"{split}_acc": f"{row[f'{split}_acc']:.3f}"})
        if stop_after is not None and epoch >= stop_after:
            break
    epochs.close()
    finish(run, test_loader, bundle)
    return run.history


def fit(
    config: TrainConfig,
    *,
    callbacks: list[Callback] | tuple = (),
    stop_after: int | None = None,
    bundle=None,
    model: nn.Module | None = None,
) -> History:
    """Train ``config`` and return the per-epoch metrics (``History``; ``.model`` is the trained model).

    Args:
        config: the run (validated first: a bad field raises ValueError naming it).
        callbacks: ``Callback`` objects observing the loop.
        stop_after: stop after this epoch (1-based) as if interrupted; ``resume=True`` continues later.
        bundle: a ``snnlab.data.DataBundle`` to use instead of loading ``config.dataset``.
        model: a model to train instead of building ``config.model`` (e.g. to fine-tune).
    """
    config.validate()
    ctx, device = _dist.setup(resolve_device(config.device))
    try:
        return run_fit(config, callbacks, stop_after, bundle, model, ctx, device)
    finally:
        ctx.close()
