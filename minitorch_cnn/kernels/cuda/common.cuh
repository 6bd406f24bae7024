/* What every kernel file shares: the grid-stride loop, the window arithmetic of the gathers, and the
 * block reduction. Defined once, here.
 *
 * Not #included (NVRTC, as CuPy runs it, has no include path to this folder): launch.source("conv")
 * returns this text followed by conv.cu's, and that one text is what NVRTC (cupy.RawModule), nvcc
 * (compile_check.py) and the host emulator (emulator.py, with emulator_shim.h) compile, so each kernel
 * file is still one translation unit. A file that does not use something here pays nothing for it:
 * static functions that are never called are not emitted.
 */
#define FAN 16
#define REDUCE_THREADS (FAN * FAN)   /* threads of a reducing block; launch.REDUCE_THREADS */

/* for (idx = this thread's first item; idx < total; idx += every thread of the grid): any grid covers any
 * size. 64-bit, because N*C*H*W passes 2^31 long before a tensor is unusually large. */
#define GRID_STRIDE(idx, total) \
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < (total); \
         idx += (long long)blockDim.x * gridDim.x)

/* The output position along one axis that input position `pos` meets at kernel tap `tap`, or -1:
 * the t with t*stride - pad + tap*dilation == pos and 0 <= t < count. Pooling passes dilation 1. */
static __device__ int window_of(int pos, int tap, int stride, int pad, int dilation, int count) {
    int t = pos + pad - tap * dilation;
    if (t < 0 || t % stride != 0) return -1;
    t /= stride;
    return t < count ? t : -1;
}

/* Sum of v over the block (blockDim.x <= REDUCE_THREADS == FAN * FAN), returned to every thread.
 * A two-level shared-memory tree with fan-in FAN: the first ceil(blockDim.x / FAN) threads each add up
 * to FAN values, then every thread adds those partial sums itself. Two barriers instead of the eight
 * of a binary tree, and none at the end: a second call writes `partial` only after its first barrier,
 * which every thread reaches after reading `total`. Every thread of the block must call it.
 * buf: a __shared__ double[REDUCE_THREADS + FAN]. */
static __device__ double block_sum(double v, double* buf) {
    /* buf has room for REDUCE_THREADS threads of a 1-D block: a bigger launch (a wrapper that forgot
     * launch.REDUCE_THREADS) would write past it, so it stops the kernel instead (the emulator reports it) */
    if (blockDim.x > REDUCE_THREADS || blockDim.y * blockDim.z != 1) __trap();
    double* partial = buf + REDUCE_THREADS;
    int groups = (blockDim.x + FAN - 1) / FAN;
    buf[threadIdx.x] = v;
    __syncthreads();
    if ((int)threadIdx.x < groups) {
        double s = 0.0;
        for (int k = threadIdx.x * FAN; k < threadIdx.x * FAN + FAN && k < (int)blockDim.x; ++k) s += buf[k];
        partial[threadIdx.x] = s;
    }
    __syncthreads();
    double total = 0.0;
    for (int k = 0; k < groups; ++k) total += partial[k];
    return total;
}
