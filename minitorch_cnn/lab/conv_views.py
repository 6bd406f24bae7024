"""What a convolution step multiplies, for every algorithm its ``ConvPlan`` can choose.

``conv_view(conv, x)`` rebuilds, in NumPy, the matrices that ``functional.conv`` multiplies for
``nn.Conv2d`` ``conv`` on input x (N, C, H, W), and tells what the kernels allocate (the plan's bytes):

* im2col     ``W (G, F/G, K) @ cols (G, K, N*Ho*Wo)``, cols built by the im2col kernel;
* pointwise  a 1x1 window is one pixel: x itself is the matrix (C, H*W) of each image, no copy (below
             64 pixels an image the CPU copies the batch channel-first, (C, N*H*W), for one product);
* depthwise  no matrix is built: the kernel slides each filter over its own channel. The view shows
             the per-channel windows (C, kh*kw, N*Ho*Wo) that would give the same result;
* direct     no matrix is built either: the kernel slides each of the few filters over every input plane.
             The view shows the columns (C*kh*kw, N*Ho*Wo) im2col would have built for the same result;
* winograd   F(m x m, 3x3), m = 4 on the CPU: U = G g G^T (36, F, C), V = B^T d B (36, C, tiles), the 36 matrix
             multiplies M[k] = U[k] @ V[k] of shape (F, C) @ (C, tiles), then y = A^T M A per 4x4 output tile.
"""
from dataclasses import dataclass

import numpy as np

from ..device import device_of, to_numpy
from ..functional.conv import ConvPlan, plan_conv
from ..kernels import reference


def plan_of(conv, x_shape, dtype, device=None):
    """The ConvPlan of ``nn.Conv2d`` ``conv`` on an input of ``x_shape`` on ``device`` (a Device; None: where
    its weights are now). ``zoo.summary`` and the Stepper both ask here, so they cannot disagree."""
    return plan_conv(x_shape, conv.weight.shape, conv.stride, conv.padding, conv.dilation, conv.groups, dtype,
                     device=device_of(conv.weight.data) if device is None else device)


def _bytes(n):
    return f"{n / 2 ** 20:.2f} MB" if n >= 2 ** 20 else f"{n / 1e3:.1f} kB"


def scratch_lines(plan):
    """One line per scratch array of each pass, and the two totals: what the kernels really allocate."""
    lines = []
    for phase, scratch in (("forward", plan.forward_scratch), ("backward", plan.backward_scratch)):
        total = sum(s.nbytes for s in scratch)
        lines.append(f"  {phase} scratch {total:,} bytes ({_bytes(total)})" + ("" if scratch else ": none"))
        lines += [f"    {s.what:<44} {str(s.shape):<18} {f'{s.count} x ' if s.count > 1 else ''}"
                  f"{_bytes(s.nbytes // s.count)} ({s.where})" for s in scratch]
    return lines


@dataclass(repr=False)   # repr is the explanation (str), not the arrays: ``s.im2col()`` at a prompt reads well
class Im2colView:
    """The matrices an im2col, pointwise, depthwise or direct convolution multiplies: ``weight_matrix @ cols`` is
    its output before the bias. With groups G > 1 both carry a leading group axis: (G, F/G, K) @ (G, K, L)."""
    path: str
    weight_matrix: np.ndarray
    cols: np.ndarray
    plan: ConvPlan = None

    @property
    def shapes(self):
        return self.weight_matrix.shape, self.cols.shape

    @property
    def nbytes(self):
        return self.weight_matrix.nbytes, self.cols.nbytes

    def __str__(self):
        (ws, cs), (wb, cb) = self.shapes, self.nbytes
        built = {"im2col": "built by im2col",
                 "pointwise": "the input itself (copied channel-first where its maps are small: see the scratch)",
                 "depthwise": "never built: the depthwise kernel slides each filter over its channel; these "
                              "are its per-channel windows",
                 "direct": "never built: the direct kernel slides each filter over every plane; these are "
                           "the columns im2col would build"}[self.path]
        head = f"path {self.path}: W {ws} ({wb / 1e3:.1f} kB) @ cols {cs} ({cb / 1e3:.1f} kB; {built})"
        return "\n".join([head] + ([] if self.plan is None else scratch_lines(self.plan)))

    __repr__ = __str__


@dataclass(repr=False)
class WinogradView:
    """Winograd F(m x m, 3x3) of one convolution, stage by stage (kernels/reference.py has the math), m the
    plan's ``winograd_tile`` (4 on the CPU), P = (m+2)^2 points.

    ``U`` (P, F, C): the filters, G g G^T; ``V`` (P, C, T): the T = N*ceil(Ho/m)*ceil(Wo/m) input tiles,
    B^T d B; ``M`` (P, F, T) = U @ V, the P matrix multiplies; ``output`` (N, F, Ho, Wo) = A^T M A per tile,
    before the bias."""
    plan: ConvPlan
    U: np.ndarray
    V: np.ndarray
    M: np.ndarray
    output: np.ndarray
    path: str = "winograd"

    @property
    def shapes(self):
        return self.U.shape, self.V.shape, self.M.shape

    def __str__(self):
        (p, f, c), (_, _, t), m = self.U.shape, self.V.shape, self.plan.winograd_tile
        return "\n".join([
            f"path winograd: F({m}x{m}, 3x3), {t} tiles of {m + 2}x{m + 2} input pixels, one per {m}x{m} output tile",
            f"  U = G g G^T       {str(self.U.shape):<16} {_bytes(self.U.nbytes)}  the filters, transformed",
            f"  V = B^T d B       {str(self.V.shape):<16} {_bytes(self.V.nbytes)}  the input tiles, transformed",
            f"  M[k] = U[k] @ V[k]: {p} GEMMs of ({f}, {c}) @ ({c}, {t}) -> M {self.M.shape}",
            f"  y = A^T M A per tile ({m}x{m} outputs each) -> y {self.output.shape}",
            "  the kernel runs the tiles in chunks, so only a chunk of V and M exists at a time:",
        ] + scratch_lines(self.plan))

    __repr__ = __str__


def _winograd_view(plan, x, w):
    """U, V, M and y of Winograd F(m x m, 3x3) for x (N, C, H, W), w (F, C, 3, 3), m the plan's tile (the one
    the device's kernels run), by kernels/reference.py's stages."""
    tile = plan.winograd_tile
    u = reference.winograd_weights(w, tile)                               # ((m+2)^2, F, C)
    v = reference.winograd_input_tiles(x, plan.padding, plan.out_hw, tile)  # ((m+2)^2, C, tiles)
    m = u @ v                                                             # the (m+2)^2 GEMMs
    return WinogradView(plan, u, v, m, reference.winograd_output_tiles(m, x.shape[0], plan.out_hw))


def conv_view(conv, x, device=None):
    """The view of ``nn.Conv2d`` ``conv`` on input x (N, C, H, W), a NumPy array, for the algorithm its plan
    chooses on ``device`` (a Device; None: where the weights are)."""
    device = device_of(conv.weight.data) if device is None else device
    plan = plan_of(conv, x.shape, x.dtype, device)
    (f, cg, kh, kw), g = conv.weight.shape, conv.groups
    w = np.asarray(to_numpy(conv.weight.data), dtype=x.dtype)
    if plan.algorithm == "winograd":
        return _winograd_view(plan, x, w)
    if plan.algorithm == "pointwise":
        cols = x.transpose(1, 0, 2, 3).reshape(x.shape[1], -1)            # (C, N*H*W): x[n] side by side
    else:   # the kernel Conv2d itself calls (Numba on the CPU), or the reference one for depthwise and direct
        kern, x_there = (device.kernels, device.send(x)) if plan.algorithm == "im2col" else (reference, x)
        cols = np.array(to_numpy(kern.im2col(x_there, (kh, kw), plan.stride, plan.padding, plan.dilation,
                                              plan.out_hw)))
    if g == 1:
        return Im2colView(plan.algorithm, w.reshape(f, -1), cols, plan)
    return Im2colView(plan.algorithm, w.reshape(g, f // g, cg * kh * kw), cols.reshape(g, cg * kh * kw, -1), plan)
