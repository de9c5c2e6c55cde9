// kiln/custom_op.h: custom ops become OpSchemas of the one registry (their
// infer and compute wrapped in the public contexts), and plugins are shared
// libraries whose entry point registers them.
#include "kiln/custom_op.h"

#include <dlfcn.h>

#include <algorithm>
#include <filesystem>
#include <mutex>

#include "core/thread_pool.h"
#include "ir/op.h"

namespace kiln {

namespace {

const Node& node_of(const void* p) { return *static_cast<const Node*>(p); }

std::vector<TensorDim> public_dims(const DimVector& dims) {
  std::vector<TensorDim> out;
  for (const Dim& d : dims) out.push_back({d.is_known() ? d.value : -1, d.symbol});
  return out;
}

DimVector ir_dims(const std::vector<TensorDim>& dims) {
  DimVector out;
  for (const TensorDim& d : dims)
    out.push_back(d.size >= 0 ? Dim::known(d.size) : d.symbol.empty() ? Dim::unknown() : Dim::named(d.symbol));
  return out;
}

struct PluginState {
  std::mutex mu;
  std::vector<std::string> loaded;
  std::string loading;  // the library whose entry point is running
};
PluginState& plugins() {
  static PluginState state;
  return state;
}

}  // namespace

// ------------------------------------------------------------ contexts

bool CustomOpAttributes::has_attr(const std::string& name) const { return node_of(node_).has_attr(name); }
int64_t CustomOpAttributes::attr_int(const std::string& name, int64_t def) const {
  return node_of(node_).attr_int(name, def);
}
float CustomOpAttributes::attr_float(const std::string& name, float def) const {
  return node_of(node_).attr_float(name, def);
}
std::string CustomOpAttributes::attr_string(const std::string& name, const std::string& def) const {
  return node_of(node_).attr_string(name, def);
}
std::vector<int64_t> CustomOpAttributes::attr_ints(const std::string& name, std::vector<int64_t> def) const {
  return node_of(node_).attr_ints(name, std::move(def));
}
std::vector<float> CustomOpAttributes::attr_floats(const std::string& name, std::vector<float> def) const {
  return node_of(node_).attr_floats(name, std::move(def));
}
const std::string& CustomOpAttributes::node_name() const { return node_of(node_).name; }
Error CustomOpAttributes::error(const std::string& message) const {
  return Error(node_of(node_).describe() + ": " + message);
}

CustomOpShapeContext::CustomOpShapeContext(const void* infer_context)
    : CustomOpAttributes(&static_cast<const InferContext*>(infer_context)->node()), ctx_(infer_context) {}

namespace {
const InferContext& infer_ctx(const void* p) { return *static_cast<const InferContext*>(p); }
KernelContext& kernel_ctx(void* p) { return *static_cast<KernelContext*>(p); }
}  // namespace

size_t CustomOpShapeContext::num_inputs() const { return infer_ctx(ctx_).num_inputs(); }
size_t CustomOpShapeContext::num_outputs() const { return infer_ctx(ctx_).num_outputs(); }
bool CustomOpShapeContext::has_input(size_t i) const { return infer_ctx(ctx_).has_input(i); }
DType CustomOpShapeContext::input_dtype(size_t i) const { return infer_ctx(ctx_).input_dtype(i); }
std::optional<std::vector<TensorDim>> CustomOpShapeContext::input_shape(size_t i) const {
  const ValueType& t = infer_ctx(ctx_).input_type(i);
  if (!t.shape) return std::nullopt;
  return public_dims(*t.shape);
}
const Tensor* CustomOpShapeContext::input_constant(size_t i) const { return infer_ctx(ctx_).input_constant(i); }
void CustomOpShapeContext::set_output(size_t i, DType dtype, std::optional<std::vector<TensorDim>> shape) {
  if (i >= num_outputs())
    throw error("set_output(" + std::to_string(i) + "): the node has " + std::to_string(num_outputs()) + " outputs");
  std::optional<DimVector> dims;
  if (shape) dims = ir_dims(*shape);
  infer_ctx(ctx_).set_output(i, dtype, std::move(dims));
}

CustomOpKernelContext::CustomOpKernelContext(void* kernel_context)
    : CustomOpAttributes(&static_cast<KernelContext*>(kernel_context)->node()), ctx_(kernel_context) {}

size_t CustomOpKernelContext::num_inputs() const { return kernel_ctx(ctx_).num_inputs(); }
size_t CustomOpKernelContext::num_outputs() const { return kernel_ctx(ctx_).num_outputs(); }
bool CustomOpKernelContext::has_input(size_t i) const { return kernel_ctx(ctx_).has_input(i); }
const Tensor& CustomOpKernelContext::input(size_t i) const { return kernel_ctx(ctx_).input(i); }
Tensor& CustomOpKernelContext::output(size_t i, DType dtype, const Shape& shape) {
  if (i >= num_outputs())
    throw error("output(" + std::to_string(i) + "): the node has " + std::to_string(num_outputs()) + " outputs");
  return kernel_ctx(ctx_).output(i, dtype, shape);
}
void CustomOpKernelContext::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) const {
  kiln::parallel_for(kernel_ctx(ctx_).thread_pool(), n, fn);
}

// ------------------------------------------------------------ registration

void register_custom_op(const CustomOp& op) {
  const std::string who = "custom op " + op.domain + ":" + op.name;
  if (op.name.empty()) throw Error("custom op in domain '" + op.domain + "': the op has no name");
  if (op.domain.empty() || op.domain == "ai.onnx" || op.domain == kKilnDomain)
    throw Error(who + ": domain '" + op.domain +
                "' is reserved (ONNX's or kiln's own ops): use your own, e.g. com.example");
  if (!op.infer || !op.compute) throw Error(who + ": both infer and compute are required");
  if (op.since_version < 1 || op.until_version < op.since_version)
    throw Error(who + ": bad opset range " + std::to_string(op.since_version) + "-" + std::to_string(op.until_version));
  if (op.min_inputs < 0 || op.max_inputs < op.min_inputs || op.min_outputs < 1 || op.max_outputs < op.min_outputs)
    throw Error(who + ": bad input/output counts");
  OpSchema s;
  s.domain = op.domain;
  s.name = op.name;
  s.since = op.since_version;
  s.until = op.until_version;
  s.min_inputs = op.min_inputs;
  s.max_inputs = op.max_inputs;
  s.min_outputs = op.min_outputs;
  s.max_outputs = op.max_outputs;
  s.types = op.input_types;
  auto infer = op.infer;
  s.infer = [infer](InferContext& c) {
    CustomOpShapeContext pc(&c);
    infer(pc);
  };
  auto compute = op.compute;
  s.compute = [compute](KernelContext& c) {
    CustomOpKernelContext pc(&c);
    compute(pc);
  };
  {
    std::lock_guard<std::mutex> lock(plugins().mu);
    s.library = plugins().loading;
  }
  try {
    OpRegistry::global().add(std::move(s));
  } catch (const Error& e) {
    throw Error(who + ": " + e.what());
  }
}

void load_plugin(const std::string& path) {
  const std::string full = std::filesystem::absolute(path).lexically_normal().string();
  PluginState& st = plugins();
  {
    std::lock_guard<std::mutex> lock(st.mu);
    if (std::find(st.loaded.begin(), st.loaded.end(), full) != st.loaded.end()) return;
  }
  if (!std::filesystem::exists(full)) throw Error("plugin " + path + ": no such file");
  // RTLD_NOW: a symbol the plugin needs and kiln lacks fails here, with the
  // library named, rather than at the first run. The handle is never closed:
  // the registry keeps the plugin's functions.
  void* handle = dlopen(full.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) throw Error("plugin " + path + ": cannot load: " + dlerror());
  using Entry = void (*)();
  auto entry = reinterpret_cast<Entry>(dlsym(handle, "kiln_register_plugin"));
  if (!entry)
    throw Error("plugin " + path +
                ": no kiln_register_plugin entry point (define it with KILN_PLUGIN, kiln/custom_op.h)");
  {
    std::lock_guard<std::mutex> lock(st.mu);
    st.loading = full;
  }
  try {
    entry();
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lock(st.mu);
    st.loading.clear();
    throw Error("plugin " + path + ": registration failed: " + e.what());
  }
  std::lock_guard<std::mutex> lock(st.mu);
  st.loading.clear();
  st.loaded.push_back(full);
}

std::vector<std::string> loaded_plugins() {
  std::lock_guard<std::mutex> lock(plugins().mu);
  return plugins().loaded;
}

}  // namespace kiln
