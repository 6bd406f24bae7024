/* Host shim for the CUDA emulator (emulator.py): lets g++ compile a kernel-only .cu file unchanged
 * and runs its kernels on the CPU, one block at a time.
 *
 * - __global__, __device__, __host__, __forceinline__ are no-ops; __shared__ becomes `static`, so a
 *   __shared__ array is one array that all threads of the running block see (blocks run one by one).
 * - threadIdx / blockIdx / blockDim / gridDim are globals that the scheduler sets before it runs (or
 *   resumes) each thread.
 * - A kernel that never reaches __syncthreads runs its threads as a plain loop. A kernel that does
 *   runs each thread as a fiber (its own stack; see emu_switch below):
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
#ifdef EMU_OS_THREADS
thread_local uint3 threadIdx;   /* the race-check build: each CUDA thread of a block is an OS thread */
uint3 blockIdx;
#else
uint3 threadIdx, blockIdx;
#endif
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
/* Switching between fibers: on x86-64 a six-register stack switch (glibc's _setjmp/_longjmp and
 * swapcontext measured 0.6-1.3 us a switch, too slow for a batch-norm block of 256 fibers); elsewhere
 * swapcontext. emu_switch(save, next): push the callee-saved registers, store the stack pointer in
 * *save, load `next`, pop and return into whatever that stack was doing. */
#if defined(__x86_64__)
extern "C" void emu_switch(void** save, void* next);
asm(".text\n.globl emu_switch\n.hidden emu_switch\n.type emu_switch,@function\nemu_switch:\n"
    "pushq %rbp\npushq %rbx\npushq %r12\npushq %r13\npushq %r14\npushq %r15\n"
    "movq %rsp, (%rdi)\nmovq %rsi, %rsp\n"
    "popq %r15\npopq %r14\npopq %r13\npopq %r12\npopq %rbx\npopq %rbp\nret\n");
#endif

namespace emu {
enum State { READY, AT_BARRIER, DONE };
/* A fiber is made once and reused for every block: after the kernel body returns it switches back
 * to the scheduler and, resumed, runs the body again for the next block. */
struct Fiber { State state; bool made; uint3 tid; char* stack; void* sp; ucontext_t context; };

const int MAX_THREADS = 1024;
const size_t STACK_BYTES = 64 * 1024;   /* kernels only call small device functions, never recurse */
static Fiber fibers[MAX_THREADS];
static Fiber* current = nullptr;
static void* scheduler_sp = nullptr;
static ucontext_t scheduler_context;
static bool fiber_mode = false;
static jmp_buf failure;
static char* error_text = nullptr;
static int error_len = 0;
static void (*body)(void**) = nullptr;
static void** body_args = nullptr;

static void to_scheduler() {
#if defined(__x86_64__)
    emu_switch(&current->sp, scheduler_sp);
#else
    swapcontext(&current->context, &scheduler_context);
#endif
}

static void fiber_main() {
    for (;;) {
        body(body_args);
        current->state = DONE;
        to_scheduler();   /* parked until the next block */
    }
}

static void to_fiber(Fiber* f) {
    if (!f->made) {
        f->made = true;
        if (!f->stack) f->stack = static_cast<char*>(std::malloc(STACK_BYTES));
#if defined(__x86_64__)
        /* a stack that "returns" into fiber_main, aligned as if fiber_main had been called */
        /* stack tops staggered by 208 bytes a fiber: equal offsets modulo 4 KB would all compete for
         * the same few L1 cache sets, and the switches would miss the cache every time */
        size_t stagger = (size_t)(f - fibers) * 208 % 4096;
        void** sp = reinterpret_cast<void**>((reinterpret_cast<size_t>(f->stack) + STACK_BYTES - stagger) & ~size_t(15));
        *--sp = nullptr;
        *--sp = reinterpret_cast<void*>(&fiber_main);
        for (int r = 0; r < 6; ++r) *--sp = nullptr;
        f->sp = sp;
#else
        getcontext(&f->context);
        f->context.uc_stack.ss_sp = f->stack;
        f->context.uc_stack.ss_size = STACK_BYTES;
        f->context.uc_link = nullptr;
        makecontext(&f->context, fiber_main, 0);
#endif
    }
#if defined(__x86_64__)
    emu_switch(&scheduler_sp, f->sp);
#else
    swapcontext(&scheduler_context, &f->context);
#endif
}

static void fail(const char* message) {
    for (int t = 0; t < MAX_THREADS; ++t) fibers[t].made = false;   /* their stacks were abandoned mid-body */
    std::snprintf(error_text, error_len, "%s (block (%u, %u, %u), thread (%u, %u, %u))", message,
                  blockIdx.x, blockIdx.y, blockIdx.z, threadIdx.x, threadIdx.y, threadIdx.z);
    std::longjmp(failure, 1);
}

static void run_block_as_fibers(int count) {
    for (int t = 0; t < count; ++t) fibers[t].state = READY;
    for (;;) {   /* one round: every live thread runs to its next barrier or its end */
        int done = 0;
        for (int t = 0; t < count; ++t) {
            Fiber* f = &fibers[t];
            if (f->state == DONE) { ++done; continue; }
            current = f;
            threadIdx = f->tid;
            f->state = READY;
            to_fiber(f);
            if (f->state == DONE) ++done;
        }
        if (done == count) return;
        /* some threads finished while others wait: the barrier can never be passed by all */
        if (done != 0) fail("__syncthreads not reached by every thread of the block (a thread returned early)");
    }
}
}  // namespace emu

/* __trap(): the kernel stops and the launch fails (on a GPU: cudaErrorLaunchFailure; here a RuntimeError
 * naming the kernel, block and thread; in the race-check build of OS threads, an abort with the message). */
#ifdef EMU_OS_THREADS
static void __trap() { std::fprintf(stderr, "cuda emulator: __trap() called in the kernel\n"); std::abort(); }
#else
static void __trap() { emu::fail("__trap() called: the kernel refused this launch (see its guard)"); }
#endif

#ifdef EMU_OS_THREADS
#include "emulator_threads.h"   /* __syncthreads and emu_run with OS threads and barriers */
#else
void __syncthreads() {
    if (!emu::fiber_mode) emu::fail("__syncthreads reached by a kernel the emulator runs as a plain loop");
    emu::current->state = emu::AT_BARRIER;
    emu::to_scheduler();
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
#endif  /* EMU_OS_THREADS */
