/* Convolution kernels: im2col, col2im (a gather), depthwise forward and backward.
 *
 * Kernels only, no host code, no #include: launch.source("conv") puts common.cuh (GRID_STRIDE,
 * window_of, block_sum) in front of this text, and CuPy compiles the result with NVRTC, the host
 * emulator (emulator.py) with g++. Every kernel exists as
 * NAME_f32 and NAME_f64, stamped out by the CONV_KERNELS macro below.
 * Shapes and names as in kernels/reference.py: x (N, C, H, W), cols (C*kh*kw, N*Ho*Wo).
 * Launch: any grid with 1-D blocks; elementwise kernels walk a grid-stride loop, the
 * depthwise weight gradient needs blockDim.x <= REDUCE_THREADS; it takes one block per tap.
 */
#define CONV_KERNELS(T, S) \
/* cols[(ci*kh + i)*kw + j, (b*Ho + oy)*Wo + ox] = x[b, ci, oy*sh + i*dh - ph, ox*sw + j*dw - pw] (0 outside). \
   One thread per column (an output pixel), looping over the rows (channel, tap): the column's position is \
   decoded once, in 32-bit ints, and neighbouring threads write neighbouring elements of each row (coalesced). \
   Only the offsets into x and cols are 64-bit (the arrays may pass 2^31 elements). \
   Launch: any grid; the grid-stride loop covers the n*ho*wo columns. */ \
extern "C" __global__ void im2col_##S(const T* __restrict__ x, T* __restrict__ cols, int n, int c, int h, int w, \
                                      int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw, \
                                      int ho, int wo) { \
    long long width = (long long)n * ho * wo; \
    GRID_STRIDE(col, width) { \
        int ox = (int)(col % wo), rest = (int)(col / wo); \
        int oy = rest % ho, b = rest / ho; \
        int y0 = oy * sh - ph, x0 = ox * sw - pw; \
        T* out = cols + col; \
        for (int ci = 0; ci < c; ++ci) { \
            const T* plane = x + ((long long)b * c + ci) * h * w; \
            for (int i = 0; i < kh; ++i) { \
                int iy = y0 + i * dh; \
                bool row_in = iy >= 0 && iy < h; \
                for (int j = 0; j < kw; ++j, out += width) { \
                    int ix = x0 + j * dw; \
                    *out = (row_in && ix >= 0 && ix < w) ? plane[(long long)iy * w + ix] : (T)0; \
                } \
            } \
        } \
    } \
} \
/* im2col's adjoint as a gather: each input pixel sums the columns of the windows that hold it, \
   taps in (i, j) order like the reference, so no two threads write one pixel and no atomics. */ \
extern "C" __global__ void col2im_##S(const T* __restrict__ cols, T* __restrict__ dx, int n, int c, int h, int w, \
                                      int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw, \
                                      int ho, int wo) { \
    long long width = (long long)n * ho * wo; \
    GRID_STRIDE(idx, (long long)n * c * h * w) { \
        int ix = (int)(idx % w), iy = (int)((idx / w) % h), ci = (int)((idx / ((long long)w * h)) % c); \
        int b = (int)(idx / ((long long)w * h * c)); \
        T acc = 0; \
        for (int i = 0; i < kh; ++i) { \
            int oy = window_of(iy, i, sh, ph, dh, ho); \
            if (oy < 0) continue; \
            for (int j = 0; j < kw; ++j) { \
                int ox = window_of(ix, j, sw, pw, dw, wo); \
                if (ox >= 0) acc += cols[((long long)(ci * kh + i) * kw + j) * width + ((long long)b * ho + oy) * wo + ox]; \
            } \
        } \
        dx[idx] = acc; \
    } \
} \
/* y[b, o, oy, ox] = bias[o] + sum_ij w[o, 0, i, j] * x[b, o / m, oy*sh + i*dh - ph, ox*sw + j*dw - pw]; y c*m channels */ \
extern "C" __global__ void depthwise_forward_##S(const T* __restrict__ x, const T* __restrict__ wt, \
                                                 const T* __restrict__ bias, T* __restrict__ y, \
                                                 int n, int c, int h, int w, int m, int kh, int kw, int sh, int sw, \
                                                 int ph, int pw, int dh, int dw, int ho, int wo) { \
    GRID_STRIDE(idx, (long long)n * c * m * ho * wo) { \
        int ox = (int)(idx % wo), oy = (int)((idx / wo) % ho); \
        long long plane = idx / ((long long)wo * ho); \
        int o = (int)(plane % (c * m)), b = (int)(plane / (c * m)); \
        const T* xp = x + ((long long)b * c + o / m) * h * w; \
        T acc = 0; \
        for (int i = 0; i < kh; ++i) { \
            int iy = oy * sh + i * dh - ph; \
            if (iy < 0 || iy >= h) continue; \
            for (int j = 0; j < kw; ++j) { \
                int ix = ox * sw + j * dw - pw; \
                if (ix >= 0 && ix < w) acc += wt[(o * kh + i) * kw + j] * xp[(long long)iy * w + ix]; \
            } \
        } \
        y[idx] = acc + bias[o]; \
    } \
} \
/* dx[b, ci, iy, ix] = sum over the m filters of channel ci and the windows holding (iy, ix) of gy * w: a gather */ \
extern "C" __global__ void depthwise_backward_input_##S(const T* __restrict__ gy, const T* __restrict__ wt, \
                                                        T* __restrict__ dx, int n, int c, int h, int w, int m, \
                                                        int kh, int kw, int sh, int sw, int ph, int pw, int dh, \
                                                        int dw, int ho, int wo) { \
    GRID_STRIDE(idx, (long long)n * c * h * w) { \
        int ix = (int)(idx % w), iy = (int)((idx / w) % h); \
        long long plane = idx / ((long long)w * h); \
        int ci = (int)(plane % c), b = (int)(plane / c); \
        T acc = 0; \
        for (int o = ci * m; o < ci * m + m; ++o) { \
            const T* g = gy + ((long long)b * c * m + o) * ho * wo; \
            for (int i = 0; i < kh; ++i) { \
                int oy = window_of(iy, i, sh, ph, dh, ho); \
                if (oy < 0) continue; \
                for (int j = 0; j < kw; ++j) { \
                    int ox = window_of(ix, j, sw, pw, dw, wo); \
                    if (ox >= 0) acc += wt[(o * kh + i) * kw + j] * g[(long long)oy * wo + ox]; \
                } \
            } \
        } \
        dx[idx] = acc; \
    } \
} \
/* dw[o, 0, i, j] = sum over images and output positions of gy[b, o, oy, ox] * x[b, o / m, iy, ix]: \
   one block per (o, i, j), up to REDUCE_THREADS threads, the sum in double like the CPU kernel. */ \
extern "C" __global__ void depthwise_backward_weight_##S(const T* __restrict__ gy, const T* __restrict__ x, \
                                                         T* __restrict__ dwt, int n, int c, int h, int w, int m, \
                                                         int kh, int kw, int sh, int sw, int ph, int pw, int dh, \
                                                         int dw, int ho, int wo) { \
    __shared__ double buf[REDUCE_THREADS + FAN]; \
    for (int tap = blockIdx.x; tap < c * m * kh * kw; tap += gridDim.x) { \
        int j = tap % kw, i = (tap / kw) % kh, o = tap / (kw * kh); \
        double acc = 0.0; \
        for (long long p = threadIdx.x; p < (long long)n * ho * wo; p += blockDim.x) { \
            int ox = (int)(p % wo), oy = (int)((p / wo) % ho), b = (int)(p / ((long long)wo * ho)); \
            int iy = oy * sh + i * dh - ph, ix = ox * sw + j * dw - pw; \
            if (iy >= 0 && iy < h && ix >= 0 && ix < w) \
                acc += (double)gy[(((long long)b * c * m + o) * ho + oy) * wo + ox] \
                       * (double)x[(((long long)b * c + o / m) * h + iy) * w + ix]; \
        } \
        acc = block_sum(acc, buf); \
        if (threadIdx.x == 0) dwt[tap] = (T)acc; \
    } \
}

CONV_KERNELS(float, f32)
CONV_KERNELS(double, f64)
