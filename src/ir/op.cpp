#include "ir/op.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <new>

#include "core/thread_pool.h"
#include "ir/epilogue.h"
#include "ir/op_facts.h"

namespace kiln {

const ValueType& InferContext::input_type(size_t i) const {
  if (!has_input(i)) throw error("input " + std::to_string(i) + " is required");
  return node_.inputs[i]->type;
}

const Tensor* InferContext::input_constant(size_t i) const {
  if (!has_input(i)) return nullptr;
  const Value* v = node_.inputs[i];
  // A weight whose data an engine does not store (a kernel's packed copy
  // replaces it) is not a known value.
  if (!v->initializer || (v->initializer->numel() > 0 && !v->initializer->raw())) return nullptr;
  return &*v->initializer;
}

bool InferContext::input_ints(size_t i, std::vector<int64_t>* out) const {
  const Tensor* t = input_constant(i);
  if (!t) return false;
  out->clear();
  if (t->dtype() == DType::kInt64) {
    out->assign(t->data<int64_t>(), t->data<int64_t>() + t->numel());
  } else if (t->dtype() == DType::kInt32) {
    for (int64_t k = 0; k < t->numel(); ++k) out->push_back(t->data<int32_t>()[k]);
  } else {
    return false;
  }
  return true;
}

void InferContext::set_output(size_t i, ValueType t) const {
  if (!has_output(i)) return;
  // Every op's inferred output passes here: a shape whose known dims
  // multiply past int64 is refused now, naming the node, before a kernel
  // sizes a buffer from it (a zero dim makes the tensor empty whatever the
  // others are).
  if (t.shape) {
    int64_t n = 1;
    bool empty = false, overflow = false;
    for (const Dim& d : *t.shape) {
      if (!d.is_known()) continue;
      if (d.value == 0) empty = true;
      if (d.value != 0 && n > std::numeric_limits<int64_t>::max() / d.value)
        overflow = true;
      else
        n *= d.value;
    }
    if (overflow && !empty) {
      std::string dims;
      for (const Dim& d : *t.shape) dims += (dims.empty() ? "" : "x") + d.str();
      throw error("output " + std::to_string(i) + " ('" + node_.outputs[i]->name + "') of shape " + dims +
                  " overflows the element count");
    }
  }
  node_.outputs[i]->type = std::move(t);
}

void InferContext::set_output(size_t i, DType dtype, std::optional<DimVector> shape) const {
  ValueType t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  set_output(i, std::move(t));
}

const Tensor& KernelContext::input(size_t i) const {
  if (!has_input(i)) throw error("input " + std::to_string(i) + " is required");
  return *inputs_[i];
}

void* KernelContext::scratch(size_t bytes) {
  if (!scratch_) {
    own_scratch_ = std::make_unique<RunScratch>();
    scratch_ = own_scratch_.get();
  }
  try {
    return scratch_->get(bytes);
  } catch (const std::bad_alloc&) {
    throw error("out of memory allocating " + std::to_string(bytes) + " bytes of scratch");
  }
}

Tensor& KernelContext::output(size_t i, DType dtype, Shape shape) {
  return planned_output(i, dtype, std::move(shape), true);
}

Tensor& KernelContext::output_uninitialized(size_t i, DType dtype, Shape shape) {
  return planned_output(i, dtype, std::move(shape), false);
}

Tensor& KernelContext::planned_output(size_t i, DType dtype, Shape shape, bool zero) {
  if (i < blocks_.size()) {
    OutputBlock& block = blocks_[i];
    block.from_output = true;
    const size_t elem = dtype_size(dtype);
    const int64_t numel = shape_numel(shape);
    if (block.data && dtype != DType::kString && elem > 0 && static_cast<size_t>(numel) <= block.bytes / elem) {
      // Kernels may rely on zeroed outputs, as a fresh Tensor is.
      if (zero) std::memset(block.data, 0, static_cast<size_t>(numel) * elem);
      outputs_[i] = Tensor::wrap(dtype, std::move(shape), block.data);
      return outputs_[i];
    }
  }
  try {
    outputs_[i] = zero ? Tensor(dtype, std::move(shape)) : Tensor::uninitialized(dtype, std::move(shape));
  } catch (const Error& e) {
    throw error("output " + std::to_string(i) + ": " + e.what());
  }
  return outputs_[i];
}

void KernelContext::set_output(size_t i, Tensor t) { outputs_[i] = std::move(t); }

OpRegistry& OpRegistry::global() {
  static OpRegistry r;
  return r;
}

bool OpRegistry::add(OpSchema schema) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const OpSchema& s : schemas_)
    if (s.domain == schema.domain && s.name == schema.name && s.since <= schema.until && schema.since <= s.until)
      throw Error("op " + schema.name + ": opset range " + std::to_string(schema.since) + "-" +
                  std::to_string(schema.until) + " overlaps an existing registration");
  schemas_.push_back(std::move(schema));
  return true;
}

const char* support_issue_name(SupportIssue issue) {
  switch (issue) {
    case SupportIssue::kNone: return "supported";
    case SupportIssue::kUnknownOp: return "op unknown";
    case SupportIssue::kOpsetOutOfRange: return "opset out of range";
    case SupportIssue::kArity: return "arity";
    case SupportIssue::kType: return "type unsupported";
    case SupportIssue::kAttribute: return "attribute value unsupported";
  }
  return "?";
}

const OpSchema* OpRegistry::find(const std::string& domain, const std::string& op, int opset, std::string* why,
                                 SupportIssue* issue) const {
  SupportIssue unused;
  if (!issue) issue = &unused;
  *issue = SupportIssue::kNone;
  std::lock_guard<std::mutex> lock(mu_);
  const OpSchema* best = nullptr;
  int lo = INT_MAX, hi = 0;
  for (const OpSchema& s : schemas_) {
    if (s.domain != domain || s.name != op) continue;
    lo = std::min(lo, s.since);
    hi = std::max(hi, s.until);
    if (s.since <= opset && opset <= s.until) best = &s;
  }
  if (best) return best;
  std::string full = domain.empty() ? op : domain + ":" + op;
  if (lo == INT_MAX) {
    *issue = SupportIssue::kUnknownOp;
    *why = "op " + full + " is unknown";
    // Not a domain kiln ships ops for: most likely a custom op.
    if (!domain.empty() && domain != "ai.onnx" && domain != "ai.onnx.ml" && domain != kKilnDomain &&
        domain != "com.microsoft")
      *why +=
          " (a custom op: load the plugin that implements it with --plugin, or register it with "
          "kiln::register_custom_op)";
  } else {
    *issue = SupportIssue::kOpsetOutOfRange;
    *why = "op " + full + " opset " + std::to_string(opset) + " is out of the supported range " + std::to_string(lo) +
           "-" + (hi == INT_MAX ? std::string("latest") : std::to_string(hi));
  }
  return nullptr;
}

const OpSchema* OpRegistry::resolve(const Node& node, std::string* why, SupportIssue* issue) const {
  SupportIssue unused;
  if (!issue) issue = &unused;
  const OpSchema* s = find(node.domain, node.op_type, node.opset, why, issue);
  if (!s) return nullptr;
  int nin = static_cast<int>(node.inputs.size());
  int nout = static_cast<int>(node.outputs.size());
  if (nin < s->min_inputs || nin > s->max_inputs) {
    *issue = SupportIssue::kArity;
    *why = "takes " + std::to_string(s->min_inputs) + (s->max_inputs == s->min_inputs ? "" : "..") +
           (s->max_inputs == s->min_inputs ? ""
            : s->max_inputs == INT_MAX     ? "n"
                                           : std::to_string(s->max_inputs)) +
           " inputs, got " + std::to_string(nin);
    return nullptr;
  }
  if (nout < s->min_outputs || nout > s->max_outputs) {
    *issue = SupportIssue::kArity;
    *why = "produces at most " + std::to_string(s->max_outputs) + " outputs, got " + std::to_string(nout);
    return nullptr;
  }
  if (!s->types.empty() && node.has_input(static_cast<size_t>(s->type_input))) {
    DType t = node.inputs[static_cast<size_t>(s->type_input)]->type.dtype;
    if (t != DType::kUndefined && std::find(s->types.begin(), s->types.end(), t) == s->types.end()) {
      *issue = SupportIssue::kType;
      *why = "type " + dtype_name(t) + " is unsupported for input " + std::to_string(s->type_input);
      return nullptr;
    }
  }
  if (s->check) {
    std::string reason = s->check(node);
    if (!reason.empty()) {
      *issue = SupportIssue::kAttribute;
      *why = reason;
      return nullptr;
    }
  }
  return s;
}

int OpRegistry::newest_opset(const std::string& domain) const {
  std::lock_guard<std::mutex> lock(mu_);
  int newest = 0;
  for (const OpSchema& s : schemas_)
    if (s.domain == domain) newest = std::max(newest, s.since);
  return newest;
}

std::vector<const OpSchema*> OpRegistry::all() const {
  std::vector<const OpSchema*> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const OpSchema& s : schemas_) out.push_back(&s);
  }
  std::sort(out.begin(), out.end(), [](const OpSchema* a, const OpSchema* b) {
    return std::tie(a->domain, a->name, a->since) < std::tie(b->domain, b->name, b->since);
  });
  return out;
}

namespace {
class FnKernel : public Kernel {
 public:
  explicit FnKernel(ComputeFn fn) : fn_(std::move(fn)) {}
  void run(KernelContext& ctx) const override { fn_(ctx); }

 private:
  ComputeFn fn_;
};

// Applies a fused epilogue for kernels that do not apply it themselves.
class EpilogueKernel : public Kernel {
 public:
  EpilogueKernel(std::unique_ptr<Kernel> inner, std::vector<EpilogueStep> steps)
      : inner_(std::move(inner)), steps_(std::move(steps)) {}
  void run(KernelContext& ctx) const override {
    inner_->run(ctx);
    apply_epilogue(steps_, ctx.output_tensor(0), ctx.thread_pool());
  }
  bool owns_constant_input(size_t i) const override { return inner_->owns_constant_input(i); }
  PackedState packed_state() const override { return inner_->packed_state(); }
  Tensor original_constant_input(size_t i) const override { return inner_->original_constant_input(i); }
  std::string implementation() const override { return inner_->implementation(); }

 private:
  std::unique_ptr<Kernel> inner_;
  std::vector<EpilogueStep> steps_;
};

// A float32 activation that amounts to an epilogue step (its facts say so:
// Relu, Clip with constant bounds, LeakyRelu, HardSwish, Gelu, ...) runs as
// that step's vector code (map_epilogue: L1-sized blocks on the pool),
// instead of the op's scalar kernel (which computes in double: LeakyRelu
// after an InstanceNorm took 2.5 ms for 0.5M elements). Other types go to
// the op's own kernel.
class StepKernel : public Kernel {
 public:
  StepKernel(EpilogueStep step, std::unique_ptr<Kernel> other) : steps_{step}, other_(std::move(other)) {}
  void run(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    if (x.dtype() != DType::kFloat32) return other_->run(ctx);
    Tensor& y = ctx.output_uninitialized(0, DType::kFloat32, x.shape());
    map_epilogue(steps_, x.data<float>(), y.data<float>(), x.numel(), ctx.thread_pool());
  }

 private:
  std::vector<EpilogueStep> steps_;  // the one step
  std::unique_ptr<Kernel> other_;
};

std::unique_ptr<Kernel> make_schema_kernel(const Node& node, BuildContext& bc) {
  const OpSchema* s = node.schema;
  if (s->make_kernel) return s->make_kernel(node, bc);
  if (s->compute) return std::make_unique<FnKernel>(s->compute);
  throw Error(node.describe() + ": op has no CPU kernel");
}
}  // namespace

std::unique_ptr<Kernel> make_plain_kernel(const Node& node, BuildContext& bc) {
  std::unique_ptr<Kernel> k = make_schema_kernel(node, bc);
  const OpFacts* facts = node.inputs.empty() || node.outputs.size() != 1 ? nullptr : op_facts(node);
  EpilogueStep step;
  if (facts && facts->epilogue_step && node.has_input(0) && node.inputs[0]->type.dtype == DType::kFloat32 &&
      facts->epilogue_step(node, &step) && step.fn)
    return std::make_unique<StepKernel>(step, std::move(k));
  return k;
}

std::unique_ptr<Kernel> make_kernel(const Node& node, BuildContext& bc) {
  std::unique_ptr<Kernel> k = make_plain_kernel(node, bc);
  if (!has_epilogue(node) || k->applies_epilogue()) return k;
  return std::make_unique<EpilogueKernel>(std::move(k), epilogue_of(node));
}

std::vector<DType> float_dtypes() { return {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16}; }
std::vector<DType> numeric_dtypes() {
  return {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16, DType::kInt8,   DType::kInt16,
          DType::kInt32,   DType::kInt64,   DType::kUInt8,   DType::kUInt16,   DType::kUInt32, DType::kUInt64};
}
std::vector<DType> all_dtypes() {
  auto v = numeric_dtypes();
  v.push_back(DType::kBool);
  v.push_back(DType::kString);
  return v;
}

}  // namespace kiln
