#include "kernels/cpu/gemm_f32.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

#ifdef __SSE2__
#include <immintrin.h>
#endif

#include "core/thread_pool.h"

namespace kiln {

namespace {

// Block sizes for Zen 3 class cores (32 KiB L1d, 512 KiB L2, 32 MiB L3): a
// KC x NR panel of B (16 KiB for 6x16) stays in L1 while the MC x KC block of
// A (at most 240 x 256 floats, 240 KiB) streams from L2; an NC-wide block of
// packed B (at most 2 MiB) is shared by all row blocks from L3. A pre-packed
// B is taken whole (one NC block), so A is packed once per K block.
constexpr int64_t kKc = 256;
constexpr int64_t kMc = 240;
constexpr int64_t kNc = 2048;
// Up to this many rows, the small-M path (no A packing, several B panels per
// kernel call) beats the MR-row tiles, which would run mostly on padding.
constexpr int64_t kSmallM = 8;

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

float* aligned_floats(size_t n) {
  void* p = std::aligned_alloc(64, round_up(static_cast<int64_t>(std::max<size_t>(n, 1) * sizeof(float)), 64));
  if (!p) throw std::bad_alloc();
  return static_cast<float*>(p);
}
void free_floats(float* p) { std::free(p); }

// Per-thread scratch for packed blocks, grown on demand and kept, so
// steady-state runs do not allocate.
struct ScratchBuffer {
  float* data = nullptr;
  size_t capacity = 0;
  ~ScratchBuffer() { std::free(data); }
  float* get(size_t n) {
    if (n > capacity) {
      std::free(data);
      data = aligned_floats(n);
      capacity = n;
    }
    return data;
  }
};
thread_local ScratchBuffer tls_pack_a, tls_pack_b, tls_rows_a;

// Transposes `rows` rows of a row-major A (kc columns from src) into one
// k-major panel (out[k * mr + i]). With SSE (baseline on x86-64) four rows
// and four k at a time go through a 4 x 4 register transpose and two rows
// through one unpack, instead of one strided store per element; this packing
// runs on every call for an activation A.
void pack_a_rows(const float* src, int64_t ld, int64_t rows, int64_t kc, int64_t mr, float* out) {
  int64_t k = 0;
#ifdef __SSE2__
  for (; k + 4 <= kc; k += 4) {
    float* o = out + k * mr;
    int64_t i = 0;
    for (; i + 4 <= rows; i += 4) {
      __m128 r0 = _mm_loadu_ps(src + i * ld + k), r1 = _mm_loadu_ps(src + (i + 1) * ld + k);
      __m128 r2 = _mm_loadu_ps(src + (i + 2) * ld + k), r3 = _mm_loadu_ps(src + (i + 3) * ld + k);
      _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
      _mm_storeu_ps(o + i, r0);
      _mm_storeu_ps(o + mr + i, r1);
      _mm_storeu_ps(o + 2 * mr + i, r2);
      _mm_storeu_ps(o + 3 * mr + i, r3);
    }
    for (; i + 2 <= rows; i += 2) {
      const __m128 a = _mm_loadu_ps(src + i * ld + k), b = _mm_loadu_ps(src + (i + 1) * ld + k);
      const __m128 lo = _mm_unpacklo_ps(a, b), hi = _mm_unpackhi_ps(a, b);
      _mm_storel_pi(reinterpret_cast<__m64*>(o + i), lo);
      _mm_storeh_pi(reinterpret_cast<__m64*>(o + mr + i), lo);
      _mm_storel_pi(reinterpret_cast<__m64*>(o + 2 * mr + i), hi);
      _mm_storeh_pi(reinterpret_cast<__m64*>(o + 3 * mr + i), hi);
    }
    for (; i < rows; ++i)
      for (int64_t kk = 0; kk < 4; ++kk) o[kk * mr + i] = src[i * ld + k + kk];
  }
#endif
  for (; k < kc; ++k)
    for (int64_t i = 0; i < rows; ++i) out[k * mr + i] = src[i * ld + k];
}

// Packs rows [i0, i0 + m) x cols [k0, k0 + kc) of op(A) into MR-row panels,
// zero-padding the last panel.
void pack_a(const GemmF32Operand& A, int64_t i0, int64_t m, int64_t k0, int64_t kc, int64_t mr, float* out) {
  for (int64_t p = 0; p * mr < m; ++p) {
    float* o = out + p * mr * kc;
    const int64_t rows = std::min(mr, m - p * mr), r0 = i0 + p * mr;
    if (!A.trans) {
      pack_a_rows(A.data + r0 * A.ld + k0, A.ld, rows, kc, mr, o);
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        const float* s = A.data + (k0 + k) * A.ld + r0;
        for (int64_t i = 0; i < rows; ++i) o[k * mr + i] = s[i];
      }
    }
    for (int64_t i = rows; i < mr; ++i)
      for (int64_t k = 0; k < kc; ++k) o[k * mr + i] = 0.0f;
  }
}

// Packs rows [k0, k0 + kc) x cols [j0, j0 + n) of op(B) into NR-column panels.
void pack_b(const GemmF32Operand& B, int64_t k0, int64_t kc, int64_t j0, int64_t n, int64_t nr, float* out) {
  for (int64_t q = 0; q * nr < n; ++q) {
    float* o = out + q * nr * kc;
    const int64_t cols = std::min(nr, n - q * nr), c0 = j0 + q * nr;
    if (!B.trans) {
      for (int64_t k = 0; k < kc; ++k) {
        const float* s = B.data + (k0 + k) * B.ld + c0;
        float* d = o + k * nr;
        std::memcpy(d, s, static_cast<size_t>(cols) * sizeof(float));
        for (int64_t j = cols; j < nr; ++j) d[j] = 0.0f;
      }
    } else {
      for (int64_t j = 0; j < cols; ++j) {
        const float* s = B.data + (c0 + j) * B.ld + k0;
        for (int64_t k = 0; k < kc; ++k) o[k * nr + j] = s[k];
      }
      for (int64_t j = cols; j < nr; ++j)
        for (int64_t k = 0; k < kc; ++k) o[k * nr + j] = 0.0f;
    }
  }
}

struct GemmProblem {
  int64_t M, N, K;
  float alpha, beta;
  const GemmF32Operand* A;
  const GemmF32Operand* B;
  float* C;
  int64_t ldc;
  const GemmF32Microkernel* kernel;
};

// C block [mc x nc] from packed A (MR panels) and packed B (NR panels); edge
// tiles go through a local tile so the microkernel only sees full tiles.
void macro_kernel(const GemmProblem& g, int64_t mc, int64_t nc, int64_t kc, const float* ap, const float* bp, float* c,
                  float beta) {
  const int64_t mr = g.kernel->mr, nr = g.kernel->nr;
  alignas(64) float tile[32 * 32];
  for (int64_t j = 0; j < nc; j += nr) {
    const int64_t n = std::min(nr, nc - j);
    const float* b = bp + (j / nr) * nr * kc;
    for (int64_t i = 0; i < mc; i += mr) {
      const int64_t m = std::min(mr, mc - i);
      const float* a = ap + (i / mr) * mr * kc;
      float* cij = c + i * g.ldc + j;
      if (m == mr && n == nr) {
        g.kernel->run(kc, a, b, cij, g.ldc, g.alpha, beta);
        continue;
      }
      g.kernel->run(kc, a, b, tile, nr, g.alpha, 0.0f);
      for (int64_t ii = 0; ii < m; ++ii)
        for (int64_t jj = 0; jj < n; ++jj) {
          float& dst = cij[ii * g.ldc + jj];
          dst = beta == 0.0f ? tile[ii * nr + jj] : tile[ii * nr + jj] + beta * dst;
        }
    }
  }
}

// B's packed panels for rows [pc, pc + kc) x columns [jc, jc + nc): the
// pre-packed ones, or this thread's scratch filled now.
const float* b_panels(const GemmProblem& g, int64_t pc, int64_t kc, int64_t jc, int64_t nc) {
  if (g.B->packed) return g.B->packed->panel(pc, jc);
  const int64_t nr = g.kernel->nr;
  float* buf = tls_pack_b.get(static_cast<size_t>(round_up(nc, nr) * kc));
  if (g.B->packer)
    g.B->packer->pack_b(pc, kc, jc, nc, nr, buf);
  else
    pack_b(*g.B, pc, kc, jc, nc, nr, buf);
  return buf;
}

// One thread's share: rows [i0, i1) x cols [j0, j1); i0 and j0 are multiples
// of MR and NR so packed operands can be indexed by panel.
void gemm_block(const GemmProblem& g, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  const int64_t mr = g.kernel->mr, nr = g.kernel->nr;
  // Equal row blocks of at most kMc rows (197 rows: one block of 198, not
  // 144 + 53), and for a pre-packed B one column block.
  const int64_t m_blocks = (i1 - i0 + kMc - 1) / kMc;
  const int64_t mc_block = round_up((i1 - i0 + m_blocks - 1) / m_blocks, mr);
  const int64_t nc_block = g.B->packed ? round_up(j1 - j0, nr) : round_up(kNc, nr);
  for (int64_t pc = 0; pc < g.K; pc += kKc) {
    const int64_t kc = std::min(kKc, g.K - pc);
    const float beta = pc == 0 ? g.beta : 1.0f;
    for (int64_t jc = j0; jc < j1; jc += nc_block) {
      const int64_t nc = std::min(nc_block, j1 - jc);
      const float* bp = b_panels(g, pc, kc, jc, nc);
      for (int64_t ic = i0; ic < i1; ic += mc_block) {
        const int64_t mc = std::min(mc_block, i1 - ic);
        const float* ap;
        if (g.A->packed) {
          ap = g.A->packed->panel(pc, ic);
        } else {
          float* buf = tls_pack_a.get(static_cast<size_t>(round_up(mc, mr) * kc));
          pack_a(*g.A, ic, mc, pc, kc, mr, buf);
          ap = buf;
        }
        macro_kernel(g, mc, nc, kc, ap, bp, g.C + ic * g.ldc + jc, beta);
      }
    }
  }
}

// The small-M path (M <= kSmallM): all rows x cols [j0, j1) with A's rows
// read in place (row-major, lda), in row chunks of at most MR; j0 is a
// multiple of NR.
void gemm_rows_block(const GemmProblem& g, const float* a, int64_t lda, int64_t j0, int64_t j1) {
  const GemmF32Microkernel& k = *g.kernel;
  const int64_t nr = k.nr, chunks = (g.M + k.mr - 1) / k.mr;
  // Panels per call: with two row chunks, the second reads them from L2. 12
  // is a multiple of every panel group (1 to 4).
  constexpr int64_t kSlice = 12;
  const int64_t nc_block = g.B->packed ? round_up(j1 - j0, nr) : round_up(kNc, nr);
  alignas(64) float tile[kSmallM * 32];
  for (int64_t pc = 0; pc < g.K; pc += kKc) {
    const int64_t kc = std::min(kKc, g.K - pc);
    const float beta = pc == 0 ? g.beta : 1.0f;
    for (int64_t jc = j0; jc < j1; jc += nc_block) {
      const int64_t nc = std::min(nc_block, j1 - jc), full = nc / nr;
      const float* bp = b_panels(g, pc, kc, jc, nc);
      for (int64_t q0 = 0; q0 < full; q0 += kSlice) {
        const int64_t qn = std::min(kSlice, full - q0);
        for (int64_t ch = 0, r0 = 0; ch < chunks; ++ch) {
          const int64_t r1 = g.M * (ch + 1) / chunks;
          k.run_rows(static_cast<int>(r1 - r0), kc, a + r0 * lda + pc, lda, bp + q0 * nr * kc, qn,
                     g.C + r0 * g.ldc + jc + q0 * nr, g.ldc, g.alpha, beta);
          r0 = r1;
        }
      }
      const int64_t rest = nc - full * nr;
      if (rest == 0) continue;
      for (int64_t ch = 0, r0 = 0; ch < chunks; ++ch) {
        const int64_t r1 = g.M * (ch + 1) / chunks;
        k.run_rows(static_cast<int>(r1 - r0), kc, a + r0 * lda + pc, lda, bp + full * nr * kc, 1, tile, nr, g.alpha,
                   0.0f);
        for (int64_t i = r0; i < r1; ++i)
          for (int64_t j = 0; j < rest; ++j) {
            float& dst = g.C[i * g.ldc + jc + full * nr + j];
            const float t = tile[(i - r0) * nr + j];
            dst = beta == 0.0f ? t : t + beta * dst;
          }
        r0 = r1;
      }
    }
  }
}

// The small-M path for the whole problem: A made row-major if it is not,
// then the columns split over the threads in whole panels.
void gemm_rows(const GemmProblem& g, int threads, ThreadPool* pool) {
  const float* a = g.A->data;
  int64_t lda = g.A->ld;
  if (g.A->trans) {
    float* buf = tls_rows_a.get(static_cast<size_t>(g.M * g.K));
    for (int64_t k = 0; k < g.K; ++k)
      for (int64_t i = 0; i < g.M; ++i) buf[i * g.K + k] = g.A->data[k * g.A->ld + i];
    a = buf;
    lda = g.K;
  }
  const int64_t nr = g.kernel->nr, n_tiles = (g.N + nr - 1) / nr;
  threads = static_cast<int>(std::min<int64_t>(threads, n_tiles));
  if (threads <= 1) {
    gemm_rows_block(g, a, lda, 0, g.N);
    return;
  }
  pool->parallel_for(threads, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t j0 = std::min(g.N, n_tiles * t / threads * nr);
      const int64_t j1 = std::min(g.N, n_tiles * (t + 1) / threads * nr);
      if (j0 < j1) gemm_rows_block(g, a, lda, j0, j1);
    }
  });
}

// Splits the M x N output over `threads` tasks as a tm x tn grid of whole
// microkernel tiles, choosing the grid whose largest task is smallest
// (ties: split N, so that A, usually the shared weights, is not repacked).
void choose_grid(int64_t m_tiles, int64_t n_tiles, int threads, int* tm, int* tn) {
  int64_t best = -1;
  for (int a = 1; a <= threads; ++a) {
    if (threads % a) continue;
    const int b = threads / a;
    const int64_t cost = ((m_tiles + a - 1) / a) * ((n_tiles + b - 1) / b);
    if (best < 0 || cost < best || (cost == best && b > *tn)) {
      best = cost;
      *tm = a;
      *tn = b;
    }
  }
}

void check_packed(const PackedMatrixF32* p, PackedMatrixF32::Side side, int64_t rows, int64_t cols,
                  const GemmF32Microkernel& kernel) {
  if (p && (p->side() != side || p->rows() != rows || p->cols() != cols || &p->kernel() != &kernel))
    throw std::invalid_argument("gemm_f32: packed operand does not match the problem or microkernel");
}

}  // namespace

const GemmF32Microkernel& gemm_f32_default_kernel() {
  static const GemmF32Microkernel* chosen = [] {
    const CpuIsa isa = cpu_isa_selected();
    for (const GemmF32Microkernel* k : kGemmF32Microkernels)
      if (static_cast<int>(k->isa) <= static_cast<int>(isa)) return k;
    return &gemm_f32_scalar_4x8;
  }();
  return *chosen;
}

std::shared_ptr<const PackedMatrixF32> PackedMatrixF32::pack(Side side, const float* src, int64_t ld, bool trans,
                                                             int64_t rows, int64_t cols,
                                                             const GemmF32Microkernel& kernel) {
  auto p = std::make_shared<PackedMatrixF32>();
  p->side_ = side;
  p->rows_ = rows;
  p->cols_ = cols;
  p->kernel_ = &kernel;
  const bool is_a = side == Side::kA;
  const int64_t outer = is_a ? rows : cols, depth = is_a ? cols : rows, unit = is_a ? kernel.mr : kernel.nr;
  p->outer_padded_ = round_up(outer, unit);
  float* data = aligned_floats(static_cast<size_t>(p->outer_padded_ * depth));
  p->owner_ =
      std::shared_ptr<const void>(data, [](const void* q) { free_floats(static_cast<float*>(const_cast<void*>(q))); });
  p->data_ = data;
  const GemmF32Operand op{src, ld, trans, nullptr};
  for (int64_t k0 = 0; k0 < depth; k0 += kKc) {
    const int64_t kc = std::min(kKc, depth - k0);
    float* block = data + k0 * p->outer_padded_;
    if (is_a)
      pack_a(op, 0, rows, k0, kc, unit, block);
    else
      pack_b(op, k0, kc, 0, cols, unit, block);
  }
  return p;
}

std::shared_ptr<const PackedMatrixF32> PackedMatrixF32::adopt(Side side, int64_t rows, int64_t cols,
                                                              const std::string& kernel_name,
                                                              std::shared_ptr<const void> owner, const float* data,
                                                              size_t floats) {
  const GemmF32Microkernel* kernel = nullptr;
  for (const GemmF32Microkernel* k : kGemmF32Microkernels)
    if (kernel_name == k->name) kernel = k;
  if (kernel_name == gemm_f32_scalar_4x8.name) kernel = &gemm_f32_scalar_4x8;
  if (!kernel) return nullptr;
  auto p = std::make_shared<PackedMatrixF32>();
  p->side_ = side;
  p->rows_ = rows;
  p->cols_ = cols;
  p->kernel_ = kernel;
  p->outer_padded_ = round_up(side == Side::kA ? rows : cols, side == Side::kA ? kernel->mr : kernel->nr);
  if (rows < 0 || cols < 0 || floats != p->size())
    throw std::invalid_argument("packed matrix of " + std::to_string(floats) + " floats, expected " +
                                std::to_string(p->size()));
  p->owner_ = std::move(owner);
  p->data_ = data;
  return p;
}

size_t PackedMatrixF32::size() const {
  return static_cast<size_t>(outer_padded_ * (side_ == Side::kA ? cols_ : rows_));
}

void PackedMatrixF32::unpack(float* out) const {
  const bool is_a = side_ == Side::kA;
  const int64_t outer = is_a ? rows_ : cols_, depth = is_a ? cols_ : rows_;
  const int64_t unit = is_a ? kernel_->mr : kernel_->nr;
  for (int64_t k0 = 0; k0 < depth; k0 += kKc) {
    const int64_t kc = std::min(kKc, depth - k0);
    const float* block = data_ + k0 * outer_padded_;
    // Panel q holds outer indices [q * unit, q * unit + unit), kc deep, as
    // block[(q * kc + k) * unit + j] (pack_a / pack_b).
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t k = 0; k < kc; ++k) {
        const float v = block[((o / unit) * kc + k) * unit + o % unit];
        if (is_a)
          out[o * cols_ + k0 + k] = v;
        else
          out[(k0 + k) * cols_ + o] = v;
      }
  }
}

const float* PackedMatrixF32::panel(int64_t k0, int64_t outer) const {
  const int64_t depth = side_ == Side::kA ? cols_ : rows_;
  const int64_t unit = side_ == Side::kA ? kernel_->mr : kernel_->nr;
  const int64_t kc = std::min(kKc, depth - k0);
  return data_ + k0 * outer_padded_ + (outer / unit) * unit * kc;
}

void gemm_f32(int64_t M, int64_t N, int64_t K, float alpha, const GemmF32Operand& A, const GemmF32Operand& B,
              float beta, float* C, int64_t ldc, ThreadPool* pool, const GemmF32Microkernel& kernel) {
  if (M <= 0 || N <= 0) return;
  check_packed(A.packed, PackedMatrixF32::Side::kA, M, K, kernel);
  check_packed(B.packed, PackedMatrixF32::Side::kB, K, N, kernel);
  if (K <= 0 || alpha == 0.0f) {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    return;
  }
  const GemmProblem g{M, N, K, alpha, beta, &A, &B, C, ldc, &kernel};
  const int64_t mr = kernel.mr, nr = kernel.nr;
  const int64_t m_tiles = (M + mr - 1) / mr, n_tiles = (N + nr - 1) / nr;
  // Below ~100k multiply-adds a second thread costs more than it saves.
  int threads = pool ? pool->num_threads() : 1;
  if (M * N * K < 128 * 1024) threads = 1;
  if (M <= kSmallM && !A.packed) {
    gemm_rows(g, threads, pool);
    return;
  }
  threads = static_cast<int>(std::min<int64_t>(threads, m_tiles * n_tiles));
  if (threads <= 1) {
    gemm_block(g, 0, M, 0, N);
    return;
  }
  int tm = 1, tn = 1;
  choose_grid(m_tiles, n_tiles, threads, &tm, &tn);
  pool->parallel_for(tm * tn, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t a = t / tn, b = t % tn;
      const int64_t i0 = std::min(M, m_tiles * a / tm * mr), i1 = std::min(M, m_tiles * (a + 1) / tm * mr);
      const int64_t j0 = std::min(N, n_tiles * b / tn * nr), j1 = std::min(N, n_tiles * (b + 1) / tn * nr);
      if (i0 < i1 && j0 < j1) gemm_block(g, i0, i1, j0, j1);
    }
  });
}

}  // namespace kiln
