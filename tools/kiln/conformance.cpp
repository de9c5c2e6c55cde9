// kiln conformance DIR...: runs ONNX backend-test folders (model.onnx +
// test_data_set_*/{input,output}_K.pb) and compares with the expected data.
// Each test runs in a forked child with a time limit, so a crash or hang in
// one test is reported as an ERROR and the run goes on.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "cli.h"
#include "core/dispatch.h"
#include "kiln/tensor_io.h"

namespace kiln::cli {

namespace fs = std::filesystem;

namespace {

struct ConfArgs : SessionFlags {
  std::vector<std::string> dirs;
  std::string report;
  std::string filter;
  std::string expected_failures;
  std::string tiers;
  double rtol = 1e-3;
  double atol = 1e-7;
  double max_rel_l2 = -1;  // > 0: compare float outputs by relative L2 error instead
  int timeout_s = 60;
  bool no_fork = false;
  bool quiet = false;
};

struct Result {
  std::string status;  // PASS FAIL UNSUPPORTED ERROR
  std::string detail;
};

std::vector<fs::path> sorted_files(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> files;
  for (int k = 0;; ++k) {
    fs::path p = dir / (prefix + std::to_string(k) + ".pb");
    if (!fs::exists(p)) break;
    files.push_back(p);
  }
  return files;
}

// Relative L2 error ||got - want|| / ||want|| of float tensors.
double relative_l2(const Tensor& got, const Tensor& want) {
  double num = 0, den = 0;
  dispatch<FloatTypes>(got.dtype(), "compare", [&]<typename T>() {
    for (int64_t i = 0; i < got.numel(); ++i) {
      double g = static_cast<double>(acc_t<T>(got.data<T>()[i]));
      double w = static_cast<double>(acc_t<T>(want.data<T>()[i]));
      num += (g - w) * (g - w);
      den += w * w;
    }
  });
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

// Compares one output; returns "" when equal within tolerance.
std::string compare(const Tensor& got, const Tensor& want, double rtol, double atol, double max_rel_l2) {
  if (got.dtype() != want.dtype()) return "type " + dtype_name(got.dtype()) + ", expected " + dtype_name(want.dtype());
  if (got.shape() != want.shape()) return "shape " + shape_str(got.shape()) + ", expected " + shape_str(want.shape());
  if (max_rel_l2 > 0 && dtype_is_float(got.dtype())) {
    double e = relative_l2(got, want);
    if (!(e <= max_rel_l2)) {
      char buf[128];
      std::snprintf(buf, sizeof buf, "relative L2 error %.3g exceeds %.3g", e, max_rel_l2);
      return buf;
    }
    return "";
  }
  if (got.dtype() == DType::kString) {
    for (int64_t i = 0; i < got.numel(); ++i)
      if (got.data<std::string>()[i] != want.data<std::string>()[i])
        return "element " + std::to_string(i) + " is \"" + got.data<std::string>()[i] + "\", expected \"" +
               want.data<std::string>()[i] + "\"";
    return "";
  }
  std::string bad;
  double worst = -1;
  int64_t nbad = 0;
  dispatch<PodTypes>(got.dtype(), "compare", [&]<typename T>() {
    for (int64_t i = 0; i < got.numel(); ++i) {
      double g = static_cast<double>(acc_t<T>(got.data<T>()[i]));
      double w = static_cast<double>(acc_t<T>(want.data<T>()[i]));
      bool ok;
      if (!dtype_is_float(got.dtype())) {
        if constexpr (std::is_integral_v<T>)
          ok = got.data<T>()[i] == want.data<T>()[i];
        else
          ok = g == w;
      } else if (std::isnan(w) || std::isnan(g)) {
        ok = std::isnan(w) && std::isnan(g);
      } else if (std::isinf(w) || std::isinf(g)) {
        ok = g == w;
      } else {
        ok = std::fabs(g - w) <= atol + rtol * std::fabs(w);
      }
      if (!ok) {
        ++nbad;
        double err = std::isfinite(g - w) ? std::fabs(g - w) : INFINITY;
        if (err > worst || bad.empty()) {
          worst = err;
          char buf[160];
          std::snprintf(buf, sizeof buf, "element %lld is %.9g, expected %.9g (abs err %.3g)",
                        static_cast<long long>(i), g, w, err);
          bad = buf;
        }
      }
    }
  });
  if (nbad) return std::to_string(nbad) + " of " + std::to_string(got.numel()) + " elements differ; worst: " + bad;
  return "";
}

Result run_test(const fs::path& dir, const ConfArgs& a) {
  try {
    SessionOptions opts;
    opts.opt_level = a.opt_level;
    opts.threads = a.threads;
    Session s = Session::load((dir / "model.onnx").string(), opts);
    std::vector<fs::path> sets;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0) sets.push_back(e.path());
    std::sort(sets.begin(), sets.end());
    if (sets.empty()) return {"ERROR", "no test_data_set_* folder"};
    for (const auto& set : sets) {
      auto out_files = sorted_files(set, "output_");
      Feed feed;
      add_test_data_inputs(s, set.string(), feed);
      // Twice: the first run with these shapes records what the memory
      // planner needs, the second runs in its arena (docs/memory.md).
      for (int pass = 0; pass < 2; ++pass) {
        std::vector<Tensor> outs = s.run(feed);
        std::string which = sets.size() > 1 ? set.filename().string() + ": " : "";
        if (pass == 1) which += "second (memory-planned) run: ";
        if (out_files.size() != outs.size())
          return {"FAIL",
                  which + std::to_string(outs.size()) + " outputs, expected " + std::to_string(out_files.size())};
        for (size_t k = 0; k < outs.size(); ++k) {
          Tensor want = load_tensor_pb(out_files[k].string());
          std::string diff = compare(outs[k], want, a.rtol, a.atol, a.max_rel_l2);
          if (!diff.empty()) return {"FAIL", which + "output '" + s.outputs()[k].name + "': " + diff};
        }
      }
    }
    return {"PASS", ""};
  } catch (const UnsupportedError& e) {
    return {"UNSUPPORTED", e.what()};
  } catch (const std::exception& e) {
    return {"ERROR", e.what()};
  }
}

std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  std::replace(s.begin(), s.end(), '\t', ' ');
  return s;
}

Result run_isolated(const fs::path& dir, const ConfArgs& a) {
  if (a.no_fork) return run_test(dir, a);
  int fds[2];
  if (pipe(fds) != 0) return run_test(dir, a);
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    alarm(static_cast<unsigned>(a.timeout_s));
    Result r = run_test(dir, a);
    std::string msg = r.status + "\t" + one_line(r.detail);
    ssize_t ignored = write(fds[1], msg.data(), msg.size());
    (void)ignored;
    close(fds[1]);
    _exit(0);
  }
  close(fds[1]);
  std::string msg;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) msg.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    return {"ERROR", sig == SIGALRM ? "timed out after " + std::to_string(a.timeout_s) + " s"
                                    : "crashed with signal " + std::to_string(sig)};
  }
  size_t tab = msg.find('\t');
  if (tab == std::string::npos) return {"ERROR", "test process produced no result"};
  return {msg.substr(0, tab), msg.substr(tab + 1)};
}

std::map<std::string, std::string> read_tsv_map(const std::string& path, int key_col, int val_col) {
  std::map<std::string, std::string> m;
  std::ifstream f(path);
  if (!f) throw Error(path + ": cannot open");
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> cols;
    std::stringstream ss(line);
    std::string c;
    while (std::getline(ss, c, '\t')) cols.push_back(c);
    if (static_cast<int>(cols.size()) > std::max(key_col, val_col))
      m[cols[static_cast<size_t>(key_col)]] = cols[static_cast<size_t>(val_col)];
    else if (static_cast<int>(cols.size()) > key_col)
      m[cols[static_cast<size_t>(key_col)]] = "";
  }
  return m;
}

int conformance_main(const ConfArgs& a) {
  std::vector<fs::path> tests;
  for (const auto& d : a.dirs) {
    if (!fs::is_directory(d)) throw Error(d + ": not a directory");
    if (fs::exists(fs::path(d) / "model.onnx")) tests.push_back(d);
    for (auto it = fs::recursive_directory_iterator(d); it != fs::recursive_directory_iterator(); ++it)
      if (it->is_regular_file() && it->path().filename() == "model.onnx" && it->path().parent_path() != fs::path(d))
        tests.push_back(it->path().parent_path());
  }
  std::sort(tests.begin(), tests.end());
  tests.erase(std::unique(tests.begin(), tests.end()), tests.end());
  std::regex filter(a.filter.empty() ? ".*" : a.filter);
  std::map<std::string, std::string> expected;
  if (!a.expected_failures.empty()) expected = read_tsv_map(a.expected_failures, 0, 1);
  std::map<std::string, std::string> tiers;
  std::string tiers_path = a.tiers;
  if (tiers_path.empty() && a.dirs.size() == 1 && fs::exists(fs::path(a.dirs[0]).parent_path() / "tiers.tsv"))
    tiers_path = (fs::path(a.dirs[0]).parent_path() / "tiers.tsv").string();
  if (tiers_path.empty() && a.dirs.size() == 1 && fs::exists(fs::path(a.dirs[0]) / ".." / "tiers.tsv"))
    tiers_path = (fs::path(a.dirs[0]) / ".." / "tiers.tsv").string();
  if (!tiers_path.empty()) tiers = read_tsv_map(tiers_path, 0, 2);

  std::ofstream report;
  if (!a.report.empty()) {
    report.open(a.report);
    if (!report) throw Error(a.report + ": cannot open for writing");
    report << "test\tstatus\tdetail\n";
  }
  int passed = 0, failed = 0, skipped = 0, unexpected = 0;
  std::map<std::string, std::pair<int, int>> by_tier;  // tier -> (passed, total)
  std::vector<std::string> now_passing;
  for (const auto& t : tests) {
    std::string name = t.filename().string();
    if (!std::regex_search(name, filter)) {
      ++skipped;
      continue;
    }
    Result r = run_isolated(t, a);
    bool ok = r.status == "PASS";
    ok ? ++passed : ++failed;
    if (!tiers.empty()) {
      auto& [p, n] = by_tier[tiers.count(name) ? tiers[name] : "?"];
      ++n;
      if (ok) ++p;
    }
    bool expected_fail = expected.count(name) != 0;
    if (!ok && !expected_fail) ++unexpected;
    if (ok && expected_fail) now_passing.push_back(name);
    if (!a.quiet || (!ok && !expected_fail))
      std::printf("%s %s%s%s%s\n", r.status.c_str(), name.c_str(), r.detail.empty() ? "" : ": ",
                  one_line(r.detail).c_str(), !ok && expected_fail ? "  [expected]" : "");
    if (report) report << name << "\t" << r.status << "\t" << one_line(r.detail) << "\n";
  }
  for (const auto& [tier, pn] : by_tier)
    std::printf("tier %s: %d of %d passed (%.1f%%)\n", tier.c_str(), pn.first, pn.second,
                pn.second ? 100.0 * pn.first / pn.second : 0.0);
  for (const auto& n : now_passing)
    std::printf("now passing (remove from the expected-failures list): %s\n", n.c_str());
  if (!a.expected_failures.empty()) std::printf("%d failure(s) not in the expected-failures list\n", unexpected);
  std::printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  if (!a.expected_failures.empty()) return unexpected ? 1 : 0;
  return failed ? 1 : 0;
}

}  // namespace

void add_conformance_command(CLI::App& app) {
  auto a = std::make_shared<ConfArgs>();
  CLI::App* cmd =
      app.add_subcommand("conformance", "Run ONNX backend-test folders and compare with their expected outputs");
  add_session_flags(cmd, *a, kThreadsFlag | kOptLevelFlag);
  cmd->add_option("dirs", a->dirs, "Folders holding test folders (model.onnx + test_data_set_*)")->required();
  cmd->add_option("--report", a->report, "Write a TSV (test, status, detail)");
  cmd->add_option("--filter", a->filter, "Only tests whose name matches this regex");
  cmd->add_option("--rtol", a->rtol, "Relative tolerance (default 1e-3)");
  cmd->add_option("--atol", a->atol, "Absolute tolerance (default 1e-7)");
  cmd->add_option("--max-rel-l2", a->max_rel_l2,
                  "Compare float outputs by relative L2 error (e.g. 1e-4) instead of element-wise rtol/atol");
  cmd->add_option("--expected-failures", a->expected_failures,
                  "TSV of tests allowed to fail (name<TAB>reason); exit 1 only for other failures");
  cmd->add_option("--tiers", a->tiers, "tiers.tsv for a per-tier summary (default: next to DIR)");
  cmd->add_option("--timeout", a->timeout_s, "Seconds per test before it counts as an ERROR");
  cmd->add_flag("--no-fork", a->no_fork, "Run tests in this process (for debuggers and sanitizers)");
  cmd->add_flag("--quiet,-q", a->quiet, "Print only unexpected failures and the summary");
  cmd->callback([a] {
    int rc = conformance_main(*a);
    if (rc) throw CLI::RuntimeError(rc);
  });
}

}  // namespace kiln::cli
