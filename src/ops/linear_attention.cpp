// LinearAttention (27): a recurrent state S (d_k x d_v) per KV head, updated
// token by token and read by the query heads that share it (GQA):
//   linear:      S = S + k v^T
//   gated:       S = exp(g) * S + k v^T
//   delta:       S = S + k (beta * (v - S^T k))^T
//   gated_delta: S' = exp(g) * S;  S = S' + k (beta * (v - S'^T k))^T
//   o = scale * q^T S  (scale 0 means 1 / sqrt(d_k))
// q, k, v, decay, beta are packed (B, T, H*D); decay is per key dim
// (B, T, Hkv*d_k) or per head (B, T, Hkv); beta is (B, T, Hkv) or (B, T, 1).
// The states are (B, Hkv, d_k, d_v); present_state takes past_state's type
// (the query's type without one).
#include <cmath>

#include "ir/op_facts.h"
#include "ops/reduce_util.h"

namespace kiln {

namespace {

void linear_attention_compute(KernelContext& ctx) {
  const Node& node = ctx.node();
  std::string rule = node.attr_string("update_rule", "gated_delta");
  int64_t hq = node.attr_int("q_num_heads", 0), hk = node.attr_int("kv_num_heads", 0);
  bool gating = rule == "gated" || rule == "gated_delta";
  bool delta = rule == "delta" || rule == "gated_delta";
  const Tensor& q = ctx.input(0);
  const Tensor& k = ctx.input(1);
  const Tensor& v = ctx.input(2);
  if (q.rank() != 3 || k.rank() != 3 || v.rank() != 3) throw ctx.error("query, key and value must be (B, T, H*D)");
  int64_t b = q.dim(0), t = q.dim(1);
  if (k.dim(0) != b || v.dim(0) != b || k.dim(1) != t || v.dim(1) != t)
    throw ctx.error("query, key and value must share batch and sequence dims");
  if (q.dim(2) % hq != 0 || v.dim(2) % hk != 0) throw ctx.error("hidden sizes must be divisible by the head counts");
  int64_t dk = q.dim(2) / hq, dv = v.dim(2) / hk, group = hq / hk;
  if (k.dim(2) != hk * dk) throw ctx.error("key must be (B, T, kv_num_heads * d_k)");
  if (gating != ctx.has_input(4))
    throw ctx.error("update_rule '" + rule + (gating ? "' requires" : "' forbids") + " decay");
  if (delta != ctx.has_input(5))
    throw ctx.error("update_rule '" + rule + (delta ? "' requires" : "' forbids") + " beta");
  int64_t decay_last = 0, beta_last = 0;
  std::vector<double> decay, beta;
  if (gating) {
    const Tensor& g = ctx.input(4);
    decay_last = g.rank() == 3 ? g.dim(2) : -1;
    if (g.rank() != 3 || g.dim(0) != b || g.dim(1) != t || (decay_last != hk && decay_last != hk * dk))
      throw ctx.error("decay must be (B, T, kv_num_heads) or (B, T, kv_num_heads * d_k), got " + shape_str(g.shape()));
    decay = to_doubles(g, node.op_type);
  }
  if (delta) {
    const Tensor& be = ctx.input(5);
    beta_last = be.rank() == 3 ? be.dim(2) : -1;
    if (be.rank() != 3 || be.dim(0) != b || be.dim(1) != t || (beta_last != hk && beta_last != 1))
      throw ctx.error("beta must be (B, T, kv_num_heads) or (B, T, 1), got " + shape_str(be.shape()));
    beta = to_doubles(be, node.op_type);
  }
  Shape state_shape = {b, hk, dk, dv};
  std::vector<double> state(static_cast<size_t>(shape_numel(state_shape)), 0.0);
  DType state_type = q.dtype();
  if (ctx.has_input(3)) {
    const Tensor& ps = ctx.input(3);
    if (ps.shape() != state_shape)
      throw ctx.error("past_state must be " + shape_str(state_shape) + ", got " + shape_str(ps.shape()));
    state = to_doubles(ps, node.op_type);
    state_type = ps.dtype();
  }
  double scale = node.attr_float("scale", 0);
  if (scale == 0) scale = 1.0 / std::sqrt(static_cast<double>(dk));
  std::vector<double> qv = to_doubles(q, node.op_type), kv = to_doubles(k, node.op_type),
                      vv = to_doubles(v, node.op_type);
  std::vector<double> out(static_cast<size_t>(b * t * hq * dv), 0.0), upd(static_cast<size_t>(dv));
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t ti = 0; ti < t; ++ti) {
      int64_t tok = bi * t + ti;
      for (int64_t h = 0; h < hk; ++h) {
        double* s = state.data() + (bi * hk + h) * dk * dv;
        const double* kt = kv.data() + tok * hk * dk + h * dk;
        const double* vt = vv.data() + tok * hk * dv + h * dv;
        if (gating)
          for (int64_t i = 0; i < dk; ++i) {
            double g = decay_last == hk ? decay[static_cast<size_t>(tok * hk + h)]
                                        : decay[static_cast<size_t>(tok * hk * dk + h * dk + i)];
            for (int64_t j = 0; j < dv; ++j) s[i * dv + j] *= std::exp(g);
          }
        for (int64_t j = 0; j < dv; ++j) {
          double u = vt[j];
          if (delta) {
            double retrieved = 0;
            for (int64_t i = 0; i < dk; ++i) retrieved += s[i * dv + j] * kt[i];
            double be = beta[static_cast<size_t>(tok * beta_last + (beta_last == 1 ? 0 : h))];
            u = be * (u - retrieved);
          }
          upd[static_cast<size_t>(j)] = u;
        }
        for (int64_t i = 0; i < dk; ++i)
          for (int64_t j = 0; j < dv; ++j) s[i * dv + j] += kt[i] * upd[static_cast<size_t>(j)];
      }
      for (int64_t h = 0; h < hq; ++h) {
        const double* s = state.data() + (bi * hk + h / group) * dk * dv;
        const double* qt = qv.data() + tok * hq * dk + h * dk;
        for (int64_t j = 0; j < dv; ++j) {
          double o = 0;
          for (int64_t i = 0; i < dk; ++i) o += qt[i] * s[i * dv + j];
          out[static_cast<size_t>(tok * hq * dv + h * dv + j)] = scale * o;
        }
      }
    }
  store_doubles(ctx, 0, q.dtype(), {b, t, hq * dv}, out);
  if (ctx.has_output(1)) store_doubles(ctx, 1, state_type, state_shape, state);
}

void linear_attention_infer(InferContext& ctx) {
  const Node& node = ctx.node();
  const ValueType& q = ctx.input_type(0);
  const ValueType& v = ctx.input_type(2);
  int64_t hq = node.attr_int("q_num_heads", 0), hk = node.attr_int("kv_num_heads", 0);
  auto dim = [](const ValueType& t, size_t d) { return t.rank() == 3 ? (*t.shape)[d] : Dim::unknown(); };
  Dim dk = dim(q, 2).is_known() && hq > 0 ? Dim::known(dim(q, 2).value / hq) : Dim::unknown();
  Dim dv = dim(v, 2).is_known() && hk > 0 ? Dim::known(dim(v, 2).value / hk) : Dim::unknown();
  Dim out_hidden = dv.is_known() ? Dim::known(dv.value * hq) : Dim::unknown();
  ctx.set_output(0, q.dtype, DimVector{dim(q, 0), dim(q, 1), out_hidden});
  DType st = ctx.has_input(3) ? ctx.input_dtype(3) : q.dtype;
  ctx.set_output(1, st, DimVector{dim(q, 0), Dim::known(hk), dk, dv});
}

}  // namespace

KILN_OP(LinearAttention) {
  return OpSchema{
      .name = "LinearAttention",
      .since = 27,
      .min_inputs = 3,
      .max_inputs = 6,
      .max_outputs = 2,
      .types = {DType::kFloat32, DType::kFloat16, DType::kBFloat16},
      .check = [](const Node& n) -> std::string {
        std::string rule = n.attr_string("update_rule", "gated_delta");
        if (rule != "linear" && rule != "gated" && rule != "delta" && rule != "gated_delta")
          return "update_rule '" + rule + "' is not linear/gated/delta/gated_delta";
        int64_t hq = n.attr_int("q_num_heads", 0), hk = n.attr_int("kv_num_heads", 0);
        if (hq <= 0 || hk <= 0 || hq % hk != 0)
          return "q_num_heads (" + std::to_string(hq) + ") must be a positive multiple of kv_num_heads (" +
                 std::to_string(hk) + ")";
        return "";
      },
      .infer = linear_attention_infer,
      .compute = linear_attention_compute,
  };
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(LinearAttention) {
  return {.op = "LinearAttention",
          .family = OpFamily::kAttention,
          .cost = cost::not_counted("LinearAttention is not counted")};
}

}  // namespace kiln
