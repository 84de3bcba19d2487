"""Torch's intra-op thread count for a block: ``limit_threads``, for many small forwards on a shared CPU."""
from __future__ import annotations

import torch

__all__ = ["limit_threads"]


class limit_threads:
    """Context manager: run torch with ``n`` intra-op threads inside the block, restore the count after.

    A landscape is hundreds of small forward passes. On a small CPU shared with other processes, torch's
    OpenMP threads spin-wait for each other at every operation, and one descheduled thread stalls all the
    others: measured on a busy 2-core machine, ``TutorialSNN`` forwards took 0.5 s with 2 threads and 7 ms
    with 1 (environment variable ``OMP_WAIT_POLICY=PASSIVE`` also avoids most of it). Use
    ``with landscape.limit_threads(1): ...`` there; on a dedicated machine torch's default is right.
    """

    def __init__(self, n: int | None = 1):
        self.n = n

    def __enter__(self):
        self.old = torch.get_num_threads()
        if self.n is not None:
            torch.set_num_threads(int(self.n))
        return self

    def __exit__(self, *exc):
        torch.set_num_threads(self.old)
        return False
