"""Reference kernels: the windowed operations written with array slicing only (NumPy or CuPy).

This is the readable version of every kernel: each loops only over the kh*kw
kernel taps, and each step is one vectorised slice operation over batch,
channels and pixels. The Numba kernels in ``kernels/cpu`` compute exactly the
same things faster; the tests hold them to this file. Every function has the
same signature in every kernel module, so the layers call them without knowing
which device they run on.

Shapes: x (N, C, H, W); a window has ``kernel`` = (kh, kw) taps spaced ``dilation``
apart and moves by ``stride``; ``padding`` = (ph, pw) zeros (or -inf) surround
x; the output has ``out_hw`` = (Ho, Wo) positions.
"""
import math

from ..device import get_array_module


def batched_matmul(a, b, out, bias=None):
    """a (F, K) or (N, F, K) @ b (N, K, P) -> out (N, F, P), plus bias (F,) per row when given: one product per
    image (matmul's broadcasting).
    Not a kernel but a BLAS call, here so that every kernel module says how its device runs a batch of them
    (kernels/cpu/threads.py shares the images out to its cores; CuPy hands them to cuBLAS as they are)."""
    get_array_module(b).matmul(a, b, out=out)
    if bias is not None:
        out += bias.reshape(-1, 1)
    return out


def matmul_channels_first(a, b, out, bias, b_mat, out_mat):
    """a (F, K) @ b (N, K, P) -> out (N, F, P), plus bias (F,) when given (None: none), as one product over the
    whole batch: b copied channel-first into b_mat (K, N*P), a @ b_mat into out_mat (F, N*P), and that copied
    back into out (the bias added on the way), b_mat left holding b's copy (a 1x1 convolution's dW reuses dY's).
    For few pixels per image, where a product per image is thin.
    A BLAS call between two copies, as batched_matmul is one (kernels/cpu/threads.py shares it out to its cores)."""
    xp, (n, k, p) = get_array_module(b), b.shape
    b_mat.reshape(k, n, p)[...] = b.transpose(1, 0, 2)
    xp.matmul(a, b_mat, out=out_mat)
    src = out_mat.reshape(-1, n, p).transpose(1, 0, 2)
    if bias is None:
        out[...] = src
    else:
        xp.add(src, bias.reshape(1, -1, 1), out=out)
    return out


def summed_matmul_nt(a, b, out):
    """out (F, C) = sum over images n of a[n] @ b[n]^T, a (N, F, P), b (N, C, P): a 1x1 convolution's dW, as one
    product over the whole batch, a (F, N*P) @ b (C, N*P)^T, after copying both channel-first (a copy that
    moves whole planes; tensordot would move b to (N*P, C), a strided copy measured 2x slower than the whole
    product at 192 -> 64, 32x32, batch 64). A BLAS call, as batched_matmul (kernels/cpu/threads.py shares it out)."""
    xp, (n, f, p), c = get_array_module(a), a.shape, b.shape[1]
    xp.matmul(a.transpose(1, 0, 2).reshape(f, n * p), b.transpose(1, 0, 2).reshape(c, n * p).T, out=out)
    return out


def pad2d(x, padding, value=0.0):
    """x: (N, C, H, W) -> (N, C, H + 2ph, W + 2pw), border filled with ``value``."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    xp = get_array_module(x)
    n, c, h, w = x.shape
    out = xp.full((n, c, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype)
    out[:, :, ph:ph + h, pw:pw + w] = x
    return out


def unpad2d(x, padding):
    """Inverse of ``pad2d`` for gradients: drop the border."""
    ph, pw = padding
    return x[:, :, ph:x.shape[2] - ph, pw:x.shape[3] - pw]


def tap(kernel_index, dilation, stride, count):
    """The slice of a padded axis that kernel tap ``kernel_index`` sees at the ``count`` output positions."""
    start = kernel_index * dilation
    return slice(start, start + stride * (count - 1) + 1, stride)


def windows(xpad, kernel, stride, dilation, out_hw):
    """xpad: (N, C, Hp, Wp) -> strided view (N, C, kh, kw, Ho, Wo), no copy.

    view[n, c, i, j, y, x] = xpad[n, c, y*sh + i*dh, x*sw + j*dw]
    """
    xp = get_array_module(xpad)
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, stride, dilation, out_hw
    s_n, s_c, s_h, s_w = xpad.strides
    return xp.lib.stride_tricks.as_strided(
        xpad, shape=xpad.shape[:2] + (kh, kw, ho, wo),
        strides=(s_n, s_c, s_h * dh, s_w * dw, s_h * sh, s_w * sw))


def add_windows(values, x_shape, kernel, stride, padding, dilation):
    """Adjoint of ``windows``: values (N, C, kh, kw, Ho, Wo) -> (N, C, H, W), overlapping taps summed."""
    xp = get_array_module(values)
    n, c, kh, kw, ho, wo = values.shape
    out = xp.zeros((n, c, x_shape[2] + 2 * padding[0], x_shape[3] + 2 * padding[1]), dtype=values.dtype)
    for i in range(kh):
        for j in range(kw):
            out[:, :, tap(i, dilation[0], stride[0], ho), tap(j, dilation[1], stride[1], wo)] += values[:, :, i, j]
    return unpad2d(out, padding)


# ---- convolution -----------------------------------------------------------------------
def im2col(x, kernel, stride, padding, dilation, out_hw, out=None):
    """x: (N, C, H, W) -> cols (C*kh*kw, N*Ho*Wo): a strided view of the windows plus one copy
    (into ``out`` when given)."""
    xp = get_array_module(x)
    win = windows(pad2d(x, padding), kernel, stride, dilation, out_hw)   # (N, C, kh, kw, Ho, Wo)
    n, c, kh, kw, ho, wo = win.shape
    if out is None:
        out = xp.empty((c * kh * kw, n * ho * wo), dtype=x.dtype)
    out.reshape(c, kh, kw, n, ho, wo)[...] = win.transpose(1, 2, 3, 0, 4, 5)
    return out


def col2im(cols, x_shape, kernel, stride, padding, dilation, out_hw):
    """cols (C*kh*kw, N*Ho*Wo) -> (N, C, H, W): each column added back onto its window (im2col's adjoint)."""
    n, c = x_shape[:2]
    values = cols.reshape(c, kernel[0], kernel[1], n, *out_hw).transpose(3, 0, 1, 2, 4, 5)
    return add_windows(values, x_shape, kernel, stride, padding, dilation)


def depthwise_forward(x, w, stride, padding, dilation, out_hw, bias=None):
    """x (N, C, H, W), w (C*m, 1, kh, kw) -> (N, C*m, Ho, Wo): channel c feeds outputs c*m .. c*m + m-1;
    plus bias (C*m,) per output channel when given."""
    xp = get_array_module(x)
    (n, c, _, _), (cm, _, kh, kw) = x.shape, w.shape
    w4 = w.reshape(c, cm // c, kh, kw)
    win = windows(pad2d(x, padding), (kh, kw), stride, dilation, out_hw)
    y = xp.zeros((n, c, cm // c) + tuple(out_hw), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            y += win[:, :, None, i, j] * w4[None, :, :, i, j, None, None]
    if bias is not None:
        y += bias.reshape(c, cm // c, 1, 1)
    return y.reshape(n, cm, *out_hw)


def depthwise_backward(gy, x, w, stride, padding, dilation, need_dx=True):
    """gy (N, C*m, Ho, Wo) -> (dx (N, C, H, W) or None, dw (C*m, 1, kh, kw))."""
    xp = get_array_module(gy)
    (n, c, _, _), (cm, _, kh, kw) = x.shape, w.shape
    gy5 = gy.reshape(n, c, cm // c, *gy.shape[2:])
    w4 = w.reshape(c, cm // c, kh, kw)
    win = windows(pad2d(x, padding), (kh, kw), stride, dilation, gy.shape[2:])
    dw = xp.empty_like(w4)
    for i in range(kh):
        for j in range(kw):
            dw[:, :, i, j] = xp.einsum("ncmyx,ncyx->cm", gy5, win[:, :, i, j])
    dx = None
    if need_dx:
        values = xp.einsum("ncmyx,cmij->ncijyx", gy5, w4)
        dx = add_windows(values, x.shape, (kh, kw), stride, padding, dilation)
    return dx, dw.reshape(w.shape)


def direct_conv(x, w, b, padding, dilation, out_hw):
    """x (N, C, H, W), w (F, C, kh, kw), b (F,) or None -> (N, F, Ho, Wo), stride 1: the sum im2col's product
    computes, W (F, C*kh*kw) @ cols (kernels/cpu/direct.py slides each filter over each plane instead)."""
    xp = get_array_module(x)
    f, n = w.shape[0], x.shape[0]
    cols = im2col(x, w.shape[2:], (1, 1), padding, dilation, out_hw)                  # (C*kh*kw, N*Ho*Wo)
    y = xp.ascontiguousarray((w.reshape(f, -1) @ cols).reshape(f, n, *out_hw).transpose(1, 0, 2, 3))
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def direct_conv_backward(gy, x, w, padding, dilation, need_dx=True):
    """gy (N, F, Ho, Wo), x (N, C, H, W), w (F, C, kh, kw) -> (dx (N, C, H, W) or None, dw (F, C, kh, kw)):
    dW = dY @ cols^T and dx = col2im(W^T @ dY), as im2col's backward."""
    f, kernel = w.shape[0], w.shape[2:]
    gy_mat = gy.transpose(1, 0, 2, 3).reshape(f, -1)                                   # (F, N*Ho*Wo)
    dw = (gy_mat @ im2col(x, kernel, (1, 1), padding, dilation, gy.shape[2:]).T).reshape(w.shape)
    dx = col2im(w.reshape(f, -1).T @ gy_mat, x.shape, kernel, (1, 1), padding, dilation,
                gy.shape[2:]) if need_dx else None
    return dx, dw


# ---- pooling -----------------------------------------------------------------------------
def max_pool_forward(x, kernel, stride, padding, out_hw):
    """x (N, C, H, W) -> (y (N, C, Ho, Wo), argmax (N, C, Ho, Wo): the winning tap i*kw + j, first on ties)."""
    xp = get_array_module(x)
    n, c = x.shape[:2]
    win = windows(pad2d(x, padding, value=-xp.inf), kernel, stride, (1, 1), out_hw)
    taps = win.reshape(n, c, -1, *out_hw)                      # (N, C, kh*kw, Ho, Wo), one copy
    argmax = taps.argmax(axis=2)
    return xp.take_along_axis(taps, argmax[:, :, None], axis=2)[:, :, 0], argmax.astype(xp.int32)


def max_pool_backward(gy, argmax, x_shape, kernel, stride, padding):
    """gy (N, C, Ho, Wo) -> dx (N, C, H, W): each gradient goes to the tap that won its window."""
    xp = get_array_module(gy)
    kh, kw = kernel
    tap_ids = xp.arange(kh * kw).reshape(1, 1, kh, kw, 1, 1)
    values = (argmax[:, :, None, None] == tap_ids) * gy[:, :, None, None]   # (N, C, kh, kw, Ho, Wo)
    return add_windows(values.astype(gy.dtype, copy=False), x_shape, kernel, stride, padding, (1, 1))


def avg_pool_forward(x, kernel, stride, padding, out_hw, divisor):
    """x (N, C, H, W) -> (N, C, Ho, Wo): each window's sum over ``divisor`` (an (Ho, Wo) array)."""
    win = windows(pad2d(x, padding), kernel, stride, (1, 1), out_hw)
    return (win.sum(axis=(2, 3)) / divisor).astype(x.dtype, copy=False)


def avg_pool_backward(gy, x_shape, kernel, stride, padding, divisor):
    """gy (N, C, Ho, Wo) -> dx (N, C, H, W): each window's gradient shared evenly over its taps."""
    xp = get_array_module(gy)
    share = (gy / divisor).astype(gy.dtype, copy=False)
    values = xp.broadcast_to(share[:, :, None, None], share.shape[:2] + tuple(kernel) + share.shape[2:])
    return add_windows(values, x_shape, kernel, stride, padding, (1, 1))


# ---- batch normalisation (training mode) ----------------------------------------------------
def batch_norm_forward(x, gamma, beta, eps, relu=False, high=None):
    """x (N, C, *) -> (y, mean, var, inv_std): normalise each channel with the batch's statistics.

    relu=True: y is clamped as it is written, y = min(max(y, 0), high) (``clamp``: ReLU, or ReLU6 with
    high=6), so a batch norm and the activation after it make one pass and one output array, not two.
    x_hat = (x - mean) * inv_std is not returned: the backward recomputes it from x (which the graph keeps
    anyway), so that no second activation-sized array lives from the forward to the backward."""
    xp = get_array_module(x)
    axes, shape = (0,) + tuple(range(2, x.ndim)), (1, x.shape[1]) + (1,) * (x.ndim - 2)
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    inv_std = (1.0 / xp.sqrt(var + eps)).astype(x.dtype)
    x_hat = (x - mean.reshape(shape)) * inv_std.reshape(shape)
    y = x_hat * gamma.reshape(shape) + beta.reshape(shape)
    return clamp(y, high) if relu else y, mean, var, inv_std


def batch_norm_backward(gy, x, gamma, mean, inv_std, z=None, high=None):
    """gy (N, C, *) -> (dx, dgamma, dbeta). With x_hat = (x - mean) * inv_std, g = gy * gamma and M values
    per channel: dx = inv_std * (g - mean(g) - x_hat * mean(g * x_hat)).

    z: the output of a forward with relu=True, or None. Then gy is the gradient of that clamped output,
    and the clamp's own backward comes first: gy <- gy where 0 < z < high, else 0 (``clamp_backward``)."""
    if z is not None:
        gy = clamp_backward(gy, z, high)
    axes, shape = (0,) + tuple(range(2, gy.ndim)), (1, gy.shape[1]) + (1,) * (gy.ndim - 2)
    x_hat = (x - mean.reshape(shape)) * inv_std.reshape(shape)
    gbeta = gy.sum(axis=axes)
    ggamma = (gy * x_hat).sum(axis=axes)
    count = gy.size // gy.shape[1]
    g_mean = (gbeta * gamma / count).reshape(shape)
    gx_hat_mean = (ggamma * gamma / count).reshape(shape)
    gx = (gy * gamma.reshape(shape) - g_mean - x_hat * gx_hat_mean) * inv_std.reshape(shape)
    return gx, ggamma, gbeta


# ---- clamped linear units (ReLU, ReLU6) ----------------------------------------------------------
def clamp_forward(x, high=None):
    """y = min(max(x, 0), high) (no upper bound when high is None), and the mask where dy/dx = 1:
    0 < x < high. NaN stays NaN, as in PyTorch."""
    xp = get_array_module(x)
    if high is None:
        return xp.maximum(x, 0), x > 0    # maximum, not x * mask: -inf * 0 would be NaN
    return xp.clip(x, 0, high), (x > 0) & (x < high)


def clamp(x, high=None, out=None):
    """y = min(max(x, 0), high) alone: ``clamp_forward`` without the mask, for a forward that keeps none
    (ReLU's, whose backward reads the mask back from y). NaN stays NaN. ``out``: where y goes (x itself
    clamps in place: nn/fold.py's inference, where nothing else reads x), else a new array."""
    xp = get_array_module(x)
    return xp.maximum(x, 0, out=out) if high is None else xp.clip(x, 0, high, out=out)


def clamp_backward(gy, y, high=None):
    """gy, y = clamp_forward's output -> gx = gy where 0 < y < high, else 0.

    y is inside (0, high) exactly where x is, so the backward reads the mask back from the output
    (PyTorch's convention: no gradient at x = 0 or x = high) and the forward need not keep a mask array."""
    xp = get_array_module(y)
    inside = (y > 0) if high is None else (y > 0) & (y < high)
    return xp.where(inside, gy, gy.dtype.type(0))


# ---- Winograd F(m x m, 3x3): 3x3 convolution, stride 1, through (m+2)x(m+2) tiles --------------------
# A 3x3 filter g over an (m+2)x(m+2) input tile d gives an m x m output tile  Y = A^T [(G g G^T) * (B^T d B)] A
# (Lavin & Gray, 2015): (m+2)^2 multiplies per tile and (input, output) channel pair instead of im2col's 9 m^2.
# Summed over input channels, the element-wise products become (m+2)^2 matrix multiplies:
#   M[k] = U[k] @ V[k],  U = G g G^T: ((m+2)^2, F, C),  V = B^T d B: ((m+2)^2, C, tiles),  M: ((m+2)^2, F, tiles).
# m = 2 (F(2x2, 3x3), the matrices below on the points 0, 1, -1, infinity): 16 products per 4 outputs, 2.25x
# fewer than im2col. m = 4 (on 0, 1, -1, 2, -2, infinity): 36 per 16, 4x fewer, for larger transforms and a
# little more float32 rounding (their entries reach 8 and 1/24). The CPU kernels run both (functional/conv.py,
# ``winograd_tile``, says which where).
WINOGRAD = {   # m: (G (m+2, 3), B^T (m+2, m+2), A^T (m, m+2))
    2: (((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0)),
        ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1)),
        ((1, 1, 1, 0), (0, 1, -1, -1))),
    4: (((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6), (1 / 24, 1 / 12, 1 / 6),
         (1 / 24, -1 / 12, 1 / 6), (0, 0, 1)),
        ((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0), (0, -2, -1, 2, 1, 0),
         (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1)),
        ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1))),
}


def _winograd_matrices(tile, xp, dtype):
    if tile not in WINOGRAD:
        raise ValueError(f"Winograd: output tiles of {tile}x{tile} are not offered; expected one of {sorted(WINOGRAD)}")
    return tuple(xp.asarray(a, dtype=dtype) for a in WINOGRAD[tile])


def winograd_tile_of(u):
    """The m of U ((m+2)^2, F, C) (or of M, V: their first axis has the (m+2)^2 points)."""
    return math.isqrt(u.shape[0]) - 2


def winograd_tile_grid(out_hw, tile):
    """(rows, columns) of m x m output tiles covering an output map (a partial last tile where m does not divide)."""
    return -(-out_hw[0] // tile), -(-out_hw[1] // tile)


def winograd_weights(w, tile):
    """w (F, C, 3, 3) -> U ((m+2)^2, F, C), m = ``tile``: each filter as G g G^T, flattened over its positions."""
    xp = get_array_module(w)
    g = _winograd_matrices(tile, xp, w.dtype)[0]
    u = xp.einsum("ai,fcij,bj->abfc", g, w, g)
    return xp.ascontiguousarray(u.reshape(-1, *w.shape[:2]))


def winograd_input_tiles(x, padding, out_hw, tile):
    """x (N, C, H, W) -> V ((m+2)^2, C, tiles) = B^T d B for every (m+2)x(m+2) input tile d, m = ``tile``,
    tiles in (n, row, column) order.

    x is padded so that the tiles, m apart, cover every output (Ho, Wo not multiples of m: a partial last
    tile, cropped at the end); the tiles overlap by 2, so they are a strided view, no copy.
    """
    xp = get_array_module(x)
    (n, c, h, w), a = x.shape, tile + 2
    th, tw = winograd_tile_grid(out_hw, tile)
    ph, pw = padding
    xpad = xp.zeros((n, c, tile * th + 2, tile * tw + 2), dtype=x.dtype)
    rows, cols = min(h, tile * th + 2 - ph), min(w, tile * tw + 2 - pw)
    xpad[:, :, ph:ph + rows, pw:pw + cols] = x[:, :, :rows, :cols]
    s_n, s_c, s_h, s_w = xpad.strides
    d = xp.lib.stride_tricks.as_strided(xpad, (n, c, th, tw, a, a), (s_n, s_c, tile * s_h, tile * s_w, s_h, s_w))
    bt = _winograd_matrices(tile, xp, x.dtype)[1]
    return xp.einsum("ai,nctuij,bj->abcntu", bt, d, bt).reshape(a * a, c, n * th * tw)


def winograd_output_tiles(m, n, out_hw):
    """M ((m+2)^2, F, tiles) -> y (N, F, Ho, Wo) = A^T M A per m x m output tile, cropped to the map."""
    xp = get_array_module(m)
    tile, (ho, wo) = winograd_tile_of(m), out_hw
    (th, tw), a = winograd_tile_grid(out_hw, tile), tile + 2
    at = _winograd_matrices(tile, xp, m.dtype)[2]
    y = xp.einsum("ia,abfntu,jb->nftiuj", at, m.reshape(a, a, -1, n, th, tw), at)
    return xp.ascontiguousarray(y.reshape(n, -1, tile * th, tile * tw)[:, :, :ho, :wo])


def winograd_conv(x, u, padding, out_hw, bias=None):
    """x (N, C, H, W), U ((m+2)^2, F, C) from ``winograd_weights`` -> y (N, F, Ho, Wo), a 3x3 stride-1
    convolution; U's size says the tile m."""
    tile = winograd_tile_of(u)
    v = winograd_input_tiles(x, padding, out_hw, tile)                                 # ((m+2)^2, C, tiles)
    y = winograd_output_tiles(get_array_module(x).matmul(u, v), x.shape[0], out_hw)    # (m+2)^2 matrix multiplies
    if bias is not None:
        y += bias.reshape(1, -1, 1, 1)
    return y


def winograd_weight_grad(x, gy, padding, tile):
    """dW (F, C, 3, 3) of a 3x3 stride-1 convolution, by Winograd's transforms run backwards (m = ``tile``).

    The forward is y_tile = A^T M A with M[k] = U[k] @ V[k] and U = G w G^T, all linear, so (Lavin & Gray)
    dM = A dY A^T per m x m output tile (dY zero past the edge), dU[k] = dM[k] @ V[k]^T summed over the
    tiles, and dW = G^T dU G: (m+2)^2 products of (F, tiles) @ (tiles, C) instead of im2col's (F, N*Ho*Wo) @
    (N*Ho*Wo, 9C), 2.25x (m = 2) or 4x (m = 4) fewer multiplies.
    """
    xp = get_array_module(x)
    (n, f, ho, wo), c, a = gy.shape, x.shape[1], tile + 2
    th, tw = winograd_tile_grid((ho, wo), tile)
    gpad = xp.zeros((n, f, tile * th, tile * tw), dtype=gy.dtype)
    gpad[:, :, :ho, :wo] = gy
    tiles = gpad.reshape(n, f, th, tile, tw, tile)                                     # (n, f, row, i, column, j)
    g, _, at = _winograd_matrices(tile, xp, gy.dtype)
    dm = xp.einsum("ai,nfuavb,bj->ijfnuv", at, tiles, at).reshape(a * a, f, n * th * tw)  # A dY A^T per tile
    du = xp.matmul(dm, winograd_input_tiles(x, padding, (ho, wo), tile).transpose(0, 2, 1))  # ((m+2)^2, F, C)
    return xp.einsum("ia,ijfc,jb->fcab", g, du.reshape(a, a, f, c), g)                  # G^T dU G
