/* Training-mode batch norm, forward and backward: one block per channel, statistics in double.
 *
 * Kernels only, no host code, no #include: launch.source() puts common.cuh (GRID_STRIDE, window_of,
 * block_sum) in front of this text; NVRTC, nvcc and the g++ emulator compile the result as one unit.
 * x is viewed as (N, C, M) with M = H*W (or 1). Launch with blockDim.x <= REDUCE_THREADS; any grid
 * (each block takes channels blockIdx.x, blockIdx.x + gridDim.x, ...). Sums accumulate in double
 * and are combined by a shared-memory tree, like the CPU kernel's float64 accumulators.
 *
 * A channel's N*M values are walked by FOR_CHANNEL: thread t starts at value t (image t / M, pixel t % M,
 * the block's only divisions) and steps blockDim.x values at a time by adding, so no value costs a 64-bit
 * division and modulo (they did: ~70 instructions each). Neighbouring threads read neighbouring pixels.
 */
/* Advance (image b, pixel i) by step_b images and step_i pixels, carrying a pixel overflow into the image. */
static __device__ void next_value(int& b, int& i, int step_b, int step_i, int m) {
    i += step_i;
    b += step_b;
    if (i >= m) { i -= m; b += 1; }
}
/* for each value of channel ch this thread takes: k = its index in the (N, C, M) array (the inner loop runs
   once: it only declares k for the body) */
#define FOR_CHANNEL(k) \
    for (int b_ = threadIdx.x / m, i_ = threadIdx.x % m; b_ < n; next_value(b_, i_, step_b, step_i, m)) \
        for (long long k = ((long long)b_ * c + ch) * m + i_, once_ = 1; once_; once_ = 0)
/* gy[k] as a double, or 0 where the clamp's derivative is (masked: outside 0 < z[k] < high) */
#define GRAD(k) ((!masked || (z[k] > 0 && (!bounded || z[k] < high))) ? (double)gy[k] : 0.0)
#define NORM_KERNELS(T, S) \
/* mean, var (biased) and inv_std = 1/sqrt(var + eps) per channel; y = (x - mean) * inv_std * gamma + beta. \
   The variance is a second pass around the mean: no cancellation, unlike E[x^2] - E[x]^2. \
   track != 0: the running statistics too, in T as functional/norm.py's host update (PyTorch's rule): \
   running_mean = (1-momentum)*running_mean + momentum*mean, running_var likewise with the unbiased var. \
   track == 0: the running_* pointers are not touched (pass any arrays). count_batch != 0: one more batch \
   in batches_inout[0] (the module's num_batches_tracked), by the first thread of the grid. \
   y is clamped to [low, high] as it is written: [-inf, inf] (no activation), [0, inf] ReLU, [0, 6] ReLU6; \
   NaN stays NaN (a select, not fmin/fmax, which would drop it). */ \
extern "C" __global__ void batch_norm_forward_##S(const T* __restrict__ x, const T* __restrict__ gamma, \
                                                  const T* __restrict__ beta, double eps, T* __restrict__ y, \
                                                  T* __restrict__ mean, T* __restrict__ var, T* __restrict__ inv_std, \
                                                  T* __restrict__ running_mean_inout, \
                                                  T* __restrict__ running_var_inout, double momentum, int track, \
                                                  long long* __restrict__ batches_inout, int count_batch, \
                                                  double low, double high, int n, int c, int m) { \
    __shared__ double buf[REDUCE_THREADS + FAN]; \
    long long count = (long long)n * m; \
    const int step_b = blockDim.x / m, step_i = blockDim.x % m; \
    if (count_batch && blockIdx.x == 0 && threadIdx.x == 0) batches_inout[0] += 1; \
    for (int ch = blockIdx.x; ch < c; ch += gridDim.x) { \
        double total = 0.0; \
        FOR_CHANNEL(k) total += (double)x[k]; \
        double mu = block_sum(total, buf) / (double)count; \
        double sq = 0.0; \
        FOR_CHANNEL(k) { \
            double d = (double)x[k] - mu; \
            sq += d * d; \
        } \
        double v = block_sum(sq, buf) / (double)count; \
        double s = 1.0 / sqrt(v + eps); \
        if (threadIdx.x == 0) { \
            mean[ch] = (T)mu; var[ch] = (T)v; inv_std[ch] = (T)s; \
            if (track) { \
                const T keep = (T)(1.0 - momentum), mo = (T)momentum; \
                const T unbias = (T)((double)count / (double)(count - 1)); \
                running_mean_inout[ch] = keep * running_mean_inout[ch] + mo * (T)mu; \
                running_var_inout[ch] = keep * running_var_inout[ch] + (mo * (T)v) * unbias; \
            } \
        } \
        double g = (double)gamma[ch], bt = (double)beta[ch]; \
        FOR_CHANNEL(k) { \
            double t = ((double)x[k] - mu) * s * g + bt; \
            y[k] = (T)(t < low ? low : (t > high ? high : t)); \
        } \
    } \
} \
/* x_hat = (x - mean) * inv_std, recomputed; dbeta = sum gy, dgamma = sum gy*x_hat; with g = gy*gamma: \
   dx = inv_std * (g - mean(g) - x_hat * mean(g*x_hat)). masked != 0: gy is the gradient of a clamped output z, \
   and counts only where 0 < z < high (no upper bound when bounded == 0); masked == 0: z is not read. */ \
extern "C" __global__ void batch_norm_backward_##S(const T* __restrict__ gy, const T* __restrict__ x, \
                                                   const T* __restrict__ gamma, const T* __restrict__ mean, \
                                                   const T* __restrict__ inv_std, const T* __restrict__ z, \
                                                   int masked, T high, int bounded, \
                                                   T* __restrict__ gx, T* __restrict__ ggamma, T* __restrict__ gbeta, \
                                                   int n, int c, int m) { \
    __shared__ double buf[REDUCE_THREADS + FAN]; \
    long long count = (long long)n * m; \
    const int step_b = blockDim.x / m, step_i = blockDim.x % m; \
    for (int ch = blockIdx.x; ch < c; ch += gridDim.x) { \
        double mu = (double)mean[ch], s = (double)inv_std[ch]; \
        double sum_g = 0.0, sum_gx = 0.0; \
        FOR_CHANNEL(k) { \
            double d = GRAD(k); \
            sum_g += d; \
            sum_gx += d * ((double)x[k] - mu) * s; \
        } \
        sum_g = block_sum(sum_g, buf); \
        sum_gx = block_sum(sum_gx, buf); \
        if (threadIdx.x == 0) { gbeta[ch] = (T)sum_g; ggamma[ch] = (T)sum_gx; } \
        double g = (double)gamma[ch]; \
        double mg = sum_g * g / (double)count, mgx = sum_gx * g / (double)count; \
        FOR_CHANNEL(k) gx[k] = (T)(s * (GRAD(k) * g - mg - ((double)x[k] - mu) * s * mgx)); \
    } \
}

NORM_KERNELS(float, f32)
NORM_KERNELS(double, f64)
