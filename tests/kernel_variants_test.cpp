// Every variant of every kernel family list (kernels/cpu/variants.h) that
// this CPU runs, against the family's portable variant on random inputs: a
// new variant added to a list is tested here without a new test.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/binary_f32.h"
#include "kernels/cpu/conv_f32.h"
#include "kernels/cpu/pool_f32.h"
#include "kernels/cpu/vec_math_f32.h"

namespace kiln::test {
namespace {

std::vector<float> random_floats(size_t n, unsigned seed, float lo = -2, float hi = 2) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

template <typename V, size_t N>
const V& portable(const V (&list)[N]) {
  return list[N - 1];
}

void expect_close(const std::vector<float>& got, const std::vector<float>& want, float tol, const char* name) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * std::max(1.0f, std::fabs(want[i]))) << name << " at " << i;
}

TEST(KernelVariants, ListsEndWithAPortableVariant) {
  EXPECT_EQ(portable(kBinaryRowsF32Variants).isa, CpuIsa::kScalar);
  EXPECT_EQ(portable(kDepthwiseChannelF32Variants).isa, CpuIsa::kScalar);
  EXPECT_EQ(portable(kPoolF32Variants).isa, CpuIsa::kScalar);
  EXPECT_EQ(portable(kVecMathF32Variants).isa, CpuIsa::kScalar);
}

TEST(KernelVariants, BinaryRows) {
  const int64_t n = 37, rows = 5;
  const std::vector<float> a = random_floats(n * rows, 1), b = random_floats(n * rows, 2, 0.5f, 2);
  for (BinaryOpF32 op : {BinaryOpF32::kAdd, BinaryOpF32::kSub, BinaryOpF32::kMul, BinaryOpF32::kDiv})
    for (int64_t bs : {int64_t{0}, int64_t{1}}) {  // b broadcast along the row, or read
      std::vector<float> want(n * rows);
      portable(kBinaryRowsF32Variants).fn(op, a.data(), 1, n, b.data(), bs, n, want.data(), n, rows);
      for (const auto& v : kBinaryRowsF32Variants) {
        if (!variant_runs_here(v)) continue;
        std::vector<float> got(n * rows);
        v.fn(op, a.data(), 1, n, b.data(), bs, n, got.data(), n, rows);
        expect_close(got, want, 0, v.name);  // one IEEE operation per element: the same bits
      }
    }
}

TEST(KernelVariants, DepthwiseChannel) {
  const int64_t H = 13, W = 17;
  const std::vector<float> x = random_floats(H * W, 3), w = random_floats(25, 4);
  struct Case {
    int64_t k, stride, pad, dil;
  };
  for (const Case c : {Case{3, 1, 1, 1}, Case{3, 2, 1, 1}, Case{5, 1, 2, 1}, Case{5, 2, 2, 1}, Case{3, 1, 2, 2}}) {
    const int64_t OH = (H + 2 * c.pad - c.dil * (c.k - 1) - 1) / c.stride + 1;
    const int64_t OW = (W + 2 * c.pad - c.dil * (c.k - 1) - 1) / c.stride + 1;
    std::vector<float> want(OH * OW);
    portable(kDepthwiseChannelF32Variants)
        .fn(x.data(), H, W, w.data(), c.k, c.k, c.stride, c.stride, c.pad, c.pad, c.dil, c.dil, 0.25f, want.data(), OH,
            OW);
    for (const auto& v : kDepthwiseChannelF32Variants) {
      if (!variant_runs_here(v)) continue;
      std::vector<float> got(OH * OW);
      v.fn(x.data(), H, W, w.data(), c.k, c.k, c.stride, c.stride, c.pad, c.pad, c.dil, c.dil, 0.25f, got.data(), OH,
           OW);
      expect_close(got, want, 1e-5f, v.name);  // FMA contracts differently
    }
  }
}

TEST(KernelVariants, PoolPlaneAndBlockedRows) {
  const int64_t H = 11, W = 9, K = 3, S = 2, P = 1, OH = (H + 2 * P - K) / S + 1, OW = (W + 2 * P - K) / S + 1;
  const std::vector<float> x = random_floats(H * W * 8, 5);
  std::vector<float> count_h(OH, 3.0f), count_w(OW, 3.0f);
  for (bool max : {true, false}) {
    const float init = max ? -3.4e38f : 0.0f;
    std::vector<float> want(OH * OW), want_b(OH * OW * 8);
    const PoolF32Fns& ref = portable(kPoolF32Variants).fn;
    ref.plane(max, x.data(), H, W, K, K, S, S, P, P, 1, 1, init, want.data(), OH, OW);
    ref.blocked_rows(8, max, x.data(), H, W, K, K, S, S, P, P, 1, 1, init, 0, OH, want_b.data(), OW, count_h.data(),
                     count_w.data());
    for (const auto& v : kPoolF32Variants) {
      if (!variant_runs_here(v)) continue;
      std::vector<float> got(OH * OW), got_b(OH * OW * 8);
      v.fn.plane(max, x.data(), H, W, K, K, S, S, P, P, 1, 1, init, got.data(), OH, OW);
      v.fn.blocked_rows(8, max, x.data(), H, W, K, K, S, S, P, P, 1, 1, init, 0, OH, got_b.data(), OW, count_h.data(),
                        count_w.data());
      expect_close(got, want, 1e-6f, v.name);
      expect_close(got_b, want_b, 1e-6f, v.name);
    }
  }
}

TEST(KernelVariants, VecMath) {
  const std::vector<float> x = random_floats(1001, 6, -12, 12);
  const VecMathF32& ref = *portable(kVecMathF32Variants).fn;
  for (const auto& v : kVecMathF32Variants) {
    if (!variant_runs_here(v)) continue;
    for (VecMathF32Fn VecMathF32::*fn : {&VecMathF32::exp, &VecMathF32::sigmoid, &VecMathF32::silu, &VecMathF32::tanh,
                                         &VecMathF32::gelu_tanh, &VecMathF32::erf, &VecMathF32::gelu_erf}) {
      std::vector<float> want(x.size()), got(x.size());
      (ref.*fn)(x.data(), want.data(), static_cast<int64_t>(x.size()));
      ((*v.fn).*fn)(x.data(), got.data(), static_cast<int64_t>(x.size()));
      expect_close(got, want, 1e-6f, v.name);
    }
  }
}

}  // namespace
}  // namespace kiln::test
