// Control flow: If, Loop and Scan (Scan-8 with its batch axis and
// sequence_lens; Scan-9+ with per-input/output axes and directions). Bodies are
// compiled once when the kernel is created and run with the node's frame as
// their outer scope, so they can read values of enclosing graphs.
#include <cstring>

#include "ir/infer.h"
#include "ir/op_facts.h"
#include "ops/common.h"
#include "runtime/executor.h"

namespace kiln {

namespace {

// A loop with no trip count and a condition that stays true would run
// forever; this bound turns that into an error.
constexpr int64_t kMaxIterations = int64_t{1} << 31;
// Scan runs its body once per step of its sequence axis, which a zero-byte
// input of shape [2^40, 0] makes as long as it likes: refused beyond this.
constexpr int64_t kMaxScanSteps = int64_t{1} << 24;

// ---------------------------------------------------------------- tensors

// Copies n elements (strings element-wise, everything else as bytes).
void copy_elems(Tensor& dst, int64_t dst_off, const Tensor& src, int64_t src_off, int64_t n) {
  if (n <= 0) return;
  if (src.dtype() == DType::kString) {
    for (int64_t i = 0; i < n; ++i) dst.data<std::string>()[dst_off + i] = src.data<std::string>()[src_off + i];
    return;
  }
  size_t es = dtype_size(src.dtype());
  std::memcpy(static_cast<char*>(dst.raw()) + static_cast<size_t>(dst_off) * es,
              static_cast<const char*>(src.raw()) + static_cast<size_t>(src_off) * es, static_cast<size_t>(n) * es);
}

int64_t prod(const Shape& s, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t i = from; i < to; ++i) p *= s[i];
  return p;
}

// t indexed at `index` along `axis`: the sub-tensor without that axis.
Tensor take_along(const Tensor& t, size_t axis, int64_t index) {
  Shape out_shape = t.shape();
  out_shape.erase(out_shape.begin() + static_cast<std::ptrdiff_t>(axis));
  Tensor out(t.dtype(), out_shape);
  int64_t outer = prod(t.shape(), 0, axis), len = t.shape()[axis];
  int64_t inner = prod(t.shape(), axis + 1, t.shape().size());
  for (int64_t o = 0; o < outer; ++o) copy_elems(out, o * inner, t, (o * len + index) * inner, inner);
  return out;
}

// Writes `elem` at `index` along `axis` of dst (whose shape is elem's with
// that axis inserted).
void put_along(Tensor& dst, size_t axis, int64_t index, const Tensor& elem) {
  int64_t outer = prod(dst.shape(), 0, axis), len = dst.shape()[axis];
  int64_t inner = prod(dst.shape(), axis + 1, dst.shape().size());
  for (int64_t o = 0; o < outer; ++o) copy_elems(dst, (o * len + index) * inner, elem, o * inner, inner);
}

Shape insert_dim(Shape s, size_t axis, int64_t d) {
  s.insert(s.begin() + static_cast<std::ptrdiff_t>(axis), d);
  return s;
}

// Element shape for a scan output that no iteration produced: the body's
// static type, unknown dims read as 0.
Shape empty_elem_shape(const ValueType& t) {
  Shape s;
  if (t.shape)
    for (const Dim& d : *t.shape) s.push_back(d.is_known() ? d.value : 0);
  return s;
}

DType body_dtype(const ValueType& t) { return t.dtype == DType::kUndefined ? DType::kFloat32 : t.dtype; }

bool read_bool_scalar(const Tensor& t, const KernelContext& ctx, const char* what) {
  if (t.numel() != 1)
    throw ctx.error(std::string(what) + " must have one element, got shape [" + shape_str(t.shape()) + "]");
  if (t.dtype() == DType::kBool) return t.data<bool>()[0];
  if (dtype_is_integer(t.dtype()) || dtype_is_float(t.dtype())) return read_scalar(t) != 0;
  throw ctx.error(std::string(what) + " must be bool, got " + dtype_name(t.dtype()));
}

Tensor scalar_i64(int64_t v) {
  Tensor t(DType::kInt64, {});
  t.data<int64_t>()[0] = v;
  return t;
}
Tensor scalar_bool(bool v) {
  Tensor t(DType::kBool, {});
  t.data<bool>()[0] = v;
  return t;
}

// Stacks per-iteration tensors along a new axis; all must agree in dtype and
// shape. `reverse` puts the first one last (Scan's prepend direction).
Tensor stack(const std::vector<Tensor>& elems, size_t axis, bool reverse, const ValueType& body_type,
             const KernelContext& ctx, const std::string& what) {
  if (elems.empty()) {
    Shape s = empty_elem_shape(body_type);
    if (axis > s.size()) axis = s.size();
    return Tensor(body_dtype(body_type), insert_dim(s, axis, 0));
  }
  const Tensor& first = elems[0];
  if (axis > first.shape().size())
    throw ctx.error(what + ": axis " + std::to_string(axis) + " is out of range for elements of rank " +
                    std::to_string(first.shape().size()));
  for (const Tensor& e : elems)
    if (e.dtype() != first.dtype() || e.shape() != first.shape())
      throw ctx.error(what + " changes across iterations: " + dtype_name(first.dtype()) + "[" +
                      shape_str(first.shape()) + "] then " + dtype_name(e.dtype()) + "[" + shape_str(e.shape()) + "]");
  int64_t n = static_cast<int64_t>(elems.size());
  Tensor out(first.dtype(), insert_dim(first.shape(), axis, n));
  for (int64_t i = 0; i < n; ++i) put_along(out, axis, reverse ? n - 1 - i : i, elems[static_cast<size_t>(i)]);
  return out;
}

// ---------------------------------------------------------------- inference

// The type both a and b fit: dtype of a, dims where they agree.
ValueType merge_types(const ValueType& a, const ValueType& b) {
  ValueType t = a;
  if (t.dtype == DType::kUndefined) t.dtype = b.dtype;
  if (!a.shape || !b.shape || a.shape->size() != b.shape->size()) {
    t.shape = a.shape && b.shape ? std::nullopt : std::optional<DimVector>();
    return t;
  }
  for (size_t i = 0; i < a.shape->size(); ++i)
    if (!((*a.shape)[i] == (*b.shape)[i])) (*t.shape)[i] = Dim::unknown();
  return t;
}

// Gives untyped body inputs the types the node feeds them and infers the body
// again, so bodies that declare no input types still get typed outputs.
void type_body_inputs(const InferContext& ctx, const Graph& body_c, const std::vector<ValueType>& feeds) {
  Graph& body = const_cast<Graph&>(body_c);
  bool changed = false;
  for (size_t i = 0; i < body.inputs.size() && i < feeds.size(); ++i) {
    ValueType& t = body.inputs[i]->type;
    if (t.dtype == DType::kUndefined && feeds[i].dtype != DType::kUndefined) {
      t = feeds[i];
      changed = true;
    } else if (!t.shape && feeds[i].shape && t.dtype == feeds[i].dtype) {
      t.shape = feeds[i].shape;
      changed = true;
    }
  }
  if (!changed) return;
  std::vector<std::string> unsupported;  // already reported by the first pass
  infer_graph(body, &unsupported);
  (void)ctx;
}

ValueType input_type_or_empty(const InferContext& ctx, size_t i) {
  return ctx.has_input(i) ? ctx.input_type(i) : ValueType{};
}

ValueType scalar_type(DType t) {
  ValueType v;
  v.dtype = t;
  v.shape = DimVector{};
  return v;
}

std::string check_body(const Node& n, const char* attr, size_t want_in, size_t want_out) {
  const Graph* g = nullptr;
  try {
    g = n.attr_graph(attr);
  } catch (const Error& e) {
    return e.what();
  }
  if (!g) return std::string("attribute '") + attr + "' (a graph) is required";
  if (want_in != SIZE_MAX && g->inputs.size() != want_in)
    return std::string(attr) + " takes " + std::to_string(g->inputs.size()) + " inputs, the node supplies " +
           std::to_string(want_in);
  if (want_out != SIZE_MAX && g->outputs.size() != want_out)
    return std::string(attr) + " has " + std::to_string(g->outputs.size()) + " outputs, expected " +
           std::to_string(want_out);
  return "";
}

// ---------------------------------------------------------------- If

class IfKernel : public Kernel {
 public:
  IfKernel(const Node& n, BuildContext& bc)
      : then_(bc.compile(*n.attr_graph("then_branch"))), else_(bc.compile(*n.attr_graph("else_branch"))) {}
  void run(KernelContext& ctx) const override {
    bool cond = read_bool_scalar(ctx.input(0), ctx, "cond");
    const CompiledGraph& branch = cond ? *then_ : *else_;
    std::vector<Tensor> outs = ctx.run_subgraph(branch, {});
    if (outs.size() != ctx.num_outputs())
      throw ctx.error(std::string(cond ? "then" : "else") + "_branch produced " + std::to_string(outs.size()) +
                      " outputs, the node has " + std::to_string(ctx.num_outputs()));
    for (size_t i = 0; i < outs.size(); ++i) ctx.set_output(i, std::move(outs[i]));
  }

 private:
  std::shared_ptr<const CompiledGraph> then_, else_;
};

void infer_if(InferContext& ctx) {
  const Graph* t = ctx.node().attr_graph("then_branch");
  const Graph* e = ctx.node().attr_graph("else_branch");
  for (size_t i = 0; i < ctx.num_outputs(); ++i) {
    if (i >= t->outputs.size() || i >= e->outputs.size()) break;
    const ValueType& a = t->outputs[i]->type;
    const ValueType& b = e->outputs[i]->type;
    if (a.dtype != DType::kUndefined && b.dtype != DType::kUndefined && a.dtype != b.dtype)
      throw ctx.error("output " + std::to_string(i) + " is " + dtype_name(a.dtype) + " in then_branch but " +
                      dtype_name(b.dtype) + " in else_branch");
    ctx.set_output(i, merge_types(a, b));
  }
}

// ---------------------------------------------------------------- Loop

class LoopKernel : public Kernel {
 public:
  LoopKernel(const Node& n, BuildContext& bc) : body_graph_(*n.attr_graph("body")), body_(bc.compile(body_graph_)) {}

  void run(KernelContext& ctx) const override {
    size_t num_carried = ctx.num_inputs() - 2;
    size_t num_scan = ctx.num_outputs() - num_carried;
    int64_t trip_count = INT64_MAX;
    if (ctx.has_input(0)) {
      std::vector<int64_t> m = read_ints(ctx.input(0), ctx, "M (trip count)");
      if (m.size() != 1)
        throw ctx.error("M (trip count) must have one element, got shape [" + shape_str(ctx.input(0).shape()) + "]");
      trip_count = m[0];  // a negative count runs no iteration, like `for (i = 0; i < M; ++i)`
    }
    bool cond = ctx.has_input(1) ? read_bool_scalar(ctx.input(1), ctx, "cond") : true;
    std::vector<Tensor> carried;
    for (size_t i = 0; i < num_carried; ++i) {
      if (!ctx.has_input(2 + i)) throw ctx.error("loop-carried input " + std::to_string(i) + " is missing");
      carried.push_back(ctx.input(2 + i));
    }
    std::vector<std::vector<Tensor>> scans(num_scan);
    int64_t it = 0;
    for (; it < trip_count && cond; ++it) {
      if (it >= kMaxIterations)
        throw ctx.error("loop ran " + std::to_string(kMaxIterations) + " iterations without stopping; giving up");
      std::vector<Tensor> feed;
      feed.push_back(scalar_i64(it));
      feed.push_back(scalar_bool(cond));
      for (Tensor& c : carried) feed.push_back(c);
      std::vector<Tensor> outs = ctx.run_subgraph(*body_, std::move(feed));
      if (outs.size() != 1 + num_carried + num_scan)
        throw ctx.error("body produced " + std::to_string(outs.size()) + " outputs, expected " +
                        std::to_string(1 + num_carried + num_scan));
      cond = read_bool_scalar(outs[0], ctx, "body's condition output");
      for (size_t i = 0; i < num_carried; ++i) carried[i] = std::move(outs[1 + i]);
      for (size_t k = 0; k < num_scan; ++k) scans[k].push_back(std::move(outs[1 + num_carried + k]));
    }
    for (size_t i = 0; i < num_carried; ++i) ctx.set_output(i, std::move(carried[i]));
    for (size_t k = 0; k < num_scan; ++k) {
      const ValueType& bt = body_graph_.outputs[1 + num_carried + k]->type;
      ctx.set_output(num_carried + k, stack(scans[k], 0, false, bt, ctx, "scan output " + std::to_string(k)));
    }
  }

 private:
  const Graph& body_graph_;
  std::shared_ptr<const CompiledGraph> body_;
};

void infer_loop(InferContext& ctx) {
  const Graph& body = *ctx.node().attr_graph("body");
  size_t num_carried = ctx.num_inputs() - 2;
  std::vector<ValueType> feeds = {scalar_type(DType::kInt64), scalar_type(DType::kBool)};
  for (size_t i = 0; i < num_carried; ++i) feeds.push_back(input_type_or_empty(ctx, 2 + i));
  type_body_inputs(ctx, body, feeds);
  for (size_t i = 0; i < ctx.num_outputs() && 1 + i < body.outputs.size(); ++i) {
    const ValueType& bt = body.outputs[1 + i]->type;
    if (i < num_carried) {
      ctx.set_output(i, merge_types(bt, feeds[2 + i]));
    } else {
      ValueType t = bt;
      if (t.shape) t.shape->insert(t.shape->begin(), Dim::unknown());
      ctx.set_output(i, t);
    }
  }
}

std::string check_loop(const Node& n) {
  if (n.inputs.size() < 2) return "Loop takes M and cond (either may be empty) before the loop-carried values";
  size_t num_carried = n.inputs.size() - 2;
  if (n.outputs.size() < num_carried)
    return "Loop has " + std::to_string(num_carried) + " loop-carried inputs but only " +
           std::to_string(n.outputs.size()) + " outputs";
  return check_body(n, "body", 2 + num_carried, 1 + n.outputs.size());
}

// ---------------------------------------------------------------- Scan-9+

struct ScanAttrs {
  size_t num_states = 0, num_scan_in = 0, num_scan_out = 0;
  std::vector<int64_t> in_axes, in_dirs, out_axes, out_dirs;
};

ScanAttrs scan_attrs(const Node& n, size_t first_input) {
  ScanAttrs a;
  int64_t m = n.attr_int("num_scan_inputs", -1);
  size_t total = n.inputs.size() - first_input;
  if (m < 1 || static_cast<size_t>(m) > total)
    throw Error(n.describe() + ": num_scan_inputs must be in [1, " + std::to_string(total) + "], got " +
                std::to_string(m));
  a.num_scan_in = static_cast<size_t>(m);
  a.num_states = total - a.num_scan_in;
  if (n.outputs.size() < a.num_states)
    throw Error(n.describe() + ": has " + std::to_string(a.num_states) + " state inputs but only " +
                std::to_string(n.outputs.size()) + " outputs");
  a.num_scan_out = n.outputs.size() - a.num_states;
  auto list = [&](const char* name, size_t count) {
    std::vector<int64_t> v = n.attr_ints(name, std::vector<int64_t>(count, 0));
    if (v.size() != count)
      throw Error(n.describe() + ": " + name + " has " + std::to_string(v.size()) + " entries, expected " +
                  std::to_string(count));
    return v;
  };
  if (n.opset >= 9) {
    a.in_axes = list("scan_input_axes", a.num_scan_in);
    a.in_dirs = list("scan_input_directions", a.num_scan_in);
    a.out_axes = list("scan_output_axes", a.num_scan_out);
    a.out_dirs = list("scan_output_directions", a.num_scan_out);
  } else {
    a.in_dirs = list("directions", a.num_scan_in);
  }
  for (int64_t d : a.in_dirs)
    if (d != 0 && d != 1) throw Error(n.describe() + ": scan directions must be 0 or 1, got " + std::to_string(d));
  for (int64_t d : a.out_dirs)
    if (d != 0 && d != 1)
      throw Error(n.describe() + ": scan output directions must be 0 or 1, got " + std::to_string(d));
  return a;
}

std::string check_scan(const Node& n, size_t first_input) {
  if (n.inputs.size() <= first_input) return "Scan needs at least one scan input";
  ScanAttrs a;
  try {
    a = scan_attrs(n, first_input);
  } catch (const Error& e) {
    return e.what();
  }
  return check_body(n, "body", a.num_states + a.num_scan_in, n.outputs.size());
}

class Scan9Kernel : public Kernel {
 public:
  Scan9Kernel(const Node& n, BuildContext& bc)
      : attrs_(scan_attrs(n, 0)), body_graph_(*n.attr_graph("body")), body_(bc.compile(body_graph_)) {}

  void run(KernelContext& ctx) const override {
    const ScanAttrs& a = attrs_;
    std::vector<Tensor> states;
    for (size_t i = 0; i < a.num_states; ++i) states.push_back(ctx.input(i));
    std::vector<size_t> axes;
    int64_t seq_len = -1;
    for (size_t j = 0; j < a.num_scan_in; ++j) {
      const Tensor& x = ctx.input(a.num_states + j);
      if (x.rank() == 0) throw ctx.error("scan input " + std::to_string(j) + " is a scalar; it needs a sequence axis");
      axes.push_back(static_cast<size_t>(normalize_axis(a.in_axes[j], x.rank(), ctx.node())));
      int64_t len = x.shape()[axes.back()];
      if (seq_len >= 0 && len != seq_len)
        throw ctx.error("scan inputs have different sequence lengths: " + std::to_string(seq_len) + " and " +
                        std::to_string(len));
      seq_len = len;
    }
    if (seq_len > kMaxScanSteps)
      throw ctx.error("the scan inputs' sequence length " + std::to_string(seq_len) + " is more than the " +
                      std::to_string(kMaxScanSteps) + " steps kiln runs a Scan body for");
    std::vector<std::vector<Tensor>> scans(a.num_scan_out);
    for (int64_t t = 0; t < seq_len; ++t) {
      std::vector<Tensor> feed = states;
      for (size_t j = 0; j < a.num_scan_in; ++j) {
        int64_t idx = a.in_dirs[j] ? seq_len - 1 - t : t;
        feed.push_back(take_along(ctx.input(a.num_states + j), axes[j], idx));
      }
      std::vector<Tensor> outs = ctx.run_subgraph(*body_, std::move(feed));
      if (outs.size() != a.num_states + a.num_scan_out)
        throw ctx.error("body produced " + std::to_string(outs.size()) + " outputs, expected " +
                        std::to_string(a.num_states + a.num_scan_out));
      for (size_t i = 0; i < a.num_states; ++i) states[i] = std::move(outs[i]);
      for (size_t k = 0; k < a.num_scan_out; ++k) scans[k].push_back(std::move(outs[a.num_states + k]));
    }
    for (size_t i = 0; i < a.num_states; ++i) ctx.set_output(i, std::move(states[i]));
    for (size_t k = 0; k < a.num_scan_out; ++k) {
      const ValueType& bt = body_graph_.outputs[a.num_states + k]->type;
      int64_t elem_rank = scans[k].empty() ? bt.rank() : scans[k][0].rank();
      if (elem_rank < 0) elem_rank = 0;
      size_t axis = static_cast<size_t>(normalize_axis(a.out_axes[k], elem_rank + 1, ctx.node()));
      ctx.set_output(a.num_states + k,
                     stack(scans[k], axis, a.out_dirs[k] != 0, bt, ctx, "scan output " + std::to_string(k)));
    }
  }

 private:
  ScanAttrs attrs_;
  const Graph& body_graph_;
  std::shared_ptr<const CompiledGraph> body_;
};

void infer_scan9(InferContext& ctx) {
  const Node& n = ctx.node();
  ScanAttrs a = scan_attrs(n, 0);
  const Graph& body = *n.attr_graph("body");
  std::vector<ValueType> feeds;
  for (size_t i = 0; i < a.num_states; ++i) feeds.push_back(ctx.input_type(i));
  Dim seq = Dim::unknown();
  for (size_t j = 0; j < a.num_scan_in; ++j) {
    ValueType t = ctx.input_type(a.num_states + j);
    if (t.shape && !t.shape->empty()) {
      size_t axis = static_cast<size_t>(normalize_axis(a.in_axes[j], t.rank(), n));
      if (j == 0) seq = (*t.shape)[axis];
      t.shape->erase(t.shape->begin() + static_cast<std::ptrdiff_t>(axis));
    } else {
      t.shape.reset();
    }
    feeds.push_back(t);
  }
  type_body_inputs(ctx, body, feeds);
  for (size_t i = 0; i < ctx.num_outputs() && i < body.outputs.size(); ++i) {
    const ValueType& bt = body.outputs[i]->type;
    if (i < a.num_states) {
      ctx.set_output(i, merge_types(bt, feeds[i]));
      continue;
    }
    ValueType t = bt;
    if (t.shape) {
      size_t k = i - a.num_states;
      size_t axis = static_cast<size_t>(normalize_axis(a.out_axes[k], t.rank() + 1, n));
      t.shape->insert(t.shape->begin() + static_cast<std::ptrdiff_t>(axis), seq);
    }
    ctx.set_output(i, t);
  }
}

// ---------------------------------------------------------------- Scan-8

// Batch axis 0 and sequence axis 1 on every scan input; optional
// sequence_lens per batch entry; outputs padded (with zeros) to the maximum
// sequence length.
class Scan8Kernel : public Kernel {
 public:
  Scan8Kernel(const Node& n, BuildContext& bc)
      : attrs_(scan_attrs(n, 1)), body_graph_(*n.attr_graph("body")), body_(bc.compile(body_graph_)) {}

  void run(KernelContext& ctx) const override {
    const ScanAttrs& a = attrs_;
    int64_t batch = -1, max_len = -1;
    for (size_t j = 0; j < a.num_scan_in; ++j) {
      const Tensor& x = ctx.input(1 + a.num_states + j);
      if (x.rank() < 2)
        throw ctx.error("scan input " + std::to_string(j) + " needs [batch, sequence, ...] dims, got [" +
                        shape_str(x.shape()) + "]");
      if ((batch >= 0 && x.dim(0) != batch) || (max_len >= 0 && x.dim(1) != max_len))
        throw ctx.error("scan inputs disagree in batch size or sequence length");
      batch = x.dim(0);
      max_len = x.dim(1);
    }
    if (batch > 0 && max_len > kMaxScanSteps / batch)
      throw ctx.error("batch " + std::to_string(batch) + " x sequence length " + std::to_string(max_len) +
                      " is more than the " + std::to_string(kMaxScanSteps) + " steps kiln runs a Scan body for");
    for (size_t i = 0; i < a.num_states; ++i)
      if (ctx.input(1 + i).rank() < 1 || ctx.input(1 + i).dim(0) != batch)
        throw ctx.error("state input " + std::to_string(i) + " must have batch size " + std::to_string(batch) +
                        " in axis 0");
    std::vector<int64_t> lens(static_cast<size_t>(batch), max_len);
    if (ctx.has_input(0)) {
      lens = read_ints(ctx.input(0), ctx, "sequence_lens");
      if (static_cast<int64_t>(lens.size()) != batch)
        throw ctx.error("sequence_lens has " + std::to_string(lens.size()) + " entries, batch size is " +
                        std::to_string(batch));
      for (int64_t l : lens)
        if (l < 0 || l > max_len)
          throw ctx.error("sequence length " + std::to_string(l) + " is outside [0, " + std::to_string(max_len) + "]");
    }
    // Per batch entry: final states and per-step scan output elements.
    std::vector<std::vector<Tensor>> states(static_cast<size_t>(batch));
    std::vector<std::vector<std::vector<Tensor>>> scans(static_cast<size_t>(batch));
    for (int64_t b = 0; b < batch; ++b) {
      std::vector<Tensor> st;
      for (size_t i = 0; i < a.num_states; ++i) st.push_back(take_along(ctx.input(1 + i), 0, b));
      std::vector<Tensor> rows;
      for (size_t j = 0; j < a.num_scan_in; ++j) rows.push_back(take_along(ctx.input(1 + a.num_states + j), 0, b));
      int64_t len = lens[static_cast<size_t>(b)];
      scans[static_cast<size_t>(b)].resize(a.num_scan_out);
      for (int64_t t = 0; t < len; ++t) {
        std::vector<Tensor> feed = st;
        for (size_t j = 0; j < a.num_scan_in; ++j)
          feed.push_back(take_along(rows[j], 0, a.in_dirs[j] ? len - 1 - t : t));
        std::vector<Tensor> outs = ctx.run_subgraph(*body_, std::move(feed));
        if (outs.size() != a.num_states + a.num_scan_out)
          throw ctx.error("body produced " + std::to_string(outs.size()) + " outputs, expected " +
                          std::to_string(a.num_states + a.num_scan_out));
        for (size_t i = 0; i < a.num_states; ++i) st[i] = std::move(outs[i]);
        for (size_t k = 0; k < a.num_scan_out; ++k)
          scans[static_cast<size_t>(b)][k].push_back(std::move(outs[a.num_states + k]));
      }
      states[static_cast<size_t>(b)] = std::move(st);
    }
    for (size_t i = 0; i < a.num_states; ++i) {
      std::vector<Tensor> per_batch;
      for (int64_t b = 0; b < batch; ++b) per_batch.push_back(states[static_cast<size_t>(b)][i]);
      ctx.set_output(i, stack(per_batch, 0, false, body_graph_.outputs[i]->type, ctx, "state " + std::to_string(i)));
    }
    for (size_t k = 0; k < a.num_scan_out; ++k) {
      const ValueType& bt = body_graph_.outputs[a.num_states + k]->type;
      // The element type comes from the first produced element.
      const Tensor* proto = nullptr;
      for (auto& s : scans)
        if (!s[k].empty()) {
          proto = &s[k][0];
          break;
        }
      DType dt = proto ? proto->dtype() : body_dtype(bt);
      Shape elem = proto ? proto->shape() : empty_elem_shape(bt);
      Shape out_shape = insert_dim(insert_dim(elem, 0, max_len), 0, batch);
      Tensor out(dt, out_shape);  // zero-filled padding
      for (int64_t b = 0; b < batch; ++b) {
        Tensor stacked = stack(scans[static_cast<size_t>(b)][k], 0, false, bt, ctx, "scan output " + std::to_string(k));
        if (scans[static_cast<size_t>(b)][k].empty()) continue;
        if (stacked.dtype() != dt || Shape(stacked.shape().begin() + 1, stacked.shape().end()) != elem)
          throw ctx.error("scan output " + std::to_string(k) + " differs in type or shape between batch entries");
        copy_elems(out, b * max_len * shape_numel(elem), stacked, 0, stacked.numel());
      }
      ctx.set_output(a.num_states + k, std::move(out));
    }
  }

 private:
  ScanAttrs attrs_;
  const Graph& body_graph_;
  std::shared_ptr<const CompiledGraph> body_;
};

void infer_scan8(InferContext& ctx) {
  const Node& n = ctx.node();
  ScanAttrs a = scan_attrs(n, 1);
  const Graph& body = *n.attr_graph("body");
  std::vector<ValueType> feeds;
  Dim batch = Dim::unknown(), seq = Dim::unknown();
  for (size_t i = 0; i < a.num_states; ++i) {
    ValueType t = ctx.input_type(1 + i);
    if (t.shape && !t.shape->empty())
      t.shape->erase(t.shape->begin());
    else
      t.shape.reset();
    feeds.push_back(t);
  }
  for (size_t j = 0; j < a.num_scan_in; ++j) {
    ValueType t = ctx.input_type(1 + a.num_states + j);
    if (t.shape && t.shape->size() >= 2) {
      if (j == 0) {
        batch = (*t.shape)[0];
        seq = (*t.shape)[1];
      }
      t.shape->erase(t.shape->begin(), t.shape->begin() + 2);
    } else {
      t.shape.reset();
    }
    feeds.push_back(t);
  }
  type_body_inputs(ctx, body, feeds);
  for (size_t i = 0; i < ctx.num_outputs() && i < body.outputs.size(); ++i) {
    ValueType t = body.outputs[i]->type;
    if (i < a.num_states) t = merge_types(t, feeds[i]);
    if (t.shape) {
      if (i >= a.num_states) t.shape->insert(t.shape->begin(), seq);
      t.shape->insert(t.shape->begin(), batch);
    }
    ctx.set_output(i, t);
  }
}

}  // namespace

KILN_OP(If) {
  return OpSchema{
      .name = "If",
      .min_inputs = 1,
      .max_inputs = 1,
      .min_outputs = 1,
      .types = {DType::kBool},
      .check =
          [](const Node& n) {
            std::string r = check_body(n, "then_branch", 0, n.outputs.size());
            return r.empty() ? check_body(n, "else_branch", 0, n.outputs.size()) : r;
          },
      .infer = infer_if,
      .make_kernel = [](const Node& n, BuildContext& bc) { return std::make_unique<IfKernel>(n, bc); },
  };
}

KILN_OP(Loop) {
  return OpSchema{
      .name = "Loop",
      .min_inputs = 2,
      .min_outputs = 0,
      .check = check_loop,
      .infer = infer_loop,
      .make_kernel = [](const Node& n, BuildContext& bc) { return std::make_unique<LoopKernel>(n, bc); },
  };
}

KILN_OP(Scan_8) {
  return OpSchema{
      .name = "Scan",
      .since = 8,
      .until = 8,
      .min_inputs = 2,
      .check = [](const Node& n) { return check_scan(n, 1); },
      .infer = infer_scan8,
      .make_kernel = [](const Node& n, BuildContext& bc) { return std::make_unique<Scan8Kernel>(n, bc); },
  };
}

KILN_OP(Scan_9) {
  return OpSchema{
      .name = "Scan",
      .since = 9,
      .min_inputs = 1,
      .check = [](const Node& n) { return check_scan(n, 0); },
      .infer = infer_scan9,
      .make_kernel = [](const Node& n, BuildContext& bc) { return std::make_unique<Scan9Kernel>(n, bc); },
  };
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(If) {
  return {.op = "If",
          .family = OpFamily::kControl,
          .cost = cost::not_counted("control flow: the nodes of its bodies are not counted")};
}

KILN_OP_FACTS(Loop) {
  return {.op = "Loop",
          .family = OpFamily::kControl,
          .cost = cost::not_counted("control flow: the nodes of its body are not counted")};
}

KILN_OP_FACTS(Scan) {
  return {.op = "Scan",
          .family = OpFamily::kControl,
          .cost = cost::not_counted("control flow: the nodes of its body are not counted")};
}

}  // namespace kiln
