"""Surrogate spike functions: the Heaviside step forward, a smooth derivative backward.

A spiking neuron fires ``s = H(u - v_th)``. The Heaviside step ``H`` has derivative zero almost
everywhere (a Dirac delta at 0), so backpropagation through it gives no learning signal. A *surrogate
gradient* keeps ``H`` in the forward pass and replaces its derivative by a bump ``g(x)`` in the backward
pass (Neftci, Mostafa & Zenke 2019; Zenke & Vogels 2021).

Every member of this family is a probability density: ``integral g(x) dx = 1``, the same total mass as the
delta it stands in for. Each has one ``width`` parameter that means the same thing for every shape:

    width = the full width at half maximum (FWHM) of g.

So ``Triangle(width=1)`` and ``Gaussian(width=1)`` are equally "sharp" in the sense that their derivative
is above half its peak on an interval of length 1. The mapping to each shape's usual parameter:

============  =====================================================  =========================================
name          g(x)                                                   usual parameter from ``width = w``
============  =====================================================  =========================================
rectangle     1/a on ``|x|`` < a/2, else 0                           a = w            (support = w)
triangle      (1/gamma^2) max(0, gamma - ``|x|``)                    gamma = w        (support = 2w; TET's gamma)
sigmoid       k sig(kx) (1 - sig(kx))  (derivative of sig(kx))        k = 4 asinh(1) / w = 3.5255 / w
atan          (a/2) / (1 + (pi a x / 2)^2)  (snnTorch's ``atan``)    a = 4 / (pi w)   (snnTorch's ``alpha``)
gaussian      exp(-x^2 / 2 sigma^2) / (sqrt(2 pi) sigma)             sigma = w / (2 sqrt(2 ln 2)) = w / 2.3548
============  =====================================================  =========================================

A narrow width is closer to the true delta; a wide width lets gradient flow for membrane potentials far
from threshold (a larger *effective domain*). That trade-off is what the chi indicator measures (notebook 02).

Each object is callable on ``x = u - v_th`` and works as snnTorch's ``spike_grad=`` argument::

    sg = snnlab.surrogate.Triangle(width=1.0)
    spk = sg(mem - 1.0)          # forward: (mem - 1 >= 0).float(); backward: sg.grad(mem - 1)
    lif = snntorch.Leaky(beta=0.9, spike_grad=sg)

``width`` may be changed between steps (the chi controller does); the value in force at the forward pass
is the one used in the matching backward pass. Convention: ``H(0) = 1`` (a neuron that reaches the
threshold exactly fires), as SpikingJelly; snnTorch uses ``H(0) = 0``; the two differ only on ties.
``sg(x, strict=True)`` (and ``heaviside(x, strict=True)``) fires on ``x > 0``, i.e. ``H(0) = 0``: the firing rule of
TET's official ``ZIF`` (``(input > 0).float()``), ``snnlab.neurons.LIF(fire=">")``; the backward is the same.
"""
from __future__ import annotations

import math

import torch

__all__ = [
    "Surrogate",
    "Rectangle",
    "Triangle",
    "Sigmoid",
    "ATan",
    "Gaussian",
    "SmoothSigmoid",
    "SURROGATES",
    "FAMILY",
    "get",
    "heaviside",
]


def heaviside(x: torch.Tensor, strict: bool = False) -> torch.Tensor:
    """The spike nonlinearity: 1 where ``x >= 0`` (``x > 0`` with ``strict=True``), else 0, in the dtype of ``x``."""
    return (x > 0 if strict else x >= 0).to(x.dtype)


class _SpikeFunction(torch.autograd.Function):
    """Heaviside forward (``strict``: ``x > 0`` instead of ``x >= 0``), ``surrogate.grad(x, width)`` backward.
    ``width`` is frozen at forward time."""

    @staticmethod
    def forward(ctx, x, surrogate, width, strict=False):
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        ctx.width = width
        return heaviside(x, strict)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        g = ctx.surrogate.grad(x, ctx.width).to(grad_out.dtype)
        if torch.is_grad_enabled():  # create_graph=True (Hessian-vector products): stay differentiable
            return grad_out * g, None, None, None
        return g.mul_(grad_out), None, None, None  # g is a fresh tensor: scale it in place


def _check_width(width) -> float:
    try:
        w = float(width)
    except (TypeError, ValueError):
        raise ValueError(f"surrogate width must be a positive number, got {width!r}") from None
    if not math.isfinite(w) or w <= 0:
        raise ValueError(f"surrogate width must be a positive finite number, got {width!r}")
    return w


class Surrogate:
    """Base class. Subclasses define ``name``, ``compact`` (finite support?) and ``_grad(x, w)``.

    Args:
        width: full width at half maximum of the surrogate derivative, in units of membrane potential
            (the same meaning for every shape; see the module docstring). Must be > 0.
    """

    name: str = "surrogate"
    compact: bool = False  # True if g(x) is exactly zero outside a finite interval
    default_width: float = 1.0

    def __init__(self, width: float | None = None):
        self.width = self.default_width if width is None else width

    # width is a property so that every assignment is validated (the chi controller writes it).
    @property
    def width(self) -> float:
        return self._width

    @width.setter
    def width(self, value) -> None:
        self._width = _check_width(value)

    def __call__(self, x: torch.Tensor, strict: bool = False) -> torch.Tensor:
        """Spikes ``H(x)`` for ``x = u - v_th`` (``strict=True``: ``x > 0``, no spike at the threshold itself); the
        backward pass uses ``self.grad(x)``."""
        return _SpikeFunction.apply(x, self, self._width, bool(strict))

    def grad(self, x: torch.Tensor, width: float | None = None) -> torch.Tensor:
        """The surrogate derivative ``g(x)`` evaluated analytically (at ``width``, default ``self.width``)."""
        w = self._width if width is None else _check_width(width)
        if not torch.is_tensor(x):
            x = torch.as_tensor(x, dtype=torch.get_default_dtype())
        return self._grad(x, w)

    def support(self, width: float | None = None) -> float:
        """Half-length ``r`` of the interval ``|x| < r`` where ``g`` is non-zero (``inf`` if not compact)."""
        return math.inf

    def effective_domain(self, width: float | None = None, rel_tol: float = 1e-3) -> float:
        """Half-length ``r`` of the region where ``g(x) > rel_tol * g(0)``: where gradients effectively flow.

        For compact shapes this is the support; for infinite-support shapes it depends on ``rel_tol``.
        """
        w = self._width if width is None else _check_width(width)
        if self.compact:
            return self.support(w)
        # g is even and decreasing in |x|: bisect for g(r) = rel_tol * g(0).
        g0 = float(self._grad(torch.zeros((), dtype=torch.float64), w))
        lo, hi = 0.0, w
        while float(self._grad(torch.tensor(hi, dtype=torch.float64), w)) > rel_tol * g0:
            hi *= 2
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            if float(self._grad(torch.tensor(mid, dtype=torch.float64), w)) > rel_tol * g0:
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi)

    def _grad(self, x: torch.Tensor, w: float) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(width={self._width:g})"

    # Pickling/deepcopy (checkpoints, copy.deepcopy(model)) keep the width.
    def __getstate__(self):
        return {"_width": self._width}

    def __setstate__(self, state):
        self._width = state["_width"]


class Rectangle(Surrogate):
    """``g(x) = 1/w`` for ``|x| < w/2``, else 0 (the straight-through window). Support: ``|x| < w/2``."""

    name = "rectangle"
    compact = True

    def _grad(self, x, w):
        return (x.abs() < w / 2).to(x.dtype) * (1.0 / w)

    def support(self, width=None):
        return (self._width if width is None else _check_width(width)) / 2


class Triangle(Surrogate):
    """``g(x) = max(0, gamma - |x|) / gamma^2`` with ``gamma = w`` (TET's surrogate; TET uses gamma = 1)."""

    name = "triangle"
    compact = True

    def _grad(self, x, w):
        if torch.is_grad_enabled() and x.requires_grad:  # differentiable path, for second derivatives
            return (w - x.abs()).clamp(min=0) / (w * w)
        # (w - |x|)+ / w^2 in place on one fresh tensor: this runs once per step in every backward
        return x.abs().neg_().add_(w).clamp_(min=0).mul_(1.0 / (w * w))

    def support(self, width=None):
        return self._width if width is None else _check_width(width)


_SIGMOID_C = 4 * math.asinh(1.0)  # FWHM of k*sig'(kx) is 4 asinh(1) / k


class Sigmoid(Surrogate):
    """``g(x) = k sig(kx)(1 - sig(kx))``, the derivative of ``sig(kx)``, with ``k = 4 asinh(1) / w``."""

    name = "sigmoid"

    @staticmethod
    def k_from_width(w: float) -> float:
        return _SIGMOID_C / w

    @staticmethod
    def width_from_k(k: float) -> float:
        return _SIGMOID_C / k

    def _grad(self, x, w):
        k = _SIGMOID_C / w
        # sig(kx) * sig(-kx) == sig(kx)(1 - sig(kx)) without the cancellation in 1 - sig(kx) for x >> 0
        return k * torch.sigmoid(k * x) * torch.sigmoid(-k * x)


class ATan(Surrogate):
    """``g(x) = (a/2) / (1 + (pi a x / 2)^2)`` with ``a = 4 / (pi w)``: snnTorch's ``surrogate.atan(alpha=a)``."""

    name = "atan"

    @staticmethod
    def alpha_from_width(w: float) -> float:
        return 4.0 / (math.pi * w)

    @staticmethod
    def width_from_alpha(alpha: float) -> float:
        return 4.0 / (math.pi * alpha)

    def _grad(self, x, w):
        a = 4.0 / (math.pi * w)
        return (a / 2) / (1 + (math.pi * a * x / 2) ** 2)


_FWHM_PER_SIGMA = 2 * math.sqrt(2 * math.log(2))


class Gaussian(Surrogate):
    """``g(x) = N(x; 0, sigma^2)`` with ``sigma = w / (2 sqrt(2 ln 2))``."""

    name = "gaussian"

    def _grad(self, x, w):
        sigma = w / _FWHM_PER_SIGMA
        return torch.exp(-0.5 * (x / sigma) ** 2) / (math.sqrt(2 * math.pi) * sigma)


class SmoothSigmoid(Sigmoid):
    """Not a surrogate: the spike itself is replaced by ``sig(k x)`` in the forward pass, with its exact
    derivative backward (TET's Table 2 ablation, k = 1, 10, 20; ``k = 4 asinh(1) / width``).

    With a smooth forward there is no mismatch between the function and its gradient; TET reports that SDT
    and TET then perform about equally, so TET's gain comes from the surrogate's mismatch. The "spikes" are
    real numbers in (0, 1) and the hard reset ``u (1 - s)`` becomes partial.
    """

    name = "smooth-sigmoid"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.k_from_width(self._width) * x)


SURROGATES: dict[str, type[Surrogate]] = {
    cls.name: cls for cls in (Rectangle, Triangle, Sigmoid, ATan, Gaussian, SmoothSigmoid)
}
FAMILY = ("rectangle", "triangle", "sigmoid", "atan", "gaussian")  #: the true surrogates (Heaviside forward)


def get(name: str | Surrogate, width: float | None = None) -> Surrogate:
    """Build a surrogate by name (``"rectangle"``, ``"triangle"``, ``"sigmoid"``, ``"atan"``, ``"gaussian"``).

    A ``Surrogate`` instance is returned as is (its width is set if ``width`` is given).
    """
    if isinstance(name, Surrogate):
        if width is not None:
            name.width = width
        return name
    key = str(name).lower()
    if key not in SURROGATES:
        raise ValueError(
            f"unknown surrogate {name!r}; available: {', '.join(repr(k) for k in SURROGATES)}"
        )
    return SURROGATES[key](width)
