"""The C BatchNorm (snnlab.kernels.cpu_bn) that TimeMerged runs for nn.BatchNorm2d in training mode on the CPU:
bitwise nn.BatchNorm2d's outputs, running statistics and gradients over many steps and shapes, double backward
through PyTorch's op, used only where it applies, and a clean fallback when it cannot be used."""
import copy
import subprocess
import sys

import pytest
import torch
from torch import nn

from snnlab.kernels import cpu_bn
from snnlab.layers import TimeMerged

needs_kernel = pytest.mark.skipif(not cpu_bn.available(), reason=f"C BatchNorm not used here: {cpu_bn.error()}")


def _pair(c_in, c_out, **bn):
    torch.manual_seed(0)
    fast = TimeMerged(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out, **bn))
    return fast, copy.deepcopy(fast)


def _plain(tm, x):  # the same modules called directly (nn.BatchNorm2d's own forward and backward)
    T = x.shape[0]
    return tm[1](tm[0](x.flatten(0, 1))).unflatten(0, (T, -1))


@needs_kernel
@pytest.mark.parametrize("bn", [{}, {"momentum": None}, {"affine": False}, {"track_running_stats": False},
                                {"eps": 1e-3, "momentum": 0.3}])
@pytest.mark.parametrize("shape", [(4, 8, 2, 24, 24), (3, 5, 3, 7, 9), (2, 3, 1, 3, 3), (2, 2, 2, 2, 1)])
def test_bitwise_nn_batchnorm2d_over_training_steps(bn, shape):
    T, B, c_in, H, W = shape
    fast, ref = _pair(c_in, 13, **bn)
    opt_f, opt_r = (torch.optim.SGD(m.parameters(), lr=0.1) for m in (fast, ref))
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        x = torch.randn(shape, generator=g)
        gy = torch.randn(T, B, 13, H, W, generator=g)
        xf, xr = x.clone().requires_grad_(), x.clone().requires_grad_()
        yf, yr = fast(xf), _plain(ref, xr)
        assert torch.equal(yf, yr)
        yf.backward(gy)
        yr.backward(gy)
        assert torch.equal(xf.grad, xr.grad)
        for (name, p), q in zip(fast.named_parameters(), ref.parameters()):
            assert torch.equal(p.grad, q.grad), name
        for (name, a), b in zip(fast.named_buffers(), ref.buffers()):
            assert torch.equal(a, b), name  # running mean / var / num_batches_tracked
        opt_f.step()
        opt_r.step()
        opt_f.zero_grad()
        opt_r.zero_grad()


@needs_kernel
def test_a_trained_tutorial_model_is_bitwise_the_same_with_and_without_it(monkeypatch):
    from snnlab.losses import sdt_loss
    from snnlab.models import build_model

    def train(fast: bool):
        if not fast:
            monkeypatch.setattr(cpu_bn, "available", lambda: False)
        torch.manual_seed(0)
        model = build_model("tutorial", input_shape=(2, 12, 12), num_classes=10)
        opt = torch.optim.Adam(model.parameters(), 1e-2)
        g = torch.Generator().manual_seed(3)
        for _ in range(4):
            x = (torch.rand(6, 16, 2, 12, 12, generator=g) < 0.3).float()
            loss = sdt_loss(model(x), torch.randint(0, 10, (16,), generator=g))
            opt.zero_grad()
            loss.backward()
            opt.step()
        monkeypatch.undo()
        return model.state_dict()

    a, b = train(True), train(False)
    assert all(torch.equal(a[k], b[k]) for k in a)


@needs_kernel
def test_double_backward_goes_through_pytorch_and_matches():
    fast, ref = _pair(2, 4)
    x = torch.randn(2, 3, 2, 6, 6)
    out = []
    for m, f in ((fast, lambda z: fast(z)), (ref, lambda z: _plain(ref, z))):
        loss = (f(x) ** 3).sum()
        grads = torch.autograd.grad(loss, list(m.parameters()), create_graph=True)
        out.append(torch.autograd.grad(sum((g * g).sum() for g in grads), list(m.parameters())))
    assert all(torch.equal(a, b) for a, b in zip(*out))


def test_used_only_where_it_applies():
    bn = nn.BatchNorm2d(4)
    x = torch.randn(3, 4, 5, 5)
    assert cpu_bn.applies(bn, x) == cpu_bn.available()
    assert not cpu_bn.applies(bn, x.double())                                   # float64: PyTorch
    assert not cpu_bn.applies(bn, x.to(memory_format=torch.channels_last))      # not contiguous NCHW
    assert not cpu_bn.applies(bn, torch.randn(3, 4, 1, 1))                      # one value per plane
    assert not cpu_bn.applies(bn.eval(), x)                                     # eval: PyTorch
    bn.train()
    assert not cpu_bn.applies(nn.SyncBatchNorm(4), x)                           # a subclass: its own forward
    h = bn.register_forward_hook(lambda *a: None)
    assert not cpu_bn.applies(bn, x)                                            # hooks see the module run
    h.remove()
    # where it does not apply, batch_norm is the module itself (same errors too)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        cpu_bn.batch_norm(bn, torch.randn(1, 4, 1, 1))


def test_self_check_rejects_a_kernel_that_differs():
    if not cpu_bn.available():
        pytest.skip(cpu_bn.error())
    lanes = cpu_bn.lanes()
    assert cpu_bn.self_check(lanes) is None
    wrong = 16 if lanes == 8 else 8  # the other vector width sums the backward's planes in another order
    assert "differs from PyTorch's" in cpu_bn.self_check(wrong)


def test_switched_off_and_no_compiler_fall_back_to_pytorch(tmp_path):
    code = ("import torch; from snnlab.kernels import cpu_bn; from torch import nn;"
            "print(cpu_bn.available()); print(cpu_bn.error());"
            "print(cpu_bn.batch_norm(nn.BatchNorm2d(2), torch.ones(2, 2, 3, 3)).abs().sum().item())")
    env = {"PATH": "/usr/bin:/bin", "SNNLAB_CACHE": str(tmp_path), "HOME": str(tmp_path), "SNNLAB_FAST_BN": "0"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["False", "RuntimeError: switched off by SNNLAB_FAST_BN=0", "0.0"]
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**env, "SNNLAB_FAST_BN": "1", "PATH": "/nonexistent", "CC": ""})
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "False" and "no C compiler" in r.stdout
