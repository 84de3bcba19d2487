"""benchmarks/gpu_check.py (make gpu-check): its dry run on the CPU runs every section and writes the report."""
import math

from conftest import load_benchmark


def test_gpu_check_dry_run_writes_every_section(tmp_path, capsys):
    gc = load_benchmark("gpu_check")
    out = tmp_path / "report.md"
    res = gc.main(["--dry", "--out", str(out)])
    assert res["dry"] and res["machine"]["device"] == "cpu"
    t = res["tests"]
    assert t["returncode"] == 0 and not t["failed"] and " passed" in t["summary"], t
    models = {r["model"] for r in res["steps"]}
    assert {"resnet19", "vggsnn", "spiking-resnet34", "sew-resnet34", "preact_resnet18", "vgg11"} <= models
    for r in res["steps"] + res["fill"]:
        assert math.isfinite(r["images_per_s"]) and r["images_per_s"] > 0, r
    assert {r["amp"] for r in res["steps"]} == {False, True}
    n = res["neuron"]
    assert n["copy_GB_per_s"] > 0 and [r["dtype"] for r in n["rows"][:2]] == ["float32", "bfloat16"]
    assert all(0 < r["fraction_of_copy"] and r["neuron_steps_per_s"] > 0 for r in n["rows"])
    text = out.read_text()
    for heading in ("# snnlab GPU check (dry run", "## CUDA test cases", "## One training step per recipe",
                    "## The tutorial model", "## The LIF neuron alone"):
        assert heading in text
    assert text in capsys.readouterr().out


def test_gpu_check_without_cuda_says_use_dry(capsys):
    import pytest
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    gc = load_benchmark("gpu_check")
    with pytest.raises(SystemExit) as e:
        gc.main([])
    assert e.value.code == 2 and "run with --dry" in capsys.readouterr().err
