#include "kernels/cpu/vec_math_f32.h"

#include <algorithm>
#include <cstring>

#include "core/thread_pool.h"

#include "kernels/cpu/vec_math_f32_body.h"

namespace kiln {

extern const VecMathF32 vec_math_f32_avx512;
extern const VecMathF32 vec_math_f32_avx2;

namespace {

// One lane, plain C++: runs on any CPU. fma goes through double: the product
// of two floats is exact there, which erf's exact a^2 split relies on.
struct Scalar {
  using T = float;
  using M = bool;
  static constexpr int kLanes = 1;
  static T set1(float x) { return x; }
  static T load(const float* p) { return *p; }
  static void store(float* p, T v) { *p = v; }
  static T fma(T a, T b, T c) { return static_cast<float>(static_cast<double>(a) * b + c); }
  static T min(T a, T b) { return a < b ? a : b; }
  static T max(T a, T b) { return a > b ? a : b; }
  static float hmax(T v) { return v; }
  static double hsum(T v) { return v; }
  static T load_tail(const float* p, int n, float fill) { return n > 0 ? *p : fill; }
  static void store_tail(float* p, T v, int n) {
    if (n > 0) *p = v;
  }
  // Adding and subtracting 1.5 * 2^23 rounds to an integer (to nearest even)
  // for |a| < 2^22, which covers every caller (IEEE arithmetic: the compiler
  // may not fold the pair away without -ffast-math).
  static T round(T a) { return (a + 12582912.0f) - 12582912.0f; }
  static T pow2(T n) {
    const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
  }
  static M lt(T a, T b) { return a < b; }
  static M is_nan(T a) { return a != a; }
  static T select(M m, T a, T b) { return m ? a : b; }
  static uint32_t bits(T a) {
    uint32_t u;
    std::memcpy(&u, &a, sizeof u);
    return u;
  }
  static T from_bits(uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
  }
  static T abs(T a) { return from_bits(bits(a) & 0x7fffffffu); }
  static T sign(T a) { return from_bits(bits(a) & 0x80000000u); }
  static T or_bits(T a, T b) { return from_bits(bits(a) | bits(b)); }
};

constexpr VecMathF32 vec_math_f32_scalar = make_vec_math<Scalar>();

}  // namespace

const KernelVariant<const VecMathF32*> kVecMathF32Variants[3] = {
    {"vec_math_f32_avx512", CpuIsa::kAvx512, &vec_math_f32_avx512},
    {"vec_math_f32_avx2", CpuIsa::kAvx2, &vec_math_f32_avx2},
    {"vec_math_f32_scalar", CpuIsa::kScalar, &vec_math_f32_scalar},
};

const VecMathF32& vec_math_f32_for(CpuIsa isa) { return *select_variant(kVecMathF32Variants, isa).fn; }

void map_f32(VecMathF32Fn fn, const float* x, float* y, int64_t n, ThreadPool* pool) {
  constexpr int64_t kBlock = 16384;
  parallel_for(n >= 4 * kBlock ? pool : nullptr, (n + kBlock - 1) / kBlock, [&](int64_t begin, int64_t end) {
    const int64_t lo = begin * kBlock;
    fn(x + lo, y + lo, std::min(n, end * kBlock) - lo);
  });
}

const VecMathF32& vec_math_f32() { return *select_variant(kVecMathF32Variants).fn; }

}  // namespace kiln
