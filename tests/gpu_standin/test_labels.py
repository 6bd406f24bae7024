"""A training step's labels cross to the device once (functional/loss.labels_on): the loss sends them, the
batch's scores (zoo/run/loop.batch_scores) get that copy back; a host buffer reused with other values, or
another dtype, is sent again. The stand-in module is handed in as ``xp`` (no install needed: labels_on asks
only xp.asarray and xp.cuda.Device), its ledger counts the copies."""
import numpy as np
from support import strict_cupy
from support.standin_ledger import LEDGER

from minitorch_cnn.functional.loss import labels_on


def h2d():
    return sum(1 for kind, *_ in LEDGER.events if kind == "h2d")


def test_the_same_labels_are_sent_once_and_changed_ones_again():
    LEDGER.reset()
    y = np.array([3, 1, 4, 1, 5], np.int64)
    first = labels_on(strict_cupy, y)
    assert labels_on(strict_cupy, y.copy()) is first and h2d() == 1
    assert first.dtype == np.int64 and first.get().tolist() == [3, 1, 4, 1, 5]
    y[0] = 9                                    # the loader's buffer, refilled in place
    again = labels_on(strict_cupy, y)
    assert again is not first and again.get().tolist() == [9, 1, 4, 1, 5] and h2d() == 2
    as_bytes = labels_on(strict_cupy, y.astype(np.uint8))      # same values, another dtype: sent as int64
    assert as_bytes is not again and as_bytes.dtype == np.int64 and h2d() == 3
    assert labels_on(strict_cupy, again) is again and h2d() == 3  # already on the device: kept


def test_host_labels_stay_host_arrays_for_numpy():
    got = labels_on(np, [1, 2])
    assert isinstance(got, np.ndarray) and got.dtype == np.int64
