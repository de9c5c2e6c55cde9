// Shared pieces of the kiln command-line tool.
#pragma once
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kiln/session.h"

namespace kiln::cli {

// The flags every command that loads a model shares, declared once by
// add_session_flags so that they read, validate and explain themselves the
// same everywhere. Commands' argument structs derive from it.
struct SessionFlags {
  std::string model;                    // MODEL: an ONNX model or a kiln engine
  std::vector<std::string> inputs;      // --input NAME=FILE or NAME=VALUE (repeatable)
  std::string shapes;                   // --shapes NAME:1x3x224x224,...
  std::vector<std::string> val_ranges;  // --val-range [NAME:]LO,HI (repeatable)
  int threads = 0;                      // --threads (0: the physical cores)
  int opt_level = 2;                    // --opt-level / -O
  uint64_t seed = 0;                    // --seed
};
enum SessionFlag : unsigned {
  kModelFlag = 1,
  kInputsFlag = 2,
  kShapesFlag = 4,
  kThreadsFlag = 8,
  kOptLevelFlag = 16,
  kSeedFlag = 32,
  kRunFlags = kModelFlag | kInputsFlag | kShapesFlag | kThreadsFlag | kOptLevelFlag | kSeedFlag,
};
// Adds the flags in `which` (a SessionFlag mask) to `cmd`, bound to `f`.
void add_session_flags(CLI::App* cmd, SessionFlags& f, unsigned which);

// JSON text for output. Names in a model are not checked to be UTF-8 by
// ONNX; invalid bytes become U+FFFD here rather than an exception.
template <typename Json>
std::string json_text(const Json& j, int indent = 2) {
  return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

// "a:1x3x224x224,b:2x4" -> {a: [1,3,224,224], b: [2,4]}; an item without a
// name ("1x3x224x224") is stored under "" (the model's only input: see
// SessionOptions::input_shapes). kiln::Error on bad text.
std::map<std::string, Shape> parse_shapes(const std::string& text);
Shape parse_dims(const std::string& dims, const std::string& flag, const std::string& item);
// --shapes-sweep: the shapes to bench one after another. Each step gives every
// swept input a shape; the inputs of one step vary in lockstep.
struct ShapeSweep {
  std::vector<std::string> names;         // the swept inputs, in the spec's order
  std::vector<std::vector<Shape>> steps;  // steps[k][i]: the shape of names[i] at step k
};
// "a:1x8..4x8;b:1x8,2x8,3x8,4x8" (see bench's --help); kiln::Error naming the
// problem on bad text.
ShapeSweep parse_shape_sweep(const std::string& spec);
// "a:1x8,b:2x8": one step of a sweep, in --shapes syntax.
std::string sweep_step_str(const ShapeSweep& sweep, size_t step);
// --val-range: the interval random data of an input is drawn from, by input
// name ("" = every input not named). "ids:0,30000" -> {ids: {0, 30000}}.
using ValueRanges = std::map<std::string, std::pair<double, double>>;
ValueRanges parse_value_ranges(const std::vector<std::string>& specs);
// Random data of `shape` for a declared input: floats uniform in [lo, hi),
// integers uniform in [lo, hi] (default: [-1, 1) and [0, 3], so that index
// inputs stay valid), bools and strings arbitrary.
Tensor random_input(const TensorInfo& info, const Shape& shape, const std::pair<double, double>* range, uint64_t seed);
// "[1,2,3]", "[[1,2],[3,4]]", "16000", "true": a literal as a tensor of
// `info`'s dtype (its declared rank when a single value is given for a
// tensor of one element); nullopt when `text` is not a literal. kiln::Error
// when it is one that does not fit the dtype.
std::optional<Tensor> parse_literal(const std::string& text, const TensorInfo& info);
using Feed = std::vector<std::pair<std::string, Tensor>>;
// The tensors of "NAME=FILE" (.npy or TensorProto .pb) or "NAME=VALUE"
// (a literal, see parse_literal) specs for the inputs of `s`.
Feed load_inputs(const std::vector<std::string>& specs, const std::vector<TensorInfo>& inputs);
inline Feed load_inputs(const std::vector<std::string>& specs, const Session& s) {
  return load_inputs(specs, s.inputs());
}
// Adds random data (see random_input) for every required input of `s`
// missing from `feed`. Its shape: `shapes`, else the engine's profile (opt),
// else the declared one; an input with a dim of unknown size is an error that
// lists every such input with an example --shapes (never silently 1). With
// `log`, prints one "input NAME: ..." line per input.
void complete_feed(const Session& s, Feed& feed, const std::map<std::string, Shape>& shapes, const ValueRanges& ranges,
                   uint64_t seed, std::FILE* log);
// The error for inputs whose dims are unresolved (complete_feed, inspect):
// each with its declared type, and an example --shapes.
std::string unresolved_dims_message(const std::vector<TensorInfo>& inputs);
// Adds the inputs of an ONNX test data folder (input_0.pb, input_1.pb, ...)
// to `feed`, except those the user gave: a file whose TensorProto name is an
// input's goes to that input; file K otherwise to the K-th input without an
// initializer (as ONNX's test runner and ONNX Runtime map them). kiln::Error
// when a file has no input left.
void add_test_data_inputs(const Session& s, const std::string& dir, Feed& feed);
// load_inputs, then complete_feed, from a command's flags.
Feed make_feed(const Session& s, const SessionFlags& f, const std::map<std::string, Shape>& shapes, std::FILE* log);
// Writes each output to DIR/NAME.npy (or .pb with format "pb"), creating DIR.
void write_outputs(const Session& s, const std::vector<Tensor>& outs, const std::string& dir,
                   const std::string& format);
// A CSV field as RFC 4180 wants it: quoted (quotes doubled) when it holds a
// comma, quote or line break.
std::string csv_field(const std::string& s);
// An output's name as a file name (write_outputs): / \ : become _.
std::string output_file_stem(const std::string& name);
// Linear interpolation between closest ranks, on sorted values (0 when empty).
double percentile(const std::vector<double>& sorted, double p);
double median(std::vector<double> v);
// One-line summary of a tensor: min/max/mean or the first values.
std::string summarize(const Tensor& t);

// The fp32 GFLOP/s `threads` threads reach on an FMA loop as wide as the
// instruction set kiln selected (AVX-512, AVX2, or SSE2 multiplies and adds
// under the portable kernels: the CPU capped by KILN_CPU_ISA): the machine's
// peak for kiln's kernels, measured (kiln device); `seconds` per try, best of
// three.
double machine_peak_gflops(int threads, double seconds = 0.2);
// The loop machine_peak_gflops runs: "avx512 FMA", "avx2 FMA" or "sse2 mul+add".
std::string peak_loop_name();

// Cache sizes as Linux reports them for CPU 0 (0 when unknown).
struct CacheSizes {
  int64_t l2_bytes = 0;         // one core's L2
  int64_t llc_bytes = 0;        // the last-level cache CPU 0 shares (one instance)
  int64_t llc_total_bytes = 0;  // all instances of the last level together
};
CacheSizes cache_sizes();

// Streaming bandwidth of `threads` threads, each over its own buffers
// (device_bandwidth.cpp): a read and a STREAM triad, over working sets that
// sit in each core's L2, and over ones far larger than the last-level cache
// (DRAM). Bytes per second count what the kernels read and write (not
// write-allocate traffic). About 0.1-0.3 s.
struct MemoryBandwidth {
  int threads = 0;
  double l2_read_gbps = 0, l2_triad_gbps = 0;
  double dram_read_gbps = 0, dram_triad_gbps = 0;
  int64_t l2_set_bytes = 0;    // per thread
  int64_t dram_set_bytes = 0;  // all threads together
  double seconds = 0;          // the measurement's own time
  // The roofs: the faster of the two kernels at each level.
  double l2_gbps() const { return l2_read_gbps > l2_triad_gbps ? l2_read_gbps : l2_triad_gbps; }
  double dram_gbps() const { return dram_read_gbps > dram_triad_gbps ? dram_read_gbps : dram_triad_gbps; }
};
MemoryBandwidth measure_memory_bandwidth(int threads);

void add_run_command(CLI::App& app);
void add_conformance_command(CLI::App& app);
void add_ops_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_profile_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_build_command(CLI::App& app);
void add_device_command(CLI::App& app);
void add_compare_command(CLI::App& app);
void add_export_onnx_command(CLI::App& app);
void add_graph_command(CLI::App& app);
void add_weights_command(CLI::App& app);
void add_serve_command(CLI::App& app);
void add_perf_client_command(CLI::App& app);

}  // namespace kiln::cli
