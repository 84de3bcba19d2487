"""NIR export and import: snnlab models as Neuromorphic Intermediate Representation graphs.

NIR (https://neuroir.org, the ``nir`` package) describes a spiking network as a graph of continuous-time nodes
that snnTorch, Norse, SpikingJelly, Lava, Sinabs, Rockpool and several chips read. ``to_nir(model, input_shape)``
builds the graph from ``nir`` nodes, ``export_nir(model, path)`` writes it (``nir.write``, HDF5: arrays only, no
code runs when it is read), ``import_nir(path)`` reads it back into a time-first snnTorch model.

What maps to what (through ``to_snntorch``, so the same models and errors):

* ``Conv1d`` / ``Conv2d`` / ``Linear`` -> ``nir.Conv1d`` / ``nir.Conv2d`` / ``nir.Affine``, with the BatchNorm that
  follows folded in for
  inference (``w * gamma / sqrt(var + eps)``, ``(b - mean) * gamma / sqrt(var + eps) + beta``: the running statistics,
  so export a trained model; in training mode BatchNorm has no fixed affine map); ``Flatten`` -> ``nir.Flatten`` (NIR's dimensions exclude the batch);
  ``AvgPool2d`` -> ``nir.AvgPool2d``; ``AvgPool1d`` (NIR has none) -> a ``nir.Conv1d`` whose weights are ``1 / k``
  from each channel to itself and 0 across channels, the same map.
* snnlab's LIF with hard reset (``u[t] = beta * u[t-1] + x[t]``, spike when ``u > v_th``, then ``u = 0``) ->
  ``nir.LIF`` in snnTorch's convention (``dt = 1e-4``, ``tau = dt / (1 - beta)``, ``r = tau / dt``, ``v_leak = 0``,
  ``v_reset = 0``): the Euler step of NIR's ``tau du/dt = v_leak - u + r I`` with that ``dt`` is snnlab's update.
  IF (``beta = 1``) -> ``nir.IF`` (``r = 1``).
* The paper architectures: TET's ``VGGSNN`` (a chain: conv-BN-LIF layers, average pools, ``fc``) and ``ResNet19``.
  Its residual add ``sn2(bn2(conv2(...)) + shortcut(x))`` is two NIR edges into the block's ``sn2`` node (NIR sums
  a node's inputs; so does nirtorch's executor), from ``conv2`` (with ``bn2`` folded) and from the shortcut: the
  block's input itself, or its ``conv1x1`` with that BatchNorm folded. The time-merged BatchNorm (statistics over
  ``T*B`` while training) is one fixed affine map in eval mode, so it folds like any other.
  ``AdaptiveAvgPool2d`` -> ``nir.AvgPool2d`` over the whole window (the map's size is known at export). Nodes are
  named after the model's modules (``layer1_0_conv1``, ``layer1_0_sn2``, ...).
* Not expressible, so a ValueError naming the layer: subtractive reset (NIR's neurons reset to ``v_reset``), DSR's
  neurons and rate head (their gradient is the point, and their spikes carry an amplitude), max pooling (NIR 1.0
  has no max-pool node: this rules out ``SpikingResNet34`` and ``SEWResNet34``, whose stems pool by max; SEW's
  ``AND`` / ``IAND`` connections multiply spikes, which no NIR node does either).

``import_nir`` uses snnTorch's own node-to-module map (``snntorch.import_nir``) with three corrections, each a
difference found by the round-trip tests: snnTorch 1.0 builds ``nir.IF`` as a ``Leaky`` with ``beta = 0.9``
(here ``beta = 1``), builds ``nir.Flatten`` without shifting its dimensions by the batch (so it flattens the batch
into the features), and has no ``nir.Conv1d`` (here nirtorch's). ``snntorch.import_from_nir`` itself gives the same
outputs for graphs without these nodes (tested on the MLP).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..layers import TimeMerged

DT = 1e-4  #: the time step of the LIF convention (snnTorch's export and import)

__all__ = ["to_nir", "export_nir", "import_nir", "read_nir", "DT"]


def _nir():
    try:
        import nir
    except ImportError as e:  # pragma: no cover - nir is a dependency
        raise ImportError("NIR export needs the 'nir' and 'nirtorch' packages: pip install nir nirtorch") from e
    return nir


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().to(torch.float32).numpy().copy()


def _fold_bn(w: torch.Tensor, b: torch.Tensor | None, bn: nn.modules.batchnorm._BatchNorm):
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("a BatchNorm without running statistics (track_running_stats=False) has no fixed affine map")
    with torch.no_grad():
        w64, mean, var = w.double(), bn.running_mean.double(), bn.running_var.double()
        gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(mean)
        beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(mean)
        scale = gamma / torch.sqrt(var + bn.eps)
        b64 = b.double() if b is not None else torch.zeros_like(mean)
        return (w64 * scale.view(-1, *([1] * (w.dim() - 1)))).float(), ((b64 - mean) * scale + beta).float()


def _neuron_node(leaky, shape: tuple[int, ...], name: str):
    nir = _nir()
    if leaky.reset_mechanism != "zero":
        raise ValueError(f"layer {name!r}: reset {leaky.reset_mechanism!r}; NIR's LIF and IF reset the membrane to "
                         f"v_reset, so only snnlab's hard reset (reset='hard') exports")
    beta = float(leaky.beta)
    v_th = np.full(shape, float(leaky.threshold), dtype=np.float32)
    zeros = np.zeros(shape, dtype=np.float32)
    if beta == 1.0:
        return nir.IF(r=np.ones(shape, dtype=np.float32), v_threshold=v_th, v_reset=zeros)
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"layer {name!r}: beta {beta!r}; NIR's LIF needs a decay 0 <= beta < 1 (IF: beta = 1)")
    tau = np.full(shape, DT / (1.0 - beta), dtype=np.float32)
    return nir.LIF(tau=tau, r=(tau / DT).astype(np.float32), v_leak=zeros, v_threshold=v_th, v_reset=zeros)


def _input_shape(model: nn.Module, input_shape) -> tuple[int, ...]:
    if input_shape is None:
        input_shape = getattr(model, "input_shape", None)
    if input_shape is None:
        raise ValueError("give input_shape, one sample's shape without time and batch (e.g. (1, 8, 8)): this model "
                         "does not record it")
    shape = tuple(int(s) for s in input_shape)
    if not shape or any(s <= 0 for s in shape):
        raise ValueError(f"input_shape {input_shape!r}: one sample's shape, positive sizes, without time and batch")
    return shape


def _folded_weights(m: nn.Module, nxt: nn.Module | None, name: str):
    """``(weight, bias, modules consumed)`` of the convolution / linear layer ``m`` (node ``name``), with the BatchNorm
    ``nxt`` folded in when it follows (2 consumed); a missing bias is zeros (NIR's nodes carry one)."""
    w, b, consumed = m.weight, m.bias, 1
    if isinstance(nxt, nn.modules.batchnorm._BatchNorm):
        try:
            w, b = _fold_bn(w, b, nxt)
        except ValueError as e:
            raise ValueError(f"the BatchNorm after layer {name!r} ({type(m).__name__}): {e}") from None
        consumed = 2
    return w, (torch.zeros(w.shape[0]) if b is None else b), consumed


def _nir_node(m: nn.Module, nxt: nn.Module | None, in_shape: tuple[int, ...], name: str):
    """The NIR node ``name`` of step module ``m`` (followed by ``nxt``) for an input of
    one sample's shape ``in_shape``, and how many modules it consumes (2: a convolution or linear layer and the
    BatchNorm folded into it); ``(None, 1)`` for a module that is the identity in eval mode."""
    import snntorch as snn

    nir = _nir()
    if isinstance(m, snn.SpikingNeuron):
        if not isinstance(m, snn.Leaky):
            raise ValueError(f"layer {name!r} is a snntorch.{type(m).__name__}; the exporter writes Leaky (LIF / IF)")
        node, consumed = _neuron_node(m, in_shape, name), 1
    elif isinstance(m, (nn.Conv1d, nn.Conv2d)):
        if m.padding_mode != "zeros":
            raise ValueError(f"layer {name!r}: padding_mode {m.padding_mode!r}; NIR's convolutions pad with zeros")
        w, b, consumed = _folded_weights(m, nxt, name)
        cls = nir.Conv1d if isinstance(m, nn.Conv1d) else nir.Conv2d
        node = cls(input_shape=in_shape[1:] if cls is nir.Conv2d else in_shape[1], weight=_np(w),
                   stride=m.stride if cls is nir.Conv2d else m.stride[0],
                   padding=m.padding if cls is nir.Conv2d else m.padding[0],
                   dilation=m.dilation if cls is nir.Conv2d else m.dilation[0], groups=m.groups, bias=_np(b))
    elif isinstance(m, nn.Linear):
        w, b, consumed = _folded_weights(m, nxt, name)
        node = nir.Affine(weight=_np(w), bias=_np(b))
    elif isinstance(m, nn.Flatten):
        nd = len(in_shape) + 1
        start, end = m.start_dim % nd, m.end_dim % nd
        if start == 0:
            raise ValueError(f"layer {name!r}: Flatten(start_dim={m.start_dim}) flattens the batch dimension")
        node, consumed = nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=start - 1,
                                     end_dim=end - 1), 1
    elif isinstance(m, nn.AvgPool2d):
        if m.ceil_mode or (any(np.atleast_1d(m.padding)) and not m.count_include_pad) or m.divisor_override:
            raise ValueError(f"layer {name!r}: {m}; NIR's AvgPool2d averages whole windows (no ceil_mode, "
                             f"divisor_override, or padding without count_include_pad)")
        pair = (lambda v: np.array(v if isinstance(v, tuple) else (v, v)))
        node, consumed = nir.AvgPool2d(kernel_size=pair(m.kernel_size), stride=pair(m.stride or m.kernel_size),
                                       padding=pair(m.padding)), 1
    elif isinstance(m, nn.AvgPool1d):
        k, s, p = m.kernel_size[0], (m.stride or m.kernel_size)[0], m.padding[0]
        if m.ceil_mode or (p and not m.count_include_pad):
            raise ValueError(f"layer {name!r}: {m}; exported as an averaging convolution, whole windows only")
        c = in_shape[0]
        w = np.zeros((c, c, k), np.float32)  # channel c averages channel c only (groups=c would be smaller, but
        w[np.arange(c), np.arange(c)] = 1.0 / k  # nir 1.0's type inference ignores groups)
        node, consumed = nir.Conv1d(input_shape=in_shape[1], weight=w, stride=s, padding=p, dilation=1, groups=1,
                                    bias=np.zeros(c, np.float32)), 1
    elif isinstance(m, (nn.Dropout, nn.Identity)):
        return None, 1  # identity in eval mode
    else:
        raise ValueError(f"layer {name!r} is a {type(m).__name__}, which NIR 1.0 cannot express (the exporter "
                         f"writes Conv1d/2d with BatchNorm folded in, Linear, Flatten, AvgPool1d/2d, LIF and IF)")
    return node, consumed


class _Graph:
    """A NIR graph under construction: nodes and edges. ``layers`` carries a zero sample ``x`` ``[1, ...]`` along each
    branch to know every node's input shape. A node with several sources sums them (NIR's rule, and nirtorch's)."""

    def __init__(self, shape: tuple[int, ...]):
        nir = _nir()
        self.nodes = {"input": nir.Input(input_type={"input": np.array(shape)})}
        self.edges: list[tuple[str, str]] = []

    def add(self, name: str, node, sources: list[str]) -> list[str]:
        self.nodes[name] = node
        self.edges += [(s, name) for s in sources]
        return [name]

    def layers(self, steps: list[tuple[str, nn.Module]], sources: list[str], x: torch.Tensor):
        """Append the one-step modules ``steps`` (``(node name, module)``) as a chain from ``sources``: a convolution
        or linear layer and the BatchNorm after it become one node. Returns ``(sources, x)`` after the chain."""
        import snntorch as snn

        i = 0
        while i < len(steps):
            name, m = steps[i]
            nxt = steps[i + 1][1] if i + 1 < len(steps) else None
            node, consumed = _nir_node(m, nxt, tuple(x.shape[1:]), name)
            if node is not None:
                with torch.no_grad():
                    for _, mm in steps[i:i + consumed]:
                        x = x if isinstance(mm, snn.SpikingNeuron) else mm(x)
                sources = self.add(name, node, sources)
            i += consumed
        return sources, x

    def finish(self, sources: list[str], x: torch.Tensor):
        nir = _nir()
        self.add("output", nir.Output(output_type={"output": np.array(tuple(x.shape[1:]))}), sources)
        return nir.NIRGraph(nodes=self.nodes, edges=self.edges, metadata={"source": "snnlab", "dt": DT})


def _step_layers(m: nn.Module, path: str) -> list[tuple[str, nn.Module]]:
    """The one-step modules of the paper models' part ``m`` at ``path`` (``TimeMerged`` blocks' layers, snnlab
    neurons as ``snn.Leaky``), named after their paths with ``_`` (torch's module names have no dots)."""
    from .snntorch import to_snntorch

    if isinstance(m, nn.Sequential) and not isinstance(m, TimeMerged):
        return [s for name, c in m.named_children() for s in _step_layers(c, f"{path}_{name}")]
    try:
        steps = list(to_snntorch(m).eval())
    except ValueError as e:
        raise ValueError(f"layer {path!r}: {e}") from None
    return [(path if len(steps) == 1 else f"{path}_{j}", s) for j, s in enumerate(steps)]


def _adaptive_pool(m: nn.AdaptiveAvgPool2d, x: torch.Tensor, path: str) -> nn.AvgPool2d:
    h, w = x.shape[-2:]
    oh, ow = (m.output_size, m.output_size) if isinstance(m.output_size, int) else m.output_size
    oh, ow = oh or h, ow or w
    if h % oh or w % ow:
        raise ValueError(f"layer {path!r}: AdaptiveAvgPool2d({m.output_size}) on a {h}x{w} map has windows of "
                         f"different sizes, which NIR's AvgPool2d cannot express (it needs H, W divisible)")
    return nn.AvgPool2d((h // oh, w // ow))


def _block(g: _Graph, blk: nn.Module, path: str, sources: list[str], x: torch.Tensor):
    """A ``SpikingBasicBlock``: the branch ``conv1-bn1-sn1-conv2-bn2`` and the shortcut (the block's input, or its
    folded ``conv1x1-BN``) both feed ``sn2`` (two NIR edges into one node: NIR sums them, the residual add)."""
    branch = [(f"{path}_{n}", getattr(blk, n)) for n in ("conv1", "bn1")]
    branch += _step_layers(blk.sn1, f"{path}_sn1") + [(f"{path}_{n}", getattr(blk, n)) for n in ("conv2", "bn2")]
    b_src, b_x = g.layers(branch, sources, x)
    if blk.downsample is not None:
        s_src, _ = g.layers([(f"{path}_downsample", blk.downsample[0]), (f"{path}_downsample_bn", blk.downsample[1])],
                            sources, x)
    else:
        s_src = sources
    return g.layers(_step_layers(blk.sn2, f"{path}_sn2"), b_src + s_src, b_x)


def _paper_graph(model: nn.Module, g: _Graph, x: torch.Tensor):
    """Nodes of TET's VGGSNN and ResNet-19 (named after the model's module paths); the ResNet-34s are refused."""
    from ..models.papers import ResNet19, VGGSNN

    src = ["input"]
    if getattr(model.output, "rate_head", False):
        raise ValueError("layer 'output' is DSR's rate head (DSR neurons and their rate): NIR has no counterpart")
    if isinstance(model, VGGSNN):
        src, x = g.layers(_step_layers(model.features, "features"), src, x)
        return g.layers([("flatten", nn.Flatten()), ("fc", model.fc)], src, x)
    if not isinstance(model, ResNet19):
        raise ValueError(f"layer 'maxpool' of {type(model).__name__} is a MaxPool2d, which NIR 1.0 cannot express "
                         f"(no max-pool node); the exporter writes TET's VGGSNN and ResNet19 among the paper models")
    src, x = g.layers([("conv1", model.conv1), ("bn1", model.bn1)] + _step_layers(model.sn1, "sn1"), src, x)
    for stage in ("layer1", "layer2", "layer3"):
        for j, blk in enumerate(getattr(model, stage)):
            src, x = _block(g, blk, f"{stage}_{j}", src, x)
    steps = [("avgpool", _adaptive_pool(model.avgpool, x, "avgpool")), ("flatten", nn.Flatten()), ("fc1", model.fc1)]
    return g.layers(steps + _step_layers(model.sn2, "sn2") + [("fc2", model.fc2)], src, x)


def to_nir(model: nn.Module, input_shape=None):
    """``model`` as a ``nir.NIRGraph`` for one sample of shape ``input_shape`` (without time and batch; default: the
    model's ``input_shape``), in eval mode (BatchNorm folded with its running statistics). Models ``to_snntorch``
    converts become a chain ``input``, ``0``, ``1``, ... (in the order of ``to_snntorch(model)``; a convolution and
    its folded BatchNorm are one node), ``output``; TET's ``VGGSNN`` and ``ResNet19`` a graph whose nodes are named
    after the model's modules (``layer1_0_conv1``, ...), each residual add two edges into the block's ``sn2``. NIR's
    type check runs on the result. ValueError naming the first layer NIR cannot express (module docstring)."""
    from ..models.papers import PAPER_MODELS
    from .snntorch import to_snntorch

    shape = _input_shape(model, input_shape)
    g, x = _Graph(shape), torch.zeros(1, *shape)
    if isinstance(model, tuple(PAPER_MODELS.values())):
        src, x = _paper_graph(model, g, x)
    else:
        src, x = g.layers([(str(i), m) for i, m in enumerate(to_snntorch(model).eval())], ["input"], x)
    return g.finish(src, x)


def export_nir(model: nn.Module, path, input_shape=None, check: bool = True):
    """Write ``model`` as a NIR file at ``path`` (``nir.write``; written to a temporary file and moved into place, so
    a crash never leaves half a file). With ``check`` (default), the file is read back and imported
    (``import_nir``), and its outputs are compared with ``model``'s on random input in eval mode: a ValueError if
    they differ (the file is then not kept). Returns the path."""
    nir = _nir()
    path = Path(path)
    graph = to_nir(model, input_shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        nir.write(tmp, graph)
        if check:
            diff = round_trip_error(model, tmp, input_shape)
            if diff["max_abs_output"] > 1e-4 or diff["spike_mismatch"] > 1e-3:
                raise ValueError(f"the NIR file does not round-trip: {diff} (outputs of the imported graph against "
                                 f"the model on random input)")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_nir(path):
    """``nir.read(path)``, with a clear error for a missing file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no NIR file at {str(path)!r}")
    return _nir().read(str(path))


def _module_map():
    import nirtorch.nir_interpreter as ni
    import snntorch as snn
    import snntorch.import_nir as sin

    nir = _nir()

    def flatten(node):  # NIR's dimensions exclude the batch; torch's Flatten counts it
        nd = len(np.atleast_1d(node.input_type["input"])) + 1
        return nn.Flatten(node.start_dim % nd + 1 if node.start_dim >= 0 else node.start_dim,
                          node.end_dim % nd + 1 if node.end_dim >= 0 else node.end_dim)

    def if_node(node):
        v = np.unique(node.v_threshold)
        if v.size != 1 or not np.allclose(node.r, 1.0):
            raise ValueError("an IF node with different thresholds per neuron or r != 1 has no snn.Leaky counterpart")
        return snn.Leaky(beta=1.0, threshold=float(v[0]), reset_mechanism="zero", init_hidden=True, reset_delay=False)

    def lif_node(node):
        for key in ("tau", "r", "v_threshold"):
            if np.unique(getattr(node, key)).size != 1:
                raise ValueError(f"a LIF node whose {key} differs between neurons has no snn.Leaky counterpart")
        return sin._nir_to_snntorch_module(node, hack_w_scale=True, init_hidden=True)

    m = {k: (lambda n: sin._nir_to_snntorch_module(n, init_hidden=True))
         for k in (nir.Affine, nir.Linear, nir.Conv2d, nir.AvgPool2d)}
    m.update({nir.Flatten: flatten, nir.IF: if_node, nir.LIF: lif_node, nir.Conv1d: ni._default_map_conv1d})
    return m


class _GraphStep(nn.Module):
    """One step of an imported NIR graph (nirtorch's GraphModule returns ``(output, state)``; the snnTorch neurons
    keep their own state with ``init_hidden``)."""

    def __init__(self, graph_module: nn.Module):
        super().__init__()
        self.graph = graph_module

    def forward(self, x):
        out = self.graph(x)
        return out[0] if isinstance(out, tuple) else out


def import_nir(source):
    """A NIR graph (a path, or a ``nir.NIRGraph``) as a time-first snnTorch model ``[T, B, ...] -> [T, B, C]``
    (``MultiStep`` around nirtorch's executor of snnTorch modules; see the module docstring for the three
    corrections to snnTorch's importer). A node type it cannot build is a ValueError naming it."""
    import nirtorch

    from .snntorch import MultiStep

    nir = _nir()
    graph = source if isinstance(source, nir.NIRGraph) else read_nir(source)
    known = tuple(_module_map()) + (nir.Input, nir.Output)
    for name, node in graph.nodes.items():
        if not isinstance(node, known):
            raise ValueError(f"NIR node {name!r} is a nir.{type(node).__name__}; import_nir builds "
                             f"{', '.join(sorted(c.__name__ for c in known))}")
    gm = nirtorch.nir_to_torch(graph, _module_map())
    return MultiStep(_GraphStep(gm), readout=0).eval()


def round_trip_error(model: nn.Module, source, input_shape=None, T: int = 4, batch: int = 3, seed: int = 0) -> dict:
    """Compare ``model`` with ``import_nir(source)`` in eval mode on random input ``[T, batch, *input_shape]``
    (uniform in [0, 2)): ``snnlab.interop.snntorch.compare`` (readout difference, share of differing spikes)."""
    from .snntorch import compare

    shape = _input_shape(model, input_shape)
    g = torch.Generator().manual_seed(seed)
    return compare(model, import_nir(source), 2 * torch.rand(T, batch, *shape, generator=g))
