/* The race-check build of the emulator (emulator.py with sanitize="thread"; included by emulator_shim.h when
 * EMU_OS_THREADS is defined, and compiled with -fsanitize=thread): each CUDA thread of a block is an OS
 * thread and __syncthreads is a barrier, so ThreadSanitizer sees exactly the ordering a GPU guarantees
 * (accesses separated by a barrier are ordered; others are not) and reports the rest as data races.
 *
 * The fiber scheduler of the normal build runs one thread at a time, so a kernel whose threads race
 * (a shared `acc[0] += x` without atomics, a missing barrier) can still compute the right answer there.
 *
 * Each barrier round has its own sync objects: rounds alternate between two (mutex, condition variable)
 * pairs. With one pair, a thread still waking from round k would re-lock the mutex after a faster
 * thread had arrived at round k+1, and so "inherit" everything that thread wrote in between: TSan would
 * then see an order no GPU gives, and hide exactly the races this build is for. Round k+2 may reuse
 * round k's pair: nobody reaches k+2 before everyone has left k. A thread that returns counts as
 * arrived at every later barrier (the normal build reports that as an error; this one is about races).
 */
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace emu_threads {
struct Round { std::mutex m; std::condition_variable cv; int arrived = 0; int opened = -1; };
static Round rounds[2];
static std::atomic<int> expected{0};   /* threads of the block that have not returned */
thread_local int my_round = 0;        /* barriers this thread has passed in this block */

static void open_if_complete(Round& r, int round) {   /* r.m held */
    if (r.arrived > 0 && r.arrived == expected.load()) {
        r.arrived = 0;
        r.opened = round;
        r.cv.notify_all();
    }
}

static void barrier() {
    Round& r = rounds[my_round & 1];
    std::unique_lock<std::mutex> lock(r.m);
    int round = my_round;
    ++r.arrived;
    open_if_complete(r, round);
    r.cv.wait(lock, [&] { return r.opened >= round; });
    ++my_round;
}

static void returned() {
    Round& r = rounds[my_round & 1];
    std::lock_guard<std::mutex> lock(r.m);
    --expected;
    open_if_complete(r, my_round);
}
}  // namespace emu_threads

void __syncthreads() { emu_threads::barrier(); }

/* Every block in turn (or in reverse), its threads all started and then joined: a block's threads run
 * concurrently, blocks one after another (a real GPU may run them at once; the kernels never share memory
 * between blocks except through their outputs, which the comparisons check). */
static int emu_run(void (*kernel_body)(void**), unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                   unsigned bz, void** args, int reverse, int, char* err, int err_len) {
    gridDim = {gx, gy, gz};
    blockDim = {bx, by, bz};
    long long blocks = (long long)gx * gy * gz, threads = (long long)bx * by * bz;
    if (threads > emu::MAX_THREADS || threads <= 0 || blocks <= 0) {
        std::snprintf(err, err_len, "invalid launch: grid (%u, %u, %u), block (%u, %u, %u)", gx, gy, gz, bx, by, bz);
        return 1;
    }
    for (long long k = 0; k < blocks; ++k) {
        long long b = reverse ? blocks - 1 - k : k;
        blockIdx = {(unsigned)(b % gx), (unsigned)(b / gx % gy), (unsigned)(b / ((long long)gx * gy))};
        for (auto& r : emu_threads::rounds) { r.arrived = 0; r.opened = -1; }
        emu_threads::expected = (int)threads;
        std::vector<std::thread> team;
        for (long long t = 0; t < threads; ++t) {
            uint3 tid = {(unsigned)(t % bx), (unsigned)(t / bx % by), (unsigned)(t / ((long long)bx * by))};
            team.emplace_back([=] {
                threadIdx = tid;
                emu_threads::my_round = 0;
                kernel_body(args);
                emu_threads::returned();
            });
        }
        for (auto& t : team) t.join();
    }
    return 0;
}
