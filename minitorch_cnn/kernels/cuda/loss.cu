/* Softmax cross-entropy with integer targets, forward and gradient in one launch.
 *
 * Kernels only, no host code, no #include: launch.source() puts common.cuh in front of this text.
 * functional/loss.py's NumPy form takes ~20 array operations (log-softmax, the gather, the smoothed target,
 * exp, the difference), each a launch on a GPU; the gradient dloss/dz = p - q is known once p is, so this
 * kernel writes it in the forward pass and the backward only scales it. One thread per row (a row is one
 * sample's K logits), a grid-stride loop over rows, sums in double.
 * With p = softmax(z), q = (1 - eps) * onehot(t) + eps / K:
 *   loss[r] = (1 - eps) * (lse - z[t]) - eps * mean_j(z[j] - lse),   lse = log sum_j exp(z[j])
 *   grad[r, j] = scale * (p[j] - q[j])
 * A NaN anywhere in a row makes its loss and gradient NaN (as NumPy's max and exp do).
 */
#define LOSS_KERNELS(T, S) \
extern "C" __global__ void cross_entropy_forward_##S(const T* __restrict__ z, const long long* __restrict__ target, \
                                                     T* __restrict__ loss, T* __restrict__ grad, int n, int k, \
                                                     double eps, double scale) { \
    GRID_STRIDE(row, n) { \
        const T* zr = z + row * (long long)k; \
        T* gr = grad + row * (long long)k; \
        double top = (double)zr[0]; \
        for (int j = 1; j < k; ++j) { double v = (double)zr[j]; if (v > top || v != v) top = v; } \
        double total = 0.0, sum_z = 0.0; \
        for (int j = 0; j < k; ++j) { total += exp((double)zr[j] - top); sum_z += (double)zr[j]; } \
        double lse = top + log(total); \
        long long t = target[row]; \
        double nll = lse - (double)zr[t]; \
        loss[row] = (T)(eps != 0.0 ? (1.0 - eps) * nll - eps * (sum_z / k - lse) : nll); \
        for (int j = 0; j < k; ++j) { \
            double q = eps / k + (j == t ? 1.0 - eps : 0.0); \
            gr[j] = (T)(scale * (exp((double)zr[j] - lse) - q)); \
        } \
    } \
}

LOSS_KERNELS(float, f32)
LOSS_KERNELS(double, f64)
