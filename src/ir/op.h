// The op registry: one OpSchema per (domain, op, opset range), declared next to
// its kernel with KILN_OP. The registry answers "is op X at opset N with types
// T supported, and if not why"; shape inference and kernel creation go through
// the schema. Custom ops register through the same path.
#pragma once
#include <climits>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "core/run_scratch.h"
#include "ir/graph.h"
#include "kiln/error.h"
#include "kiln/tensor.h"

namespace kiln {

// ---------------------------------------------------------------- inference

class InferContext {
 public:
  explicit InferContext(const Node& node) : node_(node) {}
  const Node& node() const { return node_; }
  size_t num_inputs() const { return node_.inputs.size(); }
  size_t num_outputs() const { return node_.outputs.size(); }
  bool has_input(size_t i) const { return node_.has_input(i); }
  bool has_output(size_t i) const { return node_.has_output(i); }
  // Type of input i; a kiln::Error when the input is absent.
  const ValueType& input_type(size_t i) const;
  DType input_dtype(size_t i) const { return input_type(i).dtype; }
  // The input's value when it is known at load time (initializer or folded
  // constant); nullptr otherwise.
  const Tensor* input_constant(size_t i) const;
  // Reads a known 1-D/0-D integer input (e.g. Reshape's shape) as int64s.
  bool input_ints(size_t i, std::vector<int64_t>* out) const;
  void set_output(size_t i, ValueType t) const;
  void set_output(size_t i, DType dtype, std::optional<DimVector> shape) const;
  // An error that names the node.
  Error error(const std::string& message) const { return Error(node_.describe() + ": " + message); }

 private:
  const Node& node_;
};

// ------------------------------------------------------------------ kernels

class CompiledGraph;  // runtime/executor.h
class Frame;
class ThreadPool;  // core/thread_pool.h

// What a kernel prepared from its constant inputs (weights reordered for
// oneDNN, transformed for Winograd, ...), saved in an engine file at build
// and handed back to the same kind of kernel at load, so that loading does not
// repeat the work (src/engine/, docs/engine-format.md).
struct PackedState {
  std::string kernel;  // the implementation it is for: "onednn", "winograd"
  std::string isa;     // the instruction set it was prepared for (cpu_isa_name)
  struct Blob {
    std::string key;
    Tensor data;
  };
  std::vector<Blob> blobs;
  // The blobs are all the kernel needs (it can re-pack from them for another
  // instruction set): the engine then stores no copy of the constant inputs
  // the kernel owns (Kernel::owns_constant_input).
  bool replaces_constants = false;
  bool empty() const { return blobs.empty(); }
  const Tensor* blob(const std::string& key) const {
    for (const Blob& b : blobs)
      if (b.key == key) return &b.data;
    return nullptr;
  }
};

// Given to kernel factories: compiles subgraph bodies (If/Loop/Scan) and,
// when loading an engine, hands out what was packed for the node at build.
class BuildContext {
 public:
  virtual ~BuildContext() = default;
  virtual std::shared_ptr<const CompiledGraph> compile(const Graph& body) = 0;
  virtual const PackedState* packed_state(const Node& /*node*/) const { return nullptr; }
};

// Memory the executor planned for one output of a node (a block of the run's
// arena, runtime/arena.h), or none. output() fills it in and sets
// from_output, so that the executor learns which outputs a kernel writes
// fresh and which it passes through (views, inputs).
struct OutputBlock {
  void* data = nullptr;
  size_t bytes = 0;
  bool from_output = false;
};

class KernelContext {
 public:
  // `scratch`: the run's temporary memory (null: the context makes its own).
  KernelContext(const Node& node, std::span<const Tensor* const> inputs, std::span<Tensor> outputs, const Frame* frame,
                ThreadPool* pool = nullptr, RunScratch* scratch = nullptr)
      : node_(node), inputs_(inputs), outputs_(outputs), frame_(frame), pool_(pool), scratch_(scratch) {}
  const Node& node() const { return node_; }
  size_t num_inputs() const { return inputs_.size(); }
  size_t num_outputs() const { return outputs_.size(); }
  bool has_input(size_t i) const { return i < inputs_.size() && inputs_[i] != nullptr; }
  bool has_output(size_t i) const { return node_.has_output(i); }
  const Tensor& input(size_t i) const;
  // Allocates output i with the given type and shape and returns it, zero
  // filled: in its planned arena block when there is one and it is large
  // enough, else on the heap.
  Tensor& output(size_t i, DType dtype, Shape shape);
  // The same for a kernel that writes every element itself: a planned
  // output is not zero-filled first (a fresh allocation still is).
  Tensor& output_uninitialized(size_t i, DType dtype, Shape shape);
  // Sets output i to an existing tensor (a view or an input passed through).
  void set_output(size_t i, Tensor t);
  // Output i as the kernel left it (for wrappers that post-process it).
  Tensor& output_tensor(size_t i) { return outputs_[i]; }
  // Runs a compiled subgraph with the current frame as its outer scope.
  std::vector<Tensor> run_subgraph(const CompiledGraph& body, std::vector<Tensor> inputs) const;
  Error error(const std::string& message) const { return Error(node_.describe() + ": " + message); }
  // The session's intra-op pool; null runs everything on the calling thread
  // (kiln::parallel_for in core/thread_pool.h accepts both).
  ThreadPool* thread_pool() const { return pool_; }
  // Temporary memory for this call only (at least `bytes`, 64-byte aligned),
  // exclusive to this run: several runs of one session never share it.
  void* scratch(size_t bytes);
  // Set by the executor: one block per output (empty: all on the heap).
  void set_output_blocks(std::span<OutputBlock> blocks) { blocks_ = blocks; }
  // For a kernel that computes its outputs through an inner context with the
  // same outputs (e.g. arithmetic's legacy broadcast): lets that context use
  // this one's planned blocks.
  void share_output_blocks(const KernelContext& outer) { blocks_ = outer.blocks_; }

 private:
  Tensor& planned_output(size_t i, DType dtype, Shape shape, bool zero);
  const Node& node_;
  std::span<const Tensor* const> inputs_;
  std::span<Tensor> outputs_;
  const Frame* frame_;
  ThreadPool* pool_;
  std::span<OutputBlock> blocks_;
  RunScratch* scratch_;
  std::unique_ptr<RunScratch> own_scratch_;
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  // Must be safe to call concurrently from several threads.
  virtual void run(KernelContext& ctx) const = 0;
  // True when run() itself applies the node's element-wise epilogue
  // (ir/epilogue.h); otherwise make_kernel applies it after run().
  virtual bool applies_epilogue() const { return false; }
  // True when the kernel keeps its own copy (packed, reordered) of constant
  // input `i` and never reads that input's data at run time: the session
  // then frees the original (see CompiledGraph::release_owned_constants).
  virtual bool owns_constant_input(size_t /*i*/) const { return false; }
  // What it prepared from its constants, to save in an engine (empty: none).
  virtual PackedState packed_state() const { return {}; }
  // Constant input `i`, which it owns, rebuilt as it was given (shape and
  // layout of the graph's value) from the copy the kernel keeps: how an
  // engine whose packed weights replaced the originals is written back out
  // as ONNX. Undefined when the kernel cannot (or does not own it).
  virtual Tensor original_constant_input(size_t /*i*/) const { return {}; }
  // The implementation it runs, for kiln inspect of an engine ("" = the op's
  // only one).
  virtual std::string implementation() const { return ""; }
};

using ComputeFn = std::function<void(KernelContext&)>;
using InferFn = std::function<void(InferContext&)>;
using MakeKernelFn = std::function<std::unique_ptr<Kernel>(const Node&, BuildContext&)>;
// Returns "" when the node is supported, else the reason it is not.
using CheckFn = std::function<std::string(const Node&)>;

struct OpSchema {
  std::string domain;  // "" = ai.onnx
  std::string name;
  int since = 1;        // first opset version this schema covers
  int until = INT_MAX;  // last opset version this schema covers
  int min_inputs = 0, max_inputs = INT_MAX;
  int min_outputs = 1, max_outputs = INT_MAX;
  // Element types accepted for input `type_input`; empty = any.
  std::vector<DType> types;
  int type_input = 0;
  CheckFn check;
  InferFn infer;
  // Either a stateless compute function or a factory for a stateful Kernel
  // (weights pre-packed, subgraphs compiled).
  ComputeFn compute;
  MakeKernelFn make_kernel;
  // Custom ops (kiln/custom_op.h): the plugin library that registered it;
  // "" for kiln's own ops and ops registered by the application.
  std::string library;
};

// Why a node is not supported, by category (the text says the details).
enum class SupportIssue {
  kNone,
  kUnknownOp,        // no schema for (domain, op) at any opset
  kOpsetOutOfRange,  // schemas exist, none covers the node's opset
  kArity,            // wrong number of inputs or outputs
  kType,             // input element type not accepted
  kAttribute,        // the schema's check refused it: an attribute value (or combination) kiln does not run
};
// "op unknown", "opset out of range", "arity", "type unsupported",
// "attribute value unsupported".
const char* support_issue_name(SupportIssue issue);

class OpRegistry {
 public:
  static OpRegistry& global();
  bool add(OpSchema schema);
  // The schema for (domain, op) at `opset`, or nullptr with the reason in
  // *why (and its category in *issue when given).
  const OpSchema* find(const std::string& domain, const std::string& op, int opset, std::string* why,
                       SupportIssue* issue = nullptr) const;
  // Full support check of a node whose input types are known: op, opset,
  // arity, types, attributes. Returns the schema or nullptr with *why.
  const OpSchema* resolve(const Node& node, std::string* why, SupportIssue* issue = nullptr) const;
  std::vector<const OpSchema*> all() const;
  // The newest opset version any schema of `domain` starts at: the newest
  // version of that domain kiln implements (0 when it has no schema of it).
  int newest_opset(const std::string& domain) const;

 private:
  // A deque: nodes keep pointers to their schemas, and plugins add schemas
  // after sessions exist. The mutex orders such late additions with lookups.
  std::deque<OpSchema> schemas_;
  mutable std::mutex mu_;
};

std::unique_ptr<Kernel> make_kernel(const Node& node, BuildContext& bc);

// Common type sets for OpSchema::types.
std::vector<DType> float_dtypes();    // float, double, float16, bfloat16
std::vector<DType> numeric_dtypes();  // floats and all integers
std::vector<DType> all_dtypes();      // numeric, bool, string

}  // namespace kiln

#define KILN_OP_CONCAT2(a, b) a##b
#define KILN_OP_CONCAT(a, b) KILN_OP_CONCAT2(a, b)
// Declares and registers one schema:
//   KILN_OP(Relu_14) { OpSchema s; s.name = "Relu"; ...; return s; }
#define KILN_OP(id)                                                         \
  static ::kiln::OpSchema KILN_OP_CONCAT(kiln_schema_, id)();               \
  [[maybe_unused]] static const bool KILN_OP_CONCAT(kiln_registered_, id) = \
      ::kiln::OpRegistry::global().add(KILN_OP_CONCAT(kiln_schema_, id)()); \
  static ::kiln::OpSchema KILN_OP_CONCAT(kiln_schema_, id)()
