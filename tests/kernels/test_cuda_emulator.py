"""The host CUDA emulator itself, and whole training steps of the zoo on the "cuda-emulator" device.

* The emulator must catch what a GPU would get wrong: a block reduction missing a __syncthreads gives a
  wrong sum (in at least one of the two launch orders the kernel tests use), a thread returning before a
  barrier is an error; the cache survives two processes building the same source at once; the launch
  order is ``Config.launch_order``; a block reduction gives the same bits in both orders; arguments are
  checked against the kernel's C signature. (Every kernel against the reference: tests/kernels/test_tiers.py.)
* One training step (forward, loss, backward, SGD update) of every zoo model on "cuda-emulator" equals
  the same step on "cpu": float64 to 1e-10, float32 within the zoo tests' training bound (1e-4),
  and neither a Numba kernel nor a reference kernel runs meanwhile.
"""
import copy
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from support.numerics import rel_err

import minitorch_cnn as mt
import zoo
from minitorch_cnn.config import Config
from minitorch_cnn.device import cuda_module
from minitorch_cnn.kernels import cpu, cuda, reference
from minitorch_cnn.kernels.cuda import emulator, launch

pytestmark = pytest.mark.skipif(not emulator.available(), reason=str(emulator.unavailable_reason()))
WORST = {}


@pytest.fixture(scope="module", autouse=True)
def print_worst_errors():
    yield
    if WORST:
        print("\nworst relative difference of a training step under cuda-emulator vs numpy:")
        for (name, dtype), err in sorted(WORST.items()):
            numpy_s, emulated_s = TIMES.get((name, dtype), (0.0, 0.0))
            print(f"  {name:<14} {dtype:<8} {err:.2e}   step: numpy {numpy_s:6.2f} s, emulated {emulated_s:6.2f} s")

REDUCTION = r"""
#define THREADS 256
extern "C" __global__ void block_sums(const double* x, double* out, int n) {
    __shared__ double buf[THREADS];
    double v = 0.0;
    for (int i = blockIdx.x * THREADS + threadIdx.x; i < n; i += gridDim.x * THREADS) v += x[i];
    buf[threadIdx.x] = v;
    SYNC_AFTER_STORE
    for (int s = THREADS / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) buf[threadIdx.x] += buf[threadIdx.x + s];
        SYNC_IN_LOOP
    }
    if (threadIdx.x == 0) out[blockIdx.x] = buf[0];
}
"""


def run_reduction(store, loop, order):
    code = REDUCTION.replace("SYNC_AFTER_STORE", store).replace("SYNC_IN_LOOP", loop)
    kernel = emulator.RawModule(code=code).get_function("block_sums")
    x = np.arange(1.0, 3001.0)
    out = np.zeros(4)
    with emulator.launch_order(order):
        kernel((4,), (256,), (x, out, np.int32(x.size)))
    return out.sum(), x.sum()


def test_block_reduction_with_barriers_is_exact_in_both_orders():
    for order in ("forward", "reverse"):
        got, want = run_reduction("__syncthreads();", "__syncthreads();", order)
        assert got == want


@pytest.mark.parametrize("store, loop", [("", "__syncthreads();"), ("__syncthreads();", "")])
def test_missing_syncthreads_is_caught(store, loop):
    # The kernel tests run every kernel in both orders against the reference: this is what they would see.
    results = [run_reduction(store, loop, order) for order in ("forward", "reverse")]
    assert any(got != want for got, want in results), results


def test_return_before_a_barrier_is_an_error():
    code = r"""
    extern "C" __global__ void early(float* y) {
        __shared__ float buf[64];
        if (threadIdx.x >= 32) return;
        buf[threadIdx.x] = 1.0f;
        __syncthreads();
        y[threadIdx.x] = buf[31 - threadIdx.x];
    }"""
    kernel = emulator.RawModule(code=code).get_function("early")
    with pytest.raises(RuntimeError, match="__syncthreads not reached by every thread"):
        kernel((1,), (64,), (np.zeros(64, np.float32),))


def test_two_processes_building_one_new_source_at_once(tmp_path):
    code = f"// {time.time_ns()}\n" + REDUCTION.replace("SYNC_AFTER_STORE", "__syncthreads();").replace(
        "SYNC_IN_LOOP", "__syncthreads();")
    (tmp_path / "k.cu").write_text(code)
    script = ("import sys, numpy as np; from minitorch_cnn.kernels.cuda import emulator; "
              "k = emulator.RawModule(code=open(sys.argv[1]).read()).get_function('block_sums'); "
              "o = np.zeros(1); k((1,), (256,), (np.ones(1000), o, np.int32(1000))); assert o[0] == 1000")
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "k.cu")], env=env,
                              cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    built = list((tmp_path / "cache" / "minitorch_cnn" / "cuda-emulator").iterdir())
    assert [f.suffix for f in built] == [".so"]   # one library, no temporary left behind


def test_launch_order_is_a_config_switch():
    assert Config.launch_order == "forward"
    with emulator.launch_order("reverse"):
        assert Config.launch_order == "reverse"
    assert Config.launch_order == "forward"
    with pytest.raises(ValueError, match="expected 'forward' or 'reverse', got 'sideways'"):
        with emulator.launch_order("sideways"):
            pass
    with mt.using_config("launch_order", "backwards"), pytest.raises(ValueError, match="Config.launch_order"):
        cuda.clamp_forward(np.ones(3))


def test_large_reduction_in_both_orders_is_identical():
    # many values per channel (each thread of the block sums several before the tree), both orders:
    # the tree fixes the summation order, so forward and reverse must agree bit for bit.
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 21, 19)) * 5 + 2
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    with emulator.launch_order("forward"):
        fwd = cuda.batch_norm_forward(x, gamma, beta, 1e-5)
    with emulator.launch_order("reverse"):
        rev = cuda.batch_norm_forward(x, gamma, beta, 1e-5)
    for a, b in zip(fwd, rev):
        assert np.array_equal(a, b)
    assert abs(fwd[1] - x.mean(axis=(0, 2, 3))).max() < 1e-12


def test_wrappers_reject_integer_arrays_and_the_emulator_checks_argument_types():
    with pytest.raises(TypeError, match="float32 or float64"):
        cuda.clamp_forward(np.arange(5))
    kernel = cuda_module(launch.source("elementwise"), np.zeros(1)).get_function("clamp_forward_f32")
    x = np.ones(4, np.float32)
    y, mask = np.empty_like(x), np.empty(4, np.bool_)
    with pytest.raises(TypeError, match=r"argument 3 \(long long size\).*int64"):
        kernel((1,), (32,), (x, y, mask, 4, np.float32(6), np.int32(1)))          # a Python int
    with pytest.raises(TypeError, match=r"argument 0 .*float32"):
        kernel((1,), (32,), (x.astype(np.float64), y, mask, np.int64(4), np.float32(6), np.int32(1)))
    with pytest.raises(TypeError, match="expected 6 arguments"):
        kernel((1,), (32,), (x, y, mask))
    kernel((1,), (32,), (x * -1, y, mask, np.int64(4), np.float32(6), np.int32(1)))
    assert not y.any() and not mask.any()


# ---- whole training steps ---------------------------------------------------------------------------------

def sgd_step(model, x, y, seed):
    """Forward, loss, backward, one SGD update; returns the outputs, loss, gradients and updated parameters."""
    mt.manual_seed(seed)   # dropout masks: the same draws on both devices
    model.train()
    out = model(mt.Tensor(x))
    loss = zoo.googlenet_loss(out, y)
    loss.backward()
    params = list(model.parameters())
    grads = [p.grad.copy() for p in params]
    mt.optim.SGD(params, lr=0.1, momentum=0.9).step()
    outs = out if isinstance(out, tuple) else (out,)
    return [o.numpy() for o in outs] + [np.asarray(loss.item())] + grads + [p.data.copy() for p in params]


def forbid(monkeypatch, module):
    for name in cpu.__all__:
        def fail(*_args, _name=name, **_kwargs):
            raise AssertionError(f"{module.__name__}.{_name} ran under cuda-emulator")
        monkeypatch.setattr(module, name, fail)


# float64 for every model (the proof that the GPU code path computes the same step); float32 for LeNet-5
# (im2col, col2im, max-pool) and MobileNetV2 (depthwise, batch norm, ReLU6): between them every kernel
# runs in float32 in a whole network. The other float32 steps would repeat that at 10-40 s of CI time
# each; tests/kernels/test_cuda_kernels.py compares every kernel in float32 on its own.
CASES = [(name, np.float64) for name in sorted(zoo.MODELS)] + \
    [(name, np.float32) for name in ("lenet5", "mobilenet_v2")]
TIMES = {}


@pytest.mark.parametrize("name, dtype", CASES)
def test_training_step_under_cuda_emulator_equals_numpy(name, dtype, monkeypatch):
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((2, 3, 32, 32)).astype(dtype), rng.integers(0, 10, 2)
    mt.manual_seed(0)
    model = zoo.get_model(name, in_channels=3, num_classes=10).to(dtype)
    state = {k: v.copy() for k, v in model.state_dict().items()}
    twin = copy.deepcopy(model)   # building AlexNet / VGG16 twice costs more than the step
    start = time.perf_counter()
    want = sgd_step(model, x, y, seed=1)
    numpy_s = time.perf_counter() - start

    with mt.using_device("cuda-emulator"):
        twin.load_state_dict(state)
        before = sum(emulator.launches.values())
        with monkeypatch.context() as mp:
            forbid(mp, cpu)
            forbid(mp, reference)
            start = time.perf_counter()
            got = sgd_step(twin, x, y, seed=1)
            TIMES[name, np.dtype(dtype).name] = (numpy_s, time.perf_counter() - start)
        assert sum(emulator.launches.values()) > before
    assert all(isinstance(a, np.ndarray) for a in got)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    n_grads = len(list(model.parameters()))
    n_out = len(got) - 1 - 2 * n_grads
    # A gradient that is zero in exact arithmetic (the bias of a batch norm that another batch norm
    # follows) is rounding noise on both devices, and so is that parameter's SGD update: such arrays
    # are measured against 1e-4 of the largest gradient / parameter, as tests/zoo/test_zoo.py does.
    largest_grad = max(np.abs(g).max(initial=0.0) for g in want[n_out + 1:n_out + 1 + n_grads])
    largest_param = max(np.abs(p).max(initial=0.0) for p in want[n_out + 1 + n_grads:])
    checked = len(got) if dtype == np.float64 else n_out + 1   # float32: outputs and loss, as tests/zoo/test_zoo.py
    for i in range(checked):
        floor = 0.0 if i <= n_out else 1e-4 * (largest_grad if i <= n_out + n_grads else largest_param)
        err = rel_err(got[i], want[i], floor)
        WORST[name, np.dtype(dtype).name] = max(WORST.get((name, np.dtype(dtype).name), 0.0), err)
        assert err <= tol, (name, i, err)


@pytest.mark.parametrize("shape", [(3, 2, 17, 19), (2, 3, 7, 7), (5, 3), (1, 2, 300), (9, 2, 1, 1)])
def test_batch_norm_walks_each_channel_without_dividing_and_misses_no_value(shape):
    # FOR_CHANNEL in norm.cu steps (image, pixel) by adding: pixels per image above the block (323 > 256:
    # no whole image per step), a carry every step (49 pixels, 64 threads), one pixel per image (BatchNorm1d),
    # more threads than values; forward and backward against the reference, outputs NaN-filled first
    rng = np.random.default_rng(6)
    x, gy = rng.standard_normal(shape) * 2 + 1, rng.standard_normal(shape)
    gamma, beta = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    got, want = cuda.batch_norm_forward(x, gamma, beta, 1e-5), reference.batch_norm_forward(x, gamma, beta, 1e-5)
    for g, w in zip(got, want):
        assert not np.isnan(g).any() and rel_err(g, w) < 1e-12
    back = cuda.batch_norm_backward(gy, x, gamma, want[1], want[3])
    for g, w in zip(back, reference.batch_norm_backward(gy, x, gamma, want[1], want[3])):
        assert not np.isnan(g).any() and rel_err(g, w) < 1e-12
