"""CIFAR-10 and CIFAR-100 from their python pickle batches on disk, with TET's transforms.

``snnlab.data.load("cifar10" | "cifar100", root=...)`` reads ``root/cifar-10-batches-py/{data_batch_1..5,
test_batch, batches.meta}`` (from https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz) or
``root/cifar-100-python/{train, test, meta}`` (the 100 fine labels) with ``torchvision.datasets.CIFAR10`` /
``CIFAR100(download=False)``: 50,000 / 10,000 images. Nothing is downloaded.

Transforms follow TET's official code (github.com/brain-intelligence-lab/temporal_efficient_training,
``data_loaders.py``), tagged [code]; snnlab's own choices are tagged [snnlab].

* CIFAR [code ``build_cifar``]: train ``RandomCrop(32, padding=4)``, ``RandomHorizontalFlip``, ``ToTensor``,
  ``Normalize``; test ``ToTensor``, ``Normalize``. The code's mean/std: CIFAR-10 ``(0.4914, 0.4822, 0.4465)`` /
  ``(0.2023, 0.1994, 0.2010)``, CIFAR-100 ``(0.5071, 0.4867, 0.4408)`` / ``(0.2675, 0.2565, 0.2761)``.
  Options, off by default: ``cutout=True`` is the code's ``cutout`` flag (one 16x16 hole, DeVries & Taylor
  2017, applied after ``ToTensor`` and before ``Normalize`` as in the code; the code's flag itself is broken:
  the argument shadows the function it calls); ``autoaugment=True`` adds torchvision's ``AutoAugment`` with
  the CIFAR-10 policy before ``ToTensor`` [snnlab: not in TET's code, offered for recipes that use it].
  ``verify=True`` (default) checks every batch file's MD5 against torchvision's published checksums.

Randomness: every augmentation draws from torch's global generator (see ``snnlab.data.real``).
"""
from __future__ import annotations

import functools
import hashlib
import numbers
from pathlib import Path

import torch

from .bundle import DataBundle, check_bool
from .sources import SOURCES, not_found

__all__ = ["CIFAR_STATS", "Cutout", "cifar_transforms", "load_cifar"]

#: (mean, std) per channel, as in TET's ``data_loaders.build_cifar``
CIFAR_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
}


class Cutout:
    """Zero one ``length x length`` square at a uniformly random centre of a ``[C, H, W]`` tensor.

    DeVries & Taylor 2017 ("Improved regularization of convolutional neural networks with cutout"); the square
    is clipped at the border, so it may be smaller near the edges. The centre is drawn with torch's global
    generator (or ``generator``).
    """

    def __init__(self, length: int = 16, n_holes: int = 1):
        for k, v in (("length", length), ("n_holes", n_holes)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"Cutout {k} must be a positive integer; got {v!r}")
        self.length, self.n_holes = int(length), int(n_holes)

    def __call__(self, img: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        h, w = img.shape[-2:]
        img = img.clone()
        for _ in range(self.n_holes):
            cy = int(torch.randint(h, (), generator=generator))
            cx = int(torch.randint(w, (), generator=generator))
            half = self.length // 2
            img[..., max(cy - half, 0) : min(cy + half, h), max(cx - half, 0) : min(cx + half, w)] = 0
        return img

    def __repr__(self) -> str:
        return f"Cutout(length={self.length}, n_holes={self.n_holes})"


def cifar_transforms(name: str = "cifar10", *, augment: bool = True, cutout: bool = False,
                     autoaugment: bool = False):
    """``(train_transform, test_transform)`` of TET's code for ``"cifar10"`` or ``"cifar100"`` (module docstring).

    ``augment=False`` gives the training set the test transform (no randomness at all).
    """
    from torchvision import transforms as tv  # on first use: ``import snnlab`` does not load torchvision

    mean, std = CIFAR_STATS[name]
    normalize = tv.Normalize(mean, std)
    test = tv.Compose([tv.ToTensor(), normalize])
    if not augment:
        if cutout or autoaugment:
            raise ValueError("cutout and autoaugment are training augmentations: they need augment=True")
        return test, test
    steps = [tv.RandomCrop(32, padding=4), tv.RandomHorizontalFlip()]
    if autoaugment:
        steps.append(tv.AutoAugment(tv.AutoAugmentPolicy.CIFAR10))
    steps.append(tv.ToTensor())
    if cutout:
        steps.append(Cutout(16, 1))
    steps.append(normalize)
    return tv.Compose(steps), test


def _without_md5_checks(cls, name: str):
    """``cls`` (torchvision's CIFAR10/CIFAR100) without its MD5 checks on construction: ``load`` checks the files
    itself, once, unless ``verify=False``."""
    return type(name, (cls,), {
        "train_list": [[f, None] for f, _ in cls.train_list],
        "test_list": [[f, None] for f, _ in cls.test_list],
        "meta": {**cls.meta, "md5": None},
        "__module__": __name__,
        "__doc__": cls.__doc__,
    })


@functools.cache
def _readers(name: str):
    """``(torchvision's class, with the published MD5s; the reader used)`` for ``"cifar10"`` or ``"cifar100"``,
    made once, on first use (``import snnlab`` does not load torchvision)."""
    from torchvision import datasets

    official = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[name]
    return official, _without_md5_checks(official, f"_{name.upper()}")


def __getattr__(name: str):
    """The readers ``_CIFAR10`` and ``_CIFAR100`` by name (so that DataLoader workers can pickle the datasets)."""
    if name in ("_CIFAR10", "_CIFAR100"):
        return _readers(name[1:].lower())[1]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_cifar(name: str, root: Path, *, augment: bool = True, cutout: bool = False, autoaugment: bool = False,
               verify: bool = True) -> DataBundle:
    """``"cifar10"`` or ``"cifar100"`` from ``root`` as a ``DataBundle`` (use ``snnlab.data.load``; see the module
    docstring)."""
    for k, v in (("augment", augment), ("cutout", cutout), ("autoaugment", autoaugment), ("verify", verify)):
        check_bool(k, v)
    official, reader = _readers(name)
    folder = root / official.base_folder
    files = [(f, md5) for f, md5 in official.train_list + official.test_list]
    files.append((official.meta["filename"], official.meta["md5"]))
    missing = [str(folder / f) for f, _ in files if not (folder / f).is_file()]
    if missing:
        raise not_found(name, root, missing)
    if verify:
        for f, md5 in files:
            got = _md5(folder / f)
            if got != md5:
                raise ValueError(
                    f"{folder / f} is not the official {name} file: its MD5 is {got}, expected {md5} "
                    f"(torchvision's checksum). Re-extract it from {SOURCES[name][1].split(' ')[0]}, or pass "
                    f"verify=False to read it anyway."
                )

    train_tf, test_tf = cifar_transforms(name, augment=augment, cutout=cutout, autoaugment=autoaugment)
    train = reader(str(root), train=True, transform=train_tf, download=False)
    test = reader(str(root), train=False, transform=test_tf, download=False)
    mean, std = CIFAR_STATS[name]
    return DataBundle(
        val_fraction=0.1,  # 10% of the training files held out by split('val')
        plain_train=functools.partial(reader, str(root), train=True, transform=test_tf, download=False),
        name=name, train=train, test=test, num_classes=len(train.classes), input_shape=(3, 32, 32),
        temporal=False, T=None,
        info={"source": str(folder), "reader": f"torchvision.datasets.{official.__name__}", "mean": mean, "std": std,
              "augment": augment, "cutout": cutout, "autoaugment": autoaugment, "verified_md5": verify,
              "train_transform": repr(train_tf), "test_transform": repr(test_tf)},
    )
