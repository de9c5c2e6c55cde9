// The Winograd tile loop, F(4x4, 3x3) and F(2x2, 3x3) (Lavin & Gray 2015),
// written once for any vector ISA: one vector register holds the channels of
// one pixel of the blocked layout (nChw8c with AVX2, nChw16c with AVX-512),
// so every transform is the scalar formula applied to whole registers.
// Included only by winograd_f32_<isa>.cpp, each built for its ISA
// (CMakeLists.txt) with a struct `Isa` providing:
//   V, kLanes, load(p), store(p, v), zero(), set1(x), add, sub, mul,
//   fmadd(a, b, c) = a * b + c, fnmadd(a, b, c) = c - a * b, min, max,
//   keep_first(v, n): lanes n.. set to zero,
//   gemm_panels(rows, K, v, ldv, u, q0, q1, p, ldp): for the 16-column
//     panels q of U in [q0, q1): P[rows x 16] at p + q * 16 = V[rows x K] *
//     U-panel q (at u + q * K * 16, [K][16]).
//
// Per block of tiles: (1) V = B^T d B for every tile and input block, stored
// as 36 (16) matrices [tiles x C]; (2) P = V U, 36 (16) GEMMs; (3) y = A^T P A
// + bias, clamped or passed to the epilogue, stored.
#pragma once
#include <cstdint>

#include "kernels/cpu/winograd_f32_tiles.h"

namespace kiln {
namespace winograd_body {

template <typename Isa>
struct Transforms {
  using V = typename Isa::V;
  static constexpr int L = Isa::kLanes;

  // F(4x4, 3x3): z -> B^T z for one 6-vector (a column or a row of the input
  // tile).
  //   B^T = [4  0 -5  0 1 0]
  //         [0 -4 -4  1 1 0]
  //         [0  4 -4 -1 1 0]
  //         [0 -2 -1  2 1 0]
  //         [0  2 -1 -2 1 0]
  //         [0  4  0 -5 0 1]
  // The 1-D transforms load their inputs themselves, z[i * step]: filling a
  // vector array in a loop first made GCC copy it in 16-byte pieces through
  // the stack and stall on reading it back as whole-register loads.
  static void input_1d_f4(const float* zp, int64_t step, V r[6]) {
    const V z0 = Isa::load(zp), z1 = Isa::load(zp + step), z2 = Isa::load(zp + 2 * step), z3 = Isa::load(zp + 3 * step),
            z4 = Isa::load(zp + 4 * step), z5 = Isa::load(zp + 5 * step);
    const V four = Isa::set1(4.0f), five = Isa::set1(5.0f), two = Isa::set1(2.0f);
    const V a = Isa::fnmadd(four, z2, z4);  // z4 - 4 z2
    const V b = Isa::fnmadd(four, z1, z3);  // z3 - 4 z1
    const V c = Isa::sub(z4, z2);
    const V d = Isa::mul(two, Isa::sub(z3, z1));
    r[0] = Isa::fmadd(four, z0, Isa::fnmadd(five, z2, z4));
    r[1] = Isa::add(a, b);
    r[2] = Isa::sub(a, b);
    r[3] = Isa::add(c, d);
    r[4] = Isa::sub(c, d);
    r[5] = Isa::fmadd(four, z1, Isa::fnmadd(five, z3, z5));
  }

  // m -> A^T m.
  //   A^T = [1 1  1 1  1 0]
  //         [0 1 -1 2 -2 0]
  //         [0 1  1 4  4 0]
  //         [0 1 -1 8 -8 1]
  static void output_1d_f4(const float* mp, int64_t step, V o[4]) {
    const V m0 = Isa::load(mp), m1 = Isa::load(mp + step), m2 = Isa::load(mp + 2 * step), m3 = Isa::load(mp + 3 * step),
            m4 = Isa::load(mp + 4 * step), m5 = Isa::load(mp + 5 * step);
    const V s1 = Isa::add(m1, m2), d1 = Isa::sub(m1, m2);
    const V s2 = Isa::add(m3, m4), d2 = Isa::sub(m3, m4);
    o[0] = Isa::add(Isa::add(m0, s1), s2);
    o[1] = Isa::fmadd(Isa::set1(2.0f), d2, d1);
    o[2] = Isa::fmadd(Isa::set1(4.0f), s2, s1);
    o[3] = Isa::add(Isa::fmadd(Isa::set1(8.0f), d2, d1), m5);
  }

  // F(2x2, 3x3): B^T = [1  0 -1  0]   A^T = [1 1  1  0]
  //                   [0  1  1  0]         [0 1 -1 -1]
  //                   [0 -1  1  0]
  //                   [0  1  0 -1]
  static void input_1d_f2(const float* zp, int64_t step, V r[4]) {
    const V z0 = Isa::load(zp), z1 = Isa::load(zp + step), z2 = Isa::load(zp + 2 * step), z3 = Isa::load(zp + 3 * step);
    r[0] = Isa::sub(z0, z2);
    r[1] = Isa::add(z1, z2);
    r[2] = Isa::sub(z2, z1);
    r[3] = Isa::sub(z1, z3);
  }

  static void output_1d_f2(const float* mp, int64_t step, V o[2]) {
    const V m0 = Isa::load(mp), m1 = Isa::load(mp + step), m2 = Isa::load(mp + 2 * step), m3 = Isa::load(mp + 3 * step);
    o[0] = Isa::add(Isa::add(m0, m1), m2);
    o[1] = Isa::sub(Isa::sub(m1, m2), m3);
  }
};

template <typename Isa>
struct F4 {
  static constexpr int kTile = 4, kAlpha = 6;
  static void input_1d(const float* z, int64_t step, typename Isa::V* r) { Transforms<Isa>::input_1d_f4(z, step, r); }
  static void output_1d(const float* m, int64_t step, typename Isa::V* o) { Transforms<Isa>::output_1d_f4(m, step, o); }
};

template <typename Isa>
struct F2 {
  static constexpr int kTile = 2, kAlpha = 4;
  static void input_1d(const float* z, int64_t step, typename Isa::V* r) { Transforms<Isa>::input_1d_f2(z, step, r); }
  static void output_1d(const float* m, int64_t step, typename Isa::V* o) { Transforms<Isa>::output_1d_f2(m, step, o); }
};

struct TileAt {
  int64_t n, oy, ox;  // image, output origin
};

inline TileAt tile_at(const WinogradF32Job& j, int64_t t) {
  const int64_t per_image = j.tiles_h * j.tiles_w;
  const int64_t r = t % per_image;
  return {t / per_image, (r / j.tiles_w) * j.tile, (r % j.tiles_w) * j.tile};
}

// V[xi][row][cb * L ..] for one tile, all input blocks; ld = in_blocks * L.
template <typename Isa, typename F>
void input_tile(const WinogradF32Job& j, const TileAt& at, float* v, int64_t row, int64_t rows) {
  using V = typename Isa::V;
  constexpr int A = F::kAlpha, L = Isa::kLanes;
  const int64_t iy0 = at.oy - j.pad_top, ix0 = at.ox - j.pad_left;
  const bool inside = iy0 >= 0 && ix0 >= 0 && iy0 + A <= j.H && ix0 + A <= j.W;
  const int64_t ld = j.in_blocks * L;
  for (int64_t cb = 0; cb < j.in_blocks; ++cb) {
    const float* plane = j.x + (at.n * j.in_blocks + cb) * j.H * j.W * L;
    // t = d B row by row, then B^T t by columns.
    alignas(64) float t[A][A][L];
    alignas(64) float edge[A][L];
    for (int i = 0; i < A; ++i) {
      const int64_t iy = iy0 + i;
      const float* src = edge[0];
      if (inside) {
        src = plane + (iy * j.W + ix0) * L;
      } else {
        for (int k = 0; k < A; ++k) {
          const int64_t ix = ix0 + k;
          const bool in = iy >= 0 && iy < j.H && ix >= 0 && ix < j.W;
          Isa::store(edge[k], in ? Isa::load(plane + (iy * j.W + ix) * L) : Isa::zero());
        }
      }
      V r[A];
      F::input_1d(src, L, r);
      for (int k = 0; k < A; ++k) Isa::store(t[i][k], r[k]);
    }
    float* dst = v + row * ld + cb * L;
    for (int k = 0; k < A; ++k) {
      V r[A];
      F::input_1d(t[0][k], A * L, r);
      for (int i = 0; i < A; ++i) Isa::store(dst + (i * A + k) * rows * ld, r[i]);
    }
  }
}

// y for one tile from P[xi][row][..], output blocks [ob0, ob1).
template <typename Isa, typename F>
void output_tile(const WinogradF32Job& j, const TileAt& at, const float* p, int64_t row, int64_t rows, int64_t ob0,
                 int64_t ob1) {
  using V = typename Isa::V;
  constexpr int A = F::kAlpha, T = F::kTile, L = Isa::kLanes;
  const int64_t ny = j.OH - at.oy < T ? j.OH - at.oy : T, nx = j.OW - at.ox < T ? j.OW - at.ox : T;
  const V lo = Isa::set1(j.lo), hi = Isa::set1(j.hi);
  for (int64_t ob = ob0; ob < ob1; ++ob) {
    const float* src = p + row * j.m_pad + ob * L;
    alignas(64) float t[T][A][L];  // A^T P by columns, then each row times A
    for (int k = 0; k < A; ++k) {
      V out[T];
      F::output_1d(src + k * rows * j.m_pad, A * rows * j.m_pad, out);
      for (int i = 0; i < T; ++i) Isa::store(t[i][k], out[i]);
    }
    const V bias = Isa::load(j.bias + ob * L);
    const bool tail = j.m_tail != 0 && ob == j.out_blocks - 1;
    const int64_t plane_at = (at.n * j.out_blocks + ob) * j.OH * j.OW * L;
    float* plane = j.y + plane_at;
    for (int64_t i = 0; i < ny; ++i) {
      V out[T];
      F::output_1d(t[i][0], L, out);
      const int64_t row_at = ((at.oy + i) * j.OW + at.ox) * L;
      float* dst = plane + row_at;
      const float* add = j.sum ? j.sum + plane_at + row_at : nullptr;
      for (int64_t k = 0; k < nx; ++k) {
        V r = Isa::add(out[k], bias);
        if (add) r = Isa::add(r, Isa::load(add + k * L));
        if (j.clamp) r = Isa::min(Isa::max(r, lo), hi);
        if (tail) r = Isa::keep_first(r, int(j.m_tail));
        Isa::store(dst + k * L, r);
      }
      if (j.epilogue) {
        j.epilogue(j.epilogue_ctx, dst, nx * L);
        if (tail)
          for (int64_t k = 0; k < nx; ++k)
            Isa::store(dst + k * L, Isa::keep_first(Isa::load(dst + k * L), int(j.m_tail)));
      }
    }
  }
}

template <typename Isa, typename F>
void tiles(const WinogradF32Job& j, int64_t t0, int64_t t1, int64_t q0, int64_t q1, float* scratch) {
  constexpr int points = F::kAlpha * F::kAlpha;
  constexpr int64_t blocks_per_panel = 16 / Isa::kLanes;
  const int64_t rows = t1 - t0, K = j.in_blocks * Isa::kLanes;
  float* v = scratch;                              // [points][rows][K]
  float* p = scratch + points * j.tile_block * K;  // [points][rows][m_pad]
  for (int64_t t = t0; t < t1; ++t) input_tile<Isa, F>(j, tile_at(j, t), v, t - t0, rows);
  const int64_t panels = j.m_pad / 16;
  for (int xi = 0; xi < points; ++xi)
    Isa::gemm_panels(rows, K, v + xi * rows * K, K, j.u + xi * panels * K * 16, q0, q1, p + xi * rows * j.m_pad,
                     j.m_pad);
  const int64_t ob1 = blocks_per_panel * q1 < j.out_blocks ? blocks_per_panel * q1 : j.out_blocks;
  for (int64_t t = t0; t < t1; ++t) output_tile<Isa, F>(j, tile_at(j, t), p, t - t0, rows, blocks_per_panel * q0, ob1);
}

template <typename Isa>
void run_tiles(const WinogradF32Job& j, int64_t t0, int64_t t1, int64_t q0, int64_t q1, float* scratch) {
  if (j.tile == 2)
    tiles<Isa, F2<Isa>>(j, t0, t1, q0, q1, scratch);
  else
    tiles<Isa, F4<Isa>>(j, t0, t1, q0, q1, scratch);
}

}  // namespace winograd_body
}  // namespace kiln
