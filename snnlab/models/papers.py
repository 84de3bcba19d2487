"""The papers' architectures, time-merged: ResNet-19 and VGGSNN (TET), Spiking-ResNet-34 and SEW-ResNet-34 (ImageNet).

Every model maps ``[T, B, C, H, W] -> [T, B, num_classes]`` (the non-spiking output ``O(t)`` of every step, like
``snnlab.models.tutorial``), takes ``neuron=``, a zero-argument callable returning a fresh multi-step spiking module
(default ``snnlab.models.make_neuron()``, TET's LIF), and runs every synaptic layer once on the merged
``[T*B, ...]`` tensor, so BatchNorm normalises over ``T*B`` (TET's ``tdBN``/``SeqToANNContainer``,
SpikingJelly's multi-step mode). Static images are repeated T times before the model (``snnlab.train.encode``).

DSR neurons (``snnlab.models.dsr.make_dsr_neuron``) work in all four: when the factory's neurons have a
``.rate`` method, the non-spiking output layer becomes DSR's rate head ``linear -> BN1d -> neuron -> rate`` and the
model returns the rate as ``[1, B, num_classes]``, exactly like ``snnlab.models.dsr`` (the head adds the
BN1d's ``2 * num_classes`` parameters and one threshold).

Sources, per model (``[code]`` = read in the official code, ``[sj]`` = SpikingJelly 2.0's definition):

* ``ResNet19`` [code: TET ``models/resnet_models.py::resnet19``], CIFAR ``3x32x32``: stem conv3x3 (3 -> 64, no
  bias) - BN - neuron; ``BasicBlock`` x ``[3, 3, 2]`` at widths 128 / 256 / 512 with strides 1 / 2 / 2 (a 1x1
  conv + BN shortcut where the shape changes, including the first block, 64 -> 128); ``AdaptiveAvgPool2d(1)``,
  ``fc1`` 512 -> 256 (bias) - neuron - ``fc2`` 256 -> classes. The block is a spiking ResNet block:
  ``conv-BN-neuron-conv-BN (+ shortcut) -> neuron``. The code leaves PyTorch's default initialisation (its
  kaiming init sits under ``zero_init_residual``, off), and so does snnlab. The code calls one shared
  ``LIFSpike`` object at several places; it has no state between calls, so a separate neuron per place is
  the same function, and lets ``snnlab.chi`` give each layer its own surrogate width.
* ``VGGSNN`` [code: TET ``models/VGG_models.py::VGGSNN``], CIFAR10-DVS frames ``2x48x48``: conv3x3 (with bias) -
  BN - neuron layers ``64, 128, AP, 256, 256, AP, 512, 512, AP, 512, 512, AP`` (AP = ``AvgPool2d(2)``), then
  ``linear(512 * 3 * 3 -> classes)`` on the flattened map. Conv weights ``kaiming_normal_(fan_out, relu)``.
* ``SpikingResNet34`` [sj ``spiking_resnet34``], ImageNet ``3x224x224``: torchvision's ResNet-34 with a spiking
  neuron after every BN and after every residual addition (``sn2(bn2(conv2(...)) + shortcut)``): stem
  conv7x7/2 - BN - neuron - maxpool3x3/2, ``[3, 4, 6, 3]`` basic blocks at 64 / 128 / 256 / 512, avgpool,
  ``fc``. The "Spiking-ResNet-34" of TET's ImageNet table (tdBN, Zheng et al. 2021).
* ``SEWResNet34`` [sj ``sew_resnet34``; Fang et al., NeurIPS 2021]: the same convolutions, but the block's output
  is ``connect(sn2(bn2(conv2(...))), shortcut)`` with ``connect = ADD`` (``a + s``; also ``"AND"``: ``a * s``,
  ``"IAND"``: ``(1 - a) * s``, SJ's order) and the downsampling shortcut ``conv1x1 - BN - neuron``.
  TET's and the chi paper's SEW-ResNet-34 use ADD.

Both ResNet-34s name their layers as torchvision's ``resnet34`` (``conv1``, ``bn1``, ``layer1.0.conv1``, ...,
``fc``), so ``model.load_state_dict(torchvision.models.resnet34(...).state_dict())`` works for neurons without
parameters, and have exactly its 21,797,672 parameters with 1000 classes. Init as SpikingJelly's: conv weights
``kaiming_normal_(fan_out, relu)``, BN weight 1 and bias 0; the adaptive average pool accepts any input size
(small inputs, e.g. 64x64, for tests).

This module is also ``snnlab.paper_models`` (the same module object, its name before ``snnlab.models`` became a
package).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..layers import TimeMerged, merge_time, split_time
from .factory import check_classes, check_shape, init_resnet, neuron_factory

__all__ = [
    "ResNet19", "VGGSNN", "SpikingResNet34", "SEWResNet34", "SpikingBasicBlock", "SEWBasicBlock",
    "CONNECT_FUNCTIONS", "PAPER_MODELS",
]

CONNECT_FUNCTIONS = ("ADD", "AND", "IAND")


def _tm(x: torch.Tensor, *layers: nn.Module) -> torch.Tensor:
    """Apply stateless ``layers`` to ``[T, B, ...]`` once, on the merged ``[T*B, ...]`` tensor."""
    y = merge_time(x)
    for layer in layers:
        y = layer(y)
    return split_time(y, x.shape[0])


class _Output(nn.Module):
    """The last layer: ``fc`` applied at every step -> ``[T, B, classes]``; or, with DSR neurons (``.rate``), DSR's head
    ``fc -> BN1d -> neuron -> rate`` -> ``[1, B, classes]``. ``fc`` is the model's own ``nn.Linear``."""

    def __init__(self, num_classes: int, make: Callable[[], nn.Module]):
        super().__init__()
        probe = make()
        self.rate_head = hasattr(probe, "rate")
        if self.rate_head:
            self.bn = nn.BatchNorm1d(num_classes)
            self.neuron = probe

    def forward(self, fc: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        if not self.rate_head:
            return fc(x)  # nn.Linear acts on the last dim: [T, B, F] -> [T, B, classes]
        out = self.neuron(_tm(x, fc, self.bn))
        return self.neuron.rate(out).unsqueeze(0)


# ----------------------------------------------------------------------------------------------------------
# blocks


def _conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)


def _shortcut(c_in: int, c_out: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and c_in == c_out:
        return None
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))


class _BasicBlock(nn.Module):
    """What both basic blocks share: ``conv1 - bn1 - sn1 - conv2 - bn2`` (+ ``sn2``) and the ``downsample`` shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int, make: Callable[[], nn.Module]):
        super().__init__()
        self.conv1 = _conv3x3(c_in, c_out, stride)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.sn1 = make()
        self.conv2 = _conv3x3(c_out, c_out)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.sn2 = make()
        self.downsample = _shortcut(c_in, c_out, stride)

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        """``bn2(conv2(sn1(bn1(conv1(x)))))``, the branch before ``sn2``."""
        return _tm(self.sn1(_tm(x, self.conv1, self.bn1)), self.conv2, self.bn2)


class SpikingBasicBlock(_BasicBlock):
    """
    Spiking ResNet basic block on ``[T, B, C, H, W]`` (TET's ResNet-19 block, SpikingJelly's ``spiking_resnet``)::

        out = sn2( bn2(conv2( sn1(bn1(conv1(x))) )) + shortcut(x) ),   shortcut = x or BN(conv1x1(x))
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self._residual(x)
        identity = x if self.downsample is None else _tm(x, self.downsample)
        return self.sn2(out + identity)


class SEWBasicBlock(_BasicBlock):
    """
    Spike-element-wise basic block (Fang et al. 2021; SpikingJelly's ``sew_resnet``) on ``[T, B, C, H, W]``::

        a = sn2(bn2(conv2( sn1(bn1(conv1(x))) )));   s = x or downsample_sn(BN(conv1x1(x)))
        out = connect(a, s):  ADD a + s,  AND a * s,  IAND (1 - a) * s
    """

    def __init__(self, c_in: int, c_out: int, stride: int, make: Callable[[], nn.Module], connect: str = "ADD"):
        if connect not in CONNECT_FUNCTIONS:
            raise ValueError(f"connect must be one of {', '.join(map(repr, CONNECT_FUNCTIONS))}, got {connect!r}")
        super().__init__(c_in, c_out, stride, make)
        self.connect = connect
        if self.downsample is not None:
            self.downsample_sn = make()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.sn2(self._residual(x))
        s = x if self.downsample is None else self.downsample_sn(_tm(x, self.downsample))
        if self.connect == "ADD":
            return a + s
        if self.connect == "AND":
            return a * s
        return (1.0 - a) * s

    def extra_repr(self) -> str:
        return f"connect={self.connect!r}"


def _stage(block, c_in: int, c_out: int, n: int, stride: int, make, **kw) -> nn.Sequential:
    return nn.Sequential(*[block(c_in if i == 0 else c_out, c_out, stride if i == 0 else 1, make, **kw)
                           for i in range(n)])


# ----------------------------------------------------------------------------------------------------------
# TET's models


class ResNet19(nn.Module):
    """TET's ResNet-19 for CIFAR: ``[T, B, 3, 32, 32] -> [T, B, num_classes]`` (see the module docstring).

    Args:
        input_shape: ``(C, H, W)`` of one frame (default ``(3, 32, 32)``; any size works: the pool is adaptive).
        num_classes: 10 (CIFAR-10) or 100 (CIFAR-100).
        neuron: zero-argument neuron factory (default TET's LIF, ``snnlab.models.make_neuron()``), or a DSR one.
    """

    widths = (128, 256, 512)
    strides = (1, 2, 2)
    num_blocks = (3, 3, 2)

    def __init__(self, input_shape=(3, 32, 32), num_classes: int = 10, neuron=None):
        super().__init__()
        c, h, w = check_shape(input_shape)
        self.input_shape = (c, h, w)  # one frame's shape (snnlab.export_nir reads it)
        num_classes = check_classes(num_classes)
        make = neuron_factory(neuron)
        self.conv1 = nn.Conv2d(c, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.sn1 = make()
        c_in, stages = 64, []
        for width, stride, n in zip(self.widths, self.strides, self.num_blocks):
            stages.append(_stage(SpikingBasicBlock, c_in, width, n, stride, make))
            c_in = width
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(c_in, 256)
        self.sn2 = make()
        self.fc2 = nn.Linear(256, num_classes)
        self.output = _Output(num_classes, make)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.sn1(_tm(x, self.conv1, self.bn1))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = _tm(x, self.avgpool, nn.Flatten())
        x = self.sn2(self.fc1(x))
        return self.output(self.fc2, x)


class VGGSNN(nn.Module):
    """TET's VGGSNN for CIFAR10-DVS frames: ``[T, B, 2, 48, 48] -> [T, B, num_classes]`` (module docstring).

    Args:
        input_shape: ``(C, H, W)`` (default ``(2, 48, 48)``; H and W must be >= 16 for the four poolings; the
            classifier takes ``512 * (H // 16) * (W // 16)`` features, 4,608 at 48x48 as in the code).

        num_classes: default 10.
        neuron: zero-argument neuron factory (default TET's LIF), or a DSR one.
    """

    cfg = (64, 128, "AP", 256, 256, "AP", 512, 512, "AP", 512, 512, "AP")

    def __init__(self, input_shape=(2, 48, 48), num_classes: int = 10, neuron=None):
        super().__init__()
        c, h, w = check_shape(input_shape, 16, "VGGSNN's four 2x2 average poolings need H, W >= 16")
        self.input_shape = (c, h, w)
        num_classes = check_classes(num_classes)
        make = neuron_factory(neuron)
        layers = []
        for v in self.cfg:
            if v == "AP":
                layers.append(TimeMerged(nn.AvgPool2d(2)))
                h, w = h // 2, w // 2
            else:
                layers += [TimeMerged(nn.Conv2d(c, v, 3, 1, 1), nn.BatchNorm2d(v)), make()]
                c = v
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c * h * w, num_classes)
        self.output = _Output(num_classes, make)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).flatten(2)
        return self.output(self.fc, x)


# ----------------------------------------------------------------------------------------------------------
# ImageNet ResNet-34s


class _ResNet34(nn.Module):
    num_blocks = (3, 4, 6, 3)
    widths = (64, 128, 256, 512)

    def __init__(self, block, input_shape, num_classes, neuron, **block_kw):
        super().__init__()
        c, h, w = check_shape(input_shape)
        self.input_shape = (c, h, w)
        num_classes = check_classes(num_classes)
        make = neuron_factory(neuron)
        self.conv1 = nn.Conv2d(c, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.sn1 = make()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        c_in = 64
        for i, (width, n) in enumerate(zip(self.widths, self.num_blocks)):
            setattr(self, f"layer{i + 1}", _stage(block, c_in, width, n, 1 if i == 0 else 2, make, **block_kw))
            c_in = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)
        self.output = _Output(num_classes, make)
        init_resnet(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _tm(self.sn1(_tm(x, self.conv1, self.bn1)), self.maxpool)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = _tm(x, self.avgpool, nn.Flatten())
        return self.output(self.fc, x)


class SpikingResNet34(_ResNet34):
    """Spiking-ResNet-34 (SpikingJelly's ``spiking_resnet34``): ``[T, B, 3, 224, 224] -> [T, B, num_classes]``.

    Args:
        input_shape: ``(C, H, W)`` (default ``(3, 224, 224)``; smaller inputs work, the pool is adaptive).
        num_classes: default 1000.
        neuron: zero-argument neuron factory (default TET's LIF), or a DSR one.
    """

    def __init__(self, input_shape=(3, 224, 224), num_classes: int = 1000, neuron=None):
        super().__init__(SpikingBasicBlock, input_shape, num_classes, neuron)


class SEWResNet34(_ResNet34):
    """SEW-ResNet-34 (Fang et al. 2021; SpikingJelly's ``sew_resnet34``): ``[T, B, 3, 224, 224] -> [T, B, classes]``.

    Args:
        input_shape: ``(C, H, W)`` (default ``(3, 224, 224)``; smaller inputs work, the pool is adaptive).
        num_classes: default 1000.
        neuron: zero-argument neuron factory (default TET's LIF), or a DSR one.
        connect: the element-wise connect function, ``"ADD"`` (default, the papers'), ``"AND"`` or ``"IAND"``.
    """

    def __init__(self, input_shape=(3, 224, 224), num_classes: int = 1000, neuron=None, connect: str = "ADD"):
        if connect not in CONNECT_FUNCTIONS:
            raise ValueError(f"connect must be one of {', '.join(map(repr, CONNECT_FUNCTIONS))}, got {connect!r}")
        super().__init__(SEWBasicBlock, input_shape, num_classes, neuron, connect=connect)


#: registered in ``snnlab.models.MODELS``
PAPER_MODELS: dict[str, type[nn.Module]] = {
    "resnet19": ResNet19,
    "vggsnn": VGGSNN,
    "spiking-resnet34": SpikingResNet34,
    "sew-resnet34": SEWResNet34,
}
