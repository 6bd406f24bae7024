"""The device-path rules that can be checked without a GPU (tests/kernels/test_cuda_gpu.py runs the rest on one).

* Inputs on two devices are one clear error, raised where the Function is called, naming both devices
  (checked with a stand-in for CuPy's array type, since no GPU array can exist here).
* Optimizer state follows its parameter when Module.to changes the parameter's dtype (the same
  mechanism moves it between devices).
* Cross-entropy checks host labels on the host.
"""
import importlib
import types

import numpy as np
import pytest

import minitorch_cnn as mt

device_module = importlib.import_module("minitorch_cnn.device")   # mt.device is the function of that name


class FakeDeviceArray(np.ndarray):
    """A NumPy array that says it lives on CUDA device ``device.id``."""
    device = types.SimpleNamespace(id=1)


def test_inputs_on_two_devices_are_one_clear_error(monkeypatch):
    monkeypatch.setattr(device_module, "_cupy", types.SimpleNamespace(ndarray=FakeDeviceArray))
    on_gpu = mt.Tensor(np.ones(3, np.float32).view(FakeDeviceArray))
    with pytest.raises(RuntimeError, match=r"Add: inputs on different devices: cpu \(NumPy\) and cuda:1"):
        mt.Tensor(np.ones(3, np.float32)) + on_gpu
    with pytest.raises(RuntimeError, match=r"different devices"):
        mt.Tensor(np.ones((2, 3), np.float32)) @ mt.Tensor(np.ones((3, 2), np.float32).view(FakeDeviceArray))
    assert isinstance((on_gpu * on_gpu).data, np.ndarray)   # one device: no error


def test_optimizer_state_follows_module_to():
    model = mt.nn.Linear(3, 2)
    opt = mt.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for dtype in (np.float32, np.float64):
        model.to(dtype)
        x = mt.Tensor(np.ones((4, 3), dtype))
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()
        for p in model.parameters():
            assert opt.state[p]["momentum_buffer"].dtype == p.dtype == dtype


def test_cross_entropy_checks_host_labels_before_any_copy():
    logits = mt.Tensor(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"target values must be in \[0, 2\].*got min 0 and max 3"):
        mt.functional.cross_entropy(logits, np.array([0, 3]))
    assert np.isclose(mt.functional.cross_entropy(logits, [0, 2]).item(), np.log(3))
