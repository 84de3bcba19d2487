"""Functions of ``(outputs, y)`` and of ``(model, batches)`` that the landscape tools evaluate: the accuracy
of the time-averaged output and the differentiable batch-weighted mean loss."""
from __future__ import annotations

import torch
from torch import nn

from .batches import Batches, LossFn

__all__ = ["accuracy", "mean_loss"]


def accuracy(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The share of correct predictions, the prediction being the argmax of the time-averaged output.

    ``outputs`` is ``[T, B, C]`` (time-first, as every snnlab model returns), ``y`` the labels ``[B]``.
    Returns a 0-d float tensor in ``[0, 1]``. It has the signature of a loss, so ``loss_at``,
    ``loss_surface_1d`` and ``loss_surface_2d`` accept it in place of one (the accuracy under a weight
    perturbation is then ``loss_surface_1d(model, batches, accuracy, direction, alphas)``).
    """
    return (outputs.mean(0).argmax(-1) == y).float().mean()


def mean_loss(model: nn.Module, batches: Batches, loss_fn: LossFn) -> torch.Tensor:
    """``sum_b loss_fn(model(x_b), y_b) * |b| / sum_b |b|``: the loss of the union of ``batches`` when
    ``loss_fn`` is a per-sample mean, as a tensor **with** its autograd graph (unlike ``loss_at``, which
    returns a float under ``no_grad`` in eval mode).

    Runs the model as it is (its train/eval flags and ``torch.is_grad_enabled()`` are left alone), on the
    batches as given (they must already be on the model's device).
    """
    n = sum(len(y) for _, y in batches)
    if n == 0:
        raise ValueError("batches is empty: give at least one (x, y) batch")
    return sum(loss_fn(model(x), y) * len(y) for x, y in batches) / n
