"""TET, temporal efficient training (Deng et al., ICLR 2022): the loss at every time step plus an MSE regulariser."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from .. import losses as _losses
from ..neurons import set_fire
from ..options import option
from .base import Method, register

__all__ = ["TET", "TETOptions"]

_GROUP = "TET (--method tet)"


@dataclass
class TETOptions:
    """TET's loss ``(1 - lamb) * mean_t CE(O(t), y) + lamb * mean_t MSE(O(t), phi)`` (docs/papers.md#tet)."""

    lamb: float = option(0.001, "TET: weight of the MSE term in [0, 1] (paper: 0.05 CIFAR, 0.001 DVS)", lo=0, hi=1,
                         label="lamb (TET's MSE weight)", group=_GROUP)
    phi: float = option(1.0, "TET: target of the MSE term (= V_th)", group=_GROUP)
    strict_firing: bool = option(False, "TET: the LIF/IF neurons fire only on u > v_th, as the official code's ZIF "
                                        "((u - v_th > 0).float()); default False: on u >= v_th (snnlab's and "
                                        "SpikingJelly's rule); the two differ only where u == v_th", metavar="BOOL",
                                 group=_GROUP)


class TET(Method):
    """``losses.tet_loss`` with the config's ``lamb`` and ``phi``; the flat names have no prefix (``lamb``, ``phi``)."""

    name = "tet"
    Options = TETOptions
    prefix = ""
    cli_group = (_GROUP, "")
    # the official code's optimiser is the core default (Adam 1e-3, cosine); the knob: lambda, 0 = no MSE term,
    # the paper's DVS 0.001 and CIFAR 0.05
    sweep_grid = {"lr": (3e-3, 1e-2, 3e-2, 1e-1), "lamb": (0.0, 0.001, 0.05)}

    def build_model(self, config, bundle):
        model = super().build_model(config, bundle)
        if self.options(config).strict_firing and not set_fire(model, ">"):  # every snnlab.neurons.LIF / IF
            raise ValueError(f"strict_firing=True needs snnlab.neurons.LIF/IF neurons; model {config.model!r} "
                             f"with neuron {config.neuron!r} has none")
        return model

    def loss(self, config):
        o = self.options(config)
        return partial(_losses.tet_loss, lamb=o.lamb, phi=o.phi)


register(TET())
