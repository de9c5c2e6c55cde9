// Winograd convolution F(4x4, 3x3) (Lavin & Gray 2015, "Fast Algorithms for
// Convolutional Neural Networks") on kiln's blocked layout (nChw8c with AVX2,
// nChw16c with AVX-512; kernels/cpu/dnnl_glue.h): 3x3 kernels, stride 1,
// dilation 1, one group, pads 0 to 2 on each side. Each 4x4 output tile
// costs 36 multiply-adds per (input, output) channel pair instead of 144.
//
// F(2x2, 3x3) is there too (tile = 2): 15x more accurate, but slower than
// both F(4x4) and oneDNN on the layers measured, so not selected.
//
// Lifecycle: the constructor transforms the weights once (U = G g G^T, in
// double, rounded to float, laid out as 36 [C x M] matrices in 16-column
// panels); run() transforms the input tiles, multiplies and transforms the
// output with the bias and epilogue fused, threaded over blocks of tiles.
// Scratch (one slice per pool thread) is the caller's workspace, from the
// run's scratch memory, so steady-state runs do not allocate. AVX2 + FMA or
// AVX-512F: available() says whether this CPU (capped by KILN_CPU_ISA) runs
// it, block() on which layout; callers fall back to oneDNN otherwise.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/cpu/epilogue.h"

namespace kiln {

class ThreadPool;

struct WinogradF32Geometry {
  int64_t N = 1, H = 1, W = 1;        // input batch and spatial size
  int64_t pad_top = 0, pad_left = 0;  // 0..2
  int64_t OH = 1, OW = 1;             // H + pads - 2, W + pads - 2
};

class WinogradF32Conv {
 public:
  // The channels per block of the layout it runs on: the selected ISA's
  // vector width, 8 (AVX2) or 16 (AVX-512), the same as the blocked layout's
  // (ops/blocked.h); 0 below AVX2, where there is no Winograd kernel.
  static int64_t block();
  // Whether this process runs it: block() != 0.
  static bool available();
  // Whether a conv of these attributes is one it computes.
  static bool supports(int64_t kh, int64_t kw, int64_t stride_h, int64_t stride_w, int64_t dil_h, int64_t dil_w,
                       int64_t group, const std::vector<int64_t>& pads_begin, const std::vector<int64_t>& pads_end);

  // w: [M, C, 3, 3]; bias: M floats or null. The epilogue runs after the
  // bias. tile: 4 for F(4x4, 3x3), 2 for F(2x2, 3x3).
  WinogradF32Conv(const float* w, const float* bias, int64_t C, int64_t M, std::vector<EpilogueStep> epilogue,
                  int tile = 4);
  // Adopts weights transformed earlier (transformed() of a conv with the same
  // C, M and tile, e.g. from an engine file), used in place; `owner` keeps
  // them alive. kiln::Error when `floats` is not the size they must have.
  WinogradF32Conv(std::shared_ptr<const void> owner, const float* u, size_t floats, const float* bias, int64_t C,
                  int64_t M, std::vector<EpilogueStep> epilogue, int tile = 4);

  // The transformed weights (U), transformed_floats() of them.
  const float* transformed() const { return u_; }
  size_t transformed_floats() const;

  // x: [N, ceil(C/b), H, W, b] -> y: [N, ceil(M/b), OH, OW, b], b = block(), padded
  // channels of y written as zeros. With `sum` (y's shape), y =
  // epilogue(conv + bias + sum).
  // `workspace`: workspace_bytes(g, pool) bytes (64-byte aligned) that no
  // other run uses meanwhile, e.g. the run's KernelContext::scratch(); null:
  // run() allocates its own for this call.
  void run(const WinogradF32Geometry& g, const float* x, float* y, ThreadPool* pool, const float* sum = nullptr,
           void* workspace = nullptr) const;
  // The temporary memory run() needs for this geometry on `pool`.
  size_t workspace_bytes(const WinogradF32Geometry& g, ThreadPool* pool) const;

  int64_t C() const { return C_; }
  int tile() const { return tile_; }
  int64_t M() const { return M_; }

 private:
  void set_bias_and_epilogue(const float* bias);

  int64_t C_, M_, block_, in_blocks_, m_pad_;
  int tile_;
  std::shared_ptr<const void> u_owner_;
  const float* u_ = nullptr;
  std::vector<float> bias_;
  std::vector<EpilogueStep> epilogue_;
  bool clamp_ = false;
  float lo_ = 0, hi_ = 0;
};

// KILN_WINOGRAD: "0" never, "1" for every conv it supports, unset (or
// anything else): where winograd_f32_wins() says so.
enum class WinogradMode { kOff, kAuto, kForce };
WinogradMode winograd_mode();

// The selection rule, from bench/micro/kernels.cpp's measurements against
// oneDNN's direct convolution (docs/kernels.md).
bool winograd_f32_wins(int64_t N, int64_t C, int64_t M, int64_t OH, int64_t OW);
// Its accuracy part alone: whether Winograd's error stays within kiln's
// budget on a conv of C input channels and an OH x OW output. Engine builds
// time Winograd against oneDNN on the convs that pass it (src/engine/tactics.cpp).
bool winograd_f32_accurate_enough(int64_t C, int64_t OH, int64_t OW);

}  // namespace kiln
