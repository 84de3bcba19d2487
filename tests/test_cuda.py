"""The GPU cases (marker ``cuda``): Triton kernels against the reference loop, AMP training steps of every model,
a resumed GPU run. Skipped without CUDA; ``benchmarks/gpu_check.py`` runs them (``make gpu-check``), and its
dry run (``SNNLAB_GPU_CHECK_DRY=1``, in CI) runs the same code on the CPU so that it never rots."""
from __future__ import annotations

import os

import pytest
import torch

from conftest import small_config
from snnlab import surrogate as S
from snnlab import train
from snnlab.losses import sdt_loss
from snnlab.models import MODELS, build_model
from snnlab.models.dsr import DSR_MODELS, build_dsr_model
from snnlab.neurons import LIF, reference_backend

pytestmark = pytest.mark.cuda

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@pytest.fixture(scope="module")
def device():
    if torch.cuda.is_available():
        return torch.device("cuda")
    if os.environ.get("SNNLAB_GPU_CHECK_DRY") == "1":
        return torch.device("cpu")
    pytest.skip("needs CUDA (or SNNLAB_GPU_CHECK_DRY=1 for the CPU dry run)")


def _layout(x: torch.Tensor, layout: str) -> torch.Tensor:
    """``x [T, B, C, H, W]`` as the neuron meets it: contiguous, a channels-last conv output, or a strided view."""
    T, B, C, H, W = x.shape
    if layout == "channels_last":
        y = x.reshape(T * B, C, H, W).contiguous(memory_format=torch.channels_last).view(T, B, C, H, W)
        assert not y.is_contiguous()
        return y
    if layout == "strided":
        big = torch.zeros(T, B, C, H, 2 * W, dtype=x.dtype, device=x.device)
        big[..., ::2] = x
        return big[..., ::2]
    return x.contiguous()


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("reset", ["hard", "subtract"])
@pytest.mark.parametrize("shape", S.FAMILY)
def test_fused_kernel_matches_the_reference_loop(device, shape, reset, dtype, layout):
    torch.manual_seed(0)
    dt = DTYPES[dtype]
    x0 = (torch.randn(6, 3, 4, 5, 5, device=device) * 1.5).to(dt)
    gy = torch.randn(6, 3, 4, 5, 5, device=device).to(dt)
    runs = {}
    for backend in ("fused", "reference"):
        x = _layout(x0, layout).detach().requires_grad_()
        lif = LIF(tau=0.5, v_th=1.0, reset=reset, surrogate=shape, width=1.0, backend=backend)
        spk = lif(x)
        spk.backward(gy)
        runs[backend] = (spk.detach().float(), x.grad.float())
    (sf, gf), (sr, gr) = runs["fused"], runs["reference"]
    if dt == torch.float32:
        assert torch.equal(sf, sr)
        torch.testing.assert_close(gf, gr, rtol=1e-5, atol=1e-6)
    else:  # half types: the kernel may keep the membrane in float32 where the loop rounds at every step
        assert (sf != sr).float().mean() < 2e-2
        torch.testing.assert_close(gf, gr, rtol=5e-2, atol=5e-2)


def _shape(name: str) -> tuple:
    return {"vggsnn": (2, 32, 32), "tutorial": (2, 24, 24), "tutorial1d": (1, 40), "mlp": (1, 8, 8)}.get(name, (3, 32, 32))


@pytest.mark.parametrize("family, name", [("snn", n) for n in MODELS] + [("dsr", n) for n in DSR_MODELS])
def test_amp_training_step_of_every_model(device, family, name):
    torch.manual_seed(0)
    shape = _shape(name)
    model = (build_model(name, shape, 10) if family == "snn" else build_dsr_model(name, shape, 10)).to(device)
    amp = torch.float16 if device.type == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.rand(2, 2, *shape, device=device), torch.tensor([1, 3], device=device)
    with torch.autocast(device_type=device.type, dtype=amp):
        out = model(x)
        loss = sdt_loss(out.float(), y)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    assert out.shape[1:] == (2, 10) and torch.isfinite(loss)  # [T, B, C] (DSR's rate readout: [1, B, C])
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_resumed_gpu_run_ends_where_an_uninterrupted_one_does(device, tmp_path, digits):
    torch.backends.cudnn.deterministic = True
    kw = dict(device=str(device), amp=False, epochs=2, max_batches=3)
    full = train.fit(small_config(tmp_path / "full", **kw), bundle=digits)
    train.fit(small_config(tmp_path / "part", **kw), bundle=digits, stop_after=1)
    resumed = train.fit(small_config(tmp_path / "part", resume=True, **kw), bundle=digits)
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k


def test_fused_model_gradients_equal_the_reference_backend_on_the_device(device):
    torch.manual_seed(0)
    model = build_model("tutorial", (2, 12, 12), 10, channels=(4, 6)).to(device)
    x, y = torch.rand(4, 3, 2, 12, 12, device=device) * 2, torch.tensor([1, 4, 7], device=device)
    sdt_loss(model(x), y).backward()
    fused = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    with reference_backend():
        sdt_loss(model(x), y).backward()
    for a, p in zip(fused, model.parameters()):
        torch.testing.assert_close(a, p.grad, rtol=1e-4, atol=1e-5)
