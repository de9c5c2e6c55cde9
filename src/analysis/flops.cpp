#include "analysis/flops.h"

#include <functional>
#include <unordered_map>

#include "kiln/error.h"

namespace kiln {

namespace {

// Thrown inside this file only: the count of this node is unknown.
struct Unknown {
  std::string why;
};

using Dims = std::vector<int64_t>;

int64_t mul(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) throw Unknown{"count overflows int64"};
  return r;
}

int64_t add(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) throw Unknown{"count overflows int64"};
  return r;
}

int64_t product(const Dims& d, size_t from = 0, size_t to = SIZE_MAX) {
  int64_t p = 1;
  for (size_t i = from; i < d.size() && i < to; ++i) p = mul(p, d[i]);
  return p;
}

Dims static_dims(const Value* v, const char* what) {
  if (!v) throw Unknown{std::string(what) + " is absent"};
  if (!v->type.is_static()) throw Unknown{"shape of '" + v->name + "' is not static (" + v->type.str() + ")"};
  return v->type.static_shape();
}
Dims in_dims(const Node& n, size_t i) { return static_dims(i < n.inputs.size() ? n.inputs[i] : nullptr, "an input"); }
Dims out_dims(const Node& n, size_t i) {
  return static_dims(i < n.outputs.size() ? n.outputs[i] : nullptr, "an output");
}
int64_t in_numel(const Node& n, size_t i) { return product(in_dims(n, i)); }
int64_t out_numel(const Node& n, size_t i = 0) { return product(out_dims(n, i)); }

struct Cost {
  int64_t macs = 0;
  int64_t flops = 0;
};
Cost matrix(int64_t macs, int64_t extra_flops = 0) { return {macs, add(mul(2, macs), extra_flops)}; }
Cost elementwise(int64_t flops) { return {0, flops}; }

// ------------------------------------------------------- matrix products

// Conv, ConvInteger, QLinearConv, DeformConv, kiln.BlockedConv: one MAC per
// output element per weight element of its group, i.e.
// N x M x prod(output spatial) x (C/group) x prod(kernel). The weight's
// shape [M, C/group, k...] gives M and the kernel; the output's dims 2..
// the spatial size (the blocked output's padded channel block is not counted).
Cost conv_at(const Node& n, size_t weight_input) {
  const Dims w = in_dims(n, weight_input);
  const Dims y = out_dims(n, 0);
  if (w.size() < 3 || y.size() < w.size()) throw Unknown{"unexpected Conv ranks"};
  const size_t spatial = w.size() - 2;
  return matrix(mul(mul(mul(y[0], w[0]), product(y, 2, 2 + spatial)), product(w, 1)));
}

// ConvTranspose: every input element meets every weight element of its group:
// N x C x prod(input spatial) x (M/group) x prod(kernel).
Cost conv_transpose(const Node& n) { return matrix(mul(in_numel(n, 0), product(in_dims(n, 1), 1))); }

// Gemm: M x N x K (alpha, beta and the C addition are not counted).
Cost gemm(const Node& n) {
  const Dims a = in_dims(n, 0);
  if (a.size() != 2) throw Unknown{"Gemm A is not 2-D"};
  const int64_t k = n.attr_int("transA", 0) ? a[0] : a[1];
  return matrix(mul(out_numel(n), k));
}

// MatMul and its integer forms: one MAC per output element per element of the
// contracted dim (broadcast batch dims included).
Cost matmul(const Node& n) {
  const Dims a = in_dims(n, 0);
  if (a.empty()) throw Unknown{"MatMul A is a scalar"};
  return matrix(mul(out_numel(n), a.back()));
}

// Attention (opset 23+): Q K^T and P V, B x Hq x Sq x T x (D + Dv) MACs,
// with T the total key length (past included); plus per score one scaling,
// one mask add (when a mask is given) and the softmax's 5 steps.
Cost attention(const Node& n) {
  const Dims q = in_dims(n, 0), k = in_dims(n, 1), v = in_dims(n, 2);
  int64_t b = 0, hq = 0, sq = 0, t = 0, d = 0, dv = 0;
  if (q.size() == 4 && k.size() == 4 && v.size() == 4) {
    b = q[0], hq = q[1], sq = q[2], d = q[3], t = k[2], dv = v[3];
  } else if (q.size() == 3 && k.size() == 3 && v.size() == 3) {
    hq = n.attr_int("q_num_heads", 0);
    const int64_t hk = n.attr_int("kv_num_heads", 0);
    if (hq <= 0 || hk <= 0) throw Unknown{"3-D Attention without head counts"};
    b = q[0], sq = q[1], d = q[2] / hq, t = k[1], dv = v[2] / hk;
  } else {
    throw Unknown{"unexpected Attention ranks"};
  }
  if (n.has_input(4)) {
    const Dims past = in_dims(n, 4);
    if (past.size() == 4) t = add(t, past[2]);
  }
  const int64_t scores = mul(mul(mul(b, hq), sq), t);
  const int64_t per_score = 1 + (n.has_input(3) ? 1 : 0) + 5;
  return matrix(mul(scores, add(d, dv)), mul(scores, per_score));
}

// RNN, GRU, LSTM: per step and batch row, the input and recurrent weights
// times their vectors (the elements of W and R); plus per step, batch row,
// direction and hidden unit the gates' element-wise steps (bias adds,
// activations, state update): RNN 3, GRU 18, LSTM 23.
Cost recurrent(const Node& n, int64_t gate_steps) {
  const Dims x = in_dims(n, 0), w = in_dims(n, 1), r = in_dims(n, 2);
  if (x.size() != 3 || w.size() != 3 || r.size() != 3) throw Unknown{"unexpected RNN ranks"};
  const bool batch_first = n.opset >= 14 && n.attr_int("layout", 0) == 1;
  const int64_t seq = batch_first ? x[1] : x[0], batch = batch_first ? x[0] : x[1];
  const int64_t rows = mul(seq, batch);
  const int64_t macs = mul(rows, add(product(w), product(r)));
  return matrix(macs, mul(mul(mul(rows, w[0]), r[2]), gate_steps));
}

// ------------------------------------------------------------ element-wise

// Arithmetic steps per output element of the element-wise ops, activations
// included; transcendental functions (exp, log, tanh, erf...) count one each.
const std::unordered_map<std::string, int>& elementwise_steps() {
  static const std::unordered_map<std::string, int> steps = {
      // binary arithmetic, comparison and logic
      {"Add", 1}, {"Sub", 1}, {"Mul", 1}, {"Div", 1}, {"Pow", 1}, {"Mod", 1}, {"PRelu", 2},
      {"Equal", 1}, {"Less", 1}, {"LessOrEqual", 1}, {"Greater", 1}, {"GreaterOrEqual", 1},
      {"And", 1}, {"Or", 1}, {"Xor", 1}, {"Not", 1}, {"BitShift", 1}, {"BitwiseAnd", 1}, {"BitwiseOr", 1},
      {"BitwiseXor", 1}, {"BitwiseNot", 1},
      // unary math
      {"Abs", 1}, {"Neg", 1}, {"Reciprocal", 1}, {"Sqrt", 1}, {"Exp", 1}, {"Log", 1}, {"Erf", 1},
      {"Sin", 1}, {"Cos", 1}, {"Tan", 1}, {"Asin", 1}, {"Acos", 1}, {"Atan", 1}, {"Sinh", 1}, {"Cosh", 1},
      {"Asinh", 1}, {"Acosh", 1}, {"Atanh", 1}, {"Floor", 1}, {"Ceil", 1}, {"Round", 1}, {"Sign", 1},
      {"IsNaN", 1}, {"IsInf", 1},
      // activations
      {"Relu", 1}, {"Tanh", 1}, {"ThresholdedRelu", 1}, {"Clip", 2}, {"LeakyRelu", 2}, {"Sigmoid", 3},
      {"Softplus", 3}, {"Softsign", 3}, {"Elu", 3}, {"Celu", 4}, {"Selu", 4}, {"HardSigmoid", 4},
      {"Swish", 4}, {"SiLU", 4}, {"HardSwish", 5}, {"Mish", 5}, {"Gelu", 5}, {"GeluTanh", 9},
      // quantization
      {"DequantizeLinear", 2}, {"QuantizeLinear", 5},
      // normalizations that keep statistics per channel/row: per element
      {"BatchNormalization", 2}, {"InstanceNormalization", 7}, {"GroupNormalization", 7},
      {"MeanVarianceNormalization", 5}, {"LpNormalization", 3}, {"RMSNormalization", 4},
      {"Softmax", 5}, {"LogSoftmax", 5}, {"Hardmax", 1}, {"CumSum", 1},
      // kiln's blocked layout: x * scale + shift
      {"kiln.BlockedScaleShift", 2},
  };
  return steps;
}

// Ops that compute nothing: they move, copy, convert or describe data.
bool is_data_movement(const std::string& op) {
  static const std::unordered_map<std::string, bool> zero = {
      {"Reshape", true}, {"Transpose", true}, {"Concat", true}, {"Split", true}, {"Slice", true},
      {"Gather", true}, {"GatherElements", true}, {"GatherND", true}, {"Scatter", true},
      {"ScatterElements", true}, {"ScatterND", true}, {"Squeeze", true}, {"Unsqueeze", true},
      {"Flatten", true}, {"Expand", true}, {"Pad", true}, {"Identity", true}, {"Shape", true},
      {"Size", true}, {"Constant", true}, {"ConstantOfShape", true}, {"Cast", true}, {"CastLike", true},
      {"Tile", true}, {"Dropout", true}, {"Where", true}, {"DepthToSpace", true}, {"SpaceToDepth", true},
      {"Range", true}, {"NonZero", true}, {"OneHot", true}, {"EyeLike", true}, {"Compress", true},
      {"ReverseSequence", true}, {"Trilu", true}, {"kiln.ToBlocked", true}, {"kiln.FromBlocked", true},
  };
  return zero.count(op) != 0;
}

// ---------------------------------------------------- windows and reductions

// MaxPool, AveragePool, LpPool: per output element one step per window
// element (a compare or an add); AveragePool adds a divide, LpPool a
// multiply per window element.
Cost pool(const Node& n, const std::string& op) {
  const int64_t window = product(n.attr_ints("kernel_shape"));
  const int64_t out = out_numel(n);
  if (op == "AveragePool") return elementwise(mul(out, add(window, 1)));
  if (op == "LpPool") return elementwise(mul(out, mul(window, 2)));
  return elementwise(mul(out, window));
}

// kiln.BlockedPool: the same over the real channels (attribute `channels`),
// not the padded block.
Cost blocked_pool(const Node& n) {
  const Dims x = in_dims(n, 0), y = out_dims(n, 0);
  if (x.size() != 5 || y.size() != 5) throw Unknown{"unexpected blocked ranks"};
  const int64_t channels = n.attr_int("channels", -1);
  if (channels < 0) throw Unknown{"BlockedPool without channels"};
  const bool avg = n.attr_string("mode", "") == "avg";
  const int64_t planes = mul(y[0], channels);
  const int64_t out = mul(planes, mul(y[2], y[3]));
  if (n.attr_int("global", 0) != 0) return elementwise(add(mul(planes, mul(x[2], x[3])), avg ? out : 0));
  const int64_t window = product(n.attr_ints("kernel_shape"));
  return elementwise(mul(out, add(window, avg ? 1 : 0)));
}

// Reductions: one step per input element (two for ReduceSumSquare, L1, L2,
// LogSumExp); a mean adds a divide per output element.
Cost reduce(const Node& n, const std::string& op) {
  const int64_t in = in_numel(n, 0);
  if (op == "ReduceMean" || op == "GlobalAveragePool") return elementwise(add(in, out_numel(n)));
  if (op == "ReduceSumSquare" || op == "ReduceL1" || op == "ReduceL2" || op == "ReduceLogSumExp" ||
      op == "GlobalLpPool")
    return elementwise(mul(in, 2));
  return elementwise(in);
}

// Resize/Upsample: nearest moves data (0); linear interpolates along each
// resized axis, 3 steps per lerp and 2^n - 1 lerps per output element for n
// resized axes; cubic 7 steps per 4-tap interpolation and (4^n - 1) / 3 of them.
Cost resize(const Node& n) {
  const std::string mode = n.attr_string("mode", "nearest");
  if (mode == "nearest") return {};
  const Dims x = in_dims(n, 0), y = out_dims(n, 0);
  if (x.size() != y.size()) throw Unknown{"Resize changes the rank"};
  int64_t axes = 0;
  for (size_t i = 0; i < x.size(); ++i) axes += x[i] != y[i];
  int64_t per_output = 0;
  if (mode == "linear" || mode == "bilinear" || mode == "trilinear") per_output = 3 * ((int64_t{1} << axes) - 1);
  else if (mode == "cubic") per_output = 7 * (((int64_t{1} << (2 * axes)) - 1) / 3);
  else throw Unknown{"Resize mode '" + mode + "'"};
  return elementwise(mul(out_numel(n), per_output));
}

// ------------------------------------------------------------------ table

using CostFn = std::function<Cost(const Node&)>;

// Counting rules by op ("kiln.Op" for kiln's own domain) that need more than
// an element-wise step count.
const std::unordered_map<std::string, CostFn>& cost_rules() {
  static const std::unordered_map<std::string, CostFn> rules = {
      {"Conv", [](const Node& n) { return conv_at(n, 1); }},
      {"ConvInteger", [](const Node& n) { return conv_at(n, 1); }},
      {"DeformConv", [](const Node& n) { return conv_at(n, 1); }},
      {"QLinearConv", [](const Node& n) { return conv_at(n, 3); }},
      {"kiln.BlockedConv", [](const Node& n) { return conv_at(n, 1); }},
      {"ConvTranspose", conv_transpose},
      {"Gemm", gemm},
      {"MatMul", matmul},
      {"MatMulInteger", matmul},
      {"QLinearMatMul", matmul},
      {"Attention", attention},
      {"RNN", [](const Node& n) { return recurrent(n, 3); }},
      {"GRU", [](const Node& n) { return recurrent(n, 18); }},
      {"LSTM", [](const Node& n) { return recurrent(n, 23); }},
      {"MaxPool", [](const Node& n) { return pool(n, "MaxPool"); }},
      {"AveragePool", [](const Node& n) { return pool(n, "AveragePool"); }},
      {"LpPool", [](const Node& n) { return pool(n, "LpPool"); }},
      {"kiln.BlockedPool", blocked_pool},
      {"GlobalAveragePool", [](const Node& n) { return reduce(n, "GlobalAveragePool"); }},
      {"GlobalMaxPool", [](const Node& n) { return reduce(n, "GlobalMaxPool"); }},
      {"GlobalLpPool", [](const Node& n) { return reduce(n, "GlobalLpPool"); }},
      {"ReduceSum", [](const Node& n) { return reduce(n, "ReduceSum"); }},
      {"ReduceMean", [](const Node& n) { return reduce(n, "ReduceMean"); }},
      {"ReduceMax", [](const Node& n) { return reduce(n, "ReduceMax"); }},
      {"ReduceMin", [](const Node& n) { return reduce(n, "ReduceMin"); }},
      {"ReduceProd", [](const Node& n) { return reduce(n, "ReduceProd"); }},
      {"ReduceSumSquare", [](const Node& n) { return reduce(n, "ReduceSumSquare"); }},
      {"ReduceL1", [](const Node& n) { return reduce(n, "ReduceL1"); }},
      {"ReduceL2", [](const Node& n) { return reduce(n, "ReduceL2"); }},
      {"ReduceLogSum", [](const Node& n) { return reduce(n, "ReduceLogSum"); }},
      {"ReduceLogSumExp", [](const Node& n) { return reduce(n, "ReduceLogSumExp"); }},
      {"ArgMax", [](const Node& n) { return reduce(n, "ArgMax"); }},
      {"ArgMin", [](const Node& n) { return reduce(n, "ArgMin"); }},
      {"Resize", resize},
      {"Upsample", resize},
      // Variadic: k - 1 steps per output element for k inputs; Mean divides once more.
      {"Sum", [](const Node& n) { return elementwise(mul(out_numel(n), int64_t(n.inputs.size()) - 1)); }},
      {"Max", [](const Node& n) { return elementwise(mul(out_numel(n), int64_t(n.inputs.size()) - 1)); }},
      {"Min", [](const Node& n) { return elementwise(mul(out_numel(n), int64_t(n.inputs.size()) - 1)); }},
      {"Mean", [](const Node& n) { return elementwise(mul(out_numel(n), int64_t(n.inputs.size()))); }},
      // LayerNormalization: mean (add), subtract, square, add (variance),
      // multiply by 1/sigma, then scale (and bias when given).
      {"LayerNormalization",
       [](const Node& n) { return elementwise(mul(out_numel(n), 5 + 1 + (n.has_input(2) ? 1 : 0))); }},
  };
  return rules;
}

Cost base_cost(const Node& n, const std::string& op) {
  auto rule = cost_rules().find(op);
  if (rule != cost_rules().end()) return rule->second(n);
  if (is_data_movement(op)) return {};
  auto steps = elementwise_steps().find(op);
  if (steps != elementwise_steps().end()) {
    if (op == "Gelu" && n.attr_string("approximate", "none") == "tanh")
      return elementwise(mul(out_numel(n), elementwise_steps().at("GeluTanh")));
    return elementwise(mul(out_numel(n), steps->second));
  }
  throw Unknown{"no counting rule for " + op};
}

// A fused epilogue (ir/epilogue.h): each step costs what its op would.
int64_t epilogue_flops(const Node& n) {
  if (!n.has_attr("kiln.epilogue")) return 0;
  int64_t per_element = 0;
  for (const std::string& step : n.attr_strings("kiln.epilogue")) {
    auto it = elementwise_steps().find(step);
    if (it == elementwise_steps().end()) throw Unknown{"no counting rule for epilogue step " + step};
    per_element += it->second;
  }
  return mul(out_numel(n), per_element);
}

}  // namespace

NodeCost node_cost(const Node& node) {
  const std::string op = node.domain.empty() || node.domain == "ai.onnx" ? node.op_type
                                                                          : node.domain + "." + node.op_type;
  NodeCost c;
  try {
    const Cost base = base_cost(node, op);
    c.macs = base.macs;
    c.flops = add(base.flops, epilogue_flops(node));
    c.known = true;
  } catch (const Unknown& u) {
    c = NodeCost{};
    c.why = u.why;
  } catch (const Error& e) {  // an attribute of the wrong kind
    c = NodeCost{};
    c.why = e.what();
  }
  return c;
}

bool is_parameter(const Tensor& t) {
  switch (t.dtype()) {
    case DType::kFloat32:
    case DType::kFloat64:
    case DType::kFloat16:
    case DType::kBFloat16:
    case DType::kInt8:
    case DType::kUInt8:
    case DType::kInt16:
    case DType::kUInt16:
      return true;
    default:
      return false;
  }
}

int64_t node_params(const Node& node) {
  int64_t n = 0;
  for (const Value* in : node.inputs)
    if (in && in->initializer && is_parameter(*in->initializer)) n += in->initializer->numel();
  return n;
}

}  // namespace kiln
