"""DSR, differentiation on spike representation (Meng et al., CVPR 2022): its neurons, models, options and loss."""
from __future__ import annotations

from dataclasses import dataclass

from ..models.dsr import DSR_MODELS, build_dsr_model
from ..options import option
from .base import Method, register

__all__ = ["DSR", "DSROptions"]

DSR_KINDS = ("dsr-if", "dsr-lif")  #: the ``kind`` of snnlab.dsr's neurons
_GROUP = "DSR (--method dsr; see snnlab/dsr.py and docs/papers.md#dsr)"


@dataclass
class DSROptions:
    """The DSR neurons' settings (``snnlab.dsr``). None = the neuron's default from DSR's code."""

    v_th: float | None = option(None, "initial trainable threshold > 0", kind=float, lo=0, lo_open=True,
                                group=_GROUP, default_help="LIF 0.3, IF 6, as DSR's code")
    alpha: float | None = option(None, "fire at alpha*v_th, subtract v_th; in (0, 1]", kind=float, lo=0, hi=1,
                                 lo_open=True, aliases=("--alpha",), group=_GROUP, default_help="LIF 0.3, IF 0.5")
    tau: float = option(1.0, "LIF time constant > 0 (not TET's decay factor); beta = exp(-dt / tau)", lo=0,
                        lo_open=True, group=_GROUP)
    dt: float = option(0.05, "LIF time step > 0", lo=0, lo_open=True, aliases=("--dt",), group=_GROUP)
    v_th_bound: float | None = option(None, "lower bound of the trainable threshold, >= 0", kind=float, lo=0,
                                      group=_GROUP, default_help="LIF 5e-4, IF 0.01")
    threshold_grad: str = option("code", "LIF threshold gradient: 'code' multiplies by dt (official code), "
                                         "'paper' divides by dt (Eq. 14)", choices=("code", "paper"), group=_GROUP)
    leak_arith: str = option("code", "LIF leak arithmetic: 'code' computes beta = exp(-dt/tau), 1 - beta and the rate "
                                     "weights in float32 as the official code (bit for bit), 'double' in double "
                                     "precision as SpikingJelly (1 - beta = 0.04877057550 instead of 0.04877054691 at "
                                     "dt 0.05, tau 1: a few spikes flip)", choices=("code", "double"), group=_GROUP)
    v_th_grad_scale: float = option(1.0, "factor > 0 on the thresholds' gradient (IF and LIF, after the LIF's dt): 1 "
                                         "in the CIFAR code, 0.001 in the ImageNet code (its IF neuron; the ImageNet "
                                         "recipe sets it)", lo=0, lo_open=True, group=_GROUP)


class DSR(Method):
    """DSR's own models (``snnlab.models.dsr``) with ``DSRIF``/``DSRLIF`` neurons; rate cross-entropy."""

    name = "dsr"
    Options = DSROptions
    uses_surrogate = False
    models = tuple(DSR_MODELS)
    cli_group = (_GROUP, "")
    cli_takes = {"tau": "tau", "v_th": "v_th"}  # --tau / --v-th under --method dsr: DSR's own (older spelling)
    # the official code's CIFAR optimiser (SGD momentum 0.9, wd 5e-4, lr 0.1, cosine); its 400-iteration warm-up is
    # one epoch of CIFAR's 391 steps, so it is given in epochs: 400 steps would be 17 epochs of digits' 23
    defaults = {"optimizer": "sgd", "lr": 0.1, "weight_decay": 5e-4, "warmup_epochs": 1.0}
    # the learning rate, and the official code's T = 20 neuron constants against its low-latency T = 5 ones
    sweep_grid = {"lr": (0.025, 0.05, 0.1, 0.2, 0.4),
                  "neuron constants": ({"dsr_v_th": 0.3, "dsr_alpha": 0.3, "dsr_dt": 0.05, "dsr_v_th_bound": 5e-4},
                                       {"dsr_v_th": 0.6, "dsr_alpha": 0.5, "dsr_dt": 0.1, "dsr_v_th_bound": 1e-3})}

    def grid(self, config) -> dict:
        if config.neuron == "lif":
            return dict(self.sweep_grid)
        return {"lr": self.sweep_grid["lr"], "dsr_alpha": (0.3, 0.5, 1.0)}  # IF: the code's alpha 0.5, and around it

    def check_model(self, model, config) -> None:
        """DSR's gradient is the one of its neurons' spike representation: a given model must spike through DSR's
        neurons (``snnlab.dsr.DSRIF`` / ``DSRLIF``) only, or not at all (an ANN, as in the hybrid method's phase)."""
        from ..neuron_base import as_spiking, spiking_neurons

        other = {name: as_spiking(m).kind for name, m in spiking_neurons(model).items()}
        other = {name: kind for name, kind in other.items() if kind not in DSR_KINDS}
        if other:  # (a model with no spiking neuron at all is an ANN: the hybrid method's first phase trains one)
            raise ValueError(f"--method dsr trains DSR's own neurons ({', '.join(DSR_KINDS)}: snnlab.dsr.DSRIF / DSRLIF, "
                             f"as in snnlab.models.dsr); this model's other spiking neurons: "
                             f"{', '.join(f'{n!r} ({k})' for n, k in other.items())}. Train it with a surrogate-gradient "
                             f"method (sdt, tet, hybrid), or build it with DSR's neurons")

    def build_model(self, config, bundle):
        o = self.options(config)
        kw = {"v_th": o.v_th, "alpha": o.alpha, "v_th_lower_bound": o.v_th_bound}
        kw = {k: v for k, v in kw.items() if v is not None}
        kw.update(v_th_grad_scale=o.v_th_grad_scale)
        if config.neuron == "lif":
            kw.update(tau=o.tau, dt=o.dt, threshold_grad=o.threshold_grad, leak_arith=o.leak_arith)
        return build_dsr_model(config.model, bundle.input_shape, bundle.num_classes, neuron=config.neuron, **kw)


register(DSR())
