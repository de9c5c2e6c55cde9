#include "core/thread_pool.h"

#include <sched.h>

#include <atomic>
#include <exception>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>

namespace kiln {

// libgomp's ABI (what GCC emits for `#pragma omp parallel`), called
// directly so that kiln builds without -fopenmp under any compiler.
extern "C" {
void GOMP_parallel(void (*fn)(void*), void* data, unsigned num_threads, unsigned flags);
int omp_get_thread_num();
int omp_get_num_threads();
}

namespace {

int read_int(const std::string& path) {
  std::ifstream f(path);
  int v = -1;
  if (!(f >> v)) return -1;
  return v;
}

// The CPU bandwidth a cgroup (v2 cpu.max, v1 cpu.cfs_quota_us / period)
// grants, in CPUs rounded up; -1 when unlimited or unknown. A container
// limited to 2 CPUs on a 64-core host sees all 64 in its affinity mask.
int quota_cpus(long long quota, long long period) {
  if (quota <= 0 || period <= 0) return -1;
  return static_cast<int>(std::max<long long>(1, (quota + period - 1) / period));
}

int cgroup_cpu_limit() {
  std::ifstream self("/proc/self/cgroup");
  std::string line, v2_path, v1_path;
  while (std::getline(self, line)) {
    const size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    if (line.compare(0, a, "0") == 0 && controllers.empty()) v2_path = path;
    if (controllers.find("cpu") != std::string::npos && controllers.find("cpuset") == std::string::npos) v1_path = path;
  }
  int limit = -1;
  auto take = [&](int cpus) {
    if (cpus > 0) limit = limit < 0 ? cpus : std::min(limit, cpus);
  };
  // The limit of the process's own cgroup and of every one above it.
  for (std::string p = v2_path; !v2_path.empty();) {
    std::ifstream f("/sys/fs/cgroup" + p + "/cpu.max");
    std::string quota;
    long long period = 0;
    if (f >> quota >> period && quota != "max") take(quota_cpus(std::atoll(quota.c_str()), period));
    if (p == "/" || p.empty()) break;
    p = p.substr(0, std::max<size_t>(1, p.rfind('/')));
  }
  for (const std::string base : {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"}) {
    if (v1_path.empty()) break;
    std::ifstream q(base + v1_path + "/cpu.cfs_quota_us"), per(base + v1_path + "/cpu.cfs_period_us");
    long long quota = 0, period = 0;
    if (q >> quota && per >> period) take(quota_cpus(quota, period));
  }
  return limit;
}

}  // namespace

int physical_core_count() {
  const int cores = affinity_core_count();
  const int limit = cgroup_cpu_limit();
  return limit > 0 ? std::min(cores, limit) : cores;
}

int affinity_core_count() {
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

ThreadPool::ThreadPool(int threads) : num_threads_(threads > 0 ? threads : physical_core_count()) {}

namespace {

// ThreadSanitizer does not see libgomp's fork and join (libgomp is not
// instrumented), so it would take every chunk's read of data the caller wrote
// before the fork, and the caller's read of what chunks wrote, for races. These
// annotations tell it about the two happens-before edges GOMP_parallel gives.
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define KILN_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define KILN_TSAN 1
#endif
#ifdef KILN_TSAN
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
void tsan_release(void* addr) { __tsan_release(addr); }
void tsan_acquire(void* addr) { __tsan_acquire(addr); }
#else
void tsan_release(void*) {}
void tsan_acquire(void*) {}
#endif

// Chunks are claimed, not assigned: each team member runs its own chunk
// (chunk t for thread t, so on an idle machine every kernel gives the same
// rows to the same core, whose cache holds what the previous kernel wrote
// there), then any chunk whose thread has not started it. On a machine where
// other processes hold the cores, a worker the OS has not scheduled yet no
// longer makes the whole region wait for its chunk: the threads that are
// running take it (docs/threads.md). Teams of more than kMaxClaimed chunks
// keep the static assignment.
constexpr int kMaxClaimed = 64;

struct Job {
  const std::function<void(int, int64_t, int64_t)>* fn;
  int64_t n;
  int chunks;
  std::mutex error_mutex;
  std::exception_ptr error;
  std::atomic<bool> claimed[kMaxClaimed] = {};

  // True for the one caller that gets chunk c.
  bool claim(int c) { return c >= kMaxClaimed || !claimed[c].exchange(true, std::memory_order_relaxed); }
  void run(int chunk) {
    const int64_t begin = n * chunk / chunks, end = n * (chunk + 1) / chunks;
    try {
      if (begin < end) (*fn)(chunk, begin, end);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  }
};

// Runs on every thread of the team: its own chunks t, t + T, ... (one each
// unless the team came out smaller than asked, e.g. when nested), then the
// chunks no one has claimed yet.
void run_team_member(void* data) {
  Job& job = *static_cast<Job*>(data);
  tsan_acquire(&job.fn);  // the fork
  const int team = omp_get_num_threads(), me = omp_get_thread_num();
  for (int chunk = me; chunk < job.chunks; chunk += team)
    if (job.claim(chunk)) job.run(chunk);
  if (job.chunks <= kMaxClaimed)
    for (int k = 1; k < job.chunks; ++k) {
      const int chunk = (me + k) % job.chunks;
      if (job.claim(chunk)) job.run(chunk);
    }
  tsan_release(&job.n);  // the join
}

}  // namespace

void ThreadPool::parallel_chunks(int64_t n, const std::function<void(int, int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  const int chunks = chunk_count(n);
  if (chunks == 1) {
    fn(0, 0, n);
    return;
  }
  Job job{&fn, n, chunks, {}, {}, {}};
  tsan_release(&job.fn);
  GOMP_parallel(run_team_member, &job, static_cast<unsigned>(chunks), 0);
  tsan_acquire(&job.n);
  if (job.error) std::rethrow_exception(job.error);
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  parallel_chunks(n, [&fn](int, int64_t begin, int64_t end) { fn(begin, end); });
}

}  // namespace kiln
