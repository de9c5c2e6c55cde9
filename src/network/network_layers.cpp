// kiln::Network's compute layers: convolutions, normalizations, linear
// layers, activations, pooling, math and attention. Each checks what the op
// schemas' inference does not (channels against weights, parameter sizes),
// then adds standard ONNX nodes through LayerBuilder.
#include <cmath>

#include "ir/rewrite.h"
#include "network/builder.h"

namespace kiln {

using Attrs = std::map<std::string, Attribute>;

namespace {

std::string n2s(int64_t v) { return std::to_string(v); }

// Rank of a value whose rank the layer needs.
int known_rank(const LayerBuilder& b, const Value* v, const char* what) {
  if (!v->type.has_rank()) throw b.error(std::string(what) + " '" + v->name + "' has an unknown rank");
  return v->type.rank();
}

void check_vector(const LayerBuilder& b, const Tensor& t, int64_t n, const char* what) {
  if (t.rank() != 1 || (n >= 0 && t.dim(0) != n))
    throw b.error(std::string(what) + " " + shape_str(t.shape()) + " must be 1-d of " + (n >= 0 ? n2s(n) : "C") +
                  " values");
}

const char* auto_pad_name(Padding p) {
  switch (p) {
    case Padding::kSameUpper: return "SAME_UPPER";
    case Padding::kSameLower: return "SAME_LOWER";
    case Padding::kValid: return "VALID";
    case Padding::kExplicit: break;
  }
  return "NOTSET";
}

// The window attributes Conv, ConvTranspose and the pools share.
void window_attrs(const LayerBuilder& b, size_t spatial, const std::vector<int64_t>& strides,
                  const std::vector<int64_t>& pads, const std::vector<int64_t>& dilations, Padding padding,
                  Attrs* attrs) {
  auto per_dim = [&](const std::vector<int64_t>& v, const char* what) {
    if (!v.empty() && v.size() != spatial)
      throw b.error(std::string(what) + " has " + n2s(static_cast<int64_t>(v.size())) + " values for " +
                    n2s(static_cast<int64_t>(spatial)) + " spatial dims");
  };
  per_dim(strides, "strides");
  per_dim(dilations, "dilations");
  if (!strides.empty()) (*attrs)["strides"] = ints_attr(strides);
  if (!dilations.empty()) (*attrs)["dilations"] = ints_attr(dilations);
  if (padding != Padding::kExplicit) {
    if (!pads.empty()) throw b.error("pads are given with a padding mode other than explicit");
    (*attrs)["auto_pad"] = string_attr(auto_pad_name(padding));
    return;
  }
  if (pads.empty()) return;
  std::vector<int64_t> onnx_pads = pads;
  if (pads.size() == spatial)
    onnx_pads.insert(onnx_pads.end(), pads.begin(), pads.end());
  else if (pads.size() != 2 * spatial)
    throw b.error("pads has " + n2s(static_cast<int64_t>(pads.size())) + " values; give one per spatial dim (" +
                  n2s(static_cast<int64_t>(spatial)) + ") or a begin and an end for each (" +
                  n2s(static_cast<int64_t>(2 * spatial)) + ")");
  (*attrs)["pads"] = ints_attr(onnx_pads);
}

// Checks shared by conv and deconv; returns the spatial dim count.
size_t check_conv_input(const LayerBuilder& b, const Value* x, const Tensor& weight, const ConvOptions& o) {
  const int r = known_rank(b, x, "input");
  if (r < 3) throw b.error("input " + x->type.str() + " must have rank >= 3 (N, C, spatial...)");
  if (!weight.defined()) throw b.error("the weight is empty");
  if (weight.rank() != r)
    throw b.error("weight " + shape_str(weight.shape()) + " must have the input's rank " + n2s(r));
  if (o.group <= 0) throw b.error("group must be positive, got " + n2s(o.group));
  return static_cast<size_t>(r - 2);
}

std::vector<int64_t> kernel_of(const Tensor& weight) {
  return std::vector<int64_t>(weight.shape().begin() + 2, weight.shape().end());
}

}  // namespace

// ----------------------------------------------------------- convolutions

NetworkTensor Network::conv(NetworkTensor x, const Tensor& weight, const Tensor& bias, const ConvOptions& options,
                            const std::string& name) {
  LayerBuilder b(*impl_, "Conv", name);
  Value* xv = b.in(x, "input");
  const size_t spatial = check_conv_input(b, xv, weight, options);
  const int64_t group = options.group, M = weight.dim(0), expected_c = weight.dim(1) * group;
  const Dim c = dim_of(xv, 1);
  if (c.is_known() && c.value != expected_c)
    throw b.error("input channels " + n2s(c.value) + " do not match the weight's " + n2s(expected_c) + " (weight " +
                  shape_str(weight.shape()) + (group > 1 ? ", group " + n2s(group) : "") + ")");
  if (M % group != 0) throw b.error("output channels " + n2s(M) + " are not divisible by group " + n2s(group));
  if (bias.defined()) check_vector(b, bias, M, "bias");
  if (!options.output_padding.empty()) throw b.error("output_padding is for deconvolutions");
  Attrs attrs = {{"kernel_shape", ints_attr(kernel_of(weight))}, {"group", int_attr(group)}};
  window_attrs(b, spatial, options.strides, options.pads, options.dilations, options.padding, &attrs);
  std::vector<Value*> inputs = {xv, b.weight(weight, "weight")};
  if (bias.defined()) inputs.push_back(b.weight(bias, "bias"));
  return b.finish(b.op("Conv", inputs, "", attrs));
}

NetworkTensor Network::deconv(NetworkTensor x, const Tensor& weight, const Tensor& bias, const ConvOptions& options,
                              const std::string& name) {
  LayerBuilder b(*impl_, "ConvTranspose", name);
  Value* xv = b.in(x, "input");
  const size_t spatial = check_conv_input(b, xv, weight, options);
  const int64_t group = options.group, M = weight.dim(1) * group;
  const Dim c = dim_of(xv, 1);
  if (c.is_known() && c.value != weight.dim(0))
    throw b.error("input channels " + n2s(c.value) + " do not match the weight's " + n2s(weight.dim(0)) + " (weight " +
                  shape_str(weight.shape()) + " is [C, M/group, k...])");
  if (weight.dim(0) % group != 0)
    throw b.error("input channels " + n2s(weight.dim(0)) + " are not divisible by group " + n2s(group));
  if (bias.defined()) check_vector(b, bias, M, "bias");
  Attrs attrs = {{"kernel_shape", ints_attr(kernel_of(weight))}, {"group", int_attr(group)}};
  window_attrs(b, spatial, options.strides, options.pads, options.dilations, options.padding, &attrs);
  if (!options.output_padding.empty()) {
    if (options.output_padding.size() != spatial) throw b.error("output_padding needs one value per spatial dim");
    attrs["output_padding"] = ints_attr(options.output_padding);
  }
  std::vector<Value*> inputs = {xv, b.weight(weight, "weight")};
  if (bias.defined()) inputs.push_back(b.weight(bias, "bias"));
  return b.finish(b.op("ConvTranspose", inputs, "", attrs));
}

// ---------------------------------------------------------- normalization

NetworkTensor Network::batch_norm(NetworkTensor x, const Tensor& scale, const Tensor& bias, const Tensor& mean,
                                  const Tensor& var, float epsilon, const std::string& name) {
  LayerBuilder b(*impl_, "BatchNormalization", name);
  Value* xv = b.in(x, "input");
  if (known_rank(b, xv, "input") < 2) throw b.error("input " + xv->type.str() + " must have rank >= 2 (N, C, ...)");
  const Dim c = dim_of(xv, 1);
  const int64_t C = c.is_known() ? c.value : scale.defined() && scale.rank() == 1 ? scale.dim(0) : -1;
  const Tensor* params[] = {&scale, &bias, &mean, &var};
  const char* names[] = {"weight", "bias", "running_mean", "running_var"};
  std::vector<Value*> inputs = {xv};
  for (int i = 0; i < 4; ++i) {
    if (!params[i]->defined()) throw b.error(std::string(names[i]) + " is empty");
    if (params[i]->rank() != 1 || params[i]->dim(0) != C)
      throw b.error(std::string(names[i]) + " " + shape_str(params[i]->shape()) + " must have " + n2s(C) +
                    " values, one per input channel");
    inputs.push_back(b.weight(*params[i], names[i]));
  }
  return b.finish(b.op("BatchNormalization", inputs, "", {{"epsilon", float_attr(epsilon)}}));
}

NetworkTensor Network::layer_norm(NetworkTensor x, const Tensor& scale, const Tensor& bias, float epsilon,
                                  const std::string& name) {
  LayerBuilder b(*impl_, "LayerNormalization", name);
  Value* xv = b.in(x, "input");
  const int r = known_rank(b, xv, "input");
  if (!scale.defined() || scale.rank() < 1) throw b.error("scale must have rank >= 1 (the normalized shape)");
  const int k = scale.rank();
  if (r < k) throw b.error("input " + xv->type.str() + " has fewer dims than scale " + shape_str(scale.shape()));
  for (int i = 0; i < k; ++i) {
    const Dim d = dim_of(xv, r - k + i);
    if (d.is_known() && d.value != scale.dim(i))
      throw b.error("input " + xv->type.str() + " does not end in the normalized shape " + shape_str(scale.shape()));
  }
  if (bias.defined() && bias.shape() != scale.shape())
    throw b.error("bias " + shape_str(bias.shape()) + " must have scale's shape " + shape_str(scale.shape()));
  std::vector<Value*> inputs = {xv, b.weight(scale, "weight")};
  if (bias.defined()) inputs.push_back(b.weight(bias, "bias"));
  return b.finish(b.op("LayerNormalization", inputs, "", {{"axis", int_attr(-k)}, {"epsilon", float_attr(epsilon)}}));
}

// ----------------------------------------------------------------- linear

Value* emit_linear(LayerBuilder& b, Value* x, const Tensor& weight, const Tensor& bias, const std::string& part) {
  const int r = known_rank(b, x, "input");
  if (r < 1) throw b.error("input " + x->type.str() + " must have rank >= 1");
  const std::string what = part.empty() ? "weight" : part + " weight";
  if (!weight.defined() || weight.rank() != 2)
    throw b.error(what + " " + shape_str(weight.shape()) + " must be 2-d [out, in]");
  const int64_t out = weight.dim(0), in = weight.dim(1);
  const Dim features = dim_of(x, -1);
  if (features.is_known() && features.value != in)
    throw b.error("input features " + n2s(features.value) + " do not match the " + what + "'s " + n2s(in) + " (" +
                  shape_str(weight.shape()) + " is [out, in])");
  if (bias.defined()) check_vector(b, bias, out, part.empty() ? "bias" : (part + " bias").c_str());
  const std::string prefix = part.empty() ? "" : part + ".";
  if (r == 2) {
    // Gemm reads the weight as PyTorch stores it.
    std::vector<Value*> inputs = {x, b.weight(weight, prefix + "weight")};
    if (bias.defined()) inputs.push_back(b.weight(bias, prefix + "bias"));
    return b.op("Gemm", inputs, part, {{"transB", int_attr(1)}});
  }
  // MatMul broadcasts over the leading dims; it needs the weight as [in, out].
  Value* wt = b.weight(transpose_2d(weight), prefix + "weight_t");
  if (!bias.defined()) return b.op("MatMul", {x, wt}, part);
  Value* mm = b.op("MatMul", {x, wt}, subpart(part, "matmul"));
  return b.op("Add", {mm, b.weight(bias, prefix + "bias")}, part);
}

NetworkTensor Network::linear(NetworkTensor x, const Tensor& weight, const Tensor& bias, const std::string& name) {
  LayerBuilder b(*impl_, "Linear", name);
  return b.finish(emit_linear(b, b.in(x, "input"), weight, bias, ""));
}

NetworkTensor Network::matmul(NetworkTensor a, NetworkTensor b_, const std::string& name) {
  LayerBuilder b(*impl_, "MatMul", name);
  return b.finish(b.op("MatMul", {b.in(a, "A"), b.in(b_, "B")}, ""));
}

NetworkTensor Network::gemm(NetworkTensor a, NetworkTensor b_, NetworkTensor c, float alpha, float beta, bool trans_a,
                            bool trans_b, const std::string& name) {
  LayerBuilder b(*impl_, "Gemm", name);
  std::vector<Value*> inputs = {b.in(a, "A"), b.in(b_, "B")};
  if (c.valid()) inputs.push_back(b.in(c, "C"));
  Attrs attrs = {{"alpha", float_attr(alpha)},
                 {"beta", float_attr(beta)},
                 {"transA", int_attr(trans_a)},
                 {"transB", int_attr(trans_b)}};
  return b.finish(b.op("Gemm", inputs, "", attrs));
}

// ------------------------------------------------------------ activations

namespace {

const char* activation_kind(Activation a) {
  switch (a) {
    case Activation::kRelu: return "Relu";
    case Activation::kSigmoid: return "Sigmoid";
    case Activation::kTanh: return "Tanh";
    case Activation::kLeakyRelu: return "LeakyRelu";
    case Activation::kElu: return "Elu";
    case Activation::kSelu: return "Selu";
    case Activation::kClip: return "Clip";
    case Activation::kRelu6: return "Relu6";
    case Activation::kHardSigmoid: return "HardSigmoid";
    case Activation::kHardSwish: return "HardSwish";
    case Activation::kGelu: return "Gelu";
    case Activation::kGeluTanh: return "GeluTanh";
    case Activation::kSilu: return "Silu";
    case Activation::kSoftplus: return "Softplus";
    case Activation::kMish: return "Mish";
  }
  return "Activation";
}

// GELU in the forms recognize_gelu turns back into one Gelu node (the op is
// standard only from opset 20).
Value* emit_gelu(LayerBuilder& b, Value* x, bool tanh_form) {
  const DType t = x->type.dtype;
  Value* inner;
  if (tanh_form) {
    Value* cube = b.op("Pow", {x, b.scalar(3, t, "three")}, "cube");
    Value* scaled = b.op("Mul", {cube, b.scalar(0.044715, t, "c")}, "mul_c");
    Value* sum = b.op("Add", {x, scaled}, "add_x");
    Value* arg = b.op("Mul", {sum, b.scalar(std::sqrt(2.0 / M_PI), t, "k")}, "mul_k");
    inner = b.op("Tanh", {arg}, "tanh");
  } else {
    Value* arg = b.op("Div", {x, b.scalar(M_SQRT2, t, "sqrt2")}, "div");
    inner = b.op("Erf", {arg}, "erf");
  }
  Value* one_plus = b.op("Add", {inner, b.scalar(1, t, "one")}, "add_one");
  Value* prod = b.op("Mul", {x, one_plus}, "mul_x");
  return b.op("Mul", {prod, b.scalar(0.5, t, "half")}, "");
}

}  // namespace

NetworkTensor Network::activation(NetworkTensor x, Activation kind, const std::string& name) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  return activation(x, kind, nan, nan, name);
}

NetworkTensor Network::activation(NetworkTensor x, Activation kind, float alpha, float beta, const std::string& name) {
  LayerBuilder b(*impl_, activation_kind(kind), name);
  Value* xv = b.in(x, "input");
  const DType t = xv->type.dtype;
  auto or_default = [](float v, float def) { return std::isnan(v) ? def : v; };
  Value* y = nullptr;
  switch (kind) {
    case Activation::kRelu: y = b.op("Relu", {xv}, ""); break;
    case Activation::kSigmoid: y = b.op("Sigmoid", {xv}, ""); break;
    case Activation::kTanh: y = b.op("Tanh", {xv}, ""); break;
    case Activation::kSelu: y = b.op("Selu", {xv}, ""); break;
    case Activation::kHardSwish: y = b.op("HardSwish", {xv}, ""); break;
    case Activation::kSoftplus: y = b.op("Softplus", {xv}, ""); break;
    case Activation::kLeakyRelu:
      y = b.op("LeakyRelu", {xv}, "", {{"alpha", float_attr(or_default(alpha, 0.01f))}});
      break;
    case Activation::kElu: y = b.op("Elu", {xv}, "", {{"alpha", float_attr(or_default(alpha, 1.0f))}}); break;
    case Activation::kHardSigmoid:
      y = b.op("HardSigmoid", {xv}, "",
               {{"alpha", float_attr(or_default(alpha, 1.0f / 6))}, {"beta", float_attr(or_default(beta, 0.5f))}});
      break;
    case Activation::kClip:
    case Activation::kRelu6: {
      const bool relu6 = kind == Activation::kRelu6;
      const double lo = relu6 ? 0 : or_default(alpha, 0), hi = relu6 ? 6 : or_default(beta, 6);
      y = b.op("Clip", {xv, b.scalar(lo, t, "min"), b.scalar(hi, t, "max")}, "");
      break;
    }
    case Activation::kGelu:
    case Activation::kGeluTanh: y = emit_gelu(b, xv, kind == Activation::kGeluTanh); break;
    case Activation::kSilu: y = b.op("Mul", {xv, b.op("Sigmoid", {xv}, "sigmoid")}, ""); break;
    case Activation::kMish: {
      Value* sp = b.op("Softplus", {xv}, "softplus");
      y = b.op("Mul", {xv, b.op("Tanh", {sp}, "tanh")}, "");
      break;
    }
  }
  return b.finish(y);
}

NetworkTensor Network::prelu(NetworkTensor x, const Tensor& slope, const std::string& name) {
  LayerBuilder b(*impl_, "PRelu", name);
  Value* xv = b.in(x, "input");
  if (!slope.defined()) throw b.error("the slope is empty");
  Tensor s = slope;
  // PyTorch's per-channel slope [C] broadcasts over dim 1 only as [C, 1, ...].
  const int r = xv->type.rank();
  if (slope.rank() == 1 && slope.dim(0) > 1 && r > 2) {
    const Dim c = dim_of(xv, 1);
    if (c.is_known() && c.value != slope.dim(0))
      throw b.error("slope " + shape_str(slope.shape()) + " does not match the input's " + n2s(c.value) + " channels");
    Shape shape(static_cast<size_t>(r - 1), 1);
    shape[0] = slope.dim(0);
    s = slope.reshaped(shape);
  }
  return b.finish(b.op("PRelu", {xv, b.weight(s, "weight")}, ""));
}

NetworkTensor Network::softmax(NetworkTensor x, int64_t axis, const std::string& name) {
  LayerBuilder b(*impl_, "Softmax", name);
  return b.finish(b.op("Softmax", {b.in(x, "input")}, "", {{"axis", int_attr(axis)}}));
}

NetworkTensor Network::log_softmax(NetworkTensor x, int64_t axis, const std::string& name) {
  LayerBuilder b(*impl_, "LogSoftmax", name);
  return b.finish(b.op("LogSoftmax", {b.in(x, "input")}, "", {{"axis", int_attr(axis)}}));
}

// ---------------------------------------------------------------- pooling

NetworkTensor Network::pool(NetworkTensor x, PoolType type, const PoolOptions& o, const std::string& name) {
  const bool max = type == PoolType::kMax;
  LayerBuilder b(*impl_, max ? "MaxPool" : "AveragePool", name);
  Value* xv = b.in(x, "input");
  const int r = known_rank(b, xv, "input");
  if (r < 3) throw b.error("input " + xv->type.str() + " must have rank >= 3 (N, C, spatial...)");
  const size_t spatial = static_cast<size_t>(r - 2);
  if (o.kernel.size() != spatial)
    throw b.error("kernel needs " + n2s(static_cast<int64_t>(spatial)) + " values, one per spatial dim");
  Attrs attrs = {{"kernel_shape", ints_attr(o.kernel)}, {"ceil_mode", int_attr(o.ceil_mode)}};
  if (!max && !o.dilations.empty()) throw b.error("average pooling has no dilations (before opset 19)");
  window_attrs(b, spatial, o.strides, o.pads, o.dilations, o.padding, &attrs);
  if (!max) attrs["count_include_pad"] = int_attr(o.count_include_pad);
  return b.finish(b.op(max ? "MaxPool" : "AveragePool", {xv}, "", attrs));
}

NetworkTensor Network::global_pool(NetworkTensor x, PoolType type, const std::string& name) {
  const char* op = type == PoolType::kMax ? "GlobalMaxPool" : "GlobalAveragePool";
  LayerBuilder b(*impl_, op, name);
  Value* xv = b.in(x, "input");
  if (known_rank(b, xv, "input") < 3) throw b.error("input " + xv->type.str() + " must have rank >= 3");
  return b.finish(b.op(op, {xv}, ""));
}

// ------------------------------------------------------------------- math

NetworkTensor Network::binary(NetworkTensor a, NetworkTensor b_, BinaryOp op, const std::string& name) {
  static const char* ops[] = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min"};
  const char* onnx_op = ops[static_cast<int>(op)];
  LayerBuilder b(*impl_, onnx_op, name);
  Value* av = b.in(a, "A");
  Value* bv = b.in(b_, "B");
  if (op != BinaryOp::kPow && av->type.dtype != bv->type.dtype)
    throw b.error("operand types differ: " + av->type.str() + " and " + bv->type.str());
  return b.finish(b.op(onnx_op, {av, bv}, ""));
}

NetworkTensor Network::unary(NetworkTensor x, UnaryOp op, const std::string& name) {
  static const char* ops[] = {"Exp",   "Log",  "Sqrt",  "Abs", "Neg", "Erf", "Reciprocal",
                              "Floor", "Ceil", "Round", "Sin", "Cos", "Sign"};
  const char* onnx_op = ops[static_cast<int>(op)];
  LayerBuilder b(*impl_, onnx_op, name);
  return b.finish(b.op(onnx_op, {b.in(x, "input")}, ""));
}

NetworkTensor Network::reduce(NetworkTensor x, ReduceOp op, const std::vector<int64_t>& axes, bool keep_dims,
                              const std::string& name) {
  static const char* ops[] = {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd"};
  const char* onnx_op = ops[static_cast<int>(op)];
  LayerBuilder b(*impl_, onnx_op, name);
  std::vector<Value*> inputs = {b.in(x, "input")};
  Attrs attrs = {{"keepdims", int_attr(keep_dims)}};
  // At opset 17 ReduceSum takes its axes as an input, the others as an
  // attribute (they all moved to inputs at opset 18).
  if (op == ReduceOp::kSum && !axes.empty())
    inputs.push_back(b.ints(axes, "axes"));
  else if (!axes.empty())
    attrs["axes"] = ints_attr(axes);
  return b.finish(b.op(onnx_op, inputs, "", attrs));
}

NetworkTensor Network::cast(NetworkTensor x, DType to, const std::string& name) {
  LayerBuilder b(*impl_, "Cast", name);
  return b.finish(b.op("Cast", {b.in(x, "input")}, "", {{"to", int_attr(static_cast<int64_t>(to))}}));
}

// -------------------------------------------------------------- attention

Value* emit_attention(LayerBuilder& b, Value* q, Value* k, Value* v, Value* mask, float scale,
                      const std::string& part) {
  const int rq = known_rank(b, q, "q"), rk = known_rank(b, k, "k");
  known_rank(b, v, "v");
  if (rq < 2 || rk < 2) throw b.error("q, k and v must have rank >= 2 ([..., S, D])");
  if (scale <= 0) {
    const Dim d = dim_of(q, -1);
    if (!d.is_known() || d.value == 0) throw b.error("the default scale 1/sqrt(D) needs q's last dim known");
    scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d.value)));
  }
  // Transpose(k) swapping the last two dims, Mul by a scalar and an Add of
  // the mask: the chain recognize_attention fuses into one node.
  std::vector<int64_t> perm;
  for (int i = 0; i < rk; ++i) perm.push_back(i);
  std::swap(perm[static_cast<size_t>(rk - 2)], perm[static_cast<size_t>(rk - 1)]);
  Value* kt = b.op("Transpose", {k}, subpart(part, "k_t"), {{"perm", ints_attr(perm)}});
  Value* scores = b.op("MatMul", {q, kt}, subpart(part, "scores"));
  const std::string prefix = part.empty() ? "" : part + ".";
  scores = b.op("Mul", {scores, b.scalar(scale, q->type.dtype, prefix + "scale")}, subpart(part, "scale"));
  if (mask) scores = b.op("Add", {scores, mask}, subpart(part, "mask"));
  Value* probs = b.op("Softmax", {scores}, subpart(part, "softmax"), {{"axis", int_attr(-1)}});
  return b.op("MatMul", {probs, v}, part);
}

NetworkTensor Network::attention(NetworkTensor q, NetworkTensor k, NetworkTensor v, NetworkTensor mask, float scale,
                                 const std::string& name) {
  LayerBuilder b(*impl_, "Attention", name);
  Value* mv = mask.valid() ? b.in(mask, "mask") : nullptr;
  return b.finish(emit_attention(b, b.in(q, "q"), b.in(k, "k"), b.in(v, "v"), mv, scale, ""));
}

NetworkTensor Network::multi_head_attention(NetworkTensor query, NetworkTensor key, NetworkTensor value, int64_t heads,
                                            const MultiHeadAttentionWeights& w, NetworkTensor mask,
                                            const std::string& name) {
  LayerBuilder b(*impl_, "MultiHeadAttention", name);
  Value* qv = b.in(query, "query");
  Value* kv = b.in(key, "key");
  Value* vv = b.in(value, "value");
  Value* mv = mask.valid() ? b.in(mask, "mask") : nullptr;
  for (const Value* t : {qv, kv, vv})
    if (known_rank(b, t, "input") != 3) throw b.error("'" + t->name + "' " + t->type.str() + " must be [B, S, E]");
  if (!w.in_proj_weight.defined() || w.in_proj_weight.rank() != 2 || w.in_proj_weight.dim(0) % 3 != 0)
    throw b.error("in_proj_weight " + shape_str(w.in_proj_weight.shape()) + " must be [3E, E]");
  const int64_t E = w.in_proj_weight.dim(1);
  if (w.in_proj_weight.dim(0) != 3 * E)
    throw b.error("in_proj_weight " + shape_str(w.in_proj_weight.shape()) + " must be [3E, E]");
  if (heads <= 0 || E % heads != 0)
    throw b.error("embedding size " + n2s(E) + " is not divisible by " + n2s(heads) + " heads");
  if (w.in_proj_bias.defined()) check_vector(b, w.in_proj_bias, 3 * E, "in_proj_bias");
  const int64_t D = E / heads;
  const char* parts[] = {"q_proj", "k_proj", "v_proj"};
  Value* sources[] = {qv, kv, vv};
  Value* split[3];
  for (int64_t i = 0; i < 3; ++i) {
    Tensor wi = rows_of(w.in_proj_weight, i * E, (i + 1) * E);
    Tensor bi = w.in_proj_bias.defined() ? rows_of(w.in_proj_bias, i * E, (i + 1) * E) : Tensor();
    const std::string part = parts[i];
    Value* proj = emit_linear(b, sources[i], wi, bi, part);
    // [B, S, E] -> [B, S, heads, D] -> [B, heads, S, D]; 0 keeps B and S as
    // they are, symbolic or not.
    Value* r = b.op("Reshape", {proj, b.ints({0, 0, heads, D}, part + ".heads_shape")}, part + "/split_heads");
    split[i] = b.op("Transpose", {r}, part + "/heads", {{"perm", ints_attr({0, 2, 1, 3})}});
  }
  Value* o = emit_attention(b, split[0], split[1], split[2], mv, 0, "attention");
  o = b.op("Transpose", {o}, "merge_heads/transpose", {{"perm", ints_attr({0, 2, 1, 3})}});
  o = b.op("Reshape", {o, b.ints({0, 0, E}, "merged_shape")}, "merge_heads");
  return b.finish(emit_linear(b, o, w.out_proj_weight, w.out_proj_bias, ""));
}

}  // namespace kiln
