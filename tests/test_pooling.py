"""TimeMerged's fast 2 x 2 average pooling is bitwise ``avg_pool2d`` (forward, backward, double backward) and is
used only where it applies."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snnlab import layers
from snnlab.layers import TimeMerged, _AvgPool2x2
from snnlab.losses import sdt_loss
from snnlab.models import build_model


@pytest.fixture(params=["c", "torch"])
def pool_impl(request, monkeypatch):
    """Both implementations of _AvgPool2x2: the C kernel (snnlab.kernels.cpu_pool) and its PyTorch ops."""
    from snnlab.kernels import cpu_pool

    if request.param == "c":
        if not cpu_pool.available():
            pytest.skip(f"the C pool kernel did not build: {cpu_pool.error()}")
    else:
        monkeypatch.setattr(cpu_pool, "available", lambda: False)
    return request.param


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(3, 2, 4, 4), (5, 3, 6, 10), (1, 1, 2, 2), (512, 16, 24, 24)])
@pytest.mark.parametrize("kind", ["spikes", "normal", "wide"])
def test_bitwise_avg_pool2d_forward_and_backward(dtype, shape, kind, pool_impl):
    g = torch.Generator().manual_seed(sum(shape))
    x = {"spikes": (torch.rand(shape, generator=g) < 0.3).to(dtype),
         "normal": torch.randn(shape, generator=g, dtype=dtype),
         "wide": torch.randn(shape, generator=g, dtype=dtype) * torch.logspace(-20, 20, shape[-1], dtype=dtype)}[kind]
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = F.avg_pool2d(a, 2), _AvgPool2x2.apply(b)
    assert torch.equal(ya, yb)
    gy = torch.randn(ya.shape, generator=g, dtype=dtype)
    ya.backward(gy)
    yb.backward(gy)
    assert torch.equal(a.grad, b.grad)


def test_double_backward_equals_avg_pool2d(pool_impl):
    x = torch.randn(2, 3, 4, 6, dtype=torch.float64, requires_grad=True)
    v = torch.randn_like(x)

    def hvp(pool):
        loss = (pool(x) ** 3).sum()
        (g,) = torch.autograd.grad(loss, x, create_graph=True)
        return torch.autograd.grad((g * v).sum(), x)[0]
    assert torch.allclose(hvp(lambda t: F.avg_pool2d(t, 2)), hvp(_AvgPool2x2.apply), rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(_AvgPool2x2.apply, (x,)) and torch.autograd.gradgradcheck(_AvgPool2x2.apply, (x,))


def test_used_only_where_it_applies(monkeypatch):
    calls = []
    real = _AvgPool2x2.apply
    monkeypatch.setattr(_AvgPool2x2, "apply", lambda x: calls.append(tuple(x.shape)) or real(x))
    x = torch.rand(2, 3, 4, 6, 6)
    for pool, used in [(nn.AvgPool2d(2), True), (nn.AvgPool2d(2, 2), True), (nn.AvgPool2d(3, 2, padding=1), False),
                       (nn.AvgPool2d(2, ceil_mode=True), False), (nn.AvgPool2d(2, divisor_override=3), False),
                       (nn.AdaptiveAvgPool2d(1), False)]:
        calls.clear()
        out = TimeMerged(pool)(x)
        assert torch.equal(out, pool(x.flatten(0, 1)).unflatten(0, (2, 3)))
        assert bool(calls) == used, pool
    for y in (torch.rand(2, 3, 4, 5, 5), torch.rand(2, 3, 4, 6, 6).half(), torch.rand(2, 3, 4, 6, 12)[..., ::2]):
        calls.clear()
        TimeMerged(nn.AvgPool2d(2))(y)  # odd sizes, half precision, a strided view: the module itself
        assert not calls
    cl = torch.rand(6, 4, 6, 6).contiguous(memory_format=torch.channels_last).unflatten(0, (2, 3))
    calls.clear()
    TimeMerged(nn.AvgPool2d(2))(cl)
    assert not calls  # channels-last: the module itself
    hooked = nn.AvgPool2d(2)
    seen = []
    hooked.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    calls.clear()
    TimeMerged(hooked)(x)
    assert not calls and seen  # a hook on the pool still fires


def test_a_model_trains_the_same_with_and_without_it(monkeypatch):
    torch.manual_seed(0)
    model = build_model("tutorial", (2, 12, 12), 10, channels=(4, 6))
    x, y = (torch.rand(4, 3, 2, 12, 12) < 0.3).float(), torch.tensor([1, 4, 7])
    out = model(x)
    sdt_loss(out, y).backward()
    fast = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    monkeypatch.setattr(layers, "_FAST_POOL", False)
    ref = model(x)
    sdt_loss(ref, y).backward()
    assert torch.equal(out, ref)
    assert all(torch.equal(a, p.grad) for a, p in zip(fast, model.parameters()))
