"""Several processes, GPUs and machines: ``torchrun`` + DistributedDataParallel, used by ``snnlab.train.fit``.

Launch::

    torchrun --nproc_per_node=4 -m snnlab train --dataset cifar10 --model resnet19 --batch-size 128 ...
    # several machines: the same command on each, with --nnodes=2 --node_rank=K --rdzv-endpoint=HOST:PORT

``fit`` notices the ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` variables that ``torchrun`` sets; without them
(or with ``WORLD_SIZE=1``) nothing here is used and a run is bitwise the single-process run.

Semantics (what a run on W processes computes):

* **Global batch.** ``config.batch_size`` is the *global* batch; each rank gets ``batch_size // W``
  samples (``batch_size`` must be divisible by W). The ranks split each global batch of the single-process
  loader (same seed, same shuffled order; ``ShardedBatchSampler``), so step k of a W-process run sees exactly
  the samples of step k of a one-process run. A checkpoint therefore resumes on any number of processes.
* **Gradients.** DDP averages gradients over ranks. Each rank's loss is multiplied by
  ``W * n_rank / n_global`` first, so the average is the gradient of the mean loss over the global batch even
  when the last batch of an epoch splits unevenly. DSR's trainable thresholds are ``nn.Parameter`` s, so their
  gradients are all-reduced like every weight's.
* **BatchNorm.** BN layers become ``SyncBatchNorm`` (statistics over the global ``T * batch``, as TET's and
  DSR's time-merged BN on one device). PyTorch's ``nn.SyncBatchNorm`` runs on GPUs only; on CPU (gloo)
  ``SyncBatchNorm`` here computes the same global statistics with differentiable all-reduces, so CPU runs
  (and the tests) have the same semantics. With synchronised BN and the loss scaling above, a W-process run
  equals the one-process run up to floating-point summation order (all-reduce sums, BN sums in a different
  order), not bitwise.
* **Randomness.** Every rank seeds like the single-process run, plus its rank (rank 0 = the single-process
  seed). Dropout masks are drawn per rank, so a model with dropout does not reproduce a one-process run.
* **Files.** Only rank 0 writes ``config.json``, ``metrics.csv``, ``checkpoint.pt``, ``results.json`` and
  shows progress bars; the other ranks wait at a barrier after each checkpoint. On resume rank 0 reads the
  checkpoint and broadcasts it, so the other machines need no shared file system (only the data).
* **Metrics.** Training loss/accuracy are summed over ranks; evaluation splits the test set over the ranks
  (rank r takes samples r, r+W, ...) and sums the counts, so the logged numbers are the global ones.
* Not supported with W > 1: ``chi_target`` (the chi controller adapts each rank's widths from its own
  batch, which would let the ranks' models drift apart).

Backends: NCCL on CUDA (one GPU per process: ``cuda:LOCAL_RANK``), gloo on CPU.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

__all__ = [
    "DistContext",
    "env_world",
    "setup",
    "SyncBatchNorm",
    "convert_sync_batchnorm",
    "ShardedBatchSampler",
    "shard_train_loader",
    "shard_eval_loader",
]


def env_world() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from the variables ``torchrun`` sets (``(0, 1, 0)`` without them)."""

    def get(name, default):
        v = os.environ.get(name, default)
        try:
            return int(v)
        except ValueError:
            raise ValueError(f"environment variable {name} must be an integer, got {v!r}") from None

    return get("RANK", "0"), get("WORLD_SIZE", "1"), get("LOCAL_RANK", "0")


@dataclass
class DistContext:
    """Where this process stands: ``rank``, ``world_size``, ``local_rank``; single-process when world_size == 1."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    created_group: bool = False  #: True if ``setup`` initialised the process group (``close`` destroys it)
    bn_group: object = None  #: a separate process group for BatchNorm statistics

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        """Sum ``t`` over ranks (on a copy, on the GPU for NCCL; returned on ``t``'s device). Identity if single-process."""
        if not self.enabled:
            return t
        if self.backend == "nccl":  # NCCL reduces CUDA tensors only
            r = t.to(torch.device("cuda", torch.cuda.current_device()), copy=True)
            dist.all_reduce(r)
            return r.to(t.device)
        t = t.clone()
        dist.all_reduce(t)
        return t

    def broadcast_object(self, obj):
        """Rank 0's ``obj`` on every rank (pickled)."""
        if not self.enabled:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def close(self) -> None:
        if self.created_group and dist.is_initialized():
            dist.destroy_process_group()
        self.created_group = False


def setup(device: torch.device) -> tuple[DistContext, torch.device]:
    """Join the process group that ``torchrun`` describes; return the context and this rank's device.

    ``device`` is the device the config resolved to: a CUDA device becomes ``cuda:LOCAL_RANK`` (one GPU per
    process) and the backend is NCCL; on CPU the backend is gloo. Without torchrun (``WORLD_SIZE`` unset or 1)
    this returns a single-process context and ``device`` unchanged.
    """
    rank, world, local_rank = env_world()
    if world <= 1:
        return DistContext(), device
    if not dist.is_available():  # pragma: no cover - every standard PyTorch build has it
        raise RuntimeError("WORLD_SIZE > 1 but this PyTorch has no torch.distributed")
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA device(s): start at most that "
                "many processes per machine (torchrun --nproc_per_node)"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise ValueError(f"distributed training supports CUDA (nccl) and CPU (gloo) devices, got {device}")
    created = False
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
        created = True
    if dist.get_world_size() != world or dist.get_rank() != rank:
        raise RuntimeError(
            f"the initialised process group (rank {dist.get_rank()} of {dist.get_world_size()}) does not match "
            f"RANK={rank}, WORLD_SIZE={world}"
        )
    ctx = DistContext(rank, world, local_rank, dist.get_backend(), created)
    # BN statistics get their own group, so their all-reduces never interleave with DDP's gradient buckets
    ctx.bn_group = dist.new_group(backend=ctx.backend)
    return ctx, device


# ---------------------------------------------------------------------------------------------- BatchNorm
class _AllReduceSum(torch.autograd.Function):
    """Differentiable sum over ranks: forward all-reduces ``x``, backward all-reduces the gradient
    (d/dx_r of sum_r' L_r' when every rank's loss depends on the sum)."""

    @staticmethod
    def forward(ctx, x, group):
        ctx.group = group
        x = x.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(x, group=group)
        return x

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Synchronised BatchNorm for CPU processes (gloo): batch statistics over every rank's batch.

    PyTorch's ``nn.SyncBatchNorm`` refuses CPU tensors (and DDP refuses it on CPU modules), so on CPU
    ``convert_sync_batchnorm`` uses this class instead. In training with more than one rank it computes the
    global mean and (biased) variance with differentiable all-reduces,
    so the backward pass also sums the statistics' gradients over ranks, as ``nn.SyncBatchNorm`` does on GPUs:
    ``mean = sum_ranks sum x / N``, ``var = sum_ranks sum (x - mean)^2 / N``, ``N`` = global count per channel;
    running statistics use the unbiased variance ``var * N / (N - 1)``, as ``F.batch_norm``. In eval mode,
    or in a single process, it is plain BatchNorm. Accepts ``[N, C, ...]`` (1-D, 2-D and 3-D BN).
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 process_group=None, device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.process_group = process_group

    def _check_input_dim(self, input):
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input [N, C, ...], got {input.dim()}D input")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(input)
        group = self.process_group or dist.group.WORLD
        if dist.get_world_size(group) <= 1:
            return super().forward(input)
        return self._sync_forward(input, group)

    def _sync_forward(self, x: torch.Tensor, group) -> torch.Tensor:
        def all_reduce(t, group):
            return _AllReduceSum.apply(t, group)

        self._check_input_dim(x)
        C = x.shape[1]
        dims = [0, *range(2, x.dim())]
        shape = [1, C] + [1] * (x.dim() - 2)
        count = torch.tensor([x.numel() // C], dtype=torch.float64)
        dist.all_reduce(count, group=group)
        n = float(count.item())
        mean = all_reduce(x.sum(dims), group=group) / n
        xc = x - mean.view(shape)
        var = all_reduce((xc * xc).sum(dims), group=group) / n
        y = xc * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = 1.0 / float(self.num_batches_tracked.item()) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * (n / max(n - 1, 1)), alpha=m)
        return y


def convert_sync_batchnorm(module: nn.Module, process_group=None) -> nn.Module:
    """Replace every ``nn.BatchNorm1d/2d/3d`` in ``module`` by a synchronised BN with the same parameters,
    buffers and training mode, as ``nn.SyncBatchNorm.convert_sync_batchnorm`` does: ``nn.SyncBatchNorm`` for a
    layer on a GPU, ``snnlab.distributed.SyncBatchNorm`` for one on the CPU. BN layers inside
    ``snnlab.layers.TimeMerged`` are plain BN modules, so they are found and converted."""
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, (nn.SyncBatchNorm,
                                                                                       SyncBatchNorm)):
        t = module.running_mean if module.running_mean is not None else module.weight
        on_cpu = t is None or t.device.type == "cpu"
        out = (SyncBatchNorm if on_cpu else nn.SyncBatchNorm)(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats, process_group)
        if module.affine:
            with torch.no_grad():
                out.weight = module.weight
                out.bias = module.bias
        out.running_mean = module.running_mean
        out.running_var = module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.training = module.training
    for name, child in module.named_children():
        out.add_module(name, convert_sync_batchnorm(child, process_group))
    return out


# ---------------------------------------------------------------------------------------------- data
class ShardedBatchSampler:
    """Rank ``rank``'s part of every batch of ``batch_sampler`` (the single-process loader's global batches).

    A global batch of m samples is cut into W contiguous parts whose sizes differ by at most one (rank r gets
    part r). A trailing batch with fewer than W samples is dropped (a rank would get nothing), on every rank.
    Because the global sampler is the single-process one (same generator), all ranks agree on the order
    and the union of their batches at step k is the single-process batch k.
    """

    def __init__(self, batch_sampler, rank: int, world_size: int):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        self.batch_sampler, self.rank, self.world_size = batch_sampler, rank, world_size

    def __iter__(self):
        W, r = self.world_size, self.rank
        for batch in self.batch_sampler:
            m = len(batch)
            if m < W:
                continue
            base, extra = divmod(m, W)
            start = r * base + min(r, extra)
            yield list(batch[start:start + base + (r < extra)])

    def __len__(self) -> int:
        n = len(self.batch_sampler)
        sampler = getattr(self.batch_sampler, "sampler", None)
        bs = getattr(self.batch_sampler, "batch_size", None)
        if n and sampler is not None and bs and not getattr(self.batch_sampler, "drop_last", False):
            last = len(sampler) - (n - 1) * bs
            if last < self.world_size:
                n -= 1
        return n


def shard_train_loader(loader: DataLoader, ctx: DistContext) -> DataLoader:
    """The training loader of this rank: ``loader``'s global batches cut by ``ShardedBatchSampler``.

    The new loader shares ``loader``'s generator, so it draws the same shuffling as ``loader`` would."""
    if not ctx.enabled:
        return loader
    return DataLoader(
        loader.dataset,
        batch_sampler=ShardedBatchSampler(loader.batch_sampler, ctx.rank, ctx.world_size),
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        generator=loader.generator,
    )


def shard_eval_loader(loader: DataLoader, ctx: DistContext) -> DataLoader:
    """The evaluation loader of this rank: samples ``rank, rank + W, ...`` of ``loader`` in order."""
    if not ctx.enabled:
        return loader
    n = len(loader.dataset)
    if n < ctx.world_size:
        raise ValueError(f"the test set has {n} samples, fewer than the {ctx.world_size} processes")
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=list(range(ctx.rank, n, ctx.world_size)),
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
    )


def wrap_model(model: nn.Module, ctx: DistContext, device: torch.device, sync_bn: bool = True) -> nn.Module:
    """``model`` with synchronised BatchNorm, wrapped in ``DistributedDataParallel`` (unchanged if single-process).

    ``model`` must already be on ``device``; the converted model is modified in place (the returned DDP
    wrapper's ``.module`` is ``model`` itself, BN layers swapped), so optimisers must be built afterwards.
    """
    if not ctx.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    if sync_bn:
        for name, child in list(model.named_children()):
            model.add_module(name, convert_sync_batchnorm(child, ctx.bn_group))
    device_ids = [device.index] if device.type == "cuda" else None
    return DDP(model, device_ids=device_ids)
