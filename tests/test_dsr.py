"""DSR (Meng et al., CVPR 2022): the neurons' forward, the rate mapping, the backward formulas, the threshold
bound, parity with SpikingJelly's DSRIFNode/DSRLIFNode, the models, and error messages.

The formulas below are written out independently of snnlab.dsr (see its module docstring for where they come
from in the paper and the official code).
"""
import math
import re

import pytest
import torch

from snnlab import dsr
from snnlab.dsr import DSRIF, DSRLIF, firing_rate
from snnlab.dsr_models import (
    DSR_MODELS, VGG11, DSRTutorialSNN, PreActResNet18, build_dsr_model, count_parameters, make_dsr_neuron,
    thresholds,
)
from snnlab.losses import sdt_loss


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # The 2 shared CPU cores are oversubscribed: one intra-op thread is ~10x faster here than two.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# ------------------------------------------------------------------------------------------- references
def if_reference(x, v_th, alpha):
    """Plain-Python IF on a list of floats: u += x; s = v_th * [u >= alpha v_th]; u -= s."""
    u, out = 0.0, []
    for xt in x:
        u += xt
        s = v_th if u >= alpha * v_th else 0.0
        u -= s
        out.append(s)
    return out


def lif_reference(x, v_th, tau, dt, alpha):
    """Plain-Python LIF: u = beta u + (1-beta) x; s = v_th [u >= alpha v_th]; u -= s; output s / dt."""
    beta = math.exp(-dt / tau)
    u, out = 0.0, []
    for xt in x:
        u = beta * u + (1 - beta) * xt
        s = v_th if u >= alpha * v_th else 0.0
        u -= s
        out.append(s / dt)
    return out


def weights(T, beta):
    return torch.tensor([beta ** (T - i) for i in range(1, T + 1)], dtype=torch.float64)


def wmean(x, w):
    return (w.view(-1, *[1] * (x.dim() - 1)) * x).sum(0) / w.sum()


def test_forward_matches_plain_python_reference():
    torch.manual_seed(0)
    x = torch.randn(12, 3, dtype=torch.float64) * 4 + 2
    n = DSRIF(v_th=3.0, alpha=0.5)
    out = n(x)
    for j in range(3):
        assert out[:, j].tolist() == pytest.approx(if_reference(x[:, j].tolist(), 3.0, 0.5))
    x = torch.rand(15, 4, dtype=torch.float64) * 8 - 1
    n = DSRLIF(v_th=0.25, tau=2.0, dt=0.1, alpha=0.4)
    out = n(x)
    for j in range(4):
        assert out[:, j].tolist() == pytest.approx(lif_reference(x[:, j].tolist(), 0.25, 2.0, 0.1, 0.4))
    # spikes carry amplitude v_th (IF) and v_th / dt (LIF)
    assert set(DSRIF(v_th=3.0)(x).unique().tolist()) <= {0.0, 3.0}
    assert set(torch.round(n(x), decimals=6).unique().tolist()) <= {0.0, 2.5}


def test_forward_keeps_no_graph_through_time():
    x = torch.randn(6, 2, 5, requires_grad=True)
    for n in (DSRIF(), DSRLIF()):
        y = n(x)
        assert type(y.grad_fn).__name__.startswith(("DSRIFFunction", "DSRLIFFunction"))
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
            n(x)
        # only [B, ...] boolean masks (and the T weights for LIF) are kept for the backward
        assert all(t.dtype == torch.bool and t.shape == (2, 5) for t in saved[:2])
        assert sum(t.numel() * t.element_size() for t in saved) <= 2 * 10 + 6 * 4


# ------------------------------------------------------------------------------------------- (1) the mapping
@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_if_rate_approaches_mapping_constant_inputs(alpha):
    v_th = 6.0
    c = torch.linspace(-1.0, 1.5 * v_th, 3001, dtype=torch.float64)
    errs = []
    for T in (5, 10, 20, 40):
        r = firing_rate(DSRIF(v_th=v_th, alpha=alpha)(c.expand(T, 1, -1).contiguous()))[0]
        err = (r - c.clamp(0, v_th)).abs().max().item()
        # |r - clamp(xbar)| = |u_T| / T <= max(alpha, 1 - alpha) v_th / T; attained on a dense grid
        assert err <= max(alpha, 1 - alpha) * v_th / T + 1e-9
        assert err >= 0.95 * max(alpha, 1 - alpha) * v_th / T
        errs.append(err)
    assert all(a > b for a, b in zip(errs, errs[1:]))


def test_if_alpha_half_halves_the_error():
    v_th, c = 6.0, torch.linspace(0.0, 6.0, 3001, dtype=torch.float64)
    for T in (5, 10, 20):
        x = c.expand(T, 1, -1).contiguous()
        e_half = (DSRIF(v_th, 0.5)(x).mean(0)[0] - c).abs().max().item()
        e_one = (DSRIF(v_th, 1.0)(x).mean(0)[0] - c).abs().max().item()
        assert e_half == pytest.approx(v_th / (2 * T), rel=0.02)  # rounding
        assert e_one == pytest.approx(v_th / T, rel=0.02)  # flooring
        assert e_half / e_one == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 0.3])
def test_if_rate_random_inputs_bound(alpha):
    torch.manual_seed(1)
    v_th, prev = 2.0, None
    for T in (5, 10, 20, 40):
        x = torch.rand(T, 2000, dtype=torch.float64) * v_th  # inputs in [0, v_th]: u_T in [(a-1)v_th, a v_th)
        r = DSRIF(v_th, alpha)(x).mean(0)
        err = (r - x.mean(0).clamp(0, v_th)).abs()
        assert err.max().item() <= max(alpha, 1 - alpha) * v_th / T + 1e-9
        if prev is not None:
            assert err.mean().item() < prev
        prev = err.mean().item()
    # Gaussian inputs (not bounded per step): the mean error still shrinks with T
    e = [(DSRIF(v_th, alpha)(x := torch.randn(T, 4000, dtype=torch.float64) + 1).mean(0)
          - x.mean(0).clamp(0, v_th)).abs().mean().item() for T in (5, 40)]
    assert e[1] < e[0] / 3


def lif_bound(c, T, v_th, tau, dt, alpha):
    """Exact: r = (1-beta)/dt xhat - u_T/(dt W), W = sum w, |u_T| <= max(a, 1-a) v_th for inputs in range, plus
    the discretisation gap between the slope (1-beta)/dt and 1/tau, up to the saturation point."""
    beta = math.exp(-dt / tau)
    W = (1 - beta ** T) / (1 - beta)
    return abs((1 - beta) / dt - 1 / tau) * c.clamp(0, tau * v_th / dt) + max(alpha, 1 - alpha) * v_th / (dt * W)


@pytest.mark.parametrize("tau,dt", [(1.0, 0.05), (2.0, 0.1)])
def test_lif_weighted_rate_approaches_mapping(tau, dt):
    n = DSRLIF(v_th=0.3, tau=tau, dt=dt, alpha=0.3)
    v_th, beta = n.v_th.item(), n.beta
    c = torch.linspace(-0.5, 1.2 * v_th * tau / dt, 3001, dtype=torch.float64)
    errs = []
    for T in (5, 10, 20, 40):
        x = c.expand(T, 1, -1).contiguous()
        r = n.rate(n(x))[0]
        assert torch.allclose(r, firing_rate(n(x), weighted=True, beta=beta))
        err = (r - (c / tau).clamp(0, v_th / dt)).abs()
        assert (err <= lif_bound(c, T, v_th, tau, dt, 0.3) + 1e-9).all()
        errs.append(err.max().item())
    assert all(a > b for a, b in zip(errs, errs[1:]))
    # random inputs in [0, v_th / (1 - beta)]: same bound with xhat the weighted input average
    torch.manual_seed(2)
    for T in (5, 20):
        x = torch.rand(T, 1000, dtype=torch.float64) * v_th / (1 - beta)
        xhat = wmean(x, weights(T, beta))
        err = (n.rate(n(x)) - (xhat / tau).clamp(0, v_th / dt)).abs()
        assert (err <= lif_bound(xhat, T, v_th, tau, dt, 0.3) + 1e-9).all()


def test_lif_alpha_half_halves_the_quantisation_error():
    tau, dt = 1.0, 0.05
    beta = math.exp(-dt / tau)
    for T in (5, 10, 20):
        e = {}
        for alpha in (0.5, 1.0):
            n = DSRLIF(v_th=0.3, tau=tau, dt=dt, alpha=alpha)
            v_th = n.v_th.item()
            c = torch.linspace(0, v_th / (1 - beta), 3001, dtype=torch.float64)
            r = n.rate(n(c.expand(T, 1, -1).contiguous()))[0]
            W = (1 - beta ** T) / (1 - beta)
            # against the exact-slope mapping the only error is u_T / (dt W): <= max(a, 1-a) v_th / (dt W)
            e[alpha] = (r - ((1 - beta) / dt * c).clamp(0, v_th / dt)).abs().max().item() * dt * W / v_th
            # against the paper's clamp(xhat / tau): alpha = 0.5 still clearly better
        assert e[0.5] == pytest.approx(0.5, abs=0.03) and e[1.0] == pytest.approx(1.0, abs=0.03)


# ------------------------------------------------------------------------------------------- (2) backward
def if_case(seed=0, T=7, v_th=2.0):
    torch.manual_seed(seed)
    # columns with xbar < 0, inside [0, v_th] and > v_th
    x = torch.cat([torch.randn(T, 4, 5) - 3, torch.rand(T, 4, 5) * v_th, torch.randn(T, 4, 5) + 3 * v_th], -1)
    return x.double().requires_grad_(), torch.randn(T, 4, 15, dtype=torch.float64)


def test_if_backward_formulas():
    x, gout = if_case()
    T = x.shape[0]
    n = DSRIF(v_th=2.0, alpha=0.5)
    n(x).backward(gout)
    v_th = n.v_th.item()
    xbar = x.detach().mean(0)
    g = gout.sum(0)  # g = sum_t dL/ds(t)
    mask = ((xbar >= 0) & (xbar <= v_th)).double()
    expected = (g * mask / T).expand(T, *g.shape)
    assert torch.allclose(x.grad, expected)
    assert n.v_th.grad.item() == pytest.approx((g * (xbar > v_th)).sum().item(), rel=1e-6)
    # every step gets the same gradient; zero outside the clamp; nonzero inside
    assert (x.grad[:, xbar < 0] == 0).all() and (x.grad[:, xbar > v_th] == 0).all()
    assert (x.grad[:, (xbar > 0) & (xbar < v_th)] != 0).all()
    assert (xbar < 0).any() and (xbar > v_th).any()


def test_if_backward_is_the_mappings_gradient():
    """For a loss of the rate, DSR's IF gradient equals autograd through r = clamp(mean_t x, 0, v_th)."""
    x, _ = if_case(seed=3)
    coef = torch.randn(4, 15, dtype=torch.float64)
    n = DSRIF(v_th=2.0)
    (coef * n(x).mean(0)).sum().backward()
    x2 = x.detach().clone().requires_grad_()
    v = torch.tensor(n.v_th.item(), dtype=torch.float64, requires_grad=True)
    (coef * torch.minimum(x2.mean(0).clamp(min=0), v)).sum().backward()
    assert torch.allclose(x.grad, x2.grad)
    assert n.v_th.grad.item() == pytest.approx(v.grad.item(), rel=1e-6)


def lif_case(seed=0, T=9, tau=1.0, dt=0.05, v_th=0.3):
    torch.manual_seed(seed)
    sat = tau * v_th / dt
    x = torch.cat([torch.randn(T, 3, 4) - 2, torch.rand(T, 3, 4) * sat, torch.randn(T, 3, 4) + 2 * sat], -1)
    return x.double().requires_grad_(), torch.randn(T, 3, 12, dtype=torch.float64)


@pytest.mark.parametrize("variant", ["code", "paper"])
@pytest.mark.parametrize("tau,dt", [(1.0, 0.05), (2.0, 0.1)])
def test_lif_backward_formulas(variant, tau, dt):
    x, gout = lif_case(tau=tau, dt=dt)
    T = x.shape[0]
    n = DSRLIF(v_th=0.3, tau=tau, dt=dt, alpha=0.3, threshold_grad=variant)
    n(x).backward(gout)
    v_th, beta = n.v_th.item(), math.exp(-dt / tau)
    w = weights(T, beta)
    xhat = wmean(x.detach(), w)
    g = T * wmean(gout, w)  # T * weighted mean of dL/do(t), as the code
    inside = ((xhat > 0) & (xhat < tau * v_th / dt)).double()
    assert torch.allclose(x.grad, (g * inside / (tau * T)).expand(T, *g.shape))
    s = (g * (xhat > tau * v_th / dt)).sum().item()
    expected = s * dt if variant == "code" else s / dt
    assert n.v_th.grad.item() == pytest.approx(expected, rel=1e-5)
    assert (x.grad[:, xhat <= 0] == 0).all() and (x.grad[:, xhat >= tau * v_th / dt] == 0).all()
    assert (xhat <= 0).any() and (xhat > tau * v_th / dt).any() and (inside > 0).any()


def test_lif_threshold_variants_differ_by_dt_squared():
    x, gout = lif_case(seed=5)
    grads = {}
    for variant in ("code", "paper"):
        n = DSRLIF(threshold_grad=variant)
        xi = x.detach().clone().requires_grad_()
        n(xi).backward(gout)
        grads[variant] = (n.v_th.grad.item(), xi.grad)
    assert grads["paper"][0] == pytest.approx(grads["code"][0] / 0.05 ** 2, rel=1e-5)
    assert torch.equal(grads["paper"][1], grads["code"][1])  # the input gradient does not depend on it


def test_frozen_threshold_gets_no_gradient_but_input_does():
    x, gout = lif_case()
    n = DSRLIF(trainable=False)
    assert "v_th" in dict(n.named_buffers()) and not list(n.parameters())
    n(x).backward(gout)
    assert x.grad is not None and n.v_th.grad is None


def test_float32_input_with_float64_check():
    x32 = torch.randn(5, 2, 3) * 3
    for n in (DSRIF(v_th=1.0), DSRLIF()):
        a = n(x32)
        b = n(x32.double())
        assert a.dtype == torch.float32 and torch.allclose(a.double(), b, atol=1e-5)


# ------------------------------------------------------------------------------------------- (3) threshold bound
@pytest.mark.parametrize("cls,bound", [(DSRIF, 0.01), (DSRLIF, 5e-4)])
def test_threshold_is_clamped_to_its_bound(cls, bound):
    n = cls()
    assert n.v_th_lower_bound == bound
    with torch.no_grad():
        n.v_th.fill_(-1.0)
    x = torch.full((4, 1, 3), 10.0)
    out = n(x)
    assert n.v_th.item() == pytest.approx(bound)
    amp = bound if cls is DSRIF else bound / n.dt
    assert out.max().item() == pytest.approx(amp, rel=1e-5)  # the forward used the clamped threshold


@pytest.mark.parametrize("cls", [DSRIF, DSRLIF])
def test_optimiser_pushing_threshold_down_stays_at_bound(cls):
    n = cls()
    opt = torch.optim.SGD(n.parameters(), lr=100.0)
    x = torch.full((5, 2, 3), 1e4)  # saturated: dL/dv_th > 0 for L = sum(out)
    seen = []
    for _ in range(4):
        out = n(x)
        seen.append(n.v_th.item())
        opt.zero_grad()
        out.sum().backward()
        assert n.v_th.grad.item() > 0
        opt.step()
    bound = torch.tensor(n.v_th_lower_bound).item()  # the bound as a float32, the parameter's dtype
    assert n.v_th.item() < bound  # the optimiser did push it below ...
    n(x)
    assert n.v_th.item() >= bound  # ... and every forward clamps it back
    assert min(seen) >= bound and seen[-1] == bound


# ------------------------------------------------------------------------------------------- rates
def test_firing_rate_plain_and_weighted():
    torch.manual_seed(0)
    s = torch.rand(6, 2, 3, dtype=torch.float64)
    assert torch.allclose(firing_rate(s), s.mean(0))
    beta = 0.8
    w = torch.tensor([beta ** (6 - i) for i in range(1, 7)], dtype=torch.float64)
    expected = sum(w[i] * s[i] for i in range(6)) / w.sum()
    assert torch.allclose(firing_rate(s, weighted=True, beta=beta), expected)
    assert torch.allclose(firing_rate(s, weighted=True, dt=0.1, tau=2.0),
                          firing_rate(s, weighted=True, beta=math.exp(-0.05)))
    assert firing_rate(s, weighted=True, beta=1.0).allclose(s.mean(0))
    assert dsr.rate_weights(3, 0.5).tolist() == [0.25, 0.5, 1.0]


# ------------------------------------------------------------------------------------------- (4) SpikingJelly
def _sj():
    return pytest.importorskip("spikingjelly.activation_based.neuron", reason="SpikingJelly 2.0 not installed")


@pytest.mark.parametrize("v_th,alpha", [(6.0, 0.5), (1.0, 1.0), (0.5, 0.3)])
def test_parity_spikingjelly_if(v_th, alpha):
    sj = _sj()
    torch.manual_seed(0)
    T = 8
    x = (torch.randn(T, 4, 16) * 2 * v_th + v_th / 2).requires_grad_()
    gout = torch.randn(T, 4, 16)
    ours, ref = DSRIF(v_th=v_th, alpha=alpha), sj.DSRIFNode(T=T, v_threshold=v_th, alpha=alpha)
    y1 = ours(x)
    y1.backward(gout)
    g1 = x.grad.clone()
    x.grad = None
    y2 = ref(x)
    y2.backward(gout)
    assert torch.equal(y1, y2)
    assert torch.equal(g1, x.grad)  # the same operations (mean * T, masks, / T): bit for bit
    assert torch.equal(ours.v_th.grad, ref.v_threshold.grad)


@pytest.mark.parametrize("tau,dt,alpha,variant", [(1.0, 0.05, 0.3, "code"), (2.0, 0.1, 0.5, "code"),
                                                  (1.0, 0.05, 0.3, "paper")])
def test_parity_spikingjelly_lif(tau, dt, alpha, variant):
    """SpikingJelly computes beta and the rate weights in double precision: leak_arith="double" is it bit for bit."""
    sj = _sj()
    torch.manual_seed(1)
    T, v_th = 10, 0.3
    sat = tau * v_th / dt
    x = (torch.randn(T, 4, 16) * sat + sat / 2).requires_grad_()
    gout = torch.randn(T, 4, 16)
    ours = DSRLIF(v_th=v_th, tau=tau, dt=dt, alpha=alpha, threshold_grad=variant, leak_arith="double")
    # SJ has the code's variant; the paper's (1/dt instead of dt) is its grad scaling 1/dt^2
    ref = sj.DSRLIFNode(T=T, v_threshold=v_th, tau=tau, delta_t=dt, alpha=alpha, v_threshold_lower_bound=5e-4,
                        v_threshold_grad_scaling=1.0 if variant == "code" else 1 / dt ** 2)
    y1 = ours(x)
    y1.backward(gout)
    g1 = x.grad.clone()
    x.grad = None
    y2 = ref(x)
    y2.backward(gout)
    assert torch.equal(y1, y2)
    assert torch.equal(g1, x.grad)
    if variant == "code":
        assert torch.equal(ours.v_th.grad, ref.v_threshold.grad)
    else:  # s / dt against SJ's s * dt * (1 / dt^2)
        assert ours.v_th.grad.item() == pytest.approx(ref.v_threshold.grad.item(), rel=1e-6)


def test_spikingjelly_is_the_double_arithmetic_not_the_codes():
    """On inputs where the leak's last bit decides a spike, SpikingJelly fires as leak_arith="double" and not as the
    default (the official code's float32)."""
    sj = _sj()
    x = _flip_case()
    ref = sj.DSRLIFNode(T=x.shape[0], v_threshold=0.3, tau=1.0, delta_t=0.05, alpha=0.3, v_threshold_lower_bound=5e-4)
    y = ref(x)
    assert torch.equal(y, DSRLIF(leak_arith="double")(x))
    assert not torch.equal(y, DSRLIF()(x))


# ------------------------------------------------------------------------------------------- (4b) the official code
# Replays of the official DSR neurons (github.com/qymeng94/DSR, cifar/modules/neuron.py: weight_rate_spikes,
# IFFunction, LIFFunction and lif_grad; imagenet/neuron.py: IFFunction with its threshold gradient * 0.001), written
# out with the same tensor operations in the same order and the same dtypes (tau a float32 tensor, the weights a
# float32 tensor from Python floats), the input flattened to [T*B, ...] as the code receives it.
def official_weight_rate_spikes(data, timesteps, tau, delta_t):
    chw = data.size()[1:]
    data_reshape = data.view(timesteps, -1, *chw).permute(list(range(1, len(chw) + 2)) + [0])
    weight = torch.tensor([math.exp(-1 / tau * (delta_t * timesteps - ii * delta_t))
                           for ii in range(1, timesteps + 1)]).to(data_reshape.device)
    return (weight * data_reshape).sum(dim=len(chw) + 1) / weight.sum()


def official_lif(x, grad_out, Vth, tau=1.0, delta_t=0.05, alpha=0.3):
    """``LIFFunction.forward`` then ``LIFFunction.backward`` (with ``lif_grad``): (output, input_grad, Vth_grad)."""
    timesteps = x.shape[0]
    tau = torch.tensor(tau)  # LIFNeuron: self.tau = torch.tensor(snn_setting['tau'])
    inp = x.reshape(-1, *x.shape[2:])
    chw = inp.size()[1:]
    input_reshape = inp.view(timesteps, -1, *chw)
    mem_potential = torch.zeros(input_reshape.size(1), *chw).to(input_reshape.device)
    beta = torch.exp(-delta_t / tau)
    spikes = []
    for t in range(input_reshape.size(0)):
        mem_potential = beta * mem_potential + (1 - beta) * input_reshape[t]
        spike = ((mem_potential >= alpha * Vth).float() * Vth).float()
        mem_potential = mem_potential - spike
        spikes.append(spike / delta_t)
    output = torch.cat(spikes, 0)
    # backward
    grad_output = grad_out.reshape(inp.shape)
    input_rate_coding = official_weight_rate_spikes(inp, timesteps, tau, delta_t)
    grad_output_coding = official_weight_rate_spikes(grad_output, timesteps, tau, delta_t) * timesteps
    indexes = (input_rate_coding > 0) & (input_rate_coding < Vth / delta_t * tau)
    input_grad = torch.zeros_like(grad_output_coding)
    input_grad[indexes] = grad_output_coding[indexes].clone() / tau
    Vth_grad = grad_output_coding.clone()
    Vth_grad[input_rate_coding <= Vth / delta_t * tau] = 0
    Vth_grad = torch.sum(Vth_grad) * delta_t
    input_grad = torch.cat([input_grad for _ in range(timesteps)], 0) / timesteps
    return output.view(x.shape), input_grad.view(x.shape), Vth_grad


def official_if(x, grad_out, Vth, alpha=0.5, imagenet=False):
    """``IFFunction.forward`` then ``.backward`` (CIFAR; ``imagenet=True``: the ImageNet file's, Vth_grad * 0.001)."""
    timesteps = x.shape[0]
    inp = x.reshape(-1, *x.shape[2:])
    chw = inp.size()[1:]
    input_reshape = inp.view(timesteps, -1, *chw)
    mem_potential = torch.zeros(input_reshape.size(1), *chw).to(input_reshape.device)
    spikes = []
    for t in range(input_reshape.size(0)):
        mem_potential = mem_potential + input_reshape[t]
        spike = ((mem_potential >= alpha * Vth).float() * Vth).float()
        mem_potential = mem_potential - spike
        spikes.append(spike)
    output = torch.cat(spikes, 0)
    # backward (rate_spikes = torch.mean(data.view(timesteps, -1, *chw), 0))
    input_rate_coding = torch.mean(inp.view(timesteps, -1, *chw), 0)
    grad_output_coding = torch.mean(grad_out.reshape(inp.shape).view(timesteps, -1, *chw), 0) * timesteps
    input_grad = grad_output_coding.clone()
    input_grad[(input_rate_coding < 0) | (input_rate_coding > Vth)] = 0
    input_grad = torch.cat([input_grad for _ in range(timesteps)], 0) / timesteps
    Vth_grad = grad_output_coding.clone()
    Vth_grad[input_rate_coding <= Vth] = 0
    Vth_grad = torch.sum(Vth_grad) * 0.001 if imagenet else torch.sum(Vth_grad)
    return output.view(x.shape), input_grad.view(x.shape), Vth_grad


def _ours(neuron, x, grad_out):
    xi = x.detach().clone().requires_grad_()
    y = neuron(xi)
    y.backward(grad_out)
    return y.detach(), xi.grad, neuron.v_th.grad


def _flip_case(n=64, T=6, seed=0):
    """[T, 1, n] float32 inputs whose first step lands between the two arithmetics: (1 - beta) * x[0] reaches
    alpha * v_th (DSRLIF's defaults: 0.3 * 0.3) in double precision but not in the code's float32."""
    _, m_code = dsr.leak_factors(1.0, 0.05, "code")
    fire_at = (0.3 * torch.tensor(0.3)).item()
    c = torch.tensor(fire_at / m_code)
    ulps = torch.nextafter(c, torch.tensor(math.inf)) - c
    cand = c + ulps * torch.arange(-40, 40)
    m_double32 = torch.tensor(dsr.leak_factors(1.0, 0.05, "double")[1]).item()
    flips = cand[((cand * m_code) < fire_at) & ((cand * m_double32) >= fire_at)]
    assert len(flips) >= 5
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(T, 1, n, generator=g) * 12 - 3
    x[0, 0, :len(flips)] = flips
    return x


def test_leak_factors_code_is_float32_double_is_spikingjelly():
    beta, m = dsr.leak_factors(1.0, 0.05, "code")
    assert (beta, m) == (0.951229453086853, 0.04877054691314697)  # float32(exp(-0.05)), and 1 - it in float32
    assert torch.tensor(m).item() == m and f"{m:.11f}" == "0.04877054691"
    beta_d, m_d = dsr.leak_factors(1.0, 0.05, "double")
    assert (beta_d, m_d) == (math.exp(-0.05), 1 - math.exp(-0.05)) and f"{m_d:.11f}" == "0.04877057550"
    assert torch.tensor(m_d).item() == 0.04877057671546936  # what a float32 multiply uses: 2 ulps above the code's
    assert torch.tensor(beta_d).item() == beta  # beta itself rounds to the same float32
    with pytest.raises(ValueError, match=r"leak_arith must be one of \('code', 'double'\), got 'float32'"):
        dsr.leak_factors(1.0, 0.05, "float32")


@pytest.mark.parametrize("tau,dt,alpha,v_th", [(1.0, 0.05, 0.3, 0.3), (2.0, 0.1, 0.5, 0.6), (1.0, 0.05, 0.3, 0.0123)])
@pytest.mark.parametrize("shape", [(20, 8, 300), (5, 3, 4, 6, 6)])
def test_lif_default_is_the_official_code_bit_for_bit(tau, dt, alpha, v_th, shape):
    torch.manual_seed(0)
    sat = tau * v_th / dt
    x = torch.randn(*shape) * sat + sat / 2
    gout = torch.randn(*shape)
    n = DSRLIF(v_th=v_th, tau=tau, dt=dt, alpha=alpha)
    ours = _ours(n, x, gout)
    ref = official_lif(x, gout, n.v_th.detach().clone(), tau, dt, alpha)
    for a, b in zip(ours, ref):
        assert torch.equal(a, b)
    assert 0 < (ours[0] > 0).float().mean() < 1 and (ours[1] != 0).any()


def test_lif_default_matches_the_code_where_double_flips_a_spike():
    x = _flip_case()
    gout = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    code, double = DSRLIF(), DSRLIF(leak_arith="double")
    ours = _ours(code, x, gout)
    ref = official_lif(x, gout, code.v_th.detach().clone(), 1.0, 0.05, 0.3)
    for a, b in zip(ours, ref):
        assert torch.equal(a, b)
    y_double = double(x)
    flipped = (y_double != ours[0])
    assert flipped[0, 0, :5].all()  # the constructed steps: a spike in double precision, none in the code's float32
    assert (ours[0][0, 0, :5] == 0).all() and (y_double[0, 0, :5] > 0).all()


@pytest.mark.parametrize("imagenet", [False, True])
@pytest.mark.parametrize("v_th,alpha", [(6.0, 0.5), (1.0, 1.0), (0.37, 0.3)])
def test_if_is_the_official_code_bit_for_bit(v_th, alpha, imagenet):
    torch.manual_seed(0)
    x = torch.randn(8, 6, 3, 5, 5) * 2 * v_th + v_th / 2
    gout = torch.randn(x.shape)
    n = DSRIF(v_th=v_th, alpha=alpha, v_th_grad_scale=0.001 if imagenet else 1.0)
    ours = _ours(n, x, gout)
    ref = official_if(x, gout, n.v_th.detach().clone(), alpha, imagenet=imagenet)
    for a, b in zip(ours, ref):
        assert torch.equal(a, b)
    assert ours[2] != 0


@pytest.mark.parametrize("cls", [DSRIF, DSRLIF])
def test_threshold_grad_scale_multiplies_exactly_the_threshold_gradient(cls):
    x, gout = (lif_case if cls is DSRLIF else if_case)(seed=2)
    x, gout = x.detach().float(), gout.float()
    kw = {} if cls is DSRLIF else {"v_th": 2.0}
    base = _ours(cls(**kw), x, gout)
    for scale in (0.001, 0.25, 3.0):
        scaled = _ours(cls(v_th_grad_scale=scale, **kw), x, gout)
        assert torch.equal(scaled[0], base[0]) and torch.equal(scaled[1], base[1])  # spikes, input gradient
        assert torch.equal(scaled[2], base[2] * scale)  # the unscaled gradient (after the LIF's dt) times scale
        assert scaled[2].item() == pytest.approx(scale * base[2].item(), rel=1e-6)
    assert base[2] != 0


def test_new_options_are_wired_and_checked():
    from snnlab import cli
    from snnlab.train import TrainConfig, build_from_config
    from types import SimpleNamespace

    bundle = SimpleNamespace(input_shape=(1, 8, 8), num_classes=10)
    cfg = TrainConfig(method="dsr", model="tutorial", dsr_leak_arith="double", dsr_v_th_grad_scale=0.5).validate()
    ns = list(dsr.dsr_neurons(build_from_config(cfg, bundle)).values())
    assert ns and all(n.leak_arith == "double" and n.v_th_grad_scale == 0.5 for n in ns)
    cfg = TrainConfig(method="dsr", model="tutorial", neuron="if", dsr_v_th_grad_scale=1e-3).validate()
    ns = list(dsr.dsr_neurons(build_from_config(cfg, bundle)).values())
    assert ns and all(isinstance(n, DSRIF) and n.v_th_grad_scale == 1e-3 for n in ns)
    default = list(dsr.dsr_neurons(build_from_config(TrainConfig(method="dsr", model="tutorial"), bundle)).values())
    assert all(n.leak_arith == "code" and n.v_th_grad_scale == 1.0 for n in default)
    argv = ["train", "--method", "dsr", "--dsr-leak-arith", "double", "--dsr-v-th-grad-scale", "0.001"]
    args = cli.build_parser().parse_args(argv)
    args._explicit = cli._explicit_dests(argv)
    flags = cli.config_from_args(args)
    assert (flags.dsr_leak_arith, flags.dsr_v_th_grad_scale) == ("double", 0.001)
    for kw, msg in [(dict(dsr_leak_arith="float"), "dsr_leak_arith must be one of 'code', 'double'; got 'float'"),
                    (dict(dsr_v_th_grad_scale=0.0), "dsr_v_th_grad_scale must be a finite number > 0, got 0.0"),
                    (dict(dsr_v_th_grad_scale=-1e-3), "dsr_v_th_grad_scale must be a finite number > 0, got -0.001"),
                    (dict(dsr_v_th_grad_scale=float("nan")), "dsr_v_th_grad_scale must be a finite number > 0, "
                                                             "got nan")]:
        with pytest.raises(ValueError, match=re.escape(msg)):
            TrainConfig(method="dsr", **kw).validate()


# ------------------------------------------------------------------------------------------- (5) models
@pytest.mark.parametrize("neuron", ["lif", "if"])
@pytest.mark.parametrize("shape,T", [((1, 8, 8), 4), ((2, 24, 24), 5)])
def test_tutorial_shapes_and_params(neuron, shape, T):
    m = DSRTutorialSNN(shape, 10, neuron=neuron)
    out = m(torch.randn(T, 3, *shape))
    assert out.shape == (1, 3, 10)
    c, h, w = shape
    # conv(c->16, no bias) + BN(16) + v_th, conv(16->32) + BN(32) + v_th, linear + BN1d(10) + v_th
    expected = (c * 16 * 9 + 32 + 1) + (16 * 32 * 9 + 64 + 1) + (32 * (h // 4) * (w // 4) * 10 + 10 + 20 + 1)
    assert count_parameters(m) == expected
    assert len(thresholds(m)) == 3
    if neuron == "lif":  # outputs are weighted rates of spikes of amplitude v_th / dt: in [0, v_th / dt]
        assert 0 <= out.min() and out.max() <= 0.3 / 0.05 + 1e-5


def preact_resnet18_params(num_classes=10, c_in=3):
    """By hand from DSR's preresnet.py: stem conv (no bias); per block BN(in), conv3x3(in,out)+bias, BN(out),
    conv3x3(out,out)+bias, a 1x1 shortcut conv+bias if the shape changes, 2 thresholds; head BN(512),
    linear(512, classes)+bias, BN1d(classes), 3 thresholds."""
    n = c_in * 64 * 9
    c = 64
    for width, stride in [(64, 1), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1)]:
        n += 2 * c + (c * width * 9 + width) + 2 * width + (width * width * 9 + width) + 2
        if stride != 1 or c != width:
            n += c * width + width
        c = width
    return n + 2 * 512 + 512 * num_classes + num_classes + 2 * num_classes + 3


def preact_resnet18_imagenet_params(num_classes=1000, c_in=3):
    """By hand from DSR's imagenet/preresnet_snn.py (resnet18_if): stem conv7x7 (no bias) + BN(64) + threshold; per
    block BN(in), conv3x3(in,out), BN(out), conv3x3(out,out), all bias-free, a 1x1 conv (no bias) + BN shortcut if
    the shape changes, 2 thresholds; head BN(512), linear(512, classes)+bias, BN1d(classes), 3 thresholds.

    Cross-check against torchvision's ResNet-18 (11,689,512 parameters: the same conv7x7 + BN stem, the same
    bias-free 3x3 convs, 1x1 conv + BN shortcuts and linear(512, 1000)): its blocks also have two BNs each, but
    over (out, out) where the pre-activation block has (in, out), so the three widening blocks have
    2*(64-128) + 2*(128-256) + 2*(256-512) = -896 BN parameters fewer; DSR adds BN(512) before the pool (+1,024)
    and BN1d(1000) after the linear layer (+2,000), and its SNN has 1 + 2*8 + 3 = 20 thresholds:
    11,689,512 - 896 + 1,024 + 2,000 + 20 = 11,691,660.
    Layer by layer: stem 9,408 + 128 + 1 = 9,537; layer1 2 * (128 + 36,864 + 128 + 36,864 + 2) = 147,972;
    layer2 (128 + 73,728 + 256 + 147,456 + 8,192 + 256 + 2) + (256 + 147,456 + 256 + 147,456 + 2) = 525,444;
    layer3 (256 + 294,912 + 512 + 589,824 + 32,768 + 512 + 2) + (512 + 2 * 589,824 + 512 + 2) = 2,099,460;
    layer4 (512 + 1,179,648 + 1,024 + 2,359,296 + 131,072 + 1,024 + 2) + (1,024 + 2 * 2,359,296 + 1,024 + 2)
    = 8,393,220; head 1,024 + 2 + 513,000 + 2,000 + 1 = 516,027; total 11,691,660."""
    n = c_in * 64 * 49 + 2 * 64 + 1
    c = 64
    for width, stride in [(64, 1), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1)]:
        n += 2 * c + c * width * 9 + 2 * width + width * width * 9 + 2
        if stride != 1 or c != width:
            n += c * width + 2 * width
        c = width
    return n + 2 * 512 + 2 + 512 * num_classes + num_classes + 2 * num_classes + 1


def vgg11_params(num_classes=10, c_in=2):
    """By hand from DSR's vgg.py: 8 conv3x3+bias, each with BN and a threshold; linear(512*7*7)+bias, BN1d, 1."""
    n, c = 0, c_in
    for width in (64, 128, 256, 256, 512, 512, 512, 512):
        n += c * width * 9 + width + 2 * width + 1
        c = width
    return n + 512 * 49 * num_classes + num_classes + 2 * num_classes + 1


def test_preact_resnet18_shape_and_params():
    assert preact_resnet18_params(10) == 11_176_945 and preact_resnet18_params(100) == 11_223_295
    m = PreActResNet18(10)
    assert count_parameters(m) == preact_resnet18_params(10) == 11_176_945
    assert count_parameters(PreActResNet18(100, neuron="if")) == 11_223_295
    assert len(thresholds(m)) == 2 * 8 + 3
    with torch.no_grad():
        assert m(torch.randn(2, 2, 3, 32, 32)).shape == (1, 2, 10)
    assert isinstance(m.blocks[0].neuron1, DSRLIF) and isinstance(PreActResNet18(neuron="if").neuron1, DSRIF)


def test_preact_resnet18_imagenet_stem_shape_and_params():
    from torch import nn

    from snnlab.hybrid import ann_twin
    from snnlab.layers import TimeMerged

    assert preact_resnet18_imagenet_params(1000) == 11_691_660
    m = build_dsr_model("preact_resnet18", (3, 224, 224), 1000, neuron="if")  # the path of the ImageNet recipe
    assert isinstance(m, PreActResNet18) and m.stem_kind == "imagenet"
    assert count_parameters(m) == preact_resnet18_imagenet_params(1000) == 11_691_660
    assert len(thresholds(m)) == 1 + 2 * 8 + 3 and all(isinstance(n, DSRIF) for n in m.modules()
                                                        if isinstance(n, (DSRIF, DSRLIF)))
    # stem: conv7x7/2 pad 3 no bias - BN(64) - IF neuron - AvgPool2d(3, 2, 1)
    conv, bn = m.stem[0]
    assert isinstance(conv, nn.Conv2d) and (conv.kernel_size, conv.stride, conv.padding) == ((7, 7), (2, 2), (3, 3))
    assert conv.bias is None and isinstance(bn, nn.BatchNorm2d) and bn.num_features == 64
    assert isinstance(m.stem[1], DSRIF)
    pool = m.stem[2][0]
    assert isinstance(pool, nn.AvgPool2d) and (pool.kernel_size, pool.stride, pool.padding) == (3, 2, 1)
    # bias-free convs; 1x1 conv + BN shortcuts exactly where the stride or width changes
    assert all(c.bias is None for c in m.modules() if isinstance(c, nn.Conv2d))
    for i, b in enumerate(m.blocks):
        if i in (2, 4, 6):
            sc_conv, sc_bn = b.shortcut
            assert sc_conv.kernel_size == (1, 1) and sc_conv.stride == (2, 2) and isinstance(sc_bn, nn.BatchNorm2d)
        else:
            assert isinstance(b.shortcut, nn.Identity)
    assert isinstance(m.head.fc[-1], nn.BatchNorm1d) and m.head.fc[-2].out_features == 1000
    with torch.no_grad():
        assert m(torch.randn(2, 1, 3, 224, 224)).shape == (1, 1, 1000)  # T=2: BN1d needs T*B > 1 to train
        small = PreActResNet18(5, neuron="lif", input_shape=(3, 64, 64), stem="imagenet")
        assert small(torch.randn(2, 1, 3, 64, 64)).shape == (1, 1, 5)
        # the hybrid ANN twin: the same keys minus the 20 thresholds, and it runs
        twin = ann_twin(small)
        keys, twin_keys = set(small.state_dict()), set(twin.state_dict())
        assert twin_keys == {k for k in keys if not k.endswith(".v_th")} and len(keys - twin_keys) == 20
        assert twin(torch.randn(2, 1, 3, 64, 64)).shape == (1, 1, 5)
    twin_224 = ann_twin(m)
    assert set(twin_224.state_dict()) == {k for k in m.state_dict() if not k.endswith(".v_th")}


def test_preact_resnet18_stem_choice():
    # "auto": ImageNet stem only above 64x64; CIFAR-size inputs keep the CIFAR model (same keys and count)
    cifar_keys = set(PreActResNet18(10).state_dict())
    for shape in [(3, 32, 32), (3, 64, 64), (3, 64, 224)]:
        m = PreActResNet18(10, input_shape=shape)
        assert m.stem_kind == "cifar" and set(m.state_dict()) == cifar_keys, shape
    assert PreActResNet18(10, input_shape=(3, 65, 65)).stem_kind == "imagenet"
    assert PreActResNet18(10, stem="cifar", input_shape=(3, 224, 224)).stem_kind == "cifar"
    assert count_parameters(PreActResNet18(10, stem="cifar", input_shape=(3, 224, 224))) == 11_176_945
    assert count_parameters(PreActResNet18(10, stem="imagenet")) == preact_resnet18_imagenet_params(10)
    with pytest.raises(ValueError, match=r"unknown stem 'resnet' for PreActResNet18; available: 'auto', 'cifar', "
                                         r"'imagenet'"):
        PreActResNet18(10, stem="resnet")


def test_vgg11_shape_and_params():
    assert vgg11_params(10) == 9_476_327
    m = VGG11(10, in_channels=2)
    assert count_parameters(m) == 9_476_327 and len(thresholds(m)) == 9
    with torch.no_grad():
        assert m(torch.randn(2, 2, 2, 48, 48)).shape == (1, 2, 10)


def test_registry_and_kwargs():
    # DSR's own models, and the papers' surrogate-gradient ones with DSR neurons (tests/test_paper_models.py)
    assert set(DSR_MODELS) == {"tutorial", "tutorial1d", "preact_resnet18", "vgg11", "resnet19", "vggsnn", "spiking-resnet34",
                               "sew-resnet34"}
    m = build_dsr_model("tutorial", (2, 24, 24), 10, neuron="if", v_th=2.0, alpha=1.0)
    assert all(v == 2.0 for v in thresholds(m).values())
    assert all(n.alpha == 1.0 for n in m.modules() if isinstance(n, DSRIF))
    m = build_dsr_model("vgg11", (2, 48, 48), 10, v_th=0.6, alpha=0.5, v_th_lower_bound=1e-3, dt=0.1)
    assert all(n.dt == 0.1 for n in m.modules() if isinstance(n, DSRLIF))
    assert isinstance(make_dsr_neuron("if"), DSRIF) and isinstance(make_dsr_neuron(), DSRLIF)


@pytest.mark.parametrize("neuron", ["lif", "if"])
def test_training_step_reduces_loss(neuron):
    torch.manual_seed(0)
    m = DSRTutorialSNN((1, 8, 8), 4, neuron=neuron)
    x = torch.rand(4, 32, 1, 8, 8)
    y = torch.arange(32) % 4
    x = x + 0.5 * y.view(1, -1, 1, 1, 1) * (torch.arange(8) < 4).float().view(1, 1, 1, 1, 8)  # learnable signal
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        loss = sdt_loss(m(x), y)  # CE on the rate ([1, B, C], mean over the length-1 time axis)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert min(losses[-5:]) < 0.7 * losses[0]
    assert all(p.grad is not None for p in m.parameters())


# ------------------------------------------------------------------------------------------- (6) errors
@pytest.mark.parametrize("kwargs,match", [
    (dict(alpha=0.0), r"alpha .* \(0, 1\], got 0.0"),
    (dict(alpha=1.5), r"alpha .* \(0, 1\], got 1.5"),
    (dict(v_th=-1.0), r"v_th must be > 0, got -1.0"),
    (dict(v_th=0.001, v_th_lower_bound=0.01), r"v_th must be >= v_th_lower_bound = 0.01, got v_th=0.001"),
    (dict(v_th_lower_bound=0.0), r"v_th_lower_bound must be > 0, got 0.0"),
    (dict(v_th="6"), r"v_th must be a finite number"),
    (dict(v_th=float("nan")), r"v_th must be a finite number"),
    (dict(v_th_grad_scale=0.0), r"v_th_grad_scale \(threshold-gradient scale\) must be > 0, got 0.0"),
    (dict(v_th_grad_scale=-0.001), r"v_th_grad_scale \(threshold-gradient scale\) must be > 0, got -0.001"),
    (dict(v_th_grad_scale=float("nan")), r"v_th_grad_scale \(threshold-gradient scale\) must be a finite number > 0, "
                                         r"got nan"),
])
def test_bad_neuron_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DSRIF(**kwargs)
    with pytest.raises(ValueError, match=match):
        DSRLIF(**kwargs)


@pytest.mark.parametrize("kwargs,match", [
    (dict(dt=0.0), r"dt .* must be > 0, got 0.0"),
    (dict(tau=-1.0), r"tau .* must be > 0, got -1.0"),
    (dict(threshold_grad="exact"), r"threshold_grad must be one of \('code', 'paper'\), got 'exact'"),
    (dict(leak_arith="float32"), r"leak_arith must be one of \('code', 'double'\), got 'float32'"),
])
def test_bad_lif_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DSRLIF(**kwargs)


def test_bad_inputs():
    for n in (DSRIF(), DSRLIF()):
        with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\].*got shape \(5,\)"):
            n(torch.randn(5))
        with pytest.raises(ValueError, match="floating-point.*torch.int64"):
            n(torch.ones(3, 2, dtype=torch.long))
        with pytest.raises(TypeError, match="got list"):
            n([1.0, 2.0])
    with pytest.raises(ValueError, match="exactly one of beta or dt"):
        firing_rate(torch.rand(3, 2), weighted=True)
    with pytest.raises(ValueError, match=r"beta must be in \(0, 1\], got 1.5"):
        firing_rate(torch.rand(3, 2), weighted=True, beta=1.5)
    with pytest.raises(ValueError, match="only used with weighted=True"):
        firing_rate(torch.rand(3, 2), beta=0.9)


def test_bad_model_arguments():
    with pytest.raises(ValueError, match=r"unknown DSR model 'resnet'; available: 'tutorial', 'tutorial1d', 'preact_resnet18'"):
        build_dsr_model("resnet", (3, 32, 32), 10)
    with pytest.raises(ValueError, match=r"unknown DSR neuron 'alif'; available: 'lif', 'if'"):
        DSRTutorialSNN((1, 8, 8), 10, neuron="alif")
    with pytest.raises(ValueError, match=r"unexpected argument\(s\) 'dt', 'tau' for the DSR 'if' neuron"):
        DSRTutorialSNN((1, 8, 8), 10, neuron="if", tau=1.0, dt=0.1)
    with pytest.raises(ValueError, match=r"input_shape must be \(channels, height, width\), got \(8, 8\)"):
        DSRTutorialSNN((8, 8), 10)
    with pytest.raises(ValueError, match="at least 32x32"):
        VGG11(input_shape=(2, 24, 24))


def test_threshold_log_records_every_k_steps_and_resumes(tmp_path):
    from conftest import small_config
    from snnlab.dsr_models import ThresholdLog
    from snnlab.train import fit

    with pytest.raises(ValueError, match="every must be a positive integer"):
        ThresholdLog(every=0)
    cfg = small_config(tmp_path, method="dsr", neuron="lif", model="tutorial", epochs=2, max_batches=4, T=3)
    log = ThresholdLog(every=2)
    hist = fit(cfg, callbacks=[log])
    assert len(log.rows) == 1 + 8 // 2
    assert log.rows[-1] == thresholds(hist.model)
    model = DSRTutorialSNN((1, 8, 8), 10)                              # a change between records is seen
    state = type("S", (), {"model": model})()
    log2 = ThresholdLog(every=1)
    log2.on_fit_start(state)
    with torch.no_grad():
        model.head.neuron.v_th.fill_(0.5)
    log2.on_step_end(state)
    assert log2.rows[0]["head.neuron"] == pytest.approx(0.3) and log2.rows[1]["head.neuron"] == 0.5
    again = ThresholdLog(every=2)
    again.load_state_dict(log.state_dict())
    assert again.rows == log.rows and again.state_dict() == log.state_dict()


def test_dsr_tutorial1d_is_the_1d_tutorial_trunk_with_dsr_neurons_and_trains_on_mnist1d():
    import snnlab.data as D
    from snnlab.models import build_model
    from snnlab.models.dsr import DSRTutorialSNN1d, build_dsr_model, thresholds
    from snnlab.train import TrainConfig, fit

    m = build_dsr_model("tutorial1d", (1, 40), 10, v_th=0.6, alpha=0.5)
    assert isinstance(m, DSRTutorialSNN1d)
    ref = build_model("tutorial1d", (1, 40), 10)
    assert [p.shape for p in m.features.parameters() if p.dim()] == [p.shape for p in ref.features.parameters()
                                                                      if p.dim()]
    assert all(v == pytest.approx(0.6) for v in thresholds(m).values()) and len(thresholds(m)) == 3
    assert m(torch.rand(5, 2, 1, 40)).shape == (1, 2, 10)
    hist = fit(TrainConfig(dataset="mnist1d", model="tutorial1d", method="dsr", T=3, epochs=1, max_batches=2,
                           progress=False), bundle=D.load("mnist1d"))
    assert 0 <= hist.last["test_acc"] <= 1 and math.isfinite(hist.last["train_loss"])
