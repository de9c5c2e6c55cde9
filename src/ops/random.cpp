// RandomUniform, RandomNormal and their *Like forms (opset 1; 22 adds
// bfloat16, which kiln accepts at every version).
//
// With a `seed`, the draws are those of numpy's legacy RandomState(seed) (which
// the ONNX reference implementation uses): MT19937 seeded with the integer part
// of the seed, doubles built from two 32-bit words (rand), and normals from the
// Marsaglia polar method with one cached value (randn). Values are drawn in
// double, rounded to the output type, then scaled and shifted in that type,
// as numpy does.
// Without a seed each run draws from a fresh non-deterministic seed.
#include <cmath>
#include <random>

#include "ir/op_facts.h"
#include "ops/common.h"

namespace kiln {

namespace {

// numpy's legacy RandomState stream on top of a 32-bit Mersenne Twister
// (std::mt19937's seeding is MT19937's init_genrand, the same as numpy's for
// an integer seed).
class NumpyStream {
 public:
  explicit NumpyStream(uint32_t seed) : mt_(seed) {}
  // Uniform in [0, 1) with 53 random bits.
  double next_double() {
    const uint32_t a = static_cast<uint32_t>(mt_()) >> 5, b = static_cast<uint32_t>(mt_()) >> 6;
    return (a * 67108864.0 + b) / 9007199254740992.0;
  }
  // Standard normal, polar method; the second value of each pair is kept.
  double next_gauss() {
    if (has_gauss_) {
      has_gauss_ = false;
      return gauss_;
    }
    double x1, x2, r2;
    do {
      x1 = 2.0 * next_double() - 1.0;
      x2 = 2.0 * next_double() - 1.0;
      r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1.0 || r2 == 0.0);
    const double f = std::sqrt(-2.0 * std::log(r2) / r2);
    gauss_ = f * x1;
    has_gauss_ = true;
    return f * x2;
  }

 private:
  std::mt19937 mt_;
  double gauss_ = 0;
  bool has_gauss_ = false;
};

bool is_float(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat64 || t == DType::kFloat16 || t == DType::kBFloat16;
}

std::string check_dtype_attr(const Node& n) {
  if (!n.has_attr("dtype")) return "";
  int64_t t = n.attr_int("dtype", 0);
  if (t < 0 || t > INT32_MAX || !dtype_is_supported(static_cast<int32_t>(t)) || !is_float(static_cast<DType>(t)))
    return "dtype " + std::to_string(t) + " is not float16, bfloat16, float or double";
  return "";
}

std::string check_seed(const Node& n) {
  if (!n.has_attr("seed")) return "";
  const float seed = n.attr_float("seed", 0);
  // numpy accepts seeds in [0, 2^32).
  if (!(seed >= 0.0f && seed < 4294967296.0f)) return "seed " + std::to_string(seed) + " is not in [0, 2^32)";
  return "";
}

enum class Dist { kUniform, kNormal };

// Output dtype of a *Like op: `dtype`, else the input's type (a float type).
DType like_dtype(const Node& n, DType input) {
  return n.has_attr("dtype") ? static_cast<DType>(n.attr_int("dtype", 0)) : input;
}

// Fills `out` with draws. Uniform: low + (high - low) * U; normal:
// mean + scale * N; rounded like the ONNX reference (numpy) rounds them.
void fill_random(Tensor& out, const Node& n, Dist dist) {
  const uint32_t seed = n.has_attr("seed") ? static_cast<uint32_t>(n.attr_float("seed", 0))
                                           : static_cast<uint32_t>(std::random_device{}());
  NumpyStream rng(seed);
  const double a = dist == Dist::kUniform ? n.attr_float("low", 0.0f) : n.attr_float("mean", 0.0f);
  const double b = dist == Dist::kUniform ? n.attr_float("high", 1.0f) : n.attr_float("scale", 1.0f);
  dispatch<FloatTypes>(out.dtype(), n.op_type, [&]<typename T>() {
    // numpy: draws.astype(T) * T(scale) + T(offset), each step rounded to T.
    using A = acc_t<T>;
    const A scale = static_cast<A>(static_cast<T>(dist == Dist::kUniform ? b - a : b));
    const A offset = static_cast<A>(static_cast<T>(a));
    T* p = out.data<T>();
    for (int64_t i = 0; i < out.numel(); ++i) {
      const A draw = static_cast<A>(static_cast<T>(dist == Dist::kUniform ? rng.next_double() : rng.next_gauss()));
      p[i] = static_cast<T>(static_cast<A>(static_cast<T>(draw * scale)) + offset);
    }
  });
}

// RandomUniform / RandomNormal: shape and dtype from attributes.
OpSchema make_generator(const char* name, Dist dist) {
  return OpSchema{
      .name = name,
      .since = 1,
      .min_inputs = 0,
      .max_inputs = 0,
      .max_outputs = 1,
      .check = [](const Node& n) -> std::string {
        if (!n.has_attr("shape")) return "attribute 'shape' is required";
        for (int64_t d : n.attr_ints("shape"))
          if (d < 0) return "shape has a negative dim " + std::to_string(d);
        std::string r = check_dtype_attr(n);
        return r.empty() ? check_seed(n) : r;
      },
      .infer =
          [](InferContext& ctx) {
            const Node& n = ctx.node();
            DimVector dims;
            for (int64_t d : n.attr_ints("shape")) dims.push_back(Dim::known(d));
            ctx.set_output(0, static_cast<DType>(n.attr_int("dtype", static_cast<int64_t>(DType::kFloat32))), dims);
          },
      .compute =
          [dist](KernelContext& ctx) {
            const Node& n = ctx.node();
            Shape shape = n.attr_ints("shape");
            int64_t numel = 1;
            for (int64_t d : shape) {
              if (d < 0) throw ctx.error("shape has a negative dim " + std::to_string(d));
              if (d != 0 && numel > (int64_t{1} << 40) / d) throw ctx.error("shape is too large");
              numel *= d;
            }
            DType dt = static_cast<DType>(n.attr_int("dtype", static_cast<int64_t>(DType::kFloat32)));
            fill_random(ctx.output(0, dt, shape), n, dist);
          },
  };
}

// RandomUniformLike / RandomNormalLike: the input's shape; its type unless
// `dtype` is given.
OpSchema make_like(const char* name, Dist dist) {
  return OpSchema{
      .name = name,
      .since = 1,
      .min_inputs = 1,
      .max_inputs = 1,
      .max_outputs = 1,
      .check = [](const Node& n) -> std::string {
        std::string r = check_dtype_attr(n);
        return r.empty() ? check_seed(n) : r;
      },
      .infer =
          [](InferContext& ctx) {
            DType in = ctx.input_dtype(0);
            DType out = like_dtype(ctx.node(), in);
            if (out != DType::kUndefined && !is_float(out))
              throw ctx.error("the input is " + dtype_name(in) + ", so attribute 'dtype' (a float type) is required");
            infer_same_shape(ctx, out);
          },
      .compute =
          [dist](KernelContext& ctx) {
            const Tensor& x = ctx.input(0);
            DType out = like_dtype(ctx.node(), x.dtype());
            if (!is_float(out))
              throw ctx.error("the input is " + dtype_name(x.dtype()) +
                              ", so attribute 'dtype' (a float type) is required");
            fill_random(ctx.output(0, out, x.shape()), ctx.node(), dist);
          },
  };
}

}  // namespace

KILN_OP(RandomUniform) { return make_generator("RandomUniform", Dist::kUniform); }
KILN_OP(RandomNormal) { return make_generator("RandomNormal", Dist::kNormal); }
KILN_OP(RandomUniformLike) { return make_like("RandomUniformLike", Dist::kUniform); }
KILN_OP(RandomNormalLike) { return make_like("RandomNormalLike", Dist::kNormal); }

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(RandomNormal) {
  return {.op = "RandomNormal",
          .family = OpFamily::kOther,
          .cost = cost::not_counted("random number generation is not counted")};
}

KILN_OP_FACTS(RandomNormalLike) {
  return {.op = "RandomNormalLike",
          .family = OpFamily::kOther,
          .cost = cost::not_counted("random number generation is not counted")};
}

KILN_OP_FACTS(RandomUniform) {
  return {.op = "RandomUniform",
          .family = OpFamily::kOther,
          .cost = cost::not_counted("random number generation is not counted")};
}

KILN_OP_FACTS(RandomUniformLike) {
  return {.op = "RandomUniformLike",
          .family = OpFamily::kOther,
          .cost = cost::not_counted("random number generation is not counted")};
}

}  // namespace kiln
