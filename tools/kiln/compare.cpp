// kiln compare MODEL: kiln's outputs against a reference (files, ONNX
// Runtime, or kiln itself without optimizations), with the error measures
// of analysis/tensor_diff.h; --per-layer compares every intermediate value
// and names the first node whose output leaves the tolerance (operator
// alignment, like Polygraphy's `--onnx-outputs mark all`).
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli.h"
#include "core/file.h"
#include "core/settings.h"
#include "engine/engine_file.h"
#include "engine/meta.h"
#include "kiln/tensor_diff.h"
#include "kiln/tensor_io.h"
#include "onnx/mark_outputs.h"

extern char** environ;

namespace kiln::cli {

namespace {

namespace fs = std::filesystem;

struct CompareArgs : SessionFlags {
  std::string ref = "ort";
  double rtol = 1e-3, atol = -1;  // atol < 0: rtol x the reference value's max |element|
  bool per_layer = false;
  std::string format = "table";
  int ref_opt_level = 0;
  std::string ort_dir;
  int show = 10;
  std::string source;  // an engine's ONNX model, for the reference
};

// The ONNX model a reference runs for an engine: --source, else the path its
// build recorded (as given then, or beside the engine).
std::string engine_source(const CompareArgs& a) {
  std::string recorded;
  if (a.source.empty()) {
    const nlohmann::json meta = engine::parse_meta(*engine::EngineFile::open(a.model));
    if (meta.contains("source") && meta["source"].is_string()) recorded = meta["source"].get<std::string>();
    if (recorded.empty())
      throw Error(a.model + ": the engine does not say which ONNX model it was built from: give it with --source");
  }
  const std::string path = a.source.empty() ? recorded : a.source;
  if (fs::exists(path)) return path;
  const fs::path beside = fs::path(a.model).parent_path() / fs::path(path).filename();
  if (a.source.empty() && fs::exists(beside)) return beside.string();
  throw Error(a.model + ": its ONNX model " + path + " is not there" +
              (a.source.empty() ? " (the path recorded when it was built): give it with --source" : ""));
}

// A temporary folder, removed with everything in it when it goes out of scope.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "kiln-compare-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw Error("cannot create a temporary folder in " + fs::temp_directory_path().string());
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Runs argv[0] (looked up in PATH) with stdout discarded; its stderr stays
// the user's. Returns the exit status, or throws when it cannot start.
int spawn_and_wait(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw Error("cannot run '" + argv[0] + "': " + std::strerror(rc));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) throw Error("waiting for '" + argv[0] + "' failed: " + std::strerror(errno));
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Where this kiln program's files are: a build tree inside the source tree
// (build/kiln: bench/ is ../bench), or an installed prefix (bin/kiln).
fs::path program_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : exe.parent_path();
}

// ONNX Runtime for --ref ort: KILN_ORT_DIR, else the benchmarks' install
// beside a build tree (bench/.cache, where bench/vs_ort puts it), else the
// user's cache folder.
std::string default_ort_dir() {
  if (!settings().ort_dir.empty()) return settings().ort_dir;
  const fs::path bench_cache = program_dir() / ".." / "bench" / ".cache";
  if (fs::exists(bench_cache / "node_modules")) return fs::weakly_canonical(bench_cache).string();
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  return (xdg && *xdg ? std::string(xdg) : std::string(home ? home : "/tmp") + "/.cache") + "/kiln/onnxruntime";
}

// The script that runs ONNX Runtime: KILN_ORT_WORKER, else the source tree's
// bench/lib/ort_worker.js beside a build tree.
std::string default_ort_worker() {
  if (!settings().ort_worker.empty()) return settings().ort_worker;
  const fs::path worker = program_dir() / ".." / "bench" / "lib" / "ort_worker.js";
  if (fs::exists(worker)) return fs::weakly_canonical(worker).string();
  throw Error(
      "--ref ort needs kiln's ONNX Runtime runner (bench/lib/ort_worker.js of kiln's source tree): set "
      "KILN_ORT_WORKER to it, or compare with --ref kiln or --ref DIR");
}

// ONNX Runtime's outputs for the model at `model_path` on `feed`, in the
// model's output order: bench/lib/ort_worker.js (onnxruntime-node, which the
// benchmarks install; never a dependency of kiln itself) writes them as .npy.
std::vector<Tensor> run_ort(const std::string& model_path, const Feed& feed, const CompareArgs& a, size_t outputs) {
  // Absolute: node resolves a relative require() against the worker's folder.
  const std::string ort_dir = fs::absolute(a.ort_dir.empty() ? default_ort_dir() : a.ort_dir).string();
  if (!fs::exists(ort_dir + "/node_modules/onnxruntime-node/package.json"))
    throw Error("ONNX Runtime is not installed in " + ort_dir +
                " (--ort-dir or KILN_ORT_DIR): install it with `npm install --prefix " + ort_dir +
                " --ignore-scripts onnxruntime-node@1.30.0`, or compare with --ref kiln or --ref DIR");
  const std::string worker = default_ort_worker();
  if (!fs::exists(worker)) throw Error("ONNX Runtime runner " + worker + " not found (KILN_ORT_WORKER)");
  TempDir tmp;
  nlohmann::json cfg = {{"ort", ort_dir},        {"model", model_path}, {"threads", a.threads > 0 ? a.threads : 1},
                        {"warmup", 0},           {"iterations", 1},     {"outputDir", tmp.path() + "/out"},
                        {"outputsByIndex", true}};
  cfg["inputs"] = nlohmann::json::array();
  for (size_t i = 0; i < feed.size(); ++i) {
    const std::string file = tmp.path() + "/input_" + std::to_string(i) + ".npy";
    save_npy(feed[i].second, file);
    cfg["inputs"].push_back({{"name", feed[i].first}, {"file", file}});
  }
  const int rc = spawn_and_wait({"node", worker, json_text(cfg, -1)});
  if (rc != 0)
    throw Error("ONNX Runtime failed on " + model_path + " (exit " + std::to_string(rc) + "; its message is above)");
  std::vector<Tensor> outs;
  for (size_t k = 0; k < outputs; ++k)
    outs.push_back(load_npy(tmp.path() + "/out/output_" + std::to_string(k) + ".npy"));
  return outs;
}

// The reference outputs in DIR, for outputs named `names`: NAME.npy / NAME.pb
// (with / \ : as _, as `kiln run --output-dir` writes them), else ONNX test
// data's output_K.pb by position. nullopt for an output with no file.
std::vector<std::optional<Tensor>> read_ref_dir(const std::string& dir, const std::vector<std::string>& names) {
  if (!fs::is_directory(dir)) throw Error("--ref " + dir + ": not a folder (nor 'ort' or 'kiln')");
  std::vector<std::optional<Tensor>> refs;
  for (size_t k = 0; k < names.size(); ++k) {
    const std::string safe = output_file_stem(names[k]);
    std::optional<Tensor> t;
    for (const std::string& f :
         {dir + "/" + safe + ".npy", dir + "/" + safe + ".pb", dir + "/output_" + std::to_string(k) + ".pb"})
      if (fs::exists(f)) {
        t = load_tensor_file(f);
        break;
      }
    refs.push_back(std::move(t));
  }
  return refs;
}

struct Row {
  std::string value, node, op;
  bool has_ref = false;
  double atol = 0;
  TensorDiff diff;
};

std::string number(double v) {
  char buf[32];
  if (std::isinf(v)) return "inf";
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

nlohmann::json row_json(const Row& r) {
  nlohmann::json j = {{"value", r.value}, {"node", r.node}, {"op", r.op}};
  if (!r.has_ref) {
    j["pass"] = nullptr;
    j["note"] = "no reference";
    return j;
  }
  const auto num = [](double v) {
    return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(std::isnan(v) ? "nan" : "inf");
  };
  j["pass"] = r.diff.pass;
  if (!r.diff.mismatch.empty()) {
    j["mismatch"] = r.diff.mismatch;
    return j;
  }
  j["atol"] = r.atol;
  j["elements"] = r.diff.elements;
  j["failing"] = r.diff.failing;
  j["max_abs"] = num(r.diff.max_abs);
  j["max_rel"] = num(r.diff.max_rel);
  j["rel_l2"] = num(r.diff.rel_l2);
  j["cosine"] = num(r.diff.cosine);
  return j;
}

void print_row(const Row& r) {
  std::string name = r.value.size() > 40 ? "…" + r.value.substr(r.value.size() - 39) : r.value;
  if (!r.has_ref) {
    std::printf("  %-40s  %s\n", name.c_str(), "no reference");
    return;
  }
  if (!r.diff.mismatch.empty()) {
    std::printf("  %-40s  FAIL  %s\n", name.c_str(), r.diff.mismatch.c_str());
    return;
  }
  std::printf("  %-40s  %-4s  %9s %9s %9s %9s  %lld/%lld\n", name.c_str(), r.diff.pass ? "ok" : "FAIL",
              number(r.diff.max_abs).c_str(), number(r.diff.max_rel).c_str(), number(r.diff.rel_l2).c_str(),
              number(r.diff.cosine).c_str(), static_cast<long long>(r.diff.failing),
              static_cast<long long>(r.diff.elements));
}

// Returns whether every compared value passes.
bool compare_main(const CompareArgs& a) {
  if (a.format != "table" && a.format != "json") throw Error("--format must be table or json, got '" + a.format + "'");
  if (a.rtol < 0) throw Error("--rtol must be >= 0");
  const bool ref_ort = a.ref == "ort", ref_kiln = a.ref == "kiln";
  const bool ref_dir = !ref_ort && !ref_kiln;
  if (a.per_layer && ref_dir)
    throw Error("--per-layer needs a reference that can compute every value: --ref ort or --ref kiln");
  if (!fs::exists(a.model)) throw Error(a.model + ": no such file");
  const auto shapes = parse_shapes(a.shapes);
  // An engine is compared with what its ONNX model gives in the reference
  // (ONNX Runtime cannot read an engine, and kiln at --opt-level 0 would be
  // the engine again).
  const bool is_engine = engine::is_engine_file(a.model);
  if (is_engine && a.per_layer)
    throw Error(a.model +
                ": --per-layer compares every value of an ONNX model; an engine's graph is optimized "
                "(values fused away): compare the ONNX model it was built from");
  if (!is_engine && !a.source.empty()) throw Error("--source is for an engine; " + a.model + " is not one");
  const std::string ref_path = is_engine && !ref_dir ? engine_source(a) : a.model;

  // With --per-layer both sides run a copy of the model whose every value is
  // a graph output (so kiln cannot fuse across them: what is compared is each
  // ONNX node's own result).
  std::optional<TempDir> tmp;
  std::string model_path = a.model;
  MarkedModel marked;
  if (a.per_layer) {
    marked = mark_all_outputs(a.model, shapes);
    tmp.emplace();
    model_path = tmp->path() + "/marked.onnx";
    write_file(model_path, marked.bytes);
  }

  SessionOptions opts;
  opts.input_shapes = shapes;
  if (a.threads > 0) opts.threads = a.threads;
  opts.opt_level = a.opt_level;
  std::optional<Session> reference;
  if (ref_kiln) {
#ifdef KILN_TEST_HOOKS
    // The reference must not see a fault that a test injects into the kiln
    // under test (KILN_TEST_PERTURB_NODE, read when a graph is compiled).
    const std::string saved = settings().test_perturb_node;
    settings_for_tests().test_perturb_node.clear();
#endif
    SessionOptions ref_opts = opts;
    ref_opts.opt_level = a.ref_opt_level;
    try {
      reference.emplace(Session::load(a.per_layer ? model_path : ref_path, ref_opts));
    } catch (...) {
#ifdef KILN_TEST_HOOKS
      settings_for_tests().test_perturb_node = saved;
#endif
      throw;
    }
#ifdef KILN_TEST_HOOKS
    settings_for_tests().test_perturb_node = saved;
#endif
  }
  Session s = Session::load(model_path, opts);
  Feed feed = load_inputs(a.inputs, s);
  if (ref_dir) add_test_data_inputs(s, a.ref, feed);
  complete_feed(s, feed, shapes, parse_value_ranges(a.val_ranges), a.seed, nullptr);
  const std::vector<Tensor> got = s.run(feed);

  std::vector<std::string> names;
  for (const TensorInfo& o : s.outputs()) names.push_back(o.name);
  std::vector<std::optional<Tensor>> want;
  std::string ref_desc;
  if (ref_dir) {
    want = read_ref_dir(a.ref, names);
    ref_desc = "files in " + a.ref;
  } else {
    std::vector<Tensor> outs =
        ref_ort ? run_ort(a.per_layer ? model_path : ref_path, feed, a, names.size()) : reference->run(feed);
    for (Tensor& t : outs) want.emplace_back(std::move(t));
    ref_desc = ref_ort ? "ONNX Runtime" : "kiln at --opt-level " + std::to_string(a.ref_opt_level);
  }

  // Rows in node order (per layer) or output order.
  std::map<std::string, size_t> output_index;
  for (size_t k = 0; k < names.size(); ++k) output_index[names[k]] = k;
  std::vector<Row> rows;
  const auto add_row = [&](const std::string& value, const std::string& node, const std::string& op) {
    auto it = output_index.find(value);
    if (it == output_index.end()) return;
    Row r{value, node, op};
    if (want[it->second]) {
      r.has_ref = true;
      const Tensor& ref = *want[it->second];
      // Deep models accumulate rounding: an error is judged against the
      // scale of the value it is in unless the user fixed an absolute atol.
      r.atol = a.atol >= 0 ? a.atol : a.rtol * max_magnitude(ref);
      r.diff = diff_tensors(got[it->second], ref, a.rtol, r.atol);
    }
    rows.push_back(std::move(r));
  };
  if (a.per_layer) {
    for (const MarkedModel::Tap& t : marked.taps) add_row(t.value, t.node, t.op);
  } else {
    for (const std::string& n : names) add_row(n, "", "");
  }
  size_t compared = 0, failed = 0;
  const Row* first_bad = nullptr;
  for (const Row& r : rows) {
    if (!r.has_ref) continue;
    ++compared;
    if (!r.diff.pass) {
      ++failed;
      if (!first_bad) first_bad = &r;
    }
  }
  if (compared == 0) throw Error("no output of " + a.model + " has a reference in " + ref_desc);

  if (a.format == "json") {
    nlohmann::json j;
    j["model"] = a.model;
    j["reference"] = ref_desc;
    j["rtol"] = a.rtol;
    j["atol"] = a.atol >= 0 ? nlohmann::json(a.atol) : nlohmann::json("rtol x max|ref| per value");
    j["per_layer"] = a.per_layer;
    j["compared"] = compared;
    j["failed"] = failed;
    j["pass"] = failed == 0;
    j["values"] = nlohmann::json::array();
    for (const Row& r : rows) j["values"].push_back(row_json(r));
    if (first_bad)
      j["first_divergence"] = row_json(*first_bad);
    else
      j["first_divergence"] = nullptr;
    std::printf("%s\n", json_text(j).c_str());
    return failed == 0;
  }
  const std::string atol_desc = a.atol >= 0 ? std::to_string(a.atol) : std::string("rtol * max|ref|");
  std::printf("kiln (--opt-level %d) vs %s on %s; pass: |kiln - ref| <= atol + rtol * |ref|, rtol %g, atol %s\n",
              a.opt_level, ref_desc.c_str(), a.model.c_str(), a.rtol, atol_desc.c_str());
  std::printf("  %-40s  %-4s  %9s %9s %9s %9s  %s\n", a.per_layer ? "value" : "output", "", "max abs", "max rel",
              "rel L2", "cosine", "failing");
  if (!a.per_layer) {
    for (const Row& r : rows) print_row(r);
  } else {
    // Each model output, then the failing values (the first --show of them).
    for (size_t k = 0; k < marked.model_outputs && k < names.size(); ++k)
      for (const Row& r : rows)
        if (r.value == names[k]) print_row(r);
    std::printf("  --\n");
    int shown = 0;
    for (const Row& r : rows)
      if (r.has_ref && !r.diff.pass && shown++ < a.show) print_row(r);
    std::printf("%zu values compared, %zu outside the tolerance\n", compared, failed);
    if (first_bad)
      std::printf("first divergence: node '%s' (%s), output '%s'\n", first_bad->node.c_str(), first_bad->op.c_str(),
                  first_bad->value.c_str());
    else
      std::printf("no divergence\n");
    return failed == 0;
  }
  std::printf("%s\n", failed == 0 ? "PASS" : "FAIL");
  return failed == 0;
}

}  // namespace

void add_compare_command(CLI::App& app) {
  auto a = std::make_shared<CompareArgs>();
  CLI::App* cmd = app.add_subcommand(
      "compare",
      "Compare kiln's outputs with a reference (files, ONNX Runtime, or unoptimized kiln); --per-layer finds the "
      "first node that diverges. Exit 0: within tolerance, 2: outside it, 1: error");
  add_session_flags(cmd, *a, kRunFlags);
  cmd->add_option("--ref", a->ref,
                  "Reference: 'ort' (ONNX Runtime through bench's onnxruntime-node), 'kiln' (kiln at "
                  "--ref-opt-level), or a folder of NAME.npy / NAME.pb / output_K.pb files (its input_K.pb "
                  "are used as inputs)")
      ->capture_default_str();
  cmd->add_option("--rtol", a->rtol, "Relative tolerance (numpy.allclose's rule)")->capture_default_str();
  cmd->add_option("--atol", a->atol,
                  "Absolute tolerance (default: rtol times the largest |element| of each reference value)");
  cmd->add_flag("--per-layer", a->per_layer,
                "Compare every intermediate value and name the first node whose output leaves the tolerance");
  cmd->add_option("--show", a->show, "--per-layer table: how many failing values to list")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  cmd->add_option("--format", a->format, "table or json")->capture_default_str();
  cmd->add_option("--source", a->source,
                  "MODEL is an engine: the ONNX model it was built from, which the reference runs (default: the "
                  "path its build recorded)");
  cmd->add_option("--ref-opt-level", a->ref_opt_level, "--ref kiln: the reference's optimization level")
      ->check(CLI::IsMember({0, 1, 2}))
      ->capture_default_str();
  cmd->add_option("--ort-dir", a->ort_dir,
                  "Where onnxruntime-node is installed (npm --prefix); default KILN_ORT_DIR, else bench/.cache beside "
                  "a build tree, else ~/.cache/kiln/onnxruntime");
  cmd->callback([a] {
    if (!compare_main(*a)) throw CLI::RuntimeError(2);
  });
}

}  // namespace kiln::cli
