"""Surrogate family: closed forms, autograd vs .grad, normalisation, width meaning, snnTorch parity."""
import math

import pytest
import snntorch as snn
import torch
from snntorch import surrogate as snn_surrogate

from snnlab import surrogate as S

NAMES = list(S.FAMILY)


def closed_form(name, x, w):
    """Each derivative written out independently of the library, from its usual parameter."""
    if name == "rectangle":
        return (x.abs() < w / 2).double() / w
    if name == "triangle":
        g = w
        return torch.clamp(g - x.abs(), min=0) / g**2
    if name == "sigmoid":
        k = 4 * math.log(1 + math.sqrt(2)) / w  # asinh(1) = ln(1 + sqrt 2)
        return k * torch.exp(-k * x) / (1 + torch.exp(-k * x)) ** 2
    if name == "atan":
        a = 4 / (math.pi * w)
        return a / 2 / (1 + (math.pi / 2 * a * x) ** 2)
    if name == "gaussian":
        sigma = w / (2 * math.sqrt(2 * math.log(2)))
        return torch.exp(-(x**2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))
    raise AssertionError(name)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("w", [0.3, 1.0, 2.5])
def test_grad_matches_closed_form(name, w):
    x = torch.linspace(-4, 4, 4001, dtype=torch.float64)
    assert torch.allclose(S.get(name, w).grad(x), closed_form(name, x, w), atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_forward_is_heaviside_and_backward_is_grad(name):
    torch.manual_seed(0)
    sg = S.get(name, 0.7)
    x = torch.randn(500, dtype=torch.float64, requires_grad=True)
    up = torch.randn(500, dtype=torch.float64)
    s = sg(x)
    assert torch.equal(s, (x >= 0).double())
    (s * up).sum().backward()
    assert torch.allclose(x.grad, up * sg.grad(x.detach()), atol=0, rtol=1e-12)
    assert sg(torch.zeros(1)).item() == 1.0  # H(0) = 1


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("w", [0.25, 1.0, 3.0])
def test_integral_is_one(name, w):
    # integrate over a range so wide that the tails are negligible, except atan whose tail we add analytically
    x = torch.linspace(-60 * w, 60 * w, 2_000_001, dtype=torch.float64)
    integral = torch.trapezoid(S.get(name, w).grad(x), x).item()
    if name == "atan":  # tail mass outside [-L, L]: 1 - (2/pi) atan(pi a L / 2)
        a, L = 4 / (math.pi * w), 60 * w
        integral += 1 - 2 / math.pi * math.atan(math.pi * a * L / 2)
    assert integral == pytest.approx(1.0, abs=2e-4)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("w", [0.5, 2.0])
def test_width_is_full_width_at_half_maximum(name, w):
    x = torch.linspace(-3 * w, 3 * w, 600_001, dtype=torch.float64)
    g = S.get(name, w).grad(x)
    above = x[g >= g.max() / 2 - 1e-12]
    assert (above.max() - above.min()).item() == pytest.approx(w, rel=1e-3)


def test_support_and_effective_domain():
    assert S.Rectangle(0.8).support() == 0.4
    assert S.Triangle(0.8).support() == 0.8
    assert S.Triangle(0.8).effective_domain() == 0.8
    g = S.Gaussian(1.0)
    r = g.effective_domain(rel_tol=0.5)
    assert r == pytest.approx(0.5, rel=1e-6)  # half of the FWHM
    assert math.isinf(S.Sigmoid(1.0).support())


def test_width_changes_between_steps_and_is_frozen_per_forward():
    sg = S.Triangle(1.0)
    x = torch.tensor([0.6], requires_grad=True)
    s = sg(x)
    sg.width = 0.5  # changed after forward: the pending backward still uses width 1.0
    s.backward()
    assert x.grad.item() == pytest.approx(0.4)  # (1 - 0.6) / 1
    x.grad = None
    sg(x).backward()
    assert x.grad.item() == 0.0  # outside the new support


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "wide", None])
def test_bad_width(bad):
    with pytest.raises(ValueError, match="width"):
        S.Triangle(1.0).width = bad


def test_unknown_name():
    with pytest.raises(ValueError, match=r"unknown surrogate 'box'.*'rectangle'"):
        S.get("box")


@pytest.mark.parametrize("alpha", [1.0, 2.0, 5.0])
def test_parity_with_snntorch_atan(alpha):
    torch.manual_seed(1)
    x = torch.randn(2000, requires_grad=True)
    snn_surrogate.atan(alpha=alpha)(x).sum().backward()
    g_ref = x.grad.clone()
    x.grad = None
    ours = S.ATan(S.ATan.width_from_alpha(alpha))
    ours(x).sum().backward()
    assert torch.allclose(x.grad, g_ref, rtol=1e-6, atol=1e-7)


def test_parity_with_snntorch_sigmoid():
    # snnTorch's fast sigmoid is not in the family, but its plain sigmoid surrogate is: slope k
    k = 25.0
    # |x| <= 1: snnTorch's exp(-k x)^2 overflows float32 (NaN) for x < -1.8; ours stays finite
    x = (torch.rand(1000) * 2 - 1).requires_grad_()
    snn_surrogate.sigmoid(slope=k)(x).sum().backward()
    g_ref = x.grad.clone()
    x.grad = None
    S.Sigmoid(S.Sigmoid.width_from_k(k))(x).sum().backward()
    assert torch.allclose(x.grad, g_ref, rtol=1e-5, atol=1e-7)


def test_works_as_snntorch_spike_grad():
    torch.manual_seed(0)
    sg = S.Gaussian(0.5)
    lif = snn.Leaky(beta=0.9, spike_grad=sg)
    x = torch.rand(10, 4, requires_grad=True)
    mem = lif.init_leaky()
    total = 0
    for t in range(10):
        spk, mem = lif(x[t] * 2, mem)
        total = total + spk.sum()
    total.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_deepcopy_keeps_width():
    import copy

    sg = S.Sigmoid(0.3)
    assert copy.deepcopy(sg).width == 0.3


@pytest.mark.parametrize("name", NAMES)
def test_second_derivative_through_the_surrogate(name):
    """create_graph=True backward stays differentiable: d/dx of the surrogate gradient is g'(x)."""
    sg = S.get(name, 1.3)
    x = (torch.rand(200, dtype=torch.float64) * 4 - 2).requires_grad_()
    (g,) = torch.autograd.grad(sg(x).sum(), x, create_graph=True)
    assert torch.allclose(g, sg.grad(x.detach()))
    if name == "rectangle":  # piecewise constant: zero second derivative, and no graph to x
        return
    (gg,) = torch.autograd.grad(g.sum(), x)
    eps = 1e-6
    fd = (sg.grad(x.detach() + eps) - sg.grad(x.detach() - eps)) / (2 * eps)
    keep = (x.detach().abs() - 1.3).abs() > 1e-3  # away from the triangle's kinks
    keep &= x.detach().abs() > 1e-3
    assert torch.allclose(gg[keep], fd[keep], atol=1e-5)


def test_smooth_sigmoid_replaces_the_spike():
    k = 10.0
    sg = S.get("smooth-sigmoid", S.Sigmoid.width_from_k(k))
    x = torch.linspace(-2, 2, 101, dtype=torch.float64, requires_grad=True)
    y = sg(x)
    assert torch.allclose(y, torch.sigmoid(k * x))  # forward is smooth, not a step
    y.sum().backward()
    assert torch.allclose(x.grad, sg.grad(x.detach()))  # the exact derivative
    assert set(S.FAMILY) < set(S.SURROGATES)
