"""ImageNet (ILSVRC-2012) from its class folders of JPEGs on disk, with TET's transforms.

``snnlab.data.load("imagenet", root=...)`` reads ``root/imagenet/train/<wnid>/*.JPEG`` and
``root/imagenet/val/<wnid>/*.JPEG`` (the val images sorted into the same class folders) with
``torchvision.datasets.ImageFolder``. Nothing is downloaded.

Transforms [code ``build_imagenet``]: train ``RandomResizedCrop(224)``, ``RandomHorizontalFlip``; val
``Resize(256)``, ``CenterCrop(224)``; both ``ToTensor`` and ``Normalize((0.485, 0.456, 0.406),
(0.229, 0.224, 0.225))``; [code] is TET's official code (github.com/brain-intelligence-lab/
temporal_efficient_training, ``data_loaders.py``). Randomness: the augmentations draw from torch's global
generator (see ``snnlab.data.real``).
"""
from __future__ import annotations

import functools

from pathlib import Path

from .bundle import DataBundle, check_bool
from .sources import not_found

__all__ = ["IMAGENET_STATS", "imagenet_transforms", "load_imagenet"]

IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def imagenet_transforms(*, augment: bool = True):
    """``(train_transform, val_transform)`` of TET's code (module docstring); ``augment=False`` uses the val one."""
    from torchvision import transforms as tv  # on first use: ``import snnlab`` does not load torchvision

    normalize = tv.Normalize(*IMAGENET_STATS)
    val = tv.Compose([tv.Resize(256), tv.CenterCrop(224), tv.ToTensor(), normalize])
    if not augment:
        return val, val
    train = tv.Compose([tv.RandomResizedCrop(224), tv.RandomHorizontalFlip(), tv.ToTensor(), normalize])
    return train, val


def load_imagenet(root: Path, *, augment: bool = True) -> DataBundle:
    """ImageNet from ``root`` as a ``DataBundle`` (use ``snnlab.data.load``; module docstring)."""
    from torchvision.datasets import ImageFolder  # on first use: ``import snnlab`` does not load torchvision

    check_bool("augment", augment)
    base = root / "imagenet"
    missing = [f"{base / s}/<wnid>/*.JPEG" for s in ("train", "val")
               if not (base / s).is_dir() or not any(p.is_dir() for p in (base / s).iterdir())]
    if missing:
        flat = base / "val"
        extra = ""
        if flat.is_dir() and any(p.is_file() for p in flat.iterdir()):
            extra = f"{flat} holds images but no class folders: sort the val images into <wnid>/ folders first."
        raise not_found("imagenet", root, missing, extra=extra)
    train_tf, val_tf = imagenet_transforms(augment=augment)
    train = ImageFolder(str(base / "train"), transform=train_tf)
    test = ImageFolder(str(base / "val"), transform=val_tf)
    if train.classes != test.classes:
        only = sorted(set(train.classes) ^ set(test.classes))
        raise ValueError(
            f"{base / 'train'} and {base / 'val'} must have the same class folders; these are in only one of them: "
            f"{', '.join(only[:6])}{' ...' if len(only) > 6 else ''}"
        )
    return DataBundle(
        val_fraction=0.1,  # 10% of the training files held out by split('val')
        plain_train=functools.partial(ImageFolder, str(base / "train"), transform=val_tf),
        name="imagenet", train=train, test=test, num_classes=len(train.classes), input_shape=(3, 224, 224),
        temporal=False, T=None,
        info={"source": str(base), "reader": "torchvision.datasets.ImageFolder", "mean": IMAGENET_STATS[0],
              "std": IMAGENET_STATS[1], "augment": augment, "train_transform": repr(train_tf),
              "test_transform": repr(val_tf)},
    )
