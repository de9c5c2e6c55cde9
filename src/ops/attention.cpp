// Attention (opset 23; 24 adds the nonpad_kv_seqlen input; 25 adds
// left/right_window_size): softmax(scale * Q K^T + bias) V.
//
// Q is (B, Hq, Sq, D) or (B, Sq, Hq*D); K, V are (B, Hk, Skv, D/Dv) or 3-D
// likewise (3-D needs q_num_heads/kv_num_heads). Query head h reads KV head
// h / (Hq / Hk) (grouped-query attention). past_key/past_value are prepended
// along the sequence to form present_key/present_value (total length T).
// The additive bias composes: attn_mask (bool: False -> -inf; float: added;
// a last dim shorter than T is padded with False / -inf), the bottom-right
// causal frontier j <= i + offset (offset = past length, or nonpad_kv_seqlen[b]
// - Sq for an external cache, else 0), sliding windows, and the padding mask
// j < nonpad_kv_seqlen[b]. A row whose bias is all -inf outputs zeros.
// softcap (> 0) maps scores s to softcap * tanh(s / softcap) before the bias.
// qk_matmul_output: mode 0 scores (after softcap, as the reference does),
// 1 after softcap, 2 with bias, 3 the (guarded) softmax probabilities.
#include <cmath>
#include <limits>

#include "ir/op_facts.h"
#include "ops/reduce_util.h"

namespace kiln {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

struct AttnDims {
  int64_t b = 0, hq = 0, hk = 0, sq = 0, skv = 0, past = 0, total = 0, d = 0, dv = 0;
  bool three_d = false;
};

AttnDims attention_dims(const KernelContext& ctx) {
  const Node& node = ctx.node();
  const Tensor& q = ctx.input(0);
  const Tensor& k = ctx.input(1);
  const Tensor& v = ctx.input(2);
  AttnDims a;
  if (q.rank() != k.rank() || q.rank() != v.rank() || (q.rank() != 3 && q.rank() != 4))
    throw ctx.error("Q, K and V must all be 3-D or all 4-D, got " + shape_str(q.shape()) + ", " + shape_str(k.shape()) +
                    ", " + shape_str(v.shape()));
  a.three_d = q.rank() == 3;
  a.b = q.dim(0);
  if (k.dim(0) != a.b || v.dim(0) != a.b) throw ctx.error("Q, K and V batch sizes differ");
  if (a.three_d) {
    a.hq = node.attr_int("q_num_heads", 0);
    a.hk = node.attr_int("kv_num_heads", 0);
    if (a.hq <= 0 || a.hk <= 0) throw ctx.error("3-D inputs need positive q_num_heads and kv_num_heads attributes");
    if (q.dim(2) % a.hq != 0 || k.dim(2) % a.hk != 0 || v.dim(2) % a.hk != 0)
      throw ctx.error("hidden sizes must be divisible by the head counts");
    a.sq = q.dim(1);
    a.skv = k.dim(1);
    a.d = q.dim(2) / a.hq;
    if (k.dim(2) / a.hk != a.d) throw ctx.error("Q and K head sizes differ");
    if (v.dim(1) != a.skv) throw ctx.error("K and V sequence lengths differ");
    a.dv = v.dim(2) / a.hk;
  } else {
    a.hq = q.dim(1);
    a.hk = k.dim(1);
    a.sq = q.dim(2);
    a.skv = k.dim(2);
    a.d = q.dim(3);
    if (k.dim(3) != a.d) throw ctx.error("Q and K head sizes differ");
    if (v.dim(1) != a.hk || v.dim(2) != a.skv) throw ctx.error("V must have K's head count and sequence length");
    a.dv = v.dim(3);
  }
  if (a.hk == 0 || a.hq % a.hk != 0)
    throw ctx.error("q_num_heads " + std::to_string(a.hq) + " must be a multiple of kv_num_heads " +
                    std::to_string(a.hk));
  bool has_pk = ctx.has_input(4), has_pv = ctx.has_input(5);
  if (has_pk != has_pv) throw ctx.error("past_key and past_value must be given together");
  if (has_pk) {
    const Tensor& pk = ctx.input(4);
    const Tensor& pv = ctx.input(5);
    if (pk.rank() != 4 || pk.dim(0) != a.b || pk.dim(1) != a.hk || pk.dim(3) != a.d)
      throw ctx.error("past_key must be (B, kv_num_heads, P, head_size), got " + shape_str(pk.shape()));
    if (pv.rank() != 4 || pv.dim(0) != a.b || pv.dim(1) != a.hk || pv.dim(2) != pk.dim(2) || pv.dim(3) != a.dv)
      throw ctx.error("past_value must be (B, kv_num_heads, P, v_head_size), got " + shape_str(pv.shape()));
    a.past = pk.dim(2);
  }
  a.total = a.past + a.skv;
  return a;
}

// K or V in (B, H, S, E) order with the past prepended: the present tensor.
std::vector<double> present(const KernelContext& ctx, const AttnDims& a, size_t in, size_t past_in, int64_t e) {
  std::vector<double> cur = to_doubles(ctx.input(in), ctx.node().op_type);
  std::vector<double> past =
      ctx.has_input(past_in) ? to_doubles(ctx.input(past_in), ctx.node().op_type) : std::vector<double>();
  std::vector<double> out(static_cast<size_t>(a.b * a.hk * a.total * e));
  for (int64_t b = 0; b < a.b; ++b)
    for (int64_t h = 0; h < a.hk; ++h)
      for (int64_t j = 0; j < a.total; ++j)
        for (int64_t x = 0; x < e; ++x) {
          double val;
          if (j < a.past) {
            val = past[static_cast<size_t>(((b * a.hk + h) * a.past + j) * e + x)];
          } else {
            int64_t s = j - a.past;
            size_t idx = a.three_d ? static_cast<size_t>((b * a.skv + s) * a.hk * e + h * e + x)
                                   : static_cast<size_t>(((b * a.hk + h) * a.skv + s) * e + x);
            val = cur[idx];
          }
          out[static_cast<size_t>(((b * a.hk + h) * a.total + j) * e + x)] = val;
        }
  return out;
}

// The additive bias for all (B, Hq, Sq, T) positions.
std::vector<double> attention_bias(const KernelContext& ctx, const AttnDims& a) {
  const Node& node = ctx.node();
  Shape full = {a.b, a.hq, a.sq, a.total};
  std::vector<double> bias(static_cast<size_t>(shape_numel(full)), 0.0);
  std::vector<int64_t> nonpad;
  bool has_nonpad = ctx.has_input(6);
  if (has_nonpad) {
    nonpad = read_ints(ctx.input(6), ctx, "nonpad_kv_seqlen");
    if (static_cast<int64_t>(nonpad.size()) != a.b)
      throw ctx.error("nonpad_kv_seqlen must have batch_size (" + std::to_string(a.b) + ") elements");
    if (ctx.has_input(4)) throw ctx.error("nonpad_kv_seqlen cannot be combined with past_key/past_value");
  }
  if (ctx.has_input(3)) {
    const Tensor& m = ctx.input(3);
    if (m.rank() > 4 || m.rank() < 1) throw ctx.error("attn_mask must have rank 1 to 4, got " + shape_str(m.shape()));
    // Right-aligned broadcast to `full`, except that a short last dim is padded.
    Shape ms(4, 1);
    for (int d = 0; d < m.rank(); ++d) ms[static_cast<size_t>(4 - m.rank() + d)] = m.dim(d);
    for (size_t d = 0; d < 3; ++d)
      if (ms[d] != 1 && ms[d] != full[d])
        throw ctx.error("attn_mask of shape " + shape_str(m.shape()) + " does not broadcast to " + shape_str(full));
    int64_t mlast = ms[3];
    if (mlast > a.total)
      throw ctx.error("attn_mask's last dim " + std::to_string(mlast) + " exceeds the total sequence length " +
                      std::to_string(a.total));
    std::vector<double> mv;
    if (m.dtype() == DType::kBool) {
      mv.resize(static_cast<size_t>(m.numel()));
      for (size_t i = 0; i < mv.size(); ++i) mv[i] = m.data<bool>()[i] ? 0.0 : kNegInf;
    } else {
      mv = to_doubles(m, node.op_type);
    }
    double pad = kNegInf;  // both a bool False and the float padding
    std::vector<int64_t> st = contiguous_strides(ms);
    for (int64_t b = 0; b < a.b; ++b)
      for (int64_t h = 0; h < a.hq; ++h)
        for (int64_t i = 0; i < a.sq; ++i)
          for (int64_t j = 0; j < a.total; ++j) {
            double val = pad;
            if (j < mlast)
              val = mv[static_cast<size_t>((ms[0] == 1 ? 0 : b) * st[0] + (ms[1] == 1 ? 0 : h) * st[1] +
                                           (ms[2] == 1 ? 0 : i) * st[2] + j)];
            bias[static_cast<size_t>(((b * a.hq + h) * a.sq + i) * a.total + j)] += val;
          }
  }
  bool causal = node.attr_int("is_causal", 0) != 0;
  int64_t left = node.attr_int("left_window_size", -1), right = node.attr_int("right_window_size", -1);
  for (int64_t b = 0; b < a.b; ++b) {
    int64_t offset = a.past;
    if (!ctx.has_input(4) && has_nonpad) offset = nonpad[static_cast<size_t>(b)] - a.sq;
    for (int64_t h = 0; h < a.hq; ++h)
      for (int64_t i = 0; i < a.sq; ++i)
        for (int64_t j = 0; j < a.total; ++j) {
          int64_t diff = i + offset - j;  // query position minus key position
          bool allowed = !(causal && diff < 0);
          if (left >= 0 && diff > left) allowed = false;
          if (right >= 0 && -diff > right) allowed = false;
          if (has_nonpad && j >= nonpad[static_cast<size_t>(b)]) allowed = false;
          if (!allowed) bias[static_cast<size_t>(((b * a.hq + h) * a.sq + i) * a.total + j)] = kNegInf;
        }
  }
  return bias;
}

void attention_compute(KernelContext& ctx) {
  const Node& node = ctx.node();
  AttnDims a = attention_dims(ctx);
  double scale = node.has_attr("scale") ? node.attr_float("scale", 0) : 1.0 / std::sqrt(static_cast<double>(a.d));
  double softcap = node.attr_float("softcap", 0);
  int64_t mode = node.attr_int("qk_matmul_output_mode", 0);
  std::vector<double> q = to_doubles(ctx.input(0), node.op_type);
  std::vector<double> k = present(ctx, a, 1, 4, a.d);
  std::vector<double> v = present(ctx, a, 2, 5, a.dv);
  std::vector<double> bias = attention_bias(ctx, a);
  std::vector<double> y(static_cast<size_t>(a.b * a.hq * a.sq * a.dv), 0.0);
  std::vector<double> qk(bias.size());
  std::vector<double> row(static_cast<size_t>(a.total));
  int64_t group = a.hq / a.hk;
  for (int64_t b = 0; b < a.b; ++b)
    for (int64_t h = 0; h < a.hq; ++h) {
      int64_t kh = h / group;
      for (int64_t i = 0; i < a.sq; ++i) {
        size_t row0 = static_cast<size_t>(((b * a.hq + h) * a.sq + i) * a.total);
        bool any_allowed = false;
        double mx = kNegInf;
        for (int64_t j = 0; j < a.total; ++j) {
          double s = 0;
          for (int64_t x = 0; x < a.d; ++x) {
            size_t qi = a.three_d ? static_cast<size_t>((b * a.sq + i) * a.hq * a.d + h * a.d + x)
                                  : static_cast<size_t>(((b * a.hq + h) * a.sq + i) * a.d + x);
            s += q[qi] * k[static_cast<size_t>(((b * a.hk + kh) * a.total + j) * a.d + x)];
          }
          s *= scale;
          if (softcap > 0) s = softcap * std::tanh(s / softcap);
          double bj = bias[row0 + static_cast<size_t>(j)];
          if (bj != kNegInf) any_allowed = true;
          double sb = s + bj;
          qk[row0 + static_cast<size_t>(j)] = mode == 2 ? sb : s;
          row[static_cast<size_t>(j)] = sb;
          if (sb > mx) mx = sb;
        }
        // Softmax over the row; a fully masked row (bias all -inf) is zero.
        double shift = std::isfinite(mx) ? mx : 0.0;
        double sum = 0;
        for (int64_t j = 0; j < a.total; ++j) {
          double& r = row[static_cast<size_t>(j)];
          r = any_allowed ? std::exp(r - shift) : 0.0;
          sum += r;
        }
        for (int64_t j = 0; j < a.total; ++j) {
          double p = any_allowed && sum != 0 ? row[static_cast<size_t>(j)] / sum : 0.0;
          if (mode == 3) qk[row0 + static_cast<size_t>(j)] = p;
          if (p == 0) continue;
          for (int64_t x = 0; x < a.dv; ++x) {
            size_t yi = a.three_d ? static_cast<size_t>((b * a.sq + i) * a.hq * a.dv + h * a.dv + x)
                                  : static_cast<size_t>(((b * a.hq + h) * a.sq + i) * a.dv + x);
            y[yi] += p * v[static_cast<size_t>(((b * a.hk + kh) * a.total + j) * a.dv + x)];
          }
        }
      }
    }
  DType t1 = ctx.input(0).dtype();
  Shape yshape = a.three_d ? Shape{a.b, a.sq, a.hq * a.dv} : Shape{a.b, a.hq, a.sq, a.dv};
  store_doubles(ctx, 0, t1, yshape, y);
  if (ctx.has_output(1)) store_doubles(ctx, 1, ctx.input(1).dtype(), {a.b, a.hk, a.total, a.d}, k);
  if (ctx.has_output(2)) store_doubles(ctx, 2, ctx.input(2).dtype(), {a.b, a.hk, a.total, a.dv}, v);
  if (ctx.has_output(3)) store_doubles(ctx, 3, t1, {a.b, a.hq, a.sq, a.total}, qk);
}

// Shapes from static input shapes where available.
void attention_infer(InferContext& ctx) {
  const Node& node = ctx.node();
  const ValueType& q = ctx.input_type(0);
  const ValueType& k = ctx.input_type(1);
  const ValueType& v = ctx.input_type(2);
  auto dim = [](const ValueType& t, size_t d) {
    return t.shape && t.shape->size() > d ? (*t.shape)[d] : Dim::unknown();
  };
  auto div = [](Dim x, int64_t n) { return x.is_known() && n > 0 ? Dim::known(x.value / n) : Dim::unknown(); };
  auto mul = [](Dim x, Dim y) { return x.is_known() && y.is_known() ? Dim::known(x.value * y.value) : Dim::unknown(); };
  auto add = [](Dim x, Dim y) { return x.is_known() && y.is_known() ? Dim::known(x.value + y.value) : Dim::unknown(); };
  int rank = q.rank();
  if (rank != -1 && rank != 3 && rank != 4) throw ctx.error("Q must be 3-D or 4-D, got rank " + std::to_string(rank));
  Dim b = dim(q, 0), hq, hk, sq, skv, d, dv;
  if (rank == 3) {
    int64_t nq = node.attr_int("q_num_heads", 0), nk = node.attr_int("kv_num_heads", 0);
    if (nq <= 0 || nk <= 0) throw ctx.error("3-D inputs need positive q_num_heads and kv_num_heads attributes");
    hq = Dim::known(nq);
    hk = Dim::known(nk);
    sq = dim(q, 1);
    skv = dim(k, 1);
    d = div(dim(q, 2), nq);
    dv = div(dim(v, 2), nk);
  } else if (rank == 4) {
    hq = dim(q, 1);
    hk = dim(k, 1);
    sq = dim(q, 2);
    skv = dim(k, 2);
    d = dim(q, 3);
    dv = dim(v, 3);
  }
  Dim past = ctx.has_input(4) ? dim(ctx.input_type(4), 2) : Dim::known(0);
  Dim total = add(past, skv);
  DType t1 = q.dtype;
  if (rank == -1) {
    ctx.set_output(0, t1, std::nullopt);
  } else if (rank == 3) {
    ctx.set_output(0, t1, DimVector{b, sq, mul(hq, dv)});
  } else {
    ctx.set_output(0, t1, DimVector{b, hq, sq, dv});
  }
  bool known = rank != -1;
  ctx.set_output(1, k.dtype, known ? std::optional<DimVector>(DimVector{b, hk, total, d}) : std::nullopt);
  ctx.set_output(2, v.dtype, known ? std::optional<DimVector>(DimVector{b, hk, total, dv}) : std::nullopt);
  ctx.set_output(3, t1, known ? std::optional<DimVector>(DimVector{b, hq, sq, total}) : std::nullopt);
}

std::string attention_check(const Node& n) {
  int64_t mode = n.attr_int("qk_matmul_output_mode", 0);
  if (mode < 0 || mode > 3) return "qk_matmul_output_mode must be 0..3, got " + std::to_string(mode);
  if (n.has_attr("softmax_precision")) {
    int64_t p = n.attr_int("softmax_precision", 1);
    if (p != 1 && p != 10 && p != 11 && p != 16) return "softmax_precision " + std::to_string(p) + " is not supported";
  }
  if (n.attr_int("left_window_size", -1) < -1 || n.attr_int("right_window_size", -1) < -1)
    return "window sizes must be -1 or nonnegative";
  return "";
}

OpSchema attention_schema(int since, int until, int max_inputs) {
  return OpSchema{
      .name = "Attention",
      .since = since,
      .until = until,
      .min_inputs = 3,
      .max_inputs = max_inputs,
      .max_outputs = 4,
      .types = float_dtypes(),
      .check = attention_check,
      .infer = attention_infer,
      .compute = attention_compute,
  };
}

}  // namespace

KILN_OP(Attention_23) { return attention_schema(23, 23, 6); }
KILN_OP(Attention_24) { return attention_schema(24, INT_MAX, 7); }

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(Attention) { return {.op = "Attention", .family = OpFamily::kAttention, .cost = cost::attention()}; }

}  // namespace kiln
