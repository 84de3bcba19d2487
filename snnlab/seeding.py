"""Randomness: seed every generator at once, and derive each epoch's seed so that a resumed run repeats exactly."""
from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["seed_everything", "epoch_seed"]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) so that a CPU run repeats exactly."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of (1-based) ``epoch`` of a run seeded with ``seed`` (epoch 0: before training, e.g. calibration)."""
    return (seed * 1_000_003 + epoch) % 2**63
