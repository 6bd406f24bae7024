"""The TF32 opt-in (config.set_allow_tf32, using_config("allow_tf32", ...)) sets Config.allow_tf32 and CuPy's
cuBLAS compute type for float32, and puts both back; here against a stand-in of cupy._core._routines_linalg
that records what it was told (no GPU), and against the installed CuPy without a GPU (nothing to set: no error)."""
import types

import numpy as np

from minitorch_cnn.config import Config, set_allow_tf32, using_config


def fake_linalg():
    told = []
    return types.SimpleNamespace(COMPUTE_TYPE_TF32=7, COMPUTE_TYPE_DEFAULT=1, told=told,
                                 set_compute_type=lambda dtype, kind: told.append((np.dtype(dtype), kind)))


def test_set_allow_tf32_sets_the_float32_compute_type_both_ways():
    linalg = fake_linalg()
    try:
        set_allow_tf32(True, linalg)
        assert Config.allow_tf32 is True and linalg.told == [(np.dtype(np.float32), 7)]
        set_allow_tf32(False, linalg)
        assert Config.allow_tf32 is False and linalg.told[-1] == (np.dtype(np.float32), 1)
    finally:
        set_allow_tf32(False, linalg)


def test_using_config_switches_tf32_for_a_block_without_a_gpu():
    assert Config.allow_tf32 is False
    with using_config("allow_tf32", True):   # CuPy (if installed) has no GPU here: only the switch changes
        assert Config.allow_tf32 is True
    assert Config.allow_tf32 is False
