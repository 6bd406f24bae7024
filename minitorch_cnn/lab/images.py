"""``sample_image``: one real image, shaped and normalised the way the zoo models were trained on it."""
from pathlib import Path

import numpy as np

from ..data import load_dataset, normalise
from ..data.errors import DatasetNotFoundError
from ..data.registry import CIFAR10, MNIST, get_info
from ..tensor import Tensor

PHOTO = "grace_hopper.jpg"   # ships with matplotlib (its sample data): always there


def _photo_path():
    from matplotlib import cbook
    return Path(cbook.get_sample_data(PHOTO, asfileobj=False))


def _read_picture(path, size, channels):
    """A PNG/JPEG file -> uint8 (1, channels, size, size): centre-cropped square, resized (size None: as is)."""
    from PIL import Image
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sample_image: no image file at {path}")
    try:
        img = Image.open(path)
        img = img.convert("RGB" if channels == 3 else "L")
    except OSError as err:
        raise ValueError(f"sample_image: {path} is not a readable PNG/JPEG image ({err})") from None
    if size is not None:
        side = min(img.size)
        left, top = (img.size[0] - side) // 2, (img.size[1] - side) // 2
        img = img.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)
    a = np.asarray(img, dtype=np.uint8)
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    return a[None]


def sample_image(source="photo", index=0, split="test", data_dir=None, size=32, channels=3, as_tensor=True,
                 verify="checksum"):
    """(x, label): x (1, C, size, size) float32 normalised as in training, label an int (None for a picture).

    ``source``: 'mnist', 'fashion-mnist', 'cifar10' (image ``index`` of ``split``, from the official
    files; nothing is downloaded), 'photo' (Grace Hopper, from matplotlib's sample data) or the path of a
    PNG/JPEG file. Pictures are centre-cropped, resized to ``size`` (None keeps the full resolution) and
    normalised with CIFAR-10's statistics (``channels=3``) or MNIST's (``channels=1``, greyscale).
    ``verify`` goes to ``load_dataset`` ('structure' for generated files, which no checksum knows).
    """
    if str(source).lower() == "photo" or Path(str(source)).suffix.lower() in (".png", ".jpg", ".jpeg"):
        path = _photo_path() if str(source).lower() == "photo" else source
        info = CIFAR10 if channels == 3 else MNIST
        if channels not in (1, 3):
            raise ValueError(f"sample_image: channels must be 1 or 3, got {channels}")
        x = normalise(_read_picture(path, size, channels), info.mean, info.std)
        return (Tensor(x) if as_tensor else x), None
    info = get_info(source)
    try:
        data = load_dataset(info.name, split, data_dir=data_dir, download=False, verify=verify)
    except DatasetNotFoundError as err:
        raise DatasetNotFoundError(
            f"sample_image({source!r}): the {info.name} files are not here. Put the official files in "
            f"<folder>/{info.subfolders[0]}/ and pass data_dir=<folder> or set MINITORCH_DATA=<folder>; "
            f"or use sample_image('photo'), which needs no download.\n{err}") from None
    if not 0 <= index < len(data):
        raise IndexError(f"sample_image: index {index} is out of range for {info.name} {split} ({len(data)} images)")
    x = normalise(data.images[index:index + 1], data.mean, data.std)
    return (Tensor(x) if as_tensor else x), int(data.labels[index])
