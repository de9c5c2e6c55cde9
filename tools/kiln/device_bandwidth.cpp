// Streaming memory bandwidth (kiln device, kiln profile's roofline): every
// thread streams over its own buffers, first-touched by itself, in two
// STREAM-like kernels: a read (a sum over the buffers) and a triad
// (a = b + s * c, 2 reads and 1 write per element, counted as 12 bytes:
// write-allocate traffic is not counted, as kiln profile's bytes do not count
// it either). Buffers sized to sit in each core's L2 give the L2 bandwidth;
// buffers together four times the last-level cache (at least 128 MiB) give
// DRAM's. The threads start each timed repetition together (a barrier) and
// the clock stops when the last one is done; best of a few repetitions.
// About 0.1-0.3 s in all.
#include <immintrin.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cli.h"
#include "kernels/cpu/cpu_isa.h"

namespace kiln::cli {

namespace {

using Clock = std::chrono::steady_clock;

// Elements per block every kernel handles at once: 8 vectors of 16 floats.
constexpr int64_t kBlock = 128;

__attribute__((target("avx512f"))) float read_avx512(const float* a, int64_t n) {
  __m512 s[8];
  for (auto& v : s) v = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += kBlock)
    for (int k = 0; k < 8; ++k) s[k] = _mm512_add_ps(s[k], _mm512_load_ps(a + i + 16 * k));
  for (int k = 1; k < 8; ++k) s[0] = _mm512_add_ps(s[0], s[k]);
  // Not _mm512_reduce_add_ps: GCC 12 warns (-Wuninitialized) inside it.
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, s[0]);
  float sum = 0;
  for (float l : lanes) sum += l;
  return sum;
}

__attribute__((target("avx512f"))) void triad_avx512(float* a, const float* b, const float* c, float scalar,
                                                     int64_t n) {
  const __m512 s = _mm512_set1_ps(scalar);
  for (int64_t i = 0; i < n; i += 16)
    _mm512_store_ps(a + i, _mm512_fmadd_ps(s, _mm512_load_ps(c + i), _mm512_load_ps(b + i)));
}

__attribute__((target("avx2,fma"))) float read_avx2(const float* a, int64_t n) {
  __m256 s[8];
  for (auto& v : s) v = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += kBlock / 2)
    for (int k = 0; k < 8; ++k) s[k] = _mm256_add_ps(s[k], _mm256_load_ps(a + i + 8 * k));
  for (int k = 1; k < 8; ++k) s[0] = _mm256_add_ps(s[0], s[k]);
  float lanes[8];
  _mm256_storeu_ps(lanes, s[0]);
  float sum = 0;
  for (float l : lanes) sum += l;
  return sum;
}

__attribute__((target("avx2,fma"))) void triad_avx2(float* a, const float* b, const float* c, float scalar, int64_t n) {
  const __m256 s = _mm256_set1_ps(scalar);
  for (int64_t i = 0; i < n; i += 8)
    _mm256_store_ps(a + i, _mm256_fmadd_ps(s, _mm256_load_ps(c + i), _mm256_load_ps(b + i)));
}

// The portable kernels' width: the baseline x86-64's SSE2.
float read_sse2(const float* a, int64_t n) {
  __m128 s[8];
  for (auto& v : s) v = _mm_setzero_ps();
  for (int64_t i = 0; i < n; i += kBlock / 4)
    for (int k = 0; k < 8; ++k) s[k] = _mm_add_ps(s[k], _mm_load_ps(a + i + 4 * k));
  for (int k = 1; k < 8; ++k) s[0] = _mm_add_ps(s[0], s[k]);
  alignas(16) float lanes[4];
  _mm_store_ps(lanes, s[0]);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

void triad_sse2(float* a, const float* b, const float* c, float scalar, int64_t n) {
  const __m128 s = _mm_set1_ps(scalar);
  for (int64_t i = 0; i < n; i += 4)
    _mm_store_ps(a + i, _mm_add_ps(_mm_load_ps(b + i), _mm_mul_ps(s, _mm_load_ps(c + i))));
}

struct Kernels {
  float (*read)(const float*, int64_t);
  void (*triad)(float*, const float*, const float*, float, int64_t);
};

// The widest loads and stores the selected ISA lets kiln's kernels use.
Kernels kernels_for(CpuIsa isa) {
  if (isa >= CpuIsa::kAvx512) return {read_avx512, triad_avx512};
  if (isa >= CpuIsa::kAvx2) return {read_avx2, triad_avx2};
  return {read_sse2, triad_sse2};
}

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};

struct StreamRates {
  double read_gbps = 0, triad_gbps = 0;
};

// Read and triad GB/s of `threads` threads over `set_bytes` bytes each (three
// arrays), `passes` passes per timed repetition, best of `reps`.
StreamRates stream_rates(int threads, int64_t set_bytes, int passes, int reps, const Kernels& kernels) {
  const int64_t n = std::max<int64_t>(kBlock, set_bytes / 3 / 4 / kBlock * kBlock);  // floats per array
  const double bytes_per_pass = 3.0 * 4.0 * static_cast<double>(n) * threads;
  std::barrier sync(threads);
  std::vector<double> read_s(reps), triad_s(reps);
  std::vector<float> sinks(threads);
  // Allocated here (a worker must not throw), first touched by its thread.
  std::vector<std::unique_ptr<float, FreeDeleter>> buffers;
  const size_t bytes = (3 * static_cast<size_t>(n) * sizeof(float) + 4095) / 4096 * 4096;
  for (int t = 0; t < threads; ++t) {
    buffers.emplace_back(static_cast<float*>(std::aligned_alloc(4096, bytes)));
    if (!buffers.back())
      throw Error("kiln device: cannot allocate " + std::to_string(bytes >> 20) + " MiB to measure bandwidth");
  }
  const auto body = [&](int t) {
    float* a = buffers[t].get();
    float *b = a + n, *c = b + n;
    for (int64_t i = 0; i < 3 * n; ++i) a[i] = 1.0f;  // first touch: pages near this thread
    float sink = kernels.read(a, 3 * n);              // warm: into the cache it fits in
    kernels.triad(a, b, c, 0.5f, n);
    Clock::time_point start;
    for (int r = 0; r < reps; ++r) {
      sync.arrive_and_wait();
      if (t == 0) start = Clock::now();
      for (int p = 0; p < passes; ++p) sink += kernels.read(a, 3 * n);
      sync.arrive_and_wait();
      if (t == 0) read_s[r] = std::chrono::duration<double>(Clock::now() - start).count();
      sync.arrive_and_wait();
      if (t == 0) start = Clock::now();
      for (int p = 0; p < passes; ++p) kernels.triad(a, b, c, 0.5f, n);
      sync.arrive_and_wait();
      if (t == 0) triad_s[r] = std::chrono::duration<double>(Clock::now() - start).count();
    }
    sinks[t] = sink + a[n / 2];
  };
  std::vector<std::thread> team;
  for (int t = 1; t < threads; ++t) team.emplace_back(body, t);
  body(0);
  for (std::thread& th : team) th.join();
  volatile float keep = sinks[0];
  (void)keep;
  const double total = bytes_per_pass * passes;
  return {total / *std::min_element(read_s.begin(), read_s.end()) * 1e-9,
          total / *std::min_element(triad_s.begin(), triad_s.end()) * 1e-9};
}

}  // namespace

MemoryBandwidth measure_memory_bandwidth(int threads) {
  const auto start = Clock::now();
  MemoryBandwidth bw;
  bw.threads = std::max(1, threads);
  const CacheSizes caches = cache_sizes();
  const Kernels kernels = kernels_for(cpu_isa_selected());
  // Half of each core's L2 (256 KiB when unknown): the three arrays stay there.
  bw.l2_set_bytes = std::max<int64_t>(caches.l2_bytes > 0 ? caches.l2_bytes / 2 : 256 << 10, 48 << 10);
  // About 64 MiB streamed per thread and repetition: half a millisecond or
  // so, long enough for the clock and the barrier, short enough for many
  // repetitions (the best one is the roof: a loaded machine only slows).
  const int l2_passes = static_cast<int>(std::clamp<int64_t>((int64_t{64} << 20) / bw.l2_set_bytes, 1, 1 << 16));
  const StreamRates l2 = stream_rates(bw.threads, bw.l2_set_bytes, l2_passes, 8, kernels);
  bw.l2_read_gbps = l2.read_gbps;
  bw.l2_triad_gbps = l2.triad_gbps;
  // Four times every last-level cache together, at least 128 MiB, at most 1 GiB.
  bw.dram_set_bytes = std::clamp<int64_t>(4 * caches.llc_total_bytes, int64_t{128} << 20, int64_t{1} << 30);
  const StreamRates dram = stream_rates(bw.threads, bw.dram_set_bytes / bw.threads, 1, 6, kernels);
  bw.dram_read_gbps = dram.read_gbps;
  bw.dram_triad_gbps = dram.triad_gbps;
  bw.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return bw;
}

}  // namespace kiln::cli
