// The one microkernel body, written once over a vector type V and
// instantiated per ISA in files compiled with that ISA's flags. Everything
// here has internal linkage and uses no library code, so no out-of-line copy
// built with wide instructions can be picked by the linker for code that
// runs on a CPU without them.
#pragma once
#include <cstdint>

namespace kiln {
namespace {

// V provides: type T, kLanes, zero(), set1(float), load(const float*),
// store(float*, T), fma(a, b, c) = a * b + c, mul(a, b).
template <class V, int MR, int NV>
inline void gemm_f32_tile(int64_t kc, const float* __restrict a, const float* __restrict b, float* __restrict c,
                          int64_t ldc, float alpha, float beta) {
  constexpr int L = V::kLanes;
  constexpr int NR = NV * L;
  typename V::T acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) acc[i][j] = V::zero();
  for (int64_t k = 0; k < kc; ++k) {
    typename V::T bv[NV];
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) bv[j] = V::load(b + j * L);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const typename V::T av = V::set1(a[i]);
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[i][j] = V::fma(av, bv[j], acc[i][j]);
    }
    a += MR;
    b += NR;
  }
  const typename V::T va = V::set1(alpha);
  if (beta == 0.0f) {
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) V::store(c + i * ldc + j * L, V::mul(acc[i][j], va));
  } else {
    const typename V::T vb = V::set1(beta);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) {
        float* p = c + i * ldc + j * L;
        V::store(p, V::fma(acc[i][j], va, V::mul(V::load(p), vb)));
      }
  }
}

}  // namespace
}  // namespace kiln
