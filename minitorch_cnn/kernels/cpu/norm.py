"""Numba kernels for training-mode batch norm: one thread per channel, statistics in float64.

The NumPy version makes five or six passes over the activations with a
temporary array each; these make two (statistics, then the output).
"""
import numpy as np
from numba import prange

from .jit import kernel


@kernel
def _forward(x, gamma, beta, eps, y, x_hat, mean, var, inv_std):
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
        g, bt = gamma[ch], beta[ch]
        for b in range(n):
            for i in range(m):
                h = (x[b, ch, i] - mu) * s
                x_hat[b, ch, i] = h
                y[b, ch, i] = h * g + bt


def batch_norm_forward(x, gamma, beta, eps):
    """x (N, C, *) -> (y, x_hat, mean, var, inv_std), as ``reference.batch_norm_forward``."""
    x3 = np.ascontiguousarray(x).reshape(x.shape[0], x.shape[1], -1)
    y, x_hat = np.empty_like(x3), np.empty_like(x3)
    stats = [np.empty(x.shape[1], x.dtype) for _ in range(3)]
    _forward(x3.size, x3, gamma, beta, eps, y, x_hat, *stats)
    return (y.reshape(x.shape), x_hat.reshape(x.shape), *stats)


@kernel
def _backward(gy, x_hat, gamma, inv_std, gx, ggamma, gbeta):
    n, c, m = gy.shape
    count = n * m
    for ch in prange(c):
        sum_g, sum_gx = 0.0, 0.0
        for b in range(n):
            for i in range(m):
                sum_g += gy[b, ch, i]
                sum_gx += gy[b, ch, i] * x_hat[b, ch, i]
        gbeta[ch], ggamma[ch] = sum_g, sum_gx
        g = gamma[ch]
        a, mg, mgx = g * inv_std[ch], sum_g * g / count, sum_gx * g / count
        s = inv_std[ch]
        for b in range(n):
            for i in range(m):
                gx[b, ch, i] = a * gy[b, ch, i] - s * (mg + x_hat[b, ch, i] * mgx)


def batch_norm_backward(gy, x_hat, gamma, inv_std):
    """gy (N, C, *) -> (dx, dgamma, dbeta), as ``reference.batch_norm_backward``."""
    shape = gy.shape
    gy3 = np.ascontiguousarray(gy).reshape(shape[0], shape[1], -1)
    gx = np.empty_like(gy3)
    ggamma, gbeta = np.empty(shape[1], gy.dtype), np.empty(shape[1], gy.dtype)
    _backward(gy3.size, gy3, x_hat.reshape(gy3.shape), gamma, inv_std, gx, ggamma, gbeta)
    return gx.reshape(shape), ggamma, gbeta
