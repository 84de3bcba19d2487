"""Speed of one training step: snnlab's multi-step model vs the same model stepped with snntorch.Leaky.

snnlab runs every conv/BN/pool once on the merged [T*B, ...] tensor and only the neuron recurrence step by
step; the snnTorch reference calls every layer once per time step (the usual snnTorch tutorial loop).
Both have the same weights, the same LIF dynamics (tau = beta = 0.5, hard reset at the same step, triangle
surrogate) and the same optimiser. Prints the median of several timed steps in one process.

    python benchmarks/bench_step.py [--T 8] [--batch 64] [--repeats 15] [--device cpu]
"""
from __future__ import annotations

import argparse
import statistics
import time

import snntorch as snn
import torch
from torch import nn

import snnlab
from snnlab import surrogate
from snnlab.models import TutorialSNN


class SnnTorchStepped(nn.Module):
    """The TutorialSNN architecture written the snnTorch way: a Python loop over time through every layer."""

    def __init__(self, ref: TutorialSNN):
        super().__init__()
        conv1, bn1 = ref.features[0][0][0], ref.features[0][0][1]
        conv2, bn2 = ref.features[2][0][0], ref.features[2][0][1]
        self.conv1, self.bn1, self.conv2, self.bn2 = conv1, bn1, conv2, bn2
        self.pool = nn.AvgPool2d(2)
        self.fc = ref.readout[1]
        kw = dict(beta=0.5, threshold=1.0, reset_mechanism="zero", reset_delay=False)
        self.lif1 = snn.Leaky(spike_grad=surrogate.Triangle(1.0), **kw)
        self.lif2 = snn.Leaky(spike_grad=surrogate.Triangle(1.0), **kw)

    def forward(self, x):  # x: [T, B, C, H, W]
        mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        out = []
        for t in range(x.shape[0]):
            s1, mem1 = self.lif1(self.bn1(self.conv1(x[t])), mem1)
            s2, mem2 = self.lif2(self.bn2(self.conv2(self.pool(s1))), mem2)
            out.append(self.fc(self.pool(s2).flatten(1)))
        return torch.stack(out)


def make_step(model, x, y):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        loss = snnlab.losses.sdt_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def timed(step, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--T", type=int, default=8)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    device = torch.device(a.device)
    torch.manual_seed(0)
    x = (torch.rand(a.T, a.batch, 2, 24, 24, device=device) < 0.1).float()
    y = torch.randint(0, 10, (a.batch,), device=device)
    ours = TutorialSNN((2, 24, 24), 10).to(device)
    ref = SnnTorchStepped(TutorialSNN((2, 24, 24), 10)).to(device)
    steps = {"snnlab (time-merged)": make_step(ours, x, y), "snnTorch Leaky, stepped": make_step(ref, x, y)}
    for step in steps.values():  # warm-up
        step(), step()
    # interleaved, so that a noisy neighbour slows both sides alike; the ratio is taken per pair
    times = {name: [] for name in steps}
    for _ in range(a.repeats):
        for name, step in steps.items():
            times[name].append(timed(step, device))
    ratios = [b / o for o, b in zip(*times.values())]
    print(f"one training step, tutorial model, T={a.T}, batch={a.batch}, input 2x24x24, {device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name, ts in times.items():
        print(f"  {name:26s} median {1000 * statistics.median(ts):8.1f} ms  ({a.repeats} steps)")
    print(f"  speed-up (median of per-pair ratios): {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
