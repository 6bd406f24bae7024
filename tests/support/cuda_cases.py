"""The kernel case table: every kernel that more than one tier implements, how to build its inputs and how
to compare its outputs with kernels/reference. tests/kernels/test_tiers.py runs the table on every tier
(Numba, the CUDA kernels on the host emulator, the CUDA kernels on a GPU through CuPy).

A ``Case`` names the kernel (the same function name in every kernel module), the shape family whose
hypothesis strategy (support.strategies.FAMILIES) draws its configurations, a builder that turns a
configuration into host inputs, and the names of the outputs. ``exact`` outputs (argmax, masks, pure
selections) must equal the reference's; the others are held to ``TOLERANCE`` of their dtype as
``support.numerics.rel_err``, with ``floors`` for outputs whose reference may cancel to nearly zero.
A kernel's inputs are built with the reference (a backward gets the reference forward's argmax or
statistics), so every tier computes from exactly the same arrays.
"""
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from minitorch_cnn.functional.checks import output_size
from minitorch_cnn.kernels import reference
from support.numerics import rel_err
from support.strategies import windowed  # noqa: F401  (tests/kernels/test_cuda_gpu.py imports it from here)

TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}


@dataclass(frozen=True)
class Case:
    name: str                      # how reports name it: the kernel, and the variant when there are several
    kernel: str                    # the function, in kernels.reference, kernels.cpu and kernels.cuda
    family: str                    # support.strategies.FAMILIES key: "conv", "pool", "batch_norm", "elementwise"
    inputs: Callable               # (cfg, rng) -> (args, kwargs), host arrays and settings
    outputs: tuple                 # one name per returned array
    exact: tuple = ()              # outputs that must be equal, not close
    floors: Callable | None = field(default=None)   # (args, want) -> {output: floor of the error's scale}


def _randn(cfg, rng, shape=None, scale=1.0, shift=0.0):
    return (rng.standard_normal(cfg["shape"] if shape is None else shape) * scale + shift).astype(cfg["dtype"])


# ---- convolution: im2col / col2im and depthwise -----------------------------------------------------

def _window(cfg):
    return cfg["stride"], cfg["padding"], cfg["dilation"]


def _depthwise(cfg, rng):
    """x, the (C*m, 1, kh, kw) filters, and a gradient of the output's shape."""
    n, c = cfg["shape"][:2]
    x = _randn(cfg, rng)
    w = _randn(cfg, rng, (c * cfg["m"], 1, *cfg["kernel"]))
    return x, w, _randn(cfg, rng, (n, c * cfg["m"], *cfg["out_hw"]))


def im2col_inputs(cfg, rng):
    return (_randn(cfg, rng), cfg["kernel"], *_window(cfg), cfg["out_hw"]), {}


def col2im_inputs(cfg, rng):
    (n, c, _, _), (kh, kw), (ho, wo) = cfg["shape"], cfg["kernel"], cfg["out_hw"]
    cols = _randn(cfg, rng, (c * kh * kw, n * ho * wo))
    return (cols, cfg["shape"], cfg["kernel"], *_window(cfg), cfg["out_hw"]), {}


def depthwise_forward_inputs(cfg, rng):
    x, w, _ = _depthwise(cfg, rng)
    bias = _randn(cfg, rng, (w.shape[0],)) if rng.random() < 0.5 else None   # folded batch norm's, or none
    return (x, w, *_window(cfg), cfg["out_hw"], bias), {}


def depthwise_backward_inputs(cfg, rng, need_dx=True):
    x, w, gy = _depthwise(cfg, rng)
    return (gy, x, w, *_window(cfg)), {"need_dx": need_dx}


# ---- pooling: max (ties planted: the first maximum must win) and average --------------------------------

def _pool(cfg):
    return cfg["kernel"], cfg["stride"], cfg["padding"]


def _tied(cfg, rng):
    x = _randn(cfg, rng)
    x[..., ::2] = x[..., :1]
    return x


def _gradient_and_divisor(cfg, rng):
    return _randn(cfg, rng, cfg["shape"][:2] + cfg["out_hw"]), \
        rng.integers(1, 10, size=cfg["out_hw"]).astype(cfg["dtype"])


def max_pool_forward_inputs(cfg, rng):
    return (_tied(cfg, rng), *_pool(cfg), cfg["out_hw"]), {}


def max_pool_backward_inputs(cfg, rng):
    x = _tied(cfg, rng)
    _, argmax = reference.max_pool_forward(x, *_pool(cfg), cfg["out_hw"])
    gy, _ = _gradient_and_divisor(cfg, rng)
    return (gy, argmax, x.shape, *_pool(cfg)), {}


def avg_pool_forward_inputs(cfg, rng):
    x = _randn(cfg, rng)
    _, divisor = _gradient_and_divisor(cfg, rng)
    return (x, *_pool(cfg), cfg["out_hw"], divisor), {}


def avg_pool_backward_inputs(cfg, rng):
    gy, divisor = _gradient_and_divisor(cfg, rng)
    return (gy, cfg["shape"], *_pool(cfg), divisor), {}


# ---- batch norm (training mode) ---------------------------------------------------------------------

def _channels(cfg, rng):
    """x away from zero mean, gamma and beta."""
    c = cfg["shape"][1]
    return _randn(cfg, rng, scale=3.0, shift=1.0), _randn(cfg, rng, (c,)), _randn(cfg, rng, (c,))


def batch_norm_forward_inputs(cfg, rng):
    return (*_channels(cfg, rng), 1e-5), {}


def batch_norm_backward_inputs(cfg, rng):
    x, gamma, beta = _channels(cfg, rng)
    _, mean, _, inv_std = reference.batch_norm_forward(x, gamma, beta, 1e-5)
    return (_randn(cfg, rng), x, gamma, mean, inv_std), {}


# batch norm with the clamp of the ReLU (high None) or ReLU6 (high 6) after it, in the same kernels: the forward
# clamps y as it writes it, the backward masks gy where 0 < z < high (z: the reference forward's clamped output)

def batch_norm_relu_forward_inputs(cfg, rng, high):
    return (*_channels(cfg, rng), 1e-5), {"relu": True, "high": high}


def batch_norm_relu_backward_inputs(cfg, rng, high):
    x, gamma, beta = _channels(cfg, rng)
    gamma *= 3.0    # y spread over [-3, 3] sd and beyond: some of it above ReLU6's bound
    z, mean, _, inv_std = reference.batch_norm_forward(x, gamma, beta, 1e-5, relu=True, high=high)
    return (_randn(cfg, rng), x, gamma, mean, inv_std), {"z": z, "high": high}


def batch_norm_backward_floors(args, want):
    """dx is a difference of terms of size |gy * gamma * inv_std| that cancel (exactly, with two values per
    channel): its error is measured against that size, not against a result that may be rounding noise.
    dgamma and dbeta are sums whose terms may cancel: the reference's own float32 rounding is then ~1e-7
    of the sum of |terms|, which is the size their errors are measured against."""
    gy, x, gamma, mean, inv_std = args   # with a clamp (z), gy is masked first: these sizes bound the masked ones
    per_channel = lambda v: v.reshape((1, -1) + (1,) * (x.ndim - 2))  # noqa: E731
    others = tuple(a for a in range(x.ndim) if a != 1)
    x_hat = (x - per_channel(mean)) * per_channel(inv_std)
    return {"dx": float(np.abs(gy * per_channel(gamma) * per_channel(inv_std)).max(initial=0.0)),
            "dgamma": float(np.abs(gy * x_hat).sum(axis=others).max(initial=0.0)),
            "dbeta": float(np.abs(gy).sum(axis=others).max(initial=0.0))}


# ---- clamped linear units (ReLU, ReLU6): selections, so exact ------------------------------------------

def _clamp_input(cfg, rng):
    x = _randn(cfg, rng, scale=5.0)
    planted = [np.nan, 0.0, 6.0][:x.size]   # NaN stays NaN; 0 and 6 sit on the kinks
    x.reshape(-1)[:len(planted)] = planted
    return x


def clamp_forward_inputs(cfg, rng):
    return (_clamp_input(cfg, rng), cfg["high"]), {}


def clamp_backward_inputs(cfg, rng):
    y, _ = reference.clamp_forward(_clamp_input(cfg, rng), cfg["high"])
    return (_randn(cfg, rng), y, cfg["high"]), {}


CASES = [
    Case("im2col", "im2col", "conv", im2col_inputs, ("cols",)),
    Case("col2im", "col2im", "conv", col2im_inputs, ("dx",)),
    Case("depthwise_forward", "depthwise_forward", "conv", depthwise_forward_inputs, ("y",)),
    Case("depthwise_backward", "depthwise_backward", "conv", depthwise_backward_inputs, ("dx", "dw")),
    Case("depthwise_backward (need_dx=False)", "depthwise_backward", "conv",
         lambda cfg, rng: depthwise_backward_inputs(cfg, rng, need_dx=False), ("dx", "dw")),
    Case("max_pool_forward", "max_pool_forward", "pool", max_pool_forward_inputs, ("y", "argmax"),
         exact=("argmax",)),
    Case("max_pool_backward", "max_pool_backward", "pool", max_pool_backward_inputs, ("dx",)),
    Case("avg_pool_forward", "avg_pool_forward", "pool", avg_pool_forward_inputs, ("y",)),
    Case("avg_pool_backward", "avg_pool_backward", "pool", avg_pool_backward_inputs, ("dx",)),
    Case("batch_norm_forward", "batch_norm_forward", "batch_norm", batch_norm_forward_inputs,
         ("y", "mean", "var", "inv_std")),
    Case("batch_norm_backward", "batch_norm_backward", "batch_norm", batch_norm_backward_inputs,
         ("dx", "dgamma", "dbeta"), floors=batch_norm_backward_floors),
    *[Case(f"batch_norm_forward ({name})", "batch_norm_forward", "batch_norm",
           lambda cfg, rng, high=high: batch_norm_relu_forward_inputs(cfg, rng, high), ("z", "mean", "var", "inv_std"))
      for name, high in (("relu", None), ("relu6", 6.0))],
    *[Case(f"batch_norm_backward ({name})", "batch_norm_backward", "batch_norm",
           lambda cfg, rng, high=high: batch_norm_relu_backward_inputs(cfg, rng, high), ("dx", "dgamma", "dbeta"),
           floors=batch_norm_backward_floors)
      for name, high in (("relu", None), ("relu6", 6.0))],
    Case("clamp_forward", "clamp_forward", "elementwise", clamp_forward_inputs, ("y", "mask"),
         exact=("y", "mask")),
    Case("clamp", "clamp", "elementwise", clamp_forward_inputs, ("y",), exact=("y",)),
    Case("clamp_backward", "clamp_backward", "elementwise", clamp_backward_inputs, ("dx",), exact=("dx",)),
]


def nan_aware_err(where, got, want, floor=0.0):
    """``rel_err`` where both are numbers; a NaN in ``got`` where ``want`` has none (an element a kernel never
    wrote: the emulator NaN-fills outputs before each launch) or the reverse fails here. Without this check a
    NaN would vanish: ``max(0.0, nan)`` is 0.0, so an all-NaN output would score error 0."""
    if got.dtype.kind == "f":
        stray = np.isnan(got) != np.isnan(want)
        if stray.any():
            first = tuple(int(i) for i in np.argwhere(stray)[0])
            raise AssertionError(f"{where}: {int(stray.sum())} of {got.size} elements NaN in one and not the "
                                 f"other (first at {first}: got {got[first]}, reference {want[first]}); "
                                 f"an output the kernel never wrote is NaN")
        numbers = ~np.isnan(want)
        got, want = got[numbers], want[numbers]
    err = rel_err(got, want, floor)
    assert not np.isnan(err), f"{where}: the error is NaN"
    return err


def run_case(case, kernels, cfg, send=lambda a: a, host=np.asarray, seed=0):
    """{output: relative error} of ``kernels.<case.kernel>`` against the reference on one configuration.
    ``send`` puts a host array on the tier's device, ``host`` brings a result back. Exact outputs,
    dtypes, shapes and outputs that must be None are asserted here."""
    args, kwargs = case.inputs(cfg, np.random.default_rng(seed))
    want = getattr(reference, case.kernel)(*args, **kwargs)
    on_device = lambda a: send(a) if isinstance(a, np.ndarray) else a  # noqa: E731
    got = getattr(kernels, case.kernel)(*map(on_device, args), **{k: on_device(v) for k, v in kwargs.items()})
    want, got = (want, got) if isinstance(want, tuple) else ((want,), (got,))
    assert len(got) == len(want) == len(case.outputs), (case.name, len(got), len(want))
    floors = case.floors(args, want) if case.floors else {}
    errs = {}
    for output, g, w in zip(case.outputs, got, want):
        where = f"{case.name} ({output})"
        if w is None:
            assert g is None, f"{where}: the reference returns None, the tier {type(g).__name__}"
            continue
        g = host(g)
        assert g.dtype == w.dtype and g.shape == w.shape, (where, g.dtype, g.shape, w.dtype, w.shape)
        if output in case.exact:
            assert np.array_equal(g, w, equal_nan=True), f"{where} differs from the reference"
        errs[output] = 0.0 if output in case.exact else nan_aware_err(where, g, w, floors.get(output, 0.0))
    return errs


def compare_all(kernels, cfg, dev=lambda a: a, host=np.asarray, seed=0):
    """'case (output)' -> relative error of every case on one ``strategies.windowed()`` configuration (the
    pooling cases with the padding max-pool allows, no dilation; ReLU and ReLU6), for tests/kernels/
    test_cuda_gpu.py. The CuPy column of tests/kernels/test_tiers.py runs the same cases on a GPU."""
    pool = dict(cfg, dilation=(1, 1), padding=tuple(min(p, k // 2) for p, k in zip(cfg["padding"], cfg["kernel"])))
    pool["out_hw"] = tuple(output_size(cfg["shape"][2 + a], pool["kernel"][a], pool["stride"][a],
                                       pool["padding"][a], 1, "test", cfg["shape"]) for a in range(2))
    configs = {"conv": [cfg], "pool": [pool], "batch_norm": [cfg],
               "elementwise": [dict(cfg, high=None), dict(cfg, high=6.0)]}
    errs = {}
    for case in CASES:
        for c in configs[case.family]:
            for output, err in run_case(case, kernels, c, dev, host, seed).items():
                key = f"{case.name} ({output})"
                errs[key] = max(errs.get(key, 0.0), err)
    return errs
