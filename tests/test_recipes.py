"""Recipes: every paper row is a valid TrainConfig; values match docs/papers.md; the CLI applies overrides on top."""
import subprocess
import sys

import pytest

from snnlab import cli, recipes
from snnlab.train import TrainConfig


@pytest.mark.parametrize("name", recipes.names())
def test_every_recipe_validates_and_uses_existing_fields(name):
    r = recipes.get(name)
    fields = set(TrainConfig.field_names())  # core fields and the methods' options (lamb, dsr_v_th, ...)
    assert set(r.config) <= fields, set(r.config) - fields
    cfg = recipes.config(name, device="cpu")
    assert (cfg.dataset, cfg.model, cfg.T) == (r.dataset, r.model, r.T)
    assert 0 < r.paper_top1 < 100 and r.source


# Values written out from docs/papers.md#tet, #dsr-defaults, #dsr-results and #chi-results
@pytest.mark.parametrize("name, expect, top1", [
    # TET table: CIFAR-10 ResNet-19 T=4 94.44; lambda 0.05 on CIFAR; 300 epochs; LIF tau 0.5, V_th 1, triangle gamma 1
    ("tet-cifar10-resnet19-t4", dict(method="tet", lamb=0.05, epochs=300, tau=0.5, v_th=1.0, surrogate="triangle",
                                     width=1.0, T=4), 94.44),
    # TET table: DVS-CIFAR10 VGGSNN T=10 83.17; lambda 0.001; code: Adam 1e-3, cosine, batch 128, seed 1000
    ("tet-dvscifar10-vggsnn-t10", dict(lamb=0.001, optimizer="adam", lr=1e-3, scheduler="cosine", batch_size=128,
                                       seed=1000, T=10), 83.17),
    # TET table: ImageNet SEW-ResNet-34 T=4 68.00; lambda 0.001; 120 epochs
    ("tet-imagenet-sewresnet34-t4", dict(lamb=0.001, epochs=120, model="sew-resnet34"), 68.00),
    # DSR defaults [code]: SGD wd 5e-4 lr 0.1 cosine + 400-iteration warm-up, 200 epochs batch 128,
    # LIF V_th 0.3 tau 1 dt 0.05 alpha 0.3 bound 5e-4
    ("dsr-cifar10-preresnet18-t20", dict(method="dsr", optimizer="sgd", lr=0.1, weight_decay=5e-4, epochs=200,
                                         scheduler="cosine", warmup_iters=400,
                                         batch_size=128, dsr_v_th=0.3, dsr_tau=1.0, dsr_dt=0.05, dsr_alpha=0.3,
                                         dsr_v_th_bound=5e-4, T=20, dsr_threshold_grad="code",
                                         dsr_leak_arith="code", dsr_v_th_grad_scale=1.0), 95.40),
    # DSR low latency: LIF T=5, lr 0.05, V_th 0.6, alpha 0.5, bound 1e-3, dt 0.1, about 94.45
    ("dsr-cifar10-preresnet18-t5", dict(lr=0.05, dsr_v_th=0.6, dsr_alpha=0.5, dsr_v_th_bound=1e-3, dsr_dt=0.1, T=5),
     94.45),
    ("dsr-cifar100-preresnet18-t20", dict(T=20, dataset="cifar100"), 78.50),
    # DSR ImageNet: hybrid, IF, T=50 67.74; thresholds at the 99.9th percentile of the ANN's activations [code]; the
    # ANN trained with SGD lr 0.1 wd 1e-4 batch 256 (README command); the SNN with imagenet/main.py's defaults, its
    # IF neuron's threshold gradient times 0.001 (imagenet/neuron.py; the CIFAR code has no factor)
    ("dsr-imagenet-preresnet18-t50", dict(method="dsr", neuron="if", T=50, dsr_alpha=0.5, dsr_v_th_bound=0.01,
                                          dsr_v_th_grad_scale=0.001,
                                          hybrid_percentile=0.999, hybrid_ann_optimizer="sgd", hybrid_ann_lr=0.1,
                                          hybrid_ann_weight_decay=1e-4, hybrid_ann_batch_size=256,
                                          hybrid_ann_epochs=90, optimizer="adam", lr=1e-3, batch_size=144,
                                          warmup_iters=5000), 67.74),
    # chi abstract: SEW-ResNet-34 ImageNet 69.09
    ("chi-imagenet-sewresnet34-t4", dict(model="sew-resnet34", dataset="imagenet"), 69.09),
])
def test_recipe_values_match_papers_md(name, expect, top1):
    r = recipes.get(name)
    cfg = recipes.config(name, device="cpu")
    for k, v in expect.items():
        assert getattr(cfg, k) == v, (k, getattr(cfg, k), v)
    assert r.paper_top1 == top1


def test_gaps_are_recorded_not_invented():
    for name in recipes.names():  # each gap is one sentence in a tuple (a bare string would iterate by letter)
        needs = recipes.get(name).needs
        assert isinstance(needs, tuple) and all(isinstance(n, str) and len(n) > 20 for n in needs), name
    dvs = recipes.get("dsr-dvscifar10-vgg11-t20")  # DSR's own CIFAR10-DVS preprocessing: now a loader option
    assert dvs.needs == ()
    assert recipes.config("dsr-dvscifar10-vgg11-t20", device="cpu").data_options == {"preprocess": "dsr",
                                                                                     "train_per_class": 900}
    imagenet = recipes.get("dsr-imagenet-preresnet18-t50")  # hybrid training and the ImageNet stem: no gap left
    assert imagenet.needs == ()
    assert "hybrid_ann_epochs" in imagenet.assumed
    assert "T" in recipes.get("chi-imagenet-sewresnet34-t4").assumed
    assert recipes.get("dsr-cifar10-preresnet18-t5").approx


def test_dsr_imagenet_recipe_builds_dsrs_imagenet_model():
    from types import SimpleNamespace

    from snnlab.dsr import DSRIF, dsr_neurons
    from snnlab.train import build_from_config

    cfg = recipes.config("dsr-imagenet-preresnet18-t50", device="cpu")
    model = build_from_config(cfg, SimpleNamespace(input_shape=(3, 224, 224), num_classes=1000))
    assert model.stem_kind == "imagenet" and isinstance(model.stem[1], DSRIF)
    assert model.stem[1].v_th_lower_bound == 0.01 and model.stem[1].alpha == 0.5
    neurons = list(dsr_neurons(model).values())  # every IF neuron's threshold gradient times 0.001, as the code's
    assert len(neurons) > 10 and all(isinstance(n, DSRIF) and n.v_th_grad_scale == 0.001 for n in neurons)
    for name in recipes.names():  # the CIFAR and DVS recipes: the CIFAR code's neuron, no factor
        if name.startswith("dsr-") and "imagenet" not in name:
            assert recipes.config(name, device="cpu").dsr_v_th_grad_scale == 1.0, name


def test_unknown_recipe_lists_valid_names():
    with pytest.raises(ValueError, match="unknown recipe 'nope'; available: tet-cifar10-resnet19-t2"):
        recipes.get("nope")
    with pytest.raises(ValueError, match=r"unknown config field\(s\) \['bogus'\]"):
        recipes.config("tet-cifar10-resnet19-t4", bogus=1)


def test_cli_recipes_lists_all():
    out = subprocess.run([sys.executable, "-m", "snnlab", "recipes"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for name in recipes.names():
        assert name in out.stdout
    bad = subprocess.run([sys.executable, "-m", "snnlab", "train", "--recipe", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown recipe 'nope'; available:" in bad.stderr


def _cfg(argv):
    args = cli.build_parser().parse_args(argv)
    args._explicit = cli._explicit_dests(argv)
    return cli.config_from_args(args)


def test_train_recipe_applies_only_explicit_flags():
    cfg = _cfg(["train", "--recipe", "tet-cifar10-resnet19-t4", "--epochs", "3", "--lr", "0.01"])
    ref = recipes.config("tet-cifar10-resnet19-t4")
    assert (cfg.epochs, cfg.lr) == (3, 0.01)
    assert recipes.differences("tet-cifar10-resnet19-t4", cfg) == ["epochs", "lr"]
    assert (cfg.lamb, cfg.batch_size, cfg.dataset, cfg.model, cfg.T) == (ref.lamb, 128, "cifar10", "resnet19", 4)
    assert cfg.out_dir == "runs/tet-cifar10-resnet19-t4-s0"
    # DSR: --v-th means the initial threshold, and the recipe's method is kept
    dsr = _cfg(["train", "--recipe", "dsr-cifar10-preresnet18-t20", "--v-th", "0.5"])
    assert (dsr.method, dsr.dsr_v_th, dsr.dsr_alpha) == ("dsr", 0.5, 0.3)
    assert recipes.differences("dsr-cifar10-preresnet18-t20", dsr) == ["dsr_v_th"]
    # where the data live is not what the run computes; the loader's options are
    moved = _cfg(["train", "--recipe", "tet-dvscifar10-vggsnn-t10", "--data-root", "/data/snn",
                  "--data-options", '{"train_per_class": 800}'])
    assert (moved.data_root, moved.data_options) == ("/data/snn", {"train_per_class": 800})
    assert recipes.differences("tet-dvscifar10-vggsnn-t10", moved) == ["data_options"]
    dsr = _cfg(["train", "--recipe", "dsr-dvscifar10-vgg11-t20", "--data-options", '{"train_per_class": 800}'])
    assert dsr.data_options == {"preprocess": "dsr", "train_per_class": 800}  # merged into the recipe's options


def test_recipe_with_T_schedule_replaces_T_and_epochs():
    cfg = _cfg(["train", "--recipe", "tet-cifar10-resnet19-t6", "--T-schedule", "2:300,6:50"])
    assert (cfg.T, cfg.epochs, cfg.T_schedule) == (2, 350, "2:300,6:50")


def test_chi_recipe_lists_every_value_but_dataset_and_model_as_assumed():
    """The chi row has only the paper's abstract: every config value but the two it names is an assumption, and
    ``--show`` must list each (a field missing from ``assumed`` would read as sourced)."""
    r = recipes.get("chi-imagenet-sewresnet34-t4")
    assumed = {f.strip() for key in r.assumed for f in key.split(",")}
    assert set(r.config) - {"dataset", "model"} <= assumed, set(r.config) - {"dataset", "model"} - assumed
