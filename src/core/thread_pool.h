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
#include <algorithm>
#include <cstdint>
#include <functional>

namespace kiln {

// The default thread count: physical cores this process may run on (its
// affinity mask, SMT siblings counted once), capped by the CPU quota of its
// cgroup (cpu.max; a container's --cpus); hardware_concurrency when the
// topology cannot be read.
int physical_core_count();
// The same without the cgroup's quota.
int affinity_core_count();

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
  // The same, telling fn which chunk it runs (0 <= chunk < chunk_count(n)),
  // so that it can work in that chunk's slice of the run's scratch memory
  // (KernelContext::scratch) instead of keeping buffers of its own.
  void parallel_chunks(int64_t n, const std::function<void(int chunk, int64_t, int64_t)>& fn);
  // How many chunks parallel_for / parallel_chunks split n items into.
  int chunk_count(int64_t n) const { return n <= 0 ? 0 : static_cast<int>(std::min<int64_t>(n, num_threads_)); }

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

// parallel_chunks on `pool`, or one chunk inline when there is none.
inline void parallel_chunks(ThreadPool* pool, int64_t n, const std::function<void(int, int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (pool && n > 1)
    pool->parallel_chunks(n, fn);
  else
    fn(0, 0, n);
}
inline int chunk_count(ThreadPool* pool, int64_t n) { return n <= 0 ? 0 : pool && n > 1 ? pool->chunk_count(n) : 1; }

}  // namespace kiln
