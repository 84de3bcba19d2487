"""Time-merged layers equal step-by-step application; models map [T, B, ...] -> [T, B, classes]."""
import pytest
import torch
from torch import nn

from snnlab import layers, models
from snnlab.neurons import IF, LIF
from snnlab.models.papers import PAPER_MODELS


def test_time_merged_equals_per_step():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 4, 3, padding=1)
    x = torch.randn(5, 3, 2, 8, 8)
    merged = layers.TimeMerged(conv)(x)
    stepped = torch.stack([conv(x[t]) for t in range(5)])
    assert merged.shape == (5, 3, 4, 8, 8)
    assert torch.allclose(merged, stepped, atol=1e-6)


def test_batchnorm_statistics_over_T_times_B():
    torch.manual_seed(0)
    x = torch.randn(4, 6, 3, 5, 5) * 3 + 1
    bn = layers.TimeMerged(nn.BatchNorm2d(3))
    y = bn(x)
    # normalised over (T, B, H, W) jointly: zero mean, unit variance per channel over all of them
    m = y.transpose(1, 2).reshape(4, 3, -1).transpose(0, 1).reshape(3, -1)
    assert torch.allclose(m.mean(1), torch.zeros(3), atol=1e-5)
    assert torch.allclose(m.var(1, unbiased=False), torch.ones(3), atol=1e-3)


def test_direct_encoder_repeats():
    x = torch.randn(2, 1, 8, 8)
    e = layers.DirectEncoder(4)(x)
    assert e.shape == (4, 2, 1, 8, 8)
    assert all(torch.equal(e[t], x) for t in range(4))


@pytest.mark.parametrize("bad", [0, -2, 2.5, "4", True])
def test_bad_T(bad):
    with pytest.raises(ValueError, match="T .*positive integer"):
        layers.DirectEncoder(bad)


def test_time_merged_rejects_1d():
    with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\]"):
        layers.TimeMerged(nn.Identity())(torch.randn(3))


@pytest.mark.parametrize("shape", [(1, 8, 8), (2, 24, 24), (1, 40), (2, 17)])
@pytest.mark.parametrize("name", [n for n in models.MODELS if n not in PAPER_MODELS])  # those: test_paper_models.py
def test_model_shapes_and_gradients(name, shape):
    if (name == "tutorial1d") != (len(shape) == 2) and name != "mlp":  # 1-D signals for the 1-D model only
        pytest.skip(f"{name} does not take {len(shape)}-D frames")
    torch.manual_seed(0)
    m = models.build_model(name, shape, 10)
    x = torch.rand(3, 5, *shape) * 2
    out = m(x)
    assert out.shape == (3, 5, 10)
    out.mean(0).logsumexp(-1).sum().backward()
    grads = [p.grad for p in m.parameters()]
    assert all(g is not None for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_model_any_T():
    m = models.TutorialSNN((1, 8, 8), 10).eval()
    for T in (1, 2, 7):
        assert m(torch.rand(T, 2, 1, 8, 8)).shape == (T, 2, 10)


def test_model_has_independent_surrogates_per_layer():
    m = models.TutorialSNN()
    n1, n2 = m.features[0][1], m.features[2][1]
    assert isinstance(n1, LIF) and n1.surrogate is not n2.surrogate
    n1.surrogate.width = 0.3
    assert n2.surrogate.width == 1.0


def test_make_neuron():
    assert isinstance(models.make_neuron("if"), IF)
    with pytest.raises(ValueError, match="unknown neuron 'alif'"):
        models.make_neuron("alif")
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        models.build_model("resnet", (1, 8, 8), 10)
    with pytest.raises(ValueError, match="input_shape"):
        models.TutorialSNN((8, 8))


def test_multistep_model_matches_per_step_snn_loop():
    """The time-merged model equals an explicit loop that applies every layer one step at a time."""
    torch.manual_seed(0)
    m = models.TutorialSNN((2, 12, 12), 10).eval()  # eval: BN uses running stats, identical per step
    x = (torch.rand(6, 3, 2, 12, 12) < 0.3).float()
    out = m(x)
    (conv1, bn1), lif1 = m.features[0][0], m.features[0][1]
    (conv2, bn2), lif2 = m.features[2][0], m.features[2][1]
    pool, fc = nn.AvgPool2d(2), m.readout[1]
    u1 = u2 = 0
    steps = []
    for t in range(6):
        u1 = 0.5 * u1 + bn1(conv1(x[t]))
        s1 = (u1 >= 1).float()
        u1 = u1 * (1 - s1)
        u2 = 0.5 * u2 + bn2(conv2(pool(s1)))
        s2 = (u2 >= 1).float()
        u2 = u2 * (1 - s2)
        steps.append(fc(pool(s2).flatten(1)))
    assert lif1.tau == 0.5 and lif2.v_th == 1.0
    assert torch.allclose(out, torch.stack(steps), atol=1e-5)
