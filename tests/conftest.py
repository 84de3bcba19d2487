"""Shared fixtures: the digits bundle (loaded once) and a small, fast training config."""
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
