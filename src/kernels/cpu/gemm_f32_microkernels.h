// The float32 GEMM microkernels: one register tile of C updated from packed
// panels of A and B. Each ISA's kernels live in their own file compiled with
// that ISA's flags (CMakeLists.txt); the list below is the one enumeration
// that dispatch (gemm_f32.cpp), tests and benchmarks walk.
//
// Packed layouts (see gemm_f32.h): an A panel holds MR rows, k-major
// (a[k * MR + i]); a B panel holds NR columns, k-major (b[k * NR + j]).
#pragma once
#include <cstdint>

#include "kernels/cpu/cpu_isa.h"

namespace kiln {

struct GemmF32Microkernel {
  const char* name;  // gemm_f32_<isa>_<MR>x<NR>
  CpuIsa isa;
  int mr, nr;
  // C[MR x NR] = alpha * (A panel * B panel over kc) + beta * C. C is not
  // read when beta == 0 (it may hold garbage).
  void (*run)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha, float beta);
  // The small-M path: C[m x panels * NR] = alpha * A * B + beta * C for
  // 1 <= m <= MR rows of A read in place (row-major, lda) and `panels`
  // consecutive full B panels (each NR * kc floats). No packing of A, and
  // enough accumulators for m = 1 (several panels at once).
  void (*run_rows)(int m, int64_t kc, const float* a, int64_t lda, const float* b, int64_t panels, float* c,
                   int64_t ldc, float alpha, float beta);
};

extern const GemmF32Microkernel gemm_f32_scalar_4x8;
extern const GemmF32Microkernel gemm_f32_avx2_6x16;
extern const GemmF32Microkernel gemm_f32_avx512_8x32;

// Every compiled microkernel, best first.
inline const GemmF32Microkernel* const kGemmF32Microkernels[] = {&gemm_f32_avx512_8x32, &gemm_f32_avx2_6x16,
                                                                 &gemm_f32_scalar_4x8};

}  // namespace kiln
