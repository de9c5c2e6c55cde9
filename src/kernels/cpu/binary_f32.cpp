#include "kernels/cpu/binary_f32.h"

#include <algorithm>

#include "core/thread_pool.h"
#include "kernels/cpu/binary_f32_body.h"
#include "kernels/cpu/cpu_isa.h"

namespace kiln {

void binary_rows_f32_avx2(BinaryOpF32 op, const float* a, int64_t as, int64_t a_row, const float* b, int64_t bs,
                          int64_t b_row, float* y, int64_t n, int64_t rows);

namespace {

void binary_rows_f32_scalar(BinaryOpF32 op, const float* a, int64_t as, int64_t a_row, const float* b, int64_t bs,
                            int64_t b_row, float* y, int64_t n, int64_t rows) {
  binary_rows_f32(op, a, as, a_row, b, bs, b_row, y, n, rows);
}

}  // namespace

const KernelVariant<BinaryRowsF32Fn> kBinaryRowsF32Variants[2] = {
    {"binary_rows_f32_avx2", CpuIsa::kAvx2, binary_rows_f32_avx2},
    {"binary_rows_f32_scalar", CpuIsa::kScalar, binary_rows_f32_scalar},
};

namespace {

// A run of output dims over which each operand is either contiguous
// (stride = its extent's product) or broadcast (stride 0).
struct Run {
  int64_t size;
  bool a_broadcast, b_broadcast;
  int64_t a_stride = 0, b_stride = 0;
};

std::vector<Run> collapse(const std::vector<int64_t>& a_shape, const std::vector<int64_t>& b_shape,
                          const std::vector<int64_t>& y_shape) {
  const size_t r = y_shape.size();
  std::vector<Run> dims;
  for (size_t d = 0; d < r; ++d) {
    const int64_t n = y_shape[d];
    if (n == 1) continue;
    const size_t ar = a_shape.size(), br = b_shape.size();
    const bool ab = d + ar < r || a_shape[d + ar - r] == 1;
    const bool bb = d + br < r || b_shape[d + br - r] == 1;
    if (!dims.empty() && dims.back().a_broadcast == ab && dims.back().b_broadcast == bb)
      dims.back().size *= n;
    else
      dims.push_back({n, ab, bb});
  }
  int64_t as = 1, bs = 1;
  for (size_t i = dims.size(); i-- > 0;) {
    dims[i].a_stride = dims[i].a_broadcast ? 0 : as;
    dims[i].b_stride = dims[i].b_broadcast ? 0 : bs;
    if (!dims[i].a_broadcast) as *= dims[i].size;
    if (!dims[i].b_broadcast) bs *= dims[i].size;
  }
  return dims;
}

}  // namespace

void binary_f32(BinaryOpF32 op, const float* a, const std::vector<int64_t>& a_shape, const float* b,
                const std::vector<int64_t>& b_shape, float* y, const std::vector<int64_t>& y_shape, ThreadPool* pool) {
  int64_t total = 1;
  for (int64_t n : y_shape) total *= n;
  if (total == 0) return;
  const BinaryRowsF32Fn run = select_variant(kBinaryRowsF32Variants).fn;
  std::vector<Run> dims = collapse(a_shape, b_shape, y_shape);
  if (dims.empty()) dims.push_back({1, false, false, 1, 1});
  const Run inner = dims.back();
  dims.pop_back();
  // Short inner runs (a blocked tensor's channel block against a per-channel
  // operand: [N, C/8, H, W, 8] * [N, C/8, 1, 1, 8]) go as rows of the next
  // dim out, so that the per-row index arithmetic below is not paid every 8
  // elements.
  Run outer{1, false, false, 0, 0};
  if (inner.size < 256 && !dims.empty()) {
    outer = dims.back();
    dims.pop_back();
  }
  const int64_t block = outer.size * inner.size;
  // Work items: each block of the remaining outer dims, cut in pieces when
  // blocks are long (a same-shape op is one block), so that the pool gets
  // work to split. A piece is whole rows of the outer run, or part of the
  // inner run when there is no outer run.
  constexpr int64_t kPiece = 16384;
  const int64_t pieces = (block + kPiece - 1) / kPiece;
  const int64_t units = outer.size > 1 ? outer.size : inner.size;  // what pieces cut
  const int64_t piece_len = (units + pieces - 1) / pieces;
  const int64_t blocks = total / block;
  ThreadPool* p = total >= 4 * kPiece ? pool : nullptr;
  parallel_for(p, blocks * pieces, [&](int64_t begin, int64_t end) {
    for (int64_t it = begin; it < end; ++it) {
      int64_t rest = it / pieces, ao = 0, bo = 0;
      for (size_t d = dims.size(); d-- > 0;) {
        const int64_t i = rest % dims[d].size;
        rest /= dims[d].size;
        ao += i * dims[d].a_stride;
        bo += i * dims[d].b_stride;
      }
      const int64_t lo = (it % pieces) * piece_len, len = std::min(units - lo, piece_len);
      if (len <= 0) continue;
      const int64_t yo = (it / pieces) * block;
      if (outer.size > 1)
        run(op, a + ao + lo * outer.a_stride, inner.a_stride, outer.a_stride, b + bo + lo * outer.b_stride,
            inner.b_stride, outer.b_stride, y + yo + lo * inner.size, inner.size, len);
      else
        run(op, a + ao + lo * inner.a_stride, inner.a_stride, 0, b + bo + lo * inner.b_stride, inner.b_stride, 0,
            y + yo + lo, len, 1);
    }
  });
}

}  // namespace kiln
