"""Reference computations to check Hessian code on small, smooth networks: the dense Hessian of the loss and
the central finite difference of its gradient along a vector. Both cost far more than ``hessian_vector_product``
(the dense Hessian has ``P^2`` entries); they exist to test it, on networks with a few hundred weights."""
from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

from .batches import Batches, LossFn, _on_model_device
from .directions import landscape_parameters
from .measures import mean_loss
from .restore import _Restore

__all__ = ["full_hessian", "finite_difference_hvp"]


def full_hessian(model: nn.Module, batches: Batches, loss_fn: LossFn, ignore=("bn", "bias")) -> torch.Tensor:
    """The dense Hessian ``H = nabla^2 L`` over the weights of ``landscape_parameters(model, ignore)``,
    flattened and concatenated in that order: a ``[P, P]`` tensor for ``P`` such weights.

    ``L`` is ``mean_loss(model, batches, loss_fn)`` with the model in eval mode (as
    ``hessian_vector_product``), computed by ``torch.autograd.functional.hessian`` of the loss as a function
    of one flat weight vector (``torch.func.functional_call``; the other parameters and buffers stay as they
    are). ``H @ v_flat`` equals ``hessian_vector_product(model, batches, loss_fn, v)`` flattened. For a
    spiking network this is the surrogate Hessian; use a smooth forward (``surrogate="smooth-sigmoid"``) to
    get the true one. Memory and time grow as ``P^2``: a check for tiny networks only.
    """
    named = landscape_parameters(model, ignore)
    if not named:
        raise ValueError("no parameters to take the Hessian over (all excluded by `ignore`?)")
    sizes, shapes = [p.numel() for _, p in named], [p.shape for _, p in named]
    batches = _on_model_device(model, batches)

    def loss_of_flat(flat: torch.Tensor) -> torch.Tensor:
        ps = {n: c.view(s) for (n, _), c, s in zip(named, flat.split(sizes), shapes)}
        n_samples = sum(len(y) for _, y in batches)
        return sum(loss_fn(functional_call(model, ps, (x,)), y) * len(y) for x, y in batches) / n_samples

    with _Restore(model), torch.enable_grad():
        model.eval()
        flat = torch.cat([p.detach().flatten() for _, p in named])
        return torch.autograd.functional.hessian(loss_of_flat, flat)


def finite_difference_hvp(model: nn.Module, batches: Batches, loss_fn: LossFn, vector, eps: float = 1e-5,
                          ignore=("bn", "bias")) -> list[torch.Tensor]:
    """``(g(theta + eps v) - g(theta - eps v)) / (2 eps)``, with ``g = nabla L`` over the weights of
    ``landscape_parameters(model, ignore)``: the central finite difference of the gradient along ``vector``
    (a list of tensors shaped like those weights), which approximates ``H v`` to ``O(eps^2)`` when the loss is
    smooth (not through real spikes: there the forward is piecewise constant).

    ``L`` is ``mean_loss`` in eval mode. The weights are shifted in place and restored bit for bit
    afterwards, as are the train/eval flags. Use float64 for a meaningful comparison (``eps = 1e-5``).
    """
    params = [p for _, p in landscape_parameters(model, ignore)]
    vec = [torch.as_tensor(v).to(p) for v, p in zip(vector, params)]
    if len(vec) != len(params) or any(v.shape != p.shape for v, p in zip(vec, params)):
        raise ValueError("vector must be a list of tensors with the shapes of the landscape parameters")
    batches = _on_model_device(model, batches)
    grads = []
    for sign in (1.0, -1.0):
        with _Restore(model), torch.enable_grad():
            model.eval()
            with torch.no_grad():
                for p, v in zip(params, vec):
                    p.add_(v, alpha=sign * eps)
            grads.append(torch.autograd.grad(mean_loss(model, batches, loss_fn), params))
    return [(a - b) / (2 * eps) for a, b in zip(*grads)]
