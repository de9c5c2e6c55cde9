// kiln::Network: builds a model layer by layer from C++, with the weights
// given as kiln::Tensor (TensorRT's INetworkDefinition, tensorrtx style).
//
//   kiln::Network net("resnet_block");
//   kiln::NetworkTensor x = net.input("x", kiln::DType::kFloat32, {"batch", 64, 56, 56});
//   kiln::NetworkTensor y = net.conv(x, w1, {}, {.pads = {1, 1}}, "conv1");
//   y = net.batch_norm(y, gamma, beta, mean, var, 1e-5f, "bn1");
//   y = net.relu(y, "relu1");
//   net.mark_output(y, "y");
//   kiln::Session s = net.session();
//
// A network is the same IR that ONNX import produces: each layer adds
// standard ONNX nodes (default domain, opset 17), so the network goes through
// the same optimizer, engine builder, runtime and tools as an imported model
// (docs/network-api.md lists the nodes each layer adds). Every layer checks
// its inputs and infers its output shapes when it is added; a mistake throws
// kiln::Error naming the layer, and the network is left as it was before the
// call.
#pragma once
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/dtype.h"
#include "kiln/error.h"
#include "kiln/session.h"
#include "kiln/tensor.h"

namespace kiln {

struct Model;  // src/onnx/import.h: kiln's internal model (graph + opsets)
struct Value;  // src/ir/graph.h: a value of kiln's graph IR
class Network;

// One dim of an input's shape: a size, or a symbol ("batch") for a dim fixed
// only at run time. Converts from integers and strings, so a shape reads
// {"batch", 3, 224, 224}.
struct NetworkDim {
  int64_t size = -1;
  std::string symbol;
  NetworkDim(int v) : size(v) {}
  NetworkDim(int64_t v) : size(v) {}
  NetworkDim(const char* s) : symbol(s) {}
  NetworkDim(std::string s) : symbol(std::move(s)) {}
};

// A tensor of a network: an input, a weight made a constant, or a layer's
// output. A small handle (copy it freely) valid while its network lives.
class NetworkTensor {
 public:
  NetworkTensor() = default;
  bool valid() const { return value_ != nullptr; }
  const std::string& name() const;
  DType dtype() const;
  int rank() const;  // -1 when unknown
  // Dims as sizes: -1 for a symbolic or unknown dim (dims() has its symbol).
  Shape shape() const;
  std::vector<NetworkDim> dims() const;
  std::string str() const;  // "float[batch x 64 x 56 x 56]"

 private:
  friend class Network;
  friend struct NetworkAccess;  // src/network/builder.h
  NetworkTensor(const void* owner, Value* value) : owner_(owner), value_(value) {}
  const void* owner_ = nullptr;  // the Network::Impl it belongs to
  Value* value_ = nullptr;
};

// How a convolution or pooling window is padded.
enum class Padding {
  kExplicit,   // the pads given (default 0)
  kSameUpper,  // output = ceil(input / stride), odd padding at the end
  kSameLower,  // the same, odd padding at the start
  kValid,      // no padding
};

struct ConvOptions {
  // Per spatial dim; empty = 1 (strides, dilations).
  std::vector<int64_t> strides, dilations;
  // Per spatial dim the same on both sides ({1, 1}), or ONNX's
  // [begin..., end...] ({0, 0, 1, 1}); empty = 0.
  std::vector<int64_t> pads;
  int64_t group = 1;
  Padding padding = Padding::kExplicit;
  // Deconvolution only: extra size added at the end of each spatial dim of
  // the output (PyTorch's output_padding).
  std::vector<int64_t> output_padding;
};

enum class PoolType { kMax, kAverage };

struct PoolOptions {
  std::vector<int64_t> kernel;     // required: one per spatial dim
  std::vector<int64_t> strides;    // empty = 1 (PyTorch's default is the kernel: pass it)
  std::vector<int64_t> pads;       // as ConvOptions::pads
  std::vector<int64_t> dilations;  // max pooling only; empty = 1
  Padding padding = Padding::kExplicit;
  bool ceil_mode = false;
  bool count_include_pad = false;  // average pooling: pads count in the divisor
};

// Activations with their parameters (alpha, beta below):
enum class Activation {
  kRelu,
  kSigmoid,
  kTanh,
  kLeakyRelu,    // alpha = negative slope (default 0.01)
  kElu,          // alpha (default 1)
  kSelu,         // ONNX's default alpha and gamma
  kClip,         // alpha = min, beta = max (defaults 0 and 6)
  kRelu6,        // Clip(0, 6)
  kHardSigmoid,  // alpha, beta (defaults 1/6 and 0.5, PyTorch's)
  kHardSwish,
  kGelu,      // exact (erf) form
  kGeluTanh,  // gelu(approximate='tanh')
  kSilu,      // x * sigmoid(x) (swish)
  kSoftplus,
  kMish,  // x * tanh(softplus(x))
};

enum class UnaryOp { kExp, kLog, kSqrt, kAbs, kNeg, kErf, kReciprocal, kFloor, kCeil, kRound, kSin, kCos, kSign };
enum class BinaryOp { kAdd, kSub, kMul, kDiv, kPow, kMax, kMin };
enum class ReduceOp { kMean, kSum, kMax, kMin, kProd };
enum class PadMode { kConstant, kReflect, kEdge };

struct ResizeOptions {
  enum class Mode { kNearest, kLinear, kCubic };
  Mode mode = Mode::kNearest;
  // One of: scales per dim (all dims, or the spatial dims only: N and C are
  // then kept), or output sizes (likewise).
  std::vector<float> scales;
  std::vector<int64_t> sizes;
  // ONNX coordinate_transformation_mode; "" = PyTorch's default for the
  // mode: "asymmetric" (nearest, with nearest_mode "floor") or
  // "pytorch_half_pixel" (linear and cubic, align_corners=False).
  std::string coordinate_mode;
  bool align_corners = false;  // linear/cubic: PyTorch's align_corners=True
};

// The weights of a multi-head attention layer, as PyTorch's
// nn.MultiheadAttention holds them: in_proj_weight [3E, E] (q, k, v rows),
// in_proj_bias [3E], out_proj.weight [E, E], out_proj.bias [E]. Biases may
// be left empty.
struct MultiHeadAttentionWeights {
  Tensor in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias;
};

// An attribute of a custom layer: an int, float, string, ints or floats.
struct LayerAttribute {
  enum class Kind { kInt, kFloat, kString, kInts, kFloats };
  LayerAttribute(int v) : kind(Kind::kInt), i(v) {}
  LayerAttribute(int64_t v) : kind(Kind::kInt), i(v) {}
  LayerAttribute(float v) : kind(Kind::kFloat), f(v) {}
  LayerAttribute(double v) : kind(Kind::kFloat), f(static_cast<float>(v)) {}
  LayerAttribute(const char* v) : kind(Kind::kString), s(v) {}
  LayerAttribute(std::string v) : kind(Kind::kString), s(std::move(v)) {}
  LayerAttribute(std::vector<int64_t> v) : kind(Kind::kInts), ints(std::move(v)) {}
  LayerAttribute(std::vector<float> v) : kind(Kind::kFloats), floats(std::move(v)) {}
  Kind kind;
  int64_t i = 0;
  float f = 0;
  std::string s;
  std::vector<int64_t> ints;
  std::vector<float> floats;
};

class Network {
 public:
  explicit Network(std::string name = "network");
  ~Network();
  Network(Network&&) noexcept;
  Network& operator=(Network&&) noexcept;
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  // ------------------------------------------------------------ tensors
  // A graph input; its name must be unique in the network.
  NetworkTensor input(const std::string& name, DType dtype, const std::vector<NetworkDim>& dims);
  // A constant (a weight the layers below do not take directly). The tensor's
  // buffer is shared, not copied: clone() it first if you will change it.
  NetworkTensor constant(const Tensor& value, const std::string& name = "");
  NetworkTensor constant(float value, const std::string& name = "");  // a float scalar
  // Marks t as an output of the network under `name` (default: its own).
  void mark_output(NetworkTensor t, const std::string& name = "");

  // --------------------------------------------------- layers with weights
  // Convolution (1-d, 2-d, 3-d, by the weight's rank): weight [M, C/group,
  // k...], bias [M] or empty.
  NetworkTensor conv(NetworkTensor x, const Tensor& weight, const Tensor& bias = {}, const ConvOptions& options = {},
                     const std::string& name = "");
  // Deconvolution (PyTorch's ConvTranspose): weight [C, M/group, k...].
  NetworkTensor deconv(NetworkTensor x, const Tensor& weight, const Tensor& bias = {}, const ConvOptions& options = {},
                       const std::string& name = "");
  // Inference batch norm over dim 1 with PyTorch's running statistics.
  NetworkTensor batch_norm(NetworkTensor x, const Tensor& scale, const Tensor& bias, const Tensor& mean,
                           const Tensor& var, float epsilon = 1e-5f, const std::string& name = "");
  // PyTorch's nn.Linear: x [..., in] · weightᵀ + bias, weight [out, in],
  // bias [out] or empty.
  NetworkTensor linear(NetworkTensor x, const Tensor& weight, const Tensor& bias = {}, const std::string& name = "");
  // Layer norm over the last dims that scale's rank covers (scale and bias
  // shaped like them, as PyTorch's normalized_shape); bias may be empty.
  NetworkTensor layer_norm(NetworkTensor x, const Tensor& scale, const Tensor& bias = {}, float epsilon = 1e-5f,
                           const std::string& name = "");

  // ------------------------------------------------------- activations
  NetworkTensor activation(NetworkTensor x, Activation kind, const std::string& name = "");
  // alpha, beta: see Activation; NaN = the kind's default.
  NetworkTensor activation(NetworkTensor x, Activation kind, float alpha,
                           float beta = std::numeric_limits<float>::quiet_NaN(), const std::string& name = "");
  NetworkTensor relu(NetworkTensor x, const std::string& name = "") { return activation(x, Activation::kRelu, name); }
  NetworkTensor sigmoid(NetworkTensor x, const std::string& name = "") {
    return activation(x, Activation::kSigmoid, name);
  }
  NetworkTensor tanh(NetworkTensor x, const std::string& name = "") { return activation(x, Activation::kTanh, name); }
  NetworkTensor gelu(NetworkTensor x, const std::string& name = "") { return activation(x, Activation::kGelu, name); }
  NetworkTensor silu(NetworkTensor x, const std::string& name = "") { return activation(x, Activation::kSilu, name); }
  // PyTorch's PReLU: slope [C] (one per channel, dim 1) or broadcastable to x.
  NetworkTensor prelu(NetworkTensor x, const Tensor& slope, const std::string& name = "");
  NetworkTensor softmax(NetworkTensor x, int64_t axis = -1, const std::string& name = "");
  NetworkTensor log_softmax(NetworkTensor x, int64_t axis = -1, const std::string& name = "");

  // ------------------------------------------------------------ pooling
  NetworkTensor pool(NetworkTensor x, PoolType type, const PoolOptions& options, const std::string& name = "");
  // Over all spatial dims, keeping them as size 1 ([N, C, 1, 1]).
  NetworkTensor global_pool(NetworkTensor x, PoolType type, const std::string& name = "");

  // -------------------------------------------------------------- math
  NetworkTensor matmul(NetworkTensor a, NetworkTensor b, const std::string& name = "");
  // ONNX Gemm: alpha · A' · B' + beta · C (A' = Aᵀ when trans_a); c optional.
  NetworkTensor gemm(NetworkTensor a, NetworkTensor b, NetworkTensor c = {}, float alpha = 1, float beta = 1,
                     bool trans_a = false, bool trans_b = false, const std::string& name = "");
  // With numpy broadcasting; both operands must have the same type.
  NetworkTensor binary(NetworkTensor a, NetworkTensor b, BinaryOp op, const std::string& name = "");
  NetworkTensor add(NetworkTensor a, NetworkTensor b, const std::string& name = "") {
    return binary(a, b, BinaryOp::kAdd, name);
  }
  NetworkTensor sub(NetworkTensor a, NetworkTensor b, const std::string& name = "") {
    return binary(a, b, BinaryOp::kSub, name);
  }
  NetworkTensor mul(NetworkTensor a, NetworkTensor b, const std::string& name = "") {
    return binary(a, b, BinaryOp::kMul, name);
  }
  NetworkTensor div(NetworkTensor a, NetworkTensor b, const std::string& name = "") {
    return binary(a, b, BinaryOp::kDiv, name);
  }
  NetworkTensor unary(NetworkTensor x, UnaryOp op, const std::string& name = "");
  // Over `axes` (empty: all), keeping reduced dims as size 1 when keep_dims.
  NetworkTensor reduce(NetworkTensor x, ReduceOp op, const std::vector<int64_t>& axes, bool keep_dims = true,
                       const std::string& name = "");
  NetworkTensor cast(NetworkTensor x, DType to, const std::string& name = "");

  // ------------------------------------------------------------- shapes
  // ONNX Reshape: 0 copies the input's dim, one -1 takes the rest.
  NetworkTensor reshape(NetworkTensor x, const Shape& shape, const std::string& name = "");
  NetworkTensor transpose(NetworkTensor x, const std::vector<int64_t>& perm, const std::string& name = "");
  NetworkTensor concat(const std::vector<NetworkTensor>& inputs, int64_t axis, const std::string& name = "");
  // Python's x[starts:ends:steps] on `axes` (empty: the first dims in order).
  NetworkTensor slice(NetworkTensor x, const std::vector<int64_t>& starts, const std::vector<int64_t>& ends,
                      const std::vector<int64_t>& axes = {}, const std::vector<int64_t>& steps = {},
                      const std::string& name = "");
  // Into pieces of the given sizes along axis (they must add up to the dim).
  std::vector<NetworkTensor> split(NetworkTensor x, int64_t axis, const std::vector<int64_t>& sizes,
                                   const std::string& name = "");
  // To 2-d: dims before `axis` and from it on (ONNX Flatten).
  NetworkTensor flatten(NetworkTensor x, int64_t axis = 1, const std::string& name = "");
  NetworkTensor squeeze(NetworkTensor x, const std::vector<int64_t>& axes, const std::string& name = "");
  NetworkTensor unsqueeze(NetworkTensor x, const std::vector<int64_t>& axes, const std::string& name = "");
  NetworkTensor resize(NetworkTensor x, const ResizeOptions& options, const std::string& name = "");
  // pads: ONNX's [begin of each dim..., end of each dim...], one pair per dim
  // of x; `value` fills for kConstant.
  NetworkTensor pad(NetworkTensor x, const std::vector<int64_t>& pads, PadMode mode = PadMode::kConstant,
                    float value = 0, const std::string& name = "");
  // data taken at `indices` along axis (ONNX Gather); an embedding lookup is
  // gather(constant(table), token_ids, 0).
  NetworkTensor gather(NetworkTensor data, NetworkTensor indices, int64_t axis = 0, const std::string& name = "");

  // ------------------------------------------------------- custom ops
  // One node of a custom op (kiln/custom_op.h: registered, or from a loaded
  // plugin) of `domain` at opset `domain_version`, on `inputs` (invalid
  // handles for omitted optional inputs), with `num_outputs` outputs. The op
  // is resolved and its shape inference run now, like any layer.
  std::vector<NetworkTensor> custom_layer(const std::string& domain, const std::string& op,
                                          const std::vector<NetworkTensor>& inputs,
                                          const std::map<std::string, LayerAttribute>& attributes = {},
                                          int num_outputs = 1, int domain_version = 1, const std::string& name = "");

  // ----------------------------------------------------------- attention
  // softmax(q · kᵀ · scale + mask) · v over q [..., S, D], k [..., L, D],
  // v [..., L, Dv]; mask (optional) adds to the scores [..., S, L] with
  // broadcasting; scale <= 0 means 1/sqrt(D). kiln's optimizer runs it as one
  // fused attention node.
  NetworkTensor attention(NetworkTensor q, NetworkTensor k, NetworkTensor v, NetworkTensor mask = {}, float scale = 0,
                          const std::string& name = "");
  // PyTorch's nn.MultiheadAttention(E, heads, batch_first=True) on query
  // [B, S, E], key and value [B, L, E] (pass the same tensor thrice for self
  // attention): projections, `heads` heads of attention, out projection.
  NetworkTensor multi_head_attention(NetworkTensor query, NetworkTensor key, NetworkTensor value, int64_t heads,
                                     const MultiHeadAttentionWeights& weights, NetworkTensor mask = {},
                                     const std::string& name = "");

  // ------------------------------------------------------------- results
  const std::string& name() const;
  std::vector<NetworkTensor> inputs() const;
  std::vector<NetworkTensor> outputs() const;
  size_t num_layers() const;
  // The network as an ONNX ModelProto (opset 17), and saved to a file.
  std::string to_onnx() const;
  void save_onnx(const std::string& path) const;
  // A session running it: the network goes through to_onnx() and
  // Session::load_bytes, the one path every model takes.
  Session session(const SessionOptions& options = {}) const;
  // An engine file (kiln build): saves the network as ONNX next to
  // engine_path (".onnx" appended), builds from it, and removes it.
  BuildReport build_engine(const std::string& engine_path, const BuildOptions& options = {}) const;
  // For kiln internals: the model as kiln's IR (graph, opsets).
  const Model& model() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln
