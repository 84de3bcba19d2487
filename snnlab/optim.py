"""The optimizers and learning-rate schedules a run can name (``TrainConfig.optimizer`` / ``scheduler``)."""
from __future__ import annotations

import torch

__all__ = ["OPTIMIZERS", "SCHEDULERS", "make_optimizer", "make_scheduler"]

OPTIMIZERS = ("adam", "sgd")
SCHEDULERS = ("cosine", "none")


def make_optimizer(name: str, params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """``"adam"`` or ``"sgd"`` (momentum 0.9, as TET's and DSR's code)."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be one of {', '.join(map(repr, OPTIMIZERS))}; got {name!r}")


def make_scheduler(name: str, optimizer, epochs: int):
    """``"cosine"``: the rate falls to 0 over ``epochs`` (stepped once per epoch); ``"none"``: None."""
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "none":
        return None
    raise ValueError(f"scheduler must be one of {', '.join(map(repr, SCHEDULERS))}; got {name!r}")
