"""DSR's hybrid training as an add-on: an ANN phase before the SNN, thresholds from its activations (snnlab.hybrid)."""
from __future__ import annotations

import json
from dataclasses import dataclass

from .. import hybrid as _hybrid
from ..data.bundle import epoch_split
from ..io import atomic_write_text
from ..models.dsr import thresholds
from ..optim import OPTIMIZERS
from ..options import option
from .base import Method, register

__all__ = ["Hybrid", "HybridOptions"]

_GROUP = "DSR hybrid training (--method dsr; DSR's ImageNet setting, see snnlab/hybrid.py)"
_ABOUT = ("train the model's ANN twin (ReLU in place of every DSR neuron) first, set each layer's threshold to a "
          "percentile of its ANN activations on training data, load the ANN's weights into the SNN, then train "
          "the SNN for --epochs. The ANN phase is written to <out>/ann/, the thresholds and both accuracies to "
          "<out>/hybrid.json and results.json; --resume never retrains the ANN once the SNN phase has started")


def _path(v) -> None:
    if not v.strip():
        raise ValueError(f"hybrid_ann_checkpoint must be a path (a string) or None, got {v!r}")


@dataclass
class HybridOptions:
    """Off unless ``ann_epochs > 0`` or ``ann_checkpoint`` is given (flat names ``hybrid_*``)."""

    ann_epochs: int = option(0, "epochs of the ANN phase before the SNN (0 = no hybrid training)", lo=0,
                             hint=" (0 = no ANN phase)", metavar="N", group=_GROUP)
    ann_checkpoint: str | None = option(None, "skip the ANN phase and start from this trained ANN, e.g. "
                                              "<earlier out>/ann/checkpoint.pt", kind=str,
                                        allowed="a path (a string)", check=_path, metavar="PATH", group=_GROUP)
    percentile: float = option(0.999, "threshold = the Q-quantile of each layer's post-ReLU ANN activations, Q in "
                                      "(0, 1]; 1 = the maximum (DSR: the 99.9th percentile)", lo=0, hi=1,
                               lo_open=True, hint=" (0.999 = the 99.9th percentile, as DSR)", metavar="Q",
                               group=_GROUP)
    calib_batches: int | None = option(None, "training batches used for the percentiles", kind=int, lo=1,
                                       metavar="N", group=_GROUP, default_help="all")
    ann_optimizer: str | None = option(None, "the ANN phase's optimizer", kind=str, choices=OPTIMIZERS,
                                       group=_GROUP, default_help="--optimizer")
    ann_lr: float | None = option(None, "the ANN phase's learning rate", kind=float, lo=0, lo_open=True,
                                  group=_GROUP, default_help="--lr")
    ann_weight_decay: float | None = option(None, "the ANN phase's weight decay", kind=float, lo=0, group=_GROUP,
                                            default_help="--weight-decay")
    ann_batch_size: int | None = option(None, "the ANN phase's and the calibration's batch size", kind=int, lo=1,
                                        metavar="N", group=_GROUP, default_help="--batch-size")


class Hybrid(Method):
    """Before the SNN's first epoch: train (or load) the ANN twin, calibrate the thresholds, copy the weights."""

    name = "hybrid"
    kind = "addon"
    Options = HybridOptions
    requires = ("dsr",)
    cli_group = (_GROUP, _ABOUT)
    sweep_grid: dict = {}  # no knob of its own: the method's grid

    def active(self, config) -> bool:
        o = self.options(config)
        return o.ann_epochs > 0 or o.ann_checkpoint is not None

    def label(self, config) -> str:
        o = self.options(config)
        return f"hybrid training (hybrid_ann_epochs={o.ann_epochs!r}, hybrid_ann_checkpoint={o.ann_checkpoint!r})"

    def validate(self, config) -> None:
        o = self.options(config)
        if o.ann_epochs > 0 and o.ann_checkpoint is not None:
            raise ValueError(f"give hybrid_ann_epochs (train an ANN) or hybrid_ann_checkpoint (use a trained one), "
                             f"not both: got {o.ann_epochs!r} and {o.ann_checkpoint!r}")
        ann_only = ("ann_optimizer", "ann_lr", "ann_weight_decay", "ann_batch_size")
        set_ = ["hybrid_" + k for k in ann_only if getattr(o, k) is not None]
        if set_ and o.ann_epochs == 0:
            raise ValueError(f"{', '.join(set_)} set but there is no ANN phase to use them (hybrid_ann_epochs=0)")
        if not self.active(config) and o.calib_batches is not None:
            raise ValueError("hybrid_calib_batches set but hybrid training is off (hybrid_ann_epochs=0 and no "
                             "hybrid_ann_checkpoint)")

    def prepare(self, run) -> None:
        # the ANN twin is copied before DDP's synchronised BN (which holds the process group) goes in
        run.scratch[self.name] = _hybrid.ann_twin(run.model)

    def before_training(self, run) -> dict:
        """Train (or load) the ANN twin, calibrate the thresholds on the training data (rank 0, sent to the others),
        load the ANN into the SNN; return the ANN's and the initialised SNN's test accuracy and the thresholds."""
        config, o, ann = run.config, self.options(run.config), run.scratch.pop(self.name)
        acfg = _hybrid.ann_config(config, run.bundle.temporal)
        if o.ann_checkpoint is not None:
            ann = _hybrid.load_ann(ann, o.ann_checkpoint).to(run.device)
            source = o.ann_checkpoint
        else:
            run.train(acfg, ann, phase="ANN ")  # trains ``ann`` in place, in <out>/ann
            source = str(run.out / "ann" / "checkpoint.pt") if run.out is not None else None
        pct, n = (_hybrid.calibrate(ann, config, run.bundle, run.device, progress=config.progress)
                  if run.is_main else (None, None))
        pct, n = run.broadcast((pct, n))
        _hybrid.init_snn_from_ann(run.model, ann, _hybrid.thresholds_from_percentiles(run.model, pct))
        T = run.T_at(1)
        info = {
            "ann": source, "ann_epochs": acfg.epochs if o.ann_checkpoint is None else None, "ann_T": acfg.T,
            "ann_test_acc": run.test_accuracy(ann, acfg.T),
            "percentile": o.percentile, "calib_batches": n, "activation_percentiles": pct,
            "thresholds": thresholds(run.model), "T": T,
            "snn_init_test_acc": run.test_accuracy(run.model, T),
            "split": epoch_split(config.split),  # what the two *_test_acc were measured on
        }
        if run.out is not None and run.is_main:
            atomic_write_text(run.out / "hybrid.json", json.dumps(info, indent=2) + "\n")
        return info


register(Hybrid())
