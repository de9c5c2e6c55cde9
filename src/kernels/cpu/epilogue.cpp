#include "kernels/cpu/epilogue.h"

#include <algorithm>
#include <cmath>

#include "core/thread_pool.h"
#include "kernels/cpu/vec_math_f32.h"
#include "kiln/error.h"

namespace kiln {

namespace {

double sigmoid(double x) { return x >= 0 ? 1 / (1 + std::exp(-x)) : std::exp(x) / (1 + std::exp(x)); }

double apply_step(const EpilogueStep& s, double x) {
  switch (s.kind) {
    case EpilogueStep::Kind::kRelu: return x > 0 ? x : 0;
    case EpilogueStep::Kind::kClip: return std::min(std::max(x, double(s.alpha)), double(s.beta));
    case EpilogueStep::Kind::kLeakyRelu: return x >= 0 ? x : s.alpha * x;
    case EpilogueStep::Kind::kSigmoid: return sigmoid(x);
    case EpilogueStep::Kind::kHardSigmoid: return std::max(0.0, std::min(1.0, s.alpha * x + s.beta));
    case EpilogueStep::Kind::kHardSwish: return x * std::max(0.0, std::min(1.0, x / 6 + 0.5));
    case EpilogueStep::Kind::kSilu: return x * sigmoid(x);
    case EpilogueStep::Kind::kGelu: return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    case EpilogueStep::Kind::kGeluTanh: {
      const double k = std::sqrt(2.0 / M_PI);
      return 0.5 * x * (1 + std::tanh(k * (x + 0.044715 * x * x * x)));
    }
    case EpilogueStep::Kind::kTanh: return std::tanh(x);
  }
  return x;
}

}  // namespace

double apply_epilogue(const std::vector<EpilogueStep>& steps, double x) {
  for (const EpilogueStep& s : steps) x = apply_step(s, x);
  return x;
}

namespace {

// One step over a buffer: the switch is outside the loop, so the loops of the
// exact steps (Relu, Clip, LeakyRelu) vectorize. Those are computed in T,
// which gives the same bits as double-then-round. Rounding to T after each
// step matches the unfused graph.
template <typename T>
void apply_exact_step(const EpilogueStep& s, T* p, int64_t n) {
  switch (s.kind) {
    case EpilogueStep::Kind::kRelu:
      for (int64_t i = 0; i < n; ++i) p[i] = p[i] > T(0) ? p[i] : T(0);
      return;
    case EpilogueStep::Kind::kClip: {
      const T lo = static_cast<T>(s.alpha), hi = static_cast<T>(s.beta);
      for (int64_t i = 0; i < n; ++i) p[i] = std::min(std::max(p[i], lo), hi);
      return;
    }
    case EpilogueStep::Kind::kLeakyRelu: {
      const T a = static_cast<T>(s.alpha);
      for (int64_t i = 0; i < n; ++i) p[i] = p[i] >= T(0) ? p[i] : a * p[i];
      return;
    }
    default:
      for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(apply_step(s, static_cast<double>(p[i])));
      return;
  }
}

// float32 computes the transcendental steps in float with the vector math
// of kernels/cpu/vec_math_f32.h (a few ulp from the double result the
// standalone ops round, instead of a glibc double call per element) and the
// piecewise-linear ones in float.
void apply_step_f32(const EpilogueStep& s, float* p, int64_t n) {
  const VecMathF32& vm = vec_math_f32();
  switch (s.kind) {
    case EpilogueStep::Kind::kSigmoid: return vm.sigmoid(p, p, n);
    case EpilogueStep::Kind::kSilu: return vm.silu(p, p, n);
    case EpilogueStep::Kind::kTanh: return vm.tanh(p, p, n);
    case EpilogueStep::Kind::kGeluTanh: return vm.gelu_tanh(p, p, n);
    case EpilogueStep::Kind::kGelu: return vm.gelu_erf(p, p, n);
    case EpilogueStep::Kind::kHardSigmoid:
      for (int64_t i = 0; i < n; ++i) p[i] = std::max(0.0f, std::min(1.0f, s.alpha * p[i] + s.beta));
      return;
    case EpilogueStep::Kind::kHardSwish:
      for (int64_t i = 0; i < n; ++i) p[i] = p[i] * std::max(0.0f, std::min(1.0f, p[i] * (1.0f / 6) + 0.5f));
      return;
    default: return apply_exact_step(s, p, n);
  }
}

}  // namespace

void apply_epilogue(const std::vector<EpilogueStep>& steps, float* p, int64_t n) {
  constexpr int64_t kBlock = 4096;
  for (int64_t b = 0; b < n; b += kBlock)
    for (const EpilogueStep& s : steps) apply_step_f32(s, p + b, std::min(kBlock, n - b));
}

void apply_epilogue(const std::vector<EpilogueStep>& steps, Tensor& t, ThreadPool* pool) {
  if (steps.empty()) return;
  if (t.dtype() != DType::kFloat32 && t.dtype() != DType::kFloat64)
    throw Error("epilogue on a " + dtype_name(t.dtype()) + " tensor (float32 and float64 only)");
  // Blocks small enough to stay in L1 while every step runs over them, and
  // to spread over the pool.
  constexpr int64_t kBlock = 4096;
  const int64_t n = t.numel(), blocks = (n + kBlock - 1) / kBlock;
  parallel_for(n >= 4 * kBlock ? pool : nullptr, blocks, [&](int64_t begin, int64_t end) {
    const int64_t lo = begin * kBlock, len = std::min(n, end * kBlock) - lo;
    for (int64_t b = 0; b < len; b += kBlock) {
      const int64_t m = std::min(kBlock, len - b);
      for (const EpilogueStep& s : steps) {
        if (t.dtype() == DType::kFloat32) apply_step_f32(s, t.data<float>() + lo + b, m);
        else apply_exact_step(s, t.data<double>() + lo + b, m);
      }
    }
  });
}

}  // namespace kiln
