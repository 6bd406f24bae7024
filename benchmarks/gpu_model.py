"""A roofline cost model of one training step on a GPU, computed without one (``python -m benchmarks.gpu --model``).

The model is traced once on the CPU (a forward and the loss at batch 2, its graph walked Function by Function);
each Function is then charged the kernels the GPU path launches for it (kernels/cuda and CuPy, as of this
commit), with their bytes moved and FLOPs scaled to ``batch`` images, and each kernel takes
``max(bytes / bandwidth, flops / peak)`` on the named device. This is a prediction: a lower bound that assumes
every kernel reaches the device's peak memory bandwidth or arithmetic rate, no launch gaps, caches that
serve im2col's overlapping reads; float32 everywhere (4 bytes per value).

What each Function costs (E: output elements, s = 4 bytes):
  Conv (groups 1)   forward: im2col (read x, write K x P columns), GEMM (F,K)@(K,P), the (F,N,HW)->(N,F,HW) copy;
                    backward: gy's transpose copy, dW GEMM, and when x needs a gradient the dcols GEMM and col2im.
                    The columns are kept for backward (workspace.keep: a GPU's budget holds them), not rebuilt.
  BatchNorm         forward one kernel, 3 reads + 1 write of x (two statistics passes, then y);
                    backward one kernel, 4 reads + 1 write.
  ReLU              forward y and a 1-byte mask; backward reads gy and y, writes gx.
  Add               forward 2 reads + 1 write; backward autograd sums the two branches' gradients (same cost).
  Conv 1x1, depthwise  the GEMMs on x itself; the depthwise kernels (one pass each way).
  Linear            forward GEMM; backward two GEMMs.  Pooling: one pass each way (reads x, writes y).
  Optimizer         SGD with momentum: the leaf gradients' copies (autograd), their concatenation, one fused
                    kernel reading p, g, b and writing p, b (each modelled as one kernel; autograd's copy is
                    one per parameter in fact).
Not modelled: launch gaps (tests/gpu_standin/test_step_budget.py counts the launches: a few microseconds of
host dispatch each, hidden only while the GPU has queued work), the loss, the labels' copy.
"""
import math

import numpy as np

S = 4   # bytes per float32 value

# Peak rates, dense (no sparsity), from the vendor's datasheets:
#   H100 SXM5: NVIDIA H100 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/h100): 3.35 TB/s HBM3,
#              67 TFLOPS FP32, 494.7 TFLOPS TF32 Tensor Core (989.4 "with sparsity", halved here).
#   A100 SXM4 80GB: NVIDIA A100 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/a100): 2,039 GB/s HBM2e,
#              19.5 TFLOPS FP32, 156 TFLOPS TF32 Tensor Core (312 "with sparsity").
DEVICES = {
    "H100 SXM": {"bandwidth": 3.35e12, "fp32": 67e12, "tf32": 494.7e12},
    "A100 SXM 80GB": {"bandwidth": 2.039e12, "fp32": 19.5e12, "tf32": 156e12},
}
# The estimate for PyTorch + cuDNN, ResNet-18 (32x32 inputs), batch 128, fp32, on an H100: an estimate
# written in issue 19, not a measurement.
PYTORCH_ESTIMATE_MS = {"resnet18": (8, 15)}


def kernel(name, bytes_moved, flops=0, gemm=False):
    return {"name": name, "bytes": float(bytes_moved), "flops": float(flops), "gemm": gemm}


def _conv(fn, x, y, scale):
    n_x, n_y = math.prod(x) * scale, math.prod(y) * scale
    w = fn.inputs[1].shape
    f, k = w[0], math.prod(w[1:])
    p = n_y // f                                    # N * Ho * Wo
    gemm = 2.0 * f * k * p
    out = [kernel("im2col", (n_x + k * p) * S), kernel("conv GEMM", (f * k + k * p + f * p) * S, gemm, True),
           kernel("conv output copy", 2 * n_y * S),
           kernel("conv gy copy", 2 * n_y * S), kernel("conv dW GEMM", (f * p + k * p + f * k) * S, gemm, True)]
    if fn.needs_input_grad[0]:
        out += [kernel("conv dcols GEMM", (f * k + f * p + k * p) * S, gemm, True),
                kernel("col2im", (k * p + n_x) * S)]
    return out


def _pointwise(fn, x, y, scale):
    """1x1 stride-1 convolution: the GEMMs of _conv on x itself, no im2col or col2im."""
    n_x, n_y = math.prod(x) * scale, math.prod(y) * scale
    f, k = fn.inputs[1].shape[0], fn.inputs[1].shape[1]
    p = n_y // f
    gemm = 2.0 * f * k * p
    return [kernel("conv GEMM", (f * k + n_x + n_y) * S, gemm, True), kernel("conv output copy", 2 * n_y * S),
            kernel("conv gy copy", 2 * n_y * S), kernel("conv dW GEMM", (n_y + n_x + f * k) * S, gemm, True),
            kernel("conv dx GEMM", (f * k + n_y + n_x) * S, gemm, True)]


def _depthwise(fn, x, y, scale):
    n_x, n_y = math.prod(x) * scale, math.prod(y) * scale
    taps = math.prod(fn.inputs[1].shape[2:])
    return [kernel("depthwise forward", (n_x + n_y) * S, 2.0 * n_y * taps),
            kernel("depthwise backward", (2 * n_x + n_y) * S, 4.0 * n_y * taps)]


def _linear(fn, x, y, scale):
    n, i, o = x[0] * scale, x[1], y[1]
    flops = 2.0 * n * i * o
    return [kernel("linear GEMM", (n * i + i * o + n * o) * S, flops, True),
            kernel("linear dW GEMM", (n * o + n * i + i * o) * S, flops, True),
            kernel("linear dx GEMM", (n * o + i * o + n * i) * S, flops, True)]


def _elementwise(name, fwd_values, bwd_values, extra_bytes=0):
    def rule(fn, x, y, scale):
        e = math.prod(y) * scale
        return [kernel(f"{name} forward", fwd_values * e * S + extra_bytes * e),
                kernel(f"{name} backward", bwd_values * e * S)]
    return rule


def _pool(fn, x, y, scale):
    e_in, e_out = math.prod(x) * scale, math.prod(y) * scale
    return [kernel("pool forward", (e_in + e_out) * S, e_in), kernel("pool backward", (e_in + e_out) * S, e_in)]


RULES = {"Conv2d": _conv, "WinogradConv2d": _conv,   # the GPU has no Winograd: im2col for both
         "DirectConv2d": _conv,                          # nor the direct kernel: im2col too
         "PointwiseConv2d": _pointwise, "DepthwiseConv2d": _depthwise,
         "Linear": _linear, "BatchNormTrain": _elementwise("batch norm", 4, 5),
         "ReLU": _elementwise("relu", 2, 3, extra_bytes=1), "ReLU6": _elementwise("relu", 2, 3, extra_bytes=1),
         "Add": _elementwise("add", 3, 3), "Cat": _elementwise("concatenate", 2, 0),
         "Dropout": _elementwise("dropout", 6, 3),   # draw, compare and scale, multiply; backward one multiply
         "BlockMeanPool2d": _pool, "AdaptiveAvgPool2d": _pool, "AvgPool2d": _pool, "MaxPool2d": _pool}
FREE = {"Reshape", "CrossEntropy"}   # a view; a (N, 10) loss: negligible


def step_kernels(model_name, batch=128, input_shape=(3, 32, 32)):
    """The kernels of one training step of zoo model ``model_name`` at ``batch`` images, as ``kernel`` dicts,
    traced on the CPU. Raises for a Function this model does not know (so no layer is silently free)."""
    import minitorch_cnn as mt
    import zoo
    from minitorch_cnn.autograd import _topological_order
    traced = 2
    model = zoo.get_model(model_name, in_channels=input_shape[0]).train()
    out = model(mt.Tensor(np.random.default_rng(0).standard_normal((traced, *input_shape)).astype(np.float32)))
    out = out[0] if isinstance(out, tuple) else out
    loss = mt.functional.cross_entropy(out, np.zeros(traced, np.int64))
    kernels = []
    for fn in _topological_order(loss):
        name = type(fn).__name__
        if name in FREE:
            continue
        if name not in RULES:
            raise NotImplementedError(f"benchmarks.gpu_model: no cost rule for {name} (in {model_name})")
        x, y = fn.inputs[0].shape, fn.output_meta[0][0]
        kernels += RULES[name](fn, x, y, batch // traced)
    params = sum(p.data.size for p in model.parameters())
    kernels += [kernel("leaf gradient copies", 2 * params * S), kernel("gradient concatenation", 2 * params * S),
                kernel("fused SGD step", 5 * params * S, 4 * params)]
    return kernels


def roofline(kernels, device, tf32=False):
    """Seconds per kernel on ``device`` (a DEVICES key): max(bytes / bandwidth, flops / peak)."""
    spec = DEVICES[device]
    return [max(k["bytes"] / spec["bandwidth"],
                k["flops"] / (spec["tf32"] if tf32 and k["gemm"] else spec["fp32"])) for k in kernels]


def report(model_name="resnet18", batch=128):
    """The printed cost model: totals per kernel kind, then the predicted step per device, fp32 and TF32."""
    kernels = step_kernels(model_name, batch)
    lines = [f"Cost model (a prediction, not a measurement): {model_name}, batch {batch}, 3x32x32, float32; "
             f"{len(kernels)} kernels modelled",
             f"{'kernel':<24}{'count':>6}{'GB moved':>10}{'GFLOP':>10}" +
             "".join(f"{d + ' ms':>17}" for d in DEVICES)]
    times = {d: roofline(kernels, d) for d in DEVICES}
    for name in dict.fromkeys(k["name"] for k in kernels):
        idx = [i for i, k in enumerate(kernels) if k["name"] == name]
        lines.append(f"{name:<24}{len(idx):>6}{sum(kernels[i]['bytes'] for i in idx) / 1e9:>10.3f}"
                     f"{sum(kernels[i]['flops'] for i in idx) / 1e9:>10.1f}" +
                     "".join(f"{sum(times[d][i] for i in idx) * 1e3:>17.3f}" for d in DEVICES))
    total_bytes, total_flops = sum(k["bytes"] for k in kernels), sum(k["flops"] for k in kernels)
    lines.append(f"{'total':<24}{len(kernels):>6}{total_bytes / 1e9:>10.3f}{total_flops / 1e9:>10.1f}" +
                 "".join(f"{sum(times[d]) * 1e3:>17.3f}" for d in DEVICES))
    for d, spec in DEVICES.items():
        tf32 = sum(roofline(kernels, d, tf32=True)) * 1e3
        lines.append(f"{d}: {spec['bandwidth'] / 1e12:.2f} TB/s, {spec['fp32'] / 1e12:.1f} TFLOPS FP32, "
                     f"{spec['tf32'] / 1e12:.1f} TFLOPS TF32 (datasheet): predicted step {sum(times[d]) * 1e3:.2f} ms "
                     f"fp32, {tf32:.2f} ms with TF32 GEMMs")
    if model_name in PYTORCH_ESTIMATE_MS:
        low, high = PYTORCH_ESTIMATE_MS[model_name]
        lines.append(f"PyTorch + cuDNN on an H100, fp32: {low}-{high} ms per step (issue 19's estimate, not measured)")
    return "\n".join(lines)
