// The intra-op thread pool: one per Session, shared by every kernel of it.
// parallel_for splits [0, n) into one contiguous chunk per thread (static
// chunk boundaries, so a kernel can size its chunks to cache blocks); the
// calling thread works too, so a pool of T threads starts T - 1 workers and
// never oversubscribes the cores it was sized for. Chunks are claimed from a
// shared counter: when a worker has not woken yet (its core busy with another
// process), the caller runs that chunk itself instead of waiting for it.
// Idle workers spin briefly (kernels of one run follow each other closely)
// and then sleep.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kiln {

// Physical cores this process may run on (SMT siblings counted once);
// hardware_concurrency when the topology cannot be read.
int physical_core_count();

class ThreadPool {
 public:
  // threads <= 0: physical_core_count().
  explicit ThreadPool(int threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  // Calls fn(begin, end) on disjoint chunks covering [0, n), at most one
  // chunk per thread, and returns when all are done. Safe to call from
  // several threads at once and from inside fn: a call that finds the
  // workers busy runs all of [0, n) inline on its own thread. An exception
  // from fn is rethrown here once every chunk has finished.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn);

 private:
  void worker_loop();
  // Claims and runs chunks of job `generation` until none are left.
  void run_chunks(uint64_t generation);

  int num_threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex busy_;  // held by the caller whose job the workers run

  // The current job, published by bumping generation_ under wake_mutex_.
  // ticket_ = generation << 32 | next unclaimed chunk; a thread claims a chunk
  // by advancing it, which fails once a newer job has replaced the one it saw.
  std::mutex wake_mutex_;
  std::condition_variable wake_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<uint64_t> ticket_{0};
  std::atomic<int> done_{0};  // chunks of the current job finished
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0;
  std::atomic<int> job_chunks_{0};  // read before a chunk is claimed
  std::atomic<bool> stop_{false};
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

// parallel_for on `pool`, or inline when there is none.
inline void parallel_for(ThreadPool* pool, int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (pool && n > 1) pool->parallel_for(n, fn);
  else fn(0, n);
}

}  // namespace kiln
