// Float32 GEMM: C[M x N] = alpha * op(A)[M x K] * op(B)[K x N] + beta * C,
// packed and cache-blocked (Goto/BLIS loop nest) around a register-tiled
// microkernel chosen at run time (gemm_f32_microkernels.h), threaded on the
// session's pool. Either operand may be packed ahead of time (weights, at
// kernel creation) so that runs do not repack it.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "kernels/cpu/gemm_f32_microkernels.h"

namespace kiln {

class ThreadPool;

// The microkernel for this CPU (capped by KILN_CPU_ISA).
const GemmF32Microkernel& gemm_f32_default_kernel();

// An operand packed for one microkernel: A into MR-row panels, B into
// NR-column panels, per KC-deep block of K.
class PackedMatrixF32 {
 public:
  enum class Side { kA, kB };
  // Packs op(src), which is rows x cols after the transpose (A: M x K, B: K x N).
  static std::shared_ptr<const PackedMatrixF32> pack(Side side, const float* src, int64_t ld, bool trans, int64_t rows,
                                                     int64_t cols, const GemmF32Microkernel& kernel);
  // Adopts panels packed earlier (data() of a matrix of the same side, size
  // and microkernel, e.g. from an engine file), used in place; `owner` keeps
  // them alive. Null when `kernel_name` is not a microkernel of this build.
  static std::shared_ptr<const PackedMatrixF32> adopt(Side side, int64_t rows, int64_t cols,
                                                      const std::string& kernel_name, std::shared_ptr<const void> owner,
                                                      const float* data, size_t floats);
  // The packed panels, size() floats.
  const float* data() const { return data_; }
  size_t size() const;
  // The matrix it was packed from (op(src): rows x cols, row-major), for
  // re-packing for another microkernel.
  void unpack(float* out) const;

  Side side() const { return side_; }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  const GemmF32Microkernel& kernel() const { return *kernel_; }
  // The panel holding row (A) or column (B) `outer` of the K block starting at k0.
  const float* panel(int64_t k0, int64_t outer) const;

 private:
  Side side_ = Side::kA;
  int64_t rows_ = 0, cols_ = 0, outer_padded_ = 0;
  const GemmF32Microkernel* kernel_ = nullptr;
  std::shared_ptr<const void> owner_;
  const float* data_ = nullptr;
};

// Produces B's packed panels on demand, for a B that is never materialized
// (convolution's im2col matrix): writes rows [k0, k0 + kc) x columns
// [j0, j0 + n) of B as NR-column panels (out[(q * kc + k) * nr + j]),
// zero-padding the last panel. Called concurrently from several threads.
class GemmF32PanelPacker {
 public:
  virtual ~GemmF32PanelPacker() = default;
  virtual void pack_b(int64_t k0, int64_t kc, int64_t j0, int64_t n, int64_t nr, float* out) const = 0;
};

// One GEMM operand: a row-major matrix (transposed when `trans`), a packed
// one, or (B only) a panel packer.
struct GemmF32Operand {
  const float* data = nullptr;
  int64_t ld = 0;
  bool trans = false;
  const PackedMatrixF32* packed = nullptr;
  const GemmF32PanelPacker* packer = nullptr;
};

// C = alpha * op(A) * op(B) + beta * C; C is not read when beta == 0. A packed
// operand must have been packed for `kernel`. pool may be null.
void gemm_f32(int64_t M, int64_t N, int64_t K, float alpha, const GemmF32Operand& A, const GemmF32Operand& B,
              float beta, float* C, int64_t ldc, ThreadPool* pool, const GemmF32Microkernel& kernel);
inline void gemm_f32(int64_t M, int64_t N, int64_t K, float alpha, const GemmF32Operand& A, const GemmF32Operand& B,
                     float beta, float* C, int64_t ldc, ThreadPool* pool) {
  gemm_f32(M, N, K, alpha, A, B, beta, C, ldc, pool, gemm_f32_default_kernel());
}

}  // namespace kiln
