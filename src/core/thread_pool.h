// The intra-op thread pool: one per Session, shared by every kernel of it.
// It is the OpenMP (libgomp) team of the calling thread, the same threads
// oneDNN's primitives run on (kernels/cpu/dnnl_glue.h), so kiln's own
// kernels and the library's never compete for cores. parallel_for splits
// [0, n) into one contiguous chunk per thread (static chunk boundaries, so a
// kernel can size its chunks to cache blocks); the calling thread works too,
// so a pool of T threads uses T - 1 workers. Idle workers spin briefly
// (kernels of one run follow each other closely) and then sleep: libgomp's
// policy, tunable with OMP_WAIT_POLICY / GOMP_SPINCOUNT.
#pragma once
#include <cstdint>
#include <functional>

namespace kiln {

// Physical cores this process may run on (SMT siblings counted once);
// hardware_concurrency when the topology cannot be read.
int physical_core_count();

class ThreadPool {
 public:
  // threads <= 0: physical_core_count().
  explicit ThreadPool(int threads = 0);
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  // Calls fn(begin, end) on disjoint chunks covering [0, n), at most one
  // chunk per thread, and returns when all are done. Safe to call from
  // several threads at once (each caller leads its own team) and from inside
  // fn (a nested call runs on the calling thread alone). An exception from
  // fn is rethrown here once every chunk has finished.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn);

 private:
  int num_threads_ = 1;
};

// parallel_for on `pool`, or inline when there is none.
inline void parallel_for(ThreadPool* pool, int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (pool && n > 1)
    pool->parallel_for(n, fn);
  else
    fn(0, n);
}

}  // namespace kiln
