/* Pooling kernels: max (remembering the winning tap) and average, forward and backward.
 *
 * Kernels only, no host code, no #include: launch.source() puts common.cuh (GRID_STRIDE, window_of,
 * block_sum) in front of this text; NVRTC, nvcc and the g++ emulator compile the result as one unit.
 * NAME_f32 / NAME_f64 are stamped out by POOL_KERNELS. Any grid, 1-D blocks, grid-stride loops.
 * Backward passes are gathers: each input pixel sums the windows that hold it, taps in (i, j)
 * order like kernels/reference.py, so no two threads write one pixel and no atomics are needed.
 */
#define POOL_KERNELS(T, S) \
/* y = the largest tap of each window (first on ties, NaN wins), argmax = its index i*kw + j */ \
extern "C" __global__ void max_pool_forward_##S(const T* __restrict__ x, T* __restrict__ y, int* __restrict__ argmax, \
                                                int n, int c, int h, int w, int kh, int kw, int sh, int sw, \
                                                int ph, int pw, int ho, int wo) { \
    GRID_STRIDE(idx, (long long)n * c * ho * wo) { \
        int ox = (int)(idx % wo), oy = (int)((idx / wo) % ho); \
        const T* plane = x + idx / ((long long)wo * ho) * h * w; \
        T best = (T)__int_as_float(0xff800000); /* -inf: NVRTC has no INFINITY */ \
        int best_tap = -1; \
        bool found_nan = false; \
        for (int i = 0; i < kh && !found_nan; ++i) { \
            int iy = oy * sh + i - ph; \
            if (iy < 0 || iy >= h) continue; \
            for (int j = 0; j < kw; ++j) { \
                int ix = ox * sw + j - pw; \
                if (ix < 0 || ix >= w) continue; \
                T v = plane[(long long)iy * w + ix]; \
                if (v > best || best_tap < 0 || v != v) { best = v; best_tap = i * kw + j; } \
                if (v != v) { found_nan = true; break; } \
            } \
        } \
        y[idx] = best; \
        argmax[idx] = best_tap; \
    } \
} \
/* dx[pixel] = sum of gy over the windows whose winning tap is this pixel */ \
extern "C" __global__ void max_pool_backward_##S(const T* __restrict__ gy, const int* __restrict__ argmax, \
                                                 T* __restrict__ dx, int n, int c, int h, int w, int kh, int kw, \
                                                 int sh, int sw, int ph, int pw, int ho, int wo) { \
    GRID_STRIDE(idx, (long long)n * c * h * w) { \
        int ix = (int)(idx % w), iy = (int)((idx / w) % h); \
        long long plane = idx / ((long long)w * h) * ho * wo; \
        T acc = 0; \
        for (int i = 0; i < kh; ++i) { \
            int oy = window_of(iy, i, sh, ph, 1, ho); \
            if (oy < 0) continue; \
            for (int j = 0; j < kw; ++j) { \
                int ox = window_of(ix, j, sw, pw, 1, wo); \
                long long o = plane + (long long)oy * wo + ox; \
                if (ox >= 0 && argmax[o] == i * kw + j) acc += gy[o]; \
            } \
        } \
        dx[idx] = acc; \
    } \
} \
/* y = (sum of the window's in-range taps) / divisor[oy, ox] */ \
extern "C" __global__ void avg_pool_forward_##S(const T* __restrict__ x, const T* __restrict__ divisor, \
                                                T* __restrict__ y, int n, int c, int h, int w, int kh, int kw, \
                                                int sh, int sw, int ph, int pw, int ho, int wo) { \
    GRID_STRIDE(idx, (long long)n * c * ho * wo) { \
        int ox = (int)(idx % wo), oy = (int)((idx / wo) % ho); \
        const T* plane = x + idx / ((long long)wo * ho) * h * w; \
        T acc = 0; \
        for (int i = 0; i < kh; ++i) { \
            int iy = oy * sh + i - ph; \
            if (iy < 0 || iy >= h) continue; \
            for (int j = 0; j < kw; ++j) { \
                int ix = ox * sw + j - pw; \
                if (ix >= 0 && ix < w) acc += plane[(long long)iy * w + ix]; \
            } \
        } \
        y[idx] = acc / divisor[oy * wo + ox]; \
    } \
} \
/* dx[pixel] = sum over the windows holding it of gy / divisor */ \
extern "C" __global__ void avg_pool_backward_##S(const T* __restrict__ gy, const T* __restrict__ divisor, \
                                                 T* __restrict__ dx, int n, int c, int h, int w, int kh, int kw, \
                                                 int sh, int sw, int ph, int pw, int ho, int wo) { \
    GRID_STRIDE(idx, (long long)n * c * h * w) { \
        int ix = (int)(idx % w), iy = (int)((idx / w) % h); \
        long long plane = idx / ((long long)w * h) * ho * wo; \
        T acc = 0; \
        for (int i = 0; i < kh; ++i) { \
            int oy = window_of(iy, i, sh, ph, 1, ho); \
            if (oy < 0) continue; \
            for (int j = 0; j < kw; ++j) { \
                int ox = window_of(ix, j, sw, pw, 1, wo); \
                if (ox >= 0) acc += gy[plane + (long long)oy * wo + ox] / divisor[oy * wo + ox]; \
            } \
        } \
        dx[idx] = acc; \
    } \
}

POOL_KERNELS(float, f32)
POOL_KERNELS(double, f64)
