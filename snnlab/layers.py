"""Time-merged layers: run a stateless layer once on ``[T*B, ...]`` instead of T times on ``[B, ...]``.

A convolution, linear layer or pooling has no memory, so applying it to every time step is the same as
applying it once to the sequence with time folded into the batch. That is TET's ``SeqToANNContainer``
and SpikingJelly's ``SeqToANNContainer``/multi-step mode, and it is most of why a multi-step SNN is
faster than stepping every layer one time step at a time.

BatchNorm inside ``TimeMerged`` normalises over the merged ``T*B`` dimension (TET's "tdBN" in its code,
without the ``alpha * V_th`` scaling of Zheng et al. 2021).
"""
from __future__ import annotations

import os

import torch
from torch import nn

from .kernels import cpu_bn, cpu_pool

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


class _AvgPool2x2(torch.autograd.Function):
    """2 x 2 average pooling, stride 2, of a contiguous ``[N, C, H, W]`` CPU tensor with even H and W.

    The same floating-point operations as ``torch.nn.functional.avg_pool2d(x, 2)`` on the CPU (the window summed
    row by row, ``((x00 + x01) + x10) + x11``, then times 1/4, exact for a power of two), so the result is bitwise
    the same (tested), faster: in C (``snnlab.kernels.cpu_pool``, one pass) when it builds, else four strided adds
    over the input instead of a per-window loop. The backward spreads ``g / 4`` over each window (also bitwise
    avg_pool2d's); when a graph of the backward is wanted (double backward), it is written with differentiable
    view ops.
    """

    @staticmethod
    def forward(ctx, x):
        if cpu_pool.available():  # the same operations in C, one pass (snnlab.kernels.cpu_pool)
            return cpu_pool.forward(x)
        n, c, h, w = x.shape
        s = x.view(n, c, h // 2, 2, w // 2, 2)
        out = torch.add(s[:, :, :, 0, :, 0], s[:, :, :, 0, :, 1])
        return out.add_(s[:, :, :, 1, :, 0]).add_(s[:, :, :, 1, :, 1]).mul_(0.25)

    @staticmethod
    def backward(ctx, g):
        n, c, h, w = g.shape
        grad_graph = torch.is_grad_enabled()  # create_graph=True: differentiable ops only
        if not grad_graph and cpu_pool.available() and g.dtype in (torch.float32, torch.float64):
            return cpu_pool.backward(g.contiguous())
        q = g * 0.25
        if grad_graph:
            row = q.unsqueeze(-1).expand(n, c, h, w, 2).reshape(n, c, h, 2 * w)
            return row.unsqueeze(3).expand(n, c, h, 2, 2 * w).reshape(n, c, 2 * h, 2 * w)
        out = torch.empty(n, c, h, 2, w, 2, dtype=g.dtype, device=g.device)
        for i in (0, 1):
            for j in (0, 1):
                out[:, :, :, i, :, j] = q
        return out.view(n, c, 2 * h, 2 * w)


# TimeMerged's 2 x 2 average pooling through _AvgPool2x2 where it applies; SNNLAB_FAST_POOL=0 switches it off
# (benchmarks measure what it buys; tests compare against avg_pool2d)
_FAST_POOL = os.environ.get("SNNLAB_FAST_POOL", "1").strip().lower() not in ("0", "false", "no", "off")


def _fast_pool_applies(m: nn.Module, x: torch.Tensor) -> bool:
    """``m`` is a plain 2 x 2 / stride 2 AvgPool2d without hooks and ``x`` a contiguous float CPU batch with even
    H and W (anything else runs ``m`` itself)."""
    return (_FAST_POOL and type(m) is nn.AvgPool2d and m.kernel_size in (2, (2, 2))
            and m.stride in (2, (2, 2)) and m.padding in (0, (0, 0)) and not m.ceil_mode
            and m.divisor_override is None and not (m._forward_hooks or m._forward_pre_hooks)
            and not (nn.modules.module._global_forward_hooks or nn.modules.module._global_forward_pre_hooks)
            and x.dim() == 4 and x.device.type == "cpu"
            and x.dtype in (torch.float32, torch.float64) and x.is_contiguous()
            and x.shape[2] % 2 == 0 and x.shape[3] % 2 == 0)


class TimeMerged(nn.Sequential):
    """Apply stateless ``modules`` (in sequence) to ``[T, B, ...]`` as one call on ``[T*B, ...]``.

    On a CPU batch, a plain ``nn.AvgPool2d(2)`` runs as ``_AvgPool2x2`` and a plain ``nn.BatchNorm2d`` in training
    mode through ``snnlab.kernels.cpu_bn`` (each bitwise the module's own result, faster; ``SNNLAB_FAST_POOL=0``,
    ``SNNLAB_FAST_BN=0`` switch them off).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2:
            raise ValueError(f"TimeMerged expects [T, B, ...], got shape {tuple(x.shape)}")
        T = x.shape[0]
        y = merge_time(x)
        for m in self:
            if _fast_pool_applies(m, y):
                y = _AvgPool2x2.apply(y)
            elif type(m) is nn.BatchNorm2d:
                y = cpu_bn.batch_norm(m, y)  # m(y) itself where the kernel does not apply
            else:
                y = m(y)
        return split_time(y, T)


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
