"""The C kernel of the fused LIF (snnlab.kernels.cpu_lif): bitwise the PyTorch path's spikes and membranes,
its gradients up to rounding, for every shape, reset, detach flag and dtype; a clean fallback when it cannot be
built; malloc tuning (snnlab.cpu) on by default, off with SNNLAB_MALLOC_TUNE=0."""
import subprocess
import sys

import pytest
import torch

from snnlab import fused, surrogate as S
from snnlab.kernels import cpu_lif

needs_kernel = pytest.mark.skipif(not cpu_lif.available(), reason=f"the C kernel did not build: {cpu_lif.error()}")


@needs_kernel
@pytest.mark.parametrize("fire", [">=", ">"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("detach", [False, True])
@pytest.mark.parametrize("reset", ["hard", "subtract"])
@pytest.mark.parametrize("shape", S.FAMILY)
def test_c_kernel_equals_the_pytorch_path(shape, reset, detach, dtype, fire):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(7, 3, 50, generator=g, dtype=dtype) * 1.5
    x[2, 0, :5] = 1.0  # exactly at the threshold: H(0) = 1 (fire=">": 0)
    x[0, 1, :5] = 1.0
    gy, gm = torch.randn(x.shape, generator=g, dtype=dtype), torch.randn(x.shape, generator=g, dtype=dtype)
    out = {}
    for impl in ("c", "torch"):
        xx = x.clone().requires_grad_()
        s, m = fused.lif_fused(xx, tau=0.7, v_th=1.0, reset=reset, detach_reset=detach, surrogate=shape, width=1.3,
                               return_mem=True, impl=impl, fire=fire)
        torch.autograd.backward([s, m], [gy, 0.1 * gm])
        out[impl] = (s.detach(), m.detach(), xx.grad)
    (sc, mc, gc), (st, mt, gt) = out["c"], out["torch"]
    assert torch.equal(sc, st) and torch.equal(mc, mt)
    assert (sc[0, 1, :5] == (0.0 if fire == ">" else 1.0)).all()  # the ties at t = 0
    if type(S.get(shape)) in cpu_lif.BITWISE_SHAPES:
        assert torch.equal(gc, gt)  # bitwise the PyTorch path's gradients too
    else:  # sigmoid, gaussian: the kernel's exp (float32) or the C library's (float64) rounds otherwise
        tol = 1e-5 if dtype == torch.float32 else 1e-12
        torch.testing.assert_close(gc, gt, rtol=tol, atol=tol * gt.abs().max().item())


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", ["sigmoid", "gaussian"])
def test_exp_shapes_match_pytorch_over_the_whole_range(shape, dtype):
    """One step (dL/dI = dL/ds g(u - v_th)): the derivative from the centre to where it underflows, narrow and
    wide widths. Relative error within a few ulp where the value is normal, and exact zeros exactly where
    PyTorch's derivative is 0 (so chi, the share of non-zero gradients, is the same on both paths)."""
    x = torch.cat([torch.linspace(-300, 300, 200_001, dtype=torch.float64),
                   torch.logspace(-30, 2.5, 5000, dtype=torch.float64)]).to(dtype).reshape(1, -1) + 1.0
    gy = torch.ones_like(x)
    for width in (0.05, 1.0, 7.0):
        out = {}
        for impl in ("c", "torch"):
            xx = x.clone().requires_grad_()
            fused.lif_fused(xx, tau=0.5, v_th=1.0, surrogate=shape, width=width, impl=impl).backward(gy)
            out[impl] = xx.grad
        gc, gt = out["c"], out["torch"]
        assert torch.equal(gc == 0, gt == 0), f"{shape} w={width}: {int(((gc == 0) != (gt == 0)).sum())} zeros differ"
        tiny = torch.finfo(dtype).tiny
        normal = gt.abs() >= tiny / torch.finfo(dtype).eps  # away from the subnormal range
        rel = ((gc - gt).abs() / gt.abs())[normal]
        assert rel.max() <= 8 * torch.finfo(dtype).eps, f"{shape} w={width}: relative error {rel.max():.3g}"
        # against the derivative in float64: the kernel is as close to it as PyTorch is (both round k x first, so
        # far out in the tail the relative error grows like k|x| eps for both)
        exact = S.get(shape, width).grad(x.double() - 1.0)
        keep = normal & (exact.abs() >= tiny / torch.finfo(dtype).eps)
        err_c, err_t = (((g.double() - exact).abs() / exact.abs())[keep].max() for g in (gc, gt))
        assert err_c <= 1.5 * err_t + 4 * torch.finfo(dtype).eps, (shape, width, float(err_c), float(err_t))


@needs_kernel
def test_auto_picks_the_kernel_where_it_wins_and_takes_any_layout():
    x = torch.randn(4, 2, 3, 6, 6)
    assert fused._kernel(x, S.Triangle(), "auto") == "c" and fused._kernel(x, S.ATan(), "auto") == "c"
    assert fused._kernel(x, S.Sigmoid(), "auto") == "c" and fused._kernel(x, S.Gaussian(), "auto") == "c"
    assert fused._kernel(x.double(), S.Sigmoid(), "auto") == "torch"  # libm's scalar exp loses to PyTorch's here
    assert fused._kernel(x.double(), S.Triangle(), "auto") == "c"
    assert fused._kernel(x.half(), S.Triangle(), "auto") == "torch"
    assert fused._kernel(x, S.SmoothSigmoid(), "auto") == "torch"  # not a surrogate of the family
    strided = torch.randn(4, 2, 3, 6, 12)[..., ::2]
    a = fused.lif_fused(strided, impl="c")
    b = fused.lif_fused(strided, impl="torch")
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="impl='c' runs float32/float64 CPU tensors"):
        fused.lif_fused(x.half(), impl="c")


def test_falls_back_cleanly_when_it_cannot_build(tmp_path):
    code = ("import torch; from snnlab.kernels import cpu_lif; from snnlab import fused, surrogate as S;"
            "x = torch.randn(3, 4); print(cpu_lif.available(), fused._kernel(x, S.Triangle(), 'auto'));"
            "print(cpu_lif.error())")
    env = {"PATH": "/nonexistent", "SNNLAB_CACHE": str(tmp_path), "HOME": str(tmp_path), "CC": ""}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    first, second = r.stdout.splitlines()
    assert first == "False torch" and "no C compiler" in second
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**env, "PATH": "/usr/bin:/bin", "SNNLAB_CPU_KERNEL": "0"})
    assert r.stdout.splitlines()[0] == "False torch" and "SNNLAB_CPU_KERNEL=0" in r.stdout


def test_malloc_tuning_is_on_by_default_and_can_be_switched_off():
    code = "import snnlab; print(snnlab.cpu.malloc_tuned())"
    on = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip()
    off = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**__import__("os").environ, "SNNLAB_MALLOC_TUNE": "0"}).stdout.strip()
    import platform

    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert on == "(True, None)"
    assert off == "(False, 'switched off by SNNLAB_MALLOC_TUNE=0')"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("v_th", [1.0, 0.3, 1e-3, 7.25])
def test_compare_threshold_turns_strict_firing_into_one_comparison(dtype, v_th):
    """The kernels fire on u >= c: c = v_th for fire=">=", the next value above it for fire=">" (every u tested
    around the threshold, and NaN/inf)."""
    from snnlab.kernels import compare_threshold

    v = torch.tensor(v_th, dtype=dtype)
    up, down = torch.tensor(float("inf"), dtype=dtype), torch.tensor(float("-inf"), dtype=dtype)
    u = [v]
    for _ in range(4):
        u = [torch.nextafter(u[0], down), *u, torch.nextafter(u[-1], up)]
    u = torch.stack(u + [up, down, torch.tensor(float("nan"), dtype=dtype), torch.zeros((), dtype=dtype)])
    for strict in (False, True):
        c = torch.tensor(compare_threshold(v_th, dtype, strict), dtype=dtype)
        assert torch.equal(u >= c, u > v if strict else u >= v), (dtype, v_th, strict)
    assert compare_threshold(v_th, dtype, False) == float(v)
