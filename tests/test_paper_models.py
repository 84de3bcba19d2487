"""The papers' architectures: shapes, parameter counts against the published definitions, any neuron, DSR.

Expected parameter counts, and where each comes from:

* ResNet-19 (TET's ``models/resnet_models.py``): 12,630,858 with 10 classes, 12,653,988 with 100, computed
  below from the code's layer list by ``resnet19_count`` (docs/papers.md gives no size for it).
* VGGSNN (TET's ``models/VGG_models.py``): 9,271,498 (10 classes, 2x48x48 input), from the code's layer list by
  ``vggsnn_count``.
* Spiking-ResNet-34 and SEW-ResNet-34 (ADD): the convolutions and BNs of ResNet-34, whose count with 1000 classes
  is 21,797,672 (He et al. 2016 / torchvision's ``resnet34``): checked against torchvision, against a formula,
  and against SpikingJelly 2.0's ``spiking_resnet34`` / ``sew_resnet34`` (also output for output, with IF
  neurons and the same weights).
"""
import re
import sys
import types
from functools import partial

import pytest
import torch
from torch import nn

from snnlab import models, neurons
from snnlab.dsr import DSRIF, DSRLIF
from snnlab.models.dsr import DSR_MODELS, build_dsr_model, make_dsr_neuron
from snnlab.models.papers import PAPER_MODELS, SEWResNet34, SpikingResNet34, VGGSNN, ResNet19
from snnlab.train import TrainConfig, build_from_config, fit


def count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ----------------------------------------------------------------------------------------------------------
# parameter counts, written out from the reference definitions' layer lists


def conv(c_in, c_out, k, bias=False):
    return c_in * c_out * k * k + (c_out if bias else 0)


def bn(c):
    return 2 * c  # weight and bias


def linear(n_in, n_out):
    return n_in * n_out + n_out


def basic_blocks(c_in, stages):
    """Sum over ResNet basic blocks: two conv3x3 (no bias) + BN each, a conv1x1 + BN shortcut where the shape changes."""
    total = 0
    for width, n, stride in stages:
        for i in range(n):
            s = stride if i == 0 else 1
            total += conv(c_in, width, 3) + bn(width) + conv(width, width, 3) + bn(width)
            if s != 1 or c_in != width:
                total += conv(c_in, width, 1) + bn(width)
            c_in = width
    return total


def resnet19_count(num_classes):
    # TET: conv1 3->64 (3x3, no bias) + tdBN; layers [3, 3, 2] at 128/256/512, strides 1/2/2; fc1 512->256; fc2
    return (conv(3, 64, 3) + bn(64) + basic_blocks(64, [(128, 3, 1), (256, 3, 2), (512, 2, 2)])
            + linear(512, 256) + linear(256, num_classes))


def vggsnn_count(num_classes=10):
    # TET: Layer(c_in, c_out, 3, 1, 1) = Conv2d (with bias) + BN; classifier Linear(512 * 3 * 3, 10)
    chans = [2, 64, 128, 256, 256, 512, 512, 512, 512]
    return sum(conv(a, b, 3, bias=True) + bn(b) for a, b in zip(chans, chans[1:])) + linear(512 * 3 * 3, num_classes)


def resnet34_count(num_classes=1000):
    # torchvision / SpikingJelly: conv7x7 3->64 + BN; [3, 4, 6, 3] blocks at 64/128/256/512; fc 512->classes
    return (conv(3, 64, 7) + bn(64) + basic_blocks(64, [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)])
            + linear(512, num_classes))


def test_formulas_give_the_published_numbers():
    assert resnet19_count(10) == 12_630_858
    assert resnet19_count(100) == 12_653_988
    assert vggsnn_count() == 9_271_498
    assert resnet34_count() == 21_797_672  # torchvision's documented resnet34 size


@pytest.mark.parametrize("num_classes", [10, 100])
def test_resnet19_parameter_count(num_classes):
    assert count(models.build_model("resnet19", (3, 32, 32), num_classes)) == resnet19_count(num_classes)


def test_vggsnn_parameter_count():
    assert count(models.build_model("vggsnn", (2, 48, 48), 10)) == vggsnn_count(10) == 9_271_498


@pytest.fixture(scope="module")
def resnet34s():
    return {name: models.build_model(name, (3, 224, 224), 1000) for name in ("spiking-resnet34", "sew-resnet34")}


def test_resnet34s_are_torchvision_resnet34(resnet34s):
    import torchvision

    tv = torchvision.models.resnet34()
    assert count(tv) == 21_797_672
    shapes = {k: v.shape for k, v in tv.state_dict().items()}
    for name, m in resnet34s.items():
        assert count(m) == resnet34_count() == 21_797_672, name
        assert {k: v.shape for k, v in m.state_dict().items()} == shapes, name
        m.load_state_dict(tv.state_dict())  # strict: same names, same shapes


# ----------------------------------------------------------------------------------------------------------
# SpikingJelly 2.0 as an oracle for the ImageNet models


@pytest.fixture(scope="module")
def sj_models():
    pytest.importorskip("spikingjelly", reason="SpikingJelly 2.0 not installed")
    try:
        import h5py  # noqa: F401
        stub = False
    except ImportError:
        # SpikingJelly's model package imports h5py for an unrelated dataset reader: a stub module is enough
        sys.modules["h5py"] = types.ModuleType("h5py")
        stub = True
    try:
        from spikingjelly.activation_based import functional, neuron
        from spikingjelly.activation_based.model import sew_resnet, spiking_resnet
    finally:
        if stub:
            del sys.modules["h5py"]
    return {
        "sew-resnet34": lambda: sew_resnet.sew_resnet34(spiking_neuron=neuron.IFNode, cnf="ADD"),
        "spiking-resnet34": lambda: spiking_resnet.spiking_resnet34(spiking_neuron=neuron.IFNode),
        "functional": functional,
    }


@pytest.mark.parametrize("name", ["spiking-resnet34", "sew-resnet34"])
def test_resnet34s_match_spikingjelly(name, sj_models):
    """Same weights, IF neurons (SpikingJelly's IFNode: v += x, fire at v >= 1, hard reset to 0): same outputs."""
    functional = sj_models["functional"]
    torch.manual_seed(0)
    ours = models.build_model(name, (3, 224, 224), 1000, neuron=partial(models.make_neuron, "if", reset="hard"))
    ref = sj_models[name]()
    functional.set_step_mode(ref, "m")
    assert count(ref) == count(ours) == 21_797_672
    ref.load_state_dict(ours.state_dict())
    other = "sew-resnet34" if name == "spiking-resnet34" else "spiking-resnet34"
    wrong = models.build_model(other, (3, 224, 224), 1000, neuron=partial(models.make_neuron, "if", reset="hard"))
    wrong.load_state_dict(ours.state_dict())
    x = 3 * torch.rand(2, 1, 3, 64, 64)  # T=2, B=1; large enough for spikes to reach the last block
    with torch.no_grad():
        out = ours(x)
        functional.reset_net(ref)
        expected = ref(x)
        assert out.shape == expected.shape == (2, 1, 1000)
        assert out.std() > 1e-3  # not just the fc bias: spikes reached the readout
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
        assert (wrong(x) - expected).abs().max() > 1e-3  # the test tells the two architectures apart


# ----------------------------------------------------------------------------------------------------------
# shapes, structure


@pytest.mark.parametrize("name, shape, classes, x_shape", [
    ("resnet19", (3, 32, 32), 10, (2, 2, 3, 32, 32)),
    ("resnet19", (3, 32, 32), 100, (1, 2, 3, 32, 32)),
    ("vggsnn", (2, 48, 48), 10, (2, 2, 2, 48, 48)),
])
def test_cifar_models_output_shape(name, shape, classes, x_shape):
    m = models.build_model(name, shape, classes)
    assert m(torch.rand(x_shape)).shape == (x_shape[0], x_shape[1], classes)


def test_resnet34s_output_shape(resnet34s):
    x = torch.rand(1, 2, 3, 32, 32)  # small input: the average pool is adaptive
    with torch.no_grad():
        for m in resnet34s.values():
            assert m(x).shape == (1, 2, 1000)


def test_resnet19_stage_shapes_and_neurons():
    m = ResNet19()
    seen = {}
    for stage in ("layer1", "layer2", "layer3"):
        getattr(m, stage).register_forward_hook(lambda mod, i, o, s=stage: seen.__setitem__(s, tuple(o.shape)))
    m(torch.rand(2, 1, 3, 32, 32))
    assert seen == {"layer1": (2, 1, 128, 32, 32), "layer2": (2, 1, 256, 16, 16), "layer3": (2, 1, 512, 8, 8)}
    # stem + 2 per block (8 blocks) + after fc1; TET's default LIF (tau 0.5, v_th 1, hard reset, triangle)
    lifs = [n for n in m.modules() if isinstance(n, neurons.LIF)]
    assert len(lifs) == 1 + 2 * 8 + 1
    assert all(n.tau == 0.5 and n.v_th == 1.0 and n.reset == "hard" and n.surrogate.name == "triangle"
               for n in lifs)
    # the 19 weight layers of the name: stem conv, 16 block convs, 2 linear (plus 3 shortcut 1x1 convs)
    convs = [c for c in m.modules() if isinstance(c, nn.Conv2d)]
    assert sum(c.kernel_size == (3, 3) for c in convs) == 17 and sum(c.kernel_size == (1, 1) for c in convs) == 3
    assert sum(isinstance(c, nn.Linear) for c in m.modules()) == 2


def test_vggsnn_layers():
    m = VGGSNN()
    convs = [c for c in m.modules() if isinstance(c, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 256, 512, 512, 512, 512]
    assert all(c.bias is not None for c in convs)
    assert sum(isinstance(c, nn.AvgPool2d) for c in m.modules()) == 4
    assert m.fc.in_features == 512 * 3 * 3
    assert len([n for n in m.modules() if isinstance(n, neurons.LIF)]) == 8


def test_batchnorm_statistics_are_over_T_times_B():
    """Time-merged BN: the first BN of ResNet-19 sees T*B samples, one per (step, image) pair."""
    m = ResNet19()
    seen = []
    m.bn1.register_forward_hook(lambda mod, i, o: seen.append(i[0].shape))
    m(torch.rand(3, 2, 3, 32, 32))
    assert seen == [torch.Size([6, 64, 32, 32])]


# ----------------------------------------------------------------------------------------------------------
# any neuron


@pytest.mark.parametrize("name, shape, x_shape", [
    ("resnet19", (3, 32, 32), (2, 2, 3, 16, 16)),
    ("vggsnn", (2, 48, 48), (1, 2, 2, 48, 48)),
    ("spiking-resnet34", (3, 32, 32), (1, 2, 3, 32, 32)),
    ("sew-resnet34", (3, 32, 32), (1, 2, 3, 32, 32)),
])
def test_any_surrogate_neuron(name, shape, x_shape):
    make = partial(models.make_neuron, "if", v_th=0.5, reset="subtract", surrogate="atan", width=2.0)
    m = models.build_model(name, shape, 10, neuron=make)
    spiking = [n for n in m.modules() if isinstance(n, neurons.LIF)]
    assert spiking and all(type(n) is neurons.IF and n.surrogate.name == "atan" and n.v_th == 0.5 for n in spiking)
    assert len({id(n.surrogate) for n in spiking}) == len(spiking)  # each layer has its own surrogate (chi widths)
    out = m(torch.rand(x_shape))
    assert out.shape == (x_shape[0], x_shape[1], 10)
    out.sum().backward()
    first = next(p for p in m.parameters() if p.dim() == 4)
    assert first.grad is not None and first.grad.abs().sum() > 0  # the surrogate carries gradient to the stem


@pytest.mark.parametrize("name, shape, x_shape", [
    ("resnet19", (3, 32, 32), (2, 2, 3, 16, 16)),
    ("vggsnn", (2, 48, 48), (2, 2, 2, 48, 48)),
    ("spiking-resnet34", (3, 32, 32), (2, 2, 3, 32, 32)),
    ("sew-resnet34", (3, 32, 32), (2, 2, 3, 32, 32)),
])
@pytest.mark.parametrize("kind, kw", [("if", {"v_th": 1.0}), ("lif", {})])
def test_dsr_neurons_give_the_rate_head(name, shape, x_shape, kind, kw):
    torch.manual_seed(0)
    surrogate_model = models.build_model(name, shape, 10)
    # DSR's IF default threshold (6, tuned for its PreAct-ResNet) leaves an untrained ResNet-19 silent: use 1
    m = models.build_model(name, shape, 10, neuron=partial(make_dsr_neuron, kind, **kw))
    dsr = [n for n in m.modules() if isinstance(n, (DSRIF, DSRLIF))]
    assert dsr and not any(isinstance(n, neurons.LIF) for n in m.modules())
    # the head adds BN1d (2 * classes) and one threshold per DSR neuron; nothing else changes
    assert count(m) == count(surrogate_model) + 2 * 10 + len(dsr)
    out = m(torch.rand(x_shape))
    assert out.shape == (1, x_shape[1], 10)  # the output layer's firing rate, as snnlab.dsr_models
    torch.nn.functional.cross_entropy(out[0], torch.tensor([1, 3])).backward()
    assert all(n.v_th.grad is not None for n in dsr)
    assert next(p for p in m.parameters() if p.dim() == 4).grad.abs().sum() > 0


def test_dsr_models_registry_builds_paper_models():
    m = build_dsr_model("sew-resnet34", (3, 32, 32), 10, neuron="if", v_th=2.0, connect="IAND")
    assert isinstance(m, SEWResNet34) and m.layer1[0].connect == "IAND"
    assert {float(n.v_th.detach()) for n in m.modules() if isinstance(n, DSRIF)} == {2.0}
    assert {"resnet19", "vggsnn", "spiking-resnet34", "sew-resnet34"} <= set(DSR_MODELS)


# ----------------------------------------------------------------------------------------------------------
# registry, config, training


def test_registered_in_models():
    for name, cls in PAPER_MODELS.items():
        assert models.MODELS[name] is cls
    assert isinstance(models.build_model("spiking-resnet34", (3, 32, 32), 5), SpikingResNet34)


def test_config_builds_paper_models(digits):
    cfg = TrainConfig(model="resnet19", neuron="lif", surrogate="sigmoid", width=0.5).validate()
    m = build_from_config(cfg, digits)
    assert isinstance(m, ResNet19) and m.conv1.in_channels == 1 and m.fc2.out_features == 10
    assert all(n.surrogate.name == "sigmoid" for n in m.modules() if isinstance(n, neurons.LIF))
    cfg = TrainConfig(model="vggsnn", method="dsr", neuron="if", dsr_v_th=3.0).validate()
    m = build_from_config(cfg, types.SimpleNamespace(input_shape=(2, 32, 32), num_classes=10))
    assert isinstance(m, VGGSNN) and {float(n.v_th.detach()) for n in m.modules() if isinstance(n, DSRIF)} == {3.0}


def test_fit_runs_resnet19_on_digits(digits):
    hist = fit(TrainConfig(dataset="digits", model="resnet19", T=1, epochs=1, batch_size=16, max_batches=2,
                           progress=False), bundle=digits)
    assert hist.last["epoch"] == 1 and 0.0 <= hist.last["test_acc"] <= 1.0
    assert torch.isfinite(torch.tensor(hist.last["train_loss"]))


# ----------------------------------------------------------------------------------------------------------
# errors


def test_errors():
    with pytest.raises(ValueError, match=r"VGGSNN's four 2x2 average poolings need H, W >= 16"):
        VGGSNN((2, 8, 8))
    with pytest.raises(ValueError, match=r"connect must be one of 'ADD', 'AND', 'IAND', got 'OR'"):
        SEWResNet34(connect="OR")
    with pytest.raises(ValueError, match=r"neuron must be a zero-argument callable"):
        ResNet19(neuron=neurons.LIF())
    with pytest.raises(ValueError, match=r"input_shape must be \(channels, height, width\), got \(3, 32\)"):
        ResNet19((3, 32))
    with pytest.raises(ValueError, match=r"num_classes must be a positive integer, got 0"):
        SpikingResNet34(num_classes=0)
    with pytest.raises(ValueError, match=re.escape("unknown model 'resnet18'; available: ") + r".*'sew-resnet34'"):
        models.build_model("resnet18", (3, 32, 32), 10)


# ----------------------------------------------------------------------------------------------------------
# the former module paths (snnlab.paper_models, snnlab.dsr_models, snnlab.real_data) are the new modules


def test_old_module_paths_are_the_same_module_objects(monkeypatch):
    import snnlab
    import snnlab.dsr_models
    import snnlab.paper_models
    import snnlab.real_data
    from snnlab.data import real
    from snnlab.models import dsr, papers

    for old, new in (("paper_models", papers), ("dsr_models", dsr), ("real_data", real)):
        assert getattr(snnlab, old) is new and sys.modules[f"snnlab.{old}"] is new
    from snnlab.dsr_models import build_dsr_model as old_build
    from snnlab.paper_models import VGGSNN as old_vggsnn

    assert old_vggsnn is VGGSNN and old_build is build_dsr_model
    assert models.papers is papers and models.dsr is dsr
    # monkeypatching through the old name changes the new module
    monkeypatch.setattr(snnlab.dsr_models, "count_parameters", lambda m: -1)
    assert dsr.count_parameters(nn.Linear(2, 2)) == -1


def test_old_module_paths_in_a_fresh_interpreter():
    import subprocess

    code = ("from snnlab.paper_models import VGGSNN\n"
            "import snnlab.dsr_models as a, snnlab.models.dsr as b\n"
            "import snnlab.real_data as r, snnlab.data.real as s\n"
            "import snnlab.paper_models as p, snnlab.models.papers as q\n"
            "assert a is b and r is s and p is q and VGGSNN is q.VGGSNN\n"
            "from snnlab.real_data import read_aedat, DatasetNotFoundError\n"
            "from snnlab.dsr_models import thresholds, ThresholdLog\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
