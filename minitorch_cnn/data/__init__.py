"""The data layer: MNIST, Fashion-MNIST and CIFAR-10, read from their official files.

    from minitorch_cnn.data import load_dataset, DataLoader
    train = load_dataset("cifar10", "train")          # finds, downloads, verifies
    for x, y in DataLoader(train, 128, shuffle=True, augment=True):
        ...                                           # x float32 (128, 3, 32, 32), y int64 (128,)

Modules: ``idx`` (MNIST file format), ``cifar`` (CIFAR-10 file formats and a
restricted unpickler), ``download`` (checksums, mirrors, atomic downloads),
``registry`` (what we know about each dataset), ``datasets`` (finding and
loading: ``load_dataset``), ``loader`` (``DataLoader``, augmentation).
No torch or torchvision: only numpy, the standard library and tqdm.
"""
from .cifar import RestrictedUnpickler, read_cifar_binary, read_cifar_python
from .datasets import Dataset, cache_dir, data_roots, load_dataset
from .errors import (
    ChecksumError,
    DataError,
    DataFormatError,
    DatasetNotFoundError,
    DownloadError,
)
from .idx import read_idx
from .loader import DataLoader, crop_flip, normalise, random_crop_flip
from .registry import DATASETS

__all__ = [
    "DATASETS", "ChecksumError", "DataError", "DataFormatError", "DataLoader", "Dataset",
    "DatasetNotFoundError", "DownloadError", "RestrictedUnpickler", "cache_dir", "crop_flip",
    "data_roots", "load_dataset", "normalise", "random_crop_flip", "read_cifar_binary",
    "read_cifar_python", "read_idx",
]
