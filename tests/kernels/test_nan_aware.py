"""The kernel comparisons see NaN: the emulator NaN-fills every array a kernel may write before each launch,
and support.cuda_cases.nan_aware_err fails any NaN where the reference has none (``max(0.0, nan)`` is 0.0,
so before this an all-NaN output scored error 0).

Planted bug: an im2col that forgets to write the zeros of the padding (it writes only in-range taps). On a
fresh NumPy buffer those elements are often already 0 and the bug passes; poisoned, they are NaN and fail."""
import numpy as np
import pytest
from support.cuda_cases import CASES, nan_aware_err, run_case

import minitorch_cnn as mt
from minitorch_cnn.kernels.cuda import emulator, launch

pytestmark = pytest.mark.skipif(not emulator.available(), reason=str(emulator.unavailable_reason()))

CFG = {"shape": (2, 3, 5, 5), "kernel": (3, 3), "stride": (1, 1), "padding": (1, 1), "dilation": (1, 1),
       "out_hw": (5, 5), "dtype": np.float32}
GOOD = "*out = (row_in && ix >= 0 && ix < w) ? plane["
SOURCE = launch.source   # the real one (the test below replaces it)
BAD = "if (row_in && ix >= 0 && ix < w) *out = plane["


def no_padding_zeros(file):
    text = SOURCE(file)
    if file != "conv":
        return text
    assert GOOD in text, "conv.cu's im2col changed: update the planted bug"
    return text.replace(GOOD, BAD).replace("+ ix] : (T)0; \\", "+ ix]; \\", 1)


def im2col_case():
    return next(c for c in CASES if c.name == "im2col")


def test_an_all_nan_output_fails_and_matching_nans_do_not():
    want = np.array([1.0, np.nan, 3.0])
    with pytest.raises(AssertionError, match="NaN in one and not the other"):
        nan_aware_err("k (y)", np.full(3, np.nan), want)
    assert nan_aware_err("k (y)", np.array([1.0, np.nan, 3.0]), want) == 0.0


def test_the_correct_im2col_passes_poisoned():
    device = mt.device("cuda-emulator")
    with mt.using_device(device):
        assert run_case(im2col_case(), device.kernels, CFG, device.send, np.asarray)["cols"] == 0.0


def test_a_planted_im2col_that_skips_the_padding_zeros_fails(monkeypatch):
    monkeypatch.setattr(launch, "source", no_padding_zeros)
    device = mt.device("cuda-emulator")
    with mt.using_device(device), pytest.raises(AssertionError, match="im2col \\(cols\\).*NaN"):
        run_case(im2col_case(), device.kernels, CFG, device.send, np.asarray)
