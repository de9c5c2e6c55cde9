// kiln device: what this CPU offers kiln (model, cores, the instruction-set
// features the kernels use, caches, memory), its measured peak fp32 GFLOP/s
// next to what kiln's GEMM achieves, and its L2 and DRAM bandwidth
// (device_bandwidth.cpp): the roofs of kiln profile's roofline.
#include <cpuid.h>
#include <immintrin.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "cli.h"
#include "core/settings.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/gemm_f32.h"

namespace kiln::cli {

namespace {

using Clock = std::chrono::steady_clock;

std::string read_line(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

std::string cpu_model_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const size_t start = line.find_first_not_of(" \t", colon + 1);
    return start == std::string::npos ? "" : line.substr(start);
  }
  return "unknown";
}

struct Feature {
  const char* name;
  bool present;
};

// CPUID bits (leaf 1, leaf 7 subleaves 0 and 1). AVX/AVX-512 also need the
// OS to save their registers, which cpu_isa_supported() checks; these are the
// raw CPU bits.
bool bit(unsigned reg, int n) { return (reg >> n) & 1u; }

std::vector<Feature> cpu_features() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  unsigned l1c = 0, l7b = 0, l7c = 0, l7_1a = 0, l7_max_subleaf = 0;
  if (__get_cpuid_count(1, 0, &a, &b, &c, &d)) l1c = c;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    l7_max_subleaf = a;
    l7b = b;
    l7c = c;
  }
  if (l7_max_subleaf >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d)) l7_1a = a;
  return {
      {"avx2", bit(l7b, 5)},         {"fma", bit(l1c, 12)},          {"f16c", bit(l1c, 29)},
      {"avx512f", bit(l7b, 16)},     {"avx512bw", bit(l7b, 30)},     {"avx512vl", bit(l7b, 31)},
      {"avx512_vnni", bit(l7c, 11)}, {"avx512_bf16", bit(l7_1a, 5)},
  };
}

bool has_feature(const std::vector<Feature>& features, const std::string& name) {
  for (const Feature& f : features)
    if (name == f.name) return f.present;
  return false;
}

struct Cache {
  int level;
  std::string type;
  int64_t bytes;
  int shared_cpus;  // logical CPUs sharing this instance (0: unknown)
};

// CPUs in a sysfs list like "0-7,64-71".
int count_cpu_list(const std::string& list) {
  int count = 0;
  size_t pos = 0;
  while (pos < list.size()) {
    size_t end = list.find(',', pos);
    if (end == std::string::npos) end = list.size();
    const std::string item = list.substr(pos, end - pos);
    const size_t dash = item.find('-');
    if (dash == std::string::npos)
      count += item.empty() ? 0 : 1;
    else
      count += std::atoi(item.c_str() + dash + 1) - std::atoi(item.c_str()) + 1;
    pos = end + 1;
  }
  return count;
}

// sysfs sizes read like "48K" or "32768K".
int64_t parse_size(const std::string& text) {
  if (text.empty()) return 0;
  int64_t n = std::atoll(text.c_str());
  const char unit = text.back();
  if (unit == 'K') n <<= 10;
  if (unit == 'M') n <<= 20;
  if (unit == 'G') n <<= 30;
  return n;
}

std::vector<Cache> cpu_caches() {
  std::vector<Cache> caches;
  for (int i = 0;; ++i) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    const std::string level = read_line(dir + "level");
    if (level.empty()) break;
    const std::string type = read_line(dir + "type");
    if (type == "Instruction") continue;
    caches.push_back({std::atoi(level.c_str()), type, parse_size(read_line(dir + "size")),
                      count_cpu_list(read_line(dir + "shared_cpu_list"))});
  }
  return caches;
}

int64_t memory_bytes() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  int64_t kib = 0;
  while (f >> key >> kib) {
    if (key == "MemTotal:") return kib * 1024;
    f.ignore(1 << 10, '\n');
  }
  return 0;
}

// Peak fp32 FMA throughput: independent accumulator chains, enough of them to
// hide the FMA latency (4-5 cycles at 2 per cycle needs 8-10), no memory
// traffic. Returns flops done in `iters` iterations.
__attribute__((target("avx2,fma"))) double fma_loop_avx2(int64_t iters, float* sink) {
  constexpr int kAcc = 10;
  __m256 acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = _mm256_set1_ps(0.001f * i);
  const __m256 mul = _mm256_set1_ps(0.999999f), add = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm256_fmadd_ps(acc[i], mul, add);
  __m256 sum = acc[0];
  for (int i = 1; i < kAcc; ++i) sum = _mm256_add_ps(sum, acc[i]);
  *sink = _mm256_cvtss_f32(sum);
  return 2.0 * 8 * kAcc * static_cast<double>(iters);
}

__attribute__((target("avx512f"))) double fma_loop_avx512(int64_t iters, float* sink) {
  constexpr int kAcc = 12;  // 2 FMA pipes x 4-6 cycles of latency
  __m512 acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_set1_ps(0.001f * i);
  const __m512 mul = _mm512_set1_ps(0.999999f), add = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_fmadd_ps(acc[i], mul, add);
  __m512 sum = acc[0];
  for (int i = 1; i < kAcc; ++i) sum = _mm512_add_ps(sum, acc[i]);
  // Not _mm512_reduce_add_ps: GCC 12 warns (-Wuninitialized) inside it.
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, sum);
  *sink = lanes[0] + lanes[15];
  return 2.0 * 16 * kAcc * static_cast<double>(iters);
}

// Without AVX2 kiln runs its portable kernels, which the compiler
// vectorizes for the baseline x86-64 (SSE2: 4 lanes, a multiply then an
// add, no FMA), so that is their peak.
double mul_add_loop_sse2(int64_t iters, float* sink) {
  constexpr int kAcc = 12;  // 2 pipes each for multiplies and adds, 3-cycle latencies
  __m128 acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = _mm_set1_ps(0.001f * i);
  const __m128 mul = _mm_set1_ps(0.999999f), add = _mm_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm_add_ps(_mm_mul_ps(acc[i], mul), add);
  __m128 sum = acc[0];
  for (int i = 1; i < kAcc; ++i) sum = _mm_add_ps(sum, acc[i]);
  *sink = _mm_cvtss_f32(sum);
  return 2.0 * 4 * kAcc * static_cast<double>(iters);
}

enum class FmaLoop { kSse2, kAvx2, kAvx512 };

// "avx512", "avx2", "sse2" (JSON's peak_gflops.loop).
const char* fma_loop_name(FmaLoop loop) {
  return loop == FmaLoop::kAvx512 ? "avx512" : loop == FmaLoop::kAvx2 ? "avx2" : "sse2";
}

// What the loop runs: "avx512 FMA", "avx2 FMA", "sse2 mul+add".
std::string fma_loop_str(FmaLoop loop) {
  return std::string(fma_loop_name(loop)) + (loop == FmaLoop::kSse2 ? " mul+add" : " FMA");
}

// GFLOP/s of one thread running the FMA loop for about `seconds`.
double fma_gflops_one_thread(FmaLoop loop, double seconds) {
  float sink = 0;
  double flops = 0;
  const auto start = Clock::now();
  double elapsed = 0;
  do {
    if (loop == FmaLoop::kAvx512)
      flops += fma_loop_avx512(1 << 19, &sink);
    else if (loop == FmaLoop::kAvx2)
      flops += fma_loop_avx2(1 << 20, &sink);
    else
      flops += mul_add_loop_sse2(1 << 20, &sink);
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < seconds);
  volatile float keep = sink;
  (void)keep;
  return flops / elapsed * 1e-9;
}

// The yardstick is the peak kiln's kernels could reach: the FMA width of the
// instruction set selected (the CPU's, capped by KILN_CPU_ISA). AVX-512 may
// or may not double AVX2's peak (Zen 4 splits a 512-bit FMA in two halves).
FmaLoop fma_loop_for(const std::vector<Feature>& features) {
  const CpuIsa isa = cpu_isa_selected();
  if (isa >= CpuIsa::kAvx512) return FmaLoop::kAvx512;
  if (isa >= CpuIsa::kAvx2 && has_feature(features, "fma")) return FmaLoop::kAvx2;
  return FmaLoop::kSse2;
}

// Best of 3 runs of `threads` threads each running the loop at once.
double peak_gflops(FmaLoop loop, int threads, double seconds = 0.2) {
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    std::vector<double> rates(threads);
    std::vector<std::thread> team;
    for (int t = 0; t < threads; ++t)
      team.emplace_back([&rates, t, loop, seconds] { rates[t] = fma_gflops_one_thread(loop, seconds); });
    for (std::thread& th : team) th.join();
    double total = 0;
    for (double r : rates) total += r;
    best = std::max(best, total);
  }
  return best;
}

// kiln's gemm_f32 on 512x512x512 with a pool of `threads`, best of 5 after a
// warm-up.
double gemm_gflops(int threads) {
  constexpr int64_t n = 512;
  std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n);
  ThreadPool pool(threads);
  const GemmF32Operand A{a.data(), n}, B{b.data(), n};
  gemm_f32(n, n, n, 1.0f, A, B, 0.0f, c.data(), n, &pool);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto start = Clock::now();
    gemm_f32(n, n, n, 1.0f, A, B, 0.0f, c.data(), n, &pool);
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    best = std::max(best, 2.0 * n * n * n / s * 1e-9);
  }
  return best;
}

std::string bytes_str(int64_t bytes) {
  char buf[32];
  if (bytes >= (int64_t{1} << 30))
    std::snprintf(buf, sizeof buf, "%.1f GiB", bytes / double(int64_t{1} << 30));
  else if (bytes >= (1 << 20))
    std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / double(1 << 20));
  else
    std::snprintf(buf, sizeof buf, "%lld KiB", static_cast<long long>(bytes >> 10));
  return buf;
}

struct DeviceArgs {
  bool json = false;
  int threads = 0;  // 0: the physical cores
};

void device_main(const DeviceArgs& a) {
  const std::vector<Feature> features = cpu_features();
  const std::vector<Cache> caches = cpu_caches();
  const int cores = physical_core_count();
  const int threads = a.threads > 0 ? a.threads : cores;
  const long logical = sysconf(_SC_NPROCESSORS_ONLN);
  const std::string& cap = settings().cpu_isa;
  const FmaLoop loop = fma_loop_for(features);
  const double per_core = peak_gflops(loop, 1);
  const double all_cores = peak_gflops(loop, threads);
  const double gemm = gemm_gflops(threads);
  const MemoryBandwidth bw1 = measure_memory_bandwidth(1);
  const MemoryBandwidth bw = threads == 1 ? bw1 : measure_memory_bandwidth(threads);
  const CacheSizes sizes = cache_sizes();

  if (a.json) {
    nlohmann::json j;
    j["cpu"] = cpu_model_name();
    j["cores"] = cores;
    j["logical_cpus"] = logical;
    j["isa"] = {{"supported", cpu_isa_name(cpu_isa_supported())},
                {"selected", cpu_isa_name(cpu_isa_selected())},
                {"cap", cap.empty() ? nlohmann::json(nullptr) : nlohmann::json(cap)}};
    j["features"] = nlohmann::json::object();
    for (const Feature& f : features) j["features"][f.name] = f.present;
    j["caches"] = nlohmann::json::array();
    for (const Cache& c : caches)
      j["caches"].push_back({{"level", c.level}, {"type", c.type}, {"bytes", c.bytes}, {"shared_cpus", c.shared_cpus}});
    j["llc_bytes"] = sizes.llc_bytes;
    j["memory_bytes"] = memory_bytes();
    j["peak_gflops"] = {
        {"per_core", per_core}, {"all_cores", all_cores}, {"threads", threads}, {"loop", fma_loop_name(loop)}};
    j["gemm_gflops"] = gemm;
    const auto bandwidth_json = [](const MemoryBandwidth& b) {
      return nlohmann::json{
          {"threads", b.threads},
          {"l2", {{"read", b.l2_read_gbps}, {"triad", b.l2_triad_gbps}, {"roof", b.l2_gbps()}}},
          {"dram", {{"read", b.dram_read_gbps}, {"triad", b.dram_triad_gbps}, {"roof", b.dram_gbps()}}},
          {"l2_set_bytes_per_thread", b.l2_set_bytes},
          {"dram_set_bytes", b.dram_set_bytes},
          {"seconds", b.seconds}};
    };
    j["bandwidth_gbps"] = {{"per_core", bandwidth_json(bw1)}, {"all_cores", bandwidth_json(bw)}};
    j["ridge_flop_per_byte"] = {{"l2", bw.l2_gbps() > 0 ? all_cores / bw.l2_gbps() : 0.0},
                                {"dram", bw.dram_gbps() > 0 ? all_cores / bw.dram_gbps() : 0.0}};
    j["int8_tops"] = nullptr;
    j["settings"] = nlohmann::json::object();
    for (const SettingInfo& si : setting_infos())
      j["settings"][si.name] = {{"value", si.value.empty() ? nlohmann::json(nullptr) : nlohmann::json(si.value)},
                                {"meaning", si.meaning}};
    std::printf("%s\n", json_text(j).c_str());
    return;
  }
  std::printf("cpu            %s\n", cpu_model_name().c_str());
  std::printf("cores          %d physical, %ld logical\n", cores, logical);
  std::printf("isa            supported %s, selected %s%s\n", cpu_isa_name(cpu_isa_supported()),
              cpu_isa_name(cpu_isa_selected()), cap.empty() ? "" : (" (KILN_CPU_ISA=" + cap + ")").c_str());
  std::string yes, no;
  for (const Feature& f : features) (f.present ? yes : no) += std::string(" ") + f.name;
  std::printf("features       yes:%s\n", yes.empty() ? " none" : yes.c_str());
  std::printf("               no:%s\n", no.empty() ? " none" : no.c_str());
  for (const Cache& c : caches) {
    const std::string name = "L" + std::to_string(c.level) + (c.type == "Data" ? "d" : "");
    std::printf("%-14s %s%s\n", name.c_str(), bytes_str(c.bytes).c_str(),
                c.shared_cpus > 1 ? (" (shared by " + std::to_string(c.shared_cpus) + " CPUs)").c_str() : "");
  }
  std::printf("memory         %s\n", bytes_str(memory_bytes()).c_str());
  const char* plural = threads == 1 ? "" : "s";
  std::printf(
      "peak fp32      %.1f GFLOP/s per core, %.1f GFLOP/s on %d thread%s "
      "(%s loop: the selected ISA's width; best of 3)\n",
      per_core, all_cores, threads, plural, fma_loop_str(loop).c_str());
  std::printf(
      "gemm fp32      %.1f GFLOP/s achieved (kiln gemm_f32 "
      "512x512x512, %d thread%s, %.0f%% of peak)\n",
      gemm, threads, plural, all_cores > 0 ? 100.0 * gemm / all_cores : 0.0);
  // "1 thread 95.1 GB/s read, 80.2 triad; 2 threads 190.3 read, 160.0 triad"
  const auto bandwidth_line = [&](const char* label, double read1, double triad1, double read, double triad,
                                  const std::string& set) {
    std::printf("%-14s 1 thread %.1f GB/s read, %.1f triad", label, read1, triad1);
    if (threads > 1) std::printf("; %d threads %.1f GB/s read, %.1f triad", threads, read, triad);
    std::printf(" (%s)\n", set.c_str());
  };
  bandwidth_line("L2 bandwidth", bw1.l2_read_gbps, bw1.l2_triad_gbps, bw.l2_read_gbps, bw.l2_triad_gbps,
                 bytes_str(bw.l2_set_bytes) + " per thread");
  bandwidth_line("DRAM bandwidth", bw1.dram_read_gbps, bw1.dram_triad_gbps, bw.dram_read_gbps, bw.dram_triad_gbps,
                 bytes_str(bw.dram_set_bytes) + " in all");
  if (bw.l2_gbps() > 0 && bw.dram_gbps() > 0)
    std::printf(
        "roofline       %d thread%s: peak %.1f GFLOP/s; L2 %.1f GB/s (ridge %.1f FLOP/byte), DRAM %.1f GB/s "
        "(ridge %.1f FLOP/byte) for working sets over the %s last-level cache\n",
        threads, plural, all_cores, bw.l2_gbps(), all_cores / bw.l2_gbps(), bw.dram_gbps(), all_cores / bw.dram_gbps(),
        bytes_str(sizes.llc_bytes).c_str());
  std::printf("int8           no quantized kernels yet\n");
  std::printf("settings       (environment variables kiln reads)\n");
  for (const SettingInfo& si : setting_infos())
    std::printf("  %-24s %-10s %s\n", si.name.c_str(), si.value.empty() ? "(unset)" : si.value.c_str(),
                si.meaning.c_str());
}

}  // namespace

double machine_peak_gflops(int threads, double seconds) {
  return peak_gflops(fma_loop_for(cpu_features()), threads, seconds);
}

std::string peak_loop_name() { return fma_loop_str(fma_loop_for(cpu_features())); }

CacheSizes cache_sizes() {
  CacheSizes sizes;
  const std::vector<Cache> caches = cpu_caches();
  int llc_level = 0;
  for (const Cache& c : caches) {
    if (c.level == 2 && c.type != "Instruction") sizes.l2_bytes = c.bytes;
    if (c.level > llc_level) {
      llc_level = c.level;
      sizes.llc_bytes = c.bytes;
      const long logical = sysconf(_SC_NPROCESSORS_ONLN);
      const long instances = c.shared_cpus > 0 && logical > 0 ? (logical + c.shared_cpus - 1) / c.shared_cpus : 1;
      sizes.llc_total_bytes = c.bytes * instances;
    }
  }
  return sizes;
}

void add_device_command(CLI::App& app) {
  auto a = std::make_shared<DeviceArgs>();
  CLI::App* cmd = app.add_subcommand("device",
                                     "Print the CPU's model, cores, instruction-set features, caches and memory; "
                                     "measure its peak fp32 GFLOP/s (FMA loop) next to kiln's GEMM, and its L2 and "
                                     "DRAM bandwidth (the roofs of kiln profile)");
  cmd->add_flag("--json", a->json, "Print one JSON object");
  cmd->add_option("--threads", a->threads,
                  "Threads for the all-core peak, GEMM and bandwidth (0, the default: the physical cores)")
      ->check(CLI::Range(0, 1024));
  cmd->callback([a] { device_main(*a); });
}

}  // namespace kiln::cli
