"""Per-op benchmark: each layer's forward and forward+backward, ours beside PyTorch's, float32.

    python -m benchmarks.kernels [--quick] [--batch 64] [--out benchmarks/results] [--only conv]

Prints a table (ms, ratio to PyTorch, GFLOP/s and the share of this machine's
measured matmul throughput for convolutions), and writes kernels.json and
kernels.png. Runs without PyTorch too (then our numbers only).
"""
import argparse

import numpy as np

import minitorch_cnn as mt
from minitorch_cnn import functional as F
from minitorch_cnn.functional import conv

from .gpu import gpu_section, kernel_rows
from .harness import (
    ISA_CAPS,
    blas_line,
    format_table,
    machine_info,
    matmul_gflops,
    measure,
    optional_torch,
    ratio_chart,
    run_on_own_blas_kernel,
    save,
)


def _conv(c_in, c_out, hw, k=3, stride=1, groups=1):
    flops = lambda n: 2 * n * c_out * (hw // stride) ** 2 * (c_in // groups) * k * k  # noqa: E731
    name = f"{'dw' if groups > 1 else 'conv'}{k}x{k} {c_in}->{c_out} @{hw}" + (f" s{stride}" if stride > 1 else "")
    return name, (c_in, hw), lambda t, x, w: t.conv2d(x, w, None, stride, k // 2, 1, groups), \
        (c_out, c_in // groups, k, k), flops


def _im2col_only(op):
    """The same convolution with Winograd switched off, so conv_path picks im2col: both algorithms side by side."""
    name, spec, fn, extra, flops = op

    def run(t, x, w):
        if t is not F:
            return fn(t, x, w)
        saved, conv.WINOGRAD_MIN_CHANNELS = conv.WINOGRAD_MIN_CHANNELS, float("inf")
        try:
            return fn(t, x, w)
        finally:
            conv.WINOGRAD_MIN_CHANNELS = saved
    return name + " im2col", spec, run, extra, flops


OPS = [  # (name, (channels, size), function of (namespace, x, extra), extra-parameter shape, flops(batch))
    _conv(64, 64, 32), _conv(128, 128, 16), _conv(256, 256, 8), _conv(512, 512, 4),
    _im2col_only(_conv(64, 64, 32)), _im2col_only(_conv(128, 128, 16)), _im2col_only(_conv(256, 256, 8)),
    _im2col_only(_conv(512, 512, 4)), _conv(3, 64, 32),
    _conv(256, 256, 8, groups=256), _conv(128, 128, 16, groups=128), _conv(64, 64, 32, stride=2, groups=64),
    ("max_pool 2x2 64@32", (64, 32), lambda t, x, _: t.max_pool2d(x, 2), None, None),
    ("max_pool 3/2 p1 192@16", (192, 16), lambda t, x, _: t.max_pool2d(x, 3, 2, 1), None, None),
    ("avg_pool 2x2 64@32", (64, 32), lambda t, x, _: t.avg_pool2d(x, 2), None, None),
    ("batch_norm 64@32", (64, 32), lambda t, x, p: t.batch_norm(x, None, None, p[0], p[1], True), (64,), None),
    ("relu 64@32", (64, 32), lambda t, x, _: t.relu(x), None, None),
    ("relu6 64@32", (64, 32), lambda t, x, _: t.relu6(x), None, None),
    ("cat 4x64@16", (64, 16), lambda t, x, _: t.cat([x, x * 1.0, x * 1.0, x * 1.0], 1), None, None),
    ("linear 4096->4096", None, lambda t, x, w: t.linear(x, w), (4096, 4096), lambda n: 2 * n * 4096 * 4096),
]


class _TorchNS:
    """torch.nn.functional's names as the op table uses them."""
    def __init__(self, torch):
        self.torch, tf = torch, torch.nn.functional
        self.conv2d, self.max_pool2d, self.avg_pool2d, self.relu, self.relu6 = (
            tf.conv2d, tf.max_pool2d, tf.avg_pool2d, tf.relu, tf.relu6)
        self.linear, self.batch_norm, self.cat = tf.linear, tf.batch_norm, torch.cat


def _inputs(shape_spec, extra_shape, batch, rng):
    x = rng.standard_normal((batch, 4096) if shape_spec is None else (batch, shape_spec[0], shape_spec[1],
                                                                       shape_spec[1])).astype(np.float32)
    if extra_shape is None:
        return x, None
    if len(extra_shape) == 1:
        return x, [np.ones(extra_shape, np.float32), np.zeros(extra_shape, np.float32)]
    return x, (rng.standard_normal(extra_shape) * 0.05).astype(np.float32)


def _runners(fn, x, extra, wrap, backward, no_grad):
    """(forward-only, forward+backward) callables for one framework."""
    xs = wrap(x)
    ps = None if extra is None else ([wrap(e) for e in extra] if isinstance(extra, list) else wrap(extra))

    def fwd():
        with no_grad():
            fn(xs, ps)

    def fwd_bwd():
        backward(fn(xs, ps))
    return fwd, fwd_bwd


def bench_op(op, batch, repeats, torch):
    name, shape_spec, fn, extra_shape, flops = op
    x, extra = _inputs(shape_spec, extra_shape, batch, np.random.default_rng(0))
    ours = _runners(lambda a, p: fn(F, a, p), x, extra, lambda a: mt.Tensor(a, requires_grad=True),
                    lambda y: y.backward(np.ones_like(y.data)), mt.no_grad)
    row = {"op": name, "gflop": flops(batch) / 1e9 if flops else None}
    if name.startswith("conv"):   # the algorithm our side runs (the " im2col" rows switch Winograd off)
        row["algorithm"] = "im2col" if name.endswith(" im2col") else conv.conv_path(
            shape_spec[0], extra_shape, (1, 1), (1, 1), 1, out_hw=(shape_spec[1],) * 2)
    for kind, run in zip(("fwd", "fwd_bwd"), ours):
        row[f"ours_{kind}"] = measure(run, repeats)
    if torch is not None:
        theirs = _runners(lambda a, p: fn(_TorchNS(torch), a, p), x, extra,
                          lambda a: torch.tensor(a, requires_grad=True),
                          lambda y: y.backward(torch.ones_like(y)), torch.no_grad)
        for kind, run in zip(("fwd", "fwd_bwd"), theirs):
            row[f"torch_{kind}"] = measure(run, repeats)
    return row


def _ms(r):
    return r["median_s"] * 1e3


def table(rows, peak):
    headers = ["op", "fwd ms", "torch", "ratio", "fwd+bwd ms", "torch", "ratio", "fwd GFLOP/s", "% of matmul",
               "guard max"]
    out = []
    for r in rows:
        t_f, t_fb = r.get("torch_fwd"), r.get("torch_fwd_bwd")
        gf = r["gflop"] / r["ours_fwd"]["median_s"] if r["gflop"] else None
        guard = max(v["guard_others_max"] for k, v in r.items() if isinstance(v, dict))
        name = r["op"] + (" (winograd)" if r.get("algorithm") == "winograd" else "")
        out.append([name, f"{_ms(r['ours_fwd']):.2f}", f"{_ms(t_f):.2f}" if t_f else "-",
                    f"{_ms(r['ours_fwd']) / _ms(t_f):.2f}x" if t_f else "-",
                    f"{_ms(r['ours_fwd_bwd']):.2f}", f"{_ms(t_fb):.2f}" if t_fb else "-",
                    f"{_ms(r['ours_fwd_bwd']) / _ms(t_fb):.2f}x" if t_fb else "-",
                    f"{gf:.0f}" if gf else "-", f"{100 * gf / peak:.0f}%" if gf else "-", f"{guard:.0%}"])
    return format_table(headers, out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and batch 16: a minute or two")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default 64, 16 with --quick)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--only", default="", help="run only ops whose name contains this text")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--isa", choices=sorted(ISA_CAPS), help="cap every library at this vector ISA (the "
                        "AVX2 half of a comparison on an AVX-512 machine; harness.ISA_CAPS lists the switches)")
    args = parser.parse_args(argv)
    if run_on_own_blas_kernel("benchmarks.kernels", argv, isa=args.isa):
        return None
    batch = args.batch or (16 if args.quick else 64)
    repeats = args.repeats or (3 if args.quick else 7)
    torch = optional_torch()
    info = machine_info()
    info["matmul_gflops"] = round(matmul_gflops(1024 if args.quick else 2048), 1)
    print(f"{info.get('cpu', '')} x{info['cpus']}, NumPy float32 matmul {info['matmul_gflops']} GFLOP/s; "
          f"batch {batch}; PyTorch {'absent: our numbers only' if torch is None else info['torch']}")
    print(f"{info['vector_isa']} ({info['llvm_cpu']}); BLAS: {blas_line(info['blas'])}", flush=True)
    rows = []
    for op in OPS:
        if args.only in op[0]:
            rows.append(bench_op(op, batch, repeats, torch))
            print(f"  measured {op[0]}", flush=True)
    print(table(rows, info["matmul_gflops"]))
    ops = [op for op in OPS if args.only in op[0]]
    gpu_rows = gpu_section("GPU", lambda: kernel_rows(ops, batch, repeats, _inputs, _runners, _TorchNS),
                           ["op", "fwd ms", "fwd+bwd ms", "torch cuda fwd", "torch cuda fwd+bwd"])
    results = {"machine": info, "batch": batch, "rows": rows, "gpu_rows": gpu_rows}
    chart = lambda plt, res: ratio_chart(  # noqa: E731
        plt, [r["op"] for r in rows], [_ms(r["ours_fwd_bwd"]) for r in rows],
        [_ms(r["torch_fwd_bwd"]) if "torch_fwd_bwd" in r else None for r in rows],
        f"forward+backward, batch {batch}")
    for path in save(results, args.out, "kernels", chart):
        print(f"wrote {path}")
    return results


if __name__ == "__main__":
    main()
