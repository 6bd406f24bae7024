"""Tensor's conversions (to, astype, detach), its comparison operators, and choosing the default device
(tests/engine/test_device.py covers the Device object and placement in full)."""
import numpy as np
import pytest
import torch

import minitorch_cnn as mt
from minitorch_cnn.config import Config
from minitorch_cnn.device import gpu_available

NO_GPU = "needs a machine without a CUDA device (with one, 'cuda' is a valid choice)"


def leaf(values, dtype=np.float32):
    return mt.Tensor(np.array(values, dtype=dtype), requires_grad=True)


def test_to_cpu_keeps_values_dtype_and_requires_grad():
    t = leaf([[1.5, -2.0], [0.25, 3.0]], np.float64)
    u = t.to("cpu")
    assert isinstance(u, mt.Tensor) and isinstance(u.data, np.ndarray)
    assert u.dtype == np.float64 and u.requires_grad and np.array_equal(u.numpy(), t.numpy())


def test_to_an_unknown_device_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown device 'tpu'; expected 'cpu', 'cuda', 'cuda:N' or 'cuda-emulator'"):
        leaf([1.0]).to("tpu")


@pytest.mark.skipif(gpu_available(), reason=NO_GPU)
def test_to_cuda_without_a_gpu_says_how_to_get_one():
    with pytest.raises(RuntimeError, match=r"device 'cuda' requested but CuPy or a CUDA device is not available"):
        leaf([1.0]).to("cuda")


def test_astype_converts_a_copy_and_keeps_requires_grad():
    t = leaf([0.1, 2.7, -3.5], np.float64)
    u = t.astype(np.float32)
    assert u.dtype == np.float32 and u.requires_grad
    assert np.array_equal(u.numpy(), np.array([0.1, 2.7, -3.5], np.float32))
    u.data[0] = 100.0
    assert t.data[0] == 0.1                                       # a new array, not a view
    assert mt.Tensor(np.array([1, 2], np.int64)).astype(np.float64).dtype == np.float64
    assert not t.astype(np.int32).requires_grad                  # an integer copy cannot carry a gradient


def test_detach_shares_the_data_and_stops_gradients():
    x = leaf([1.0, 2.0, 3.0])
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.creator is None and d.is_leaf
    assert np.shares_memory(d.data, y.data)                      # like torch: the same storage
    (y.sum() + (d * x).sum()).backward()                          # d is a constant: dx = 2 + d = 2 + 2x
    tx = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    ty = tx * 2
    (ty.sum() + (ty.detach() * tx).sum()).backward()
    assert np.array_equal(x.grad, tx.grad.numpy())


@pytest.mark.parametrize("op", ["<", "<=", ">", ">="])
def test_comparisons_match_numpy_and_torch(op):
    a = np.array([[1.0, 2.0, 3.0], [4.0, 2.0, -1.0]], np.float32)
    b = np.array([[1.0, 3.0, 2.0], [4.0, 2.5, -2.0]], np.float32)
    compare = {"<": lambda p, q: p < q, "<=": lambda p, q: p <= q,
               ">": lambda p, q: p > q, ">=": lambda p, q: p >= q}[op]
    want = compare(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    for other in (mt.Tensor(b), b):                                # against a Tensor and an array
        got = compare(mt.Tensor(a), other)
        assert got.dtype == np.bool_ and np.array_equal(got, want)
    assert np.array_equal(compare(mt.Tensor(a), 2.0), compare(a, 2.0))   # and a Python number
    assert np.array_equal(compare(b, mt.Tensor(a)), compare(b, a))      # an array on the left


def test_set_default_device_refuses_unknown_names_and_changes_nothing():
    with pytest.raises(ValueError, match=r"unknown device 'torch'; expected 'cpu', 'cuda', 'cuda:N' or 'cuda-em"):
        mt.set_default_device("torch")
    assert mt.get_default_device().xp is np
    with pytest.raises(ValueError, match=r"unknown device 'gpu'"):
        with mt.using_device("gpu"):
            pass
    assert mt.get_default_device().xp is np


@pytest.mark.skipif(gpu_available(), reason=NO_GPU)
def test_set_default_device_cuda_without_a_gpu_changes_nothing():
    for enter in (lambda: mt.set_default_device("cuda"), lambda: mt.using_device("cuda").__enter__()):
        with pytest.raises(RuntimeError, match=r"CuPy or a CUDA device is not available \(install with: pip"):
            enter()
        assert mt.get_default_device().xp is np and isinstance(mt.Tensor([1.0]).data, np.ndarray)


def test_using_device_restores_the_previous_device_after_an_error(monkeypatch):
    monkeypatch.setattr(Config, "device", mt.device("cuda-emulator"))   # as if a run had chosen it
    with pytest.raises(KeyError):
        with mt.using_device("cpu"):
            assert mt.get_default_device().xp is np
            raise KeyError("inside")
    assert Config.device == mt.device("cuda-emulator")
