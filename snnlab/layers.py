"""Time-merged layers: run a stateless layer once on ``[T*B, ...]`` instead of T times on ``[B, ...]``.

A convolution, linear layer or pooling has no memory, so applying it to every time step is the same as
applying it once to the sequence with time folded into the batch. That is TET's ``SeqToANNContainer``
and SpikingJelly's ``SeqToANNContainer``/multi-step mode, and it is most of why a multi-step SNN is
faster than stepping every layer one time step at a time.

BatchNorm inside ``TimeMerged`` normalises over the merged ``T*B`` dimension (TET's "tdBN" in its code,
without the ``alpha * V_th`` scaling of Zheng et al. 2021).
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["TimeMerged", "DirectEncoder", "Readout", "merge_time", "split_time", "ConvBNSpike", "to_time_first",
           "encode", "check_T"]


def merge_time(x: torch.Tensor) -> torch.Tensor:
    """``[T, B, ...] -> [T*B, ...]``."""
    return x.flatten(0, 1)


def split_time(x: torch.Tensor, T: int) -> torch.Tensor:
    """``[T*B, ...] -> [T, B, ...]``."""
    return x.unflatten(0, (T, x.shape[0] // T))


def to_time_first(x: torch.Tensor) -> torch.Tensor:
    """A batch ``[B, T, ...]`` (as the DataLoader stacks it) -> ``[T, B, ...]`` (contiguous), the library's layout."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"to_time_first expects a torch.Tensor; got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(f"to_time_first expects a batch [B, T, ...] with at least 2 dims; got shape {tuple(x.shape)}")
    return x.transpose(0, 1).contiguous()


def encode(x: torch.Tensor, T: int, temporal: bool) -> torch.Tensor:
    """A batch from the loader -> time-first model input ``[T, B, ...]``.

    Static data ``[B, C, H, W]`` is repeated T times (direct encoding); event data ``[B, T, C, H, W]`` is
    transposed to time-first.
    """
    if temporal:
        return to_time_first(x)
    return x.unsqueeze(0).expand(T, *x.shape)


class TimeMerged(nn.Sequential):
    """Apply stateless ``modules`` (in sequence) to ``[T, B, ...]`` as one call on ``[T*B, ...]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2:
            raise ValueError(f"TimeMerged expects [T, B, ...], got shape {tuple(x.shape)}")
        T = x.shape[0]
        return split_time(super().forward(merge_time(x)), T)


class DirectEncoder(nn.Module):
    """Direct (analog) encoding: repeat a static input ``[B, ...]`` T times -> ``[T, B, ...]``.

    The first conv + BN + spiking layer then acts as the encoder (TET, Sec. 4; Rathi & Roy 2020).
    """

    def __init__(self, T: int):
        super().__init__()
        self.T = check_T(T)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(0).expand(self.T, *x.shape)

    def extra_repr(self) -> str:
        return f"T={self.T}"


def check_T(T) -> int:
    """Validate a number of time steps."""
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"T (number of time steps) must be a positive integer, got {T!r}")
    return T


class Readout(TimeMerged):
    """Non-spiking output layer: a linear map applied at every step, outputs ``O(t)`` of shape ``[T, B, C]``.

    Prediction is ``O.mean(0)``; SDT puts the loss on that mean, TET on every ``O(t)``.
    """

    def __init__(self, in_features: int, num_classes: int):
        super().__init__(nn.Flatten(), nn.Linear(in_features, num_classes))


class ConvBNSpike(nn.Sequential):
    """``TimeMerged(Conv2d 3x3, BatchNorm2d) -> neuron``: the usual SNN block on ``[T, B, C, H, W]``."""

    def __init__(self, c_in: int, c_out: int, neuron: nn.Module):
        super().__init__(
            TimeMerged(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out)), neuron
        )
