"""Filter-normalised random directions in weight space (Li et al. 2018) and the parameters they move."""
from __future__ import annotations

import numbers
from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["landscape_parameters", "random_direction"]

_NORM_LAYERS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)


def _norm_param_ids(model: nn.Module) -> set[int]:
    ids = set()
    for m in model.modules():
        if isinstance(m, _NORM_LAYERS):
            ids.update(id(p) for p in m.parameters(recurse=False))
    return ids


def landscape_parameters(model: nn.Module, ignore: Iterable[str] = ("bn", "bias")) -> list[tuple[str, nn.Parameter]]:
    """The parameters a landscape moves (and the Hessian is taken over): ``[(name, param), ...]``.

    A parameter is included when it has ``dim >= 2`` (it has filters to normalise: conv kernels, linear
    weights) and is not matched by ``ignore``:

    * ``"bn"``: parameters of normalisation layers (BatchNorm, GroupNorm, LayerNorm), found by module type
      (snnlab's BatchNorms sit inside ``TimeMerged`` containers, so their names do not contain "bn");
    * any other string: a substring of the parameter name (``"bias"`` drops every bias, ``"readout"`` would
      freeze the readout).

    Parameters with ``dim < 2`` (biases, BN affine parameters, scalar thresholds) are never included:
    Li et al. (2018) exclude them, as their ``ignore='biasbn'`` option does.
    """
    ignore = tuple(ignore)
    norm_ids = _norm_param_ids(model) if "bn" in ignore else set()
    subs = [s for s in ignore if s != "bn"]
    out = []
    for name, p in model.named_parameters():
        if p.dim() < 2 or id(p) in norm_ids or any(s in name for s in subs):
            continue
        out.append((name, p))
    return out


def _generator(seed) -> torch.Generator | None:
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed must be an int, a torch.Generator or None, got {seed!r}")
    return torch.Generator().manual_seed(int(seed))


def _filter_normalised(w: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    """A Gaussian tensor shaped like ``w`` with every filter (slice along dim 0) rescaled to ``w``'s norm."""
    dtype = w.dtype if w.is_floating_point() else torch.get_default_dtype()
    # drawn on the CPU so a seed gives the same direction on every device
    d = torch.randn(w.shape, generator=g, dtype=dtype).to(w.device)
    d_norm = d.flatten(1).norm(dim=1)
    w_norm = w.to(dtype).flatten(1).norm(dim=1)
    scale = (w_norm / (d_norm + 1e-10)).view(-1, *([1] * (d.dim() - 1)))
    return (d * scale).to(w.dtype)


def random_direction(model: nn.Module, seed: int | torch.Generator | None = None,
                     ignore: Iterable[str] = ("bn", "bias")) -> dict[str, torch.Tensor]:
    """A filter-normalised Gaussian direction in weight space (Li et al., NeurIPS 2018, Sec. 4).

    For every parameter ``W`` returned by ``landscape_parameters(model, ignore)`` (``dim >= 2``, not BN, not
    a bias) draw ``D ~ N(0, I)`` of the same shape and rescale each filter ``i`` (slice ``[i]`` along dim 0)::

        D[i]  <-  D[i] * ||W[i]|| / (||D[i]|| + 1e-10)          (Frobenius norms)

    so every filter of the direction has the norm of the corresponding filter of the weights. Every other
    parameter (BatchNorm, biases, any 1-D parameter) gets a zero direction.

    Args:
        model: the network at the point of interest (its current weights set the filter norms).
        seed: an int (deterministic: the same seed gives the same direction on any device), a
            ``torch.Generator`` (draws continue from its state: two calls give two independent directions),
            or None (the global torch RNG, reproducible after ``snnlab.seed_everything``).
        ignore: see ``landscape_parameters``.

    Returns:
        ``{name: tensor}`` for every ``model.named_parameters()`` entry, same shape, dtype and device as the
        parameter (detached).
    """
    g = _generator(seed)
    moved = {name for name, _ in landscape_parameters(model, ignore)}
    direction = {}
    for name, p in model.named_parameters():
        w = p.detach()
        direction[name] = _filter_normalised(w, g) if name in moved else torch.zeros_like(w)
    return direction


def _two_directions(model: nn.Module, seed, ignore=("bn", "bias")):
    """``d1, d2`` drawn one after the other from one generator seeded with ``seed``."""
    g = _generator(seed)
    return random_direction(model, g, ignore), random_direction(model, g, ignore)
