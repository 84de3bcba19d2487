"""Shared fixtures: the digits bundle (loaded once), a small, fast training config, the benchmark loader."""
import importlib.util
from pathlib import Path

import pytest

import snnlab
from snnlab.train import TrainConfig


@pytest.fixture(scope="session")
def digits():
    return snnlab.data.load("digits")


def small_config(tmp_path=None, **kw) -> TrainConfig:
    """A few batches of digits at T=2: seconds per run. ``tmp_path`` becomes ``out_dir``."""
    base = dict(dataset="digits", model="mlp", T=2, epochs=3, batch_size=128, lr=5e-3, progress=False,
                max_batches=4, out_dir=str(tmp_path) if tmp_path else None)
    base.update(kw)
    return TrainConfig(**base)


def load_benchmark(name: str):
    """Import ``benchmarks/<name>.py`` (not a package) as a module, so tests can call its ``main``."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def snn_batches(n: int = 2, b: int = 12, seed: int = 0, dtype=None, T: int = 4) -> list:
    """``n`` seeded batches of ``b`` random 8x8 images repeated over ``T`` steps, ``[T, b, 1, 8, 8]``, with labels
    (the landscape tests' data; ``dtype`` default float32)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        x = 2.5 * torch.rand(b, 1, 8, 8, generator=g, dtype=dtype or torch.float32)
        out.append((x.unsqueeze(0).expand(T, b, 1, 8, 8).contiguous(), torch.randint(0, 10, (b,), generator=g)))
    return out
