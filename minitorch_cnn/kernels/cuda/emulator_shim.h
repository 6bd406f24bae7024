/* Host shim for the CUDA emulator (emulator.py): lets g++ compile a kernel-only .cu file unchanged
 * and runs its kernels on the CPU, one block at a time.
 *
 * - __global__, __device__, __host__, __forceinline__ are no-ops; __shared__ becomes `static`, so a
 *   __shared__ array is one array that all threads of the running block see (blocks run one by one).
 * - threadIdx / blockIdx / blockDim / gridDim are globals that the scheduler sets before it runs (or
 *   resumes) each thread.
 * - A kernel that never reaches __syncthreads runs its threads as a plain loop. A kernel that does
 *   runs each thread as a fiber (makecontext for the first entry, _setjmp/_longjmp for switches):
 *   every thread runs up to its next __syncthreads, and only when all live threads have arrived does
 *   the next round start. A thread that exits while others wait at a barrier is reported as an error
 *   (on a GPU that is undefined behaviour: the "no early return before __syncthreads" rule).
 * - Blocks, and threads within a block, run in forward or reverse order (a launch argument), so a
 *   kernel that depends on the order (a missing __syncthreads, a race between blocks) gives a
 *   different answer in the two orders and the tests catch it.
 * - atomics are plain read-modify-writes: only one thread runs at any moment.
 */
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ucontext.h>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static

struct uint3 { unsigned int x, y, z; };
struct dim3 { unsigned int x, y, z; };
uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

using std::sqrt;
using std::exp;
using std::log;
using std::fabs;
using std::floor;
using std::ceil;
static inline float rsqrtf(float v) { return 1.0f / std::sqrt(v); }
static inline double rsqrt(double v) { return 1.0 / std::sqrt(v); }
static inline float __int_as_float(unsigned int bits) { float f; std::memcpy(&f, &bits, 4); return f; }
static inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
static inline double __longlong_as_double(long long bits) { double d; std::memcpy(&d, &bits, 8); return d; }
static inline long long __double_as_longlong(double d) { long long i; std::memcpy(&i, &d, 8); return i; }
template <typename T> static inline T min(T a, T b) { return b < a ? b : a; }
template <typename T> static inline T max(T a, T b) { return a < b ? b : a; }
template <typename T> static inline T atomicAdd(T* p, T v) { T old = *p; *p = old + v; return old; }
template <typename T> static inline T atomicMax(T* p, T v) { T old = *p; if (old < v) *p = v; return old; }
template <typename T> static inline T atomicMin(T* p, T v) { T old = *p; if (v < old) *p = v; return old; }
template <typename T> static inline T atomicExch(T* p, T v) { T old = *p; *p = v; return old; }
template <typename T> static inline T atomicCAS(T* p, T cmp, T v) { T old = *p; if (old == cmp) *p = v; return old; }

/* ---- the scheduler ------------------------------------------------------------------------ */
namespace emu {
enum State { READY, AT_BARRIER, DONE };
struct Fiber { ucontext_t context; jmp_buf resume; State state; bool started; uint3 tid; char* stack; };

const int MAX_THREADS = 1024;
const size_t STACK_BYTES = 128 * 1024;
static Fiber fibers[MAX_THREADS];
static Fiber* current = nullptr;
static bool fiber_mode = false;
static jmp_buf scheduler, failure;
static char* error_text = nullptr;
static int error_len = 0;
static void (*body)(void**) = nullptr;
static void** body_args = nullptr;

static void fail(const char* message) {
    std::snprintf(error_text, error_len, "%s (block (%u, %u, %u), thread (%u, %u, %u))", message,
                  blockIdx.x, blockIdx.y, blockIdx.z, threadIdx.x, threadIdx.y, threadIdx.z);
    std::longjmp(failure, 1);
}

static void fiber_main() {
    body(body_args);
    current->state = DONE;
    _longjmp(scheduler, 1);
}

static void run_block_as_fibers(int count) {
    for (int t = 0; t < count; ++t) {
        fibers[t].state = READY;
        fibers[t].started = false;
    }
    for (;;) {   /* one round: every live thread runs to its next barrier or its end */
        int at_barrier = 0, done = 0;
        for (int t = 0; t < count; ++t) {
            Fiber* f = &fibers[t];
            if (f->state == DONE) { ++done; continue; }
            current = f;
            threadIdx = f->tid;
            f->state = READY;
            if (!_setjmp(scheduler)) {
                if (!f->started) {
                    f->started = true;
                    if (!f->stack) f->stack = static_cast<char*>(std::malloc(STACK_BYTES));
                    getcontext(&f->context);
                    f->context.uc_stack.ss_sp = f->stack;
                    f->context.uc_stack.ss_size = STACK_BYTES;
                    f->context.uc_link = nullptr;
                    makecontext(&f->context, fiber_main, 0);
                    setcontext(&f->context);
                }
                _longjmp(f->resume, 1);
            }
            if (f->state == AT_BARRIER) ++at_barrier; else ++done;
        }
        if (done == count) return;
        if (at_barrier != count - done || done != 0) {
            /* some threads finished while others wait: the barrier can never be passed by all */
            fail("__syncthreads not reached by every thread of the block (a thread returned early)");
        }
    }
}
}  // namespace emu

void __syncthreads() {
    if (!emu::fiber_mode) emu::fail("__syncthreads reached by a kernel the emulator runs as a plain loop");
    emu::current->state = emu::AT_BARRIER;
    if (!_setjmp(emu::current->resume)) _longjmp(emu::scheduler, 1);
}

/* Run body(args) for every thread of every block. order < 0: blocks and threads in reverse order. */
static int emu_run(void (*kernel_body)(void**), unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                   unsigned bz, void** args, int reverse, int use_fibers, char* err, int err_len) {
    emu::body = kernel_body;
    emu::body_args = args;
    emu::error_text = err;
    emu::error_len = err_len;
    emu::fiber_mode = use_fibers != 0;
    gridDim = {gx, gy, gz};
    blockDim = {bx, by, bz};
    long long blocks = (long long)gx * gy * gz, threads = (long long)bx * by * bz;
    if (threads > emu::MAX_THREADS || threads <= 0 || blocks <= 0) {
        std::snprintf(err, err_len, "invalid launch: grid (%u, %u, %u), block (%u, %u, %u)", gx, gy, gz, bx, by, bz);
        return 1;
    }
    if (setjmp(emu::failure)) return 1;
    for (long long k = 0; k < blocks; ++k) {
        long long b = reverse ? blocks - 1 - k : k;
        blockIdx = {(unsigned)(b % gx), (unsigned)(b / gx % gy), (unsigned)(b / ((long long)gx * gy))};
        for (long long q = 0; q < threads; ++q) {
            long long t = reverse ? threads - 1 - q : q;
            uint3 tid = {(unsigned)(t % bx), (unsigned)(t / bx % by), (unsigned)(t / ((long long)bx * by))};
            if (emu::fiber_mode) {
                emu::fibers[q].tid = tid;
            } else {
                threadIdx = tid;
                kernel_body(args);
            }
        }
        if (emu::fiber_mode) emu::run_block_as_fibers((int)threads);
    }
    return 0;
}
