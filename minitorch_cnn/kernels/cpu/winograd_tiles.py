"""The transforms of Winograd's F(2x2, 3x3) and F(4x4, 3x3) in Numba, tile by tile (the math: ``kernels/reference.py``;
the chunks, products and threads around them: ``winograd.py``).

Each kernel works on whole rows of tiles (tile-rows ``row0 ...`` of a chunk), so that its first pass, over the
rows of the input (or output) map, runs along contiguous rows; the second combines each tile's columns
(2 or 4 apart). The filter transforms are one pair for both sizes, with G given as an array.
"""
import numpy as np
from numba import njit, prange

from .jit import kernel

# F(4x4)'s constants as float32, exact in float32 and float64: with Python's 4 or 4.0 Numba would compute a
# float32 kernel's every combination in float64 and convert back (measured 2x slower).
TWO, FOUR, FIVE, EIGHT = (np.float32(k) for k in (2, 4, 5, 8))


@njit(cache=True, nogil=True, inline="always")
def _load_rows(x, b, c, y0, d, pw):
    """d[a, pw:] = row y0 + a of plane x[b, c] for each row a of d, zeros for rows outside the plane (d's other
    columns keep the zeros they were made with). Element loops, not slices: rows are short (4-34 pixels), and
    a slice's set-up cost more than the copy on small maps."""
    h, cols = x.shape[2], min(x.shape[3], d.shape[1] - pw)
    for a in range(d.shape[0]):
        if 0 <= y0 + a < h:
            src = x[b, c, y0 + a]
            for j in range(cols):
                d[a, pw + j] = src[j]
        else:
            for j in range(d.shape[1]):
                d[a, j] = 0


@njit(cache=True, nogil=True, inline="always")
def _store_rows(out, y, b, c, y0):
    """Row y0 + a of plane y[b, c] = out[a, :W] for each row a of out that lies on the plane (``_load_rows``'s
    inverse: a partial last tile's rows and columns past the map are dropped)."""
    h, w = y.shape[2], y.shape[3]
    for a in range(min(out.shape[0], h - y0)):
        dst = y[b, c, y0 + a]
        for j in range(w):
            dst[j] = out[a, j]


@kernel
def _f2_input(x, v, row0, th, tw, ph, pw):
    """F(2x2): V[:, :, tiles of tile-rows row0 ...] = B^T d B for every 4x4 tile d (2 apart) of every channel."""
    c, wp = x.shape[1], 2 * tw + 2
    rows_here = v.shape[2] // tw
    for ci in prange(c):
        d = np.zeros((4, wp), x.dtype)      # the 4 (zero-padded) input rows under one row of tiles
        t = np.empty((4, wp), x.dtype)      # B^T d: combinations of those rows
        b, ty = row0 // th, row0 % th       # image and tile row, stepped below (no division per row)
        for r in range(rows_here):
            _load_rows(x, b, ci, 2 * ty - ph, d, pw)
            for k in range(wp):
                t[0, k] = d[0, k] - d[2, k]
                t[1, k] = d[1, k] + d[2, k]
                t[2, k] = d[2, k] - d[1, k]
                t[3, k] = d[1, k] - d[3, k]
            base = r * tw
            for i in range(4):   # (B^T d) B: the same combinations along the row, 2 pixels per tile
                t_row, out = t[i], v[4 * i:4 * i + 4, ci]
                for tx in range(tw):
                    k, p = np.uintp(2 * tx), np.uintp(base + tx)
                    out[0, p] = t_row[k] - t_row[k + 2]
                    out[1, p] = t_row[k + 1] + t_row[k + 2]
                    out[2, p] = t_row[k + 2] - t_row[k + 1]
                    out[3, p] = t_row[k + 1] - t_row[k + 3]
            ty += 1
            if ty == th:
                b, ty = b + 1, 0


@kernel
def _f2_output(m, y, bias, row0, th, tw):
    """F(2x2): y[tiles of tile-rows row0 ...] = A^T M A for every 2x2 output tile, plus the bias (F,)."""
    f = y.shape[1]
    rows_here = m.shape[2] // tw
    for fi in prange(f):
        s = np.empty((2, 4, tw), m.dtype)   # A^T m for one row of tiles
        out = np.empty((2, 2 * tw), m.dtype)
        bv = bias[fi]
        b, ty = row0 // th, row0 % th
        for r in range(rows_here):
            base = r * tw
            for k in range(4):
                m0, m1, m2, m3 = m[k, fi], m[4 + k, fi], m[8 + k, fi], m[12 + k, fi]
                for tx in range(tw):
                    p = np.uintp(base + tx)
                    s[0, k, tx] = m0[p] + m1[p] + m2[p]
                    s[1, k, tx] = m1[p] - m2[p] - m3[p]
            for i in range(2):
                for tx in range(tw):
                    out[i, 2 * tx] = s[i, 0, tx] + s[i, 1, tx] + s[i, 2, tx] + bv
                    out[i, 2 * tx + 1] = s[i, 1, tx] - s[i, 2, tx] - s[i, 3, tx] + bv
            _store_rows(out, y, b, fi, 2 * ty)
            ty += 1
            if ty == th:
                b, ty = b + 1, 0


@kernel
def _f2_output_grad(gy, dm, row0, th, tw):
    """F(2x2): dM[:, :, tiles of tile-rows row0 ...] = A dY A^T for every 2x2 tile dY of gy (_f2_output's transpose)."""
    f = gy.shape[1]
    rows_here = dm.shape[2] // tw
    for fi in prange(f):
        g = np.zeros((2, 2 * tw), gy.dtype)   # the 2 rows of dY over one row of tiles; zero past the edge
        s = np.empty((4, 2 * tw), gy.dtype)   # A dY: rows g0, g0 + g1, g0 - g1, -g1
        b, ty = row0 // th, row0 % th
        for r in range(rows_here):
            _load_rows(gy, b, fi, 2 * ty, g, 0)
            for k in range(2 * tw):
                s[0, k], s[1, k] = g[0, k], g[0, k] + g[1, k]
                s[2, k], s[3, k] = g[0, k] - g[1, k], -g[1, k]
            base = r * tw
            for i in range(4):   # (A dY) A^T: the same combinations of each tile's 2 columns
                s_row, out = s[i], dm[4 * i:4 * i + 4, fi]
                for tx in range(tw):
                    k, p = np.uintp(2 * tx), np.uintp(base + tx)
                    out[0, p] = s_row[k]
                    out[1, p] = s_row[k] + s_row[k + 1]
                    out[2, p] = s_row[k] - s_row[k + 1]
                    out[3, p] = -s_row[k + 1]
            ty += 1
            if ty == th:
                b, ty = b + 1, 0


@kernel
def _f4_input(x, v, row0, th, tw, ph, pw):
    """F(4x4): V[:, :, tiles of tile-rows row0 ...] = B^T d B for every 6x6 tile d (4 apart) of every channel."""
    c, wp = x.shape[1], 4 * tw + 2
    rows_here = v.shape[2] // tw
    for ci in prange(c):
        d = np.zeros((6, wp), x.dtype)      # the 6 (zero-padded) input rows under one row of tiles
        t = np.empty((6, wp), x.dtype)      # B^T d: combinations of those rows
        b, ty = row0 // th, row0 % th       # image and tile row, stepped below (no division per row)
        for r in range(rows_here):
            _load_rows(x, b, ci, 4 * ty - ph, d, pw)
            for k in range(wp):             # B^T's rows, sharing their common sums
                d1, d2, d3, d4 = d[1, k], d[2, k], d[3, k], d[4, k]
                p, q, s, e = d4 - FOUR * d2, d3 - FOUR * d1, d4 - d2, TWO * (d3 - d1)
                t[0, k] = FOUR * d[0, k] - FIVE * d2 + d4
                t[1, k], t[2, k] = p + q, p - q
                t[3, k], t[4, k] = s + e, s - e
                t[5, k] = FOUR * d1 - FIVE * d3 + d[5, k]
            base = r * tw
            for i in range(6):   # (B^T d) B: the same combinations along the row, 4 pixels per tile
                t_row, out = t[i], v[6 * i:6 * i + 6, ci]
                for tx in range(tw):
                    k, o = np.uintp(4 * tx), np.uintp(base + tx)
                    d1, d2, d3, d4 = t_row[k + 1], t_row[k + 2], t_row[k + 3], t_row[k + 4]
                    p, q, s, e = d4 - FOUR * d2, d3 - FOUR * d1, d4 - d2, TWO * (d3 - d1)
                    out[0, o] = FOUR * t_row[k] - FIVE * d2 + d4
                    out[1, o], out[2, o] = p + q, p - q
                    out[3, o], out[4, o] = s + e, s - e
                    out[5, o] = FOUR * d1 - FIVE * d3 + t_row[k + 5]
            ty += 1
            if ty == th:
                b, ty = b + 1, 0


@kernel
def _f4_output(m, y, bias, row0, th, tw):
    """F(4x4): y[tiles of tile-rows row0 ...] = A^T M A for every 4x4 output tile, plus the bias (F,)."""
    f = y.shape[1]
    rows_here = m.shape[2] // tw
    for fi in prange(f):
        s = np.empty((4, 6, tw), m.dtype)   # A^T m for one row of tiles
        out = np.empty((4, 4 * tw), m.dtype)
        bv = bias[fi]
        b, ty = row0 // th, row0 % th
        for r in range(rows_here):
            base = r * tw
            for k in range(6):              # A^T's rows: m0 + (m1 + m2) + (m3 + m4), ..., (m1 - m2) + 8 (m3 - m4) + m5
                m0, m1, m2 = m[k, fi], m[6 + k, fi], m[12 + k, fi]
                m3, m4, m5 = m[18 + k, fi], m[24 + k, fi], m[30 + k, fi]
                for tx in range(tw):
                    p = np.uintp(base + tx)
                    a1, b1, a2, b2 = m1[p] + m2[p], m1[p] - m2[p], m3[p] + m4[p], m3[p] - m4[p]
                    s[0, k, tx], s[1, k, tx] = m0[p] + a1 + a2, b1 + TWO * b2
                    s[2, k, tx], s[3, k, tx] = a1 + FOUR * a2, b1 + EIGHT * b2 + m5[p]
            for i in range(4):
                row = s[i]
                for tx in range(tw):
                    a1, b1 = row[1, tx] + row[2, tx], row[1, tx] - row[2, tx]
                    a2, b2 = row[3, tx] + row[4, tx], row[3, tx] - row[4, tx]
                    out[i, 4 * tx] = row[0, tx] + a1 + a2 + bv
                    out[i, 4 * tx + 1] = b1 + TWO * b2 + bv
                    out[i, 4 * tx + 2] = a1 + FOUR * a2 + bv
                    out[i, 4 * tx + 3] = b1 + EIGHT * b2 + row[5, tx] + bv
            _store_rows(out, y, b, fi, 4 * ty)
            ty += 1
            if ty == th:
                b, ty = b + 1, 0


@kernel
def _f4_output_grad(gy, dm, row0, th, tw):
    """F(4x4): dM[:, :, tiles of tile-rows row0 ...] = A dY A^T for every 4x4 tile dY of gy (_f4_output's transpose)."""
    f = gy.shape[1]
    rows_here = dm.shape[2] // tw
    for fi in prange(f):
        g = np.zeros((4, 4 * tw), gy.dtype)   # the 4 rows of dY over one row of tiles; zero past the edge
        s = np.empty((6, 4 * tw), gy.dtype)   # A dY: rows g0, g0 + g1 + g2 + g3, g0 - g1 + g2 - g3,
        b, ty = row0 // th, row0 % th         # g0 + 2 g1 + 4 g2 + 8 g3, g0 - 2 g1 + 4 g2 - 8 g3, g3
        for r in range(rows_here):
            _load_rows(gy, b, fi, 4 * ty, g, 0)
            for k in range(4 * tw):
                e1, o1 = g[0, k] + g[2, k], g[1, k] + g[3, k]
                e2, o2 = g[0, k] + FOUR * g[2, k], TWO * g[1, k] + EIGHT * g[3, k]
                s[0, k], s[5, k] = g[0, k], g[3, k]
                s[1, k], s[2, k], s[3, k], s[4, k] = e1 + o1, e1 - o1, e2 + o2, e2 - o2
            base = r * tw
            for i in range(6):   # (A dY) A^T: the same combinations of each tile's 4 columns
                s_row, out = s[i], dm[6 * i:6 * i + 6, fi]
                for tx in range(tw):
                    k, p = np.uintp(4 * tx), np.uintp(base + tx)
                    e1, o1 = s_row[k] + s_row[k + 2], s_row[k + 1] + s_row[k + 3]
                    e2, o2 = s_row[k] + FOUR * s_row[k + 2], TWO * s_row[k + 1] + EIGHT * s_row[k + 3]
                    out[0, p], out[5, p] = s_row[k], s_row[k + 3]
                    out[1, p], out[2, p], out[3, p], out[4, p] = e1 + o1, e1 - o1, e2 + o2, e2 - o2
            ty += 1
            if ty == th:
                b, ty = b + 1, 0


@kernel
def weights(w9, g, u):
    """U (a*a, F, C) = G g G^T per 3x3 filter g, a = m + 2: w9 (F, 9, C), the filters' taps each a row over
    the input channels, so that every loop below runs along C; G (a, 3) in the arrays' dtype."""
    f, c, a = w9.shape[0], w9.shape[2], g.shape[0]
    for fi in prange(f):
        t = np.empty((a, 3, c), u.dtype)                 # G g, all input channels at once
        for i in range(a):
            for j in range(3):
                for ci in range(c):
                    t[i, j, ci] = g[i, 0] * w9[fi, j, ci] + g[i, 1] * w9[fi, 3 + j, ci] + g[i, 2] * w9[fi, 6 + j, ci]
        for i in range(a):                               # (G g) G^T
            for k in range(a):
                out = u[a * i + k, fi]
                for ci in range(c):
                    out[ci] = t[i, 0, ci] * g[k, 0] + t[i, 1, ci] * g[k, 1] + t[i, 2, ci] * g[k, 2]


@kernel
def weights_backward(du, g, gw9):
    """gw9 (F, 9, C) = G^T dU G per filter, each tap a row over the input channels: ``weights``, transposed."""
    f, c, a = gw9.shape[0], gw9.shape[2], g.shape[0]
    for fi in prange(f):
        t = np.zeros((3, a, c), gw9.dtype)               # G^T dU, all input channels at once
        for i in range(3):
            for k in range(a):
                for r in range(a):
                    coef, src, row = g[r, i], du[a * r + k, fi], t[i, k]
                    for ci in range(c):
                        row[ci] += coef * src[ci]
        for i in range(3):                               # (G^T dU) G
            for j in range(3):
                out = gw9[fi, 3 * i + j]
                out[:] = 0
                for k in range(a):
                    coef, src = g[k, j], t[i, k]
                    for ci in range(c):
                        out[ci] += coef * src[ci]


# Per output tile m: (input transform, output transform, output-gradient transform).
TRANSFORMS = {2: (_f2_input, _f2_output, _f2_output_grad), 4: (_f4_input, _f4_output, _f4_output_grad)}
