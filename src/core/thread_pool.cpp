#include "core/thread_pool.h"

#include <sched.h>

#include <fstream>
#include <set>
#include <string>
#include <utility>

namespace kiln {

namespace {

// Long enough to bridge the gap between two kernels of one run (a few tens of
// microseconds), short enough not to steal a core from other processes.
constexpr int kSpinIterations = 20000;

// Set on pool workers and on a caller while it runs a job: a parallel_for
// from inside a job runs inline (and never try-locks a mutex it holds).
thread_local bool tls_in_job = false;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

int read_int(const std::string& path) {
  std::ifstream f(path);
  int v = -1;
  if (!(f >> v)) return -1;
  return v;
}

}  // namespace

int physical_core_count() {
  const int fallback = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return fallback;
  std::set<std::pair<int, int>> cores;  // (package, core)
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    const std::string dir = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    const int core = read_int(dir + "core_id"), package = read_int(dir + "physical_package_id");
    if (core < 0) return std::min(fallback, CPU_COUNT(&set));
    cores.insert({package, core});
  }
  return cores.empty() ? fallback : static_cast<int>(cores.size());
}

ThreadPool::ThreadPool(int threads) : num_threads_(threads > 0 ? threads : physical_core_count()) {
  for (int i = 1; i < num_threads_; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(wake_mutex_);
    stop_.store(true, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::run_chunks(uint64_t generation) {
  for (;;) {
    uint64_t t = ticket_.load(std::memory_order_acquire);
    int chunk;
    do {
      chunk = static_cast<int>(t & 0xffffffffu);
      if ((t >> 32) != (generation & 0xffffffffu) || chunk >= job_chunks_.load(std::memory_order_relaxed)) return;
    } while (!ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel, std::memory_order_acquire));
    // The job cannot change while this chunk is claimed and not done.
    try {
      const int64_t chunks = job_chunks_.load(std::memory_order_relaxed);
      const int64_t begin = job_n_ * chunk / chunks, end = job_n_ * (chunk + 1) / chunks;
      if (begin < end) (*job_)(begin, end);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex_);
      if (!error_) error_ = std::current_exception();
    }
    done_.fetch_add(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::worker_loop() {
  tls_in_job = true;
  uint64_t seen = 0;
  for (;;) {
    for (int i = 0; i < kSpinIterations && generation_.load(std::memory_order_acquire) == seen; ++i) cpu_relax();
    if (generation_.load(std::memory_order_acquire) == seen) {
      std::unique_lock<std::mutex> lock(wake_mutex_);
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load(std::memory_order_relaxed)) return;
    run_chunks(seen);
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (workers_.empty() || n == 1 || tls_in_job) {
    fn(0, n);
    return;
  }
  std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
  if (!busy.owns_lock()) {
    fn(0, n);
    return;
  }
  // No chunk of the previous job is claimed or running here (its caller saw
  // all of them done), so the job fields can be rewritten.
  job_ = &fn;
  job_n_ = n;
  const int chunks = static_cast<int>(std::min<int64_t>(n, num_threads_));
  job_chunks_.store(chunks, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(wake_mutex_);
    generation = generation_.load(std::memory_order_relaxed) + 1;
    ticket_.store((generation & 0xffffffffu) << 32, std::memory_order_release);
    generation_.store(generation, std::memory_order_release);
  }
  wake_.notify_all();
  tls_in_job = true;
  run_chunks(generation);
  tls_in_job = false;
  for (int i = 0; done_.load(std::memory_order_acquire) != chunks; ++i) {
    if (i < kSpinIterations) cpu_relax();
    else std::this_thread::yield();
  }
  std::exception_ptr error;
  {
    std::lock_guard<std::mutex> lock(error_mutex_);
    std::swap(error, error_);
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace kiln
