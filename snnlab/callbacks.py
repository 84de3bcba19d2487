"""Training callbacks: the hooks through which methods and tools observe and steer the training loop."""
from __future__ import annotations

__all__ = ["Callback", "State"]


class State:
    """What the loop shows its callbacks: ``model, optimizer, config, epoch, step, device, log`` and, after a
    backward, ``outputs`` and ``loss``. Entries added to ``log`` go into the epoch's metrics row."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


class Callback:
    """Observe training. ``state`` has ``model, optimizer, config, epoch, step`` and ``log`` (a dict whose
    entries are added to the epoch's metrics row)."""

    def on_fit_start(self, state) -> None: ...

    def on_after_backward(self, state) -> None: ...

    def on_step_end(self, state) -> None: ...

    def on_epoch_end(self, state) -> None: ...

    def state_dict(self) -> dict:
        """What a checkpoint must keep for an exact resume (default: nothing)."""
        return {}

    def load_state_dict(self, state: dict) -> None: ...
