"""Speed of one spiking layer, forward + backward: snnlab fused vs snnlab reference vs snnTorch vs SpikingJelly.

All four compute the same neuron: LIF with decay 0.5 (snnTorch ``beta = 0.5``, SpikingJelly ``tau = 2`` with
``decay_input=False``), threshold 1, hard reset to 0 on the same step, reset not detached, triangle surrogate of
width 1 (SpikingJelly's ``PiecewiseQuadratic(alpha=1)`` is the same function). Before timing, a check round
asserts that they give the same spikes and the same input gradient, so the timings compare equal work.

* snnlab fused: ``snnlab.neurons.LIF()`` (default ``backend="auto"``, which runs the fused node: one autograd node, ``snnlab.fused``).
* snnlab reference: ``LIF(backend="reference")``, the step loop with one autograd graph per step.
* snnTorch: ``snntorch.Leaky(beta=0.5, spike_grad=..., reset_mechanism="zero", reset_delay=False)`` in its usual
  per-step loop, membrane from ``init_leaky()``.
* SpikingJelly 2.0: ``spikingjelly.activation_based.neuron.LIFNode(step_mode="m")``. Version 2.0 has no
  ``backend=`` argument: it dispatches by device to its registered operators (on CPU a PyTorch loop inside one
  custom op; on CUDA its own kernels). The node is reset before every call.

Timing: one process, contenders interleaved round by round (the order rotates), a few warm-up rounds, medians
of ``--repeats`` rounds. The input is ``[T, B, N]`` fp32 with ``B * N`` neurons per step (``B = min(128, B*N)``).

``--gpu`` (needs CUDA): the fused Triton kernels' neuron-steps per second and the fraction of the bandwidth
bound they reach: a neuron-step must move 24 bytes in fp32 (forward: read I, write s and u; backward: read dL/ds
and u, write dL/dI) or 12 in bf16, against the measured device-to-device copy bandwidth.

BPTT memory (VGGSNN, T = 10, fused vs reference) is measured by ``benchmarks/bench_fused_memory.py``.

On a machine shared with other jobs, ``--threads 1`` gives the steadiest numbers: with more threads than free
cores every op of every contender waits on its OpenMP team, and the timings measure the contention.

    python benchmarks/bench_neuron.py                       # T in {8, 32} x B*N in {2^14, 2^16, 2^19}
    python benchmarks/bench_neuron.py --T 8 --sizes 2^19 --repeats 31 --threads 1 2   # the headline case
    python benchmarks/bench_neuron.py --family --T 8 --sizes 2^19 --threads 1 2   # every surrogate x reset
    python benchmarks/bench_neuron.py --gpu
    python benchmarks/bench_neuron.py --tiny                # seconds: a smoke test (tests/test_bench_neuron.py)
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from snnlab import surrogate
from snnlab.neurons import LIF

TAU, V_TH, WIDTH = 0.5, 1.0, 1.0
X_MAX = 0.98  # p[t-1] < v_th gives u[t] < tau v_th + X_MAX < 2 v_th, so after a subtractive reset p[t] < v_th again


def parse_size(s: str) -> int:
    """``"524288"`` or ``"2^19"``."""
    s = s.strip()
    n = 2 ** int(s[2:]) if s.startswith("2^") else int(s)
    if n < 1:
        raise argparse.ArgumentTypeError(f"a size must be a positive number of neurons, got {s!r}")
    return n


#: each framework's own surrogate of the same function, where it has one (``None``: it is given snnlab's
#: surrogate object, which both accept as their spike function). Width w: rectangle ``Rect(alpha = 1/w)``,
#: triangle ``PiecewiseQuadratic(alpha = 1/w)``, sigmoid slope ``k = 4 asinh(1)/w``, atan ``alpha = 4/(pi w)``.
def native_surrogates(shape: str, width: float):
    """``(snnTorch spike_grad or None, SpikingJelly surrogate_function or None)`` for ``shape`` at ``width``."""
    snt = sj = None
    try:
        from snntorch import surrogate as snt_surrogate

        if shape == "atan":
            snt = snt_surrogate.atan(alpha=surrogate.ATan.alpha_from_width(width))
        elif shape == "sigmoid":
            snt = snt_surrogate.sigmoid(slope=surrogate.Sigmoid.k_from_width(width))
    except ImportError:
        pass
    try:
        from spikingjelly.activation_based import surrogate as sj_surrogate

        sj = {"rectangle": lambda: sj_surrogate.Rect(alpha=1.0 / width),
              "triangle": lambda: sj_surrogate.PiecewiseQuadratic(alpha=1.0 / width),
              "sigmoid": lambda: sj_surrogate.Sigmoid(alpha=surrogate.Sigmoid.k_from_width(width)),
              "atan": lambda: sj_surrogate.ATan(alpha=surrogate.ATan.alpha_from_width(width))}.get(shape, lambda: None)()
    except ImportError:
        pass
    return snt, sj


def contenders(device: torch.device, shape: str = "triangle", reset: str = "hard") -> dict:
    """``name -> callable(x) -> spikes [T, ...]`` for the four implementations (same dynamics).

    The reset is never detached (snnTorch's same-step reset, ``reset_delay=False``, always carries the spike's
    gradient). snnTorch's subtractive reset also subtracts once more on the next step when the post-reset
    membrane is still at or above threshold; ``make_input`` keeps every input below ``X_MAX`` so that this never
    happens and the four compute the same recurrence (checked before timing).
    """
    sg = surrogate.get(shape, WIDTH)
    fused = LIF(TAU, V_TH, reset, False, sg, backend="fused")
    ref = LIF(TAU, V_TH, reset, False, surrogate.get(shape, WIDTH), backend="reference")
    out = {"snnlab fused": fused, "snnlab reference": ref}
    snt_sg, sj_sg = native_surrogates(shape, WIDTH)
    try:
        import snntorch

        leaky = snntorch.Leaky(beta=TAU, threshold=V_TH, spike_grad=snt_sg or surrogate.get(shape, WIDTH),
                               reset_mechanism="zero" if reset == "hard" else "subtract",
                               reset_delay=False).to(device)

        def snntorch_loop(x):
            mem = leaky.init_leaky()
            spk = []
            for t in range(x.shape[0]):
                s, mem = leaky(x[t], mem)
                spk.append(s)
            return torch.stack(spk)

        out["snnTorch Leaky"] = snntorch_loop
    except ImportError:
        print("snnTorch is not installed: its column is left out")
    try:
        from spikingjelly.activation_based import neuron as sj_neuron

        node = sj_neuron.LIFNode(tau=1.0 / (1.0 - TAU), decay_input=False, v_threshold=V_TH,
                                 v_reset=0.0 if reset == "hard" else None,
                                 surrogate_function=sj_sg or surrogate.get(shape, WIDTH),
                                 detach_reset=False, step_mode="m").to(device)

        def spikingjelly(x):
            node.reset()
            return node(x)

        out["SpikingJelly LIFNode"] = spikingjelly
    except ImportError:
        print("SpikingJelly is not installed: its column is left out")
    return out


def make_input(T: int, n: int, device, dtype=torch.float32, seed: int = 0):
    b = min(128, n)
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(T, b, n // b, generator=g) * 0.8 + 0.6
    # every input below X_MAX (reflected there, not clipped, so no ties): then the post-reset membrane stays below
    # v_th, and snnTorch's extra next-step subtraction never fires (about a quarter of the neurons spike per step)
    x = torch.where(y > X_MAX, 2 * X_MAX - y, y).to(device, dtype)
    gy = torch.randn(T, b, n // b, generator=g).to(device, dtype)
    return x, gy


def check_agreement(fns: dict, x: torch.Tensor, gy: torch.Tensor) -> None:
    """All contenders must give the same spikes and (to rounding) the same input gradient."""
    results = {}
    for name, f in fns.items():
        xi = x.detach().clone().requires_grad_()
        spk = f(xi)
        spk.backward(gy)
        results[name] = (spk.detach(), xi.grad)
    s0, g0 = results["snnlab reference"]
    for name, (s, g) in results.items():
        if not torch.equal(s, s0):
            raise AssertionError(f"{name}: spikes differ from snnlab reference in {int((s != s0).sum())} places")
        if not torch.allclose(g, g0, rtol=1e-4, atol=1e-5):
            raise AssertionError(f"{name}: input gradient differs from snnlab reference by {float((g - g0).abs().max())}")


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_interleaved(fns: dict, x: torch.Tensor, gy: torch.Tensor, repeats: int, warmup: int = 2) -> dict:
    """Median seconds of forward + backward per contender; contenders alternate within every round."""
    device = x.device
    xr = x.detach().clone().requires_grad_()
    names = list(fns)
    times = {n: [] for n in names}

    def once(name):
        xr.grad = None
        _sync(device)
        t0 = time.perf_counter()
        fns[name](xr).backward(gy)
        _sync(device)
        return time.perf_counter() - t0

    for r in range(warmup + repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:  # rotate the order so no contender always runs first
            dt = once(name)
            if r >= warmup:
                times[name].append(dt)
    return {n: statistics.median(v) for n, v in times.items()}


def speed_table(Ts, sizes, repeats, threads_list, device) -> list[dict]:
    rows = []
    for threads in threads_list:
        torch.set_num_threads(threads)
        fns = contenders(device)
        print(f"\n## forward + backward, fp32, {device}, torch {torch.__version__}, threads = {threads}, "
              f"median of {repeats} interleaved rounds (ms)")
        names = list(fns)
        head = f"| {'T':>3} | {'B x N':>13} | " + " | ".join(f"{n:>20}" for n in names)
        head += " | " + " | ".join(f"{n.split()[0] + ' ' + n.split()[1][:3] + '/fused':>16}" for n in names[1:]) + " |"
        print(head)
        print("|" + "|".join("-" * (len(c) + 0) for c in head.split("|")[1:-1]) + "|")
        for T in Ts:
            for n in sizes:
                x, gy = make_input(T, n, device)
                check_agreement(fns, x[:, :, : max(1, min(x.shape[2], 64))], gy[:, :, : max(1, min(x.shape[2], 64))])
                med = time_interleaved(fns, x, gy, repeats)
                base = med["snnlab fused"]
                line = f"| {T:>3} | {x.shape[1]:>5} x {x.shape[2]:<5} | " + " | ".join(
                    f"{1e3 * med[k]:>20.3f}" for k in names)
                line += " | " + " | ".join(f"{med[k] / base:>16.2f}" for k in names[1:]) + " |"
                print(line, flush=True)
                rows.append({"threads": threads, "T": T, "neurons": n, **{k: med[k] for k in names}})
    return rows


def family_table(T, n, repeats, threads_list, device, shapes=surrogate.FAMILY, resets=("hard", "subtract")) -> list[dict]:
    """Every surrogate of the family x both resets at one size: the four contenders, and the fused layer's
    neuron-steps per second against the measured copy bandwidth (24 bytes per neuron-step in fp32: forward reads
    I and writes s and u, backward reads dL/ds and u and writes dL/dI)."""
    rows = []
    for threads in threads_list:
        torch.set_num_threads(threads)
        bw = copy_bandwidth(device, nbytes=1 << 28)
        print(f"\n## every surrogate and reset: forward + backward, fp32, {device}, T = {T}, B*N = {n}, threads = "
              f"{threads}, median of {repeats} interleaved rounds (ms); copy bandwidth {bw / 1e9:.1f} GB/s")
        print("| surrogate | reset | snnlab fused | snnTorch | SpikingJelly | vs snnTorch | vs SpikingJelly "
              "| fused GB/s at 24 B/neuron-step | of copy bw |")
        print("|---|---|---|---|---|---|---|---|---|")
        x, gy = make_input(T, n, device)
        for shape in shapes:
            for reset in resets:
                fns = contenders(device, shape, reset)
                check_agreement(fns, x[:, :, :64], gy[:, :, :64])
                fns.pop("snnlab reference")  # checked against, not timed here (the size table times it)
                med = time_interleaved(fns, x, gy, repeats)
                base = med["snnlab fused"]
                rate = 24 * T * n / base
                cell = lambda k: f"{1e3 * med[k]:.2f}" if k in med else "-"  # noqa: E731
                ratio = lambda k: f"{med[k] / base:.2f}x" if k in med else "-"  # noqa: E731
                print(f"| {shape} | {reset} | {cell('snnlab fused')} | {cell('snnTorch Leaky')} | "
                      f"{cell('SpikingJelly LIFNode')} | {ratio('snnTorch Leaky')} | {ratio('SpikingJelly LIFNode')} "
                      f"| {rate / 1e9:.1f} | {rate / bw:.2f} |", flush=True)
                rows.append({"threads": threads, "T": T, "neurons": n, "shape": shape, "reset": reset,
                             "copy_bw": bw, **med})
    return rows


# ---------------------------------------------------------------------------------------------------------
# GPU: throughput against the bandwidth bound


def copy_bandwidth(device, nbytes: int = 1 << 30, repeats: int = 20) -> float:
    """Measured copy bandwidth on ``device`` (device-to-device on CUDA), bytes/s (read + write counted)."""
    a = torch.empty(nbytes // 4, device=device)
    b = torch.empty_like(a)
    b.copy_(a)
    if device.type != "cuda":
        t0 = time.perf_counter()
        for _ in range(repeats):
            b.copy_(a)
        return 2 * nbytes * repeats / (time.perf_counter() - t0)
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        b.copy_(a)
    end.record()
    torch.cuda.synchronize()
    return 2 * nbytes * repeats / (start.elapsed_time(end) / 1e3)


def gpu_report(Ts, sizes, repeats) -> None:
    if not torch.cuda.is_available():
        print("--gpu: no CUDA device here; nothing measured")
        return
    from snnlab import fused
    from snnlab.kernels import triton_available, triton_error

    device = torch.device("cuda")
    print(f"\n## GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}, Triton: "
          f"{'yes' if triton_available() else triton_error()}")
    bw = copy_bandwidth(device)
    print(f"device-to-device copy: {bw / 1e9:.0f} GB/s (read + write)")
    sg = surrogate.Triangle(WIDTH)
    print("| dtype | T | neurons | fused fwd+bwd (ms) | neuron-steps/s | bytes/neuron-step | fraction of copy bw |")
    print("|---|---|---|---|---|---|---|")
    for dtype, nbytes in ((torch.float32, 24), (torch.bfloat16, 12)):
        for T in Ts:
            for n in sizes:
                x, gy = make_input(T, n, device, dtype)
                x.requires_grad_()
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                ts = []
                for r in range(repeats + 3):
                    x.grad = None
                    start.record()
                    fused.lif_fused(x, TAU, V_TH, "hard", False, sg).backward(gy)
                    end.record()
                    torch.cuda.synchronize()
                    if r >= 3:
                        ts.append(start.elapsed_time(end) / 1e3)
                t = statistics.median(ts)
                steps = T * n / t
                print(f"| {str(dtype).split('.')[-1]} | {T} | {n} | {1e3 * t:.3f} | {steps:.3g} | {nbytes} | "
                      f"{steps * nbytes / bw:.2f} |", flush=True)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--T", type=int, nargs="+", default=[8, 32], help="time steps (default 8 32)")
    p.add_argument("--sizes", type=parse_size, nargs="+", default=[2**14, 2**16, 2**19],
                   help="neurons per step B*N, as numbers or 2^k (default 2^14 2^16 2^19)")
    p.add_argument("--repeats", type=int, default=15, help="timed rounds per case (median reported)")
    p.add_argument("--threads", type=int, nargs="+", default=[torch.get_num_threads()],
                   help="torch.set_num_threads values to run (one table each)")
    p.add_argument("--tiny", "--quick", action="store_true", help="tiny sizes, few repeats: a smoke test")
    p.add_argument("--gpu", action="store_true", help="Triton kernels on CUDA: throughput vs bandwidth bound")
    p.add_argument("--no-speed", action="store_true", help="skip the CPU speed table")
    p.add_argument("--family", action="store_true",
                   help="every surrogate x both resets at the first --T and --sizes (vs snnTorch and SpikingJelly, "
                        "and the fraction of the copy bandwidth)")
    a = p.parse_args(argv)
    if a.repeats < 1 or any(t < 1 for t in a.T) or any(t < 1 for t in a.threads):
        p.error(f"--repeats, --T and --threads must be positive, got {a.repeats}, {a.T}, {a.threads}")
    if a.tiny:
        a.T, a.sizes, a.repeats = [4], [256], 2
    result = {}
    if a.family:
        result["family"] = family_table(a.T[0], a.sizes[0], a.repeats, a.threads, torch.device("cpu"))
    elif not a.no_speed:
        result["speed"] = speed_table(a.T, a.sizes, a.repeats, a.threads, torch.device("cpu"))
    if a.gpu:
        gpu_report(a.T, a.sizes, a.repeats)
    return result


if __name__ == "__main__":
    main()
