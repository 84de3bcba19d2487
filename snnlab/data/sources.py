"""Where the papers' datasets come from, and the error that says so when their files are missing.

``DatasetNotFoundError`` (a ``FileNotFoundError``) is raised by every reader of files on disk (``cifar``,
``cifar10_dvs``, ``imagenet``); its message names the missing files, where to get them and where to put them.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["DatasetNotFoundError", "SOURCES", "not_found"]

#: name -> (folder under root, where to get the files) for the error messages
SOURCES = {
    "cifar10": (
        "cifar-10-batches-py",
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (the 'CIFAR-10 python version'; "
        "untar it into {root})",
    ),
    "cifar100": (
        "cifar-100-python",
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz (the 'CIFAR-100 python version'; "
        "untar it into {root})",
    ),
    "dvs-cifar10": (
        "dvs-cifar10",
        "https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671 (doi:10.6084/m9.figshare.4724671: "
        "one zip per class, airplane.zip .. truck.zip; unzip each so that {root}/dvs-cifar10/airplane/ holds "
        "cifar10_airplane_0.aedat .. cifar10_airplane_999.aedat, and so on)",
    ),
    "imagenet": (
        "imagenet",
        "https://image-net.org/download-images.php (ILSVRC-2012 'train' and 'val' images, after registering); "
        "extract the train tars into {root}/imagenet/train/<wnid>/ and move each val image into "
        "{root}/imagenet/val/<wnid>/ by its ground-truth label (e.g. with the widely used valprep.sh, or "
        "torchvision.datasets.ImageNet's parse_val_archive)",
    ),
}


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not where ``load`` looks for them. The message lists them and where to get them."""


def not_found(name: str, root: Path, missing: list[str], extra: str = "") -> DatasetNotFoundError:
    """The ``DatasetNotFoundError`` for dataset ``name`` under ``root``: ``missing`` files (the first 6 shown)."""
    folder, how = SOURCES[name]
    shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
    return DatasetNotFoundError(
        f"dataset {name!r} not found under {root}: missing {shown}. "
        f"Nothing is downloaded: get it from {how.format(root=root)}, or point --data-root (root=, or the environment "
        f"variable SNNLAB_DATA) to the folder that holds {folder}/.{(' ' + extra) if extra else ''}"
    )

