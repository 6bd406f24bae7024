"""``clamp``: the mask-free ReLU / ReLU6 forward the layers call, on every tier, at the values where it bends.

It must give exactly ``clamp_forward``'s output (the backward reads the derivative mask back from it): NaN
stays NaN, -0.0 and 0.0 both give zero, +-inf clamp to 0 and to the bound (or stay inf without one), and the
kinks at exactly 0 and 6 and either side of them land where ``reference.clamp_forward`` puts them.
"""
import numpy as np
import pytest

import minitorch_cnn as mt
from minitorch_cnn import functional as F
from minitorch_cnn.device import to_numpy
from minitorch_cnn.kernels import cpu, cuda, reference
from minitorch_cnn.kernels.cpu import jit
from minitorch_cnn.kernels.cuda import emulator


def special_values(dtype):
    e = np.finfo(dtype).eps
    return np.array([np.nan, -np.inf, -1.0, -e, -0.0, 0.0, e, 1.0, 6.0 - 4 * e, 6.0, 6.0 + 8 * e, 7.0, np.inf,
                     -np.nan], dtype)


def planted(shape, dtype):
    """Random values, 5 wide, with every special value planted at the start."""
    x = (np.random.default_rng(0).standard_normal(shape) * 5).astype(dtype)
    values = special_values(dtype)
    x.reshape(-1)[:values.size] = values
    return x


# (14,): shorter than a vector; (3, 5, 7): a loop remainder; (64, 32, 8, 8): the threaded copy
# (tests/conftest.py lowers jit.PARALLEL_FROM for every test; checked inside the test, after that fixture)


@pytest.mark.parametrize("shape", [(14,), (3, 5, 7), (64, 32, 8, 8)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("high", [None, 6.0])
def test_cpu_clamp_is_clamp_forwards_output(shape, dtype, high):
    assert shape != (64, 32, 8, 8) or 64 * 32 * 8 * 8 >= jit.PARALLEL_FROM
    x = planted(shape, dtype)
    got, want = cpu.clamp(x, high), reference.clamp(x, high)
    assert got.dtype == dtype and got.shape == shape and want.dtype == dtype
    np.testing.assert_array_equal(got, want)               # NaN where NaN, equal elsewhere
    np.testing.assert_array_equal(want, reference.clamp_forward(x, high)[0])
    np.testing.assert_array_equal(got, cpu.clamp_forward(x, high)[0])
    # bit for bit the output clamp_forward gives on this tier, the sign of zero included
    np.testing.assert_array_equal(np.signbit(got), np.signbit(cpu.clamp_forward(x, high)[0]))


def test_cpu_clamp_values_at_the_bounds():
    x = special_values(np.float32)
    got = cpu.clamp(x, 6.0)
    e = np.finfo(np.float32).eps
    want = np.array([np.nan, 0, 0, 0, 0, 0, e, 1, 6 - 4 * e, 6, 6, 6, 6, np.nan], np.float32)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(cpu.clamp(x)[-3:-1], [7, np.inf])


def test_cpu_clamp_takes_any_layout():
    x = planted((4, 6, 5), np.float64)[:, ::2].transpose(2, 0, 1)   # neither C- nor F-contiguous
    np.testing.assert_array_equal(cpu.clamp(x, 6.0), reference.clamp(x, 6.0))


@pytest.mark.skipif(not emulator.available(), reason=str(emulator.unavailable_reason()))
@pytest.mark.parametrize("high", [None, 6.0])
def test_cuda_clamp_on_the_emulator(high):
    device = mt.device("cuda-emulator")
    x = planted((3, 50), np.float32)
    with mt.using_device(device):
        got = to_numpy(cuda.clamp(device.send(x), high))
    np.testing.assert_array_equal(got, reference.clamp(x, high))


@pytest.mark.parametrize("shape", [(14,), (64, 32, 8, 8)])
@pytest.mark.parametrize("high", [None, 6.0])
def test_clamp_into_out_or_in_place_on_every_tier(shape, high):
    """``out=x`` clamps in place (nn/fold.py's inference), ``out=`` another array fills it; both bit for bit
    the new array's values, on the reference, the Numba kernels and the emulated CUDA kernel."""
    x = planted(shape, np.float32)
    want = reference.clamp(x, high)
    tiers = [(reference, None), (cpu, None)]
    if emulator.available():
        tiers.append((cuda, mt.device("cuda-emulator")))
    for module, device in tiers:
        with mt.using_device(device or mt.device("cpu")):
            inplace, other = x.copy(), np.full_like(x, 3.0)
            assert module.clamp(inplace, high, out=inplace) is inplace
            assert module.clamp(x, high, out=other) is other
            fresh = to_numpy(module.clamp(x, high))
        np.testing.assert_array_equal(inplace, want, err_msg=module.__name__)
        np.testing.assert_array_equal(other, want, err_msg=module.__name__)
        for got in (inplace, other):   # the sign of zero too, as this tier's new array has it
            assert np.array_equal(np.signbit(got), np.signbit(fresh)), module.__name__


@pytest.mark.parametrize("fn,high", [(F.relu, None), (F.relu6, 6.0)])
def test_relu_forward_is_the_clamp_and_keeps_no_mask(fn, high):
    x = planted((2, 3, 4, 5), np.float32)
    y = fn(mt.Tensor(x, requires_grad=True))
    np.testing.assert_array_equal(y.data, reference.clamp_forward(x, high)[0])
    held = [v for v in vars(y.creator).values() if isinstance(v, np.ndarray)]   # kept until backward
    assert held and all(a.dtype != np.bool_ for a in held)
