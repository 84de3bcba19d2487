"""snnlab.metrics: synaptic operations counted by hand, firing rates, the energy model."""
import pytest
import snntorch as snn
import torch
from torch import nn

import snnlab
from snnlab import metrics
from snnlab import surrogate as S
from snnlab.interop.snntorch import MultiStep, to_snntorch
from snnlab.layers import TimeMerged
from snnlab.neurons import LIF


def test_linear_hand_count():
    lin = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 2.0, 0.0], [3.0, 4.0, 5.0]]))   # one zero weight
    eff, dense = metrics.synaptic_ops(lin, torch.tensor([[1.0, 0.0, 1.0]]))
    assert (eff, dense) == (3, 6)   # input 0 drives 2 weights, input 2 drives 1 (its weight to output 0 is zero)


def test_conv_hand_count_with_padding_stride_and_groups():
    conv = nn.Conv1d(1, 1, 3, padding=1, bias=False)
    nn.init.constant_(conv.weight, 1.0)
    eff, dense = metrics.synaptic_ops(conv, torch.tensor([[[1.0, 0.0, 0.0, 0.0, 1.0]]]))
    assert (eff, dense) == (4, 13)  # each border spike reaches 2 of the 5 outputs; 5 x 3 taps minus 2 in the padding
    conv2 = nn.Conv2d(2, 4, 3, stride=2, padding=1, groups=2, bias=False)
    nn.init.constant_(conv2.weight, 1.0)
    x = torch.ones(1, 2, 4, 4)
    eff, dense = metrics.synaptic_ops(conv2, x)
    # output 2x2 per channel; fan-in 1 x 3 x 3 = 9; each output sees (rows in bounds) x (cols in bounds)
    per_out = sum(r * c for r in (2, 3) for c in (2, 3))          # 4 + 6 + 6 + 9 = 25 per output channel
    assert dense == eff == 4 * per_out                            # an all-ones input: every in-bounds tap works
    with pytest.raises(TypeError, match="Conv1d/2d/3d and nn.Linear"):
        metrics.synaptic_ops(nn.ReLU(), x)


def test_count_operations_on_a_known_network():
    torch.manual_seed(0)
    fc1, fc2 = nn.Linear(4, 5, bias=False), nn.Linear(5, 3)
    model = nn.Sequential(TimeMerged(fc1), LIF(tau=0.5, v_th=0.5), TimeMerged(fc2))
    x = torch.rand(3, 2, 4)                                        # T = 3, B = 2, analog input
    rep = metrics.count_operations(model, x)
    assert rep.T == 3 and list(rep.layers["layer"]) == ["0.0", "2.0"]
    first, second = rep.layers.iloc[0], rep.layers.iloc[1]
    assert first["input"] == "analog" and first["MACs"] == first["effective_ops"] == 3 * 4 * 5  # dense: no zeros
    with torch.no_grad():
        spk = LIF(tau=0.5, v_th=0.5)(fc1(x))
    assert second["input"] == "spikes" and second["MACs"] == 0
    assert second["ACs"] == pytest.approx(float(spk.sum()) * 3 / 2)  # each spike drives 3 weights; per sample
    assert rep.rates["1"] == pytest.approx(spk.mean((1, 2)).tolist())
    assert rep.energy() == pytest.approx(rep.acs * 0.9e-12 + rep.macs * 4.6e-12)
    assert rep.ann_energy() == pytest.approx((4 * 5 + 5 * 3) * 4.6e-12)   # one step, dense (no padding in a linear)
    assert "SNN/ANN" in rep.summary()
    assert model.training                                          # restored


def test_the_snntorch_twin_spends_the_same_operations():
    torch.manual_seed(0)
    model = snnlab.models.TutorialSNN((1, 8, 8))
    x = 3 * torch.rand(4, 2, 1, 8, 8)
    model.train()
    model(x)
    model.eval()
    a = metrics.count_operations(model, x)
    b = metrics.count_operations(MultiStep(to_snntorch(model)), x)
    assert a.layers[["dense_ops", "effective_ops", "ACs", "MACs"]].values.tolist() == \
        b.layers[["dense_ops", "effective_ops", "ACs", "MACs"]].values.tolist()
    assert [r for v in a.rates.values() for r in v] == pytest.approx([r for v in b.rates.values() for r in v])
    assert a.layers.iloc[0]["input"] == "analog" and a.layers.iloc[0]["density"] == 1.0       # the image
    assert a.layers.iloc[1]["input"] == "pooled spikes" and 0 < a.layers.iloc[1]["density"] < 1  # 0, 0.25, ..
    assert a.layers.iloc[1]["MACs"] == 0 and a.layers.iloc[1]["ACs"] >= a.layers.iloc[1]["effective_ops"]
    c = metrics.count_operations(model, x, fold_pooling=False)                               # NeuroBench's view
    assert list(c.layers["input"])[:2] == ["analog", "analog"]
    assert c.layers.iloc[1]["MACs"] == c.layers.iloc[1]["effective_ops"] and c.layers.iloc[1]["ACs"] == 0
    assert a.layers.iloc[0]["effective_ops"] == a.layers.iloc[0]["dense_ops"]               # a dense input: every tap


def test_pooled_spikes_hand_count():
    # 1 x 4 x 4 spikes -> 2x2 average pooling -> linear 4 -> 2 with one zero weight; window counts 3, 0, 1, 4
    spk = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 1], [0, 1, 1, 1]], dtype=torch.float32)
    spk = spk.reshape(1, 1, 1, 4, 4)                                 # T = 1, B = 1
    lin = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 1.0, 1.0, 1.0]]))
    model = nn.Sequential(TimeMerged(nn.AvgPool2d(2)), TimeMerged(nn.Flatten()), TimeMerged(lin))
    rep = metrics.count_operations(model, spk)
    row = rep.layers.iloc[0]
    # windows (3, 0 | 1, 4 spikes): output 0 takes every spike (8), output 1 all but window 0's (5)
    assert row["input"] == "pooled spikes" and row["ACs"] == 8 + 5 and row["MACs"] == 0
    assert row["effective_ops"] == 3 + 2                              # 3 non-zero windows; window 0 has one weight
    rep2 = metrics.count_operations(model, spk, fold_pooling=False)
    assert rep2.layers.iloc[0]["MACs"] == 5 and rep2.acs == 0
    # windows that differ in size (an adaptive pooling of 5 -> 2) are not folded: analog
    odd = nn.Sequential(TimeMerged(nn.AdaptiveAvgPool1d(2)), TimeMerged(nn.Flatten()), TimeMerged(nn.Linear(2, 1)))
    assert metrics.count_operations(odd, torch.tensor([1.0, 1, 0, 0, 1]).reshape(1, 1, 1, 5)).layers.iloc[0]["input"] == "analog"
    even = nn.Sequential(TimeMerged(nn.AdaptiveAvgPool1d(2)), TimeMerged(nn.Flatten()), TimeMerged(nn.Linear(2, 1)))
    rep3 = metrics.count_operations(even, torch.tensor([1.0, 1, 1, 0]).reshape(1, 1, 1, 4))  # windows: 2 and 1 spikes
    assert rep3.layers.iloc[0]["input"] == "pooled spikes" and rep3.layers.iloc[0]["ACs"] == 3


def test_dsr_spikes_count_as_spikes_whatever_their_amplitude():
    from snnlab.dsr import DSRLIF
    torch.manual_seed(0)
    neuron = DSRLIF(v_th=0.6, alpha=0.5, dt=0.1)
    model = nn.Sequential(TimeMerged(nn.Linear(6, 8)), neuron, TimeMerged(nn.Linear(8, 3)))
    x = 20 * torch.rand(5, 4, 6)
    with torch.no_grad():
        out = neuron(model[0](x))
    amp = float(out.max())
    assert amp == pytest.approx(0.6 / 0.1) and set(out.unique().tolist()) == {0.0, amp}
    rep = metrics.count_operations(model, x)
    assert rep.rates["1"] == pytest.approx((out != 0).float().mean((1, 2)).tolist())  # spikes per neuron, not volts
    assert rep.layers.iloc[1]["input"] == "spikes" and rep.layers.iloc[1]["ACs"] == float((out != 0).sum()) * 3 / 4


def test_bad_inputs():
    model = nn.Sequential(TimeMerged(nn.Linear(4, 3)))
    with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\]"):
        metrics.count_operations(model, torch.rand(4))
    with pytest.raises(ValueError, match="e_ac"):
        metrics.count_operations(model, torch.rand(2, 1, 4), e_ac=-1.0)


# ---------------------------------------------------------------------------------------- NeuroBench oracle
@pytest.mark.parametrize("layer", [nn.Linear(12, 7), nn.Conv1d(3, 5, 3, padding=1), nn.Conv2d(4, 6, 3, stride=2, padding=1),
                                   nn.Conv2d(4, 6, 3, padding=2, dilation=2, groups=2), nn.Conv3d(2, 3, 3, padding=1)])
@pytest.mark.parametrize("binary", [True, False])
def test_synaptic_ops_match_neurobench(layer, binary):
    macs = pytest.importorskip("neurobench.metrics.utils.layers.macs")
    torch.manual_seed(0)
    with torch.no_grad():
        layer.weight[layer.weight.abs() < 0.05] = 0.0                  # some zero weights
    shape = {nn.Linear: (5, 12), nn.Conv1d: (2, 3, 9), nn.Conv2d: (2, 4, 7, 7), nn.Conv3d: (2, 2, 4, 5, 5)}[type(layer)]
    x = (torch.rand(shape) < 0.3).float()
    if not binary:
        x = x * torch.rand(shape)
    eff, dense = metrics.synaptic_ops(layer, x)
    nb_eff, spiking = macs.single_layer_MACs(x, layer)
    nb_dense, _ = macs.single_layer_MACs(x, layer, total=True)
    assert (eff, dense) == (nb_eff, nb_dense) and eff < dense
    assert spiking == binary == bool(((x == 0) | (x == 1)).all())


def test_counts_match_neurobench_benchmark_on_a_snntorch_network():
    """NeuroBench's own pipeline (SNNTorchModel, Benchmark, SynapticOperations, ActivationSparsity) on the same
    network and input: the same ACs, MACs and dense count per sample, the same activation sparsity."""
    pytest.importorskip("neurobench")
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
    from neurobench.models import SNNTorchModel

    torch.manual_seed(0)
    lif = dict(beta=0.5, init_hidden=True, reset_mechanism="zero", reset_delay=False)
    net = nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), snn.Leaky(**lif), nn.Conv2d(6, 8, 3, stride=2),
                        snn.Leaky(**lif), nn.Flatten(), nn.Linear(8 * 3 * 3, 5), snn.Leaky(output=True, **lif))
    x = 2 * torch.rand(6, 4, 2, 8, 8) * (torch.rand(6, 4, 2, 8, 8) < 0.5)       # [T, B, ...], analog, sparse
    ours = metrics.count_operations(MultiStep(net, readout="spk"), x)
    loader = torch.utils.data.DataLoader(list(zip(x.transpose(0, 1), torch.zeros(4))), batch_size=4)
    nb = Benchmark(SNNTorchModel(net), loader, [], [], [[], [SynapticOperations, ActivationSparsity]]).run(quiet=True)
    ops = nb["SynapticOperations"]
    assert ops["Effective_MACs"] == pytest.approx(ours.macs, abs=1) and ours.layers.iloc[0]["input"] == "analog"
    assert ops["Effective_ACs"] == pytest.approx(ours.acs, abs=1) and ours.acs > 0
    assert ops["Dense"] == pytest.approx(ours.layers["dense_ops"].sum(), abs=1)
    neuron_steps = sum(len(v) * n for v, n in zip(ours.rates.values(), (6 * 8 * 8, 8 * 3 * 3, 5)))
    assert nb["ActivationSparsity"] == pytest.approx(1 - ours.total_spikes / neuron_steps, abs=1e-6)
