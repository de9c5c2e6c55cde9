#include "kernels/cpu/epilogue.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>

#include "core/thread_pool.h"
#include "kernels/cpu/vec_math_f32.h"
#include "kiln/error.h"

namespace kiln {

namespace {

double sigmoid(double x) { return x >= 0 ? 1 / (1 + std::exp(-x)) : std::exp(x) / (1 + std::exp(x)); }

// The piecewise-linear steps compute in float, which gives the same bits as
// double-then-round; loops without calls, so they vectorize.
void relu_f32(float* p, int64_t n, float, float) {
  for (int64_t i = 0; i < n; ++i) p[i] = p[i] > 0.0f ? p[i] : 0.0f;
}
void clip_f32(float* p, int64_t n, float lo, float hi) {
  for (int64_t i = 0; i < n; ++i) p[i] = std::min(std::max(p[i], lo), hi);
}
// As max(x, 0) + a * min(x, 0) (the same bits: one of the two is +-0, and
// -0 stays -0; NaN stays NaN), which vectorizes: as a branch (x >= 0 ? x :
// a * x) GCC kept it scalar and mispredicted on every other element of
// zero-mean data (5 ns per element after an InstanceNorm).
void leaky_relu_f32(float* p, int64_t n, float a, float) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = p[i];
    p[i] = std::max(v, 0.0f) + a * std::min(v, 0.0f);
  }
}
void hard_sigmoid_f32(float* p, int64_t n, float a, float b) {
  for (int64_t i = 0; i < n; ++i) p[i] = std::max(0.0f, std::min(1.0f, a * p[i] + b));
}
void hard_swish_f32(float* p, int64_t n, float, float) {
  for (int64_t i = 0; i < n; ++i) p[i] = p[i] * std::max(0.0f, std::min(1.0f, p[i] * (1.0f / 6) + 0.5f));
}
// The transcendental ones use kernels/cpu/vec_math_f32.h (a few ulp from the
// double result the standalone ops round, instead of a libm call each).
void sigmoid_f32(float* p, int64_t n, float, float) { vec_math_f32().sigmoid(p, p, n); }
void silu_f32(float* p, int64_t n, float, float) { vec_math_f32().silu(p, p, n); }
void tanh_f32(float* p, int64_t n, float, float) { vec_math_f32().tanh(p, p, n); }
void gelu_f32(float* p, int64_t n, float, float) { vec_math_f32().gelu_erf(p, p, n); }
void gelu_tanh_f32(float* p, int64_t n, float, float) { vec_math_f32().gelu_tanh(p, p, n); }

double gelu_tanh_f64(double x, float, float) {
  const double k = std::sqrt(2.0 / M_PI);
  return 0.5 * x * (1 + std::tanh(k * (x + 0.044715 * x * x * x)));
}

}  // namespace

// Costs as docs/flops.md counts the standalone ops.
const EpilogueFn kEpilogueRelu = {"Relu", 1, relu_f32, [](double x, float, float) { return x > 0 ? x : 0.0; }};
const EpilogueFn kEpilogueClip = {
    "Clip", 2, clip_f32, [](double x, float lo, float hi) { return std::min(std::max(x, double(lo)), double(hi)); }};
const EpilogueFn kEpilogueLeakyRelu = {"LeakyRelu", 2, leaky_relu_f32,
                                       [](double x, float a, float) { return x >= 0 ? x : a * x; }};
const EpilogueFn kEpilogueSigmoid = {"Sigmoid", 3, sigmoid_f32, [](double x, float, float) { return sigmoid(x); }};
const EpilogueFn kEpilogueHardSigmoid = {"HardSigmoid", 4, hard_sigmoid_f32, [](double x, float a, float b) {
                                           return std::max(0.0, std::min(1.0, a * x + b));
                                         }};
const EpilogueFn kEpilogueHardSwish = {"HardSwish", 5, hard_swish_f32, [](double x, float, float) {
                                         return x * std::max(0.0, std::min(1.0, x / 6 + 0.5));
                                       }};
const EpilogueFn kEpilogueSilu = {"SiLU", 4, silu_f32, [](double x, float, float) { return x * sigmoid(x); }};
const EpilogueFn kEpilogueGelu = {"Gelu", 5, gelu_f32,
                                  [](double x, float, float) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }};
const EpilogueFn kEpilogueGeluTanh = {"GeluTanh", 9, gelu_tanh_f32, gelu_tanh_f64};
const EpilogueFn kEpilogueTanh = {"Tanh", 1, tanh_f32, [](double x, float, float) { return std::tanh(x); }};

namespace {

// Steps by name, guarded by fn_mutex(): the built-in ones, then those ops
// register (static initialisers of other files, plugins).
std::mutex& fn_mutex() {
  static std::mutex mu;
  return mu;
}
std::map<std::string, const EpilogueFn*>& fns_by_name() {
  static std::map<std::string, const EpilogueFn*> fns = [] {
    std::map<std::string, const EpilogueFn*> m;
    for (const EpilogueFn* fn :
         {&kEpilogueRelu, &kEpilogueClip, &kEpilogueLeakyRelu, &kEpilogueSigmoid, &kEpilogueHardSigmoid,
          &kEpilogueHardSwish, &kEpilogueSilu, &kEpilogueGelu, &kEpilogueGeluTanh, &kEpilogueTanh})
      m[fn->name] = fn;
    return m;
  }();
  return fns;
}

}  // namespace

const EpilogueFn* find_epilogue_fn(const std::string& name) {
  std::lock_guard<std::mutex> lock(fn_mutex());
  auto it = fns_by_name().find(name);
  return it == fns_by_name().end() ? nullptr : it->second;
}

bool register_epilogue_fn(const EpilogueFn* fn) {
  std::lock_guard<std::mutex> lock(fn_mutex());
  auto [it, added] = fns_by_name().emplace(fn->name, fn);
  if (!added && it->second != fn) throw Error(std::string("two epilogue steps are named '") + fn->name + "'");
  return true;
}

double apply_epilogue(const std::vector<EpilogueStep>& steps, double x) {
  for (const EpilogueStep& s : steps) x = s.fn->f64(x, s.alpha, s.beta);
  return x;
}

void apply_epilogue(const std::vector<EpilogueStep>& steps, float* p, int64_t n) {
  // Blocks small enough to stay in L1 while every step runs over them.
  constexpr int64_t kBlock = 4096;
  for (int64_t b = 0; b < n; b += kBlock)
    for (const EpilogueStep& s : steps) s.fn->f32(p + b, std::min(kBlock, n - b), s.alpha, s.beta);
}

namespace {
constexpr int64_t kBlock = 4096;  // floats per block: 16 KiB, in L1 while every step runs over it
}  // namespace

void map_epilogue(const std::vector<EpilogueStep>& steps, const float* x, float* y, int64_t n, ThreadPool* pool) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  parallel_for(n >= 4 * kBlock ? pool : nullptr, blocks, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const int64_t lo = b * kBlock, len = std::min(kBlock, n - lo);
      if (x != y) std::memcpy(y + lo, x + lo, static_cast<size_t>(len) * sizeof(float));
      apply_epilogue(steps, y + lo, len);
    }
  });
}

void apply_epilogue(const std::vector<EpilogueStep>& steps, Tensor& t, ThreadPool* pool) {
  if (steps.empty()) return;
  if (t.dtype() != DType::kFloat32 && t.dtype() != DType::kFloat64)
    throw Error("epilogue on a " + dtype_name(t.dtype()) + " tensor (float32 and float64 only)");
  const int64_t n = t.numel();
  if (t.dtype() == DType::kFloat32) return map_epilogue(steps, t.data<float>(), t.data<float>(), n, pool);
  // float64: each step's reference function, rounded to double after each.
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  parallel_for(n >= 4 * kBlock ? pool : nullptr, blocks, [&](int64_t begin, int64_t end) {
    const int64_t lo = begin * kBlock, len = std::min(n, end * kBlock) - lo;
    double* p = t.data<double>() + lo;
    for (const EpilogueStep& s : steps)
      for (int64_t i = 0; i < len; ++i) p[i] = s.fn->f64(p[i], s.alpha, s.beta);
  });
}

}  // namespace kiln
