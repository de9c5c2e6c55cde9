// The Winograd tile loop, F(4x4, 3x3) and F(2x2, 3x3), for AVX2 + FMA
// (Lavin & Gray 2015): one ymm
// register holds the 8 channels of one pixel of the nChw8c layout, so every
// transform is the scalar formula applied to whole registers. Compiled with
// -mavx2 -mfma (CMakeLists.txt); called only when the CPU has them.
//
// Per block of tiles: (1) V = B^T d B for every tile and input block, stored
// as 36 (16) matrices [tiles x C]; (2) P = V U, 36 (16) GEMMs with a 6 x 16
// register tile; (3) y = A^T P A + bias, clamped or passed to the epilogue,
// stored.
#include <immintrin.h>

#include "kernels/cpu/winograd_f32_tiles.h"

namespace kiln {
namespace {

using V8 = __m256;

// F(4x4, 3x3): z -> B^T z for one 6-vector (a column or a row of the input
// tile).
//   B^T = [4  0 -5  0 1 0]
//         [0 -4 -4  1 1 0]
//         [0  4 -4 -1 1 0]
//         [0 -2 -1  2 1 0]
//         [0  2 -1 -2 1 0]
//         [0  4  0 -5 0 1]
//
// The 1-D transforms load their inputs themselves, z[i * step]: filling a
// V8 array in a loop first made GCC copy it in 16-byte pieces through the
// stack and stall on reading it back as 32-byte loads.
inline void input_1d_f4(const float* zp, int64_t step, V8 r[6]) {
  V8 z[6];
  z[0] = _mm256_loadu_ps(zp);
  z[1] = _mm256_loadu_ps(zp + step);
  z[2] = _mm256_loadu_ps(zp + 2 * step);
  z[3] = _mm256_loadu_ps(zp + 3 * step);
  z[4] = _mm256_loadu_ps(zp + 4 * step);
  z[5] = _mm256_loadu_ps(zp + 5 * step);
  const V8 four = _mm256_set1_ps(4.0f), five = _mm256_set1_ps(5.0f), two = _mm256_set1_ps(2.0f);
  const V8 a = _mm256_fnmadd_ps(four, z[2], z[4]);  // z4 - 4 z2
  const V8 b = _mm256_fnmadd_ps(four, z[1], z[3]);  // z3 - 4 z1
  const V8 c = _mm256_sub_ps(z[4], z[2]);
  const V8 d = _mm256_mul_ps(two, _mm256_sub_ps(z[3], z[1]));
  r[0] = _mm256_fmadd_ps(four, z[0], _mm256_fnmadd_ps(five, z[2], z[4]));
  r[1] = _mm256_add_ps(a, b);
  r[2] = _mm256_sub_ps(a, b);
  r[3] = _mm256_add_ps(c, d);
  r[4] = _mm256_sub_ps(c, d);
  r[5] = _mm256_fmadd_ps(four, z[1], _mm256_fnmadd_ps(five, z[3], z[5]));
}

// m -> A^T m.
//   A^T = [1 1  1 1  1 0]
//         [0 1 -1 2 -2 0]
//         [0 1  1 4  4 0]
//         [0 1 -1 8 -8 1]
inline void output_1d_f4(const float* mp, int64_t step, V8 o[4]) {
  V8 m[6];
  m[0] = _mm256_loadu_ps(mp);
  m[1] = _mm256_loadu_ps(mp + step);
  m[2] = _mm256_loadu_ps(mp + 2 * step);
  m[3] = _mm256_loadu_ps(mp + 3 * step);
  m[4] = _mm256_loadu_ps(mp + 4 * step);
  m[5] = _mm256_loadu_ps(mp + 5 * step);
  const V8 s1 = _mm256_add_ps(m[1], m[2]), d1 = _mm256_sub_ps(m[1], m[2]);
  const V8 s2 = _mm256_add_ps(m[3], m[4]), d2 = _mm256_sub_ps(m[3], m[4]);
  o[0] = _mm256_add_ps(_mm256_add_ps(m[0], s1), s2);
  o[1] = _mm256_fmadd_ps(_mm256_set1_ps(2.0f), d2, d1);
  o[2] = _mm256_fmadd_ps(_mm256_set1_ps(4.0f), s2, s1);
  o[3] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.0f), d2, d1), m[5]);
}

// F(2x2, 3x3): B^T = [1  0 -1  0]   A^T = [1 1  1  0]
//                   [0  1  1  0]         [0 1 -1 -1]
//                   [0 -1  1  0]
//                   [0  1  0 -1]
inline void input_1d_f2(const float* zp, int64_t step, V8 r[4]) {
  V8 z[4];
  z[0] = _mm256_loadu_ps(zp);
  z[1] = _mm256_loadu_ps(zp + step);
  z[2] = _mm256_loadu_ps(zp + 2 * step);
  z[3] = _mm256_loadu_ps(zp + 3 * step);
  r[0] = _mm256_sub_ps(z[0], z[2]);
  r[1] = _mm256_add_ps(z[1], z[2]);
  r[2] = _mm256_sub_ps(z[2], z[1]);
  r[3] = _mm256_sub_ps(z[1], z[3]);
}

inline void output_1d_f2(const float* mp, int64_t step, V8 o[2]) {
  V8 m[4];
  m[0] = _mm256_loadu_ps(mp);
  m[1] = _mm256_loadu_ps(mp + step);
  m[2] = _mm256_loadu_ps(mp + 2 * step);
  m[3] = _mm256_loadu_ps(mp + 3 * step);
  o[0] = _mm256_add_ps(_mm256_add_ps(m[0], m[1]), m[2]);
  o[1] = _mm256_sub_ps(_mm256_sub_ps(m[1], m[2]), m[3]);
}

struct F4 {
  static constexpr int kTile = 4, kAlpha = 6;
  static void input_1d(const float* z, int64_t step, V8* r) { input_1d_f4(z, step, r); }
  static void output_1d(const float* m, int64_t step, V8* o) { output_1d_f4(m, step, o); }
};

struct F2 {
  static constexpr int kTile = 2, kAlpha = 4;
  static void input_1d(const float* z, int64_t step, V8* r) { input_1d_f2(z, step, r); }
  static void output_1d(const float* m, int64_t step, V8* o) { output_1d_f2(m, step, o); }
};

struct TileAt {
  int64_t n, oy, ox;  // image, output origin
};

TileAt tile_at(const WinogradF32Job& j, int64_t t) {
  const int64_t per_image = j.tiles_h * j.tiles_w;
  const int64_t r = t % per_image;
  return {t / per_image, (r / j.tiles_w) * j.tile, (r % j.tiles_w) * j.tile};
}

// V[xi][row][cb * 8 ..] for one tile, all input blocks; ld = in_blocks * 8.
template <typename F>
void input_tile(const WinogradF32Job& j, const TileAt& at, float* v, int64_t row, int64_t rows) {
  constexpr int A = F::kAlpha;
  const int64_t iy0 = at.oy - j.pad_top, ix0 = at.ox - j.pad_left;
  const bool inside = iy0 >= 0 && ix0 >= 0 && iy0 + A <= j.H && ix0 + A <= j.W;
  const int64_t ld = j.in_blocks * 8;
  for (int64_t cb = 0; cb < j.in_blocks; ++cb) {
    const float* plane = j.x + (at.n * j.in_blocks + cb) * j.H * j.W * 8;
    // t = d B row by row, then B^T t by columns.
    alignas(32) float t[A][A][8];
    alignas(32) float edge[A][8];
    for (int i = 0; i < A; ++i) {
      const int64_t iy = iy0 + i;
      const float* src = edge[0];
      if (inside) {
        src = plane + (iy * j.W + ix0) * 8;
      } else {
        for (int k = 0; k < A; ++k) {
          const int64_t ix = ix0 + k;
          const bool in = iy >= 0 && iy < j.H && ix >= 0 && ix < j.W;
          _mm256_store_ps(edge[k], in ? _mm256_loadu_ps(plane + (iy * j.W + ix) * 8) : _mm256_setzero_ps());
        }
      }
      V8 r[A];
      F::input_1d(src, 8, r);
      for (int k = 0; k < A; ++k) _mm256_store_ps(t[i][k], r[k]);
    }
    float* dst = v + row * ld + cb * 8;
    for (int k = 0; k < A; ++k) {
      V8 r[A];
      F::input_1d(t[0][k], A * 8, r);
      for (int i = 0; i < A; ++i) _mm256_storeu_ps(dst + (i * A + k) * rows * ld, r[i]);
    }
  }
}

// P[R x 16] = V[R x K] * U-panel[K x 16]. Named accumulators: with an
// array GCC kept them on the stack.
template <int R>
void gemm_rows(int64_t K, const float* v, int64_t ldv, const float* u, float* p, int64_t ldp) {
  V8 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00, c40 = c00,
     c41 = c00, c50 = c00, c51 = c00;
  const float* a0 = v;
  const float* a1 = R > 1 ? v + ldv : v;
  const float* a2 = R > 2 ? v + 2 * ldv : v;
  const float* a3 = R > 3 ? v + 3 * ldv : v;
  const float* a4 = R > 4 ? v + 4 * ldv : v;
  const float* a5 = R > 5 ? v + 5 * ldv : v;
  for (int64_t k = 0; k < K; ++k) {
    const V8 b0 = _mm256_load_ps(u + k * 16), b1 = _mm256_load_ps(u + k * 16 + 8);
    V8 a = _mm256_broadcast_ss(a0 + k);
    c00 = _mm256_fmadd_ps(a, b0, c00);
    c01 = _mm256_fmadd_ps(a, b1, c01);
    if constexpr (R > 1) {
      a = _mm256_broadcast_ss(a1 + k);
      c10 = _mm256_fmadd_ps(a, b0, c10);
      c11 = _mm256_fmadd_ps(a, b1, c11);
    }
    if constexpr (R > 2) {
      a = _mm256_broadcast_ss(a2 + k);
      c20 = _mm256_fmadd_ps(a, b0, c20);
      c21 = _mm256_fmadd_ps(a, b1, c21);
    }
    if constexpr (R > 3) {
      a = _mm256_broadcast_ss(a3 + k);
      c30 = _mm256_fmadd_ps(a, b0, c30);
      c31 = _mm256_fmadd_ps(a, b1, c31);
    }
    if constexpr (R > 4) {
      a = _mm256_broadcast_ss(a4 + k);
      c40 = _mm256_fmadd_ps(a, b0, c40);
      c41 = _mm256_fmadd_ps(a, b1, c41);
    }
    if constexpr (R > 5) {
      a = _mm256_broadcast_ss(a5 + k);
      c50 = _mm256_fmadd_ps(a, b0, c50);
      c51 = _mm256_fmadd_ps(a, b1, c51);
    }
  }
  const V8 acc[6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  for (int r = 0; r < R; ++r) {
    _mm256_store_ps(p + r * ldp, acc[r][0]);
    _mm256_store_ps(p + r * ldp + 8, acc[r][1]);
  }
}

void gemm_block(int64_t rows, int64_t K, const float* v, int64_t ldv, const float* u, float* p, int64_t ldp) {
  int64_t r = 0;
  for (; r + 6 <= rows; r += 6) gemm_rows<6>(K, v + r * ldv, ldv, u, p + r * ldp, ldp);
  switch (rows - r) {
    case 5: gemm_rows<5>(K, v + r * ldv, ldv, u, p + r * ldp, ldp); break;
    case 4: gemm_rows<4>(K, v + r * ldv, ldv, u, p + r * ldp, ldp); break;
    case 3: gemm_rows<3>(K, v + r * ldv, ldv, u, p + r * ldp, ldp); break;
    case 2: gemm_rows<2>(K, v + r * ldv, ldv, u, p + r * ldp, ldp); break;
    case 1: gemm_rows<1>(K, v + r * ldv, ldv, u, p + r * ldp, ldp); break;
    default: break;
  }
}

// y for one tile from P[xi][row][..], all output blocks.
template <typename F>
void output_tile(const WinogradF32Job& j, const TileAt& at, const float* p, int64_t row, int64_t rows, int64_t ob0,
                 int64_t ob1) {
  constexpr int A = F::kAlpha, T = F::kTile;
  const int64_t ny = j.OH - at.oy < T ? j.OH - at.oy : T, nx = j.OW - at.ox < T ? j.OW - at.ox : T;
  const V8 lo = _mm256_set1_ps(j.lo), hi = _mm256_set1_ps(j.hi);
  for (int64_t ob = ob0; ob < ob1; ++ob) {
    const float* src = p + row * j.m_pad + ob * 8;
    alignas(32) float t[T][A][8];  // A^T P by columns, then each row times A
    for (int k = 0; k < A; ++k) {
      V8 out[T];
      F::output_1d(src + k * rows * j.m_pad, A * rows * j.m_pad, out);
      for (int i = 0; i < T; ++i) _mm256_store_ps(t[i][k], out[i]);
    }
    const V8 bias = _mm256_loadu_ps(j.bias + ob * 8);
    const bool tail = j.m_tail != 0 && ob == j.out_blocks - 1;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const V8 keep = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(int(j.m_tail)), lane));
    const int64_t plane_at = (at.n * j.out_blocks + ob) * j.OH * j.OW * 8;
    float* plane = j.y + plane_at;
    for (int64_t i = 0; i < ny; ++i) {
      V8 out[T];
      F::output_1d(t[i][0], 8, out);
      const int64_t row_at = ((at.oy + i) * j.OW + at.ox) * 8;
      float* dst = plane + row_at;
      const float* add = j.sum ? j.sum + plane_at + row_at : nullptr;
      for (int64_t k = 0; k < nx; ++k) {
        V8 r = _mm256_add_ps(out[k], bias);
        if (add) r = _mm256_add_ps(r, _mm256_loadu_ps(add + k * 8));
        if (j.clamp) r = _mm256_min_ps(_mm256_max_ps(r, lo), hi);
        if (tail) r = _mm256_and_ps(r, keep);
        _mm256_storeu_ps(dst + k * 8, r);
      }
      if (j.epilogue) {
        j.epilogue(j.epilogue_ctx, dst, nx * 8);
        if (tail)
          for (int64_t k = 0; k < nx; ++k)
            _mm256_storeu_ps(dst + k * 8, _mm256_and_ps(_mm256_loadu_ps(dst + k * 8), keep));
      }
    }
  }
}

}  // namespace

namespace {

template <typename F>
void tiles(const WinogradF32Job& j, int64_t t0, int64_t t1, int64_t q0, int64_t q1, float* scratch) {
  constexpr int points = F::kAlpha * F::kAlpha;
  const int64_t rows = t1 - t0, K = j.in_blocks * 8;
  float* v = scratch;                              // [points][rows][K]
  float* p = scratch + points * j.tile_block * K;  // [points][rows][m_pad]
  for (int64_t t = t0; t < t1; ++t) input_tile<F>(j, tile_at(j, t), v, t - t0, rows);
  const int64_t panels = j.m_pad / 16;
  for (int xi = 0; xi < points; ++xi) {
    const float* vx = v + xi * rows * K;
    const float* ux = j.u + xi * panels * K * 16;
    float* px = p + xi * rows * j.m_pad;
    for (int64_t q = q0; q < q1; ++q) gemm_block(rows, K, vx, K, ux + q * K * 16, px + q * 16, j.m_pad);
  }
  const int64_t ob1 = 2 * q1 < j.out_blocks ? 2 * q1 : j.out_blocks;
  for (int64_t t = t0; t < t1; ++t) output_tile<F>(j, tile_at(j, t), p, t - t0, rows, 2 * q0, ob1);
}

}  // namespace

void winograd_f32_tiles_avx2(const WinogradF32Job& j, int64_t t0, int64_t t1, int64_t q0, int64_t q1, float* scratch) {
  if (j.tile == 2)
    tiles<F2>(j, t0, t1, q0, q1, scratch);
  else
    tiles<F4>(j, t0, t1, q0, q1, scratch);
}

}  // namespace kiln
