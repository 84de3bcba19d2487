"""SDT, standard direct training: cross-entropy of the time-averaged output, surrogate gradients through the spikes."""
from __future__ import annotations

from .base import Method, register

__all__ = ["SDT"]


class SDT(Method):
    """The baseline: ``losses.sdt_loss`` on the default model; no options of its own."""

    name = "sdt"


register(SDT())
