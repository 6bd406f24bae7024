"""``Step``: one recorded layer or op of a forward pass, and what a student can ask of it."""
import copy
import statistics
import time
from dataclasses import dataclass

import numpy as np

from .. import backend, nn
from ..functional.conv import conv_path
from ..kernels import reference
from ..tensor import Tensor
from .gradcheck import sparse_gradcheck

# The input of a step is nudged by noise of JITTER x its std before a gradcheck: the zeros a ReLU feeds
# a max pool are exact ties, where any finite difference straddles a kink and disagrees with every
# subgradient. The noise spreads tied values about 1e-2 apart, so that the gradcheck's steps (at least
# 1e-7, see gradcheck.py) rarely reach a neighbour; it moves the point checked, not the layer's math.
JITTER = 1e-2


@dataclass
class Im2colView:
    """The matrices a convolution multiplies: ``weight_matrix @ cols`` is its output before the bias.

    ``path`` is what ``functional.conv.conv_path`` chose. 'im2col' builds ``cols`` for real;
    'pointwise' (1x1, stride 1) multiplies the input itself, so ``cols`` is x reshaped, no copy;
    'depthwise' builds no matrix at all (a kernel slides each filter over its channel); ``cols`` is the
    per-group im2col that *would* give the same result, shown so the three can be compared.
    With groups G > 1 both matrices carry a leading group axis: (G, F/G, K) @ (G, K, L).
    """
    path: str
    weight_matrix: np.ndarray
    cols: np.ndarray

    @property
    def shapes(self):
        return self.weight_matrix.shape, self.cols.shape

    @property
    def nbytes(self):
        return self.weight_matrix.nbytes, self.cols.nbytes

    def __str__(self):
        (ws, cs), (wb, cb) = self.shapes, self.nbytes
        built = {"im2col": "built by im2col", "pointwise": "the input itself, no copy",
                 "depthwise": "never built: the depthwise kernel slides instead"}[self.path]
        return (f"path {self.path}: W {ws} ({wb / 1e3:.1f} kB) @ cols {cs} ({cb / 1e3:.1f} kB; {built})")


def _im2col_view(conv, x):
    """The Im2colView of nn.Conv2d ``conv`` on input x (N, C, H, W), as a NumPy computation."""
    f, cg, kh, kw = conv.weight.shape
    g = conv.groups
    path = conv_path(x.shape[1], conv.weight.shape, conv.stride, conv.padding, g)
    out_hw = tuple((x.shape[2 + a] + 2 * conv.padding[a] - conv.dilation[a] * ((kh, kw)[a] - 1) - 1)
                   // conv.stride[a] + 1 for a in range(2))
    if path == "pointwise":
        cols = x.transpose(1, 0, 2, 3).reshape(x.shape[1], -1)            # (C, N*H*W)
    else:   # the kernel Conv2d itself calls (Numba on the CPU), or the reference one for depthwise
        kern = backend.kernels(x) if path == "im2col" else reference
        cols = np.array(kern.im2col(x, (kh, kw), conv.stride, conv.padding, conv.dilation, out_hw))
    w = backend.to_numpy(conv.weight.data)
    if g == 1:
        return Im2colView(path, w.reshape(f, -1), cols)
    return Im2colView(path, w.reshape(g, f // g, cg * kh * kw), cols.reshape(g, cg * kh * kw, -1))


class Step:
    """One step: ``name``, ``kind``, ``module``, ``inputs`` / ``output`` (NumPy copies), ``forward_ms``,
    and after ``Stepper.backward`` the gradient arriving at its output, ``grad_output``."""

    def __init__(self, index, raw):
        self.index, self.name, self.kind, self.module = index, raw.name, raw.kind, raw.module
        self.inputs = tuple(np.array(backend.to_numpy(t.data)) for t in raw.inputs)
        self.output = np.array(backend.to_numpy(raw.output.data))
        self.forward_ms, self.grad_output = raw.forward_ms, None
        self._tensor, self._replay = raw.output, raw.replay
        self._is_module = isinstance(raw.replay, nn.Module)

    # ---- what the step computed -------------------------------------------------------------
    def stats(self):
        """mean, std, min, max, zero_fraction, dead_channels (all-zero channels) and, after a ReLU6,
        saturated_fraction (outputs clipped at 6, whose gradient is zero)."""
        y = self.output.astype(np.float64)
        out = {"mean": float(y.mean()), "std": float(y.std()), "min": float(y.min()), "max": float(y.max()),
               "zero_fraction": float((y == 0).mean())}
        if self.kind == "ReLU6":
            out["saturated_fraction"] = float((y >= 6.0).mean())
        if y.ndim >= 2:
            per_channel = np.abs(np.moveaxis(y, 1, 0)).reshape(y.shape[1], -1).max(axis=1)
            out["dead_channels"] = int((per_channel == 0).sum())
        return out

    def im2col(self):
        """For a convolution, the Im2colView of the matrices it multiplies; None for any other step."""
        if not isinstance(self.module, nn.Conv2d) or not self._is_module:
            return None
        return _im2col_view(self.module, self.inputs[0])

    def im2col_shape(self):
        """(K, L) of the column matrix without building it; None unless the im2col path builds one."""
        m = self.module
        if not self._is_module or not isinstance(m, nn.Conv2d):
            return None
        if conv_path(m.in_channels, m.weight.shape, m.stride, m.padding, m.groups) != "im2col":
            return None
        kh, kw = m.kernel_size
        n, _, ho, wo = self.output.shape
        return (m.in_channels * kh * kw, n * ho * wo)

    # ---- re-running the step -----------------------------------------------------------------
    def _runner(self, dtype):
        """(function, named parameters) that compute this step again on a private copy in ``dtype``."""
        if self._is_module:
            module = copy.deepcopy(self._replay).to(dtype)
            return module, list(module.named_parameters())
        return self._replay, []

    def gradcheck(self, samples=32, seed=0, eps=1e-5):
        """Finite differences against backward on a float64 copy of this step; see gradcheck.py."""
        fn, params = self._runner(np.float64)
        rng = np.random.default_rng(seed)
        inputs = []
        for x in self.inputs:
            x = x.astype(np.float64)
            x = x + JITTER * (x.std() + 1e-2) * rng.standard_normal(x.shape)
            inputs.append(Tensor(x))
        return sparse_gradcheck(fn, inputs, params, samples=samples, seed=seed, eps=eps, name=self.name)

    def time(self, repeat=5):
        """Median forward and backward milliseconds of this step alone (float32, after one warm-up)."""
        fn, _ = self._runner(np.float32)
        forward, backward = [], []
        for r in range(repeat + 1):
            xs = [Tensor(x, requires_grad=True) for x in self.inputs]
            t0 = time.perf_counter()
            y = fn(*xs)
            t1 = time.perf_counter()
            y.backward(np.ones_like(y.data))
            t2 = time.perf_counter()
            if r:   # the first run warms caches and compiles kernels
                forward.append((t1 - t0) * 1e3)
                backward.append((t2 - t1) * 1e3)
        return {"forward_ms": statistics.median(forward), "backward_ms": statistics.median(backward)}

    # ---- pictures (matplotlib is imported only here, on demand) -----------------------------------
    def show(self, max_maps=32):
        """Figure: the output's feature maps (image 0), or its values as bars for a vector."""
        from .figures import feature_maps
        return feature_maps(self.output[0], f"{self.name} ({self.kind}) output", max_maps)

    def filters(self, max_filters=64):
        """Figure: the filters of a convolution (RGB when they read 3 channels), or a Linear's weights."""
        from .figures import filter_grid
        if not isinstance(self.module, (nn.Conv2d, nn.Linear)) or not self._is_module:
            raise ValueError(f"step {self.name!r} is a {self.kind}; filters() needs a Conv2d or Linear step")
        return filter_grid(backend.to_numpy(self.module.weight.data), f"{self.name} filters", max_filters)

    # ---- text ---------------------------------------------------------------------------------------
    def shapes(self):
        ins = ", ".join(str(tuple(x.shape)) for x in self.inputs)
        return f"{ins} -> {tuple(self.output.shape)}"

    def __repr__(self):
        return f"Step({self.index}, {self.name!r}, {self.kind}, {self.shapes()})"
