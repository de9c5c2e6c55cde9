// Custom operators: ops kiln does not ship, registered from C++ (in the
// application, or in a plugin shared library loaded at run time) into the
// same registry as the built-in ops. ONNX nodes of the op's domain then
// import, infer their shapes and run like any other; engines record which
// plugin library an op came from. docs/custom-ops.md has the whole story and
// examples/custom_op/ a plugin.
//
//   kiln::CustomOp op;
//   op.domain = "com.example";
//   op.name = "ScaledTanh";
//   op.input_types = {kiln::DType::kFloat32};
//   op.infer = [](kiln::CustomOpShapeContext& c) { c.set_output(0, c.input_dtype(0), c.input_shape(0)); };
//   op.compute = [](kiln::CustomOpKernelContext& c) {
//     const kiln::Tensor& x = c.input(0);
//     kiln::Tensor& y = c.output(0, x.dtype(), x.shape());
//     const float a = c.attr_float("alpha", 1.0f);
//     for (int64_t i = 0; i < x.numel(); ++i) y.data<float>()[i] = a * std::tanh(x.data<float>()[i]);
//   };
//   kiln::register_custom_op(op);
#pragma once
#include <climits>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "kiln/dtype.h"
#include "kiln/error.h"
#include "kiln/session.h"  // TensorDim
#include "kiln/tensor.h"

namespace kiln {

// The attributes of the node being inferred or run; a missing attribute
// gives the default, one of another kind is a kiln::Error naming the node.
class CustomOpAttributes {
 public:
  bool has_attr(const std::string& name) const;
  int64_t attr_int(const std::string& name, int64_t def) const;
  float attr_float(const std::string& name, float def) const;
  std::string attr_string(const std::string& name, const std::string& def) const;
  std::vector<int64_t> attr_ints(const std::string& name, std::vector<int64_t> def = {}) const;
  std::vector<float> attr_floats(const std::string& name, std::vector<float> def = {}) const;
  // The node's name (its ONNX name) for messages.
  const std::string& node_name() const;
  // A kiln::Error whose message names the node: throw c.error("...").
  Error error(const std::string& message) const;

 protected:
  explicit CustomOpAttributes(const void* node) : node_(node) {}
  const void* node_;  // the IR node (src/ir/graph.h)
};

// Shape inference: called once per node when a model is loaded, with the
// types of its inputs; must set every output's type. Shapes are lists of
// TensorDim (size >= 0, or -1 with the symbol's name); nullopt: rank unknown.
class CustomOpShapeContext : public CustomOpAttributes {
 public:
  size_t num_inputs() const;
  size_t num_outputs() const;
  bool has_input(size_t i) const;  // false for an omitted optional input
  DType input_dtype(size_t i) const;
  std::optional<std::vector<TensorDim>> input_shape(size_t i) const;
  // The input's value when the model fixes it (an initializer); else null.
  const Tensor* input_constant(size_t i) const;
  void set_output(size_t i, DType dtype, std::optional<std::vector<TensorDim>> shape);

  explicit CustomOpShapeContext(const void* infer_context);  // kiln's own use

 private:
  const void* ctx_;
};

// One run of the op on concrete tensors.
class CustomOpKernelContext : public CustomOpAttributes {
 public:
  size_t num_inputs() const;
  size_t num_outputs() const;
  bool has_input(size_t i) const;
  const Tensor& input(size_t i) const;
  // Allocates output i (zero-filled) and returns it to be written.
  Tensor& output(size_t i, DType dtype, const Shape& shape);
  // Runs fn(begin, end) over [0, n) split across the session's threads
  // (fn must be safe to call concurrently on disjoint ranges).
  void parallel_for(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn) const;

  explicit CustomOpKernelContext(void* kernel_context);  // kiln's own use

 private:
  void* ctx_;
};

struct CustomOp {
  std::string domain;  // e.g. "com.example"; not "" / "ai.onnx" / "kiln" (kiln's own)
  std::string name;
  // The opset versions of `domain` the op covers (the model's opset_import).
  int since_version = 1, until_version = INT_MAX;
  int min_inputs = 1, max_inputs = 1;
  int min_outputs = 1, max_outputs = 1;
  // Element types accepted for input 0; empty: any.
  std::vector<DType> input_types;
  // Both required. compute may be called from several threads at once (a
  // Session is shared); it must not keep state between calls.
  std::function<void(CustomOpShapeContext&)> infer;
  std::function<void(CustomOpKernelContext&)> compute;
};

// Adds the op to kiln's registry, for every session created afterwards.
// kiln::Error when a field is missing or wrong, or the op overlaps an op
// already registered (same domain, name and an opset range in common).
void register_custom_op(const CustomOp& op);

// Loads a plugin: a shared library exporting
//   extern "C" void kiln_register_plugin();
// (KILN_PLUGIN below), which registers its ops with register_custom_op. The
// ops remember the library's path (engines record it; `kiln ops` shows it).
// Loading the same path twice does nothing. kiln::Error naming the library
// when it cannot be opened, has no entry point, or its registration fails.
// The library resolves kiln's symbols from the program that loads it: link
// that program with -rdynamic (CMake: ENABLE_EXPORTS), as the kiln CLI is.
void load_plugin(const std::string& path);
// Paths of the plugins loaded so far, in order.
std::vector<std::string> loaded_plugins();

}  // namespace kiln

// The plugin's entry point: KILN_PLUGIN { kiln::register_custom_op(...); }
#define KILN_PLUGIN extern "C" __attribute__((visibility("default"))) void kiln_register_plugin()
