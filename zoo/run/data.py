"""Where a run's images come from and where they are computed: the dataset splits and the device.

    data = {"data_dir": None, "verify": "checksum", "download": True}    # TrainConfig.to_dict() has these too
    test_set = load_split("mnist", "test", data, limit=1000)
    with mt.using_device(run_device("cuda")): ...
"""
import minitorch_cnn as mt
from minitorch_cnn.data import load_dataset

from .options import UsageError


def load_split(dataset, split, data, limit):
    """One split of ``dataset``, class-balanced when ``limit`` cuts it, found as ``data`` says (its
    data_dir, verify and download entries)."""
    return load_dataset(dataset, split, data_dir=data["data_dir"], download=data["download"],
                        verify=data["verify"], limit=limit, stratified=True)


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
