#include "ir/cost.h"

namespace kiln::cost {

using Dims = std::vector<int64_t>;

int64_t mul(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) throw CostUnknown{"count overflows int64"};
  return r;
}

int64_t add(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) throw CostUnknown{"count overflows int64"};
  return r;
}

int64_t product(const Dims& d, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t i = from; i < d.size() && i < to; ++i) p = mul(p, d[i]);
  return p;
}

namespace {

Dims static_dims(const Value* v, const char* what) {
  if (!v) throw CostUnknown{std::string(what) + " is absent"};
  if (!v->type.is_static()) throw CostUnknown{"shape of '" + v->name + "' is not static (" + v->type.str() + ")"};
  return v->type.static_shape();
}

}  // namespace

Dims in_dims(const Node& n, size_t i) { return static_dims(i < n.inputs.size() ? n.inputs[i] : nullptr, "an input"); }
Dims out_dims(const Node& n, size_t i) {
  return static_dims(i < n.outputs.size() ? n.outputs[i] : nullptr, "an output");
}
int64_t in_numel(const Node& n, size_t i) { return product(in_dims(n, i)); }
int64_t out_numel(const Node& n, size_t i) { return product(out_dims(n, i)); }

OpCost matrix(int64_t macs, int64_t extra_flops) { return {macs, add(mul(2, macs), extra_flops)}; }
OpCost elementwise(int64_t flops) { return {0, flops}; }

CostFn none() {
  return [](const Node&) { return OpCost{}; };
}

CostFn per_element(int steps) {
  return [steps](const Node& n) { return elementwise(mul(out_numel(n), steps)); };
}

CostFn not_counted(std::string why) {
  return [why](const Node&) -> OpCost { throw CostUnknown{why}; };
}

// The weight's shape [M, C/group, k...] gives M and the kernel; the output's
// dims 2.. the spatial size (a blocked output's padded channel block is not
// counted).
CostFn conv(size_t weight_input) {
  return [weight_input](const Node& n) {
    const Dims w = in_dims(n, weight_input);
    const Dims y = out_dims(n, 0);
    if (w.size() < 3 || y.size() < w.size()) throw CostUnknown{"unexpected Conv ranks"};
    const size_t spatial = w.size() - 2;
    return matrix(mul(mul(mul(y[0], w[0]), product(y, 2, 2 + spatial)), product(w, 1)));
  };
}

CostFn conv_transpose() {
  return [](const Node& n) { return matrix(mul(in_numel(n, 0), product(in_dims(n, 1), 1))); };
}

// alpha, beta and the C addition are not counted.
CostFn gemm() {
  return [](const Node& n) {
    const Dims a = in_dims(n, 0);
    if (a.size() != 2) throw CostUnknown{"Gemm A is not 2-D"};
    const int64_t k = n.attr_int("transA", 0) ? a[0] : a[1];
    return matrix(mul(out_numel(n), k));
  };
}

CostFn matmul() {
  return [](const Node& n) {
    const Dims a = in_dims(n, 0);
    if (a.empty()) throw CostUnknown{"MatMul A is a scalar"};
    return matrix(mul(out_numel(n), a.back()));
  };
}

// B x Hq x Sq x T x (D + Dv) MACs, with T the total key length (past
// included); plus per score one scaling, one mask add (when a mask is
// given) and the softmax's 5 steps.
CostFn attention() {
  return [](const Node& n) {
    const Dims q = in_dims(n, 0), k = in_dims(n, 1), v = in_dims(n, 2);
    int64_t b = 0, hq = 0, sq = 0, t = 0, d = 0, dv = 0;
    if (q.size() == 4 && k.size() == 4 && v.size() == 4) {
      b = q[0], hq = q[1], sq = q[2], d = q[3], t = k[2], dv = v[3];
    } else if (q.size() == 3 && k.size() == 3 && v.size() == 3) {
      hq = n.attr_int("q_num_heads", 0);
      const int64_t hk = n.attr_int("kv_num_heads", 0);
      if (hq <= 0 || hk <= 0) throw CostUnknown{"3-D Attention without head counts"};
      b = q[0], sq = q[1], d = q[2] / hq, t = k[1], dv = v[2] / hk;
    } else {
      throw CostUnknown{"unexpected Attention ranks"};
    }
    if (n.has_input(4)) {
      const Dims past = in_dims(n, 4);
      if (past.size() == 4) t = add(t, past[2]);
    }
    const int64_t scores = mul(mul(mul(b, hq), sq), t);
    const int64_t per_score = 1 + (n.has_input(3) ? 1 : 0) + 5;
    return matrix(mul(scores, add(d, dv)), mul(scores, per_score));
  };
}

CostFn recurrent(int gate_steps) {
  return [gate_steps](const Node& n) {
    const Dims x = in_dims(n, 0), w = in_dims(n, 1), r = in_dims(n, 2);
    if (x.size() != 3 || w.size() != 3 || r.size() != 3) throw CostUnknown{"unexpected RNN ranks"};
    const bool batch_first = n.opset >= 14 && n.attr_int("layout", 0) == 1;
    const int64_t seq = batch_first ? x[1] : x[0], batch = batch_first ? x[0] : x[1];
    const int64_t rows = mul(seq, batch);
    const int64_t macs = mul(rows, add(product(w), product(r)));
    return matrix(macs, mul(mul(mul(rows, w[0]), r[2]), gate_steps));
  };
}

CostFn pool(int per_window_element, int per_output) {
  return [per_window_element, per_output](const Node& n) {
    const int64_t window = product(n.attr_ints("kernel_shape"));
    return elementwise(mul(out_numel(n), add(mul(window, per_window_element), per_output)));
  };
}

CostFn reduction(int per_input, bool mean) {
  return [per_input, mean](const Node& n) {
    const int64_t steps = mul(in_numel(n, 0), per_input);
    return elementwise(mean ? add(steps, out_numel(n)) : steps);
  };
}

CostFn resize() {
  return [](const Node& n) {
    const std::string mode = n.attr_string("mode", "nearest");
    if (mode == "nearest") return OpCost{};
    const Dims x = in_dims(n, 0), y = out_dims(n, 0);
    if (x.size() != y.size()) throw CostUnknown{"Resize changes the rank"};
    int64_t axes = 0;
    for (size_t i = 0; i < x.size(); ++i) axes += x[i] != y[i];
    int64_t per_output = 0;
    if (mode == "linear" || mode == "bilinear" || mode == "trilinear")
      per_output = 3 * ((int64_t{1} << axes) - 1);
    else if (mode == "cubic")
      per_output = 7 * (((int64_t{1} << (2 * axes)) - 1) / 3);
    else
      throw CostUnknown{"Resize mode '" + mode + "'"};
    return elementwise(mul(out_numel(n), per_output));
  };
}

CostFn variadic(int extra) {
  return [extra](const Node& n) { return elementwise(mul(out_numel(n), int64_t(n.inputs.size()) - 1 + extra)); };
}

}  // namespace kiln::cost
