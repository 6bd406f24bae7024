/* Clamped linear units (ReLU, ReLU6): the output alone, or the output and the mask where dy/dx = 1, in one pass.
 *
 * Kernels only, no host code, no #include: launch.source() puts common.cuh (GRID_STRIDE, window_of,
 * block_sum) in front of this text; NVRTC, nvcc and the g++ emulator compile the result as one unit.
 * Any grid, 1-D blocks, a grid-stride loop. The backward reads the mask back from the output y:
 * 0 < y < high exactly where 0 < x < high.
 */
#define ELEMENTWISE_KERNELS(T, S) \
/* y = min(max(x, 0), high) (no upper bound when bounded == 0); mask = 0 < x < high; NaN stays NaN */ \
extern "C" __global__ void clamp_forward_##S(const T* __restrict__ x, T* __restrict__ y, bool* __restrict__ mask, \
                                             long long size, T high, int bounded) { \
    GRID_STRIDE(i, size) { \
        T v = x[i]; \
        bool inside = v > (T)0 && (!bounded || v < high); \
        mask[i] = inside; \
        y[i] = inside ? v : (v > (T)0 ? high : (v != v ? v : (T)0)); \
    } \
} \
/* clamp_forward's y alone: the layers' forward keeps no mask (the backward reads it back from y) */ \
extern "C" __global__ void clamp_##S(const T* __restrict__ x, T* __restrict__ y, long long size, T high, \
                                     int bounded) { \
    GRID_STRIDE(i, size) { \
        T v = x[i]; \
        y[i] = (v > (T)0 && (!bounded || v < high)) ? v : (v > (T)0 ? high : (v != v ? v : (T)0)); \
    } \
} \
/* clamp in place (nn/fold.py's inference, where nothing else reads the array): each element read, then written */ \
extern "C" __global__ void clamp_in_place_##S(T* __restrict__ y_inout, long long size, T high, int bounded) { \
    GRID_STRIDE(i, size) { \
        T v = y_inout[i]; \
        y_inout[i] = (v > (T)0 && (!bounded || v < high)) ? v : (v > (T)0 ? high : (v != v ? v : (T)0)); \
    } \
} \
/* gx = gy where 0 < y < high (no upper bound when bounded == 0), else 0 */ \
extern "C" __global__ void clamp_backward_##S(const T* __restrict__ gy, const T* __restrict__ y, \
                                              T* __restrict__ gx, long long size, T high, int bounded) { \
    GRID_STRIDE(i, size) { \
        T v = y[i]; \
        gx[i] = (v > (T)0 && (!bounded || v < high)) ? gy[i] : (T)0; \
    } \
}

ELEMENTWISE_KERNELS(float, f32)
ELEMENTWISE_KERNELS(double, f64)
