"""Run the kernel cases (support.cuda_cases) on a sanitized build of the CUDA emulator, optionally with a bug
planted in the kernel source. Run by tests/kernels/test_sanitizers.py in a subprocess, because the sanitizer's
runtime must be preloaded into Python before the library is loaded::

    MINITORCH_EMULATOR_SANITIZE=address,undefined LD_PRELOAD=$(g++ -print-file-name=libasan.so) \\
        ASAN_OPTIONS=detect_leaks=0 python tests/kernels/sanitized_cases.py [--plant im2col_read_past_end]
    MINITORCH_EMULATOR_SANITIZE=thread LD_PRELOAD=$(g++ -print-file-name=libtsan.so) \\
        TSAN_OPTIONS=halt_on_error=1 python tests/kernels/sanitized_cases.py --families batch_norm

A sanitizer that finds something stops the process with its report (non-zero exit); otherwise the last line
is "ok: N cases". A few fixed configurations per family: each crosses the edges a kernel can get wrong (the
last element of the input read, padding, strides, several blocks, a block smaller than its warp).
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[0:0] = [str(ROOT), str(ROOT / "tests")]

import numpy as np  # noqa: E402
from support.cuda_cases import CASES, TOLERANCE, run_case  # noqa: E402

import minitorch_cnn as mt  # noqa: E402
from minitorch_cnn.kernels.cuda import launch  # noqa: E402

CONV = [dict(shape=(2, 3, 5, 6), kernel=(3, 3), stride=(1, 1), padding=(0, 0), dilation=(1, 1), out_hw=(3, 4),
             m=1),
        dict(shape=(1, 2, 7, 7), kernel=(3, 2), stride=(2, 1), padding=(1, 1), dilation=(2, 1), out_hw=(3, 8),
             m=2)]
POOL = [dict(shape=(2, 3, 6, 6), kernel=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1), out_hw=(3, 3)),
        dict(shape=(1, 2, 5, 5), kernel=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1), out_hw=(3, 3))]
BATCH_NORM = [dict(shape=(2, 3, 4, 4)), dict(shape=(3, 2, 5))]
ELEMENTWISE = [dict(shape=(3, 7), high=None), dict(shape=(2, 3, 5), high=6.0)]
# the GPU-only kernels (kernels/cuda GPU_ONLY), checked against NumPy below: 1000 values = 4 blocks of 256 threads
GPU_ONLY = [dict(size=1000, momentum=0.9, nesterov=True, amsgrad=True, shape=(3, 4, 5, 7)),
            dict(size=7, momentum=0.0, nesterov=False, amsgrad=False, shape=(2, 3, 5))]
CONFIGS = {"conv": CONV, "pool": POOL, "batch_norm": BATCH_NORM, "elementwise": ELEMENTWISE, "gpu_only": GPU_ONLY}

# ---- the planted bugs: (file, text, replacement) ----------------------------------------------------------------
_READ = "? plane[(long long)iy * w + ix] : (T)0;"
_SUM = "static __device__ double block_sum(double v, double* buf) {"
PLANTS = {
    # im2col reads the element after the one it should: past the end of x at the last pixel
    "im2col_read_past_end": ("conv", _READ, _READ.replace("+ ix]", "+ ix + 1]")),
    # block_sum as every thread adding into one shared accumulator without atomics (right on the fiber
    # emulator, which runs one thread at a time; a race on a GPU). The real block_sum follows, unused.
    "shared_acc_race": ("common.cuh", _SUM, _SUM + """
    if (threadIdx.x == 0) buf[0] = 0.0;
    __syncthreads();
    buf[0] += v;
    __syncthreads();
    double total = buf[0];
    __syncthreads();
    return total;
}
static __device__ double block_sum_unused(double v, double* buf) {"""),
    # block_sum without its first barrier: the group sums read buf before the other threads have written it
    "block_sum_no_sync": ("common.cuh", "    buf[threadIdx.x] = v;\n    __syncthreads();\n",
                          "    buf[threadIdx.x] = v;\n"),
}


def plant(name):
    """Replace launch.source so the planted text is what every kernel file compiles."""
    where, old, new = PLANTS[name]
    real = launch.source

    def planted(file):
        text = real(file)
        if where == "common.cuh" or where == file:
            if old not in text:
                raise SystemExit(f"plant {name}: the text to replace is no longer in {where}: update PLANTS")
            text = text.replace(old, new, 1)
        return text
    launch.source = planted


def gpu_only_errors(kernels, cfg, dtype):
    """The fused optimizer steps and the tracking batch norm forward against NumPy: {output: relative error}."""
    from minitorch_cnn.functional.norm import update_running
    from minitorch_cnn.kernels import reference
    rng = np.random.default_rng(5)
    p, g, b, m = (rng.standard_normal(cfg["size"]).astype(dtype) for _ in range(4))
    v, vmax = (rng.random(cfg["size"]).astype(dtype) for _ in range(2))
    mu, lr, wd = dtype(cfg["momentum"]), dtype(0.1), dtype(0.01)
    got = [a.copy() for a in (p, b)]
    kernels.sgd_step(*got[:1], g, got[1], 0.1, cfg["momentum"], 0.0, 0.01, cfg["nesterov"], False)
    d = g + wd * p
    want_b = b * mu + dtype(1.0) * d if mu else b
    d = (d + mu * want_b if cfg["nesterov"] else want_b) if mu else d
    errs = {"sgd param": err(got[0], p - lr * d), "sgd buffer": err(got[1], want_b)}
    got = [a.copy() for a in (p, m, v, vmax)]
    kernels.adam_step(got[0], g, got[1], got[2], got[3] if cfg["amsgrad"] else None, (0.9, 0.999), 1e-8, 0.0,
                      0.01, 0.5)
    want_m, want_v = m + dtype(0.1) * (g - m), v * dtype(0.999) + (dtype(0.001) * g) * g
    used = np.maximum(vmax, want_v) if cfg["amsgrad"] else want_v
    errs.update({"adam param": err(got[0], p - (dtype(0.01) * want_m) / (np.sqrt(used) / dtype(0.5) + dtype(1e-8))),
                 "adam m": err(got[1], want_m), "adam v": err(got[2], want_v)})
    x = rng.standard_normal(cfg["shape"]).astype(dtype)
    c = x.shape[1]
    gamma, beta, running = np.ones(c, dtype), np.zeros(c, dtype), [np.zeros(c, dtype), np.ones(c, dtype)]
    counter = np.zeros((), np.int64)
    y = kernels.batch_norm_forward_tracking(x, gamma, beta, 1e-5, *running, 0.1, counter)[0]
    want = reference.batch_norm_forward(x, gamma, beta, 1e-5)
    want_running = [np.zeros(c, dtype), np.ones(c, dtype)]
    update_running(*want_running, 0.1, want[1], want[2], x.size // c)
    assert int(counter) == 1, counter
    errs.update({"bn y": err(y, want[0]), "bn running_mean": err(running[0], want_running[0]),
                 "bn running_var": err(running[1], want_running[1])})
    z, target = x.reshape(x.shape[0], -1), rng.integers(0, x[0].size, x.shape[0])
    loss, grad = kernels.cross_entropy_forward(z, target, 0.1, 0.5)
    shifted = z - z.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    q = np.full(z.shape, 0.1 / z.shape[1], dtype)
    q[np.arange(len(target)), target] += dtype(0.9)
    errs.update({"cross entropy loss": err(loss, -(q * log_p).sum(axis=1)),
                 "cross entropy grad": err(grad, dtype(0.5) * (np.exp(log_p) - q))})
    return errs


def err(got, want):
    assert not np.isnan(got).any(), "a NaN the reference does not have"
    return float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1.0)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--plant", choices=sorted(PLANTS))
    parser.add_argument("--families", default=",".join(CONFIGS))
    parser.add_argument("--dtypes", default="float32,float64")
    args = parser.parse_args()
    if args.plant:
        plant(args.plant)
    device, count = mt.device("cuda-emulator"), 0
    with mt.using_device(device):
        for family in args.families.split(","):
            for cfg in CONFIGS[family]:
                for dtype in (np.dtype(d).type for d in args.dtypes.split(",")):
                    if family == "gpu_only":
                        for output, error in gpu_only_errors(device.kernels, cfg, dtype).items():
                            assert error <= TOLERANCE[dtype], (output, error, cfg)
                        count += 1
                    for case in (c for c in CASES if c.family == family):
                        for output, err in run_case(case, device.kernels, dict(cfg, dtype=dtype), device.send,
                                                    np.asarray).items():
                            assert err <= TOLERANCE[dtype], (case.name, output, err, cfg)
                        count += 1
    print(f"ok: {count} cases")


if __name__ == "__main__":
    main()
