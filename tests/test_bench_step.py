"""benchmarks/bench_step.py runs (at tiny sizes) and checks that its rows time equal networks."""
import copy
import math
import sys

import pytest
import torch
from conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_step")


def _has_spikingjelly(bench):
    try:
        bench.import_spikingjelly()
    except ImportError:
        return False
    return True


def test_bench_step_tiny(bench, capsys):
    has_sj = _has_spikingjelly(bench)  # without it the row is skipped (test_bench_step_without_spikingjelly)
    rows = list(bench.ROWS) if has_sj else [row for row in bench.ROWS if row != bench.SJ_ROW]
    result = bench.main(["--tiny"])
    assert set(result["models"]) == {"tutorial", "vggsnn"}
    assert result["machine"]["threads"] == 1 and result["machine"]["device"] == "cpu"
    assert bool(result["machine"]["spikingjelly"]) == has_sj and result["sj_surrogate"] == "snnlab"
    for name, r in result["models"].items():
        assert r["rows"] == rows and bool(r["skipped"]) != has_sj
        assert set(r["median_s"]) == set(rows) == set(r["speedup_vs_snntorch"])
        ratio_sets = [r["speedup_vs_snntorch"]]
        if has_sj:
            assert set(r["speedup_vs_spikingjelly"]) == set(rows)
            ratio_sets.append(r["speedup_vs_spikingjelly"])
            assert r["speedup_vs_spikingjelly"][bench.SJ_ROW] == 1.0
        for row in rows:
            assert len(r["times_s"][row]) == r["repeats"] == 2
            assert all(math.isfinite(t) and t > 0 for t in r["times_s"][row]), (name, row)
            for ratios in ratio_sets:
                assert math.isfinite(ratios[row]) and ratios[row] > 0, (name, row)
        assert r["speedup_vs_snntorch"][bench.BASELINE] == 1.0
        # the equality check ran on every other row, and the network was spiking (not a vacuous check)
        check = r["check"]
        assert set(check["max_abs_diff"]) == set(rows) - {"snnlab fused"}
        assert all(d < check["atol"] == 1e-4 for d in check["max_abs_diff"].values()), check
        # SpikingJelly's multi-step BN normalises over T*B like snnlab's: equal in train mode too
        assert set(check["train_max_abs_diff"]) == set(bench.TRAIN_EQUAL_ROWS) & set(rows)
        assert all(d < check["atol"] for d in check["train_max_abs_diff"].values()), check
        assert check["firing_rates"] and all(0 < v < 1 for v in check["firing_rates"])
    out = capsys.readouterr().out
    assert "snnTorch stepped" in out and "speed-up vs snnTorch" in out
    if has_sj:
        assert bench.SJ_ROW in out and "speed-up vs SpikingJelly" in out and "spikingjelly 2" in out


def test_bench_step_without_spikingjelly(bench, monkeypatch, capsys):
    # a None entry in sys.modules makes ``import spikingjelly...`` raise ImportError
    for mod in [m for m in sys.modules if m == "spikingjelly" or m.startswith("spikingjelly.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "spikingjelly", None)
    result = bench.main(["--tiny", "--model", "tutorial", "--repeats", "1"])
    assert result["machine"]["spikingjelly"] is None
    r = result["models"]["tutorial"]
    assert r["rows"] == [row for row in bench.ROWS if row != bench.SJ_ROW]
    assert "not importable" in r["skipped"][bench.SJ_ROW]
    assert r["speedup_vs_spikingjelly"] is None and bench.SJ_ROW not in r["median_s"]
    assert set(r["check"]["max_abs_diff"]) == {"snnlab reference", "snnTorch stepped"}
    out = capsys.readouterr().out
    assert "skipped" in out and "spikingjelly not importable" in out


def test_bench_step_rejects_bad_arguments(bench):
    for argv in (["--repeats", "0"], ["--model", "resnet"], ["--model", "vggsnn", "--size", "8"],
                 ["--sj-surrogate", "sigmoid"]):
        with pytest.raises(SystemExit):
            bench.main(argv)


def test_stepped_copy_refuses_what_it_cannot_map(bench):
    from snnlab.neurons import LIF

    with pytest.raises(ValueError, match="hard"):
        bench.SnnTorchStepped([LIF(reset="subtract")])


# ---------------------------------------------------------------------------------------------------------
# the SpikingJelly row


@pytest.fixture
def sj(bench):
    if not _has_spikingjelly(bench):
        pytest.skip("spikingjelly is not installed")
    return bench.import_spikingjelly()


def _lif_input(dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(12, 6, 40, generator=g, dtype=torch.float64) * 0.8 + 0.4
    x[:, :, :10] = (x[:, :, :10] * 4).round() / 4  # multiples of 1/4: exact ties u == v_th happen (H(0) = 1)
    return x.to(dtype)


@pytest.mark.parametrize("surrogate", ["snnlab", "builtin"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("kw", [{}, {"reset": "subtract"}, {"detach_reset": True}, {"tau": 1.0}],
                         ids=["tet", "subtract", "detach", "if"])
def test_spikingjelly_neuron_equals_snnlab_lif(bench, sj, surrogate, dtype, kw):
    """The mapped LIFNode: snnlab's spikes exactly, its membranes and input gradients (float64 and float32)."""
    from snnlab.neurons import LIF

    lif = LIF(backend="reference", **kw)
    node = bench.sj_neuron(lif, surrogate)
    neuron, _, functional, _ = sj
    assert isinstance(node, neuron.IFNode if lif.tau == 1 else neuron.LIFNode)
    if not kw:  # the benchmark's neuron: the mapping the module docstring states
        assert (node.tau, node.decay_input, node.v_threshold, node.v_reset, node.detach_reset, node.step_mode) == (
            2.0, False, 1.0, 0.0, False, "m")
    node.store_v_seq = True
    x = _lif_input(dtype)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    spk, mem = lif.simulate(x1)
    functional.reset_net(node)
    spk_sj = node(x2)
    assert 0.05 < float(spk.detach().mean()) < 0.6
    assert bool((mem[:, :, :10] == lif.v_th).any())  # the input has ties at the threshold
    assert torch.equal(spk_sj, spk)
    post = mem * (1 - spk) if lif.reset == "hard" else mem - lif.v_th * spk  # SpikingJelly stores the post-reset v
    torch.testing.assert_close(node.v_seq, post.detach(), rtol=0, atol=1e-12 if dtype == torch.float64 else 1e-6)
    w = torch.randn(spk.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64).to(dtype)
    (spk * w).sum().backward()
    (spk_sj * w).sum().backward()
    assert float(x1.grad.abs().max()) > 0.1
    torch.testing.assert_close(x2.grad, x1.grad, rtol=1e-10 if dtype == torch.float64 else 1e-5,
                               atol=1e-10 if dtype == torch.float64 else 1e-5)
    # and the fused backend agrees with both
    x3 = x.clone().requires_grad_()
    spk_f = LIF(backend="fused", **kw)(x3)
    assert torch.equal(spk_f, spk_sj)
    (spk_f * w).sum().backward()
    torch.testing.assert_close(x3.grad, x2.grad, rtol=1e-10 if dtype == torch.float64 else 1e-5,
                               atol=1e-10 if dtype == torch.float64 else 1e-5)


def test_spikingjelly_surrogate_wrapper_is_the_lif_surrogate(bench, sj):
    from snnlab.neurons import LIF

    lif = LIF()
    node = bench.sj_neuron(lif)
    assert isinstance(node.surrogate_function, bench.SnnlabSurrogate)
    assert node.surrogate_function.surrogate is lif.surrogate
    x = torch.tensor([-1.5, -0.5, 0.0, 0.25, 2.0], dtype=torch.float64, requires_grad=True)
    s = node.surrogate_function(x)
    s.sum().backward()
    assert s.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]  # H(0) = 1
    assert x.grad.tolist() == [0.0, 0.5, 1.0, 0.75, 0.0]  # triangle of width 1
    _, _, _, sj_surrogate = sj
    builtin = bench.sj_neuron(lif, "builtin").surrogate_function
    assert isinstance(builtin, sj_surrogate.PiecewiseQuadratic) and builtin.alpha == 1.0


@pytest.mark.parametrize("model", ["tutorial", "vggsnn"])
def test_spikingjelly_network_equals_snnlab_in_train_mode(bench, sj, model):
    """The whole SpikingJelly network (float64, train mode, BN over T*B): same outputs and parameter gradients."""
    from snnlab.losses import sdt_loss

    spec = bench.BENCHES[model]
    size = bench.TINY[model][2]
    torch.manual_seed(0)
    base = spec.build(size).double()
    x = (torch.rand(3, 2, 2, size, size, dtype=torch.float64) < 0.3).double()
    y = torch.tensor([1, 7])
    bench.calibrate_bn(base, x)
    ref = bench.with_backend(base, "fused")
    net = bench.SpikingJellyMultiStep(spec.layers(copy.deepcopy(base)))
    assert next(net.parameters()).dtype == torch.float64
    assert all(getattr(m, "step_mode", "m") == "m" for m in net.net)
    out_ref, out_sj = ref(x), net(x)
    torch.testing.assert_close(out_sj, out_ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(net(x), out_ref, rtol=1e-10, atol=1e-10)  # reset_net: no state carried over
    sdt_loss(out_ref, y).backward()
    sdt_loss(out_sj, y).backward()
    g_ref = [p.grad for p in ref.parameters()]
    g_sj = [p.grad for p in net.parameters()]
    assert len(g_ref) == len(g_sj) and any(float(g.abs().max()) > 0 for g in g_ref)
    for a, b in zip(g_sj, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)


def test_check_equal_fails_loudly_on_a_different_spikingjelly_net(bench, sj):
    spec = bench.BENCHES["tutorial"]
    torch.manual_seed(0)
    base = spec.build(24)
    x = (torch.rand(2, 3, 2, 24, 24) < 0.2).float()
    bench.calibrate_bn(base, x)
    net = bench.SpikingJellyMultiStep(spec.layers(copy.deepcopy(base)))
    with torch.no_grad():
        net.net[-1].bias.add_(1e-2)  # the readout's bias: every output moves by 1e-2
    models = {"snnlab fused": bench.with_backend(base, "fused"), bench.SJ_ROW: net}
    with pytest.raises(AssertionError, match="SpikingJelly multi-step"):
        bench.check_equal(models, x, 1e-4, bench.TRAIN_EQUAL_ROWS)


def test_spikingjelly_copy_refuses_what_it_cannot_map(bench, sj):
    from torch import nn

    with pytest.raises(ValueError, match="MaxPool2d"):
        bench.SpikingJellyMultiStep([nn.MaxPool2d(2)])
