// What winograd_f32.cpp hands to the ISA-specific tile loops
// (winograd_f32_avx2.cpp, winograd_f32_avx512.cpp): plain data only, so that
// those files include nothing with inline functions (see CMakeLists.txt).
#pragma once
#include <cstdint>

namespace kiln {

// One F(tile x tile, 3x3) convolution on blocked tensors (nChw8c for AVX2,
// nChw16c for AVX-512: the block is the ISA's vector width), tile 4 or 2,
// over tiles numbered n * tiles_h * tiles_w + ty * tiles_w + tx.
struct WinogradF32Job {
  int64_t tile = 4;
  int64_t H = 0, W = 0, OH = 0, OW = 0, pad_top = 0, pad_left = 0;
  int64_t tiles_h = 0, tiles_w = 0;
  int64_t block = 8;       // channels per block: 8 (AVX2) or 16 (AVX-512)
  int64_t in_blocks = 0;   // ceil(C / block)
  int64_t out_blocks = 0;  // ceil(M / block)
  int64_t m_pad = 0;       // M rounded up to 16: a row of U and of the products
  int64_t m_tail = 0;      // M % block: the valid lanes of the last output block (0: all)
  int64_t tile_block = 0;  // tiles per call at most (the scratch's rows)
  const float* x = nullptr;
  float* y = nullptr;
  // U[points][m_pad / 16][in_blocks * block][16]: the transformed weights, one
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

// Floats of scratch (64-byte aligned) the tile loops need.
inline int64_t winograd_f32_scratch_floats(const WinogradF32Job& j) {
  return (j.tile + 2) * (j.tile + 2) * j.tile_block * (j.in_blocks * j.block + j.m_pad);
}

// Input transform, 36 (16) GEMMs [tiles x C] x [C x M] and output transform for
// tiles [t0, t1), t1 - t0 <= tile_block, and the output channels of U's
// 16-column panels [q0, q1).
// One per ISA, for its block (j.block 8: AVX2, 16: AVX-512).
void winograd_f32_tiles_avx2(const WinogradF32Job& job, int64_t t0, int64_t t1, int64_t q0, int64_t q1, float* scratch);
void winograd_f32_tiles_avx512(const WinogradF32Job& job, int64_t t0, int64_t t1, int64_t q0, int64_t q1,
                               float* scratch);

}  // namespace kiln
