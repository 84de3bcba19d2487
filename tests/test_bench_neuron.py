"""The fused-LIF benchmark scripts run (at tiny sizes, not timed) so they never rot."""
import pytest
from conftest import load_benchmark


def test_bench_neuron_tiny(capsys):
    bench = load_benchmark("bench_neuron")
    result = bench.main(["--tiny", "--threads", "1"])
    (row,) = result["speed"]  # one T x one size; the agreement check ran before timing
    assert {"snnlab fused", "snnlab reference"} <= set(row)
    assert all(row[k] > 0 for k in row if k not in ("threads", "T", "neurons"))
    assert "snnlab ref/fused" in capsys.readouterr().out  # the ratio columns are printed


def test_bench_neuron_rejects_bad_sizes():
    bench = load_benchmark("bench_neuron")
    with pytest.raises(SystemExit):
        bench.main(["--sizes", "0"])
    with pytest.raises(SystemExit):
        bench.main(["--repeats", "0"])


def test_bench_fused_memory_tiny():
    bench = load_benchmark("bench_fused_memory")
    res = bench.main(["--tiny"])
    s = res["saved"]
    assert s["fused"]["in_lif"] < s["reference"]["in_lif"]
    assert res["ratio_total"] == s["fused"]["total"] / s["reference"]["total"] < 1


def test_bench_neuron_family_tiny(capsys):
    """Every surrogate x both resets: snnTorch and SpikingJelly (their own surrogates where they have the same
    function) give the same spikes and gradients as snnlab before anything is timed."""
    bench = load_benchmark("bench_neuron")
    rows = bench.main(["--family", "--tiny", "--threads", "1"])["family"]
    from snnlab.surrogate import FAMILY

    assert {(r["shape"], r["reset"]) for r in rows} == {(s, r) for s in FAMILY for r in ("hard", "subtract")}
    assert all(r["snnlab fused"] > 0 and r["copy_bw"] > 0 for r in rows)
    out = capsys.readouterr().out
    assert "| gaussian | subtract |" in out and "of copy bw" in out


def test_bench_neuron_native_surrogates_are_the_same_functions():
    """The frameworks' own surrogates used in the family table are snnlab's at the same width."""
    torch = pytest.importorskip("torch")
    bench = load_benchmark("bench_neuron")
    from snnlab import surrogate

    x = torch.linspace(-3, 3, 601, dtype=torch.float64)
    for shape in surrogate.FAMILY:
        snt, sj = bench.native_surrogates(shape, 0.7)
        want = surrogate.get(shape, 0.7).grad(x)
        for fn in (snt, sj):
            if fn is None:
                continue
            xx = x.clone().requires_grad_()
            fn(xx).backward(torch.ones_like(x))
            torch.testing.assert_close(xx.grad, want, rtol=1e-6, atol=1e-9, msg=f"{shape}: {fn}")
