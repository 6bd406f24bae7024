"""What scratch memory each convolution algorithm allocates: the ``Scratch`` lists behind ``ConvPlan``'s
``forward_scratch`` / ``backward_scratch`` (functional/conv.py), read off the kernels' own chunking so the
plan and the run agree (tests/functional/test_conv_plan.py holds them to it)."""
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Scratch:
    """One array a convolution allocates besides its inputs, outputs and their gradients; ``count`` of them
    (one per worker thread). ``where``: "workspace" (a shared buffer of ``minitorch_cnn.workspace``, reused
    by the next call), "kept" (held from forward to backward) or "fresh" (new, freed after the call)."""
    what: str
    shape: tuple
    itemsize: int
    where: str = "fresh"
    count: int = 1

    @property
    def nbytes(self):
        return math.prod(self.shape) * self.itemsize * self.count



def scratch_of(plan, phase):
    """The ``Scratch`` list of one pass, read off the kernels (see each Function's forward and backward)."""
    (n, c, h, w), f, size = plan.x_shape, plan.weight_shape[0], plan.itemsize
    if plan.algorithm == "im2col":   # the forward's columns are kept or borrowed; backward borrows dcols,
        where = "kept" if plan.may_keep_columns else "workspace"   # and a rebuild shares dcols' buffer
        if phase == "backward":
            return (Scratch("dcols = W^T dY (rebuilt columns share it)", plan.cols_shape, size, "workspace"),)
        product = () if plan.per_image else (      # the whole batch's product, before its copy into NCHW
            Scratch("W @ cols over the batch", (plan.groups, f // plan.groups, plan.cols_shape[1]), size,
                    "workspace"),)
        return (Scratch("im2col columns", plan.cols_shape, size, where),) + product
    if plan.algorithm == "pointwise":   # x is the matrix; dW multiplies channel-first copies of dY and x
        whole = (c, n * h * w)          # without per_image the forward also runs on channel-first copies
        if phase == "forward":
            return () if plan.per_image else (Scratch("x as (C, N*H*W)", whole, size, "workspace"),
                                              Scratch("W @ x over the batch", (f, n * h * w), size, "workspace"))
        return (Scratch("dY as (F, N*H*W)", (f, n * h * w), size), Scratch("x as (C, N*H*W)", whole, size)) + (
            () if plan.per_image else (Scratch("dx as (C, N*H*W)", whole, size),))
    if plan.algorithm == "depthwise":   # each thread's few-kB stack buffers only (kernels/cpu/depthwise.py)
        return ()
    if plan.algorithm == "direct":      # kernels/cpu/direct.py: besides a wide output plane per thread (a few kB)
        return _direct_scratch(plan, phase)
    m, points = plan.winograd_tile, (plan.winograd_tile + 2) ** 2     # a training step's F(m x m, 3x3)
    if phase == "forward":
        return _per_kind((Scratch("U = G g G^T", (points, f, c), size, "workspace"),)
                         + tuple(_winograd_tiles(n, c, f, plan.out_hw, size, m, "").values()))
    dw_tiles = _winograd_tiles(n, c, f, plan.out_hw, size, m, "dW: ", "dM = A dY A^T")
    dx_tiles = _winograd_tiles(n, f, c, (h, w), size, m, "dx: ")
    return _per_kind(_winograd_weight_grad_sums(n, c, f, plan.out_hw, size, m)
                     + (Scratch("dx: U of the flipped filters", (points, c, f), size, "workspace"),)
                     + _shared_buffers(dw_tiles, dx_tiles))


def _shared_buffers(*passes):
    """The chunk buffers of several passes that borrow them by the same workspace names (dW's chunks, then
    dx's): one Scratch per name, named for every pass that uses it, the larger of their shapes (a workspace
    buffer grows to its largest borrow)."""
    merged = {}
    for scratch in passes:
        for name, s in scratch.items():
            if name in merged:
                old = merged[name]
                s = Scratch(f"{old.what} / {s.what}", max(old.shape, s.shape, key=math.prod), s.itemsize, s.where)
            merged[name] = s
    return tuple(merged.values())


def _direct_scratch(plan, phase):
    """The direct kernels' arrays: x zero-padded (when padded), and in backward dY widened to the padded
    width (its extra columns zeros) and dx computed padded before its border is cropped."""
    (n, c, h, w), f, size, (ph, pw) = plan.x_shape, plan.weight_shape[0], plan.itemsize, plan.padding
    hp, wp = h + 2 * ph, w + 2 * pw
    padded = (Scratch("x zero-padded, planes flattened", (n, c, hp * wp), size),) if ph or pw else ()
    if phase == "forward":
        return padded
    return ((Scratch("dY widened to the padded width", (n, f, plan.out_hw[0] * wp), size),) + padded
            + ((Scratch("dx padded, before its border is cropped", (n, c, hp * wp), size),) if ph or pw else ()))


def _per_kind(scratch):
    """Equal arrays of several worker threads as one Scratch with their ``count``, in first-seen order."""
    counts = {}
    for s in scratch:
        counts[s] = counts.get(s, 0) + 1
    return tuple(Scratch(s.what, s.shape, s.itemsize, s.where, n) for s, n in counts.items())


def _worker_chunks(n, out_hw, c, f, size, tile):
    """The sizes (in rows of tiles) of the chunks each worker thread gets, as kernels/cpu/winograd deals
    them out (``deal_chunks``), and the tiles per row."""
    from ..kernels import reference
    from ..kernels.cpu import winograd
    th, tw = reference.winograd_tile_grid(out_hw, tile)
    rows = n * th
    per_chunk, dealt = winograd.deal_chunks(rows, tw, (tile + 2) ** 2 * max(c, f), size)
    return [[min(rows, s + per_chunk) - s for s in starts] for starts in dealt], tw


def _winograd_tiles(n, c, f, out_hw, size, tile, label, m_name="M = U V"):
    """V ((m+2)^2, C, tiles) and M ((m+2)^2, F, tiles) per worker, by the workspace names
    kernels/cpu/winograd.winograd_conv borrows them under ("winograd" and the worker's number, "_v" / "_m")."""
    chunks, tw = _worker_chunks(n, out_hw, c, f, size, tile)
    numbers = [""] if len(chunks) == 1 else [str(i) for i in range(len(chunks))]
    return {f"winograd{i}{key}": Scratch(f"{label}{name}", ((tile + 2) ** 2, k, max(rows) * tw), size, "workspace")
            for i, rows in zip(numbers, chunks) for key, name, k in (("_v", "V = B^T d B", c), ("_m", m_name, f))}


def _winograd_weight_grad_sums(n, c, f, out_hw, size, tile):
    """dW's own workspace: each thread's sum dU and, from its second chunk on, the product it adds in
    (kernels/cpu/winograd.winograd_weight_grad; its V and dM are the chunk buffers dx reuses)."""
    names = ("dW: this thread's dU = sum of dM V^T", "dW: one chunk's dM V^T")
    return tuple(Scratch(what, ((tile + 2) ** 2, f, c), size, "workspace")
                 for rows in _worker_chunks(n, out_hw, c, f, size, tile)[0] for what in names[:len(rows)])
