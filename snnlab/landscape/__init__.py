"""Loss landscapes and sharpness of a trained SNN: TET's flat-minima figure (Deng et al., ICLR 2022, Fig. 2).

TET argues that its per-step loss finds *flatter* minima than standard direct training (SDT). Two ways to
look at flatness are implemented here.

**Loss surfaces along filter-normalised random directions** (Li, Xu, Taylor, Studer & Goldstein,
"Visualizing the Loss Landscape of Neural Nets", NeurIPS 2018). Around trained weights ``theta`` draw two
Gaussian directions ``d1, d2`` and evaluate::

    f(a)    = L(theta + a * d1)                       (1-D surface, ``loss_surface_1d``)
    f(a, b) = L(theta + a * d1 + b * d2)              (2-D surface, ``loss_surface_2d``)

A raw Gaussian direction is meaningless for networks whose layers are scale-invariant (BatchNorm follows
the convolutions, so ``W`` and ``10 W`` compute the same function). Li et al. therefore rescale the
direction *filter by filter* (``random_direction``)::

    d_{l,i}  <-  d_{l,i} / ||d_{l,i}||  *  ||theta_{l,i}||

where ``d_{l,i}`` is the i-th filter of layer l (a slice along dim 0 of a weight with ``dim >= 2``: an
output channel of a convolution, an output row of a linear layer) and ``||.||`` the Frobenius norm. BatchNorm
parameters and biases get a zero direction (Li et al.'s ``ignore='biasbn'``): the landscape moves only the
weights. Then a step ``a = 1`` changes every filter by as much as its own size, and landscapes of different
networks (or of SDT- and TET-trained minima) are comparable.

**Sharpness as the top Hessian eigenvalue** ``lambda_max(nabla^2 L(theta))`` (Keskar et al. 2017; Yao et
al., PyHessian 2020), found by power iteration with Hessian-vector products (``top_hessian_eigenvalue``).
A flat minimum has a small ``lambda_max``.

Conventions:

* ``batches`` is a fixed list of ``(x, y)`` with ``x`` time-first ``[T, B, ...]`` and ``y`` ``[B]``
  (``fixed_batches`` builds it from a ``DataBundle``), so every point of a landscape sees the same data.
  The loss at a point is the mean over the batches weighted by batch size (the loss of the union when
  ``loss_fn`` is a per-sample mean, as ``sdt_loss`` and ``tet_loss`` are).
* ``loss_fn(outputs, y)`` takes the model's ``outputs [T, B, C]`` and returns a scalar, e.g.
  ``snnlab.losses.sdt_loss`` or ``functools.partial(snnlab.losses.tet_loss, lamb=0)``.
* Surfaces are evaluated in ``model.eval()`` mode (BatchNorm uses its running statistics) under
  ``torch.no_grad()``. The weights are restored bit for bit afterwards and every module's train/eval flag is
  put back, also when an exception interrupts the grid.
* 2-D arrays are indexed ``Z[j, i] = f(alphas[i], betas[j])``: rows follow ``betas`` (y axis), columns
  ``alphas`` (x axis), which is what ``matplotlib``'s ``contour(alphas, betas, Z)`` expects.

Example (TET's Fig. 2 in a few lines)::

    from functools import partial
    from snnlab import landscape, losses
    batches = landscape.fixed_batches(bundle, T=4, n_batches=2, batch_size=128)
    res = landscape.compare_landscapes({"SDT": sdt_model, "TET": tet_model}, batches,
                                       {"L_SDT": losses.sdt_loss, "L_TET": partial(losses.tet_loss, lamb=0)})
    fig, axes = landscape.plot_landscape_grid(res, kind="3d")

Modules (each with one job; they import one another one way only, top to bottom):

* ``threads``: ``limit_threads``;
* ``batches``: ``fixed_batches`` and the ``Batches`` / ``LossFn`` types;
* ``directions``: ``landscape_parameters``, ``random_direction``;
* ``restore``: exact restoration of weights, buffers and train/eval flags;
* ``surface``: ``loss_at``, ``loss_surface_1d``, ``loss_surface_2d``, ``compare_landscapes``;
* ``measures``: ``accuracy`` (a "loss" for the landscape functions), ``mean_loss`` (differentiable);
* ``hessian``: ``hessian_vector_product``, ``top_hessian_eigenvalue``;
* ``reference``: ``full_hessian``, ``finite_difference_hvp`` (dense and finite-difference checks, tiny networks);
* ``rescale``: ``rescale_convs`` (a conv-BN rescaling that keeps the function and changes the Hessian);
* ``tables``: ``sharpness_table``, ``grid_summary``, ``minimum_profile``;
* ``plots``: the static figures and ``landscape_figure``;
* ``explorer``: ``landscape_explorer``.
"""
from __future__ import annotations

from .batches import Batches, LossFn, fixed_batches
from .directions import _two_directions, landscape_parameters, random_direction
from .explorer import landscape_explorer
from .hessian import hessian_vector_product, top_hessian_eigenvalue
from .measures import accuracy, mean_loss
from .plots import (
    VIEWS,
    landscape_figure,
    plot_contour,
    plot_hessian_convergence,
    plot_landscape_grid,
    plot_surface_1d,
    plot_surface_3d,
)
from .surface import compare_landscapes, loss_at, loss_surface_1d, loss_surface_2d
from .reference import finite_difference_hvp, full_hessian
from .rescale import rescale_convs
from .tables import grid_summary, minimum_profile, sharpness_table
from .threads import limit_threads

__all__ = [
    "fixed_batches",
    "landscape_parameters",
    "random_direction",
    "loss_at",
    "loss_surface_1d",
    "loss_surface_2d",
    "hessian_vector_product",
    "top_hessian_eigenvalue",
    "sharpness_table",
    "grid_summary",
    "plot_surface_1d",
    "plot_contour",
    "plot_surface_3d",
    "plot_hessian_convergence",
    "compare_landscapes",
    "plot_landscape_grid",
    "landscape_figure",
    "landscape_explorer",
    "VIEWS",
    "limit_threads",
    "accuracy",
    "mean_loss",
    "full_hessian",
    "finite_difference_hvp",
    "rescale_convs",
    "minimum_profile",
]
