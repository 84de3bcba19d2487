"""A scale symmetry of conv-BN networks: multiplying a convolution's weights by ``c`` and adjusting the
eval-mode BatchNorm after it leaves the network's function unchanged, while its Hessian changes by ``1 / c^2``
(Dinh et al., "Sharp Minima Can Generalize For Deep Nets", ICML 2017)."""
from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["rescale_convs"]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BNS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def rescale_convs(model: nn.Module, c: float) -> nn.Module:
    """A copy of ``model`` in eval mode in which every convolution directly followed by a BatchNorm (siblings
    in one container, the conv first) is rescaled: ``W -> c W``, running mean ``-> c mu``, running variance
    ``-> c^2 var`` and ``eps -> c^2 eps``. In eval mode each BN then computes
    ``gamma (c W x - c mu) / sqrt(c^2 (var + eps)) + beta``, the same as before, so the network's function is
    unchanged (exactly, bit for bit, when ``c`` is a power of two), while the Hessian block of every rescaled
    weight is multiplied by ``1 / c^2``.

    A convolution must have no bias (``bias=False``, as before a BN) and ``c`` must be positive.
    Raises ``ValueError`` when no conv-BN pair is found. ``model`` itself is not changed.
    """
    if not c > 0:
        raise ValueError(f"c must be positive, got {c!r}")
    model = copy.deepcopy(model)
    pairs = [(a, b) for m in model.modules() for a, b in zip(list(m.children()), list(m.children())[1:])
             if isinstance(a, _CONVS) and isinstance(b, _BNS)]
    if not pairs:
        raise ValueError("no convolution directly followed by a BatchNorm in the model")
    for conv, bn in pairs:
        if conv.bias is not None:
            raise ValueError("rescale_convs needs convolutions without bias (a bias would be scaled too)")
        with torch.no_grad():
            conv.weight.mul_(c)
            bn.running_mean.mul_(c)
            bn.running_var.mul_(c * c)
        bn.eps *= c * c
    return model.eval()
