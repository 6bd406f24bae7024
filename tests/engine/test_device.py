"""The Device object and the default device: one vocabulary ("cpu", "cuda", "cuda:N", "cuda-emulator") for
``mt.device``, ``Tensor.to`` and ``Module.to``; host data placed on the default device; ``Config`` switches put
back however a block ends.

GPU placement is checked with tests/support/strict_cupy.py bound in place of CuPy (the ``standin`` fixture):
its device arrays are not NumPy arrays and refuse implicit host conversion, as CuPy's do, so a host array
that slips through fails here as it would on a GPU.
"""
import importlib
import io

import numpy as np
import pytest
from support import strict_cupy

import minitorch_cnn as mt
from minitorch_cnn import kernels
from minitorch_cnn.config import Config, using_config
from minitorch_cnn.kernels.cuda import emulator

device_module = importlib.import_module("minitorch_cnn.device")   # mt.device is the function of that name
needs_emulator = pytest.mark.skipif(not emulator.available(), reason="the CUDA emulator needs g++")


@pytest.fixture
def standin(monkeypatch):
    """The library sees strict_cupy as CuPy, with one GPU, for this test only."""
    monkeypatch.setattr(device_module, "_cupy", strict_cupy)
    monkeypatch.setattr(device_module, "_devices", {"cpu": device_module.CPU})
    monkeypatch.setattr(device_module, "_cuda_modules", {})
    monkeypatch.setattr(strict_cupy.runtime, "DEVICE_COUNT", 1)
    return strict_cupy


def on_gpu(t):
    return isinstance(t.data if isinstance(t, mt.Tensor) else t, strict_cupy.ndarray)


def test_the_vocabulary_names_each_device_once():
    cpu, emu = mt.device("cpu"), mt.device("cuda-emulator")
    assert (cpu.name, cpu.xp, cpu.kernels, cpu.is_gpu) == ("cpu", np, kernels.cpu, False)
    assert (emu.name, emu.xp, emu.kernels, emu.is_gpu) == ("cuda-emulator", np, kernels.cuda, False)
    assert mt.device(cpu) is cpu and mt.device("cpu") == cpu and cpu != emu
    assert str(emu) == "cuda-emulator" and repr(cpu) == "device('cpu')" and len({cpu, mt.device("cpu"), emu}) == 2
    assert mt.get_default_device() == cpu and mt.Tensor([1.0]).device == cpu


def test_cuda_names_a_gpu_by_number(standin):
    gpu = mt.device("cuda")
    assert gpu == mt.device("cuda:0") and gpu.name == "cuda:0" and gpu.index == 0
    assert gpu.is_gpu and gpu.xp is standin and gpu.kernels is kernels.cuda
    with pytest.raises(RuntimeError, match=r"device 'cuda:1' requested but CuPy sees 1 CUDA device\(s\): cuda:0 to "):
        mt.device("cuda:1")


@pytest.mark.parametrize("spec", ["tpu", "numpy", "cupy", "CPU", "cuda:", "cuda:x", "cuda-emulator:0", 0, None])
def test_unknown_specs_are_one_clear_error_listing_the_choices(spec):
    with pytest.raises(ValueError, match=r"unknown device .*; expected 'cpu', 'cuda', 'cuda:N' or 'cuda-emulator'"):
        mt.device(spec)
    with pytest.raises(ValueError):
        mt.Tensor([1.0]).to(spec)
    assert mt.get_default_device() == mt.device("cpu")


def test_module_to_refuses_what_is_neither_a_device_nor_a_dtype():
    with pytest.raises(ValueError, match=r"Linear.to: 'tpu' is neither a device \('cpu', 'cuda', 'cuda:N' or "
                                         r"'cuda-emulator'\) nor a dtype"):
        mt.nn.Linear(2, 2).to("tpu")
    with pytest.raises(ValueError, match=r"unknown device 'cuda:x'"):
        mt.nn.Linear(2, 2).to("cuda:x")


@pytest.mark.skipif(device_module.gpu_available(), reason="needs a machine without a CUDA device")
def test_cuda_without_a_gpu_says_what_is_missing_and_what_runs_instead():
    with pytest.raises(RuntimeError, match=r"device 'cuda' requested but CuPy or a CUDA device is not available "
                                           r"\(install with: pip install \.\[gpu\]\); 'cuda-emulator' runs"):
        mt.device("cuda")


def test_host_data_goes_to_the_default_device(standin):
    host = np.arange(6, dtype=np.float32).reshape(2, 3)
    with mt.using_device("cuda") as gpu:
        assert gpu == mt.get_default_device() == mt.device("cuda")
        for data in (host, [1.0, 2.0], 3.0, mt.Tensor._from_array(host, False)):
            t = mt.Tensor(data)
            assert on_gpu(t) and t.device == gpu
        assert mt.Tensor([1.0, 2.0]).dtype == np.float32 and mt.Tensor(host.astype(np.float64)).dtype == np.float64
        assert not on_gpu(mt.Tensor(host, device="cpu"))                  # an explicit device wins
        assert mt.nn.Linear(3, 2).weight.device == gpu                    # parameters are made there
    t = mt.Tensor(host)
    assert isinstance(t.data, np.ndarray) and t.data is host              # on the CPU: no copy
    on_device = mt.Tensor(standin.asarray(host))
    assert on_gpu(on_device) and on_gpu(mt.Tensor(on_device.data))        # a GPU array is not copied back
    assert isinstance(mt.Tensor(on_device.data, device="cpu").data, np.ndarray)


def test_internal_constructions_keep_data_where_it_is(standin):
    host = mt.Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    gpu = host.to("cuda")
    with mt.using_device("cuda"):                    # a host tensor's results stay on the host ...
        for t in (host.detach(), host.astype(np.float64), host * 0.5, 2.0 - host, host.sum(), host + host):
            assert isinstance(t.data, np.ndarray), t
        assert np.shares_memory(host.detach().data, host.data)
    for t in (gpu.detach(), gpu.astype(np.float64), gpu * 0.5, 2.0 - gpu, gpu.sum(), gpu + gpu):
        assert on_gpu(t), t                           # ... and a GPU tensor's on the GPU, whatever the default


def test_tensor_to_moves_both_ways_and_keeps_what_is_there(standin):
    t = mt.Tensor(np.array([[1.5, -2.0], [0.25, 3.0]]), requires_grad=True)
    g = t.to("cuda")
    assert on_gpu(g) and g.requires_grad and g.dtype == np.float64 and g.device == mt.device("cuda:0")
    assert g.to("cuda:0").data is g.data and g.to(mt.device("cuda")).data is g.data   # already there: no copy
    back = g.to("cpu")
    assert isinstance(back.data, np.ndarray) and np.array_equal(back.numpy(), t.numpy()) and back.requires_grad
    assert np.array_equal(g.numpy(), t.numpy()) and "tensor([[ 1.5" in repr(g)


@needs_emulator
def test_module_to_moves_parameters_buffers_and_training_both_ways(standin):
    rng = np.random.default_rng(0)
    model = mt.nn.Sequential(mt.nn.Conv2d(1, 2, 3), mt.nn.BatchNorm2d(2), mt.nn.ReLU(), mt.nn.MaxPool2d(2),
                             mt.nn.Flatten(), mt.nn.Linear(2 * 3 * 3, 4))
    before = {k: np.array(v) for k, v in model.state_dict().items()}
    assert model.to("cuda") is model
    assert all(on_gpu(v) for v in model.state_dict().values())                 # running_mean too
    opt = mt.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = mt.Tensor(rng.standard_normal((2, 1, 8, 8)), device="cuda")
    mt.functional.cross_entropy(model(x), np.array([1, 3])).backward()          # host labels: checked, moved
    opt.step()
    assert all(on_gpu(p.grad) and on_gpu(opt.state[p]["momentum_buffer"]) for p in model.parameters())
    assert sum(standin.launches.values()) > 0                                   # the CUDA kernels ran
    model.to(mt.device("cpu"))
    after = model.state_dict()
    assert all(isinstance(v, np.ndarray) for v in after.values())
    assert any(not np.array_equal(before[k], after[k]) for k in before)        # it trained, on the device
    model.to("cuda").to(np.float64)                                             # a dtype keeps the device
    assert all(on_gpu(p) and p.dtype == np.float64 for p in model.parameters())


def test_a_mixed_device_op_names_both_devices(standin):
    host = mt.Tensor(np.ones(3, np.float32))
    gpu = host.to("cuda")
    with pytest.raises(RuntimeError, match=r"Add: inputs on different devices: cpu \(NumPy\) and cuda:0"):
        host + gpu
    with pytest.raises(RuntimeError, match=r"Linear: inputs on different devices: cpu \(NumPy\) and cuda:0"):
        mt.nn.Linear(3, 2).to("cuda")(mt.Tensor(np.ones((1, 3), np.float32)))


def test_the_default_device_comes_back_however_a_block_ends():
    emu = mt.device("cuda-emulator")
    with pytest.raises(KeyError):
        with emu:                                               # a Device is a context manager too
            assert mt.get_default_device() is emu and mt.Tensor([1.0]).device == emu
            with mt.using_device("cpu"):
                assert mt.get_default_device() == mt.device("cpu")
            assert mt.get_default_device() is emu
            raise KeyError("inside")
    assert mt.get_default_device() == mt.device("cpu") and mt.Tensor([1.0]).device == mt.device("cpu")
    mt.set_default_device("cuda-emulator")
    try:
        assert Config.device is emu
    finally:
        mt.set_default_device("cpu")


def test_the_emulator_runs_host_arrays_through_the_cuda_kernels():
    x = np.ones(3, np.float32)
    assert device_module.kernels(x) is kernels.cpu
    with mt.using_device("cuda-emulator"):
        assert device_module.kernels(x) is kernels.cuda and device_module.device_of(x) == mt.device("cuda-emulator")


def test_using_config_restores_switches_and_refuses_unknown_ones():
    with pytest.raises(KeyError):
        with using_config("grad_enabled", False):
            assert not mt.is_grad_enabled() and Config.grad_enabled is False
            raise KeyError("inside")
    assert Config.grad_enabled is True
    with mt.no_grad():
        assert Config.grad_enabled is False
        with mt.enable_grad():
            assert mt.is_grad_enabled()
    assert mt.is_grad_enabled()
    with pytest.raises(AttributeError, match=r"using_config: no switch 'grad'; the switches are grad_enabled, device"):
        with using_config("grad", False):
            pass


def test_the_standin_is_as_strict_as_cupy(standin):
    dev = standin.asarray(np.arange(6.0).reshape(2, 3))
    assert not isinstance(dev, np.ndarray) and dev.device.id == 0
    with pytest.raises(TypeError, match=r"Implicit conversion to a NumPy array is not allowed"):
        np.asarray(dev)
    for mix in (lambda: dev + np.ones(3), lambda: np.ones(3) * dev, lambda: standin.matmul(dev, np.ones((3, 2))),
                lambda: standin.ascontiguousarray(np.ones(3))):
        with pytest.raises(TypeError, match=r"Unsupported type <class 'numpy.ndarray'>"):
            mix()
    with pytest.raises(ValueError, match=r"non-scalar numpy.ndarray cannot be used for fill"):
        dev[0] = np.ones(3)
    with pytest.raises(TypeError):
        np.savetxt(io.StringIO(), dev)                    # NumPy functions CuPy lacks do not dispatch
    assert isinstance(np.sum(dev), standin.ndarray) and float(np.sum(dev)) == 15.0   # those it has do
    assert np.array_equal(dev.get(), standin.asnumpy(dev)) and isinstance(dev.get(), np.ndarray)
    out = standin.empty((2, 2))
    assert standin.matmul(dev, dev.T, out=out) is out and np.array_equal(out.get(), dev.get() @ dev.get().T)
    dev[:] = np.zeros((2, 3))                             # the one host copy CuPy allows
    assert float(dev.sum()) == 0.0
