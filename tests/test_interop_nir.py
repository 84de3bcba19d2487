"""snnlab.interop.nir_graph: NIR export, read back with nir.read, import into snnTorch, compare with the model."""
import numpy as np
import pytest
import torch
from torch import nn

import snnlab
from snnlab.interop import nir_graph as ng
from snnlab.layers import TimeMerged
from snnlab.neurons import IF, LIF

nir = pytest.importorskip("nir")


def _trained_bn(model, shape, T=4):
    """Give every BatchNorm running statistics that are not the defaults (so folding is tested)."""
    torch.manual_seed(1)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(2 * torch.rand(T, 8, *shape))
    return model.eval()


MODELS = {
    "tutorial": (lambda: snnlab.models.TutorialSNN((1, 8, 8)), (1, 8, 8)),
    "tutorial1d": (lambda: snnlab.models.TutorialSNN1d((1, 40)), (1, 40)),
    "mlp": (lambda: snnlab.models.SpikingMLP((64,)), (64,)),
    "if-subset": (lambda: nn.Sequential(TimeMerged(nn.Conv2d(2, 4, 3, stride=2, padding=1)), IF(v_th=0.7, reset="hard"),
                                        TimeMerged(nn.AvgPool2d(2), nn.Flatten(), nn.Linear(16, 5))), (2, 8, 8)),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_round_trip_through_a_file_equals_the_model(name, tmp_path):
    build, shape = MODELS[name]
    torch.manual_seed(0)
    model = _trained_bn(build(), shape)
    path = snnlab.export_nir(model, tmp_path / "m.nir", input_shape=shape)   # check=True: compared before kept
    graph = nir.read(str(path))
    assert isinstance(graph, nir.NIRGraph) and "input" in graph.nodes and "output" in graph.nodes
    err = ng.round_trip_error(model, path, shape, T=6, batch=5, seed=3)
    assert err["spike_mismatch"] == 0.0 and err["max_abs_output"] < 1e-5
    assert 0.01 < err["spike_rate"] < 0.99                       # the comparison saw spikes, not an idle network
    kinds = {type(n).__name__ for n in graph.nodes.values()}
    assert "BatchNorm2d" not in kinds and ("IF" in kinds) == (name == "if-subset")


def test_lif_constants_and_batchnorm_folding():
    torch.manual_seed(0)
    model = _trained_bn(snnlab.models.TutorialSNN((1, 8, 8)), (1, 8, 8))
    g = ng.to_nir(model)                                          # the model knows its input shape
    lif = next(n for n in g.nodes.values() if isinstance(n, nir.LIF))
    beta = 1 - ng.DT / lif.tau                                    # Euler step of tau du/dt = -u + r I
    assert np.allclose(beta, 0.5) and np.allclose(lif.r * ng.DT / lif.tau, 1.0) and np.allclose(lif.v_threshold, 1.0)
    assert lif.tau.shape == (16, 8, 8)                            # one value per neuron: NIR's types
    conv = next(n for n in g.nodes.values() if isinstance(n, nir.Conv2d))
    c, bn = model.features[0][0][0], model.features[0][0][1]
    with torch.no_grad():
        x = torch.randn(2, 1, 8, 8)
        want = bn(c(x))
        got = torch.nn.functional.conv2d(x, torch.from_numpy(conv.weight), torch.from_numpy(conv.bias), padding=1)
    assert torch.allclose(want, got, atol=1e-5)


def test_plain_snntorch_import_from_nir_agrees_on_the_mlp(tmp_path):
    from snntorch.import_nir import import_from_nir

    from snnlab.interop.snntorch import MultiStep

    torch.manual_seed(0)
    model = _trained_bn(snnlab.models.SpikingMLP((64,)), (64,))
    net = import_from_nir(nir.read(str(snnlab.export_nir(model, tmp_path / "m.nir", input_shape=(64,)))))
    x = 2 * torch.rand(5, 3, 64)
    with torch.no_grad():
        assert torch.allclose(MultiStep(ng._GraphStep(net), readout=0).eval()(x), model(x), atol=1e-5)


def test_what_nir_cannot_express_is_named():
    lif_sub = nn.Sequential(TimeMerged(nn.Linear(4, 3)), LIF(reset="subtract"), TimeMerged(nn.Linear(3, 2)))
    with pytest.raises(ValueError, match=r"layer '1'.*subtract.*hard reset"):
        ng.to_nir(lif_sub, (4,))
    maxpool = nn.Sequential(TimeMerged(nn.Conv2d(1, 2, 3)), LIF(), TimeMerged(nn.MaxPool2d(2), nn.Flatten(),
                                                                              nn.Linear(18, 2)))
    with pytest.raises(ValueError, match=r"layer '2' is a MaxPool2d, which NIR 1.0 cannot express"):
        ng.to_nir(maxpool, (1, 8, 8))
    from snnlab.dsr import DSRIF
    with pytest.raises(ValueError, match="DSR"):
        ng.to_nir(nn.Sequential(TimeMerged(nn.Linear(4, 3)), DSRIF(), TimeMerged(nn.Linear(3, 2))), (4,))
    with pytest.raises(ValueError, match="input_shape"):
        ng.to_nir(nn.Sequential(TimeMerged(nn.Linear(4, 3)), LIF(), TimeMerged(nn.Linear(3, 2))))
    with pytest.raises(ValueError, match=r"input_shape \(0, 3\)"):
        ng.to_nir(nn.Sequential(TimeMerged(nn.Linear(4, 3))), (0, 3))


def test_a_file_that_does_not_round_trip_is_not_written(tmp_path, monkeypatch):
    model = snnlab.models.SpikingMLP((8,)).eval()
    monkeypatch.setattr(ng, "round_trip_error", lambda *a, **k: {"max_abs_output": 1.0, "spike_mismatch": 0.5})
    with pytest.raises(ValueError, match="does not round-trip"):
        ng.export_nir(model, tmp_path / "m.nir", (8,))
    assert list(tmp_path.iterdir()) == []                         # no file, no temporary left behind


def test_import_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no NIR file"):
        snnlab.import_nir(tmp_path / "missing.nir")
    g = nir.NIRGraph(nodes={"input": nir.Input({"input": np.array([3])}),
                            "d": nir.Delay(delay=np.ones(3, np.float32)),
                            "output": nir.Output({"output": np.array([3])})},
                     edges=[("input", "d"), ("d", "output")])
    with pytest.raises(ValueError, match=r"NIR node 'd' is a nir.Delay"):
        snnlab.import_nir(g)


def _firing_bn(model):
    """BatchNorm statistics and affine terms that make the paper models' neurons fire on small random inputs (their
    PyTorch-default initialisation leaves under 1% of the neurons spiking, which would make the comparison idle)."""
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                for t, lo, hi in ((m.running_mean, -0.2, 0.2), (m.running_var, 0.5, 2.0), (m.weight, 1.0, 3.0),
                                  (m.bias, 0.2, 1.0)):
                    t.copy_(lo + (hi - lo) * torch.rand(t.shape, generator=g))
    return model.eval()


@pytest.mark.parametrize("name,shape", [("vggsnn", (2, 16, 16)), ("resnet19", (3, 8, 8))])
def test_paper_models_round_trip(name, shape, tmp_path):
    torch.manual_seed(0)
    model = _firing_bn(snnlab.models.build_model(name, shape, 10))
    path = snnlab.export_nir(model, tmp_path / "m.nir")          # the model records its input shape
    graph = nir.read(str(path))
    err = ng.round_trip_error(model, path, T=4, batch=3, seed=5)
    assert err["spike_mismatch"] == 0.0 and err["max_abs_output"] < 1e-5
    assert 0.05 < err["spike_rate"] < 0.95
    n_spiking = sum(isinstance(m, LIF) for m in model.modules())
    assert err["layers"] == (n_spiking, n_spiking)
    if name == "resnet19":                                        # each residual add: two edges into the block's sn2
        into = {dst: sorted(s for s, d in graph.edges if d == dst) for dst in graph.nodes}
        assert into["layer1_0_sn2"] == ["layer1_0_conv2", "layer1_0_downsample"]   # 64 -> 128: 1x1 conv shortcut
        assert into["layer1_1_sn2"] == ["layer1_0_sn2", "layer1_1_conv2"]          # identity shortcut
        assert isinstance(graph.nodes["avgpool"], nir.AvgPool2d) and list(graph.nodes["avgpool"].kernel_size) == [2, 2]


def test_paper_models_nir_cannot_express_are_named():
    with pytest.raises(ValueError, match=r"layer 'maxpool' of SpikingResNet34 is a MaxPool2d"):
        ng.to_nir(snnlab.models.build_model("spiking-resnet34", (3, 32, 32), 10))
    with pytest.raises(ValueError, match=r"layer 'maxpool' of SEWResNet34 is a MaxPool2d"):
        ng.to_nir(snnlab.models.build_model("sew-resnet34", (3, 32, 32), 10))
    from snnlab.models.dsr import build_dsr_model
    with pytest.raises(ValueError, match=r"'output' is DSR's rate head"):
        ng.to_nir(build_dsr_model("resnet19", (3, 8, 8), 10))
    sub = snnlab.models.build_model("vggsnn", (2, 16, 16), 10, neuron=lambda: LIF(reset="subtract"))
    with pytest.raises(ValueError, match=r"layer 'features_1'.*subtract"):
        ng.to_nir(sub)
