"""Put a model back exactly: ``_Restore`` snapshots weights, buffers and train/eval flags and restores them."""
from __future__ import annotations

import torch
from torch import nn


class _Restore:
    """Context manager: snapshot parameters, buffers and every module's training flag; restore them on exit
    (normal or exceptional), bit for bit, in place (so references to the parameters stay valid)."""

    def __init__(self, model: nn.Module):
        self.model = model

    def __enter__(self):
        m = self.model
        self.params = {n: p.detach().clone() for n, p in m.named_parameters()}
        self.buffers = {n: b.detach().clone() for n, b in m.named_buffers()}
        self.modes = [(mod, mod.training) for mod in m.modules()]
        return self

    def __exit__(self, *exc):
        with torch.no_grad():
            for n, p in self.model.named_parameters():
                p.copy_(self.params[n])
            for n, b in self.model.named_buffers():
                if n in self.buffers:
                    b.copy_(self.buffers[n])
        for mod, mode in self.modes:
            mod.training = mode
        return False
