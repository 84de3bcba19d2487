"""The fused multi-step LIF (``snnlab.fused``, ``backend="fused"``) against the reference step loop.

Forward: bitwise the same spikes and membranes, for both firing rules (``fire=">="`` and the strict ``">"``).
Backward: the same gradients in float64 for every reset x detach x surrogate shape x firing rule, with gradient
arriving through ``spk`` and ``mem``, with the width changed between the forward and the backward pass, and the
same Hessian-vector products (double backward). The Triton kernels are checked on CPU with ``TRITON_INTERPRET=1``
in a subprocess (skipped when Triton does not import).
"""
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from snnlab import fused, models
from snnlab import surrogate as S
from snnlab.neurons import BACKENDS, IF, LIF, reference_backend


class Bumpy(S.Surrogate):
    """A user-defined shape (only ``_grad``): the fused node must call its ``.grad``."""

    name = "bumpy"

    def _grad(self, x, w):
        return torch.exp(-(x / w) ** 2) * (1 + 0.5 * torch.cos(3 * x)) / w


SHAPES = [S.Rectangle, S.Triangle, S.Sigmoid, S.ATan, S.Gaussian, Bumpy]


def _pair(tau, reset, detach, shape, width=0.9, **kw):
    make = LIF if tau != 1.0 else (lambda *a, **k: IF(*a[1:], **k))
    args = (tau, 1.0, reset, detach)
    return (make(*args, surrogate=shape(width), backend="fused", **kw),
            make(*args, surrogate=shape(width), backend="reference", **kw))


def _input(shape=(7, 3, 5), dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(*shape, generator=g, dtype=dtype) * 0.8 + 0.6)
    x.view(-1)[::11] = 1.0  # exact ties u = v_th at t = 0: H(0) = 1 on both backends
    return x


@pytest.mark.parametrize("fire", [">=", ">"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reset", ["hard", "subtract"])
@pytest.mark.parametrize("tau", [0.5, 0.83, 1.0])
def test_forward_bitwise_equal(dtype, reset, tau, fire):
    x = _input((12, 4, 3, 5), dtype)
    f, r = _pair(tau, reset, False, S.Triangle, fire=fire)
    sf, mf = f.simulate(x)
    sr, mr = r.simulate(x)
    assert torch.equal(sf, sr) and torch.equal(mf, mr)
    assert torch.equal(sf[0], (x[0] > 1.0 if fire == ">" else x[0] >= 1.0).to(dtype))  # the ties at t = 0
    assert 0 < sf.mean() < 1  # the case exercises both branches of the reset
    with torch.no_grad():  # the graph-free path (no saved membranes) too
        assert torch.equal(f(x), sr)


@pytest.mark.parametrize("fire", [">=", ">"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("detach", [False, True])
@pytest.mark.parametrize("reset", ["hard", "subtract"])
def test_gradients_equal_reference(shape, detach, reset, fire):
    x = _input()
    g = torch.Generator().manual_seed(1)
    gy, gm = torch.randn(2, *x.shape, generator=g, dtype=x.dtype)
    for tau in (0.7, 1.0):
        grads = []
        for neuron in _pair(tau, reset, detach, shape, fire=fire):
            xi = x.clone().requires_grad_()
            spk, mem = neuron.simulate(xi)
            ds, = torch.autograd.grad((spk * gy).sum(), xi, retain_graph=True)  # through the spikes only
            dm, = torch.autograd.grad((mem * gm).sum(), xi, retain_graph=True)  # through mem only
            dsm, = torch.autograd.grad((spk * gy).sum() + (mem * gm).sum(), xi)  # both
            grads.append((ds, dm, dsm))
        torch.testing.assert_close(grads[0], grads[1], rtol=1e-12, atol=1e-12)
        assert grads[1][0].abs().sum() > 0


@pytest.mark.parametrize("shape", [S.Triangle, S.Sigmoid])
def test_width_changed_between_forward_and_backward(shape):
    """The width in force at the forward pass is the one the backward uses (the chi controller changes it)."""
    x = _input()
    gy = torch.randn_like(x)
    grads = []
    for neuron in _pair(0.6, "hard", False, shape, width=0.5):
        xi = x.clone().requires_grad_()
        spk = neuron(xi)
        neuron.surrogate.width = 2.0
        grads.append(torch.autograd.grad((spk * gy).sum(), xi)[0])
        assert neuron.surrogate.width == 2.0
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-12, atol=1e-12)
    # and a fresh forward at the new width gives another gradient
    xi = x.clone().requires_grad_()
    new = torch.autograd.grad((_pair(0.6, "hard", False, shape, width=2.0)[0](xi) * gy).sum(), xi)[0]
    assert not torch.allclose(new, grads[0])


@pytest.mark.parametrize("shape,fire", [(S.Triangle, ">="), (S.Sigmoid, ">="), (S.Gaussian, ">="),
                                        (S.Triangle, ">")])
@pytest.mark.parametrize("detach", [False, True])
@pytest.mark.parametrize("reset", ["hard", "subtract"])
def test_hessian_vector_product_equal_reference(shape, detach, reset, fire):
    """Double backward through a weight layer + neuron, as ``snnlab.landscape`` computes H v."""
    torch.manual_seed(0)
    x = _input((6, 3, 4))
    lin = nn.Linear(4, 5).double()
    v = [torch.randn_like(p) for p in lin.parameters()]
    gy = torch.randn(6, 3, 5, dtype=torch.float64)
    hvps = []
    for neuron in _pair(0.7, reset, detach, shape, width=1.5, fire=fire):
        spk, mem = neuron.simulate(lin(x) + 0.5)
        loss = (spk * gy).sum() + 0.1 * (mem ** 2).sum()
        grads = torch.autograd.grad(loss, list(lin.parameters()), create_graph=True)
        hv = torch.autograd.grad(sum((g * u).sum() for g, u in zip(grads, v)), list(lin.parameters()))
        hvps.append(hv)
    torch.testing.assert_close(hvps[0], hvps[1], rtol=1e-10, atol=1e-10)
    assert any(h.abs().sum() > 0 for h in hvps[1])


def test_channels_last_and_expanded_gradient():
    """A channels-last [T*B, C, H, W] batch viewed as [T, B, C, H, W]; ``.sum()`` sends an expanded gradient."""
    x = _input((3 * 2, 4, 5, 5)).contiguous(memory_format=torch.channels_last).view(3, 2, 4, 5, 5)
    grads = []
    for neuron in _pair(0.5, "hard", False, S.Triangle):
        xi = x.detach().clone().requires_grad_()
        spk = neuron(xi)
        spk.sum().backward()
        grads.append((spk.detach(), xi.grad))
    assert torch.equal(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=1e-12, atol=1e-12)


def test_fused_saves_less_than_reference():
    from snnlab.memory import saved_tensor_bytes

    x = torch.randn(8, 2, 64, dtype=torch.float64)
    saved = {}
    for neuron in _pair(0.5, "hard", False, S.Triangle):
        model = nn.Sequential(nn.Linear(64, 64).double(), neuron)
        saved[neuron.backend] = saved_tensor_bytes(model, x)[1]
    assert saved["fused"] == x.numel() * 8  # the pre-reset membranes only
    assert saved["fused"] <= 0.5 * saved["reference"]


def test_backend_choice_and_fallback():
    assert LIF().backend == "auto" and LIF().uses_fused()
    assert IF().uses_fused() and not LIF(backend="reference").uses_fused()
    # every model builds neurons that train on the fused node by default
    assert models.make_neuron().uses_fused() and models.make_neuron("if").uses_fused()
    with reference_backend():
        assert not LIF().uses_fused() and LIF(backend="fused").uses_fused()
    assert LIF().uses_fused()
    # SmoothSigmoid has a sigmoid forward: "auto" falls back to the reference loop, "fused" says why not
    smooth = LIF(surrogate="smooth-sigmoid")
    assert not smooth.uses_fused()
    x = _input()
    assert torch.equal(smooth(x), LIF(surrogate="smooth-sigmoid", backend="reference")(x))
    with pytest.raises(ValueError, match="backend='fused' cannot run"):
        LIF(surrogate="smooth-sigmoid", backend="fused")(x)
    # integer input: auto -> reference
    assert not LIF().uses_fused(torch.zeros(2, 2, dtype=torch.int64))


@pytest.mark.parametrize("bad", ["Fused", "cuda", None, 1])
def test_bad_backend_is_a_clear_error(bad):
    with pytest.raises(ValueError, match=r"backend must be one of .*'auto'.*'fused'.*'reference'.*got") as e:
        LIF(backend=bad)
    assert repr(bad) in str(e.value)
    lif = LIF()
    lif.backend = bad  # assigned later: caught at the forward pass
    with pytest.raises(ValueError, match="backend must be one of"):
        lif(torch.zeros(2, 2))
    assert BACKENDS == ("auto", "fused", "reference")


def test_record_last_mem_with_fused():
    """chi's neuron-level signal reads ``last_mem``: the fused node records the same membranes."""
    x = _input()
    f, r = _pair(0.5, "hard", False, S.Triangle)
    for n in (f, r):
        n.record = True
        n(x.clone().requires_grad_())
    assert torch.equal(f.last_mem, r.last_mem) and not f.last_mem.requires_grad


def test_lif_fused_argument_errors():
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="reset must be one of"):
        fused.lif_fused(x, reset="soft")
    with pytest.raises(ValueError, match="impl must be one of"):
        fused.lif_fused(x, impl="cuda")
    with pytest.raises(ValueError, match="tau"):
        fused.lif_fused(x, tau=1.5)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        fused.lif_fused(torch.zeros(3))
    with pytest.raises(ValueError, match="Heaviside forward"):
        fused.lif_fused(x, surrogate="smooth-sigmoid")
    with pytest.raises(ValueError, match=r"fire must be one of \('>=', '>'\).*got 'gt'"):
        fused.lif_fused(x, fire="gt")


_TRITON_SCRIPT = textwrap.dedent(r"""
    import os
    os.environ["TRITON_INTERPRET"] = "1"
    import torch
    from snnlab import fused, surrogate as S

    g = torch.Generator().manual_seed(0)
    # dyadic inputs and tau = 0.5: every membrane is exact in fp32, so an FMA and a multiply-add agree bitwise,
    # and some membranes hit v_th exactly (H(0) = 1)
    x = (torch.randint(-8, 16, (5, 2, 3, 4, 4), generator=g) / 8.0).float()
    x = x.view(10, 3, 4, 4).contiguous(memory_format=torch.channels_last).view(5, 2, 3, 4, 4)
    gy = torch.randn(x.shape, generator=g)
    n = 0
    for reset, detach, fire in [(r, d, f) for r in ("hard", "subtract") for d in (False, True) for f in (">=", ">")]:
        for sg in (S.Rectangle(0.7), S.Triangle(1.2), S.Sigmoid(0.5), S.ATan(0.9), S.Gaussian(1.1)):
            out = {}
            for impl in ("triton", "torch"):
                xi = x.clone().requires_grad_()
                spk, mem = fused.lif_fused(xi, 0.5, 1.0, reset, detach, sg, return_mem=True, impl=impl, fire=fire)
                (spk * gy).sum().backward()
                out[impl] = (spk.detach(), mem.detach(), xi.grad)
            (st, mt, gt), (sr, mr, gr) = out["triton"], out["torch"]
            assert torch.equal(st, sr) and torch.equal(mt, mr), (reset, detach, sg, fire)
            assert st.stride() == x.stride()
            torch.testing.assert_close(gt, gr, rtol=1e-5, atol=1e-6)
            n += 1
    # the ties: the strict rule does not fire at u == v_th
    s_ge = fused.lif_fused(x, 0.5, 1.0, impl="triton")
    s_gt = fused.lif_fused(x, 0.5, 1.0, impl="triton", fire=">")
    assert torch.equal(s_ge[0] != s_gt[0], x[0] == 1.0) and (x[0] == 1.0).any()
    # bf16 with strict firing: the saved membranes are clamped around the strict comparison value
    xb = x.bfloat16().requires_grad_()
    sb = fused.lif_fused(xb, 0.5, 1.0, "hard", False, S.Triangle(1.0), impl="triton", fire=">")
    sb.backward(gy.bfloat16())
    xf = x.clone().requires_grad_()
    sf = fused.lif_fused(xf, 0.5, 1.0, "hard", False, S.Triangle(1.0), impl="torch", fire=">")
    sf.backward(gy.bfloat16().float())
    assert torch.equal(sb.float(), sf)
    torch.testing.assert_close(xb.grad.float(), xf.grad, rtol=2e-2, atol=2e-2)
    # bf16 in/out with fp32 state: the same spikes as fp32 on the same (exactly representable) inputs
    xb = x.bfloat16().requires_grad_()
    sb = fused.lif_fused(xb, 0.5, 1.0, "hard", False, S.Triangle(1.0), impl="triton")
    sb.backward(gy.bfloat16())
    assert sb.dtype == torch.bfloat16 and xb.grad.dtype == torch.bfloat16
    xf = x.clone().requires_grad_()
    sf = fused.lif_fused(xf, 0.5, 1.0, "hard", False, S.Triangle(1.0), impl="torch")
    sf.backward(gy.bfloat16().float())
    assert torch.equal(sb.float(), sf)
    torch.testing.assert_close(xb.grad.float(), xf.grad, rtol=2e-2, atol=2e-2)
    print("TRITON-OK", n)
""")


def test_triton_kernel_interpreted():
    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    r = subprocess.run([sys.executable, "-c", _TRITON_SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "TRITON-OK 40" in r.stdout


def test_model_gradients_equal_reference_backend():
    """A whole model (conv-BN-LIF blocks, TET loss) trains on the fused node by default; its parameter gradients
    equal those of the same model under ``reference_backend()`` (float64)."""
    from snnlab import losses

    torch.manual_seed(0)
    model = models.TutorialSNN((1, 8, 8), 10, channels=(4, 6)).double()
    assert all(m.uses_fused() for m in model.modules() if isinstance(m, LIF))
    x = torch.rand(4, 3, 1, 8, 8, dtype=torch.float64) * 3
    y = torch.tensor([1, 4, 7])
    grads = []
    for ctx in (torch.enable_grad, reference_backend):
        model.zero_grad()
        with ctx():
            losses.tet_loss(model(x), y, lamb=0.05).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-10, atol=1e-12)
    assert all(g.abs().sum() > 0 for g in grads[0])
