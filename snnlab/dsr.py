"""DSR: Differentiation on Spike Representation (Meng et al., CVPR 2022; arXiv:2205.00459).

Sources: the official code (github.com/qymeng94/DSR, ``cifar/modules/neuron.py``), SpikingJelly 2.0's
``activation_based/neuron/dsr.py`` (which mirrors it), and ``docs/papers.md#dsr`` (Eq. 14 for the paper's
threshold gradient). Section and equation numbers other than Eq. 14 were not re-checked against the paper.

No back-propagation through time and no surrogate: a spiking layer is simulated forward without an autograd
graph, and its gradient is taken through a differentiable *mapping* from the layer's input representation
(the average input) to its output representation (the firing rate). Multi-step modules on time-first tensors
``[T, B, ...] -> [T, B, ...]``, stateless between calls, like ``snnlab.neurons``.

IF neuron (the paper's IF derivation; official code ``cifar/modules/neuron.py::IFFunction``)::

    u[t] = u[t-1] + x[t]                          integrate, u[0] = 0
    s[t] = v_th * H(u[t] - alpha * v_th)          fire at alpha * v_th; the spike carries amplitude v_th
    u[t] <- u[t] - s[t]                           reset by subtraction of v_th

    r = (1/T) sum_t s[t]  ~=  clamp(xbar, 0, v_th),    xbar = (1/T) sum_t x[t]      (the mapping)

The subtractive reset keeps every spike's charge: ``sum_t s[t] = sum_t x[t] - u[T]`` with ``u[T]`` in
``[(alpha-1) v_th, alpha v_th)`` (for inputs in ``[0, v_th]``), so ``|r - xbar| <= max(alpha, 1-alpha) v_th / T``:
alpha = 1 floors the spike count, alpha = 0.5 rounds it and halves the representation error (the paper's
representation-error analysis and its new hyperparameter).

LIF neuron (the paper's LIF derivation; official code ``LIFFunction``), discretised with step ``dt`` and time constant
``tau``, ``beta = exp(-dt / tau)``::

    u[t] = beta * u[t-1] + (1 - beta) * x[t]
    s[t] = v_th * H(u[t] - alpha * v_th),   u[t] <- u[t] - s[t]
    output o[t] = s[t] / dt                       (a spike of amplitude v_th / dt)

    weighted rate  r = sum_i w_i o_i / sum_i w_i,   w_i = beta^(T-i), i = 1..T   (recent steps weigh more)
    r ~= clamp(xhat / tau, 0, v_th / dt),           xhat = sum_i w_i x_i / sum_i w_i

(Exactly, ``r = (1-beta)/dt * xhat - u[T] / (dt sum_i w_i)``: the slope is ``(1-beta)/dt ~= 1/tau`` for
``dt << tau``, and the quantisation error no longer shrinks once T exceeds the window ``~tau/dt`` steps.)

Leak arithmetic (``leak_arith``, ``--dsr-leak-arith``): the official code keeps ``tau`` as a float32 tensor, so
``beta = torch.exp(-delta_t / tau)`` and ``1 - beta`` are float32 operations: ``1 - beta = 0.04877054691`` at
dt = 0.05, tau = 1, where double precision (SpikingJelly 2.0, and snnlab before) gives 0.04877057550 (0.0487705767
once a float32 multiply rounds it). The backward's rate weights ``w_i`` are the code's
``math.exp(-1 / tau * (delta_t * T - i * delta_t))`` with that float32 tau too. The one-ulp difference moves a
membrane across ``alpha * v_th`` now and then, and a network amplifies it: in a randomly initialised
PreAct-ResNet-18 (training mode, T = 20, 4 uniform random 32x32 images) the first two neuron layers agree, the
next two differ in 2 and 40 of 5.2 M neuron-steps, and 412,816 of the 44.6 M neuron-steps differ in all.
``leak_arith="code"`` (default) runs the code's operations, in its order, bit for bit for float32 inputs
(forward: ``beta * u + (1 - beta) * x[t]``, ``alpha * v_th``, ``s / dt``; backward: ``weight_rate_spikes``,
``g / tau`` then ``/ T``, the mask ``xhat < v_th / dt * tau``, ``sum * dt``; tests/test_dsr.py replays
``LIFFunction``); ``"double"`` computes ``beta`` and the weights in double precision and matches SpikingJelly's
``DSRLIFNode`` bit for bit. The output layer's rate (``DSRLIF.rate``) is the code models' ``weight_rate_spikes``
with the settings' Python-float tau, in both modes.

Backward (both neurons): ``grad_output`` is ``dL/ds[t]`` (IF) or ``dL/do[t]`` (LIF), shape ``[T, B, ...]``.
As in the official code (and SpikingJelly 2.0's ``DSRIFNode``/``DSRLIFNode``), the output gradient is
collapsed into one gradient of the representation and spread evenly over the steps:

* IF: ``g = T * mean_t dL/ds[t] = sum_t dL/ds[t]`` (= dL/dr when L depends on the spikes through r; computed as
  the code's ``mean * T``); ``dL/dx[t] = (1/T) * g * 1[0 <= xbar <= v_th]`` for every t (dr/dxbar = 1 inside the
  clamp, dxbar/dx[t] = 1/T); ``dL/dv_th = v_th_grad_scale * sum_(B,...) g * 1[xbar > v_th]`` (dr/dv_th = 1 where
  the clamp saturates). No extra factor of v_th: the spikes already carry the amplitude v_th, so r is in units of
  the input. ``v_th_grad_scale`` (``--dsr-v-th-grad-scale``) is 1 in the CIFAR code (``cifar/modules/neuron.py``)
  and 0.001 in the ImageNet code (``imagenet/neuron.py::IFFunction``: ``torch.sum(Vth_grad) * 0.001``; its
  ``LIFFunction`` is the CIFAR one, unscaled).
* LIF: ``g = T * sum_i w_i dL/do_i / sum_i w_i`` (the code's ``weight_rate_spikes(grad_output) * T``);
  ``dL/dx[t] = (1/T) * (g / tau) * 1[0 < xhat < tau * v_th / dt]`` for every t (the code spreads the gradient
  uniformly over t, not by ``w_t``); threshold gradient, where the clamp saturates (``xhat > tau * v_th / dt``):

  - ``threshold_grad="code"`` (default): ``dL/dv_th = dt * sum g * 1[...]``, the official code's choice, made
    on purpose: the exact gradient drives the thresholds to 0 (github.com/qymeng94/DSR issue #2).
  - ``threshold_grad="paper"``: ``dL/dv_th = (1/dt) * sum g * 1[...]``, the paper's Eq. 14, the exact
    derivative of ``clamp(xhat / tau, 0, v_th / dt)`` with respect to v_th.

  then multiplied by ``v_th_grad_scale`` (default 1, the official LIF's in both its CIFAR and ImageNet code).

  For a loss that depends on the outputs only through r, the exact chain rule would give
  ``dL/dx[t] = dL/dr * w_t / (tau * sum_i w_i)``; the code's uniform spreading differs by the factor
  ``T * sum_i w_i^2 / (sum_i w_i)^2`` in total (1.08 at T = 20, dt = 0.05, tau = 1) and in its distribution
  over t. We follow the code (and SpikingJelly), the version that produced the paper's numbers.

  The official code has two versions of the saturation mask: ``xhat > v_th / dt`` in one commit,
  ``xhat > v_th / dt * tau`` in another (and in SpikingJelly); we use the latter, consistent with the mapping.
  Both agree at DSR's tau = 1.

Trainable threshold (official code): one scalar ``nn.Parameter`` per layer, clamped in place (under no_grad)
to ``v_th_lower_bound`` before every forward, so it is never below the bound when used.

Both neurons derive from ``snnlab.neuron_base.SpikingNeuron`` and have no surrogate (``surrogate = None``: their
width is not adaptable and the chi tools skip them); ``dsr_neurons(model)`` lists a model's DSR neurons.

Memory: the backward needs only the two masks above (booleans of shape ``[B, ...]``, T times smaller than
the input) -- no per-step state is kept, so the autograd graph does not grow with T through the neurons.
"""
from __future__ import annotations

import functools
import math

import torch
from torch import nn

from .neuron_base import SpikingNeuron, check_number, check_positive, check_sequence, spiking_neurons

__all__ = ["DSRIF", "DSRLIF", "DSRNeuron", "dsr_neurons", "firing_rate", "rate_weights", "code_rate_weights",
           "leak_factors", "THRESHOLD_GRADS", "LEAK_ARITHS"]

THRESHOLD_GRADS = ("code", "paper")
LEAK_ARITHS = ("code", "double")  #: DSRLIF's leak arithmetic: the official code's float32 one, or double precision


# --------------------------------------------------------------------------------------------- checks
# (the number and sequence checks are snnlab.neuron_base's, shared with snnlab.neurons and snnlab.fused)
def _check_alpha(alpha) -> float:
    alpha = check_number("alpha", alpha, "in (0, 1]")
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha (fire at alpha * v_th) must be in (0, 1], got {alpha!r}")
    return alpha


def _check_v_th(v_th, bound) -> tuple[float, float]:
    bound = check_positive("v_th_lower_bound", bound)
    v_th = check_number("v_th", v_th, f">= v_th_lower_bound = {bound:g}")
    if not v_th > 0:
        raise ValueError(f"v_th must be > 0, got {v_th!r}")
    if v_th < bound:
        raise ValueError(f"v_th must be >= v_th_lower_bound = {bound:g}, got v_th={v_th!r}")
    return v_th, bound


def _check_seq(x, what: str = "input") -> None:
    check_sequence(x, what, floating=True)


def _check_grad_scale(scale) -> float:
    return check_positive("v_th_grad_scale (threshold-gradient scale)", scale)


# --------------------------------------------------------------------------------------------- rates
def _weighted_mean(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``sum_i w_i x_i / sum_i w_i`` over dim 0 (an explicit sum, not a matmul: autocast leaves it alone)."""
    return (w.view(-1, *([1] * (x.dim() - 1))) * x).sum(0) / w.sum()


def rate_weights(T: int, beta: float, dtype=torch.float32, device=None) -> torch.Tensor:
    """The weights ``w_i = beta^(T-i)``, i = 1..T, of the weighted firing rate (the last step weighs 1)."""
    return torch.tensor([beta ** (T - i) for i in range(1, T + 1)], dtype=dtype, device=device)


def firing_rate(spikes: torch.Tensor, weighted: bool = False, beta: float | None = None,
                dt: float | None = None, tau: float = 1.0) -> torch.Tensor:
    """Firing rate of a spike (or any) sequence, ``[T, B, ...] -> [B, ...]``.

    * ``weighted=False``: the plain rate ``(1/T) sum_t s[t]`` (DSR's IF representation).
    * ``weighted=True``: ``sum_i w_i s_i / sum_i w_i`` with ``w_i = beta^(T-i)``, i = 1..T (DSR's LIF
      representation; the code's ``weight_rate_spikes``). Give ``beta`` directly, or ``dt`` (and
      ``tau``, default 1.0 as in DSR) for ``beta = exp(-dt / tau)``.

    The rate is in the units of ``spikes``: a DSR layer's outputs carry amplitude ``v_th`` (IF) or
    ``v_th / dt`` (LIF), so its rate is comparable with its input.
    """
    _check_seq(spikes, "spikes")
    if not weighted:
        if beta is not None or dt is not None:
            raise ValueError(f"beta/dt are only used with weighted=True, got beta={beta!r}, dt={dt!r}")
        return spikes.mean(0)
    if (beta is None) == (dt is None):
        raise ValueError(f"the weighted rate needs exactly one of beta or dt, got beta={beta!r}, dt={dt!r}")
    if beta is None:
        beta = math.exp(-check_positive("dt", dt) / check_positive("tau", tau))
    beta = check_number("beta", beta, "in (0, 1]")
    if not 0.0 < beta <= 1.0:
        raise ValueError(f"beta must be in (0, 1], got {beta!r}")
    w = rate_weights(spikes.shape[0], beta, spikes.dtype, spikes.device)
    return _weighted_mean(w, spikes)


# --------------------------------------------------------------------------------------------- autograd
def _spread(g: torch.Tensor, T: int) -> torch.Tensor:
    """``[B, ...] -> [T, B, ...]``: the same gradient at every step."""
    return g.unsqueeze(0).expand(T, *g.shape).contiguous()


@functools.lru_cache(maxsize=256)
def leak_factors(tau: float, dt: float, leak_arith: str = "code") -> tuple[float, float]:
    """``(beta, 1 - beta)``, ``beta = exp(-dt / tau)``, as DSR's LIF forward multiplies by them.

    * ``"code"``: the official code's float32 arithmetic (``cifar/modules/neuron.py::LIFFunction.forward``:
      ``beta = torch.exp(-delta_t / tau)`` with ``tau = torch.tensor(tau)``, a float32 tensor, so
      ``-delta_t / tau`` is ``tau.reciprocal() * -delta_t``, the ``exp`` and ``1 - beta`` are float32 ops):
      ``(0.951229453..., 0.04877054691...)`` at ``dt = 0.05, tau = 1``.
    * ``"double"``: Python floats, ``math.exp(-dt / tau)`` and ``1 - beta`` in double precision (SpikingJelly 2.0's
      ``DSRLIFNode``): ``(0.951229424..., 0.04877057550...)``, which a float32 multiply rounds to 0.0487705767.

    Both are returned as Python floats; the ``"code"`` ones are exactly float32 values, so multiplying a float32
    tensor by them is the code's multiplication by the float32 0-d tensor.
    """
    if leak_arith == "code":
        tau_t = torch.tensor(tau, dtype=torch.float32)
        beta = torch.exp(-dt / tau_t)  # the code's expression, with its float32 tau
        return float(beta), float(1 - beta)
    if leak_arith == "double":
        beta = math.exp(-dt / tau)
        return beta, 1 - beta
    raise ValueError(f"leak_arith must be one of {LEAK_ARITHS}, got {leak_arith!r}")


@functools.lru_cache(maxsize=256)
def code_rate_weights(T: int, tau: float, dt: float, leak_arith: str = "double") -> tuple[float, ...]:
    """The weights ``w_i = exp(-(dt T - i dt) / tau)``, i = 1..T, written as the official code's
    ``weight_rate_spikes`` writes them: ``math.exp(-1 / tau * (delta_t * timesteps - ii * delta_t))``, then a float32
    tensor (``torch.tensor`` of the list). Mathematically ``beta^(T-i)``; the rounding differs.

    ``leak_arith="code"``: ``tau`` is the neuron's float32 tensor, as in the code's backward (``LIFFunction`` passes
    its ``ctx.tau``), so the exponent is a float32 product; ``"double"``: ``tau`` is a Python float, as in
    SpikingJelly's ``DSRLIFNode.weight_rate_spikes`` and in the code's models' output rate (``preresnet.py`` calls
    ``weight_rate_spikes(out, ..., self.tau, ...)`` with the float from its settings).
    """
    if leak_arith not in LEAK_ARITHS:
        raise ValueError(f"leak_arith must be one of {LEAK_ARITHS}, got {leak_arith!r}")
    tau_ = torch.tensor(tau, dtype=torch.float32) if leak_arith == "code" else tau
    return tuple(float(torch.tensor(math.exp(-1 / tau_ * (dt * T - ii * dt)), dtype=torch.float32))
                 for ii in range(1, T + 1))


def _code_weights(T, tau, dt, leak_arith, x: torch.Tensor) -> torch.Tensor:
    """``code_rate_weights`` as a tensor on ``x``'s device: float32 as the code's, promoted with ``x``'s dtype."""
    w = torch.tensor(code_rate_weights(T, tau, dt, leak_arith), dtype=torch.float32, device=x.device)
    return w.to(torch.promote_types(torch.float32, x.dtype))


class DSRIFFunction(torch.autograd.Function):
    """``(x [T, B, ...], v_th 0-d, alpha float, v_th_grad_scale float) -> spikes [T, B, ...]`` with DSR's IF backward
    (see module doc), in the official code's operations (``cifar/modules/neuron.py::IFFunction``)."""

    @staticmethod
    def forward(ctx, x, v_th, alpha, v_th_grad_scale=1.0):
        vth = v_th.detach()
        fire_at = alpha * vth  # in the threshold's dtype, as the code's alpha * Vth
        u = torch.zeros_like(x[0])
        out = torch.empty_like(x)
        for t in range(x.shape[0]):
            u = u + x[t]
            s = (u >= fire_at).to(x.dtype) * vth
            u = u - s
            out[t] = s
        xbar = x.mean(0)  # the code's rate_spikes(input)
        keep = ~((xbar < 0) | (xbar > vth))  # the code zeroes the input gradient where xbar < 0 or xbar > v_th
        above = ~(xbar <= vth)  # ... and the threshold's where xbar <= v_th
        ctx.save_for_backward(keep, above)
        ctx.T, ctx.v_th_dtype, ctx.scale = x.shape[0], v_th.dtype, v_th_grad_scale
        return out

    @staticmethod
    def backward(ctx, grad_out):
        keep, above = ctx.saved_tensors
        T = ctx.T
        g = grad_out.mean(0) * T  # the code's rate_spikes(grad_output) * timesteps
        gx = _spread(torch.where(keep, g, 0) / T, T) if ctx.needs_input_grad[0] else None
        gv = None
        if ctx.needs_input_grad[1]:  # CIFAR code: torch.sum(Vth_grad); ImageNet code: torch.sum(Vth_grad) * 0.001
            gv = (torch.where(above, g, 0).sum() * ctx.scale).to(ctx.v_th_dtype)
        return gx, gv, None, None


class DSRLIFFunction(torch.autograd.Function):
    """``(x, v_th, alpha, tau, dt, threshold_grad, leak_arith, v_th_grad_scale) -> s/dt`` with DSR's LIF backward (see
    module doc), in the official code's operations (``cifar/modules/neuron.py::LIFFunction`` and ``lif_grad``)."""

    @staticmethod
    def forward(ctx, x, v_th, alpha, tau, dt, threshold_grad, leak_arith="code", v_th_grad_scale=1.0):
        T = x.shape[0]
        beta, one_minus_beta = leak_factors(tau, dt, leak_arith)
        vth = v_th.detach()
        fire_at = alpha * vth
        u = torch.zeros_like(x[0])
        out = torch.empty_like(x)
        for t in range(T):
            u = beta * u + one_minus_beta * x[t]
            s = (u >= fire_at).to(x.dtype) * vth
            u = u - s
            out[t] = s / dt
        w = _code_weights(T, tau, dt, leak_arith, x)
        xhat = _weighted_mean(w, x)  # the code's weight_rate_spikes(input)
        sat = vth / dt * tau  # the code's Vth / delta_t * tau: xhat / tau saturates at v_th / dt
        inside = (xhat > 0) & (xhat < sat)  # strict on both sides, as the code
        above = ~(xhat <= sat)  # the code zeroes the threshold's gradient where xhat <= sat
        ctx.save_for_backward(inside, above, w)
        ctx.T, ctx.tau, ctx.dt, ctx.threshold_grad, ctx.v_th_dtype = T, tau, dt, threshold_grad, v_th.dtype
        ctx.scale = v_th_grad_scale
        return out

    @staticmethod
    def backward(ctx, grad_out):
        inside, above, w = ctx.saved_tensors
        T, tau, dt = ctx.T, ctx.tau, ctx.dt
        g = _weighted_mean(w, grad_out) * T  # the code's weight_rate_spikes(grad_output) * timesteps
        gx = None
        if ctx.needs_input_grad[0]:  # lif_grad: input_grad[indexes] = g[indexes] / tau; then / timesteps
            gx = _spread(torch.where(inside, g / tau, 0) / T, T).to(grad_out.dtype)
        gv = None
        if ctx.needs_input_grad[1]:
            s = torch.where(above, g, 0).sum()
            gv = ((s * dt if ctx.threshold_grad == "code" else s / dt) * ctx.scale).to(ctx.v_th_dtype)
        return gx, gv, None, None, None, None, None, None


# --------------------------------------------------------------------------------------------- modules
class DSRNeuron(SpikingNeuron):
    """Base of DSR's neurons: a ``SpikingNeuron`` without surrogate (``surrogate = None``, so ``width_adaptable``
    is False: the chi tools leave it alone), with a scalar threshold ``v_th`` (an ``nn.Parameter`` if trainable,
    else a buffer) clamped to ``v_th_lower_bound`` before every forward; subclasses add ``rate`` (the representation)."""

    def _init_threshold(self, v_th: float, bound: float, trainable: bool) -> None:
        self.v_th_lower_bound = bound
        self.trainable = bool(trainable)
        t = torch.tensor(float(v_th))
        if self.trainable:
            self.v_th = nn.Parameter(t)
        else:
            self.register_buffer("v_th", t)

    def clamp_threshold(self) -> None:
        """Raise the threshold to its lower bound if it went below (in place, no autograd), as DSR's code."""
        with torch.no_grad():
            self.v_th.clamp_(min=self.v_th_lower_bound)

    def _prepare(self, x):
        _check_seq(x)
        self.clamp_threshold()


_DSRNeuron = DSRNeuron  # the former private name


def dsr_neurons(model: nn.Module) -> dict[str, nn.Module]:
    """``{module name: module}`` of every DSR neuron (``DSRIF``/``DSRLIF``, any ``DSRNeuron``) in ``model``, in
    registration order: ``snnlab.neuron_base.spiking_neurons`` restricted to DSR's neurons."""
    return {name: m for name, m in spiking_neurons(model).items() if isinstance(m, DSRNeuron)}


class DSRIF(DSRNeuron):
    """DSR integrate-and-fire layer ``[T, B, ...] -> [T, B, ...]`` (spikes of amplitude ``v_th``).

    Forward: ``u += x[t]; s[t] = v_th * H(u - alpha * v_th); u -= s[t]`` (the paper's IF model; the code's
    ``IFFunction``). Backward through ``r = mean_t s ~= clamp(mean_t x, 0, v_th)``: see the module docstring.

    Args (defaults: the official code's IF settings for CIFAR, docs/papers.md#dsr-defaults):
        v_th: initial threshold (default 6.0), ``>= v_th_lower_bound``.
        alpha: fire at ``alpha * v_th``, subtract ``v_th``; in (0, 1] (default 0.5: rounding).
        v_th_lower_bound: the threshold is clamped to at least this before every forward (default 0.01).

        trainable: if True (default) ``v_th`` is a scalar ``nn.Parameter`` with DSR's threshold gradient;
            else a buffer.
        v_th_grad_scale: factor > 0 on the threshold's gradient (default 1: the CIFAR code,
            ``cifar/modules/neuron.py``; the ImageNet code, ``imagenet/neuron.py::IFFunction``, multiplies it by 0.001).
    """

    kind = "dsr-if"

    def __init__(self, v_th: float = 6.0, alpha: float = 0.5, v_th_lower_bound: float = 0.01, trainable: bool = True,
                 v_th_grad_scale: float = 1.0):
        super().__init__()
        v_th, bound = _check_v_th(v_th, v_th_lower_bound)
        self.alpha = _check_alpha(alpha)
        self.v_th_grad_scale = _check_grad_scale(v_th_grad_scale)
        self._init_threshold(v_th, bound, trainable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._prepare(x)
        return DSRIFFunction.apply(x, self.v_th, self.alpha, float(getattr(self, "v_th_grad_scale", 1.0)))

    def rate(self, out: torch.Tensor) -> torch.Tensor:
        """This layer's output representation: the plain rate ``mean_t s[t]``, ``[T, B, ...] -> [B, ...]``."""
        return firing_rate(out)

    def extra_repr(self) -> str:
        return (f"v_th={float(self.v_th.detach()):g}, alpha={self.alpha:g}, "
                f"v_th_lower_bound={self.v_th_lower_bound:g}, trainable={self.trainable}"
                + _scale_repr(self))


def _scale_repr(n) -> str:
    scale = getattr(n, "v_th_grad_scale", 1.0)
    return "" if scale == 1.0 else f", v_th_grad_scale={scale:g}"


class DSRLIF(DSRNeuron):
    """DSR leaky integrate-and-fire layer ``[T, B, ...] -> [T, B, ...]``, outputs ``s[t] / dt``.

    Forward: ``u = beta*u + (1-beta)*x[t]`` with ``beta = exp(-dt/tau)``; ``s = v_th * H(u - alpha*v_th)``;
    ``u -= s``; output ``s / dt`` (the paper's LIF model; the code's ``LIFFunction``). Backward through the weighted
    rate mapping ``r ~= clamp(xhat / tau, 0, v_th / dt)``: see the module docstring.

    Args (defaults: the official code's LIF settings for CIFAR, docs/papers.md#dsr-defaults):
        v_th: initial threshold (default 0.3), ``>= v_th_lower_bound``.
        tau: membrane time constant > 0 (default 1.0). NB: a time constant, not snnlab.neurons' decay factor.
        dt: discretisation step > 0 (default 0.05).
        alpha: fire at ``alpha * v_th``; in (0, 1] (default 0.3).
        v_th_lower_bound: clamp bound for the threshold (default 5e-4).

        threshold_grad: ``"code"`` (default; ``dL/dv_th`` multiplied by dt, the official code) or ``"paper"``
            (divided by dt, Eq. 14, the exact gradient of the mapping).

        trainable: if True (default) ``v_th`` is a scalar ``nn.Parameter``; else a buffer.

        leak_arith: ``"code"`` (default: the official code's float32 ``beta``, ``1 - beta`` and rate weights,
            bit for bit) or ``"double"`` (double precision, as SpikingJelly 2.0's ``DSRLIFNode``); see
            ``leak_factors`` and ``code_rate_weights``.
        v_th_grad_scale: factor > 0 on the threshold's gradient, after ``threshold_grad``'s dt (default 1: the
            official code's LIF, in both its CIFAR and its ImageNet version).
    """

    kind = "dsr-lif"

    def __init__(
        self,
        v_th: float = 0.3,
        tau: float = 1.0,
        dt: float = 0.05,
        alpha: float = 0.3,
        v_th_lower_bound: float = 5e-4,
        threshold_grad: str = "code",
        trainable: bool = True,
        leak_arith: str = "code",
        v_th_grad_scale: float = 1.0,
    ):
        super().__init__()
        v_th, bound = _check_v_th(v_th, v_th_lower_bound)
        self.tau = check_positive("tau (membrane time constant)", tau)
        self.dt = check_positive("dt (time step)", dt)
        self.alpha = _check_alpha(alpha)
        if threshold_grad not in THRESHOLD_GRADS:
            raise ValueError(f"threshold_grad must be one of {THRESHOLD_GRADS}, got {threshold_grad!r}")
        self.threshold_grad = threshold_grad
        if leak_arith not in LEAK_ARITHS:
            raise ValueError(f"leak_arith must be one of {LEAK_ARITHS}, got {leak_arith!r}")
        self.leak_arith = leak_arith
        self.v_th_grad_scale = _check_grad_scale(v_th_grad_scale)
        self._init_threshold(v_th, bound, trainable)

    @property
    def beta(self) -> float:
        """The per-step decay ``exp(-dt / tau)`` in double precision (the forward multiplies by
        ``leak_factors(tau, dt, leak_arith)[0]``, its float32 rounding with the default ``leak_arith="code"``)."""
        return math.exp(-self.dt / self.tau)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._prepare(x)
        return DSRLIFFunction.apply(x, self.v_th, self.alpha, self.tau, self.dt, self.threshold_grad,
                                    getattr(self, "leak_arith", "code"), float(getattr(self, "v_th_grad_scale", 1.0)))

    def rate(self, out: torch.Tensor) -> torch.Tensor:
        """This layer's output representation, ``[B, ...]``: the weighted rate with ``w_i = beta^(T-i)``, in the
        official models' arithmetic (``weight_rate_spikes(out, T, tau, delta_t)`` with the settings' float tau:
        ``code_rate_weights(T, tau, dt)``, float32 weights, whatever ``leak_arith``)."""
        _check_seq(out, "spikes")
        return _weighted_mean(_code_weights(out.shape[0], self.tau, self.dt, "double", out), out)

    def extra_repr(self) -> str:
        arith = getattr(self, "leak_arith", "code")
        return (f"v_th={float(self.v_th.detach()):g}, tau={self.tau:g}, dt={self.dt:g}, alpha={self.alpha:g}, "
                f"v_th_lower_bound={self.v_th_lower_bound:g}, threshold_grad={self.threshold_grad!r}, "
                f"trainable={self.trainable}" + ("" if arith == "code" else f", leak_arith={arith!r}")
                + _scale_repr(self))
