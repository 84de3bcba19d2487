"""The papers' own settings: one recipe per row of the TET, DSR and chi tables (documented, with their
sources, in ``docs/papers.md``).

A recipe is the ``TrainConfig`` of one published result plus where every number comes from::

    snnlab recipes                                   # the list: name, paper, dataset, model, T, paper's top-1
    snnlab recipes --show tet-cifar10-resnet19-t4    # one recipe in full: config, assumptions, gaps
    snnlab train --recipe tet-cifar10-resnet19-t4    # the paper's run (needs the CIFAR-10 files on disk)
    snnlab train --recipe tet-cifar10-resnet19-t4 --epochs 1 --max-batches 5   # recipe, then explicit flags

In Python::

    cfg = snnlab.recipes.config("dsr-cifar10-preresnet18-t20", epochs=1)   # a validated TrainConfig

Every recipe says which of its values the papers (or their official code) give and which are snnlab's
assumptions (``assumed``: field -> why), and what the paper's setting needs that ``TrainConfig`` cannot express
yet (``needs``): a run of such a recipe is close to, not exactly, the paper's setting. The reported accuracy
(``paper_top1``, in %) is the paper's number, never a measurement: measured numbers live in the results
registry (``snnlab.registry``).

Tags in ``source`` follow docs/papers.md#source-tags: [paper] read in the paper, [code] read in the official code, [recall] a
published number not re-checked.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .config import TrainConfig, core_options
from .methods import flat_options

__all__ = ["Recipe", "RECIPES", "RUN_FIELDS", "names", "get", "config", "table", "differences"]

#: TrainConfig fields that say how or where a run is computed, not what it computes, and the seeds (another
#: seed is another sample of the same setting): a recipe never sets them and a run that changes them is still
#: the recipe's run. Derived from the options' declarations (``experiment=False`` or ``setting=False``).
RUN_FIELDS = frozenset(name for name, opt in {**core_options(), **flat_options()}.items()
                       if not (opt.experiment and opt.setting))


@dataclass(frozen=True)
class Recipe:
    """One row of a paper's table as a training config.

    Attributes:
        name: ``<paper>-<dataset>-<model>-t<T>``.
        paper: ``"TET"``, ``"DSR"`` or ``"chi"``.
        config: the ``TrainConfig`` fields that differ from snnlab's defaults (the paper's hyperparameters).
        paper_top1: the paper's reported top-1 accuracy in %.
        source: where ``paper_top1`` and the hyperparameters come from (table, section, code file).
        baseline: the baseline the paper compares with, as written in its table ("" if none).
        approx: True when the paper's number is given as "about" (e.g. read from a README).
        assumed: ``{field: why}`` for every value that neither the paper nor its code gives here.
        needs: what the paper's setting uses that snnlab's ``TrainConfig`` cannot express yet.
        notes: where the paper and the official code differ, and other caveats.
    """

    name: str
    paper: str
    config: dict
    paper_top1: float
    source: str
    baseline: str = ""
    approx: bool = False
    assumed: dict = field(default_factory=dict)
    needs: tuple = ()
    notes: str = ""

    @property
    def dataset(self) -> str:
        return self.config["dataset"]

    @property
    def model(self) -> str:
        return self.config["model"]

    @property
    def T(self) -> int:
        return self.config["T"]

    def train_config(self, **overrides) -> TrainConfig:
        """The recipe's ``TrainConfig`` with ``overrides`` applied on top, validated."""
        names_ = set(TrainConfig.field_names())
        bad = sorted(set(overrides) - names_)
        if bad:
            raise ValueError(f"unknown config field(s) {bad} for recipe {self.name!r}; allowed: {sorted(names_)}")
        return TrainConfig(**{**self.config, **overrides}).validate()

    def command(self, gpus: int = 1) -> str:
        """The shell command that runs this recipe on ``gpus`` GPUs of one machine."""
        if gpus <= 1:
            return f"snnlab train --recipe {self.name}"
        return f"torchrun --nproc_per_node={gpus} -m snnlab train --recipe {self.name}"


# ---------------------------------------------------------------------------------------------------------
# shared settings

# TET's neuron and surrogate [paper, code]: LIF u = 0.5 u + I, V_th = 1, hard reset not detached, triangle
# surrogate with gamma = 1 (snnlab's triangle width is gamma), MSE target phi = V_th = 1.
_TET_NEURON = dict(method="tet", neuron="lif", tau=0.5, v_th=1.0, reset="hard", detach_reset=False,
                   surrogate="triangle", width=1.0, phi=1.0)
# The only training script TET publishes (main_training_parallel.py, DVS-CIFAR10) [code]
_TET_CODE_OPT = dict(optimizer="adam", lr=1e-3, scheduler="cosine", batch_size=128, weight_decay=0.0)
_TET_OPT_ASSUMED = {
    "optimizer": "the paper gives no optimizer for this dataset; Adam as in TET's only script (DVS) [code]",
    "lr": "not given for this dataset; 1e-3 as in TET's DVS script [code]",
    "batch_size": "not given for this dataset; 128 as in TET's DVS script [code]",
    "scheduler": "not given for this dataset; cosine to 0 as in TET's DVS script [code]",
    "weight_decay": "not given for this dataset; 0 as in TET's DVS script (Adam without weight decay) [code]",
}
_BEST_VS_FINAL = ("The official scripts report the best test accuracy over all epochs; snnlab records the "
                  "final epoch's.")

# DSR's CIFAR defaults [code cifar/main_single_gpu.py; docs/papers.md#dsr-defaults]: SGD momentum 0.9, wd 5e-4, lr 0.1,
# cosine (per epoch) after a 400-iteration linear warm-up (the epoch's rate times (k + 1) / 400), 200 epochs,
# batch 128; LIF V_th 0.3, tau 1.0, dt 0.05, alpha 0.3, threshold bound 5e-4.
_DSR_LIF = dict(method="dsr", neuron="lif", optimizer="sgd", lr=0.1, weight_decay=5e-4, scheduler="cosine",
                warmup_iters=400, epochs=200, batch_size=128, dsr_v_th=0.3, dsr_tau=1.0, dsr_dt=0.05, dsr_alpha=0.3,
                dsr_v_th_bound=5e-4, dsr_threshold_grad="code", dsr_leak_arith="code", dsr_v_th_grad_scale=1.0)
_DSR_GRAD_NOTE = ("Threshold gradient: the paper's Eq. 14 divides by dt, the code multiplies by dt (the exact "
                  "gradient drives thresholds to 0, DSR issue #2); the recipe uses the code's "
                  "(dsr_threshold_grad='code').")


def _tet_cifar(dataset: str, T: int, top1: float, baseline: str) -> Recipe:
    tag = dataset.replace("-", "")
    return Recipe(
        name=f"tet-{tag}-resnet19-t{T}",
        paper="TET",
        config=dict(dataset=dataset, model="resnet19", T=T, lamb=0.05, epochs=300, **_TET_NEURON,
                    **_TET_CODE_OPT),
        paper_top1=top1,
        source=f"TET (Deng et al., ICLR 2022) table, {dataset.upper()} ResNet-19 T={T} [recall]; lambda = 0.05 on "
               "CIFAR and 300 epochs [paper]",
        baseline=baseline,
        assumed=dict(_TET_OPT_ASSUMED),
        needs=(),
        notes="TET publishes no CIFAR training script. Augmentation: RandomCrop(32, 4) + flip as TET's "
              "data_loaders.build_cifar [code] (snnlab.real_data). " + _BEST_VS_FINAL,
    )


def _tet_recipes() -> list[Recipe]:
    """TET's rows: ResNet-19 on CIFAR-10/100 (T = 2, 4, 6), the two ImageNet ResNet-34s, VGGSNN on DVS-CIFAR10."""
    out: list[Recipe] = []
    # --- TET, CIFAR-10 / CIFAR-100, ResNet-19, T = 2 / 4 / 6 --------------------------------------------
    for T, top1, base in ((2, 94.16, "tdBN 92.34"), (4, 94.44, "tdBN 92.92"), (6, 94.50, "tdBN 93.16")):
        out.append(_tet_cifar("cifar10", T, top1, base + "; ANN 94.97"))
    for T, top1 in ((2, 72.87), (4, 74.47), (6, 74.72)):
        out.append(_tet_cifar("cifar100", T, top1, "ANN 75.35"))
    # --- TET, ImageNet ------------------------------------------------------------------------------------
    for model, T, top1, base, arch in (("spiking-resnet34", 6, 64.79, "tdBN 63.72", "Spiking-ResNet-34"),
                                       ("sew-resnet34", 4, 68.00, "SEW 67.04", "SEW-ResNet-34")):
        out.append(Recipe(
            name=f"tet-imagenet-{model.replace('-', '')}-t{T}",
            paper="TET",
            config=dict(dataset="imagenet", model=model, T=T, lamb=0.001, epochs=120, **_TET_NEURON,
                        **_TET_CODE_OPT),
            paper_top1=top1,
            source=f"TET table, ImageNet {arch} T={T} [paper]; lambda = 0.001 on ImageNet and 120 epochs [paper]",
            baseline=base,
            assumed=dict(_TET_OPT_ASSUMED),
            needs=(),
            notes="TET publishes no ImageNet training script. Augmentation: RandomResizedCrop(224) + flip as "
                  "TET's data_loaders.build_imagenet [code]. " + _BEST_VS_FINAL,
        ))
    # --- TET, DVS-CIFAR10, VGGSNN, T = 10 -------------------------------------------------------------------
    out.append(Recipe(
        name="tet-dvscifar10-vggsnn-t10",
        paper="TET",
        config=dict(dataset="dvs-cifar10", model="vggsnn", T=10, lamb=0.001, epochs=150, seed=1000,
                    **_TET_NEURON, **_TET_CODE_OPT),
        paper_top1=83.17,
        source="TET table, DVS-CIFAR10 VGGSNN T=10 [paper]; lambda = 0.001 [paper]; Adam lr 1e-3, cosine, batch "
               "128, seed 1000, 150 epochs: defaults of main_training_parallel.py [code]",
        baseline="SDT 77.4 (same augmentation)",
        assumed={},
        needs=(),
        notes="Data: 10 frames of equal event count, 128 -> 48 px, 900/100 per class, flip + roll by up to 5 px "
              "(snnlab.real_data, as TET's code). " + _BEST_VS_FINAL,
    ))
    return out


def _dsr_cifar_recipes() -> list[Recipe]:
    """DSR's CIFAR rows: PreAct-ResNet-18 on CIFAR-10/100 at T = 20, and the low-latency T = 5 one."""
    out: list[Recipe] = []
    # --- DSR ------------------------------------------------------------------------------------------------
    for dataset, top1 in (("cifar10", 95.40), ("cifar100", 78.50)):
        out.append(Recipe(
            name=f"dsr-{dataset}-preresnet18-t20",
            paper="DSR",
            config=dict(dataset=dataset, model="preact_resnet18", T=20, **_DSR_LIF),
            paper_top1=top1,
            source=f"DSR (Meng et al., CVPR 2022) table, {dataset.upper()} PreAct-ResNet-18 T=20 [recall, confirmed "
                   "in a later paper's table]; hyperparameters: cifar/main_single_gpu.py defaults, LIF [code]",
            baseline="",
            assumed={},
            needs=(),
            notes="The official README trains the LIF model with the script's defaults (model "
                  "preresnet.resnet18_lif); an IF variant uses V_th 6, alpha 0.5, bound 0.01. " + _DSR_GRAD_NOTE
                  + " " + _BEST_VS_FINAL,
        ))
    out.append(Recipe(
        name="dsr-cifar10-preresnet18-t5",
        paper="DSR",
        config=dict(dataset="cifar10", model="preact_resnet18", T=5,
                    **{**_DSR_LIF, "lr": 0.05, "dsr_v_th": 0.6, "dsr_alpha": 0.5, "dsr_v_th_bound": 1e-3,
                       "dsr_dt": 0.1}),
        paper_top1=94.45,
        approx=True,
        source="DSR code README, low latency: LIF at T=5, lr 0.05, V_th 0.6, alpha 0.5, bound 1e-3, dt 0.1, "
               "'about 94.45' [code README]",
        assumed={"epochs, batch_size, weight_decay": "not given for the T=5 setting; the CIFAR defaults "
                                                     "(200, 128, 5e-4) [code]"},
        needs=(),
        notes=_DSR_GRAD_NOTE,
    ))
    return out


def _dsr_dvs_recipes() -> list[Recipe]:
    """DSR's DVS-CIFAR10 row: VGG-11 at T = 20, with DSR's own preprocessing."""
    out: list[Recipe] = []
    out.append(Recipe(
        name="dsr-dvscifar10-vgg11-t20",
        paper="DSR",
        # DSR's own CIFAR10-DVS preprocessing (snnlab.real_data, preprocess="dsr"): SpikingJelly-style frames
        # (equal event counts, remainder in the last frame, raw counts), Resize to 48 without antialiasing,
        # RandomCrop(48, padding=4); split_ratio=0.9 = files 0..899 of each class train, 900..999 test [code]
        config=dict(dataset="dvs-cifar10", model="vgg11", T=20, **{**_DSR_LIF, "lr": 0.05, "epochs": 300},
                    data_options={"preprocess": "dsr", "train_per_class": 900}),
        paper_top1=77.27,
        source="DSR table, DVS-CIFAR10 VGG-11 [recall]; T = 20 (code); README command: vgg.vgg11_lif --lr=0.05 "
               "--epochs=300, other values the script's defaults [code]; data: main_single_gpu.py's 'CIFAR10DVS' "
               "branch and cifar/utils/cifar10_dvs.py (split_by='number', normalization=None, Resize([48, 48]), "
               "RandomCrop(48, padding=4), split_ratio=0.9) [code]",
        assumed={},
        needs=(),
        notes=_DSR_GRAD_NOTE,
    ))
    return out


def _dsr_imagenet_recipes() -> list[Recipe]:
    """DSR's ImageNet row: hybrid-trained PreAct-ResNet-18 with IF neurons at T = 50."""
    out: list[Recipe] = []
    out.append(Recipe(
        name="dsr-imagenet-preresnet18-t50",
        paper="DSR",
        # SNN phase: imagenet/main.py's defaults (the README's SNN command sets none of these) [code]; ANN phase:
        # the README's ANN command (SGD, lr 0.1, wd 1e-4, batch 256) with the script's 90 epochs [code]
        config=dict(dataset="imagenet", model="preact_resnet18", T=50, method="dsr", neuron="if",
                    optimizer="adam", lr=1e-3, weight_decay=0.0, scheduler="cosine", warmup_iters=5000,
                    batch_size=144, epochs=90, dsr_v_th=6.0, dsr_alpha=0.5, dsr_v_th_bound=0.01,
                    dsr_v_th_grad_scale=0.001,  # imagenet/neuron.py IFFunction: torch.sum(Vth_grad) * 0.001 [code]
                    hybrid_ann_epochs=90, hybrid_ann_optimizer="sgd", hybrid_ann_lr=0.1,
                    hybrid_ann_weight_decay=1e-4, hybrid_ann_batch_size=256, hybrid_percentile=0.999,
                    hybrid_calib_batches=5),
        paper_top1=67.74,
        source="DSR table, ImageNet PreAct-ResNet-18 hybrid, IF, T=50 [recall]; hybrid training as the official "
               "README's three ImageNet commands (ANN: --optimizer SGD --wd 1e-4 --batch-size 256 --lr 0.1; "
               "thresholds: the 99.9th percentile of each layer's post-ReLU activations, "
               "preresnet_cal_Vth.py; SNN: IF, T 50, V_th bound 0.01, alpha 0.5) [code README, imagenet/]; "
               "threshold gradient times 0.001 (imagenet/neuron.py's IFFunction.backward: torch.sum(Vth_grad) * "
               "0.001; the CIFAR code has no factor) [code, read at commit 2312877]",
        assumed={
            "optimizer, lr, weight_decay, batch_size, epochs, warmup_iters, scheduler": (
                "not stated by the paper: the SNN phase's values are imagenet/main.py's defaults (Adam, lr 1e-3, wd 0, "
                "total batch 144, 90 epochs, 5000-iteration linear warm-up, cosine per epoch), which the README's SNN "
                "command does not override [code, read at commit 34c45c4 for this recipe]"),
            "hybrid_ann_epochs": (
                "not stated by the paper: 90, imagenet/main.py's default --epochs (the README's ANN command passes none) "
                "[code, commit 34c45c4]; also the standard ImageNet ResNet schedule. The ANN phase shares "
                "warmup_iters (5000, the script's default in both phases) and the cosine schedule"),
            "hybrid_calib_batches": (
                "5 shuffled training batches of 256: DSR's code calibrates on the first 5 validation batches "
                "(of 144 images) [code]; snnlab keeps the validation set unseen"),
        },
        needs=(),
        notes="Model: on 224x224 inputs preact_resnet18 is DSR's ImageNet PreAct-ResNet-18 "
              "(imagenet/preresnet_snn.py resnet18_if: 7x7 stride-2 conv, BN, IF neuron and 3x3 stride-2 avg-pool "
              "stem, bias-free convs, 1x1 conv + BN shortcuts) [code]. Hybrid training (snnlab.hybrid): the ANN "
              "phase trains the model with ReLU in place of the IF neurons (written to <out>/ann/), the thresholds "
              "start at the 99.9th percentile of each layer's "
              "ANN activations, and the SNN starts from the ANN's weights (<out>/hybrid.json gives the ANN's "
              "accuracy and the SNN's right after initialisation). " + _BEST_VS_FINAL,
    ))
    return out


def _chi_recipes() -> list[Recipe]:
    """The chi paper's row (abstract only): SEW-ResNet-34 on ImageNet, every hyperparameter assumed."""
    out: list[Recipe] = []
    # --- chi (ICLR 2023 submission; abstract only) ------------------------------------------------------------
    out.append(Recipe(
        name="chi-imagenet-sewresnet34-t4",
        paper="chi",
        config=dict(dataset="imagenet", model="sew-resnet34", T=4, method="sdt", neuron="lif", tau=0.5,
                    v_th=1.0, surrogate="triangle", width=1.0, chi_target=0.3, chi_every=10, epochs=120,
                    **_TET_CODE_OPT),
        paper_top1=69.09,
        source="chi paper abstract: SEW-ResNet-34 on ImageNet, 69.09 top-1, +2.05 over 67.04 [paper abstract]",
        baseline="SEW 67.04",
        assumed={"T": "4, the T of the 67.04 SEW-ResNet-34 baseline (Fang et al. 2021); the abstract gives none",
                 "method, neuron, tau, v_th, surrogate, width": "not given (abstract only); TET's LIF preset",
                 "chi_target, chi_every": "not given; snnlab's reconstruction of the controller (snnlab.chi)",
                 "optimizer, lr, batch_size, scheduler, epochs, weight_decay": "not given; TET's ImageNet setting "
                                                                              "(120 epochs) with TET's Adam script "
                                                                              "values (no weight decay)"},
        needs=("the paper's chi-based surrogate pipeline itself: only the abstract is available, snnlab's "
               "ChiController is a documented reconstruction",),
        notes="Every hyperparameter here is an assumption: the abstract gives the architecture and the number only.",
    ))
    return out


def _build() -> dict[str, Recipe]:
    """Every recipe by name, in the papers' table order (TET, DSR, chi); AssertionError on a repeated name."""
    out = [*_tet_recipes(), *_dsr_cifar_recipes(), *_dsr_dvs_recipes(), *_dsr_imagenet_recipes(), *_chi_recipes()]
    recipes = {r.name: r for r in out}
    assert len(recipes) == len(out), "duplicate recipe names"
    return recipes


#: every recipe by name, in the papers' table order
RECIPES: dict[str, Recipe] = _build()


def names() -> list[str]:
    """The recipe names, in table order."""
    return list(RECIPES)


def get(name: str) -> Recipe:
    """The recipe called ``name``; ValueError listing the valid names otherwise."""
    if isinstance(name, Recipe):
        return name
    try:
        return RECIPES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown recipe {name!r}; available: {', '.join(RECIPES)}") from None


def config(name: str, **overrides) -> TrainConfig:
    """The validated ``TrainConfig`` of recipe ``name`` with ``overrides`` (TrainConfig fields) on top."""
    return get(name).train_config(**overrides)


def differences(recipe: str | Recipe, cfg: TrainConfig | dict) -> list[str]:
    """The fields where ``cfg`` departs from ``recipe`` (ignoring ``RUN_FIELDS``): [] means the paper's setting."""
    ref = TrainConfig(**get(recipe).config).flat()
    if isinstance(cfg, dict) and "method_options" in cfg:  # a config.json (grouped): the full config
        cfg = TrainConfig.from_dict(cfg)
    got = cfg.flat() if isinstance(cfg, TrainConfig) else dict(cfg)  # a flat dict may give only some fields
    return [k for k in ref if k not in RUN_FIELDS and got.get(k, ref[k]) != ref[k]]


def table():
    """A ``pandas.DataFrame``: one row per recipe (name, paper, dataset, model, T, method, epochs, paper's top-1,
    baseline, how many values are assumed, what is missing)."""
    import pandas as pd

    rows = []
    for r in RECIPES.values():
        rows.append({
            "recipe": r.name, "paper": r.paper, "dataset": r.dataset, "model": r.model, "T": r.T,
            "method": r.config["method"], "epochs": r.config["epochs"],
            "paper_top1": r.paper_top1, "approx": r.approx, "baseline": r.baseline,
            "assumed": len(r.assumed), "needs": len(r.needs),
        })
    return pd.DataFrame(rows)
