// The microkernel bodies, written once over a vector type V and instantiated
// per ISA in files compiled with that ISA's flags. Everything here has
// internal linkage and uses no library code, so no out-of-line copy built
// with wide instructions can be picked by the linker for code that runs on a
// CPU without them.
#pragma once
#include <cstdint>

namespace kiln {
namespace {

// V provides: type T, kLanes, kAccumulators (how many accumulator registers
// a kernel may hold), zero(), set1(float), load(const float*),
// store(float*, T), fma(a, b, c) = a * b + c, mul(a, b), prefetch(const void*).

// C[MR x NC] = alpha * acc + beta * C, NC = NV * kLanes; C is not read when
// beta == 0.
template <class V, int MR, int NV>
inline void gemm_f32_store_tile(const typename V::T (&acc)[MR][NV], float* __restrict c, int64_t ldc, float alpha,
                                float beta) {
  constexpr int L = V::kLanes;
  const typename V::T va = V::set1(alpha);
  if (beta == 0.0f) {
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 32
      for (int j = 0; j < NV; ++j) V::store(c + i * ldc + j * L, V::mul(acc[i][j], va));
  } else {
    const typename V::T vb = V::set1(beta);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 32
      for (int j = 0; j < NV; ++j) {
        float* p = c + i * ldc + j * L;
        V::store(p, V::fma(acc[i][j], va, V::mul(V::load(p), vb)));
      }
  }
}

// Touches the C tile's cache lines so that they arrive while the K loop runs
// (otherwise the epilogue waits on up to 2 * MR misses to L3 or memory).
template <class V, int MR, int NR>
inline void gemm_f32_prefetch_c(const float* c, int64_t ldc) {
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int j = 0; j < NR; j += 16) V::prefetch(c + i * ldc + j);
    V::prefetch(c + i * ldc + NR - 1);
  }
}

// The MR x (NV * kLanes) register tile from packed panels of A (MR rows,
// k-major) and B (NV * kLanes columns, k-major).
template <class V, int MR, int NV>
inline void gemm_f32_tile(int64_t kc, const float* __restrict a, const float* __restrict b, float* __restrict c,
                          int64_t ldc, float alpha, float beta) {
  constexpr int L = V::kLanes;
  constexpr int NR = NV * L;
  gemm_f32_prefetch_c<V, MR, NR>(c, ldc);
  typename V::T acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) acc[i][j] = V::zero();
      // Unrolled so that the loop overhead and the pointer bumps are spread over
      // 4 * MR * NV FMAs.
#pragma GCC unroll 4
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
  gemm_f32_store_tile<V, MR, NV>(acc, c, ldc, alpha, beta);
}

// The small-M kernel: C[M x P * NR] from M rows of A read in place
// (row-major, lda) and P consecutive B panels (NR = NV * kLanes columns each,
// panel_stride floats apart). Several panels at once give M = 1 and 2 enough
// independent accumulators to cover the FMA latency; whichever of A's
// broadcasts or B's vectors is fewer is held in registers across the other.
template <class V, int M, int NV, int P>
inline void gemm_f32_rows(int64_t kc, const float* __restrict a, int64_t lda, const float* __restrict b,
                          int64_t panel_stride, float* __restrict c, int64_t ldc, float alpha, float beta) {
  constexpr int L = V::kLanes;
  constexpr int NR = NV * L;
  constexpr int W = P * NV;  // vectors per row
#pragma GCC unroll 32
  for (int p = 0; p < P; ++p) gemm_f32_prefetch_c<V, M, NR>(c + p * NR, ldc);
  typename V::T acc[M][W];
#pragma GCC unroll 32
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 32
    for (int j = 0; j < W; ++j) acc[i][j] = V::zero();
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    if constexpr (M <= W) {
      typename V::T av[M];
#pragma GCC unroll 32
      for (int i = 0; i < M; ++i) av[i] = V::set1(a[i * lda + k]);
#pragma GCC unroll 32
      for (int j = 0; j < W; ++j) {
        const typename V::T bv = V::load(b + (j / NV) * panel_stride + k * NR + (j % NV) * L);
#pragma GCC unroll 32
        for (int i = 0; i < M; ++i) acc[i][j] = V::fma(av[i], bv, acc[i][j]);
      }
    } else {
      typename V::T bv[W];
#pragma GCC unroll 32
      for (int j = 0; j < W; ++j) bv[j] = V::load(b + (j / NV) * panel_stride + k * NR + (j % NV) * L);
#pragma GCC unroll 32
      for (int i = 0; i < M; ++i) {
        const typename V::T av = V::set1(a[i * lda + k]);
#pragma GCC unroll 32
        for (int j = 0; j < W; ++j) acc[i][j] = V::fma(av, bv[j], acc[i][j]);
      }
    }
  }
#pragma GCC unroll 32
  for (int p = 0; p < P; ++p) {
    typename V::T part[M][NV];
#pragma GCC unroll 32
    for (int i = 0; i < M; ++i)
#pragma GCC unroll 32
      for (int j = 0; j < NV; ++j) part[i][j] = acc[i][p * NV + j];
    gemm_f32_store_tile<V, M, NV>(part, c + p * NR, ldc, alpha, beta);
  }
}

// Panels at once for M rows: as many as the accumulator budget allows, at
// most 4 (more concurrent streams than that gain nothing).
template <class V, int M, int NV>
constexpr int gemm_f32_rows_panels() {
  const int p = V::kAccumulators / (M * NV);
  return p < 1 ? 1 : p > 4 ? 4 : p;
}

// C[M x panels * NR] for M rows (M known at compile time): groups of the
// widest kernel, then single panels.
template <class V, int M, int NV>
inline void gemm_f32_rows_all(int64_t kc, const float* a, int64_t lda, const float* b, int64_t panels, float* c,
                              int64_t ldc, float alpha, float beta) {
  constexpr int NR = NV * V::kLanes;
  constexpr int P = gemm_f32_rows_panels<V, M, NV>();
  const int64_t stride = NR * kc;
  int64_t q = 0;
  for (; q + P <= panels; q += P)
    gemm_f32_rows<V, M, NV, P>(kc, a, lda, b + q * stride, stride, c + q * NR, ldc, alpha, beta);
  if constexpr (P > 1)
    for (; q < panels; ++q)
      gemm_f32_rows<V, M, NV, 1>(kc, a, lda, b + q * stride, stride, c + q * NR, ldc, alpha, beta);
}

// The run-time row count m (1..MR) picks the instantiation.
template <class V, int MR, int NV>
inline void gemm_f32_rows_dispatch(int m, int64_t kc, const float* a, int64_t lda, const float* b, int64_t panels,
                                   float* c, int64_t ldc, float alpha, float beta) {
  if constexpr (MR > 1) {
    if (m < MR) {
      gemm_f32_rows_dispatch<V, MR - 1, NV>(m, kc, a, lda, b, panels, c, ldc, alpha, beta);
      return;
    }
  }
  gemm_f32_rows_all<V, MR, NV>(kc, a, lda, b, panels, c, ldc, alpha, beta);
}

}  // namespace
}  // namespace kiln
