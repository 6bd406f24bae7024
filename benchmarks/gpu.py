"""GPU rows for benchmarks.kernels and benchmarks.models: ours on CuPy beside PyTorch on CUDA.

Every timing is bracketed by a device synchronisation (a kernel launch returns before the kernel
ends), after two warm-up calls (CuPy compiles each RawModule on first use). On a machine without a
GPU, ``gpu_section`` prints one line saying so and returns no rows.

    python -m benchmarks.gpu                 the training step of every zoo model at batch 128 beside PyTorch
                                             (one line without a GPU)
    python -m benchmarks.gpu --model [--net resnet18] [--batch 128]
                                             no GPU needed: the roofline cost model (benchmarks/gpu_model.py),
                                             each kernel's bytes and FLOPs and an H100's / A100's predicted time
"""
import argparse
import statistics
import sys
import time

import numpy as np

import minitorch_cnn as mt
from minitorch_cnn.device import gpu_available

from .harness import format_table, optional_torch


def no_gpu_reason():
    return None if gpu_available() else "no GPU: CuPy is not installed or sees no CUDA device"


def _torch_cuda():
    torch = optional_torch()
    return torch if torch is not None and torch.cuda.is_available() else None


def device_time(fn, sync, repeats, warmup=2):
    """Median seconds of ``fn()`` with the device synchronised before and after each call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def kernel_rows(ops, batch, repeats, inputs, runners, torch_ns):
    """For each op of benchmarks.kernels: forward and forward+backward ms, ours (CuPy) and torch (CUDA)."""
    import cupy

    import minitorch_cnn as mt
    from minitorch_cnn import functional as F
    sync = cupy.cuda.Device().synchronize
    torch = _torch_cuda()
    rows = []
    for name, shape_spec, fn, extra_shape, _ in ops:
        x, extra = inputs(shape_spec, extra_shape, batch, np.random.default_rng(0))
        row = [name]
        ours = runners(lambda a, p, fn=fn: fn(F, a, p), x, extra, lambda a: mt.Tensor(cupy.asarray(a),
                       requires_grad=True), lambda y: y.backward(cupy.ones_like(y.data)), mt.no_grad)
        row += [device_time(run, sync, repeats) * 1e3 for run in ours]
        if torch is not None:
            theirs = runners(lambda a, p, fn=fn: fn(torch_ns(torch), a, p), x, extra,
                             lambda a: torch.tensor(a, device="cuda", requires_grad=True),
                             lambda y: y.backward(torch.ones_like(y)), torch.no_grad)
            row += [device_time(run, torch.cuda.synchronize, repeats) * 1e3 for run in theirs]
        rows.append(row)
    return rows


def gpu_section(title, measure_rows, headers):
    """Print the GPU table, or one line saying why there is none. Returns the rows (or [])."""
    reason = no_gpu_reason()
    if reason:
        print(f"{title}: {reason}; GPU rows skipped")
        return []
    with mt.using_device("cuda"):
        rows = measure_rows()
    print(f"{title} (device synchronised around every timing):")
    print(format_table(headers, [[r[0]] + [f"{v:.2f}" for v in r[1:]] for r in rows]))
    return rows


def model_rows(names, batch, repeats):
    """Training-step ms per model: ours on CuPy, torch on CUDA."""
    import cupy

    import minitorch_cnn as mt
    import zoo
    sync = cupy.cuda.Device().synchronize
    torch = _torch_cuda()
    rows = []
    for name in names:
        model = zoo.get_model(name).to("cuda")
        loss_fn = zoo.MODELS[name].loss(zoo.MODELS[name].recipe)   # GoogLeNet: main + 0.3 x auxiliaries
        opt = mt.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = mt.Tensor(cupy.asarray(np.random.default_rng(0).standard_normal((batch, 3, 32, 32)), np.float32))
        y = np.random.default_rng(1).integers(0, 10, batch)

        def step(model=model, opt=opt, x=x, y=y, loss_fn=loss_fn):
            opt.zero_grad()
            out = model.train()(x)
            loss_fn(out, y).backward()
            opt.step()
        row = [name, device_time(step, sync, repeats) * 1e3]
        if torch is not None:
            sys.path.insert(0, "tests")
            from support.torch_twins import TWINS
            twin = TWINS[name]().cuda()
            t_opt = torch.optim.SGD(twin.parameters(), lr=0.01, momentum=0.9)
            tx, ty = torch.randn(batch, 3, 32, 32, device="cuda"), torch.randint(0, 10, (batch,), device="cuda")

            def t_step(twin=twin, t_opt=t_opt, tx=tx, ty=ty):
                t_opt.zero_grad()
                out = twin.train()(tx)
                torch.nn.functional.cross_entropy(out[0] if isinstance(out, tuple) else out, ty).backward()
                t_opt.step()
            row.append(device_time(t_step, torch.cuda.synchronize, repeats) * 1e3)
        rows.append(row)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="store_true", help="print the roofline cost model (no GPU needed)")
    parser.add_argument("--net", default="resnet18", help="the zoo model of the cost model (default resnet18)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if args.model:
        from .gpu_model import report
        print(report(args.net, args.batch))
        return
    import zoo
    gpu_section(f"Training step, batch {args.batch} (ms: ours on CuPy, PyTorch on CUDA)",
                lambda: model_rows(list(zoo.MODELS), args.batch, args.repeats), ["model", "ours", "torch"])


if __name__ == "__main__":
    main()
