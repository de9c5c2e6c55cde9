// kiln run MODEL: run a model once on given or random inputs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>

#include "cli.h"
#include "core/dispatch.h"

namespace kiln::cli {

namespace {

struct RunArgs : SessionFlags {
  std::string output_dir;
  std::string output_format = "npy";
};

// Top-k of each row of a [N, C] (or [C]) float score tensor.
void print_topk(const Tensor& t) {
  if (!dtype_is_float(t.dtype()) || t.rank() < 1 || t.rank() > 2 || t.numel() == 0) return;
  int64_t rows = t.rank() == 2 ? t.dim(0) : 1;
  int64_t cols = t.shape().back();
  if (cols < 2) return;
  std::vector<double> v(static_cast<size_t>(t.numel()));
  dispatch<FloatTypes>(t.dtype(), "top-k", [&]<typename T>() {
    for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = static_cast<double>(acc_t<T>(t.data<T>()[i]));
  });
  if (rows > 1) {
    std::printf("    argmax per row:");
    for (int64_t r = 0; r < rows; ++r) {
      const double* row = v.data() + r * cols;
      std::printf(" %lld", static_cast<long long>(std::max_element(row, row + cols) - row));
    }
    std::printf("\n");
  }
  int64_t shown = std::min<int64_t>(rows, 16);
  int64_t k = std::min<int64_t>(5, cols);
  for (int64_t r = 0; r < shown; ++r) {
    std::vector<int64_t> idx(static_cast<size_t>(cols));
    std::iota(idx.begin(), idx.end(), 0);
    const double* row = v.data() + r * cols;
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int64_t a, int64_t b) { return row[a] > row[b]; });
    std::printf("    %s top-%lld:", rows > 1 ? ("row " + std::to_string(r)).c_str() : "", static_cast<long long>(k));
    for (int64_t j = 0; j < k; ++j) std::printf("  %lld (%.4g)", static_cast<long long>(idx[j]), row[idx[j]]);
    std::printf("\n");
  }
  if (rows > shown) std::printf("    ... %lld more rows\n", static_cast<long long>(rows - shown));
}

void run_main(const RunArgs& a) {
  SessionOptions opts;
  auto shapes = parse_shapes(a.shapes);
  opts.input_shapes = shapes;
  opts.threads = a.threads;
  opts.opt_level = a.opt_level;
  auto t0 = std::chrono::steady_clock::now();
  Session s = Session::load(a.model, opts);
  auto t1 = std::chrono::steady_clock::now();
  Feed feed = make_feed(s, a, shapes, stdout);
  auto t2 = std::chrono::steady_clock::now();
  std::vector<Tensor> outs = s.run(feed);
  auto t3 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < outs.size(); ++i) {
    const std::string& name = s.outputs()[i].name;
    std::printf("output %s: %s %s  %s\n", name.c_str(), dtype_name(outs[i].dtype()).c_str(),
                shape_str(outs[i].shape()).c_str(), summarize(outs[i]).c_str());
    print_topk(outs[i]);
  }
  if (!a.output_dir.empty()) write_outputs(s, outs, a.output_dir, a.output_format);
  using ms = std::chrono::duration<double, std::milli>;
  std::printf("load %.2f ms, run %.2f ms\n", ms(t1 - t0).count(), ms(t3 - t2).count());
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  CLI::App* cmd = app.add_subcommand("run", "Run a model once and print its outputs");
  add_session_flags(cmd, *a, kRunFlags);
  cmd->add_option("--output-dir,-o", a->output_dir, "Write each output to DIR/NAME.npy (or .pb)");
  cmd->add_option("--output-format", a->output_format, "npy or pb")->check(CLI::IsMember({"npy", "pb"}));
  cmd->callback([a] { run_main(*a); });
}

}  // namespace kiln::cli
