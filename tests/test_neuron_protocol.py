"""The spiking-neuron protocol (``snnlab.neuron_base``): one test for "is this a spiking neuron?" used by chi,
memory and the DSR tools; users' subclasses and registered foreign neurons are seen without other changes."""
import pytest
import torch
from torch import nn

from snnlab import chi, fused, layers, memory, models, neuron_base, neurons
from snnlab.dsr import DSRIF, DSRLIF, DSRNeuron, dsr_neurons
from snnlab.dsr_models import build_dsr_model
from snnlab.neuron_base import SpikingNeuron, as_spiking, is_spiking, register_neuron_type, spiking_neurons
from snnlab.neurons import IF, LIF
from snnlab.paper_models import ResNet19
from snnlab.surrogate import Gaussian, Triangle


class Threshold(SpikingNeuron):
    """The smallest user neuron: memoryless ``s[t] = H(I[t] - v_th)`` through a surrogate; it can record."""

    kind = "threshold"

    def __init__(self, surrogate):
        super().__init__()
        self.surrogate, self.v_th = surrogate, 1.0

    def forward(self, x):
        if self.record:
            self.last_mem = x.detach()
        return self.surrogate(x - self.v_th)


class PlainThreshold(nn.Module):
    """The same computation in a plain nn.Module: not a spiking neuron."""

    def __init__(self, surrogate):
        super().__init__()
        self.surrogate, self.v_th = surrogate, 1.0

    def forward(self, x):
        return self.surrogate(x - self.v_th)


def two_layer(neuron):
    return nn.Sequential(layers.TimeMerged(nn.Linear(4, 3, bias=False)), neuron,
                         layers.TimeMerged(nn.Linear(3, 2, bias=False)))


def test_every_snnlab_neuron_is_a_spiking_neuron():
    expected = {LIF(): "lif", IF(): "if", DSRIF(): "dsr-if", DSRLIF(): "dsr-lif"}
    for n, kind in expected.items():
        assert isinstance(n, SpikingNeuron) and is_spiking(n) and as_spiking(n) is n and n.kind == kind
    for n in (LIF(surrogate=Gaussian(0.3)), IF(width=2.0)):
        assert n.width_adaptable and n.width == n.surrogate.width
        n.width = 0.7
        assert n.surrogate.width == 0.7
    for n in (DSRIF(), DSRLIF()):  # no surrogate: the representation mapping is their backward
        assert isinstance(n, DSRNeuron) and n.surrogate is None and not n.width_adaptable and n.width is None
        assert float(n.v_th.detach()) > 0
        with pytest.raises(ValueError, match="DSR.* has no adaptable surrogate width"):
            n.width = 1.0
    assert models.make_neuron().kind == "lif" and models.make_neuron("if").kind == "if"


def test_a_plain_module_is_not_spiking():
    for m in (nn.ReLU(), nn.Linear(2, 2), PlainThreshold(Triangle()), nn.Sequential(LIF())):
        assert not is_spiking(m) and as_spiking(m) is None
    assert spiking_neurons(nn.Sequential(nn.Linear(2, 2), nn.ReLU())) == {}
    assert is_spiking(LIF()) and list(spiking_neurons(LIF())) == [""]  # the model itself counts


def test_spiking_neurons_of_the_tutorial_dsr_and_paper_models():
    tut = models.TutorialSNN((1, 8, 8), 10)
    assert list(spiking_neurons(tut)) == ["features.0.1", "features.2.1"]
    assert all(type(m) is LIF for m in spiking_neurons(tut).values())
    dsr = build_dsr_model("tutorial", (1, 8, 8), 10)
    assert list(spiking_neurons(dsr)) == ["features.0.1", "features.2.1", "head.neuron"]
    assert all(type(m) is DSRLIF for m in spiking_neurons(dsr).values())
    assert dsr_neurons(dsr) == spiking_neurons(dsr)
    assert dsr_neurons(tut) == {}
    paper = ResNet19((3, 8, 8), 10)
    by_class = [n for n, m in paper.named_modules() if isinstance(m, LIF)]
    assert list(spiking_neurons(paper)) == by_class and len(by_class) == 1 + 2 * 8 + 1
    assert list(spiking_neurons(paper))[:3] == ["sn1", "layer1.0.sn1", "layer1.0.sn2"]


def test_memory_default_is_the_protocol():
    assert memory.spiking_modules() == neuron_base.neuron_types()
    assert all(issubclass(c, memory.spiking_modules()) for c in (LIF, IF, DSRIF, DSRLIF, Threshold))
    x = torch.rand(3, 2, 4)
    # a user neuron is counted without registration: its surrogate saves u - v_th, [T, B, 3] floats
    total, inside = memory.saved_tensor_bytes(two_layer(Threshold(Triangle())), x)
    assert inside == 3 * 2 * 3 * 4 and total > inside
    # the same computation in a plain module is not inside a spiking neuron
    total_plain, inside_plain = memory.saved_tensor_bytes(two_layer(PlainThreshold(Triangle())), x)
    assert inside_plain == 0 and total_plain == total


def test_user_subclass_is_seen_by_chi_without_registration():
    torch.manual_seed(0)
    x = torch.rand(3, 5, 4) * 2
    grads = {}
    for neuron in (Threshold(Gaussian(0.2)), PlainThreshold(Gaussian(0.2))):
        m = two_layer(neuron)
        with torch.no_grad():
            m[0][0].weight.fill_(0.5)
            m[2][0].weight.fill_(1.0)
        m(x).sum().backward()
        grads[type(neuron)] = m[0][0].weight.grad
        r = chi.measure(m)
        seen = isinstance(neuron, SpikingNeuron)
        # a non-compact surrogate after the layer: the relative tolerance applies (0 for a readout)
        assert r.tol == {"0.0": 1e-3 if seen else 0.0, "2.0": 0.0}
        assert [n for *_, n in chi.weight_layers(m)] == (["1", None] if seen else [None, None])
    assert torch.equal(grads[Threshold], grads[PlainThreshold])  # the protocol changes no number
    m = two_layer(Threshold(Gaussian(0.2)))
    assert chi.get_widths(m) == {"1": 0.2}
    chi.set_widths(m, [0.5])
    assert m[1].surrogate.width == 0.5
    with chi.recording(m) as recorded:
        m(x)
        frac = chi.neuron_domain_fraction(m)
    assert recorded == [m[1]] and m[1].last_mem is None and not m[1].record
    assert 0 < frac["1"] <= 1


def test_dsr_neurons_are_spiking_but_not_width_adaptable():
    dsr = build_dsr_model("tutorial", (1, 8, 8), 10)
    assert chi.get_widths(dsr) == {}
    assert all(neuron is None for _, _, neuron, _ in chi.weight_layers(dsr))
    with pytest.raises(ValueError, match=r"\['features.0.1'\] have no adaptable surrogate width.*dsr-lif"):
        chi.set_widths(dsr, {"features.0.1": 1.0})
    with pytest.raises(ValueError, match=r"got 1 widths for 0 spiking layers.*'head.neuron' \(dsr-lif\)"):
        chi.set_widths(dsr, [1.0])

    class State:
        model = dsr

    with pytest.raises(ValueError, match="no weight layer followed by a spiking neuron with an adaptable.*features"):
        chi.ChiController().on_fit_start(State())


def test_mixed_model_adapts_only_the_surrogate_neurons():
    m = nn.Sequential(nn.Linear(4, 4), LIF(), nn.Linear(4, 4), DSRIF(), nn.Linear(4, 2))
    assert [n for *_, n in chi.weight_layers(m)] == ["1", None, None]
    assert chi.get_widths(m) == {"1": 1.0}
    chi.set_widths(m, {"1": 0.5})
    with pytest.raises(ValueError, match=r"\['3'\] have no adaptable"):
        chi.set_widths(m, {"1": 0.5, "3": 0.5})
    with pytest.raises(ValueError, match=r"got 2 widths for 1 spiking layers \(\['1'\]\); not counted.*'3' \(dsr-if\)"):
        chi.set_widths(m, [0.5, 0.5])
    assert list(spiking_neurons(m)) == ["1", "3"]


class ForeignLeaky(nn.Module):
    """A neuron from another library (snnTorch-like): it cannot derive from SpikingNeuron."""

    def __init__(self, spike_grad):
        super().__init__()
        self.spike_grad, self.threshold = spike_grad, 1.0

    def forward(self, x):
        return self.spike_grad(x - self.threshold)


class ForeignView:
    """The adapter's view: the protocol's attributes, read and written through to the module."""

    kind = "foreign-leaky"

    def __init__(self, module):
        self.module = module

    surrogate = property(lambda self: self.module.spike_grad)
    v_th = property(lambda self: self.module.threshold)
    width_adaptable = True
    width = property(lambda self: self.module.spike_grad.width,
                     lambda self, w: setattr(self.module.spike_grad, "width", w))


@pytest.fixture
def foreign():
    register_neuron_type(ForeignLeaky, ForeignView)
    yield
    neuron_base.unregister_neuron_type(ForeignLeaky)


def test_a_registered_foreign_neuron_is_seen_by_chi_and_memory(foreign):
    m = two_layer(ForeignLeaky(Gaussian(0.2)))
    assert is_spiking(m[1]) and isinstance(as_spiking(m[1]), ForeignView)
    assert list(spiking_neurons(m)) == ["1"] and chi.get_widths(m) == {"1": 0.2}
    chi.set_widths(m, {"1": 0.4})
    assert m[1].spike_grad.width == 0.4
    x = torch.rand(3, 2, 4)
    assert memory.saved_tensor_bytes(m, x)[1] == 3 * 2 * 3 * 4
    m(x).sum().backward()
    assert chi.measure(m).tol["0.0"] == 1e-3


def test_registration_errors():
    with pytest.raises(ValueError, match="is a SpikingNeuron"):
        register_neuron_type(Threshold, ForeignView)
    with pytest.raises(ValueError, match="needs an nn.Module subclass"):
        register_neuron_type(int, ForeignView)
    with pytest.raises(ValueError, match="adapter must be callable"):
        register_neuron_type(ForeignLeaky, None)
    with pytest.raises(ValueError, match="not a registered neuron type"):
        neuron_base.unregister_neuron_type(ForeignLeaky)
    register_neuron_type(ForeignLeaky, lambda m: object())
    try:
        with pytest.raises(TypeError, match="lacks"):
            as_spiking(ForeignLeaky(Triangle()))
    finally:
        neuron_base.unregister_neuron_type(ForeignLeaky)
    assert not is_spiking(ForeignLeaky(Triangle()))


def test_one_place_for_constants_and_checks():
    assert neurons.RESETS is fused.RESETS is neuron_base.RESETS == ("hard", "subtract")


@pytest.mark.parametrize("kw, match", [
    (dict(tau=0.0), r"tau \(decay factor\) must be in \(0, 1\], got 0.0"),
    (dict(tau=float("nan")), r"tau \(decay factor\) must be a finite number in \(0, 1\], got nan"),
    (dict(tau="0.5"), r"tau \(decay factor\) must be a finite number"),
    (dict(v_th=0), r"v_th must be > 0, got 0"),
    (dict(v_th=float("inf")), r"v_th must be a finite number > 0, got inf"),
    (dict(reset="soft"), r"reset must be one of \('hard', 'subtract'\), got 'soft'"),
    (dict(detach_reset="no"), r"detach_reset must be True or False, got 'no'"),
])
def test_neurons_and_fused_share_the_checks(kw, match):
    with pytest.raises(ValueError, match=match):
        LIF(**kw)
    with pytest.raises(ValueError, match=match):
        fused.lif_fused(torch.zeros(3, 2), **kw)


def test_inputs_checked_alike():
    for run in (LIF(), DSRIF(), lambda x: fused.lif_fused(x)):
        with pytest.raises(ValueError, match=r"time-first tensor \[T, B, \.\.\.\].*got shape \(5,\)"):
            run(torch.zeros(5))
        with pytest.raises(ValueError, match=r"T >= 1, got shape \(0, 2\)"):
            run(torch.zeros(0, 2))
        with pytest.raises(TypeError, match="got list"):
            run([1.0, 2.0])
    assert LIF(tau=torch.tensor(0.25)).tau == 0.25 and LIF(detach_reset=1).detach_reset is True
