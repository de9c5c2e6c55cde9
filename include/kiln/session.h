// kiln::Session: load a model, inspect its inputs and outputs, run it.
//
//   kiln::Session s = kiln::Session::load("model.onnx");
//   std::vector<kiln::Tensor> out = s.run({{"image", image_tensor}});
//
// A Session is immutable after creation: run() may be called concurrently
// from several threads. Errors are thrown as kiln::Error.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kiln/dtype.h"
#include "kiln/error.h"
#include "kiln/tensor.h"

namespace kiln {

// One dim of a declared shape: a size (>= 0), or -1 with the symbol's name
// (empty when the dim is unnamed and unknown).
struct TensorDim {
  int64_t size = -1;
  std::string symbol;
};

struct TensorInfo {
  std::string name;
  DType dtype = DType::kUndefined;
  bool has_shape = false;    // false: rank unknown
  bool has_default = false;  // an initializer gives it a value when not fed
  std::vector<TensorDim> shape;
  std::string str() const;  // "float[batch x 1 x 8 x 8]"
};

struct SessionOptions {
  // Fixed sizes for symbolic or unknown input dims, applied before shape
  // inference: {"image", {1, 3, 224, 224}}. The name "" stands for the
  // model's only input (an error when it has several).
  std::map<std::string, Shape> input_shapes;
  // Threads of the session's intra-op pool, the calling thread included;
  // 0 = the number of physical cores.
  int threads = 0;
  // Graph optimizer level: 0 runs the graph as imported, 1 adds constant and
  // shape folding and cleanups, 2 (default) adds fusions. Set
  // KILN_PASS_REPORT=1 to print what each pass did, KILN_DUMP_PASSES=1 to
  // dump the graph after each.
  int opt_level = 2;
  // Pass names to skip (see src/passes/pass_manager.cpp), e.g. "fuse_epilogue".
  std::vector<std::string> disabled_passes;
  // Place intermediate tensors in one reused arena planned from their
  // lifetimes (docs/memory.md), so that steady-state runs allocate no tensor
  // data. KILN_ARENA=0 in the environment also turns it off.
  bool memory_planner = true;
  // Engines (.kiln) with several profiles: the one every run uses; -1 picks,
  // per run, the profile that fits the inputs with the smallest memory plan.
  int profile = -1;
};

// An optimization profile of an engine (kiln build): for each input with
// dynamic dims, the smallest, typical and largest shape it accepts. Runs with
// any shapes in [min, max] (dim by dim) use it; kernels are chosen and tuned
// for opt; memory is planned once for max.
struct ShapeProfile {
  std::map<std::string, Shape> min, opt, max;
  std::string str() const;  // "input:1x3x224x224..32x3x224x224 (opt 8x3x224x224)"
};

class Session {
 public:
  // Loads an ONNX model or a kiln engine (told apart by the engine's magic
  // bytes). An engine was optimized when it was built: options.opt_level,
  // disabled_passes and input_shapes do not apply to it.
  static Session load(const std::string& path, const SessionOptions& options = {});
  static Session load_bytes(const void* data, size_t size, const SessionOptions& options = {});
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;

  // The graph's inputs in order. Those with has_default (initializers that
  // are also graph inputs) may be fed to override the weight.
  const std::vector<TensorInfo>& inputs() const;
  const std::vector<TensorInfo>& outputs() const;

  // Runs the model. Inputs are matched by name; every required input must be
  // given. Input tensors are read in place (no copy). Returns the outputs in
  // the order of outputs().
  std::vector<Tensor> run(const std::vector<std::pair<std::string, Tensor>>& inputs) const;

  // The nodes a run executes, in order, after optimization (kiln profile).
  struct ExecutedNode {
    std::string name;
    std::string op;                         // "Conv"; other domains prefixed: "kiln.BlockedConv"
    std::vector<std::string> input_types;   // "float[1x64x56x56]", as inferred at load ("" for an omitted input)
    std::vector<std::string> output_types;  // likewise
    // The model's nodes whose work this one does: several when the optimizer
    // fused them (Conv + BatchNormalization + Relu), else its own name.
    std::vector<std::string> origins;
    // Its cost (docs/flops.md), -1 when not known at load (symbolic shapes,
    // or an op without a counting rule).
    int64_t macs = -1, flops = -1;
    // Bytes of its input and output tensors, weights included
    // (analysis/roofline.h), -1 when not all are static.
    int64_t bytes = -1;
  };
  const std::vector<ExecutedNode>& executed_nodes() const;
  // Timing of one run, per executed node: start and end in microseconds from
  // the run's start (a node holding If/Loop/Scan bodies includes their time).
  struct RunProfile {
    std::vector<double> start_us, end_us;
    double total_us = 0;
    // Every node inside a control-flow body, nested bodies included, in a
    // depth-first walk of the executed graph (the same list for every run
    // of a session): its time summed over this run's calls and the number
    // of calls (a Loop body's nodes run once per iteration, an untaken
    // branch's not at all).
    struct BodyNode {
      size_t node = 0;   // the executed (top-level) node holding it
      std::string path;  // "<node name>/<attribute>/<name>", nested: ".../<attribute>/<name>"
      std::string op;
      int depth = 1;  // 1: in a top-level node's body
      double total_us = 0;
      int64_t calls = 0;
    };
    std::vector<BodyNode> body_nodes;
  };
  // run() that also fills `profile` (null: plain run).
  std::vector<Tensor> run(const std::vector<std::pair<std::string, Tensor>>& inputs, RunProfile* profile) const;

  // Model metadata.
  int64_t ir_version() const;
  std::map<std::string, int> opsets() const;
  std::string producer() const;
  size_t num_nodes() const;

  // Memory planner (docs/memory.md). Plans are made at the first run with each
  // set of input shapes; of those made so far, the largest arena's size and
  // the sum of the tensors it holds (their size without reuse). 0 before the
  // first run or with the planner off.
  size_t arena_bytes() const;
  size_t planned_bytes() const;

  // Engines: whether this session runs one, and its profiles (empty for ONNX
  // models). Warnings of the load (e.g. kernels re-packed for this CPU).
  bool is_engine() const;
  const std::vector<ShapeProfile>& profiles() const;
  const std::vector<std::string>& load_warnings() const;
  // The implementation each executed node runs ("onednn", "winograd"; "" for
  // an op's only one), parallel to executed_nodes().
  std::vector<std::string> implementations() const;

  struct Impl;

 private:
  explicit Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

std::string version();

// What this copy of kiln is: `kiln --version` prints it.
struct BuildInfo {
  std::string version;     // "0.1.0"
  std::string commit;      // git commit it was built from ("-dirty": with local changes), or "unknown"
  std::string build_type;  // CMake build type: Release, RelWithDebInfo, ...
  std::string compiler;    // "GNU 12.2.0"
  std::vector<std::string>
      isas;  // kernel instruction sets compiled in ("scalar", "avx2", "avx512"); one is chosen at run time
};
BuildInfo build_info();

// What `kiln inspect --format json` prints (docs/flops.md): for an ONNX
// model, its header, op histogram, unsupported nodes and per-node shapes,
// parameters, MACs and FLOPs (`input_shapes` fixes symbolic dims, which must
// all end up known; `optimized` counts the graph after the optimizer); for
// an engine, its header, profiles and the kernel each node runs. JSON text.
std::string inspect_json(const std::string& path, const std::map<std::string, Shape>& input_shapes = {},
                         bool optimized = false);

// Building engine files (kiln build).
struct BuildOptions {
  // opt_level, threads, disabled_passes and memory_planner as for a session;
  // input_shapes makes a static build (one profile with min = opt = max).
  SessionOptions session;
  // Profiles for dynamic dims (empty: a static build).
  std::vector<ShapeProfile> profiles;
  // Tactic timing: where several kernels could run a node (Winograd or
  // oneDNN for a 3x3 convolution), time each at the opt shapes and keep the
  // faster (src/engine/tactics.h). timing_cache: a JSON file of earlier
  // timings, read when it exists and written back ("" = none).
  bool time_tactics = true;
  std::string timing_cache;
  // Values for inputs that must hold real data in the build's recording run
  // (each profile's memory plan is recorded from one run at its max shapes):
  // a sample rate that picks a branch, valid token ids. Inputs not given get
  // filler data (floats in [0, 1), other types 0). Each must have the shape
  // that run uses (the profile's max).
  std::vector<std::pair<std::string, Tensor>> inputs;
  // Told what the build is doing: a stage name and the fraction done, 0..1.
  std::function<void(const std::string& stage, double fraction)> progress;
};
struct BuildReport {
  size_t engine_bytes = 0, weight_bytes = 0, packed_bytes = 0;
  size_t nodes = 0;
  double seconds = 0;
  std::vector<size_t> arena_bytes;            // per profile
  int tactics_timed = 0, tactics_cached = 0;  // nodes timed now, nodes whose timings came from the cache
};
// Builds an engine file from an ONNX model (docs/engine-format.md).
BuildReport build_engine(const std::string& onnx_path, const std::string& engine_path,
                         const BuildOptions& options = {});

}  // namespace kiln
