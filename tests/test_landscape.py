"""Loss landscapes and sharpness (snnlab.landscape): filter normalisation, exact surfaces, exact restoration,
Hessian eigenvalues against closed forms and full Hessians, double backward through the LIF/surrogate path."""
from functools import partial

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from matplotlib.contour import ContourSet  # noqa: E402
import conftest
from torch import nn  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

from snnlab import landscape as L  # noqa: E402
from snnlab.data import DataBundle  # noqa: E402
from snnlab.losses import sdt_loss, tet_loss  # noqa: E402
from snnlab.models import SpikingMLP, TutorialSNN, make_neuron  # noqa: E402

T = 4


@pytest.fixture(autouse=True)
def _one_thread():
    # small tensors: one thread is fastest and immune to OpenMP spin-waits on a shared CPU
    with L.limit_threads(1):
        yield
    plt.close("all")


def calibrate_bn(model, dtype):
    """Set BN running statistics from one batch (as after training), so that neurons fire in eval mode."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(snn_batches(n=1, b=16, seed=99, dtype=dtype)[0][0])
    for m in bns:
        m.momentum = 0.1
    return model


def tiny_snn(seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    return calibrate_bn(TutorialSNN((1, 8, 8), 10, channels=(4, 8)).to(dtype), dtype)


snn_batches = partial(conftest.snn_batches, b=12, dtype=torch.float32, T=T)


class LinearSeq(nn.Module):
    """Non-spiking model returning [T, B, C]: a linear (or 2-layer tanh) map applied at every step."""

    def __init__(self, n_in=5, n_out=3, hidden=None):
        super().__init__()
        if hidden:
            self.net = nn.Sequential(
                nn.Linear(n_in, hidden, bias=False), nn.Tanh(), nn.Linear(hidden, n_out, bias=False)
            )
        else:
            self.net = nn.Linear(n_in, n_out)

    def forward(self, x):  # x [T, B, n_in]
        return self.net(x)


def seq_batches(n=2, b=6, n_in=5, n_out=3, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(T, b + k, n_in, generator=g, dtype=dtype), torch.randint(0, n_out, (b + k,), generator=g))
            for k in range(n)]  # unequal batch sizes: tests the weighting


def state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_state(model, saved):
    now = model.state_dict()
    assert now.keys() == saved.keys()
    for k in saved:
        assert torch.equal(now[k], saved[k]), k


# ---------------------------------------------------------------------------------------------------------
# data


def test_fixed_batches_deterministic_static_and_temporal():
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(50, 1, 8, 8, generator=g), torch.arange(50) % 10
    bundle = DataBundle("digits", TensorDataset(x, y), TensorDataset(x[:20], y[:20]), 10, (1, 8, 8), False, None)
    a = L.fixed_batches(bundle, T=3, n_batches=3, batch_size=16, seed=5)
    b = L.fixed_batches(bundle, T=3, n_batches=3, batch_size=16, seed=5)
    c = L.fixed_batches(bundle, T=3, n_batches=3, batch_size=16, seed=6)
    assert [tuple(xb.shape) for xb, _ in a] == [(3, 16, 1, 8, 8)] * 3
    assert all(torch.equal(p[0], q[0]) and torch.equal(p[1], q[1]) for p, q in zip(a, b))
    assert not torch.equal(a[0][1], c[0][1])
    xb, yb = a[0]
    assert torch.equal(xb[0], xb[2]) and xb.is_contiguous()  # direct encoding: repeated T times
    # every sample is a real (x, y) pair of the split, no repeats
    idx = [int(torch.nonzero((x == xb[0, i]).flatten(1).all(1))[0]) for i in range(16)]
    assert torch.equal(y[idx], yb) and len(set(idx)) == 16
    # test split, fewer samples than asked: last batch is smaller
    t = L.fixed_batches(bundle, T=2, n_batches=2, batch_size=16, split="test")
    assert [len(yb) for _, yb in t] == [16, 4]
    # event data: [B, T, C, H, W] -> time-first
    ev = torch.rand(10, 5, 2, 4, 4)
    eb = DataBundle("dvs-digits", TensorDataset(ev, y[:10]), TensorDataset(ev, y[:10]), 10, (2, 4, 4), True, 5)
    (xe, ye), = L.fixed_batches(eb, None, n_batches=1, batch_size=10)
    assert xe.shape == (5, 10, 2, 4, 4)
    with pytest.raises(ValueError, match="T=5"):
        L.fixed_batches(eb, 3)
    with pytest.raises(ValueError, match="split"):
        L.fixed_batches(bundle, 2, split="val")


# ---------------------------------------------------------------------------------------------------------
# directions


def test_random_direction_filter_normalised_bn_bias_zero_and_seeded():
    model = tiny_snn()
    with torch.no_grad():  # make the filter norms differ a lot so the check means something
        for p in model.parameters():
            if p.dim() >= 2:
                p.mul_(torch.linspace(0.1, 3.0, p.shape[0]).view(-1, *[1] * (p.dim() - 1)))
    d = L.random_direction(model, seed=3)
    params = dict(model.named_parameters())
    assert d.keys() == params.keys()
    bn_ids = {id(p) for m in model.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters()}
    n_moved = 0
    for name, p in params.items():
        assert d[name].shape == p.shape and d[name].dtype == p.dtype
        if p.dim() >= 2:
            n_moved += 1
            assert torch.allclose(d[name].flatten(1).norm(dim=1), p.detach().flatten(1).norm(dim=1), rtol=1e-5)
        else:
            assert id(p) in bn_ids or name.endswith("bias")
            assert not d[name].any(), name
    assert n_moved == 3  # conv1, conv2, readout weight
    d_same = L.random_direction(model, seed=3)
    d_other = L.random_direction(model, seed=4)
    assert all(torch.equal(d[k], d_same[k]) for k in d)
    assert not torch.equal(d["readout.1.weight"], d_other["readout.1.weight"])
    # a generator continues its stream: two draws differ, and replay with the same seed
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    a1, a2 = L.random_direction(model, g1), L.random_direction(model, g1)
    assert torch.equal(a1["readout.1.weight"], L.random_direction(model, g2)["readout.1.weight"])
    assert not torch.equal(a1["readout.1.weight"], a2["readout.1.weight"])
    # ignore by name substring: the readout gets a zero direction too
    assert not L.random_direction(model, 0, ignore=("bn", "bias", "readout"))["readout.1.weight"].any()


# ---------------------------------------------------------------------------------------------------------
# surfaces


def test_surface_center_equals_loss_and_weights_modes_restored():
    model = SpikingMLP((1, 8, 8), 10, hidden=16)
    model.train()
    model.readout.eval()  # mixed modes must come back exactly as they were
    batches = snn_batches(n=2, b=10)
    before = state(model)
    d1, d2 = L.random_direction(model, 0), L.random_direction(model, 1)
    alphas, betas = np.linspace(-1, 1, 5), np.linspace(-0.5, 0.5, 3)
    Z = L.loss_surface_2d(model, batches, sdt_loss, d1, d2, alphas, betas, progress=False)
    assert Z.shape == (3, 5) and np.isfinite(Z).all()
    assert_same_state(model, before)
    assert model.training and not model.readout.training and model.hidden.training
    # loss at theta, computed by hand in eval mode
    model.eval()
    with torch.no_grad():
        ref = sum(float(sdt_loss(model(x), y)) * len(y) for x, y in batches) / sum(len(y) for _, y in batches)
    assert Z[1, 2] == pytest.approx(ref, rel=1e-6)
    assert L.loss_at(model, batches, sdt_loss) == pytest.approx(ref, rel=1e-6)
    assert not np.allclose(Z, Z[1, 2])  # the directions do move the loss
    # the 1-D surface is the beta = 0 row
    f = L.loss_surface_1d(model, batches, sdt_loss, d1, alphas)
    assert np.allclose(f, Z[1], rtol=1e-6)


def test_weights_restored_when_loss_fn_raises_mid_grid():
    model = tiny_snn()
    model.train()
    before = state(model)
    calls = {"n": 0}

    def flaky(out, y):
        calls["n"] += 1
        if calls["n"] == 7:
            raise RuntimeError("boom")
        return sdt_loss(out, y)

    d1, d2 = L.random_direction(model, 0), L.random_direction(model, 1)
    with pytest.raises(RuntimeError, match="boom"):
        L.loss_surface_2d(model, snn_batches(n=1, b=4), flaky, d1, d2, [-1, 0, 1], [-1, 0, 1], progress=False)
    assert calls["n"] == 7
    assert_same_state(model, before)
    assert all(m.training for m in model.modules())


def test_1d_surface_of_linear_model_matches_hand_computation():
    torch.manual_seed(0)
    model = LinearSeq().double()
    batches = seq_batches()
    d = L.random_direction(model, 2)
    assert not d["net.bias"].any()
    alphas = np.array([-2.0, -0.5, 0.0, 0.3, 1.7])
    f = L.loss_surface_1d(model, batches, tet_loss, d, alphas)
    W, bias, dW = model.net.weight.detach(), model.net.bias.detach(), d["net.weight"]
    n = sum(len(y) for _, y in batches)
    for a, fa in zip(alphas, f):
        ref = 0.0
        for x, y in batches:
            out = F.linear(x, W + a * dW, bias)  # [T, B, C]
            ce = sum(F.cross_entropy(out[t], y, reduction="sum") for t in range(T)) / T
            ref += float(ce)
        assert fa == pytest.approx(ref / n, rel=1e-10)
    assert not np.allclose(f, f[2])  # the direction does move the loss


# ---------------------------------------------------------------------------------------------------------
# Hessian


class Quadratic(nn.Module):
    """``0.5 x^T A x`` with ``x`` the parameter; returns it as a [1, 1, 1] 'output'."""

    def __init__(self, A):
        super().__init__()
        self.register_buffer("A", A)
        self.x = nn.Parameter(torch.randn(A.shape[0], 1, dtype=A.dtype, generator=torch.Generator().manual_seed(1)))

    def forward(self, _):
        return (0.5 * self.x.T @ self.A @ self.x).view(1, 1, 1)


def _sym(eigs, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(len(eigs), len(eigs), generator=g, dtype=torch.float64))
    return Q @ torch.diag(torch.tensor(eigs, dtype=torch.float64)) @ Q.T


def _sum_loss(out, y):
    return out.sum()


def test_hessian_top_eigenvalue_of_quadratic_is_exact():
    batches = [(torch.zeros(1), torch.zeros(1, dtype=torch.long))]
    model = Quadratic(_sym([5.0, 2.0, 1.0, -0.5, 0.1]))
    lam, hist = L.top_hessian_eigenvalue(model, batches, _sum_loss, iters=200, tol=1e-12)
    assert lam == pytest.approx(5.0, rel=1e-8)
    assert len(hist) < 200 and hist[-1] == lam  # stopped early on tol
    assert abs(hist[-1] - 5) < abs(hist[0] - 5)
    # documented: power iteration finds the largest-MAGNITUDE eigenvalue, with its sign
    lam_neg, _ = L.top_hessian_eigenvalue(Quadratic(_sym([-6.0, 2.0, 1.0])), batches, _sum_loss, iters=300, tol=1e-12)
    assert lam_neg == pytest.approx(-6.0, rel=1e-6)
    # params by name, the default tol stops early
    lam2, hist2 = L.top_hessian_eigenvalue(model, batches, _sum_loss, params=["x"], iters=50)
    assert lam2 == pytest.approx(5.0, rel=1e-2) and len(hist2) < 50


def test_hessian_top_eigenvalue_matches_full_hessian_of_small_net():
    torch.manual_seed(0)
    model = LinearSeq(n_in=4, n_out=3, hidden=5).double()
    batches = seq_batches(n=2, b=8, n_in=4, n_out=3, seed=3)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)  # near a minimum the Hessian is ~PSD with a clear top
    for _ in range(150):
        opt.zero_grad()
        sum(sdt_loss(model(x), y) for x, y in batches).backward()
        opt.step()
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    sizes = [p.numel() for p in model.parameters()]
    n_total = sum(len(y) for _, y in batches)

    def loss_of(flat):
        ps = {n: t.view(s) for n, t, s in zip(names, flat.split(sizes), shapes)}
        out = 0
        for x, y in batches:
            out = out + sdt_loss(torch.func.functional_call(model, ps, (x,)), y) * len(y)
        return out / n_total

    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    H = torch.autograd.functional.hessian(loss_of, flat)
    eig = torch.linalg.eigvalsh(H)
    assert eig.max() > 5 * abs(eig.min())  # the test's premise: the dominant eigenvalue is the top positive one
    lam, hist = L.top_hessian_eigenvalue(model, batches, sdt_loss, iters=500, tol=1e-11)
    assert lam == pytest.approx(float(eig.max()), rel=1e-6)
    # the Hessian-vector product itself, against the full Hessian
    v = torch.randn(flat.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    hv = L.hessian_vector_product(model, batches, sdt_loss, [t.view(s) for t, s in zip(v.split(sizes), shapes)])
    assert torch.allclose(torch.cat([h.flatten() for h in hv]), H @ v, rtol=1e-8, atol=1e-10)


def _full_hessian(model, batches, loss_fn):
    """The full Hessian of the batch-weighted eval-mode loss over landscape_parameters, by autograd.functional."""
    names = [n for n, _ in L.landscape_parameters(model)]
    params = dict(model.named_parameters())
    shapes, sizes = [params[n].shape for n in names], [params[n].numel() for n in names]
    n_total = sum(len(y) for _, y in batches)

    def loss_of(flat):
        ps = {n: t.view(s) for n, t, s in zip(names, flat.split(sizes), shapes)}
        return sum(loss_fn(torch.func.functional_call(model, ps, (x,)), y) * len(y) for x, y in batches) / n_total

    was = model.training
    model.eval()
    try:
        flat = torch.cat([params[n].detach().flatten() for n in names])
        return torch.autograd.functional.hessian(loss_of, flat), sizes, shapes
    finally:
        model.train(was)


def tiny_snn_with(surrogate, channels=(2, 3), seed=0):
    torch.manual_seed(seed)
    neuron = partial(make_neuron, surrogate=surrogate)
    return calibrate_bn(TutorialSNN((1, 8, 8), 10, channels=channels, neuron=neuron).double(), torch.float64)


def test_hessian_through_snn_power_iteration_matches_full_surrogate_hessian():
    model = tiny_snn_with("triangle")  # LIF, tau 0.5, hard reset, triangle gamma = 1 (TET)
    model.train()
    batches = snn_batches(n=2, b=8, dtype=torch.float64)
    before = state(model)
    with torch.no_grad():  # spikes do occur in both layers: the surrogate path is exercised
        model.eval()
        s1 = model.features[0](batches[0][0])
        s2 = model.features[2](model.features[1](s1))
        assert 0 < float(s1.mean()) < 1 and 0 < float(s2.mean()) < 1
        model.train()
    H, sizes, shapes = _full_hessian(model, batches, sdt_loss)
    assert H.abs().max() > 0
    assert torch.allclose(H, H.T, atol=1e-12)  # the surrogate Hessian is symmetric
    eig = torch.linalg.eigvalsh(H)
    dominant = float(eig[eig.abs().argmax()])
    lam, hist = L.top_hessian_eigenvalue(model, batches, sdt_loss, iters=300, tol=1e-10)
    assert np.isfinite(hist).all() and len(hist) < 300  # converged (stopped on tol)
    assert lam == pytest.approx(dominant, rel=1e-5)
    assert abs(hist[-1] - lam) < abs(hist[0] - lam)
    # default settings: a finite value near it, quickly
    lam20, hist20 = L.top_hessian_eigenvalue(model, batches, sdt_loss)
    assert np.isfinite(lam20) and len(hist20) <= 20 and lam20 == pytest.approx(dominant, rel=0.2)
    # H v against the matrix
    v = torch.randn(H.shape[0], dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    hv = L.hessian_vector_product(model, batches, sdt_loss, [t.view(s) for t, s in zip(v.split(sizes), shapes)])
    assert torch.allclose(torch.cat([h.flatten() for h in hv]), H @ v, rtol=1e-8, atol=1e-12)
    assert_same_state(model, before)
    assert model.training and all(p.requires_grad for p in model.parameters())


def _fd_hvp(model, batches, loss_fn, params, v, eps=1e-6):
    """Central difference of the (surrogate) gradient along v, eval mode."""
    n = sum(len(y) for _, y in batches)

    def grad_at(e):
        with torch.no_grad():
            for p, t in zip(params, v):
                p.add_(t, alpha=e)
        gs = [torch.zeros_like(p) for p in params]
        for x, y in batches:
            for acc, gr in zip(gs, torch.autograd.grad(loss_fn(model(x), y), params)):
                acc.add_(gr, alpha=len(y) / n)
        with torch.no_grad():
            for p, t in zip(params, v):
                p.sub_(t, alpha=e)
        return gs

    model.eval()
    return [(a - b) / (2 * eps) for a, b in zip(grad_at(eps), grad_at(-eps))]


def test_double_backward_through_lif_recurrence_matches_finite_differences():
    # smooth forward (TET's Table-2 sigmoid ablation): double backward is the true Hessian of the whole
    # multi-step network (recurrence, hard reset, BN, pooling), so it must match finite differences
    model = tiny_snn_with("smooth-sigmoid", channels=(4, 8))
    batches = snn_batches(n=2, b=6, dtype=torch.float64)
    params = [p for _, p in L.landscape_parameters(model)]
    g = torch.Generator().manual_seed(1)
    v = [torch.randn(p.shape, generator=g, dtype=p.dtype) for p in params]
    hv = L.hessian_vector_product(model, batches, sdt_loss, v)
    fd = _fd_hvp(model, batches, sdt_loss, params, v)
    assert any(float(h.abs().max()) > 1e-4 for h in hv)
    for h, f in zip(hv, fd):
        assert torch.allclose(h, f, rtol=1e-5, atol=1e-9)


def test_surrogate_hessian_is_the_second_surrogate_derivative():
    # one neuron, T = 1: L = sum_i c_i s(x_i), s = H(x - v_th): the surrogate Hessian is diag(c * g'(x - v_th))
    lif = make_neuron("lif", surrogate="triangle", width=1.0)
    x = torch.tensor([0.2, 0.7, 1.0 - 1e-3, 1.3, 1.9, 2.5], dtype=torch.float64).view(1, -1).requires_grad_()
    c = torch.linspace(0.5, 2.0, 6, dtype=torch.float64)
    (gr,) = torch.autograd.grad((lif(x)[0] * c).sum(), x, create_graph=True)
    (hv,) = torch.autograd.grad(gr.sum(), x)  # v = 1 -> the diagonal
    u = x.detach()[0] - 1.0
    expected = c * torch.where(u.abs() < 1, -torch.sign(u), torch.zeros_like(u))  # triangle slope, gamma = 1
    assert torch.allclose(hv[0], expected)
    # T = 2, hard reset: later membranes depend on earlier spikes, and double backward differentiates those
    # spike values through the surrogate too, so it differs from the finite-difference Jacobian of the
    # surrogate gradient (documented in top_hessian_eigenvalue)
    x2 = torch.tensor([[1.2, 0.6], [0.5, 0.9]], dtype=torch.float64)
    lif2 = make_neuron("lif", surrogate="sigmoid")

    def grad(z, create=False):
        z = z.clone().requires_grad_()
        return torch.autograd.grad(lif2(z).sum(), z, create_graph=create)[0], z

    gz, z = grad(x2, create=True)
    (hv2,) = torch.autograd.grad(gz.sum(), z)
    fd2 = (grad(x2 + 1e-6)[0] - grad(x2 - 1e-6)[0]) / 2e-6
    assert not torch.allclose(hv2, fd2, atol=1e-3)


def test_neuron_default_is_autograd_path():
    # double backward support relies on the neuron's plain-autograd recurrence: create_graph must work
    lif = make_neuron()
    x = (1.5 * torch.rand(T, 3, 5, dtype=torch.float64)).requires_grad_()
    (g,) = torch.autograd.grad(lif(x).sum(), x, create_graph=True)
    assert g.requires_grad


# ---------------------------------------------------------------------------------------------------------
# figure 2, plots, explorer


def _contour_sets(ax):
    return [c for c in ax.collections if isinstance(c, ContourSet)]


def test_plots_draw_what_they_say():
    a = np.linspace(-1, 1, 7)
    Z = np.add.outer(a**2, 2 * a**2)  # [betas, alphas]
    fig, ax = L.plot_contour(a, a, Z, levels=9, title="bowl")
    sets = _contour_sets(ax)
    assert sets and all(len(s.levels) == 9 for s in sets) and ax.get_title() == "bowl"
    fig, ax = L.plot_surface_3d(a, a, Z)
    assert ax.name == "3d"
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    assert any(isinstance(c, Poly3DCollection) for c in ax.collections)
    fig, ax = L.plot_surface_1d(a, {"SDT": a**2, "TET": 0.5 * a**2})
    assert len(ax.get_lines()) == 3 and np.allclose(ax.get_lines()[1].get_ydata(), 0.5 * a**2)  # 2 curves + x=0 line
    fig, ax = L.plot_hessian_convergence({"SDT": [1.0, 2.0, 2.1], "TET": [0.5, 0.6]})
    assert [len(line.get_xdata()) for line in ax.get_lines()] == [3, 2]


def test_compare_landscapes_and_grid_figure():
    models = {"A": tiny_snn(0), "B": tiny_snn(1)}
    losses = {"SDT": sdt_loss, "TET": partial(tet_loss, lamb=0)}
    batches = snn_batches(n=1, b=6)
    res = L.compare_landscapes(models, batches, losses, span=0.5, resolution=3, progress=False)
    assert res["models"] == ["A", "B"] and res["losses"] == ["SDT", "TET"]
    assert np.allclose(res["alphas"], [-0.5, 0, 0.5])
    for (m, l), Z in res["surfaces"].items():
        assert Z.shape == (3, 3)
        assert Z[1, 1] == pytest.approx(res["center"][(m, l)], rel=1e-6)
        assert Z[1, 1] == pytest.approx(L.loss_at(models[m], batches, losses[l]), rel=1e-6)
    # same seed -> same directions -> same surface as landscape_figure's
    d1, d2 = L._two_directions(models["A"], 0)
    Z = L.loss_surface_2d(models["A"], batches, sdt_loss, d1, d2, res["alphas"], res["betas"], progress=False)
    assert np.array_equal(Z, res["surfaces"][("A", "SDT")])
    # lemma L_SDT <= L_TET holds at every grid point
    for m in models:
        assert (res["surfaces"][(m, "SDT")] <= res["surfaces"][(m, "TET")] + 1e-6).all()
    fig, axes = L.plot_landscape_grid(res, kind="contour", levels=6)
    assert axes.shape == (2, 2)
    shared = {tuple(np.round(s.levels, 9)) for ax in axes.ravel() for s in _contour_sets(ax)}
    assert len(shared) == 1 and len(next(iter(shared))) == 6  # one shared colour scale
    fig3, axes3 = L.plot_landscape_grid(res, kind="3d")
    assert all(ax.name == "3d" for ax in axes3.ravel())
    assert len({ax.get_zlim() for ax in axes3.ravel()}) == 1
    summary = L.grid_summary(res)
    assert list(summary.index) == [(m, l) for m in ("A", "B") for l in ("SDT", "TET")]
    for (m, l), Z in res["surfaces"].items():
        assert summary.loc[(m, l), "grid mean"] == pytest.approx(Z.mean())
        assert summary.loc[(m, l), "grid max"] == Z.max()
        assert summary.loc[(m, l), "at theta*"] == res["center"][(m, l)]


def test_sharpness_table_matches_top_hessian_eigenvalue():
    batches = [(torch.zeros(1), torch.zeros(1, dtype=torch.long))]
    models = {"a": Quadratic(_sym([5.0, 2.0, 1.0])), "b": Quadratic(_sym([3.0, 1.0]))}
    table, hists = L.sharpness_table(models, batches, {"sum": _sum_loss}, iters=200, tol=1e-12)
    assert table.loc[("a", "sum"), "lambda_max"] == pytest.approx(5.0, rel=1e-8)
    assert table.loc[("b", "sum"), "lambda_max"] == pytest.approx(3.0, rel=1e-8)
    assert table.loc[("a", "sum"), "iterations"] == len(hists["a minimum, sum"])
    with pytest.raises(ValueError, match="need at least one model and one loss"):
        L.sharpness_table({}, batches, {"sum": _sum_loss})


def test_landscape_figure_and_explorer_build():
    model = tiny_snn()
    batches = snn_batches(n=1, b=4)
    for view in ("1d", "contour", "3d"):
        fig, ax = L.landscape_figure(model, batches, sdt_loss, span=0.5, resolution=3, view=view)
        assert fig is ax.figure
    with pytest.raises(ValueError, match="view"):
        L.landscape_figure(model, batches, sdt_loss, view="4d")
    box = L.landscape_explorer({"m": model}, batches, {"SDT": sdt_loss, "TET": tet_loss}, resolution=3)
    import ipywidgets as w

    assert isinstance(box, w.VBox)
    assert set(box.controls) >= {"model", "loss", "view", "span", "resolution"}
    first = box.last_figure  # the default view is drawn at creation: never an empty area
    assert first is not None and "SDT" in first.axes[0].get_title()
    box.controls["view"].value = "1d"
    box.controls["loss"].value = "TET"
    assert box.last_figure is first  # moving the controls recomputes nothing
    box.button.click()
    assert box.last_figure is not first
    assert "TET" in box.last_figure.axes[0].get_title()
    lazy = L.landscape_explorer({"m": model}, batches, {"SDT": sdt_loss}, resolution=3, compute_now=False)
    assert lazy.last_figure is None


# ---------------------------------------------------------------------------------------------------------
# package layout


def test_package_public_names_and_one_way_imports():
    import ast
    import importlib
    import pathlib

    public = {"fixed_batches", "landscape_parameters", "random_direction", "loss_at", "loss_surface_1d",
              "loss_surface_2d", "hessian_vector_product", "top_hessian_eigenvalue", "sharpness_table",
              "grid_summary", "plot_surface_1d", "plot_contour", "plot_surface_3d", "plot_hessian_convergence",
              "compare_landscapes", "plot_landscape_grid", "landscape_figure", "landscape_explorer", "VIEWS",
              "limit_threads", "accuracy", "mean_loss", "full_hessian", "finite_difference_hvp", "rescale_convs",
              "minimum_profile"}
    assert set(L.__all__) == public and all(hasattr(L, n) for n in public)
    assert callable(L._two_directions) and L.Batches is not None and L.LossFn is not None
    assert L.VIEWS == ("1d", "contour", "3d")
    pkg = pathlib.Path(L.__file__).parent
    graph = {}
    for f in pkg.glob("*.py"):
        if f.stem == "__init__":
            continue
        tree = ast.parse(f.read_text())
        doc = ast.get_docstring(tree)
        assert doc and doc.strip(), f"{f.name} has no module docstring"
        graph[f.stem] = {n.module.split(".")[0] for n in ast.walk(tree)
                         if isinstance(n, ast.ImportFrom) and n.level == 1 and n.module}
        assert importlib.import_module(f"snnlab.landscape.{f.stem}")
    done: set[str] = set()
    while len(done) < len(graph):  # peel off modules whose package imports are all done: fails on a cycle
        ready = {m for m, deps in graph.items() if m not in done and deps <= done}
        assert ready, f"import cycle among {sorted(set(graph) - done)}"
        done |= ready
    plot_imports = [n for n in ast.walk(ast.parse((pkg.parent / "plot.py").read_text()))
                    if isinstance(n, (ast.Import, ast.ImportFrom))]
    # snnlab.plot must not import the landscape package (landscape/plots.py imports snnlab.plot)
    assert not any("landscape" in (getattr(n, "module", None) or "") or any("landscape" in a.name for a in n.names)
                   for n in plot_imports)
