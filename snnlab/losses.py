"""Losses on the output sequence ``O`` of shape ``[T, B, C]`` (time-first, non-spiking readout).

* SDT, standard direct training: ``L_SDT = CE(mean_t O(t), y)`` -- the loss sees only the mean output.
* TET, temporal efficient training (Deng et al., ICLR 2022, Eq. 7-9)::

      L_TET = (1 - lamb) * (1/T) sum_t CE(O(t), y)  +  lamb * (1/T) sum_t MSE(O(t), phi)

  a cross-entropy at every time step, plus a small regulariser pulling every output towards the constant
  ``phi`` (= V_th = 1 in the paper; MSE averaged over classes and batch). ``lamb = 0`` is the pure
  per-step loss. Lemma (Sec. 4.1): ``L_SDT <= (1/T) sum_t CE(O(t), y)`` by convexity of log-sum-exp.

Gradient re-weighting (TET Sec. 4.1): ``d L_TET / d O(t) = (softmax(O(t)) - onehot(y)) / (T B)`` for the CE
part: every step is corrected by its own error, while SDT gives every step the error of the mean,
``(softmax(mean_t O) - onehot(y)) / (T B)``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["sdt_loss", "tet_loss", "LOSSES", "get", "check_outputs"]


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


def tet_loss(outputs: torch.Tensor, target: torch.Tensor, lamb: float = 0.0, phi: float = 1.0) -> torch.Tensor:
    """TET loss: ``(1 - lamb) * mean_t CE(O(t), y) + lamb * mean_t MSE(O(t), phi)``.

    Args:
        outputs: ``[T, B, C]`` logits ``O(t)``.
        target: ``[B]`` class indices.

        lamb: weight of the MSE regulariser in [0, 1]; the paper uses 0.05 on CIFAR, 0.001 on ImageNet and
            DVS-CIFAR10. Default 0 (the per-step cross-entropy alone).

        phi: the constant the outputs are regularised towards (the paper: ``V_th = 1``).
    """
    check_outputs(outputs, target)
    try:
        lamb = float(lamb)
    except (TypeError, ValueError):
        raise ValueError(f"lamb must be a number in [0, 1], got {lamb!r}") from None
    if not 0.0 <= lamb <= 1.0:
        raise ValueError(f"lamb must be in [0, 1], got {lamb!r}")
    T, B, C = outputs.shape
    # CE of every step at once: [T*B, C] against the target repeated T times == mean over t of CE(O(t), y)
    ce = F.cross_entropy(outputs.reshape(T * B, C), target.repeat(T))
    if lamb == 0.0:
        return ce
    mse = F.mse_loss(outputs, torch.full_like(outputs, float(phi)))
    return (1 - lamb) * ce + lamb * mse


# "dsr": DSR models output their last spiking layer's (weighted) firing rate as [1, B, C]; the loss is the
# cross-entropy of that rate (Meng et al. 2022), which is sdt_loss on a one-step output.
LOSSES = {"sdt": sdt_loss, "tet": tet_loss, "dsr": sdt_loss}


def get(name: str):
    """The loss function registered under ``name`` (see ``LOSSES``)."""
    if name not in LOSSES:
        raise ValueError(f"unknown method/loss {name!r}; available: {', '.join(map(repr, LOSSES))}")
    return LOSSES[name]
