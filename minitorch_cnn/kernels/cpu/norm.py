"""Numba kernels for training-mode batch norm: one thread per channel, statistics in float64.

The NumPy version makes five or six passes over the activations with a
temporary array each; these make three (mean, variance, output) over one
channel at a time, which stays in cache between passes. Nothing but the
output is written: the backward recomputes x_hat from x, the mean and inv_std
instead of keeping an activation-sized x_hat alive until then.
"""
import numpy as np
from numba import prange

from .jit import REASSOC, kernel


@kernel(fastmath=REASSOC)   # the channel sums split over vector lanes (about 3x faster than in order)
def _forward(x, gamma, beta, eps, y, mean, var, inv_std):
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
                y[b, ch, i] = (x[b, ch, i] - mu_t) * scale + shift


def batch_norm_forward(x, gamma, beta, eps):
    """x (N, C, *) -> (y, mean, var, inv_std), as ``reference.batch_norm_forward``."""
    x3 = np.ascontiguousarray(x).reshape(x.shape[0], x.shape[1], -1)
    y = np.empty_like(x3)
    stats = [np.empty(x.shape[1], x.dtype) for _ in range(3)]
    gamma, beta = (np.ascontiguousarray(a, dtype=x.dtype) for a in (gamma, beta))
    # work: each value is read three times (mean, variance, output) with float64 sums, so threads pay from a
    # quarter of an element-wise loop's size (64 x 1024 x 2 x 2: 352 us threaded against 600 us serial)
    _forward(4 * x3.size, x3, gamma, beta, eps, y, *stats)
    return (y.reshape(x.shape), *stats)


@kernel(fastmath=REASSOC)
def _backward(gy, x, gamma, mean, inv_std, gx, ggamma, gbeta):
    n, c, m = gy.shape
    count = n * m
    for ch in prange(c):
        mu, s = mean[ch], inv_std[ch]
        sum_g, sum_gd = 0.0, 0.0          # sum gy and sum gy * (x - mu) = sum gy * x_hat / inv_std
        for b in range(n):
            for i in range(m):
                g = gy[b, ch, i]
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
                gx[b, ch, i] = a * gy[b, ch, i] - bx * (x[b, ch, i] - mu) - k


def batch_norm_backward(gy, x, gamma, mean, inv_std):
    """gy (N, C, *) -> (dx, dgamma, dbeta), as ``reference.batch_norm_backward``."""
    shape = gy.shape
    gy3 = np.ascontiguousarray(gy).reshape(shape[0], shape[1], -1)
    x3 = np.ascontiguousarray(x).reshape(gy3.shape)
    gx = np.empty_like(gy3)
    ggamma, gbeta = np.empty(shape[1], gy.dtype), np.empty(shape[1], gy.dtype)
    _backward(4 * gy3.size, gy3, x3, gamma, mean, inv_std, gx, ggamma, gbeta)   # as the forward: 532 against 766 us
    return gx.reshape(shape), ggamma, gbeta
