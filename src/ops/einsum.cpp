// Einsum (12): sums of products over labelled axes.
//
// The equation is "term,term,...[->out]"; a term is letters with at most one
// "..." standing for the leading-broadcast dims. A letter repeated within a
// term takes the diagonal. Without "->" the output is "..." followed by the
// letters that occur exactly once, in alphabetical order. Two float32
// operands (attention's "bhnd,bhmd->bhnm", a bilinear layer's "bi,oij->bo",
// ...) run as a batched GEMM between permutations; otherwise the naive
// kernel walks every combination of label values once.
#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "ir/op_facts.h"
#include "kernels/cpu/gemm_f32.h"
#include "ops/reduce_util.h"
#include "ops/tensor_util.h"

namespace kiln {

namespace {

// Labels are chars; ellipsis dims get labels from 0 upward (never letters).
struct Term {
  std::vector<int> labels;  // per input dim
};

struct Equation {
  std::vector<std::string> inputs;
  std::string output;
  bool explicit_output = false;
};

Equation split_equation(const std::string& eq, const std::string& who) {
  std::string s;
  for (char ch : eq)
    if (!std::isspace(static_cast<unsigned char>(ch))) s += ch;
  Equation e;
  size_t arrow = s.find("->");
  std::string lhs = arrow == std::string::npos ? s : s.substr(0, arrow);
  if (arrow != std::string::npos) {
    e.explicit_output = true;
    e.output = s.substr(arrow + 2);
  }
  size_t start = 0;
  while (true) {
    size_t comma = lhs.find(',', start);
    e.inputs.push_back(lhs.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  auto valid = [&](const std::string& t) {
    size_t dots = t.find("...");
    if (dots != std::string::npos && t.find("...", dots + 1) != std::string::npos)
      throw Error(who + ": more than one ellipsis in einsum term '" + t + "'");
    std::string rest = dots == std::string::npos ? t : t.substr(0, dots) + t.substr(dots + 3);
    for (char ch : rest)
      if (!std::isalpha(static_cast<unsigned char>(ch)))
        throw Error(who + ": invalid character '" + std::string(1, ch) + "' in einsum equation '" + eq + "'");
  };
  for (const std::string& t : e.inputs) valid(t);
  if (e.explicit_output) valid(e.output);
  return e;
}

// Maps a term onto `rank` dims; `ell` receives the number of ellipsis dims.
Term parse_term(const std::string& t, int64_t rank, int64_t* ell, const std::string& who) {
  Term term;
  size_t dots = t.find("...");
  int64_t letters = static_cast<int64_t>(t.size()) - (dots == std::string::npos ? 0 : 3);
  *ell = dots == std::string::npos ? 0 : rank - letters;
  if (*ell < 0 || (dots == std::string::npos && letters != rank))
    throw Error(who + ": einsum term '" + t + "' does not match an input of rank " + std::to_string(rank));
  for (size_t i = 0; i < t.size();) {
    if (i == dots) {
      for (int64_t k = 0; k < *ell; ++k) term.labels.push_back(static_cast<int>(k));  // aligned later
      i += 3;
    } else {
      term.labels.push_back(static_cast<unsigned char>(t[i]));
      ++i;
    }
  }
  return term;
}

struct Plan {
  std::vector<Term> inputs;  // labels per input dim (ellipsis labels right-aligned)
  std::vector<int> out_labels;
  std::map<int, int64_t> size;  // label -> extent
};

// Resolves labels and extents from the equation and the input shapes.
Plan make_plan(const std::string& eq, const std::vector<Shape>& shapes, const std::string& who) {
  Equation e = split_equation(eq, who);
  if (e.inputs.size() != shapes.size())
    throw Error(who + ": einsum equation has " + std::to_string(e.inputs.size()) + " terms but there are " +
                std::to_string(shapes.size()) + " inputs");
  Plan p;
  int64_t max_ell = 0;
  std::vector<int64_t> ells(shapes.size());
  for (size_t i = 0; i < shapes.size(); ++i) {
    p.inputs.push_back(parse_term(e.inputs[i], static_cast<int64_t>(shapes[i].size()), &ells[i], who));
    max_ell = std::max(max_ell, ells[i]);
  }
  // Ellipsis dims are right-aligned: input i's k-th ellipsis dim is label
  // (max_ell - ell_i + k); extents broadcast.
  for (size_t i = 0; i < shapes.size(); ++i) {
    std::vector<int>& labels = p.inputs[i].labels;
    for (size_t d = 0; d < labels.size(); ++d) {
      int& l = labels[d];
      bool is_ell = l < 256 && !std::isalpha(l);
      if (is_ell) l = static_cast<int>(max_ell - ells[i] + l);
      int64_t ext = shapes[i][d];
      auto it = p.size.find(l);
      if (it == p.size.end()) {
        p.size[l] = ext;
      } else if (it->second != ext) {
        if (is_ell && (it->second == 1 || ext == 1)) {
          it->second = std::max(it->second, ext);
        } else {
          throw Error(who + ": einsum label '" + (is_ell ? std::string("...") : std::string(1, static_cast<char>(l))) +
                      "' has extents " + std::to_string(it->second) + " and " + std::to_string(ext));
        }
      }
    }
  }
  if (e.explicit_output) {
    size_t dots = e.output.find("...");
    for (size_t i = 0; i < e.output.size();) {
      if (i == dots) {
        for (int64_t k = 0; k < max_ell; ++k) p.out_labels.push_back(static_cast<int>(k));
        i += 3;
        continue;
      }
      int l = static_cast<unsigned char>(e.output[i++]);
      if (!p.size.count(l))
        throw Error(who + ": output label '" + std::string(1, static_cast<char>(l)) + "' is not an input label");
      if (std::count(p.out_labels.begin(), p.out_labels.end(), l))
        throw Error(who + ": output label '" + std::string(1, static_cast<char>(l)) + "' is repeated");
      p.out_labels.push_back(l);
    }
    // Ellipsis dims that the output omits are summed over, as in numpy.
  } else {
    for (int64_t k = 0; k < max_ell; ++k) p.out_labels.push_back(static_cast<int>(k));
    std::map<int, int> count;
    for (const Term& t : p.inputs)
      for (int l : t.labels)
        if (l >= 256 || std::isalpha(l)) ++count[l];
    for (auto& [l, c] : count)
      if (c == 1) p.out_labels.push_back(l);  // std::map iterates in ASCII order
  }
  return p;
}

template <typename T>
void einsum_typed(const Plan& p, const std::vector<const Tensor*>& ins, Tensor& out) {
  using A = std::conditional_t<std::is_floating_point_v<acc_t<T>>, double,
                               std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>>;
  // Every label gets one loop; strides say how each input / the output moves.
  std::vector<int> all;
  for (auto& [l, n] : p.size) all.push_back(l);
  size_t nl = all.size();
  Shape extents(nl);
  for (size_t k = 0; k < nl; ++k) extents[k] = p.size.at(all[k]);
  auto strides_for = [&](const std::vector<int>& labels, const Shape& shape) {
    std::vector<int64_t> st(nl, 0);
    std::vector<int64_t> cs = contiguous_strides(shape);
    for (size_t d = 0; d < labels.size(); ++d) {
      if (shape[d] == 1) continue;  // a broadcast ellipsis dim
      size_t k = static_cast<size_t>(std::find(all.begin(), all.end(), labels[d]) - all.begin());
      st[k] += cs[d];  // repeated labels add up: the diagonal
    }
    return st;
  };
  std::vector<std::vector<int64_t>> strides;
  for (size_t i = 0; i < ins.size(); ++i) strides.push_back(strides_for(p.inputs[i].labels, ins[i]->shape()));
  strides.push_back(strides_for(p.out_labels, out.shape()));
  std::vector<A> acc(static_cast<size_t>(out.numel()), A(0));
  std::vector<const T*> data;
  for (const Tensor* t : ins) data.push_back(t->data<T>());
  for_each_broadcast(extents, strides, [&](int64_t, const int64_t* off) {
    A prod = A(1);
    for (size_t i = 0; i < data.size(); ++i) prod *= static_cast<A>(acc_t<T>(data[i][off[i]]));
    acc[static_cast<size_t>(off[data.size()])] += prod;
  });
  T* po = out.data<T>();
  for (size_t i = 0; i < acc.size(); ++i) po[i] = static_cast<T>(acc[i]);
}

// Two float32 operands without diagonals or broadcast dims: a batched GEMM.
// Labels in both inputs and the output are batch (B), in both inputs only
// contracted (K), in one input and the output M (left) or N (right). A is
// permuted to [B, M, K], B to [B, K, N] (no copy where already so), the
// product lands as [B, M, N] and is permuted to the output's order. Labels
// in one input only and not in the output (summed away) are left to the
// naive kernel. Returns false, having done nothing, when the case is not
// this one.
bool einsum_f32_gemm(KernelContext& ctx, const Plan& p, const std::vector<const Tensor*>& ins, Tensor& out) {
  if (ins.size() != 2 || ins[0]->dtype() != DType::kFloat32 || ins[1]->dtype() != DType::kFloat32) return false;
  const std::vector<int>& la = p.inputs[0].labels;
  const std::vector<int>& lb = p.inputs[1].labels;
  const std::vector<int>& lo = p.out_labels;
  auto has = [](const std::vector<int>& v, int l) { return std::find(v.begin(), v.end(), l) != v.end(); };
  auto distinct = [](const std::vector<int>& v) { return std::set<int>(v.begin(), v.end()).size() == v.size(); };
  if (!distinct(la) || !distinct(lb)) return false;
  for (size_t i = 0; i < 2; ++i)  // no broadcast (size-1 against larger) ellipsis dims
    for (size_t d = 0; d < p.inputs[i].labels.size(); ++d)
      if (ins[i]->shape()[d] != p.size.at(p.inputs[i].labels[d])) return false;
  std::vector<int> batch, left, right, contracted;
  for (int l : lo) {
    const bool a = has(la, l), b = has(lb, l);
    if (a && b)
      batch.push_back(l);
    else if (a)
      left.push_back(l);
    else if (b)
      right.push_back(l);
  }
  for (int l : la)
    if (!has(lo, l)) {
      if (!has(lb, l)) return false;  // summed away within A
      contracted.push_back(l);
    }
  for (int l : lb)
    if (!has(lo, l) && !has(la, l)) return false;  // summed away within B
  auto extent = [&](const std::vector<int>& ls) {
    int64_t n = 1;
    for (int l : ls) n *= p.size.at(l);
    return n;
  };
  const int64_t nb = extent(batch), m = extent(left), n = extent(right), k = extent(contracted);
  if (out.numel() == 0) return true;
  // An operand in the label order `want`, as a tensor (its own data when the
  // order is already that).
  auto arranged = [&](const Tensor& x, const std::vector<int>& labels, const std::vector<int>& want) {
    std::vector<int64_t> perm;
    for (int l : want) perm.push_back(std::find(labels.begin(), labels.end(), l) - labels.begin());
    bool identity = true;
    for (size_t i = 0; i < perm.size(); ++i) identity &= perm[i] == static_cast<int64_t>(i);
    if (identity) return x;
    Shape shape;
    for (int64_t d : perm) shape.push_back(x.shape()[static_cast<size_t>(d)]);
    Tensor y = Tensor::uninitialized(DType::kFloat32, shape);
    permute_view(x, x.shape(), perm, y, ctx.thread_pool());
    return y;
  };
  auto cat = [](std::vector<int> a, const std::vector<int>& b, const std::vector<int>& c) {
    a.insert(a.end(), b.begin(), b.end());
    a.insert(a.end(), c.begin(), c.end());
    return a;
  };
  const Tensor a = arranged(*ins[0], la, cat(batch, left, contracted));
  const Tensor b = arranged(*ins[1], lb, cat(batch, contracted, right));
  const std::vector<int> product_labels = cat(batch, left, right);
  const bool direct = product_labels == lo;
  Tensor product = direct ? out : Tensor::uninitialized(DType::kFloat32, {nb, m, n});
  for (int64_t i = 0; i < nb; ++i)
    gemm_f32(m, n, k, 1.0f, {a.data<float>() + i * m * k, k}, {b.data<float>() + i * k * n, n}, 0.0f,
             product.data<float>() + i * m * n, n, ctx.thread_pool());
  if (!direct) {
    Shape shape;
    for (int l : product_labels) shape.push_back(p.size.at(l));
    std::vector<int64_t> perm;
    for (int l : lo)
      perm.push_back(std::find(product_labels.begin(), product_labels.end(), l) - product_labels.begin());
    permute_view(product, shape, perm, out, ctx.thread_pool());
  }
  return true;
}

void einsum_compute(KernelContext& ctx) {
  std::string eq = ctx.node().attr_string("equation", "");
  std::vector<Shape> shapes;
  std::vector<const Tensor*> ins;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    ins.push_back(&ctx.input(i));
    shapes.push_back(ctx.input(i).shape());
    if (ins[i]->dtype() != ins[0]->dtype()) throw ctx.error("inputs must share one element type");
  }
  Plan p = make_plan(eq, shapes, ctx.node().describe());
  Shape out_shape;
  for (int l : p.out_labels) out_shape.push_back(p.size.at(l));
  Tensor& out = ctx.output(0, ins[0]->dtype(), out_shape);
  if (einsum_f32_gemm(ctx, p, ins, out)) return;
  dispatch<NumericTypes>(ins[0]->dtype(), "Einsum", [&]<typename T>() { einsum_typed<T>(p, ins, out); });
}

void einsum_infer(InferContext& ctx) {
  DType dt = ctx.input_dtype(0);
  std::vector<Shape> shapes;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    const ValueType& t = ctx.input_type(i);
    if (!t.is_static()) {
      ctx.set_output(0, dt, std::nullopt);
      return;
    }
    shapes.push_back(t.static_shape());
  }
  Plan p = make_plan(ctx.node().attr_string("equation", ""), shapes, ctx.node().describe());
  DimVector out;
  for (int l : p.out_labels) out.push_back(Dim::known(p.size.at(l)));
  ctx.set_output(0, dt, out);
}

}  // namespace

KILN_OP(Einsum) {
  return OpSchema{
      .name = "Einsum",
      .since = 12,
      .min_inputs = 1,
      .max_outputs = 1,
      .types = numeric_dtypes(),
      .check =
          [](const Node& n) {
            return n.has_attr("equation") ? std::string() : std::string("attribute equation is required");
          },
      .infer = einsum_infer,
      .compute = einsum_compute,
  };
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

// Every combination of label values is visited once: with k inputs that is
// k - 1 multiplies and one add per point, i.e. (k - 1) MACs; one input sums.
KILN_OP_FACTS(Einsum) {
  return {.op = "Einsum", .family = OpFamily::kMatMul, .cost = [](const Node& n) {
            std::vector<Shape> shapes;
            for (size_t i = 0; i < n.inputs.size(); ++i) {
              const std::vector<int64_t> d = cost::in_dims(n, i);
              shapes.emplace_back(d.begin(), d.end());
            }
            Plan p;
            try {
              p = make_plan(n.attr_string("equation", ""), shapes, n.describe());
            } catch (const Error& e) {
              throw CostUnknown{e.what()};
            }
            int64_t points = 1;
            for (const auto& [label, extent] : p.size) points = cost::mul(points, extent);
            const int64_t k = static_cast<int64_t>(n.inputs.size());
            return k < 2 ? cost::elementwise(points) : cost::matrix(cost::mul(points, k - 1));
          }};
}

}  // namespace kiln
