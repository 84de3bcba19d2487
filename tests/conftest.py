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
