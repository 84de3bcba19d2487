"""Losses on the output sequence ``O`` of shape ``[T, B, C]`` (time-first, non-spiking readout).

* SDT, standard direct training: ``L_SDT = CE(mean_t O(t), y)`` -- the loss sees only the mean output.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["sdt_loss", "LOSSES", "get", "check_outputs"]


def check_outputs(outputs: torch.Tensor, target: torch.Tensor) -> None:
    """Raise a ValueError naming the shapes unless ``outputs`` is ``[T, B, C]`` and ``target`` is ``[B]``."""
    if not torch.is_tensor(outputs) or outputs.dim() != 3:
        shape = tuple(outputs.shape) if torch.is_tensor(outputs) else type(outputs).__name__
        raise ValueError(f"outputs must have shape [T, B, C], got {shape}")
    if not torch.is_tensor(target) or target.dim() != 1 or target.shape[0] != outputs.shape[1]:
        shape = tuple(target.shape) if torch.is_tensor(target) else type(target).__name__
        raise ValueError(
            f"target must have shape [B] = [{outputs.shape[1]}] to match outputs {tuple(outputs.shape)}, got {shape}"
        )


def sdt_loss(outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Standard direct training loss: cross-entropy of the time-averaged output.

    Args:
        outputs: ``[T, B, C]`` logits ``O(t)`` of the non-spiking readout at every step.
        target: ``[B]`` class indices.
    Returns:
        scalar ``CE(mean_t O(t), y)`` (mean over the batch).
    """
    check_outputs(outputs, target)
    return F.cross_entropy(outputs.mean(0), target)


LOSSES = {"sdt": sdt_loss}


def get(name: str):
    """The loss function registered under ``name`` (see ``LOSSES``)."""
    if name not in LOSSES:
        raise ValueError(f"unknown method/loss {name!r}; available: {', '.join(map(repr, LOSSES))}")
    return LOSSES[name]
