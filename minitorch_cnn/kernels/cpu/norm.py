"""Numba kernels for training-mode batch norm: one thread per channel, statistics in float64.

The NumPy version makes five or six passes over the activations with a
temporary array each; these make three (mean, variance, output) over one
channel at a time, which stays in cache between passes. Nothing but the
output is written: the backward recomputes x_hat from x, the mean and inv_std
instead of keeping an activation-sized x_hat alive until then.

With ``relu=True`` the output pass clamps what it writes (ReLU, ReLU6) and the
backward masks the incoming gradient as it reads it, from the clamped output z:
the activation costs no pass and no array of its own in either direction.
"""
import numpy as np
from numba import prange

from .jit import REASSOC, kernel


@kernel(fastmath=REASSOC)   # the channel sums split over vector lanes (about 3x faster than in order)
def _forward(x, gamma, beta, eps, y, mean, var, inv_std, low, high):
    n, c, m = x.shape
    count = n * m
    for ch in prange(c):
        total = 0.0
        for b in range(n):
            for i in range(m):
                total += x[b, ch, i]
        mu = total / count
        sq = 0.0   # a second pass around the mean: no cancellation, unlike E[x^2] - E[x]^2
        for b in range(n):
            for i in range(m):
                d = x[b, ch, i] - mu
                sq += d * d
        v = sq / count
        s = 1.0 / np.sqrt(v + eps)
        mean[ch], var[ch], inv_std[ch] = mu, v, s
        # Read back in x's dtype, so that y = (x - mu) * (s * gamma) + beta runs at float32 vector width.
        mu_t, scale, shift = mean[ch], inv_std[ch] * gamma[ch], beta[ch]
        for b in range(n):
            for i in range(m):
                # clamped to [low, high]: [-inf, inf] (no activation: y itself), [0, inf] ReLU, [0, 6] ReLU6;
                # a select, as cpu/elementwise.py's clamp, so that it vectorises and NaN stays NaN
                t = (x[b, ch, i] - mu_t) * scale + shift
                y[b, ch, i] = min(max(t, low), high) if t == t else t


def _bounds(dtype, relu, high):
    """(low, high) of the forward's clamp in x's dtype (a float64 bound would widen every float32 compare)."""
    return dtype.type(0 if relu else -np.inf), dtype.type(np.inf if high is None or not relu else high)


def batch_norm_forward(x, gamma, beta, eps, relu=False, high=None):
    """x (N, C, *) -> (y, mean, var, inv_std), as ``reference.batch_norm_forward`` (relu: y clamped)."""
    x3 = np.ascontiguousarray(x).reshape(x.shape[0], x.shape[1], -1)
    y = np.empty_like(x3)
    stats = [np.empty(x.shape[1], x.dtype) for _ in range(3)]
    gamma, beta = (np.ascontiguousarray(a, dtype=x.dtype) for a in (gamma, beta))
    # work: each value is read three times (mean, variance, output) with float64 sums, so threads pay from a
    # quarter of an element-wise loop's size (64 x 1024 x 2 x 2: 352 us threaded against 600 us serial)
    _forward(4 * x3.size, x3, gamma, beta, eps, y, *stats, *_bounds(x3.dtype, relu, high))
    return (y.reshape(x.shape), *stats)


@kernel(fastmath=REASSOC)
def _backward(gy, x, z, gamma, mean, inv_std, gx, ggamma, gbeta, masked, high, bounded):
    n, c, m = gy.shape
    count = n * m
    for ch in prange(c):
        mu, s = mean[ch], inv_std[ch]
        sum_g, sum_gd = 0.0, 0.0          # sum gy and sum gy * (x - mu) = sum gy * x_hat / inv_std
        for b in range(n):
            for i in range(m):
                v = z[b, ch, i]           # masked: the clamp's derivative, 1 where 0 < z < high (selects vectorise)
                g = gy[b, ch, i] if (not masked) | ((v > 0) & ((v < high) | (not bounded))) else 0
                sum_g += g
                sum_gd += g * (x[b, ch, i] - mu)
        sum_gx = sum_gd * s
        gbeta[ch], ggamma[ch] = sum_g, sum_gx
        # dx = gamma * s * (gy - sum_g / M - x_hat * sum_gx / M) with x_hat = (x - mu) * s, as one multiply-add
        # per element: dx = a * gy - b * (x - mu) - k
        a = gamma[ch] * s
        bx, k = a * s * sum_gx / count, a * sum_g / count
        for b in range(n):
            for i in range(m):
                v = z[b, ch, i]
                g = gy[b, ch, i] if (not masked) | ((v > 0) & ((v < high) | (not bounded))) else 0
                gx[b, ch, i] = a * g - bx * (x[b, ch, i] - mu) - k


def batch_norm_backward(gy, x, gamma, mean, inv_std, z=None, high=None):
    """gy (N, C, *) -> (dx, dgamma, dbeta), as ``reference.batch_norm_backward`` (z: gy masked by the clamp's
    derivative first)."""
    shape = gy.shape
    gy3 = np.ascontiguousarray(gy).reshape(shape[0], shape[1], -1)
    x3 = np.ascontiguousarray(x).reshape(gy3.shape)
    z3 = gy3 if z is None else np.ascontiguousarray(z, dtype=gy3.dtype).reshape(gy3.shape)   # gy3: not read
    gx = np.empty_like(gy3)
    ggamma, gbeta = np.empty(shape[1], gy.dtype), np.empty(shape[1], gy.dtype)
    bound = gy3.dtype.type(np.inf if high is None else high)
    _backward(4 * gy3.size, gy3, x3, z3, gamma, mean, inv_std, gx, ggamma, gbeta, z is not None, bound,
              high is not None)   # work as the forward's: 532 against 766 us
    return gx.reshape(shape), ggamma, gbeta
