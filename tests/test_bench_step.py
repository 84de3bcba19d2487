"""benchmarks/bench_step.py runs (at tiny sizes) and checks that its rows time equal networks."""
import math

import pytest
from conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_step")


def test_bench_step_tiny(bench, capsys):
    result = bench.main(["--tiny"])
    assert set(result["models"]) == {"tutorial", "vggsnn"}
    assert result["machine"]["threads"] == 1 and result["machine"]["device"] == "cpu"
    for name, r in result["models"].items():
        assert set(r["median_s"]) == set(bench.ROWS) == set(r["speedup_vs_snntorch"])
        for row in bench.ROWS:
            assert len(r["times_s"][row]) == r["repeats"] == 2
            assert all(math.isfinite(t) and t > 0 for t in r["times_s"][row]), (name, row)
            assert math.isfinite(r["speedup_vs_snntorch"][row]) and r["speedup_vs_snntorch"][row] > 0
        # the equality check ran on every other row, and the network was spiking (not a vacuous check)
        check = r["check"]
        assert set(check["max_abs_diff"]) == {"snnlab reference", "snnTorch stepped"}
        assert all(d < check["atol"] == 1e-4 for d in check["max_abs_diff"].values()), check
        assert check["firing_rates"] and all(0 < v < 1 for v in check["firing_rates"])
    out = capsys.readouterr().out
    assert "snnTorch stepped" in out and "speed-up vs snnTorch" in out


def test_bench_step_rejects_bad_arguments(bench):
    for argv in (["--repeats", "0"], ["--model", "resnet"], ["--model", "vggsnn", "--size", "8"]):
        with pytest.raises(SystemExit):
            bench.main(argv)


def test_stepped_copy_refuses_what_it_cannot_map(bench):
    from snnlab.neurons import LIF

    with pytest.raises(ValueError, match="hard"):
        bench.SnnTorchStepped([LIF(reset="subtract")])
