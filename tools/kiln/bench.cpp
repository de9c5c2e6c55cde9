// kiln bench MODEL: time session creation and repeated runs, in the style of
// trtexec and onnxruntime_perf_test.
#include <fcntl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "cli.h"

namespace kiln::cli {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// When this program started running its own code (after the loader mapped
// its libraries): time to first result counts from here.
const Clock::time_point kProgramStart = Clock::now();

struct BenchArgs : SessionFlags {
  std::string shapes_sweep;
  bool sweep = false;         // --shapes-sweep was given (an empty SPEC is an error, not a plain bench)
  std::string shapes_random;  // --shapes-random: the same SPEC, shapes drawn at random per run
  int warmup = 5;
  int iterations = 50;
  double duration_s = 0;  // > 0: run for this long instead of `iterations` times
  bool json = false;
  std::string output_dir;
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

// A "Key:   123 kB" line of /proc/self/status, in bytes; -1 when absent.
int64_t proc_status_bytes(const std::string& key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key + ":", 0) == 0) return std::stoll(line.substr(key.size() + 1)) * 1024;
  return -1;
}

// The process's peak resident set since it started (ru_maxrss is in KiB on Linux).
int64_t process_peak_rss_bytes() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<int64_t>(ru.ru_maxrss) * 1024;
}

// Peak resident set: VmHWM from /proc (exact bytes), else ru_maxrss.
int64_t peak_rss_bytes() {
  int64_t hwm = proc_status_bytes("VmHWM");
  return hwm >= 0 ? hwm : process_peak_rss_bytes();
}

// Sets VmHWM back to the current resident set, so that it then measures the
// peak of what runs next (Linux 4.0+). On failure, `why` says why.
bool reset_peak_rss(std::string& why) {
  int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  bool ok = fd >= 0 && write(fd, "5", 1) == 1;
  if (!ok) why = std::string("writing 5 to /proc/self/clear_refs: ") + std::strerror(errno);
  if (fd >= 0) close(fd);
  if (ok && proc_status_bytes("VmHWM") < 0) {
    ok = false;
    why = "/proc/self/status has no VmHWM";
  }
  return ok;
}

// A one-line progress bar redrawn on stderr, when `on` (by default, when
// stdout is a terminal).
class Progress {
 public:
  Progress(std::string label, int total, double total_s, bool on = isatty(STDOUT_FILENO))
      : label_(std::move(label)), total_(total), total_s_(total_s), on_(on) {}
  // Redraws at most every 0.1 s, so that drawing does not slow fast models.
  void update(int done, double elapsed_s) {
    if (!on_) return;
    auto now = Clock::now();
    if (now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    double frac = total_s_ > 0 ? elapsed_s / total_s_ : static_cast<double>(done) / std::max(1, total_);
    frac = std::clamp(frac, 0.0, 1.0);
    int filled = static_cast<int>(frac * 30);
    std::fprintf(stderr, "\r%-8s [%s%s] %3d%%  %d runs", label_.c_str(),
                 std::string(static_cast<size_t>(filled), '#').c_str(),
                 std::string(static_cast<size_t>(30 - filled), '.').c_str(), static_cast<int>(frac * 100), done);
    std::fflush(stderr);
  }
  ~Progress() {
    if (on_) std::fprintf(stderr, "\r%80s\r", "");
  }

 private:
  std::string label_;
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

struct LoadedSession {
  Session session;
  double create_ms;
  bool threads_applied;
  bool opt_level_applied;
};

LoadedSession load_session(const BenchArgs& a, const std::map<std::string, Shape>& input_shapes) {
  SessionOptions opts;
  opts.input_shapes = input_shapes;
  bool threads_applied = apply_threads(opts, a.threads);
  bool opt_level_applied = apply_opt_level(opts, a.opt_level);
  auto t0 = Clock::now();
  Session s = Session::load(a.model, opts);
  return {std::move(s), ms_since(t0), threads_applied, opt_level_applied};
}

void print_session_lines(const BenchArgs& a, const LoadedSession& l) {
  std::printf("model            %s\n", a.model.c_str());
  std::printf("threads          %d%s\n", a.threads,
              l.threads_applied ? (a.threads == 0 ? " (engine default)" : "")
                                : " (not applied: this build runs on one thread)");
  std::printf("opt level        %d%s\n", a.opt_level,
              l.opt_level_applied ? "" : " (not applied: no optimizer in this build)");
  std::printf("session create   %.2f ms\n", l.create_ms);
}

struct Timing {
  std::vector<double> lat;   // wall-clock ms of each timed run
  std::vector<double> cpu;   // process CPU ms of each timed run
  double total_ms = 0;       // of the timed runs
  std::vector<Tensor> outs;  // of the last run
  double per_s() const { return static_cast<double>(lat.size()) / (total_ms / 1000); }
};

// a.warmup untimed runs, then a.iterations timed runs (or as many as fit in
// a.duration_s), with a progress bar labelled `label` when `progress`.
Timing time_runs(const Session& s, const Feed& feed, const BenchArgs& a, const std::string& label, bool progress) {
  Timing t;
  {
    Progress bar(label + "warmup", a.warmup, 0, progress);
    for (int i = 0; i < a.warmup; ++i) {
      t.outs = s.run(feed);
      bar.update(i + 1, 0);
    }
  }
  auto start = Clock::now();
  Progress bar(label + "bench", a.iterations, a.duration_s, progress);
  while (a.duration_s > 0 ? t.lat.empty() || ms_since(start) < a.duration_s * 1000
                          : static_cast<int>(t.lat.size()) < a.iterations) {
    auto r0 = Clock::now();
    double c0 = process_cpu_ms();
    t.outs = s.run(feed);
    t.lat.push_back(ms_since(r0));
    t.cpu.push_back(process_cpu_ms() - c0);
    bar.update(static_cast<int>(t.lat.size()), ms_since(start) / 1000);
  }
  t.total_ms = ms_since(start);
  return t;
}

void sweep_main(const BenchArgs& a);
void random_shapes_main(const BenchArgs& a);

void bench_main(const BenchArgs& a) {
  if (a.sweep) return sweep_main(a);
  if (!a.shapes_random.empty()) return random_shapes_main(a);
  auto shapes = parse_shapes(a.shapes);
  LoadedSession loaded = load_session(a, shapes);
  const Session& s = loaded.session;

  Feed feed = make_feed(s, a, shapes, a.json ? nullptr : stdout);
  int64_t batch = batch_of(s, feed);

  // The first run on its own: what the first request of a fresh process
  // waits (plans and kernels made for these shapes), then the warm-up.
  auto f0 = Clock::now();
  s.run(feed);
  const double first_run_ms = ms_since(f0);
  const double first_result_ms = ms_since(kProgramStart);
  Timing timing = time_runs(s, feed, a, "", isatty(STDOUT_FILENO));
  const std::vector<double>& lat = timing.lat;
  double total_ms = timing.total_ms;
  if (!a.output_dir.empty()) write_outputs(s, timing.outs, a.output_dir, "npy");

  Stats st = stats_of(lat);
  Stats cpu_st = stats_of(timing.cpu);
  double per_s = timing.per_s();
  int64_t rss = peak_rss_bytes();
  int64_t arena = arena_bytes_of(s);
  int64_t planned = planned_bytes_of(s);

  if (a.json) {
    nlohmann::json j;
    j["model"] = a.model;
    j["session_create_ms"] = loaded.create_ms;
    j["first_run_ms"] = first_run_ms;
    j["first_result_ms"] = first_result_ms;
    j["latency_ms"] = {{"min", st.min}, {"median", st.median}, {"mean", st.mean}, {"p90", st.p90}, {"p99", st.p99}};
    j["cpu_ms"] = {{"median", cpu_st.median}, {"mean", cpu_st.mean}};
    j["throughput_per_s"] = per_s;
    j["batch"] = batch > 0 ? nlohmann::json(batch) : nlohmann::json(nullptr);
    j["items_per_s"] = batch > 0 ? nlohmann::json(per_s * static_cast<double>(batch)) : nlohmann::json(nullptr);
    j["peak_rss_bytes"] = rss;
    j["arena_bytes"] = arena;
    j["planned_bytes"] = planned;
    j["threads"] = a.threads;
    j["threads_applied"] = loaded.threads_applied;
    j["opt_level"] = a.opt_level;
    j["opt_level_applied"] = loaded.opt_level_applied;
    j["warmup"] = a.warmup;
    j["iterations"] = static_cast<int64_t>(lat.size());
    j["total_ms"] = total_ms;
    std::printf("%s\n", json_text(j).c_str());
    return;
  }
  print_session_lines(a, loaded);
  std::printf("first run        %.2f ms (first result %.2f ms after the program started)\n", first_run_ms,
              first_result_ms);
  std::printf("runs             %zu after %d warm-up, %.1f ms in all\n", lat.size(), a.warmup, total_ms);
  std::printf("latency (ms)     min %.3f  median %.3f  mean %.3f  p90 %.3f  p99 %.3f\n", st.min, st.median, st.mean,
              st.p90, st.p99);
  std::printf("cpu time (ms)    median %.3f  mean %.3f (all threads)\n", cpu_st.median, cpu_st.mean);
  std::printf("throughput       %.2f inferences/s", per_s);
  if (batch > 0)
    std::printf(", %.2f items/s (batch %lld)", per_s * static_cast<double>(batch), static_cast<long long>(batch));
  std::printf("\n");
  std::printf("peak RSS         %.1f MiB\n", static_cast<double>(rss) / (1 << 20));
  std::printf("arena            %.1f MiB", static_cast<double>(arena) / (1 << 20));
  if (planned > 0)
    std::printf(" for %.1f MiB of intermediate tensors (%.1fx reuse)", static_cast<double>(planned) / (1 << 20),
                static_cast<double>(planned) / static_cast<double>(arena));
  std::printf("\n");
}

// --shapes-sweep: one session, timed at each shape of the sweep in turn.

std::string input_names(const Session& s) {
  std::string names;
  for (const auto& info : s.inputs()) names += (names.empty() ? "" : ", ") + info.name;
  return names;
}

// What can be checked before running: every swept input exists, ranks match,
// and no input is both swept and fixed. Sizes the model rejects fail at their
// step, with the engine's own message.
void check_sweep(const Session& s, const ShapeSweep& sweep, const std::map<std::string, Shape>& fixed,
                 const Feed& files) {
  auto find_input = [&](const std::string& name) -> const TensorInfo* {
    for (const auto& info : s.inputs())
      if (info.name == name) return &info;
    return nullptr;
  };
  for (const auto& [name, shape] : fixed)
    if (!find_input(name))
      throw Error("--shapes: the model has no input '" + name + "' (its inputs: " + input_names(s) + ")");
  for (size_t i = 0; i < sweep.names.size(); ++i) {
    const std::string& name = sweep.names[i];
    const TensorInfo* info = find_input(name);
    if (!info)
      throw Error("--shapes-sweep: the model has no input '" + name + "' (its inputs: " + input_names(s) + ")");
    if (fixed.count(name)) throw Error("input '" + name + "' is in both --shapes and --shapes-sweep");
    for (const auto& f : files)
      if (f.first == name) throw Error("input '" + name + "' is both given by --input and swept by --shapes-sweep");
    if (!info->has_shape) continue;
    for (const auto& step : sweep.steps)
      if (step[i].size() != info->shape.size())
        throw Error("--shapes-sweep: input '" + name + "' is " + info->str() + " (rank " +
                    std::to_string(info->shape.size()) + "), but shape " + shape_str(step[i]) + " has rank " +
                    std::to_string(step[i].size()));
  }
}

struct ShapeResult {
  std::string label;                   // "image:4x1x8x8"
  std::map<std::string, Shape> swept;  // the swept inputs' shapes at this step
  int64_t batch = 0;                   // dim 0 of the first swept input; 0 when it is a scalar
  Timing timing;
  Stats lat{}, cpu{};
  int64_t peak_rss = 0;  // since the reset before this shape, or of the process (see SweepMemory)
  int64_t rss = -1;      // after the runs; -1 when unknown
  int64_t arena = 0;     // Session::arena_bytes() after the runs
};

struct SweepMemory {
  bool per_shape = false;  // VmHWM is reset before each shape
  std::string why_not;     // when not
};

ShapeResult time_shape(const Session& s, const BenchArgs& a, const ShapeSweep& sweep, size_t step,
                       const std::map<std::string, Shape>& fixed, const Feed& files, const SweepMemory& memory) {
  ShapeResult r;
  r.label = sweep_step_str(sweep, step);
  std::map<std::string, Shape> shapes = fixed;
  for (size_t i = 0; i < sweep.names.size(); ++i) {
    r.swept[sweep.names[i]] = sweep.steps[step][i];
    shapes[sweep.names[i]] = sweep.steps[step][i];
  }
  const Shape& first = sweep.steps[step][0];
  r.batch = first.empty() ? 0 : first[0];

  std::string why;
  if (memory.per_shape && !reset_peak_rss(why)) throw Error("resetting the peak RSS before " + r.label + ": " + why);
  try {
    Feed feed = files;
    complete_feed(s, feed, shapes, parse_value_ranges(a.val_ranges), a.seed, nullptr);
    std::string label = "[" + std::to_string(step + 1) + "/" + std::to_string(sweep.steps.size()) + "] ";
    r.timing = time_runs(s, feed, a, label, isatty(STDERR_FILENO));
  } catch (const std::exception& e) {
    throw Error("shape " + r.label + ": " + e.what());
  }
  r.rss = proc_status_bytes("VmRSS");
  // The kernel updates VmHWM lazily; it can lag the RSS it has just reported.
  r.peak_rss = std::max(r.rss, memory.per_shape ? proc_status_bytes("VmHWM") : process_peak_rss_bytes());
  r.arena = arena_bytes_of(s);
  r.lat = stats_of(r.timing.lat);
  r.cpu = stats_of(r.timing.cpu);
  return r;
}

double mib(int64_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

nlohmann::json shape_json(const ShapeResult& r) {
  nlohmann::json j;
  for (const auto& [name, shape] : r.swept) j["shape"][name] = shape;
  double per_s = r.timing.per_s();
  j["batch"] = r.batch > 0 ? nlohmann::json(r.batch) : nlohmann::json(nullptr);
  j["iterations"] = static_cast<int64_t>(r.timing.lat.size());
  j["total_ms"] = r.timing.total_ms;
  j["latency_ms"] = {{"median", r.lat.median}, {"p90", r.lat.p90}, {"min", r.lat.min}, {"mean", r.lat.mean}};
  j["cpu_ms"] = {{"median", r.cpu.median}, {"mean", r.cpu.mean}};
  j["throughput_per_s"] = per_s;
  j["samples_per_s"] = r.batch > 0 ? nlohmann::json(per_s * static_cast<double>(r.batch)) : nlohmann::json(nullptr);
  j["peak_rss_mib"] = mib(r.peak_rss);
  j["rss_mib"] = r.rss >= 0 ? nlohmann::json(mib(r.rss)) : nlohmann::json(nullptr);
  j["arena_mib"] = mib(r.arena);
  return j;
}

void print_sweep_row(const ShapeResult& r, int label_width) {
  double per_s = r.timing.per_s();
  char samples[32] = "-";
  if (r.batch > 0) std::snprintf(samples, sizeof samples, "%.2f", per_s * static_cast<double>(r.batch));
  char rss[32] = "-";
  if (r.rss >= 0) std::snprintf(rss, sizeof rss, "%.1f", mib(r.rss));
  std::printf("%-*s  %6zu  %10.3f  %10.3f  %10.2f  %10s  %9.1f  %8s  %9.1f\n", label_width, r.label.c_str(),
              r.timing.lat.size(), r.lat.median, r.lat.p90, per_s, samples, mib(r.peak_rss), rss, mib(r.arena));
  std::fflush(stdout);
}

// What --shapes-sweep and --shapes-random start from: the spec, the other
// inputs' shapes and files, and one session not specialized to any shape
// (the swept dims stay symbolic), checked against the spec.
struct SweepSetup {
  ShapeSweep sweep;
  std::map<std::string, Shape> fixed;
  Feed files;
  LoadedSession loaded;
};

SweepSetup open_sweep(const BenchArgs& a, const std::string& spec) {
  SweepSetup setup{parse_shape_sweep(spec), parse_shapes(a.shapes), {}, load_session(a, {})};
  setup.files = load_inputs(a.inputs, setup.loaded.session);
  check_sweep(setup.loaded.session, setup.sweep, setup.fixed, setup.files);
  return setup;
}

void sweep_main(const BenchArgs& a) {
  SweepSetup setup = open_sweep(a, a.shapes_sweep);
  const ShapeSweep& sweep = setup.sweep;
  const auto& fixed = setup.fixed;
  const Feed& files = setup.files;
  const LoadedSession& loaded = setup.loaded;
  const Session& s = loaded.session;

  SweepMemory memory;
  memory.per_shape = reset_peak_rss(memory.why_not);
  std::string memory_note = memory.per_shape ? "per shape (VmHWM reset before each shape's warm-up)"
                                             : "of the whole process (getrusage), not per shape: " + memory.why_not;
  int label_width = 5;
  for (size_t k = 0; k < sweep.steps.size(); ++k)
    label_width = std::max(label_width, static_cast<int>(sweep_step_str(sweep, k).size()));
  // One line per finished shape on stderr, unless the table rows already go to that terminal.
  bool finished_lines = isatty(STDERR_FILENO) && (a.json || !isatty(STDOUT_FILENO));

  if (!a.json) {
    print_session_lines(a, loaded);
    if (a.duration_s > 0)
      std::printf("runs per shape   for %.1f s after %d warm-up\n", a.duration_s, a.warmup);
    else
      std::printf("runs per shape   %d after %d warm-up\n", a.iterations, a.warmup);
    std::printf("peak RSS         %s\n", memory_note.c_str());
    std::printf("arena            Session::arena_bytes(): the largest arena planned so far (docs/memory.md)\n\n");
    std::printf("%-*s  %6s  %10s  %10s  %10s  %10s  %9s  %8s  %9s\n", label_width, "shape", "runs", "median ms",
                "p90 ms", "inf/s", "samples/s", "peak MiB", "RSS MiB", "arena MiB");
    std::fflush(stdout);
  }
  nlohmann::json rows = nlohmann::json::array();
  for (size_t k = 0; k < sweep.steps.size(); ++k) {
    ShapeResult r = time_shape(s, a, sweep, k, fixed, files, memory);
    if (a.json)
      rows.push_back(shape_json(r));
    else
      print_sweep_row(r, label_width);
    if (finished_lines)
      std::fprintf(stderr, "[%zu/%zu] %s  median %.3f ms\n", k + 1, sweep.steps.size(), r.label.c_str(), r.lat.median);
  }
  if (!a.json) return;
  nlohmann::json j;
  j["model"] = a.model;
  j["session_create_ms"] = loaded.create_ms;
  j["threads"] = a.threads;
  j["threads_applied"] = loaded.threads_applied;
  j["opt_level"] = a.opt_level;
  j["opt_level_applied"] = loaded.opt_level_applied;
  j["warmup"] = a.warmup;
  j["iterations"] = a.duration_s > 0 ? nlohmann::json(nullptr) : nlohmann::json(a.iterations);
  j["duration_s"] = a.duration_s > 0 ? nlohmann::json(a.duration_s) : nlohmann::json(nullptr);
  j["peak_rss_per_shape"] = memory.per_shape;
  if (!memory.per_shape) j["peak_rss_note"] = memory_note;
  j["sweep"] = std::move(rows);
  std::printf("%s\n", json_text(j).c_str());
}

// --shapes-random: does memory stay bounded when every run brings another
// shape (the dynamic-shape complaint about other runtimes)? The largest shape
// runs first; then each of -n runs takes one of the spec's shapes at random.
// Reports the resident memory after that first run, after all runs, and the
// peak in between.
void random_shapes_main(const BenchArgs& a) {
  SweepSetup setup = open_sweep(a, a.shapes_random);
  const ShapeSweep& sweep = setup.sweep;
  const LoadedSession& loaded = setup.loaded;
  const Session& s = loaded.session;
  std::vector<Feed> feeds;
  size_t largest = 0;
  int64_t largest_numel = -1;
  for (size_t k = 0; k < sweep.steps.size(); ++k) {
    std::map<std::string, Shape> shapes = setup.fixed;
    int64_t numel = 0;
    for (size_t i = 0; i < sweep.names.size(); ++i) {
      shapes[sweep.names[i]] = sweep.steps[k][i];
      numel += shape_numel(sweep.steps[k][i]);
    }
    Feed feed = setup.files;
    complete_feed(s, feed, shapes, parse_value_ranges(a.val_ranges), a.seed + k, nullptr);
    feeds.push_back(std::move(feed));
    if (numel > largest_numel) largest_numel = numel, largest = k;
  }
  auto run = [&](size_t k) {
    try {
      return s.run(feeds[k]);
    } catch (const std::exception& e) {
      throw Error("shape " + sweep_step_str(sweep, k) + ": " + e.what());
    }
  };
  run(largest);
  const int64_t rss_first = proc_status_bytes("VmRSS");
  std::string why_not;
  const bool peak_since_first = reset_peak_rss(why_not);
  std::mt19937_64 rng(a.seed);
  std::vector<double> lat;
  Progress progress("random", a.iterations, 0, isatty(STDERR_FILENO));
  const auto t0 = Clock::now();
  for (int i = 0; i < a.iterations; ++i) {
    const auto r0 = Clock::now();
    run(static_cast<size_t>(rng() % feeds.size()));
    lat.push_back(std::chrono::duration<double, std::milli>(Clock::now() - r0).count());
    progress.update(i + 1, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  const int64_t rss_last = proc_status_bytes("VmRSS");
  const int64_t peak = std::max(rss_last, peak_since_first ? proc_status_bytes("VmHWM") : process_peak_rss_bytes());
  const double growth =
      rss_first > 0 ? 100.0 * static_cast<double>(rss_last - rss_first) / static_cast<double>(rss_first) : 0;
  const Stats st = stats_of(lat);
  if (a.json) {
    nlohmann::json j;
    j["model"] = a.model;
    j["session_create_ms"] = loaded.create_ms;
    j["shapes"] = sweep.steps.size();
    j["largest_shape"] = sweep_step_str(sweep, largest);
    j["iterations"] = a.iterations;
    j["latency_ms"] = {{"median", st.median}, {"p90", st.p90}, {"min", st.min}, {"mean", st.mean}};
    j["rss_after_first_mib"] = mib(rss_first);
    j["rss_after_all_mib"] = mib(rss_last);
    j["peak_rss_mib"] = mib(peak);
    j["peak_rss_since_first_run"] = peak_since_first;
    j["rss_growth_percent"] = growth;
    j["arena_mib"] = mib(arena_bytes_of(s));
    std::printf("%s\n", json_text(j).c_str());
    return;
  }
  print_session_lines(a, loaded);
  std::printf("shapes           %zu, drawn at random (seed %llu) for %d runs after one at %s\n", sweep.steps.size(),
              static_cast<unsigned long long>(a.seed), a.iterations, sweep_step_str(sweep, largest).c_str());
  std::printf("latency (ms)     min %.3f  median %.3f  mean %.3f  p90 %.3f\n", st.min, st.median, st.mean, st.p90);
  std::printf("RSS              %.1f MiB after the first run, %.1f MiB after all (%+.2f%%), peak %.1f MiB%s\n",
              mib(rss_first), mib(rss_last), growth, mib(peak),
              peak_since_first ? " since the first run" : " of the process");
  std::printf("arena            %.1f MiB\n", mib(arena_bytes_of(s)));
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "Time session creation and repeated runs of a model");
  add_session_flags(cmd, *a, kRunFlags);
  cmd->add_option("--warmup", a->warmup,
                  "Untimed runs before timing (after the first run, timed on its own: first_run_ms)")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  auto* iters = cmd->add_option("--iterations,-n", a->iterations, "Timed runs")
                    ->check(CLI::Range(1, 100000000))
                    ->capture_default_str();
  cmd->add_option("--duration", a->duration_s, "Run for S seconds instead of a number of iterations")
      ->check(CLI::PositiveNumber)
      ->excludes(iters);
  auto* sweep = cmd->add_option("--shapes-sweep", a->shapes_sweep,
                                "Time each shape in turn with one session (symbolic dims stay symbolic): "
                                "NAME:1x3x224x224..8x3x224x224 (dims that differ count up by 1 together), "
                                "NAME:1x8,4x8,32x8 (a list; ranges may be items), several inputs in lockstep "
                                "with ';' (a:1x8..4x8;b:1x8..4x8). --shapes gives the other inputs' sizes");
  auto* random = cmd->add_option("--shapes-random", a->shapes_random,
                                 "Memory under changing shapes: one run at the largest shape of SPEC (as for "
                                 "--shapes-sweep), then -n runs each at one of its shapes drawn at random; "
                                 "reports resident memory after the first run, after all, and the peak")
                     ->excludes(sweep);
  cmd->add_flag("--json", a->json, "Print one JSON object and nothing else on stdout");
  cmd->add_option("--output-dir,-o", a->output_dir, "Write the last run's outputs to DIR/NAME.npy")
      ->excludes(sweep)
      ->excludes(random);
  cmd->callback([a, sweep] {
    a->sweep = sweep->count() > 0;
    bench_main(*a);
  });
}

}  // namespace kiln::cli
