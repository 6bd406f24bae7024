"""``Step``: one recorded layer or op of a forward pass, and what a student can ask of it.

(``zoo/step.py`` is the command line that prints a model's steps; this is one step of a ``Stepper``.)"""
import copy
import statistics
import time

import numpy as np

from .. import nn
from ..device import device_of, get_array_module, to_numpy, using_device
from ..tensor import Tensor
from .conv_views import conv_view, plan_of
from .sampled_gradcheck import sparse_gradcheck

# The input of a step is nudged by noise of JITTER x its std before a gradcheck: the zeros a ReLU feeds
# a max pool are exact ties, where any finite difference straddles a kink and disagrees with every
# subgradient. The noise spreads tied values about 1e-2 apart, so that the gradcheck's steps (at least
# 1e-7, see sampled_gradcheck.py) rarely reach a neighbour; it moves the point checked, not the layer's math.
JITTER = 1e-2


class Step:
    """One step: ``name``, ``kind``, ``module``, ``inputs`` / ``output`` (NumPy copies), ``forward_ms``,
    ``device`` (where it ran), and after ``Stepper.backward`` the gradient at its output, ``grad_output``."""

    def __init__(self, index, raw, device=None):
        self.index, self.name, self.kind, self.module = index, raw.name, raw.kind, raw.module
        self.inputs = tuple(np.array(to_numpy(t.data)) for t in raw.inputs)
        self.output = np.array(to_numpy(raw.output.data))
        self.device = device_of(raw.output.data) if device is None else device   # the Stepper knows (emulator)
        self.forward_ms, self.grad_output = raw.forward_ms, None
        self._tensor, self._replay = raw.output, raw.replay
        # which tensors fed it and which it made: page_facts.py follows them to the receptive field
        self.input_ids, self.output_id = tuple(id(t) for t in raw.inputs), id(raw.output)
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

    def _is_conv(self):
        return self._is_module and isinstance(self.module, nn.Conv2d)

    def plan(self):
        """For a convolution, its ``functional.conv.ConvPlan`` (algorithm, output shape, scratch bytes of
        forward and backward); None for any other step."""
        if not self._is_conv():
            return None
        return plan_of(self.module, self.inputs[0].shape, self.inputs[0].dtype, self.device)

    def im2col(self):
        """For a convolution, what it multiplies, for the algorithm its plan chose: an ``Im2colView``
        (im2col, pointwise, depthwise) or a ``WinogradView``, each with the plan's bytes; None otherwise."""
        return conv_view(self.module, self.inputs[0], self.device) if self._is_conv() else None

    def im2col_shape(self):
        """(K, L) of the column matrix without building it; None unless the im2col path builds one."""
        plan = self.plan()
        return None if plan is None else plan.cols_shape

    # ---- re-running the step -----------------------------------------------------------------
    def _runner(self, dtype):
        """(function, named parameters) that compute this step again on a private copy in ``dtype``."""
        if self._is_module:   # on the device the step ran on, as its inputs will be
            module = copy.deepcopy(self._replay).to(self.device).to(dtype)
            return module, list(module.named_parameters())
        return self._replay, []

    def gradcheck(self, samples=32, seed=0, eps=1e-5):
        """Finite differences against backward on a float64 copy of this step; see sampled_gradcheck.py."""
        fn, params = self._runner(np.float64)
        inputs = [Tensor(x, device=self.device) for x in self.jittered_inputs(np.random.default_rng(seed))]
        with using_device(self.device):   # the kernels of the device the step ran on
            return sparse_gradcheck(fn, inputs, params, samples=samples, seed=seed, eps=eps, name=self.name)

    def jittered_inputs(self, rng):
        """float64 copies of the inputs, each moved off ties and kinks by a little noise (see JITTER)."""
        out = []
        for x in self.inputs:
            x = x.astype(np.float64)
            out.append(x + JITTER * (x.std() + 1e-2) * rng.standard_normal(x.shape))
        return out

    def time(self, repeat=5):
        """Median forward and backward milliseconds of this step alone (float32, after one warm-up)."""
        fn, _ = self._runner(np.float32)
        forward, backward = [], []
        for r in range(repeat + 1):
            xs = [Tensor(x, requires_grad=True, device=self.device) for x in self.inputs]
            with using_device(self.device):
                t0 = time.perf_counter()
                y = fn(*xs)
                t1 = time.perf_counter()
                y.backward(get_array_module(y.data).ones_like(y.data))
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
        return filter_grid(to_numpy(self.module.weight.data), f"{self.name} filters", max_filters)

    # ---- text ---------------------------------------------------------------------------------------
    def shapes(self):
        ins = ", ".join(str(tuple(x.shape)) for x in self.inputs)
        return f"{ins} -> {tuple(self.output.shape)}"

    def __repr__(self):
        return f"Step({self.index}, {self.name!r}, {self.kind}, {self.shapes()})"
