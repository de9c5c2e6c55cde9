#include "op_harness.h"

#include <algorithm>
#include <cmath>

#include "core/dispatch.h"
#include "ir/infer.h"
#include "ir/op.h"
#include "runtime/executor.h"

namespace kiln::test {

std::vector<Tensor> run_node(const NodeSpec& spec) {
  Graph g;
  g.name = "test";
  g.opsets[spec.domain] = spec.opset;
  if (!spec.domain.empty()) g.opsets[""] = 17;
  auto node = std::make_unique<Node>();
  node->name = "n";
  node->op_type = spec.op;
  node->domain = spec.domain;
  node->opset = spec.opset;
  node->attrs = spec.attrs;
  std::vector<Tensor> feed;
  for (size_t i = 0; i < spec.inputs.size(); ++i) {
    if (!spec.inputs[i]) {
      node->inputs.push_back(nullptr);
      continue;
    }
    Value* v = g.add_value("in" + std::to_string(i));
    v->type = ValueType::tensor(spec.inputs[i]->dtype(), spec.inputs[i]->shape());
    if (spec.constant_inputs || (spec.constant_from >= 0 && static_cast<int>(i) >= spec.constant_from)) {
      v->initializer = *spec.inputs[i];
    } else {
      v->is_graph_input = true;
      g.inputs.push_back(v);
      feed.push_back(*spec.inputs[i]);
    }
    node->inputs.push_back(v);
  }
  for (int i = 0; i < spec.num_outputs; ++i) {
    Value* v = g.add_value("out" + std::to_string(i));
    node->outputs.push_back(v);
    g.outputs.push_back(v);
  }
  g.add_node(std::move(node));
  g.sort_topologically();
  std::vector<std::string> unsupported;
  infer_graph(g, &unsupported);
  if (!unsupported.empty()) throw UnsupportedError(unsupported[0]);
  auto cg = CompiledGraph::compile(g);
  std::vector<Tensor> outs = cg->run(feed, nullptr, spec.pool);
  for (size_t i = 0; i < outs.size(); ++i) {
    const ValueType& t = g.outputs[i]->type;
    if (t.dtype != DType::kUndefined) {
      EXPECT_EQ(t.dtype, outs[i].dtype()) << spec.op << ": inferred dtype of output " << i << " differs";
    }
    if (t.shape) {
      EXPECT_EQ(t.shape->size(), outs[i].shape().size()) << spec.op << ": inferred rank of output " << i << " differs";
      for (size_t d = 0; d < t.shape->size() && d < outs[i].shape().size(); ++d)
        if ((*t.shape)[d].is_known()) {
          EXPECT_EQ((*t.shape)[d].value, outs[i].shape()[d]) << spec.op << ": inferred dim " << d << " of output " << i;
        }
    }
  }
  return outs;
}

Attribute attr_int(int64_t v) {
  Attribute a;
  a.kind = Attribute::Kind::kInt;
  a.i = v;
  return a;
}
Attribute attr_float(float v) {
  Attribute a;
  a.kind = Attribute::Kind::kFloat;
  a.f = v;
  return a;
}
Attribute attr_string(std::string v) {
  Attribute a;
  a.kind = Attribute::Kind::kString;
  a.s = std::move(v);
  return a;
}
Attribute attr_ints(std::vector<int64_t> v) {
  Attribute a;
  a.kind = Attribute::Kind::kInts;
  a.ints = std::move(v);
  return a;
}
Attribute attr_floats(std::vector<float> v) {
  Attribute a;
  a.kind = Attribute::Kind::kFloats;
  a.floats = std::move(v);
  return a;
}
Attribute attr_tensor(Tensor t) {
  Attribute a;
  a.kind = Attribute::Kind::kTensor;
  a.t = std::move(t);
  return a;
}

Tensor make_f32(Shape shape, std::vector<float> v) {
  Tensor t(DType::kFloat32, std::move(shape));
  EXPECT_EQ(static_cast<int64_t>(v.size()), t.numel());
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}
Tensor make_i64(Shape shape, std::vector<int64_t> v) {
  Tensor t(DType::kInt64, std::move(shape));
  EXPECT_EQ(static_cast<int64_t>(v.size()), t.numel());
  std::copy(v.begin(), v.end(), t.data<int64_t>());
  return t;
}
Tensor make_bool(Shape shape, std::vector<bool> v) {
  Tensor t(DType::kBool, std::move(shape));
  for (size_t i = 0; i < v.size(); ++i) t.data<bool>()[i] = v[i];
  return t;
}
Tensor random_f32(Shape shape, std::mt19937& rng, float lo, float hi) {
  Tensor t(DType::kFloat32, std::move(shape));
  std::uniform_real_distribution<float> d(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

std::vector<float> to_f32(const Tensor& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  dispatch<PodTypes>(t.dtype(), "to_f32", [&]<typename T>() {
    for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = static_cast<float>(acc_t<T>(t.data<T>()[i]));
  });
  return v;
}

Tensor to_f64(const Tensor& t) {
  Tensor d(DType::kFloat64, t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) d.data<double>()[i] = t.data<float>()[i];
  return d;
}

Tensor to_f32_tensor(const Tensor& t) {
  Tensor f(DType::kFloat32, t.shape());
  std::vector<float> v = to_f32(t);
  std::copy(v.begin(), v.end(), f.data<float>());
  return f;
}

int64_t offset_of(const Shape& s, const std::vector<int64_t>& idx) {
  int64_t off = 0;
  for (size_t d = 0; d < s.size(); ++d) off = off * s[d] + idx[d];
  return off;
}

std::vector<std::vector<int64_t>> all_indices(const Shape& s) {
  std::vector<std::vector<int64_t>> out;
  int64_t n = shape_numel(s);
  std::vector<int64_t> idx(s.size(), 0);
  for (int64_t i = 0; i < n; ++i) {
    out.push_back(idx);
    for (size_t d = s.size(); d-- > 0;) {
      if (++idx[d] < s[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

float at(const Tensor& t, const std::vector<int64_t>& idx) { return t.data<float>()[offset_of(t.shape(), idx)]; }

::testing::AssertionResult all_close(const Tensor& got, const Tensor& want, double rtol, double atol) {
  if (got.dtype() != want.dtype())
    return ::testing::AssertionFailure() << "dtype " << dtype_name(got.dtype()) << " vs " << dtype_name(want.dtype());
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure() << "shape " << shape_str(got.shape()) << " vs " << shape_str(want.shape());
  std::vector<float> g = to_f32(got), w = to_f32(want);
  for (size_t i = 0; i < g.size(); ++i) {
    bool ok = (std::isnan(g[i]) && std::isnan(w[i])) || g[i] == w[i] ||
              std::fabs(g[i] - w[i]) <= atol + rtol * std::fabs(w[i]);
    if (!ok) return ::testing::AssertionFailure() << "element " << i << ": " << g[i] << " vs " << w[i];
  }
  return ::testing::AssertionSuccess();
}

}  // namespace kiln::test
