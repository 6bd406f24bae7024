"""Where a run's images come from and where they are computed: the dataset splits and the device.

    data = {"data_dir": None, "verify": "checksum", "download": True}    # TrainConfig.to_dict() has these too
    test_set = load_split("mnist", "test", data, limit=1000)
    with mt.using_device(run_device("cuda")): ...
"""
from pathlib import Path

import minitorch_cnn as mt
from minitorch_cnn.data import load_dataset

from .options import UsageError


def check_data_dir(data_dir):
    """UsageError unless ``data_dir`` (when given) is an existing folder: a typo must not create a folder
    tree to download into, and a file must not be silently passed over for the cache."""
    if data_dir is None:
        return
    path = Path(data_dir).expanduser()
    if not path.exists():
        raise UsageError(f"--data-dir {data_dir} does not exist (create it first to download the data into it)")
    if not path.is_dir():
        raise UsageError(f"--data-dir {data_dir} is not a folder")


def load_split(dataset, split, data, limit):
    """One split of ``dataset``, class-balanced when ``limit`` cuts it, found as ``data`` says (its
    data_dir, verify and download entries); UsageError if it holds no images."""
    check_data_dir(data["data_dir"])
    loaded = load_dataset(dataset, split, data_dir=data["data_dir"], download=data["download"],
                          verify=data["verify"], limit=limit, stratified=True)
    if len(loaded) == 0:     # training or testing on nothing would write rows of 0.0000
        raise UsageError(f"the {split} split of {dataset} holds no images")
    return loaded


def check_channels(expected, dataset):
    """UsageError unless ``dataset``'s images have the ``expected`` number of channels."""
    if expected != dataset.in_channels:
        raise UsageError(f"the model takes {expected}-channel images but {dataset.name} has "
                         f"{dataset.in_channels} channel(s)")


def run_device(spec):
    """The Device named by ``spec``; one UsageError line when it is unknown or absent on this machine."""
    try:
        return mt.device(spec)
    except (ValueError, RuntimeError) as err:   # unknown, or no CuPy / no such GPU (the error says which)
        raise UsageError(f"{spec} is not available: {err}") from None
