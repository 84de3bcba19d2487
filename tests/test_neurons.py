"""Multi-step neurons: closed-form recurrences, gradients against an unrolled reference, snnTorch parity."""
import re

import pytest
import snntorch as snn
import torch

from snnlab import surrogate as S
from snnlab.neurons import IF, LIF, lif_reference


def test_constant_input_closed_form():
    # tau = 0.5, I = 0.6: u = 0.6, 0.9, 1.05 -> spike, reset to 0, then repeats with period 3
    lif = LIF(tau=0.5, v_th=1.0, reset="hard")
    x = torch.full((9, 1), 0.6, dtype=torch.float64)
    spk, mem = lif.simulate(x)
    assert spk[:, 0].tolist() == [0, 0, 1] * 3
    assert torch.allclose(mem[:3, 0], torch.tensor([0.6, 0.9, 1.05], dtype=torch.float64))


def test_geometric_closed_form_without_spikes():
    # below threshold u[t] = I * (1 - tau^(t+1)) / (1 - tau)
    tau, I = 0.8, 0.1
    lif = LIF(tau=tau, v_th=10.0)
    x = torch.full((30, 2), I, dtype=torch.float64)
    _, mem = lif.simulate(x)
    t = torch.arange(30, dtype=torch.float64)
    assert torch.allclose(mem[:, 0], I * (1 - tau ** (t + 1)) / (1 - tau))


def test_if_subtract_counts_spikes():
    # IF with subtractive reset and constant input r*v_th fires floor((t+1) r) times up to step t
    neuron = IF(v_th=1.0, reset="subtract")
    r = 0.375  # exact in binary, so the cumulative sum has no rounding
    x = torch.full((50, 1), r, dtype=torch.float64)
    spk, _ = neuron.simulate(x)
    counts = spk[:, 0].cumsum(0)
    expected = torch.floor((torch.arange(50, dtype=torch.float64) + 1) * r)
    assert torch.equal(counts, expected)


@pytest.mark.parametrize("reset", ["hard", "subtract"])
@pytest.mark.parametrize("tau", [0.25, 0.5, 0.9, 1.0])
def test_matches_plain_python_reference(reset, tau):
    torch.manual_seed(0)
    x = torch.rand(25, 3, 4, dtype=torch.float64) * 1.5 - 0.2
    spk, mem = LIF(tau=tau, reset=reset).simulate(x)
    for b in range(3):
        for j in range(4):
            s_ref, m_ref = lif_reference(x[:, b, j].tolist(), tau=tau, reset=reset)
            assert spk[:, b, j].tolist() == s_ref
            assert torch.allclose(mem[:, b, j], torch.tensor(m_ref, dtype=torch.float64))


def unrolled_reference(x, tau, v_th, reset, detach_reset, width):
    """An explicit, independent unrolling with its own triangle-surrogate autograd function."""

    class Spike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, v):
            ctx.save_for_backward(v)
            return (v >= 0).to(v.dtype)

        @staticmethod
        def backward(ctx, g):
            (v,) = ctx.saved_tensors
            return g * torch.clamp(width - v.abs(), min=0) / width**2

    u, out = None, []
    for t in range(x.shape[0]):
        u = x[t] if u is None else tau * u + x[t]
        s = Spike.apply(u - v_th)
        out.append(s)
        r = s.detach() if detach_reset else s
        u = u * (1 - r) if reset == "hard" else u - v_th * r
    return torch.stack(out)


@pytest.mark.parametrize("reset", ["hard", "subtract"])
@pytest.mark.parametrize("detach_reset", [False, True])
def test_gradients_match_unrolled_reference(reset, detach_reset):
    torch.manual_seed(3)
    x = (torch.rand(12, 4, 6, dtype=torch.float64) * 1.4).requires_grad_()
    w = torch.randn(12, 4, 6, dtype=torch.float64)
    lif = LIF(tau=0.6, v_th=1.0, reset=reset, detach_reset=detach_reset, surrogate=S.Triangle(0.8))
    (lif(x) * w).sum().backward()
    g = x.grad.clone()
    x.grad = None
    (unrolled_reference(x, 0.6, 1.0, reset, detach_reset, 0.8) * w).sum().backward()
    assert torch.allclose(g, x.grad, rtol=1e-10, atol=1e-12)
    assert g.abs().sum() > 0


def test_detach_reset_changes_gradient():
    torch.manual_seed(3)
    x = (torch.rand(12, 4, 6, dtype=torch.float64) * 1.4).requires_grad_()
    grads = []
    for d in (False, True):
        x.grad = None
        LIF(tau=0.6, detach_reset=d)(x).sum().backward()
        grads.append(x.grad.clone())
    assert not torch.allclose(*grads)


def test_gradient_vs_finite_difference_on_smooth_path():
    # with no spike in the window, the membrane path is linear: d(sum mem)/dx is exact via autograd
    x = (torch.rand(6, 3, dtype=torch.float64) * 0.1).requires_grad_()
    _, mem = LIF(tau=0.7, v_th=5).simulate(x)
    mem.sum().backward()
    eps = 1e-6
    fd = torch.zeros_like(x)
    for idx in range(x.numel()):
        d = torch.zeros_like(x).view(-1)
        d[idx] = eps
        d = d.view_as(x)
        fd.view(-1)[idx] = (LIF(tau=0.7, v_th=5).simulate(x + d)[1].sum() - LIF(tau=0.7, v_th=5).simulate(x - d)[1].sum()) / (2 * eps)
    assert torch.allclose(x.grad, fd, atol=1e-8)


def test_stateless_between_calls():
    lif = LIF()
    x = torch.rand(5, 2, 3) * 2
    assert torch.equal(lif(x), lif(x))


def run_leaky(leaky, x):
    mem = leaky.init_leaky()
    spk, mems = [], []
    for t in range(x.shape[0]):
        s, mem = leaky(x[t], mem)
        spk.append(s)
        mems.append(mem)
    return torch.stack(spk), torch.stack(mems)


def test_parity_snntorch_leaky_hard_reset_no_delay():
    """snn.Leaky(reset_mechanism='zero', reset_delay=False) has exactly our hard-reset dynamics."""
    torch.manual_seed(0)
    x = (torch.rand(30, 8, 5) * 1.3).requires_grad_()
    ours = LIF(tau=0.5, v_th=1.0, reset="hard", surrogate=S.Triangle(1.0))
    spk = ours(x)
    (spk * torch.arange(5.0)).sum().backward()
    g_ours = x.grad.clone()
    x.grad = None
    leaky = snn.Leaky(beta=0.5, threshold=1.0, reset_mechanism="zero", reset_delay=False, spike_grad=S.Triangle(1.0))
    spk_ref, _ = run_leaky(leaky, x)
    (spk_ref * torch.arange(5.0)).sum().backward()
    assert torch.equal(spk, spk_ref)
    assert torch.allclose(g_ours, x.grad, atol=1e-6)


def test_parity_snntorch_leaky_if_subtract_default_delay():
    """With beta = 1 (IF) snnTorch's delayed, undecayed subtractive reset equals ours (reset detached)."""
    torch.manual_seed(1)
    x = (torch.rand(30, 8, 5) * 0.9).requires_grad_()
    ours = IF(v_th=1.0, reset="subtract", detach_reset=True, surrogate=S.ATan(0.5))
    spk, mem = ours.simulate(x)
    spk.sum().backward()
    g_ours = x.grad.clone()
    x.grad = None
    leaky = snn.Leaky(beta=1.0, threshold=1.0, reset_mechanism="subtract", spike_grad=S.ATan(0.5))
    spk_ref, mem_ref = run_leaky(leaky, x)
    spk_ref.sum().backward()
    assert torch.equal(spk, spk_ref)
    assert torch.allclose(mem, mem_ref, atol=1e-6)
    assert torch.allclose(g_ours, x.grad, atol=1e-6)


def test_snntorch_default_differs_with_leak():
    """Documented difference: for tau < 1 snnTorch does not decay the reset, so membranes diverge after a spike."""
    x = torch.tensor([[1.2], [0.5], [0.5], [0.5]])
    _, mem = LIF(tau=0.5, reset="subtract").simulate(x)
    _, mem_ref = run_leaky(snn.Leaky(beta=0.5, threshold=1.0, reset_mechanism="subtract"), x)
    # ours: 1.2 -> spike, u=0.2 -> 0.1+0.5=0.6 ; snnTorch: 0.6+0.5-1.0 = 0.1
    assert mem[1].item() == pytest.approx(0.6)
    assert mem_ref[1].item() == pytest.approx(0.1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"tau": 0.0}, "tau"),
        ({"tau": 1.5}, "tau"),
        ({"v_th": 0}, "v_th"),
        ({"reset": "zero"}, "reset must be one of"),
        ({"surrogate": "box"}, "unknown surrogate 'box'"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LIF(**kwargs)


def test_bad_input_shape():
    with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\].*\(5,\)"):
        LIF()(torch.rand(5))


def test_record_membrane():
    lif = LIF()
    x = torch.rand(4, 2, 3)
    assert lif.last_mem is None
    lif.record = True
    spk = lif(x)
    assert lif.last_mem.shape == x.shape and not lif.last_mem.requires_grad
    assert torch.equal(spk, (lif.last_mem >= 1.0).float())


def test_tet_preset_matches_hand_unrolled_reference():
    """make_neuron()'s defaults are TET's preset; spikes and gradients equal the paper's equations unrolled."""
    from snnlab.models import make_neuron

    n = make_neuron()
    assert (n.tau, n.v_th, n.reset, n.detach_reset, type(n.surrogate).__name__, n.surrogate.width) == (
        0.5, 1.0, "hard", False, "Triangle", 1.0)
    torch.manual_seed(7)
    x = (torch.randn(10, 4, 8, dtype=torch.float64) * 0.8 + 0.6).requires_grad_()
    w = torch.randn(10, 4, 8, dtype=torch.float64)
    spk = n(x)
    (spk * w).sum().backward()
    g = x.grad.clone()
    x.grad = None
    ref = unrolled_reference(x, 0.5, 1.0, "hard", False, 1.0)
    (ref * w).sum().backward()
    assert torch.equal(spk, ref) and spk.sum() > 0
    assert torch.allclose(g, x.grad, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------------------- strict firing (fire=">")
class OfficialZIF(torch.autograd.Function):
    """TET's official spike function, written out as github.com/brain-intelligence-lab/temporal_efficient_training
    models/layers.py's ``ZIF``: forward ``(input > 0).float()``, backward the triangle
    ``grad * (1 / gama) * (1 / gama) * (gama - |input|).clamp(min=0)``."""

    @staticmethod
    def forward(ctx, input, gama):
        out = (input > 0).float()
        L = torch.tensor([gama])
        ctx.save_for_backward(input, out, L)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        (input, out, others) = ctx.saved_tensors
        gama = others[0].item()
        grad_input = grad_output.clone()
        tmp = (1 / gama) * (1 / gama) * ((gama - input.abs()).clamp(min=0))
        grad_input = grad_input * tmp
        return grad_input, None


def official_lif_spike(x_bt, thresh=1.0, tau=0.5, gama=1.0):
    """The official ``LIFSpike.forward`` (same file) on a batch-first ``[B, T, ...]`` input: ``mem = mem * tau + x``,
    ``spike = ZIF(mem - thresh)``, hard reset ``mem = (1 - spike) * mem`` (not detached)."""
    mem = 0
    spike_pot = []
    T = x_bt.shape[1]
    for t in range(T):
        mem = mem * tau + x_bt[:, t, ...]
        spike = OfficialZIF.apply(mem - thresh, gama)
        mem = (1 - spike) * mem
        spike_pot.append(spike)
    return torch.stack(spike_pot, dim=1)


def _grid_input(shape=(8, 16, 8, 8, 4), seed=0):
    """Inputs on a 0.25 grid (TET's tau = 0.5 keeps every membrane on a grid too): many u == v_th exactly."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-4, 9, shape, generator=g).float() * 0.25


@pytest.mark.parametrize("backend", ["reference", "fused"])
def test_strict_firing_is_tets_official_zif_bit_for_bit(backend):
    x = _grid_input()
    gy = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    xo = x.transpose(0, 1).contiguous().requires_grad_()  # the code's [B, T, ...]
    so = official_lif_spike(xo)
    so.backward(gy.transpose(0, 1))
    xs = x.clone().requires_grad_()
    n = LIF(fire=">", backend=backend)  # TET's preset: tau 0.5, v_th 1, hard reset, triangle gamma 1
    assert n.uses_fused(xs) == (backend == "fused")
    ss = n(xs)
    ss.backward(gy)
    assert torch.equal(ss, so.detach().transpose(0, 1))
    if backend == "reference":  # the same autograd operations: the same gradients, bit for bit
        assert torch.equal(xs.grad, xo.grad.transpose(0, 1))
    else:  # the fused adjoint recurrence regroups the sums (snnlab.fused): equal to rounding
        torch.testing.assert_close(xs.grad, xo.grad.transpose(0, 1), rtol=1e-5, atol=1e-6)
    # and the default rule is not the code's on this grid
    assert not torch.equal(LIF(backend=backend)(x), ss.detach())


def test_default_firing_differs_from_strict_exactly_on_the_ties():
    x = _grid_input()
    s_ge, m_ge = LIF().simulate(x)
    s_gt, m_gt = LIF(fire=">").simulate(x)
    same = m_ge == m_gt  # the membranes agree until a neuron's first tie has fired under >= only
    tie = m_ge == 1.0
    assert torch.equal((s_ge != s_gt) & same, tie & same)  # where the membranes agree: spikes differ iff u == v_th
    counts = (int((s_ge != s_gt).sum()), int((tie & same).sum()), int(tie.sum()), s_ge.numel())
    # measured (seed 0): 1,536 of 32,768 neuron-steps fire differently, 1,367 of them at a tie with the same
    # membrane under both rules (the rest follow, after a reset that happened under >= only); 1,506 ties in all
    assert counts == (1536, 1367, 1506, 32768), counts


def test_strict_firing_plain_python_reference_and_errors():
    x = [0.5, 0.75, 1.0, 0.25, 0.5, 0.5]  # tau 0.5: u = 0.5, then 1.0 (a tie), then 1.0 again (>=) or 1.5 (>)
    assert lif_reference(x)[0] == [0.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    s_gt, m_gt = lif_reference(x, fire=">")
    assert s_gt == [0.0, 0.0, 1.0, 0.0, 0.0, 0.0] and m_gt[:3] == [0.5, 1.0, 1.5]
    t = torch.tensor(x, dtype=torch.float64).view(-1, 1)
    for backend in ("reference", "fused"):
        assert LIF(fire=">", backend=backend)(t)[:, 0].tolist() == s_gt
    assert IF(fire=">").fire == ">" and "fire='>'" in repr(IF(fire=">")) and "fire" not in repr(LIF())
    for bad in ("=>", "gt", None, True):
        with pytest.raises(ValueError, match=r"fire must be one of \('>=', '>'\).*got " + re.escape(repr(bad))):
            LIF(fire=bad)
    with pytest.raises(ValueError, match="fire='>' needs a surrogate with the Heaviside forward"):
        LIF(surrogate="smooth-sigmoid", fire=">")
    n = LIF(surrogate="smooth-sigmoid")
    n.fire = ">"  # reassigned after construction: refused at the forward pass
    with pytest.raises(ValueError, match="fire='>' needs a surrogate"):
        n(t)
    old = LIF()
    del old.fire  # a neuron pickled before the option existed fires on >=
    assert torch.equal(old(t), LIF()(t))


def test_set_fire_sets_every_lif_of_a_model():
    from snnlab.models import build_model
    from snnlab.neurons import set_fire

    model = build_model("tutorial", (1, 8, 8), 10)
    lifs = [m for m in model.modules() if isinstance(m, LIF)]
    assert set_fire(model, ">") == len(lifs) > 0 and all(m.fire == ">" for m in lifs)
    assert set_fire(model, ">=") == len(lifs) and all(m.fire == ">=" for m in lifs)
    with pytest.raises(ValueError, match="fire must be one of"):
        set_fire(model, "!=")
    lifs[0].surrogate = S.SmoothSigmoid(1.0)
    with pytest.raises(ValueError, match="needs a surrogate with the Heaviside forward"):
        set_fire(model, ">")
    assert all(m.fire == ">=" for m in lifs)  # nothing changed
