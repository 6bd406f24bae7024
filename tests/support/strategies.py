"""The hypothesis strategies of the kernel tests, one per shape family. Each draws a configuration (a dict)
that the case table (support.cuda_cases) turns into inputs:

    windowed(pooling=False)   convolution / pooling windows: shape, kernel, stride, padding, dilation, out_hw, m
    batch_norm_shapes()       (N, C), (N, C, L) or (N, C, H, W), normalised over all but C
    elementwise_shapes()      any shape of 1 to 4 axes, and ReLU's upper bound (None or 6)

Every one also draws the dtype (float32 or float64). ``large=True`` makes one draw in four big enough for
the Numba kernels' threaded copies (at least ``jit.PARALLEL_FROM`` elements of work); the small draws give
odd sizes, single elements, windows over the border, fewer elements than a GPU block has threads.
"""
import numpy as np
from hypothesis import strategies as st

from minitorch_cnn.functional.checks import output_size

DTYPES = st.sampled_from([np.float32, np.float64])


def _large(draw, large):
    return large and draw(st.integers(0, 3)) == 0


@st.composite
def windowed(draw, pooling=False, large=False):
    """A window's settings and the input shape: odd sizes, rectangular kernels of up to 5 taps, stride,
    padding, dilation (not for pooling, whose padding is at most half the kernel, as max-pool requires);
    ``m``: the depthwise channel multiplier. out_hw is the output's (Ho, Wo)."""
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    dil = (1, 1) if pooling else (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    if pooling:
        pad = (draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2)))
    else:
        pad = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    span = (dil[0] * (kh - 1) + 1, dil[1] * (kw - 1) + 1)
    if _large(draw, large):   # >= 4*8*48*48 elements: the threaded path
        shape = (4, 8, draw(st.integers(48, 56)), draw(st.integers(48, 56)))
        stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    else:
        h = draw(st.integers(max(1, span[0] - 2 * pad[0]), 13))
        w = draw(st.integers(max(1, span[1] - 2 * pad[1]), 13))
        stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        shape = (draw(st.integers(1, 3)), draw(st.integers(1, 6)), h, w)
    out_hw = tuple(output_size(shape[2 + a], (kh, kw)[a], stride[a], pad[a], dil[a], "test", shape) for a in range(2))
    return dict(shape=shape, kernel=(kh, kw), stride=stride, padding=pad, dilation=dil, out_hw=out_hw,
                dtype=draw(DTYPES), m=draw(st.integers(1, 2)))


@st.composite
def batch_norm_shapes(draw, large=False):
    """A batch norm's input: (N, C) as after a Linear layer, (N, C, L), or (N, C, H, W); N * L may be 1."""
    if _large(draw, large):
        shape = (64, 16, 16, 16)
    else:
        axes = draw(st.integers(0, 2))
        shape = (draw(st.integers(1, 6)), draw(st.integers(1, 6))) + tuple(draw(st.integers(1, 9))
                                                                          for _ in range(axes))
    return dict(shape=shape, dtype=draw(DTYPES))


@st.composite
def elementwise_shapes(draw, large=False):
    """Any shape of 1 to 4 axes (a single element among them), and ReLU's upper bound: None or 6 (ReLU6)."""
    if _large(draw, large):
        shape = (64, 32, 16, 16)
    else:
        shape = tuple(draw(st.integers(1, 9)) for _ in range(draw(st.integers(1, 4))))
    return dict(shape=shape, dtype=draw(DTYPES), high=draw(st.sampled_from([None, 6.0])))


def pooling(large=False):
    return windowed(pooling=True, large=large)


# family name (a case's ``family`` in support.cuda_cases) -> its strategy, called with large=...
FAMILIES = {"conv": windowed, "pool": pooling, "batch_norm": batch_norm_shapes, "elementwise": elementwise_shapes}
