"""The notebook-04 helpers that live in snnlab.landscape: ``accuracy``, ``mean_loss``, ``full_hessian``,
``finite_difference_hvp``, ``rescale_convs`` and ``minimum_profile``, against closed forms and the library."""
from functools import partial

import numpy as np
import pytest
import torch
import conftest
from torch import nn

from snnlab import landscape as L
from snnlab.losses import sdt_loss, tet_loss
from snnlab.models import TutorialSNN, make_neuron

T = 4


@pytest.fixture(autouse=True)
def _one_thread():
    with L.limit_threads(1):
        yield


snn_batches = partial(conftest.snn_batches, b=6, dtype=torch.float64, T=T)


def calibrated(model, batches):
    """A few train-mode forwards give the BatchNorms running statistics of the data (the model stays in eval)."""
    with torch.no_grad():
        model.train()
        for x, _ in batches:
            model(x)
    return model.eval()


def smooth_snn(seed=0):
    torch.manual_seed(seed)
    neuron = partial(make_neuron, surrogate="smooth-sigmoid")    # a smooth forward: the true Hessian
    return calibrated(TutorialSNN((1, 8, 8), 10, channels=(2, 3), neuron=neuron).double(), snn_batches())


def state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}, [m.training for m in model.modules()]


def same_state(model, before):
    params, modes = before
    return all(torch.equal(v, params[k]) for k, v in model.state_dict().items()) and \
        [m.training for m in model.modules()] == modes


class Linear1(nn.Module):
    """``out[t, b] = W x[t, b]``: a linear map at every time step, ``[T, B, F] -> [T, B, C]``."""

    def __init__(self, w):
        super().__init__()
        self.lin = nn.Linear(w.shape[1], w.shape[0], bias=False).double()
        with torch.no_grad():
            self.lin.weight.copy_(w)

    def forward(self, x):
        return self.lin(x)


def test_accuracy_is_the_argmax_of_the_time_average():
    out = torch.tensor([[[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]],
                        [[-3.0, 0.0], [0.0, 1.0], [1.0, 0.0]]])       # [T=2, B=3, C=2]; sample 0 averages to class 1
    y = torch.tensor([0, 1, 0])
    assert float(L.accuracy(out, y)) == pytest.approx(2 / 3)          # sample 0 wrong, 1 and 2 right
    assert float(L.accuracy(out, torch.tensor([1, 1, 0]))) == 1.0
    model, batches = smooth_snn(), snn_batches()
    with torch.no_grad():
        direct = sum(float(L.accuracy(model(x), yb)) * len(yb) for x, yb in batches) / sum(len(yb) for _, yb in batches)
    assert L.loss_at(model, batches, L.accuracy) == pytest.approx(direct)   # usable as a "loss"


def test_mean_loss_is_the_union_mean_and_differentiable():
    model, batches = smooth_snn(), [snn_batches(n=1, b=4)[0], snn_batches(n=1, b=8, seed=1)[0]]
    loss = L.mean_loss(model, batches, sdt_loss)
    assert loss.requires_grad
    x = torch.cat([b[0] for b in batches], dim=1)
    y = torch.cat([b[1] for b in batches])
    with torch.no_grad():
        assert float(loss.detach()) == pytest.approx(float(sdt_loss(model(x), y)), rel=1e-12)  # batch-size weighted
    assert float(loss.detach()) == pytest.approx(L.loss_at(model, batches, sdt_loss), rel=1e-12)
    with pytest.raises(ValueError, match="empty"):
        L.mean_loss(model, [], sdt_loss)


def test_full_hessian_of_a_quadratic_is_the_closed_form():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3, 4, generator=g, dtype=torch.float64)
    x = torch.randn(T, 5, 4, generator=g, dtype=torch.float64)
    batches = [(x, torch.zeros(5, dtype=torch.long))]
    model = Linear1(w)
    # L = (1/n) sum_{t,b} ||W x_tb||^2  =>  H = blockdiag over the 3 rows of W of (2/n) X^T X  (row-major flattening)
    quad = lambda out, y: out.pow(2).sum() / len(y)                          # noqa: E731
    H = L.full_hessian(model, batches, quad)
    X = x.reshape(-1, 4)
    expected = torch.block_diag(*[2 / 5 * X.T @ X] * 3)
    assert H.shape == (12, 12) and torch.allclose(H, expected, rtol=1e-12, atol=1e-12)
    v = [torch.randn(3, 4, generator=g, dtype=torch.float64)]
    hv = L.hessian_vector_product(model, batches, quad, v)
    assert torch.allclose(H @ v[0].flatten(), hv[0].flatten(), rtol=1e-12, atol=1e-12)


def test_full_hessian_and_finite_difference_agree_with_the_hvp_on_a_smooth_snn():
    model, batches = smooth_snn(), snn_batches()
    model.train()                                             # the helpers evaluate in eval mode, then put it back
    before = state(model)
    params = [p for _, p in L.landscape_parameters(model)]
    g = torch.Generator().manual_seed(1)
    v = [torch.randn(p.shape, generator=g, dtype=p.dtype) for p in params]
    hv = L.hessian_vector_product(model, batches, sdt_loss, v)
    fd = L.finite_difference_hvp(model, batches, sdt_loss, v, eps=1e-5)
    assert all(torch.allclose(h, f, rtol=1e-5, atol=1e-9) for h, f in zip(hv, fd))
    H = L.full_hessian(model, batches, sdt_loss)
    assert H.shape == (sum(p.numel() for p in params),) * 2 and torch.allclose(H, H.T, atol=1e-12)
    assert torch.allclose(H @ torch.cat([t.flatten() for t in v]), torch.cat([h.flatten() for h in hv]), atol=1e-12)
    assert same_state(model, before)                          # weights bit for bit, train flags back
    with pytest.raises(ValueError, match="shapes"):
        L.finite_difference_hvp(model, batches, sdt_loss, v[:1])


def test_rescale_convs_keeps_the_function_and_scales_the_hessian():
    torch.manual_seed(0)
    model = calibrated(TutorialSNN((1, 8, 8), 10, channels=(4, 8)), snn_batches(dtype=torch.float32))
    batches = snn_batches(n=1, b=8, dtype=torch.float32)
    before = state(model)
    scaled = L.rescale_convs(model, 0.25)
    assert same_state(model, before) and not scaled.training
    with torch.no_grad():
        assert all(torch.equal(model(x), scaled(x)) for x, _ in batches)        # c = 1/4: bit for bit
    ratios = [float(a.weight.norm() / b.weight.norm()) for a, b in
              ((scaled.features[0][0][0], model.features[0][0][0]), (scaled.features[2][0][0], model.features[2][0][0]))]
    assert ratios == pytest.approx([0.25, 0.25])
    assert torch.equal(scaled.readout[1].weight, model.readout[1].weight)      # not followed by a BN: unchanged
    # the Hessian restricted to the conv weights scales by 1 / c^2 = 16 (smooth forward: no spike mismatch)
    smooth = smooth_snn()
    names = ["features.0.0.0.weight", "features.2.0.0.weight"]
    lam, _ = L.top_hessian_eigenvalue(smooth, snn_batches(), sdt_loss, iters=200, tol=1e-10, params=names)
    lam_s, _ = L.top_hessian_eigenvalue(L.rescale_convs(smooth, 0.25), snn_batches(), sdt_loss, iters=200, tol=1e-10,
                                        params=names)
    assert lam_s == pytest.approx(16 * lam, rel=1e-6)
    with pytest.raises(ValueError, match="positive"):
        L.rescale_convs(model, 0.0)
    with pytest.raises(ValueError, match="no convolution"):
        L.rescale_convs(Linear1(torch.ones(2, 2, dtype=torch.float64)), 0.5)


def test_minimum_profile_matches_the_single_measures():
    model, batches = smooth_snn(), snn_batches()
    test_batches = snn_batches(n=1, b=8, seed=5)
    losses = {"L_SDT": sdt_loss, "L_TET": partial(tet_loss, lamb=0.0)}
    before = state(model)
    prof = L.minimum_profile(model, batches, test_batches, losses, span=0.5, resolution=3, seed=0, alpha=0.2,
                             noise_dirs=2, hess_iters=3)
    assert list(prof) == ["test acc", "L_SDT at theta*", "L_SDT grid mean", "L_TET grid mean", "test acc at alpha=0.2",
                          "RMS output", "CE curvature 1 - sum p^2", "readout weight norm", "lambda_max L_SDT",
                          "lambda_max L_TET"]
    assert same_state(model, before)
    assert prof["test acc"] == L.loss_at(model, test_batches, L.accuracy)
    assert prof["L_SDT at theta*"] == pytest.approx(L.loss_at(model, batches, sdt_loss), rel=1e-12)
    surf = L.loss_surface_2d(model, batches, sdt_loss, *L._two_directions(model, 0), np.linspace(-0.5, 0.5, 3),
                             np.linspace(-0.5, 0.5, 3), progress=False)
    assert prof["L_SDT grid mean"] == pytest.approx(float(surf.mean()), rel=1e-9)
    assert prof["lambda_max L_TET"] == L.top_hessian_eigenvalue(model, batches, losses["L_TET"], iters=3, seed=0)[0]
    assert prof["readout weight norm"] == pytest.approx(float(model.readout[1].weight.norm()))
    assert 0 <= prof["CE curvature 1 - sum p^2"] <= 1 - 1 / 10 and prof["RMS output"] > 0
