"""Evaluation: a config's dataset, test loss and accuracy (also per time step), accuracy at other T."""
from __future__ import annotations

import torch
from torch import nn

from . import data as _data
from . import losses as _losses
from .config import TrainConfig, parse_T_list
from .layers import encode

__all__ = ["load_data", "evaluate", "temporal_scalability"]


def load_data(config: TrainConfig):
    """The dataset of a config (event data with ``T = config.T`` frames), read from ``config.data_root``."""
    opts = dict(config.data_options)
    kw = dict(T=config.T, seed=config.data_seed) if config.dataset in _data.TEMPORAL else {}
    try:
        return _data.load(config.dataset, root=config.data_root, **kw, **opts)
    except TypeError as e:  # an option the loader does not take: a bad config value, named as such
        if "unknown keyword argument" not in str(e):
            raise
        raise ValueError(f"data_options {opts!r} for {config.dataset!r}: {e}") from None


@torch.no_grad()
def evaluate(model: nn.Module, loader, T: int, temporal: bool, device=None, loss_fn=_losses.sdt_loss,
             *, reduce=None) -> dict:
    """Loss and accuracy (prediction = argmax of ``mean_t O(t)``) of ``model`` over ``loader``.

    Also returns ``acc_per_step``: the accuracy of ``O(t)`` alone at every step t (TET's per-step view).
    ``reduce`` (several processes, each with a part of the test set): a function summing a float64 tensor
    over the processes, applied to the loss sum and the counts before dividing.
    """
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, loss_sum, correct = 0, 0.0, 0
    correct_t = None
    for x, y in loader:
        x, y = encode(x.to(device), T, temporal), y.to(device)
        out = model(x).float()
        loss_sum += float(loss_fn(out, y)) * len(y)
        correct += int((out.mean(0).argmax(-1) == y).sum())
        c_t = (out.argmax(-1) == y).sum(1)
        correct_t = c_t if correct_t is None else correct_t + c_t
        total += len(y)
    model.train(was_training)
    if reduce is not None:
        sums = reduce(torch.tensor([loss_sum, correct, total, *correct_t.tolist()], dtype=torch.float64))
        loss_sum, correct, total = float(sums[0]), int(sums[1]), int(sums[2])
        correct_t = sums[3:]
    return {
        "loss": loss_sum / total,
        "acc": correct / total,
        "acc_per_step": (correct_t.float() / total).tolist(),
    }


def temporal_scalability(model: nn.Module, config: TrainConfig, Ts, device=None, bundle=None,
                         split: str = "test") -> dict[int, float]:
    """Test accuracy of a trained model at every T' in ``Ts``, without fine-tuning (TET Sec. 5.3, Fig. 4A).

    ``split="val"``: the accuracy on the validation split instead (``DataBundle.split``).

    Static data is repeated T' times. Event data is re-simulated with T' frames (the same sub-steps binned
    into T' frames, so each frame holds about T/T' times the events of a training frame).
    """
    Ts = parse_T_list(Ts)
    out = {}
    for T in Ts:
        b = bundle if bundle is not None and not bundle.temporal else load_data(config.replace(T=T))
        _, test_loader = b.loaders(256, split=split)
        out[T] = evaluate(model, test_loader, T, b.temporal, device)["acc"]
    return out
