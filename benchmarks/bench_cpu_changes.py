"""What each CPU change buys in one training step of the tutorial network (T = 8, B = 64, 2x24x24, SDT, Adam).

Every configuration runs in its own process (malloc tuning is process-wide, set at ``import snnlab``), switched
with the environment variables the library reads, in this order (each row adds one change):

    baseline           SNNLAB_FAST_POOL=0 SNNLAB_MALLOC_TUNE=0 SNNLAB_CPU_KERNEL=0 SNNLAB_FAST_BN=0
    + exact 2x2 pool   (snnlab.layers._AvgPool2x2)
    + malloc tuning    (snnlab.cpu.tune_malloc)
    + C LIF and pool   (snnlab.kernels.cpu_lif, cpu_pool)
    + C BatchNorm      (snnlab.kernels.cpu_bn)

Each process builds the same seeded model and input, takes 5 warm-up steps, then the median of ``--repeats`` steps;
the rows alternate over ``--rounds`` rounds and the table gives each row's median over the rounds. Checked: every
row gives bitwise the same first output, first gradients and weights after all its steps (each change is exact).

    python benchmarks/bench_cpu_changes.py --threads 1
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

_SWITCHES = ("SNNLAB_FAST_POOL", "SNNLAB_MALLOC_TUNE", "SNNLAB_CPU_KERNEL", "SNNLAB_FAST_BN")
ROWS = {  # row k switches on the first k changes
    name: {v: "1" if i < k else "0" for i, v in enumerate(_SWITCHES)}
    for k, name in enumerate(["baseline", "+ exact 2x2 pool", "+ malloc tuning", "+ C LIF and pool kernels", "+ C BatchNorm"])
}

CHILD = r"""
import statistics, sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
from snnlab.losses import sdt_loss
from snnlab.models import TutorialSNN
torch.manual_seed(0)
model = TutorialSNN(input_shape=(2, 24, 24), num_classes=10)
x = (torch.rand(8, 64, 2, 24, 24) < 0.2).float()
y = torch.randint(0, 10, (64,))
opt = torch.optim.Adam(model.parameters(), 1e-3)
def step():
    out = model(x)
    loss = sdt_loss(out, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return out
times = []
for i in range(5 + int(sys.argv[2])):
    t0 = time.perf_counter()
    out = step()
    times.append(time.perf_counter() - t0)
    if i == 0:  # the first step's output and gradients (before any update)
        first = float(out.double().sum())
        grads = sum(float(p.grad.double().abs().sum()) for p in model.parameters())
weights = sum(float(p.double().sum()) for p in model.parameters())
print(statistics.median(times[5:]), repr(first), repr(grads), repr(weights))
"""


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    times: dict = {r: [] for r in ROWS}
    checks = set()
    for k in range(args.rounds):
        order = list(ROWS)[k % len(ROWS):] + list(ROWS)[:k % len(ROWS)]
        for row in order:
            out = subprocess.run([sys.executable, "-c", CHILD, str(args.threads), str(args.repeats)],
                                 capture_output=True, text=True, env={**os.environ, **ROWS[row]}, check=True)
            t, *check = out.stdout.split()
            times[row].append(float(t))
            checks.add(tuple(check))
    # every change is exact: the same first output, first gradients and trained weights in every row
    assert len(checks) == 1, f"the configurations computed different numbers: {checks}"
    base = statistics.median(times["baseline"])
    print(f"tutorial training step, {args.threads} thread(s), median of {args.rounds} rounds x {args.repeats} steps; "
          f"every row computes bitwise the same outputs, gradients and weights")
    print("| change | ms per step | speed-up vs baseline |\n|---|---|---|")
    for row, ts in times.items():
        m = statistics.median(ts)
        print(f"| {row} | {1e3 * m:.1f} | {base / m:.2f}x |")
    return {r: statistics.median(ts) for r, ts in times.items()}


if __name__ == "__main__":
    main()
