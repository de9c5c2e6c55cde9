// kiln bench MODEL: time session creation and repeated runs, in the style of
// trtexec and onnxruntime_perf_test.
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "cli.h"

namespace kiln::cli {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

struct BenchArgs {
  std::string model;
  std::vector<std::string> inputs;
  std::string shapes;
  int threads = 0;  // 0: the engine's default
  int warmup = 5;
  int iterations = 50;
  double duration_s = 0;  // > 0: run for this long instead of `iterations` times
  int opt_level = 2;
  bool json = false;
  std::string output_dir;
  uint64_t seed = 0;
};

// The options below are written by other parts of the perf work (thread
// pool, pass manager, arena). They are set or read only when this build's
// API has them, so `bench` accepts and reports them either way.
template <typename Options>
bool apply_threads(Options& o, int threads) {
  if constexpr (requires { o.threads = threads; }) {
    if (threads > 0) o.threads = threads;
    return true;
  }
  return false;
}

template <typename Options>
bool apply_opt_level(Options& o, int level) {
  if constexpr (requires { o.opt_level = level; }) {
    o.opt_level = level;
    return true;
  }
  return false;
}

template <typename S>
int64_t arena_bytes_of(const S& s) {
  if constexpr (requires { s.arena_bytes(); }) return static_cast<int64_t>(s.arena_bytes());
  return 0;
}

template <typename S>
int64_t planned_bytes_of(const S& s) {
  if constexpr (requires { s.planned_bytes(); }) return static_cast<int64_t>(s.planned_bytes());
  return 0;
}

// CPU time of the whole process (all threads). On a shared, busy machine the
// wall-clock latency includes time spent waiting for a core; this does not.
double process_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// Peak resident set: VmHWM from /proc (exact bytes), else ru_maxrss (KiB on Linux).
int64_t peak_rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<int64_t>(ru.ru_maxrss) * 1024;
}

// A one-line progress bar redrawn on stderr, only when stdout is a terminal.
class Progress {
 public:
  Progress(const char* label, int total, double total_s)
      : label_(label), total_(total), total_s_(total_s), on_(isatty(STDOUT_FILENO)) {}
  // Redraws at most every 0.1 s, so that drawing does not slow fast models.
  void update(int done, double elapsed_s) {
    if (!on_) return;
    auto now = Clock::now();
    if (now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    double frac = total_s_ > 0 ? elapsed_s / total_s_ : static_cast<double>(done) / std::max(1, total_);
    frac = std::clamp(frac, 0.0, 1.0);
    int filled = static_cast<int>(frac * 30);
    std::fprintf(stderr, "\r%-8s [%s%s] %3d%%  %d runs", label_, std::string(static_cast<size_t>(filled), '#').c_str(),
                 std::string(static_cast<size_t>(30 - filled), '.').c_str(), static_cast<int>(frac * 100), done);
    std::fflush(stderr);
  }
  ~Progress() {
    if (on_) std::fprintf(stderr, "\r%60s\r", "");
  }

 private:
  const char* label_;
  int total_;
  double total_s_;
  bool on_;
  Clock::time_point last_draw_{};
};

// The batch size, when the first input's leading dim is symbolic (a dynamic
// batch axis): then it is the fed tensor's first dim. 0 when unknown.
int64_t batch_of(const Session& s, const Feed& feed) {
  if (s.inputs().empty()) return 0;
  const TensorInfo& first = s.inputs()[0];
  if (!first.has_shape || first.shape.empty() || first.shape[0].size >= 0) return 0;
  for (const auto& [name, t] : feed)
    if (name == first.name && t.rank() >= 1) return t.dim(0);
  return 0;
}

struct Stats {
  double min, median, mean, p90, p99;
};

Stats stats_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  double sum = std::accumulate(v.begin(), v.end(), 0.0);
  return {v.front(), percentile(v, 50), sum / static_cast<double>(v.size()), percentile(v, 90), percentile(v, 99)};
}

void bench_main(const BenchArgs& a) {
  SessionOptions opts;
  auto shapes = parse_shapes(a.shapes);
  opts.input_shapes = shapes;
  bool threads_applied = apply_threads(opts, a.threads);
  bool opt_level_applied = apply_opt_level(opts, a.opt_level);

  auto t0 = Clock::now();
  Session s = Session::load(a.model, opts);
  double create_ms = ms_since(t0);

  Feed feed = load_input_files(a.inputs);
  complete_feed(s, feed, shapes, a.seed, a.json ? nullptr : stdout);
  int64_t batch = batch_of(s, feed);

  std::vector<Tensor> outs;
  {
    Progress bar("warmup", a.warmup, 0);
    for (int i = 0; i < a.warmup; ++i) {
      outs = s.run(feed);
      bar.update(i + 1, 0);
    }
  }
  std::vector<double> lat;
  std::vector<double> cpu;
  auto start = Clock::now();
  {
    Progress bar("bench", a.iterations, a.duration_s);
    while (a.duration_s > 0 ? lat.empty() || ms_since(start) < a.duration_s * 1000
                            : static_cast<int>(lat.size()) < a.iterations) {
      auto r0 = Clock::now();
      double c0 = process_cpu_ms();
      outs = s.run(feed);
      lat.push_back(ms_since(r0));
      cpu.push_back(process_cpu_ms() - c0);
      bar.update(static_cast<int>(lat.size()), ms_since(start) / 1000);
    }
  }
  double total_ms = ms_since(start);
  if (!a.output_dir.empty()) write_outputs(s, outs, a.output_dir, "npy");

  Stats st = stats_of(lat);
  Stats cpu_st = stats_of(cpu);
  double per_s = static_cast<double>(lat.size()) / (total_ms / 1000);
  int64_t rss = peak_rss_bytes();
  int64_t arena = arena_bytes_of(s);
  int64_t planned = planned_bytes_of(s);

  if (a.json) {
    nlohmann::json j;
    j["model"] = a.model;
    j["session_create_ms"] = create_ms;
    j["latency_ms"] = {{"min", st.min}, {"median", st.median}, {"mean", st.mean}, {"p90", st.p90}, {"p99", st.p99}};
    j["cpu_ms"] = {{"median", cpu_st.median}, {"mean", cpu_st.mean}};
    j["throughput_per_s"] = per_s;
    j["batch"] = batch > 0 ? nlohmann::json(batch) : nlohmann::json(nullptr);
    j["items_per_s"] = batch > 0 ? nlohmann::json(per_s * static_cast<double>(batch)) : nlohmann::json(nullptr);
    j["peak_rss_bytes"] = rss;
    j["arena_bytes"] = arena;
    j["planned_bytes"] = planned;
    j["threads"] = a.threads;
    j["threads_applied"] = threads_applied;
    j["opt_level"] = a.opt_level;
    j["opt_level_applied"] = opt_level_applied;
    j["warmup"] = a.warmup;
    j["iterations"] = static_cast<int64_t>(lat.size());
    j["total_ms"] = total_ms;
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("model            %s\n", a.model.c_str());
  std::printf("threads          %d%s\n", a.threads,
              threads_applied ? (a.threads == 0 ? " (engine default)" : "") : " (not applied: this build runs on one thread)");
  std::printf("opt level        %d%s\n", a.opt_level, opt_level_applied ? "" : " (not applied: no optimizer in this build)");
  std::printf("session create   %.2f ms\n", create_ms);
  std::printf("runs             %zu after %d warm-up, %.1f ms in all\n", lat.size(), a.warmup, total_ms);
  std::printf("latency (ms)     min %.3f  median %.3f  mean %.3f  p90 %.3f  p99 %.3f\n", st.min, st.median, st.mean,
              st.p90, st.p99);
  std::printf("cpu time (ms)    median %.3f  mean %.3f (all threads)\n", cpu_st.median, cpu_st.mean);
  std::printf("throughput       %.2f inferences/s", per_s);
  if (batch > 0) std::printf(", %.2f items/s (batch %lld)", per_s * static_cast<double>(batch), static_cast<long long>(batch));
  std::printf("\n");
  std::printf("peak RSS         %.1f MiB\n", static_cast<double>(rss) / (1 << 20));
  std::printf("arena            %.1f MiB", static_cast<double>(arena) / (1 << 20));
  if (planned > 0)
    std::printf(" for %.1f MiB of intermediate tensors (%.1fx reuse)", static_cast<double>(planned) / (1 << 20),
                static_cast<double>(planned) / static_cast<double>(arena));
  std::printf("\n");
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "Time session creation and repeated runs of a model");
  cmd->add_option("model", a->model, "ONNX model file")->required();
  cmd->add_option("--input,-i", a->inputs, "NAME=FILE input (.npy or TensorProto .pb); repeatable. Missing inputs are random");
  cmd->add_option("--shapes", a->shapes, "Sizes for symbolic input dims: NAME:1x3x224x224,...");
  cmd->add_option("--threads", a->threads, "Intra-op threads (0: the engine's default)")->check(CLI::Range(0, 1024));
  cmd->add_option("--warmup", a->warmup, "Untimed runs before timing")->check(CLI::Range(0, 1000000))->capture_default_str();
  auto* iters = cmd->add_option("--iterations,-n", a->iterations, "Timed runs")
                    ->check(CLI::Range(1, 100000000))
                    ->capture_default_str();
  cmd->add_option("--duration", a->duration_s, "Run for S seconds instead of a number of iterations")
      ->check(CLI::PositiveNumber)
      ->excludes(iters);
  cmd->add_option("--opt-level", a->opt_level, "Graph optimization level")
      ->check(CLI::IsMember({0, 1, 2}))
      ->capture_default_str();
  cmd->add_flag("--json", a->json, "Print one JSON object and nothing else on stdout");
  cmd->add_option("--output-dir,-o", a->output_dir, "Write the last run's outputs to DIR/NAME.npy");
  cmd->add_option("--seed", a->seed, "Seed for random inputs");
  cmd->callback([a] { bench_main(*a); });
}

}  // namespace kiln::cli
