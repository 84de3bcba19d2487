"""Models trained with DSR (Meng et al., CVPR 2022): DSR neurons, and a spiking output layer read by its rate.

Every model maps ``[T, B, C, H, W] -> [1, B, num_classes]``. As in DSR's code, the network ends with
``linear -> BN1d -> DSR neuron`` and the prediction is that last layer's firing rate (plain for IF, weighted
with ``w_i = beta^(T-i)`` for LIF, ``snnlab.dsr.firing_rate``); the loss is cross-entropy on that rate. The
rate ``[B, C]`` is returned with a leading time axis of length 1, so snnlab's losses and ``evaluate`` (which
take ``[T, B, C]`` and average over T) apply unchanged: ``sdt_loss`` is then exactly DSR's ``CE(rate, y)``
(``tet_loss`` reduces to the same thing with ``lamb = 0``), and the prediction is ``argmax rate``.

Stateless layers run once on the merged ``[T*B, ...]`` tensor (``snnlab.layers.TimeMerged``), exactly as DSR's
code concatenates the time steps into the batch (so BatchNorm normalises over ``T*B``).

Architectures (the official code, github.com/qymeng94/DSR ``cifar/modules/``):

* ``DSRTutorialSNN``: snnlab's ``TutorialSNN`` (conv-BN-neuron, avgpool, conv-BN-neuron, avgpool) with DSR
  neurons and DSR's head (linear, BN1d, neuron, rate) instead of the non-spiking readout.
* ``PreActResNet18`` (``preresnet.py``, CIFAR): stem conv3x3 (no BN, no neuron), pre-activation basic blocks
  ``BN-neuron-conv3x3-BN-neuron-dropout-conv3x3 + shortcut`` (the shortcut, a 1x1 conv when the shape
  changes, takes the block's *spiking* input), ``[2, 2, 2, 2]`` blocks of widths 64/128/256/512 with strides
  1/2/2/2; head ``BN-neuron-avgpool-neuron-flatten-dropout-linear-BN1d-neuron-rate``. Block convs have biases.
  The code's ``AvgPool2d(4)`` is written ``AdaptiveAvgPool2d(1)`` here (identical on the 4x4 maps of 32x32
  inputs, and also valid for other input sizes).
  With ``stem="imagenet"`` (the default for inputs above 64x64) it is DSR's ImageNet model instead
  (``imagenet/preresnet_snn.py``, ``resnet18_if`` / ``resnet18_lif``): stem ``conv7x7/2 (no bias)-BN-neuron-
  avgpool3x3/2``, the same blocks with bias-free convs, no dropout and ``1x1 conv (no bias) + BN`` shortcuts,
  the same head without dropout; ``[T, B, 3, 224, 224] -> [1, B, 1000]``.
* ``VGG11`` (``vgg.py``, DVS-CIFAR10 frames ``2x48x48``): conv-BN-neuron-dropout blocks
  ``[64, M], [128, M], [256, 256, M], [512, 512, M], [512, 512, M]`` (M = AvgPool2d(2)), then
  ``AdaptiveAvgPool2d(7)``, ``linear(512*7*7) - BN1d - neuron - rate``. NB: a 48x48 input is 1x1 after the
  five pools, so the adaptive pool only copies it 49 times (kept as in the code, for its parameter count).

``DSR_MODELS`` also holds the papers' surrogate-gradient architectures (``snnlab.models.papers``: ``resnet19``,
``vggsnn``, ``spiking-resnet34``, ``sew-resnet34``) built with DSR neurons, whose non-spiking output layer then
becomes the same rate head (``linear - BN1d - neuron - rate``).

Neuron defaults are ``snnlab.dsr``'s, i.e. DSR's CIFAR settings (LIF: v_th 0.3, tau 1, dt 0.05, alpha 0.3,
bound 5e-4; IF: v_th 6, alpha 0.5, bound 0.01), overridable with ``**neuron_kwargs``.

This module is also ``snnlab.dsr_models`` (the same module object, its name before ``snnlab.models`` became a
package).
"""
from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..callbacks import Callback
from ..dsr import DSRIF, DSRLIF, dsr_neurons
from ..layers import TimeMerged
from .factory import check_shape, init_resnet
from .papers import ResNet19, SEWResNet34, SpikingResNet34, VGGSNN
from .tutorial import conv_trunk, conv_trunk_1d

__all__ = [
    "DSR_NEURONS", "make_dsr_neuron", "DSRTutorialSNN", "DSRTutorialSNN1d", "PreActBlock", "PreActResNet18", "STEMS", "VGG11",
    "DSR_MODELS", "build_dsr_model", "thresholds", "ThresholdLog", "count_parameters",
]

DSR_NEURONS = {"lif": DSRLIF, "if": DSRIF}
_NEURON_ARGS = {
    "lif": ("v_th", "tau", "dt", "alpha", "v_th_lower_bound", "threshold_grad", "trainable", "leak_arith",
            "v_th_grad_scale"),
    "if": ("v_th", "alpha", "v_th_lower_bound", "trainable", "v_th_grad_scale"),
}


def make_dsr_neuron(kind: str = "lif", **kwargs) -> nn.Module:
    """A fresh ``DSRLIF`` (``kind="lif"``) or ``DSRIF`` (``kind="if"``) with its own threshold."""
    if kind not in DSR_NEURONS:
        raise ValueError(f"unknown DSR neuron {kind!r}; available: {', '.join(map(repr, DSR_NEURONS))}")
    bad = sorted(set(kwargs) - set(_NEURON_ARGS[kind]))
    if bad:
        raise ValueError(
            f"unexpected argument(s) {', '.join(map(repr, bad))} for the DSR {kind!r} neuron; "
            f"allowed: {', '.join(_NEURON_ARGS[kind])}"
        )
    return DSR_NEURONS[kind](**kwargs)


def _neuron_factory(neuron, neuron_kwargs) -> Callable[[], nn.Module]:
    if callable(neuron) and not isinstance(neuron, str):
        if neuron_kwargs:
            raise ValueError(f"neuron keyword arguments {sorted(neuron_kwargs)} need neuron='lif' or 'if', "
                             f"not a callable")
        return neuron
    make_dsr_neuron(neuron, **neuron_kwargs)  # validate once, with a clear error
    return lambda: make_dsr_neuron(neuron, **neuron_kwargs)


class _RateHead(nn.Module):
    """``[T, B, F...] -> flatten -> (dropout) -> linear -> BN1d -> DSR neuron -> rate -> [1, B, classes]``."""

    def __init__(self, in_features: int, num_classes: int, neuron: nn.Module, dropout: float = 0.0, pre=()):
        super().__init__()
        layers = [*pre, nn.Flatten()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers += [nn.Linear(in_features, num_classes), nn.BatchNorm1d(num_classes)]
        self.fc = TimeMerged(*layers)
        self.neuron = neuron
        if not hasattr(neuron, "rate"):
            raise ValueError(f"the output neuron must have a .rate(spikes) method (a DSR neuron), got {neuron!r}")

    def forward(self, x):
        return self.neuron.rate(self.neuron(self.fc(x))).unsqueeze(0)


class DSRTutorialSNN(nn.Module):
    """``TutorialSNN`` with DSR neurons and DSR's rate head.

    ``[T,B,C,H,W] -> conv3x3-BN-DSR -> avgpool2 -> conv3x3-BN-DSR -> avgpool2 -> linear-BN1d-DSR -> rate``,
    returned as ``[1, B, num_classes]`` (see the module docstring).

    Args:
        input_shape: ``(C, H, W)`` of one frame, e.g. ``(1, 8, 8)`` digits, ``(2, 24, 24)`` dvs-digits.
        num_classes: number of classes.
        neuron: ``"lif"`` (default) or ``"if"``, or a zero-argument callable returning a DSR neuron.
        channels: widths of the two conv blocks (default (16, 32), as ``TutorialSNN``).
        ``**neuron_kwargs``: passed to ``DSRLIF`` / ``DSRIF`` (e.g. ``v_th``, ``alpha``, ``threshold_grad``).
    """

    def __init__(self, input_shape=(1, 8, 8), num_classes: int = 10, neuron="lif",
                 channels: tuple[int, int] = (16, 32), **neuron_kwargs):
        super().__init__()
        shape = check_shape(input_shape)
        make = _neuron_factory(neuron, neuron_kwargs)
        self.features, n_features = conv_trunk(shape, channels, make)
        self.head = _RateHead(n_features, num_classes, make())

    def forward(self, x):
        return self.head(self.features(x))


class DSRTutorialSNN1d(nn.Module):
    """``TutorialSNN1d`` with DSR neurons and DSR's rate head (MNIST-1D): ``[T,B,C,L] -> (conv1d-BN-DSR ->
    avgpool2) x 2 -> linear-BN1d-DSR -> rate``, returned as ``[1, B, num_classes]``; arguments as
    ``DSRTutorialSNN``'s, ``input_shape`` = ``(C, L)``."""

    def __init__(self, input_shape=(1, 40), num_classes: int = 10, neuron="lif",
                 channels: tuple[int, int] = (16, 32), **neuron_kwargs):
        super().__init__()
        self.features, n_features = conv_trunk_1d(input_shape, channels, _neuron_factory(neuron, neuron_kwargs))
        self.head = _RateHead(n_features, num_classes, _neuron_factory(neuron, neuron_kwargs)())

    def forward(self, x):
        return self.head(self.features(x))


class PreActBlock(nn.Module):
    """DSR's pre-activation basic block on ``[T, B, C, H, W]``.

    ``s = neuron1(BN1(x)); out = conv2(dropout(neuron2(BN2(conv1(s))))) + shortcut(s)``, shortcut = 1x1 conv
    if the stride or width changes, else identity (``s``, the block's spikes). Convs are 3x3.

    Args:
        c_in, c_out, stride: the block's input width, output width and first conv's stride.
        make: a zero-argument callable returning a fresh neuron.
        dropout: before the second conv (DSR's CIFAR code; its ImageNet code has none).

        bias: whether the convs (3x3 and the 1x1 shortcut) have biases: ``True`` in DSR's CIFAR code
            (``cifar/modules/preresnet.py``), ``False`` in its ImageNet code (``imagenet/preresnet_snn.py``).

        shortcut_bn: a BatchNorm after the 1x1 shortcut conv (DSR's ImageNet code), none in its CIFAR code.
    """

    def __init__(self, c_in: int, c_out: int, stride: int, make: Callable[[], nn.Module], dropout: float = 0.0,
                 *, bias: bool = True, shortcut_bn: bool = False):
        super().__init__()
        self.bn1 = TimeMerged(nn.BatchNorm2d(c_in))
        self.neuron1 = make()
        self.conv1 = TimeMerged(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=bias), nn.BatchNorm2d(c_out))
        self.neuron2 = make()
        self.conv2 = TimeMerged(nn.Dropout(dropout), nn.Conv2d(c_out, c_out, 3, 1, 1, bias=bias))
        if stride != 1 or c_in != c_out:
            layers = [nn.Conv2d(c_in, c_out, 1, stride, 0, bias=bias)]
            if shortcut_bn:
                layers.append(nn.BatchNorm2d(c_out))
            self.shortcut = TimeMerged(*layers)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        s = self.neuron1(self.bn1(x))
        return self.conv2(self.neuron2(self.conv1(s))) + self.shortcut(s)


STEMS = ("cifar", "imagenet")


class PreActResNet18(nn.Module):
    """DSR's PreAct-ResNet-18, ``[T, B, C, H, W] -> [1, B, num_classes]`` (the rate), with DSR's CIFAR stem or its
    ImageNet one.

    * ``stem="cifar"`` (``cifar/modules/preresnet.py``, ``[T, B, 3, 32, 32]``): ``conv3x3/1`` (no bias, no BN, no
      neuron) into the blocks; block convs and 1x1 shortcut convs with biases, no BN on the shortcut; optional
      dropout in the blocks and before the linear layer; linear bias initialised to 0.
    * ``stem="imagenet"`` (``imagenet/preresnet_snn.py``, ``resnet18_if`` / ``resnet18_lif``,
      ``[T, B, 3, 224, 224]``): ``conv7x7/2 pad 3 (no bias) - BN - neuron - AvgPool2d(3, 2, padding=1)`` (the code
      names it ``maxpool``) into the blocks; all convs bias-free, shortcut ``conv1x1/stride (no bias) - BN`` when
      the stride or width changes, no dropout in the code (``dropout`` stays available, default 0). The linear
      layer keeps PyTorch's default initialisation (the code re-initialises only Conv2d and BatchNorm2d, where the
      CIFAR code also zeroes the linear bias). The SNN file and its ANN twins
      (``preresnet_ann.py``, ``preresnet_cal_Vth.py``) have the same layers and neuron/ReLU placement; the SNN
      file repeats the static image T times itself (snnlab's trainer does that, ``[T, B, ...]`` input) and
      returns the last layer's rate (plain for IF, weighted for LIF) where the ANN returns the ReLU output.
    * ``stem="auto"`` (default): ``"imagenet"`` if both the height and width of ``input_shape`` exceed 64,
      else ``"cifar"`` (so 32x32 CIFAR and 64x64 Tiny-ImageNet-size inputs keep the CIFAR model).

    Both share the trunk: pre-activation blocks (``PreActBlock``) ``[2, 2, 2, 2]`` of widths 64/128/256/512,
    strides 1/2/2/2, the shortcut fed by the block's spikes; then ``BN - neuron - global avgpool - neuron -
    flatten - linear - BN1d - neuron - rate``. Convs are initialised ``normal(0, sqrt(2 / (k*k*out_channels)))``
    (Kaiming fan-out), BatchNorm2d weight 1, bias 0, as in both codes.

    Args:
        num_classes: 10 (CIFAR-10), 100 (CIFAR-100) or 1000 (ImageNet).
        neuron: ``"lif"`` (default, weighted rate) or ``"if"`` (plain rate), or a callable.
        input_shape: ``(C, H, W)``, default ``(3, 32, 32)``.

        dropout: dropout rate in the blocks and before the linear layer (code default 0; the ImageNet code has
            no dropout).

        stem: ``"auto"`` (default), ``"cifar"`` or ``"imagenet"``, see above; the one used is ``self.stem_kind``.
        ``**neuron_kwargs``: for ``DSRLIF`` / ``DSRIF`` (defaults: DSR's CIFAR settings).
    """

    widths = (64, 128, 256, 512)
    strides = (1, 2, 2, 2)
    num_blocks = (2, 2, 2, 2)

    def __init__(self, num_classes: int = 10, neuron="lif", *, input_shape=(3, 32, 32), dropout: float = 0.0,
                 stem: str = "auto", **neuron_kwargs):
        super().__init__()
        c, h, w = check_shape(input_shape)
        if stem == "auto":
            stem = "imagenet" if min(h, w) > 64 else "cifar"
        if stem not in STEMS:
            raise ValueError(f"unknown stem {stem!r} for PreActResNet18; available: 'auto', "
                             f"{', '.join(map(repr, STEMS))}")
        self.stem_kind = stem
        make = _neuron_factory(neuron, neuron_kwargs)
        imagenet = stem == "imagenet"
        if imagenet:  # conv1 - bn1 - relu1 - "maxpool" (an AvgPool2d) of imagenet/preresnet_snn.py
            self.stem = nn.Sequential(
                TimeMerged(nn.Conv2d(c, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64)),
                make(),
                TimeMerged(nn.AvgPool2d(kernel_size=3, stride=2, padding=1)),
            )
        else:
            self.stem = TimeMerged(nn.Conv2d(c, 64, 3, 1, 1, bias=False))
        blocks, c_in = [], 64
        for width, stride, n in zip(self.widths, self.strides, self.num_blocks):
            for s in [stride] + [1] * (n - 1):
                blocks.append(PreActBlock(c_in, width, s, make, dropout, bias=not imagenet, shortcut_bn=imagenet))
                c_in = width
        self.blocks = nn.Sequential(*blocks)
        self.bn = TimeMerged(nn.BatchNorm2d(c_in))
        self.neuron1 = make()
        self.pool = TimeMerged(nn.AdaptiveAvgPool2d(1))
        self.neuron2 = make()
        self.head = _RateHead(c_in, num_classes, make(), dropout)
        init_resnet(self, zero_linear_bias=not imagenet)

    def forward(self, x):
        out = self.blocks(self.stem(x))
        out = self.neuron2(self.pool(self.neuron1(self.bn(out))))
        return self.head(out)


class VGG11(nn.Module):
    """DSR's VGG-11 for DVS-CIFAR10 event frames, ``[T, B, 2, 48, 48] -> [1, B, num_classes]`` (the rate).

    Args:
        num_classes: default 10.
        in_channels: event polarities (default 2); overridden by ``input_shape[0]`` if given.
        neuron: ``"lif"`` (default) or ``"if"``, or a callable.
        input_shape: ``(C, H, W)`` (default ``(in_channels, 48, 48)``; H and W must be >= 32 for five pools).
        dropout: after every spiking conv layer (code default 0.1).
        ``**neuron_kwargs``: for ``DSRLIF`` / ``DSRIF``.
    """

    cfg = ((64, "M"), (128, "M"), (256, 256, "M"), (512, 512, "M"), (512, 512, "M"))

    def __init__(self, num_classes: int = 10, in_channels: int = 2, neuron="lif", *, input_shape=None,
                 dropout: float = 0.1, **neuron_kwargs):
        super().__init__()
        c, h, w = check_shape(input_shape if input_shape is not None else (in_channels, 48, 48))
        if min(h, w) < 32:
            raise ValueError(f"VGG11 needs frames of at least 32x32 (five 2x2 poolings), got input_shape={(c, h, w)}")
        make = _neuron_factory(neuron, neuron_kwargs)
        layers = []
        for group in self.cfg:
            for v in group:
                if v == "M":
                    layers.append(TimeMerged(nn.AvgPool2d(2, 2)))
                else:
                    layers += [TimeMerged(nn.Conv2d(c, v, 3, padding=1), nn.BatchNorm2d(v)), make(),
                               TimeMerged(nn.Dropout(dropout))]
                    c = v
        self.features = nn.Sequential(*layers)
        self.head = _RateHead(c * 7 * 7, num_classes, make(), pre=(nn.AdaptiveAvgPool2d((7, 7)),))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.head(self.features(x))


def _with_dsr_neurons(cls, model_args: tuple = ()):
    """A builder of the paper model ``cls`` (``snnlab.models.papers``) whose neurons are DSR neurons: ``neuron`` is
    ``"lif"``/``"if"`` or a factory; ``model_args`` go to the model, the other keyword arguments to the neurons.
    The model then ends in DSR's rate head and returns ``[1, B, num_classes]``."""

    def build(input_shape, num_classes: int, neuron="lif", **kwargs):
        model_kw = {k: kwargs.pop(k) for k in model_args if k in kwargs}
        return cls(input_shape, num_classes, neuron=_neuron_factory(neuron, kwargs), **model_kw)

    build.__name__ = build.__qualname__ = f"dsr_{cls.__name__}"
    build.__doc__ = f"``snnlab.models.papers.{cls.__name__}`` with DSR neurons and DSR's rate head."
    return build


DSR_MODELS: dict[str, type[nn.Module]] = {
    "tutorial": DSRTutorialSNN,
    "tutorial1d": DSRTutorialSNN1d,
    "preact_resnet18": PreActResNet18,
    "vgg11": VGG11,
    # the papers' surrogate-gradient architectures with DSR neurons (snnlab.models.papers)
    "resnet19": _with_dsr_neurons(ResNet19),
    "vggsnn": _with_dsr_neurons(VGGSNN),
    "spiking-resnet34": _with_dsr_neurons(SpikingResNet34),
    "sew-resnet34": _with_dsr_neurons(SEWResNet34, ("connect",)),
}


def build_dsr_model(name: str, input_shape, num_classes: int, neuron="lif", **kwargs) -> nn.Module:
    """Build a model from ``DSR_MODELS`` by name; ``kwargs`` go to the model (``dropout``, ``channels``,
    ``stem``) and its neurons (``v_th``, ``alpha``, ...). ``"preact_resnet18"`` takes DSR's ImageNet stem for
    inputs above 64x64 (e.g. ``(3, 224, 224)``), its CIFAR stem otherwise (``PreActResNet18``)."""
    if name not in DSR_MODELS:
        raise ValueError(f"unknown DSR model {name!r}; available: {', '.join(map(repr, DSR_MODELS))}")
    return DSR_MODELS[name](input_shape=input_shape, num_classes=num_classes, neuron=neuron, **kwargs)


def thresholds(model: nn.Module) -> dict[str, float]:
    """``{module name: current v_th}`` of every DSR neuron in ``model`` (to watch the thresholds train)."""
    return {name: float(m.v_th.detach()) for name, m in dsr_neurons(model).items()}


class ThresholdLog(Callback):
    """A ``fit`` callback that records ``thresholds(model)`` at the start and every ``every`` optimiser steps.

    ``log.rows`` is a list of ``{module name: v_th}`` dicts, the first one being the initial thresholds.
    """

    def __init__(self, every: int = 5):
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"every must be a positive integer (steps), got {every!r}")
        self.every, self.rows, self._steps = every, [], 0

    def on_fit_start(self, state) -> None:
        self.rows.append(thresholds(state.model))

    def on_step_end(self, state) -> None:
        self._steps += 1
        if self._steps % self.every == 0:
            self.rows.append(thresholds(state.model))

    def state_dict(self) -> dict:
        return {"every": self.every, "rows": self.rows, "steps": self._steps}

    def load_state_dict(self, d: dict) -> None:
        self.every, self.rows, self._steps = d["every"], list(d["rows"]), d["steps"]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameter elements (thresholds included)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

