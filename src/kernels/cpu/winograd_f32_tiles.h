// What winograd_f32.cpp hands to the ISA-specific tile loop
// (winograd_f32_avx2.cpp): plain data only, so that the AVX2 file includes
// nothing with inline functions (see CMakeLists.txt).
#pragma once
#include <cstdint>

namespace kiln {

// One F(tile x tile, 3x3) convolution on nChw8c tensors, tile 4 or 2, over
// tiles numbered n * tiles_h * tiles_w + ty * tiles_w + tx.
struct WinogradF32Job {
  int64_t tile = 4;
  int64_t H = 0, W = 0, OH = 0, OW = 0, pad_top = 0, pad_left = 0;
  int64_t tiles_h = 0, tiles_w = 0;
  int64_t in_blocks = 0;   // ceil(C / 8)
  int64_t out_blocks = 0;  // ceil(M / 8)
  int64_t m_pad = 0;       // M rounded up to 16: a row of U and of the products
  int64_t m_tail = 0;      // M % 8: the valid lanes of the last output block (0: all)
  int64_t tile_block = 0;  // tiles per call at most (the scratch's rows)
  const float* x = nullptr;
  float* y = nullptr;
  // U[points][m_pad / 16][in_blocks * 8][16]: the transformed weights, one
  // [C x M] matrix per point of the (tile + 2)^2 input tile, in 16-column
  // panels.
  const float* u = nullptr;
  const float* bias = nullptr;  // m_pad floats, zero past M
  const float* sum = nullptr;   // null, or added before the clamp/epilogue (y's layout)
  float lo = 0, hi = 0;         // clamp after the bias (ReLU: 0, +inf)
  bool clamp = false;
  // Any other epilogue: called on each stored run of n floats of y.
  void (*epilogue)(const void* ctx, float* p, int64_t n) = nullptr;
  const void* epilogue_ctx = nullptr;
};

// Floats of scratch (64-byte aligned) winograd_f32_tiles_avx2 needs.
inline int64_t winograd_f32_scratch_floats(const WinogradF32Job& j) {
  return (j.tile + 2) * (j.tile + 2) * j.tile_block * (j.in_blocks * 8 + j.m_pad);
}

// Input transform, 36 (16) GEMMs [tiles x C] x [C x M] and output transform for
// tiles [t0, t1), t1 - t0 <= tile_block, and the output channels of U's
// 16-column panels [q0, q1).
void winograd_f32_tiles_avx2(const WinogradF32Job& job, int64_t t0, int64_t t1, int64_t q0, int64_t q1, float* scratch);

}  // namespace kiln
