"""``make gpu-check``: everything a GPU should confirm, in one command and one markdown report.

1. the test suite's CUDA cases (``pytest -m cuda tests/test_cuda.py``): the fused Triton kernels against the
   reference loop for every reset and surrogate in float32, float16 and bfloat16 (contiguous, channels-last and
   strided inputs), an AMP training step of every model, a resumed GPU run;
2. one training step of every recipe's architecture at the recipe's batch size and T: images per second and
   peak memory, AMP on and off (an out-of-memory is reported, not fatal);
3. the tutorial model at growing batch sizes until the GPU is full (or the time budget is spent);
4. the LIF neuron alone (forward + backward, ``B*N = 2**22``, ``T = 16``): neuron-steps per second and the
   bytes it moves (24 per neuron-step in float32, 12 in bfloat16: the input, spikes and membrane forward, the
   incoming gradient, membrane and input gradient backward) as a fraction of the measured device-to-device copy
   bandwidth; SpikingJelly's multi-step ``LIFNode`` in the same run when SpikingJelly imports.

    python benchmarks/gpu_check.py                 # on a GPU machine: the report, also written to gpu-check.md
    python benchmarks/gpu_check.py --dry           # CPU, tiny sizes, seconds: the check of the check (CI)

Needs only torch and snnlab from this checkout (no snnTorch; SpikingJelly and Triton optional). ``main(argv)``
returns the report's sections as a dict (``tests/test_gpu_check.py`` runs the dry mode).
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_neuron import _sync, copy_bandwidth  # noqa: E402
from snnlab import __version__, methods, recipes  # noqa: E402
from snnlab.config import TrainConfig  # noqa: E402
from snnlab.losses import sdt_loss  # noqa: E402
from snnlab.neurons import LIF  # noqa: E402

INPUTS = {"cifar10": ((3, 32, 32), 10), "cifar100": ((3, 32, 32), 100), "dvs-cifar10": ((2, 48, 48), 10),
          "imagenet": ((3, 224, 224), 1000), "digits": ((1, 8, 8), 10), "dvs-digits": ((2, 24, 24), 10)}
BYTES_PER_STEP = {torch.float32: 24, torch.bfloat16: 12}


class _Shape:
    """What a method's ``build_model`` reads from a data bundle."""

    def __init__(self, input_shape, num_classes):
        self.input_shape, self.num_classes = input_shape, num_classes


def _timed(fn, device, warmup: int, repeats: int) -> float:
    """Median seconds of ``fn()`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def machine(device) -> dict:
    info = {"snnlab": __version__, "torch": torch.__version__, "python": platform.python_version(),
            "device": str(device), "cuda": torch.version.cuda or "none"}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["memory_GiB"] = round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1)
    try:
        import triton

        info["triton"] = triton.__version__
    except Exception as e:  # noqa: BLE001 -- any import failure means "no Triton"
        info["triton"] = f"not available ({type(e).__name__})"
    return info


def run_tests(dry: bool) -> dict:
    """The CUDA-marked tests in a subprocess; on the dry run on the CPU."""
    env = {**os.environ, **({"SNNLAB_GPU_CHECK_DRY": "1"} if dry else {}), "MPLBACKEND": "Agg"}
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "pytest", "-m", "cuda", "tests/test_cuda.py", "-q", "-rfE",
                        "-p", "no:cacheprovider"], cwd=ROOT, capture_output=True, text=True, env=env)
    lines = r.stdout.strip().splitlines()
    failed = [ln.split(" ", 1)[1] for ln in lines if ln.startswith(("FAILED", "ERROR"))]
    return {"summary": lines[-1] if lines else r.stderr.strip()[-300:], "returncode": r.returncode,
            "failed": failed, "seconds": time.perf_counter() - t0}


def _step_fn(model, x, y, amp: bool, device):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler(device.type, enabled=amp and dtype == torch.float16)

    def step():
        with torch.autocast(device_type=device.type, dtype=dtype, enabled=amp):
            loss = sdt_loss(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    return step


def step_row(name: str, cfg, batch: int, input_shape, classes: int, amp: bool, device, repeats: int) -> dict:
    """One training step of ``cfg``'s model on random input: images/s and peak memory; OOM is a result."""
    row = {"run": name, "model": cfg.model, "method": cfg.method, "T": cfg.T, "batch": batch,
           "input": "x".join(map(str, input_shape)), "amp": amp}
    try:
        torch.manual_seed(0)
        model = methods.method_of(cfg).build_model(cfg, _Shape(input_shape, classes)).to(device)
        x = torch.rand(cfg.T, batch, *input_shape, device=device)
        y = torch.randint(0, classes, (batch,), device=device)
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        s = _timed(_step_fn(model, x, y, amp, device), device, warmup=2, repeats=repeats)
        row.update(ms=1e3 * s, images_per_s=batch / s)
        row["peak_MiB"] = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    except torch.cuda.OutOfMemoryError:
        row.update(ms=None, images_per_s=None, peak_MiB="OOM")
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return row


def recipe_steps(device, dry: bool, deadline: float) -> list[dict]:
    """Every distinct (architecture, method, dataset, T, batch) among the recipes, AMP off and on (dry run: every
    distinct architecture and method once, at T = 2, batch 2, 32 x 32)."""
    rows, seen = [], set()
    for r in recipes.RECIPES.values():
        cfg = r.train_config(device=str(device), epochs=1)
        shape, classes = INPUTS[cfg.dataset]
        batch, T = (2, 2) if dry else (cfg.batch_size, cfg.T)
        if dry:
            shape = (shape[0], 32, 32)
        key = (cfg.model, cfg.method) if dry else (cfg.model, cfg.method, cfg.dataset, T, batch)
        if key in seen:
            continue
        seen.add(key)
        for amp in (False, True):
            if time.perf_counter() > deadline:
                rows.append({"run": r.name, "model": cfg.model, "amp": amp, "ms": None, "peak_MiB": "skipped (budget)"})
                continue
            rows.append(step_row(r.name, cfg.replace(T=T), batch, shape, classes, amp, device, 2 if dry else 5))
    return rows


def tutorial_fill(device, dry: bool, deadline: float) -> list[dict]:
    """The tutorial model on dvs-digits-shaped input, batch doubling until OOM, 90% of memory, or the budget."""
    cfg = TrainConfig(dataset="dvs-digits", T=8, device=str(device))
    rows, batch = [], 2 if dry else 64
    for _ in range(2 if dry else 12):
        if time.perf_counter() > deadline:
            break
        row = step_row("tutorial", cfg, batch, (2, 24, 24), 10, True, device, 2 if dry else 5)
        rows.append(row)
        if row["peak_MiB"] == "OOM" or (device.type == "cuda" and row["peak_MiB"] * 2**20 > 0.45 *
                                        torch.cuda.get_device_properties(device).total_memory):
            break
        batch *= 2
    return rows


def _sj_lif():
    """SpikingJelly's multi-step LIF with snnlab's dynamics (u = 0.5 u + I, hard reset to 0), or None."""
    try:
        from spikingjelly.activation_based import neuron, surrogate
    except Exception:  # noqa: BLE001 -- not installed (it is a benchmark baseline only)
        return None, "not installed"
    kw = dict(tau=2.0, decay_input=False, v_threshold=1.0, v_reset=0.0, surrogate_function=surrogate.ATan(),
              step_mode="m")
    for backend in ("triton", "cupy"):  # its CUDA backends, where this version has them
        try:
            return neuron.LIFNode(**kw, backend=backend), backend
        except Exception:  # noqa: BLE001
            continue
    return neuron.LIFNode(**kw), "torch"


def neuron_rows(device, dry: bool) -> dict:
    """The fused LIF's neuron-steps/s and fraction of the copy bandwidth; SpikingJelly in the same run."""
    T, BN = (4, 2**12) if dry else (16, 2**22)
    bw = copy_bandwidth(device, 4 * (T * BN if not dry else 2**16), repeats=10)
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(T, 64, BN // 64, device=device, dtype=dtype).requires_grad_()
        gy = torch.randn_like(x)
        lif = LIF(tau=0.5, v_th=1.0, surrogate="atan", width=1.0)

        def fwd_bwd(lif=lif, x=x, gy=gy):
            lif(x).backward(gy)
        s = _timed(fwd_bwd, device, warmup=2, repeats=3 if dry else 10)
        steps = T * BN / s
        rows.append({"neuron": "snnlab LIF (fused)", "dtype": str(dtype).split(".")[1],
                     "neuron_steps_per_s": steps, "GB_per_s": steps * BYTES_PER_STEP[dtype] / 1e9,
                     "fraction_of_copy": steps * BYTES_PER_STEP[dtype] / bw})
    sj, backend = _sj_lif()
    if sj is not None:
        from spikingjelly.activation_based import functional

        sj = sj.to(device)
        x = torch.randn(T, 64, BN // 64, device=device).requires_grad_()
        gy = torch.randn_like(x)

        def sj_step():
            functional.reset_net(sj)
            sj(x).backward(gy)
        s = _timed(sj_step, device, warmup=2, repeats=3 if dry else 10)
        rows.append({"neuron": f"SpikingJelly LIFNode ({backend})", "dtype": "float32",
                     "neuron_steps_per_s": T * BN / s, "GB_per_s": T * BN / s * 24 / 1e9,
                     "fraction_of_copy": T * BN / s * 24 / bw})
    return {"T": T, "B_times_N": BN, "copy_GB_per_s": bw / 1e9, "rows": rows, "spikingjelly": backend}


def _table(rows: list[dict], cols: list[str]) -> str:
    def cell(v):
        return "" if v is None else f"{v:.3g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def report(res: dict) -> str:
    m, t, n = res["machine"], res["tests"], res["neuron"]
    out = [f"# snnlab GPU check{' (dry run on the CPU, tiny sizes)' if res['dry'] else ''}", "",
           ", ".join(f"{k}: {v}" for k, v in m.items()), "", "## CUDA test cases", "",
           f"`pytest -m cuda tests/test_cuda.py`: {t['summary']} ({t['seconds']:.0f} s)"]
    out += [f"- failed: {f}" for f in t["failed"]]
    cols = ["run", "model", "method", "T", "batch", "input", "amp", "ms", "images_per_s", "peak_MiB"]
    out += ["", "## One training step per recipe architecture (recipe batch and T)", "", _table(res["steps"], cols),
            "", "## The tutorial model, batch growing", "", _table(res["fill"], cols), "",
            f"## The LIF neuron alone (T = {n['T']}, B*N = {n['B_times_N']}, forward + backward)", "",
            f"device-to-device copy: {n['copy_GB_per_s']:.1f} GB/s (read + write); SpikingJelly: {n['spikingjelly']}",
            "", _table(n["rows"], ["neuron", "dtype", "neuron_steps_per_s", "GB_per_s", "fraction_of_copy"]),
            "", f"total: {res['seconds']:.0f} s"]
    return "\n".join(out) + "\n"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry", action="store_true", help="CPU, tiny sizes: checks the script itself (CI)")
    p.add_argument("--budget", type=float, default=420.0, help="seconds for the benchmarks (default: 420)")
    p.add_argument("--out", default="gpu-check.md", help="the report file (default: gpu-check.md)")
    args = p.parse_args(argv)
    if not args.dry and not torch.cuda.is_available():
        p.error("no CUDA device here: run with --dry for the CPU dry run (make gpu-check DRY=1)")
    device = torch.device("cpu" if args.dry else "cuda")
    t0 = time.perf_counter()
    res = {"dry": args.dry, "machine": machine(device), "tests": run_tests(args.dry)}
    deadline = time.perf_counter() + args.budget
    res["steps"] = recipe_steps(device, args.dry, deadline)
    res["fill"] = tutorial_fill(device, args.dry, deadline)
    res["neuron"] = neuron_rows(device, args.dry)
    res["seconds"] = time.perf_counter() - t0
    text = report(res)
    Path(args.out).write_text(text)
    print(text)
    return res


if __name__ == "__main__":
    main()
