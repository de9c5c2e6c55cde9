#include "kernels/cpu/winograd_f32.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>

#include "core/settings.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/winograd_f32_tiles.h"
#include "kiln/error.h"

namespace kiln {

namespace {

// G of F(4x4, 3x3): U = G g G^T is 6x6 per (output, input) channel pair.
constexpr double kG4[6][3] = {
    {1.0 / 4, 0, 0},
    {-1.0 / 6, -1.0 / 6, -1.0 / 6},
    {-1.0 / 6, 1.0 / 6, -1.0 / 6},
    {1.0 / 24, 1.0 / 12, 1.0 / 6},
    {1.0 / 24, -1.0 / 12, 1.0 / 6},
    {0, 0, 1},
};
// G of F(2x2, 3x3): 4x4.
constexpr double kG2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};

float* aligned_floats(int64_t n) {
  void* p = std::aligned_alloc(64, size_t((n * int64_t(sizeof(float)) + 63) / 64 * 64));
  if (!p) throw std::bad_alloc();
  return static_cast<float*>(p);
}
void free_floats(float* p) { std::free(p); }

void run_epilogue(const void* ctx, float* p, int64_t n) {
  apply_epilogue(*static_cast<const std::vector<EpilogueStep>*>(ctx), p, n);
}

// U = G g G^T for every (output, input) channel pair, in double, rounded to
// float, into U[alpha^2][panels][K][16]. The 16 output channels of a panel
// are computed side by side (arrays over the lanes the compiler vectorizes):
// one pair at a time took 0.2 us, 45 ms for a 512 x 512 conv.
template <int A>
void transform_weights(const double (*G)[3], const float* w, int64_t C, int64_t M, int64_t K, int64_t panels,
                       float* u) {
  for (int64_t q = 0; q < panels; ++q) {
    const int64_t m0 = q * 16, lanes = std::min<int64_t>(16, M - m0);
    for (int64_t c = 0; c < C; ++c) {
      double g[9][16] = {};  // lanes past M stay zero
      for (int64_t l = 0; l < lanes; ++l)
        for (int t = 0; t < 9; ++t) g[t][l] = w[((m0 + l) * C + c) * 9 + t];
      double gg[A][3][16];  // G g
      for (int i = 0; i < A; ++i)
        for (int k = 0; k < 3; ++k)
          for (int l = 0; l < 16; ++l) gg[i][k][l] = G[i][0] * g[k][l] + G[i][1] * g[3 + k][l] + G[i][2] * g[6 + k][l];
      for (int i = 0; i < A; ++i)
        for (int k = 0; k < A; ++k) {
          float* dst = u + (((i * A + k) * panels + q) * K + c) * 16;
          for (int l = 0; l < 16; ++l)
            dst[l] = float(gg[i][0][l] * G[k][0] + gg[i][1][l] * G[k][1] + gg[i][2][l] * G[k][2]);
        }
    }
  }
}

// How run() splits the work: blocks of tiles, each with a scratch of
// 36 x tiles x (C + M) floats within about 256 KiB of L2 but at least 12
// tiles (with AVX2's 6-row GEMM tile, two per pass over U: a little faster
// than 6 on the ResNet shapes; AVX-512's tile has 12 rows), a multiple of the
// GEMM's row tile, their count a multiple of the threads so that each gets as
// many; and when there are too few tiles for every thread to fill a GEMM row
// tile, slices of the output channels too (each thread then reads only its
// part of U).
struct WorkSplit {
  int64_t tile_block = 1, blocks = 1, m_slices = 1;
};

WorkSplit split_work(int64_t points, int64_t tiles, int64_t in_floats, int64_t m_pad, int threads, int64_t row_tile) {
  const int64_t forced = settings().winograd_tiles;  // tuning only
  WorkSplit w;
  const int64_t cache_rows =
      forced > 0 ? forced
                 : std::clamp<int64_t>((256 * 1024 / 4) / (points * (in_floats + m_pad)) / row_tile * row_tile, 12, 96);
  const int64_t panels = m_pad / 16;
  if (threads > 1 && tiles < row_tile * threads && panels >= threads) {
    w.m_slices = threads;
    w.blocks = (tiles + cache_rows - 1) / cache_rows;
  } else {
    w.blocks = (tiles + cache_rows - 1) / cache_rows;
    w.blocks = (w.blocks + threads - 1) / threads * threads;
    w.blocks = std::min(w.blocks, tiles);
  }
  w.tile_block = (tiles + w.blocks - 1) / w.blocks;
  w.blocks = (tiles + w.tile_block - 1) / w.tile_block;
  return w;
}

}  // namespace

int64_t WinogradF32Conv::block() {
  switch (cpu_isa_selected()) {
    case CpuIsa::kAvx512: return 16;
    case CpuIsa::kAvx2: return 8;
    case CpuIsa::kScalar: break;
  }
  return 0;
}

bool WinogradF32Conv::available() { return block() != 0; }

bool WinogradF32Conv::supports(int64_t kh, int64_t kw, int64_t stride_h, int64_t stride_w, int64_t dil_h, int64_t dil_w,
                               int64_t group, const std::vector<int64_t>& pads_begin,
                               const std::vector<int64_t>& pads_end) {
  if (kh != 3 || kw != 3 || stride_h != 1 || stride_w != 1 || dil_h != 1 || dil_w != 1 || group != 1) return false;
  if (pads_begin.size() != 2 || pads_end.size() != 2) return false;
  for (int64_t p : pads_begin)
    if (p < 0 || p > 2) return false;
  for (int64_t p : pads_end)
    if (p < 0 || p > 2) return false;
  return true;
}

WinogradF32Conv::WinogradF32Conv(const float* w, const float* bias, int64_t C, int64_t M,
                                 std::vector<EpilogueStep> epilogue, int tile)
    : C_(C),
      M_(M),
      block_(block()),
      in_blocks_((C + block_ - 1) / block_),
      m_pad_((M + 15) / 16 * 16),
      tile_(tile == 2 ? 2 : 4),
      epilogue_(std::move(epilogue)) {
  const int64_t K = in_blocks_ * block_, panels = m_pad_ / 16;
  const int alpha = tile_ + 2;
  const int64_t n = alpha * alpha * K * m_pad_;
  float* u = aligned_floats(n);
  u_owner_ =
      std::shared_ptr<const void>(u, [](const void* p) { free_floats(static_cast<float*>(const_cast<void*>(p))); });
  u_ = u;
  std::memset(u, 0, size_t(n) * sizeof(float));
  if (tile_ == 2)
    transform_weights<4>(kG2, w, C, M, K, panels, u);
  else
    transform_weights<6>(kG4, w, C, M, K, panels, u);
  set_bias_and_epilogue(bias);
}

WinogradF32Conv::WinogradF32Conv(std::shared_ptr<const void> owner, const float* u, size_t floats, const float* bias,
                                 int64_t C, int64_t M, std::vector<EpilogueStep> epilogue, int tile)
    : C_(C),
      M_(M),
      block_(block()),
      in_blocks_((C + block_ - 1) / block_),
      m_pad_((M + 15) / 16 * 16),
      tile_(tile == 2 ? 2 : 4),
      u_owner_(std::move(owner)),
      u_(u),
      epilogue_(std::move(epilogue)) {
  if (floats != transformed_floats())
    throw Error("Winograd weights of " + std::to_string(floats) + " floats, expected " +
                std::to_string(transformed_floats()) + " for C=" + std::to_string(C) + ", M=" + std::to_string(M));
  set_bias_and_epilogue(bias);
}

size_t WinogradF32Conv::transformed_floats() const {
  const int64_t alpha = tile_ + 2;
  return size_t(alpha * alpha * in_blocks_ * block_ * m_pad_);
}

void WinogradF32Conv::set_bias_and_epilogue(const float* bias) {
  bias_.assign(size_t(m_pad_), 0.0f);
  if (bias) std::copy(bias, bias + M_, bias_.begin());
  // ReLU and Clip run as a clamp in the output loop; anything else as a call
  // on each stored row of a tile.
  if (epilogue_.size() == 1 && epilogue_[0].fn == &kEpilogueRelu) {
    clamp_ = true;
    lo_ = 0;
    hi_ = std::numeric_limits<float>::infinity();
    epilogue_.clear();
  } else if (epilogue_.size() == 1 && epilogue_[0].fn == &kEpilogueClip) {
    clamp_ = true;
    lo_ = epilogue_[0].alpha;
    hi_ = epilogue_[0].beta;
    epilogue_.clear();
  }
}

namespace {

// How many parts run() splits its work into on `threads`, and each part's
// scratch in floats.
struct RunSplit {
  WorkSplit w;
  int64_t tiles = 0, parts = 0, scratch_floats = 0;
};

RunSplit run_split(const WinogradF32Geometry& g, int tile, int64_t block, int64_t in_blocks, int64_t m_pad,
                   int threads) {
  RunSplit r;
  const int64_t tiles_h = (g.OH + tile - 1) / tile, tiles_w = (g.OW + tile - 1) / tile;
  r.tiles = g.N * tiles_h * tiles_w;
  if (r.tiles == 0) return r;
  r.w = split_work((tile + 2) * (tile + 2), r.tiles, in_blocks * block, m_pad, threads, block == 16 ? 12 : 6);
  r.parts = std::min<int64_t>(threads, r.w.blocks * r.w.m_slices);
  WinogradF32Job j;
  j.tile = tile;
  j.tile_block = r.w.tile_block;
  j.block = block;
  j.in_blocks = in_blocks;
  j.m_pad = m_pad;
  r.scratch_floats = winograd_f32_scratch_floats(j);
  return r;
}

// A part's scratch starts on a cache line.
int64_t part_stride_floats(int64_t floats) { return (floats + 15) / 16 * 16; }

}  // namespace

size_t WinogradF32Conv::workspace_bytes(const WinogradF32Geometry& g, ThreadPool* pool) const {
  const RunSplit r = run_split(g, tile_, block_, in_blocks_, m_pad_, pool ? pool->num_threads() : 1);
  return static_cast<size_t>(r.parts * part_stride_floats(r.scratch_floats)) * sizeof(float);
}

void WinogradF32Conv::run(const WinogradF32Geometry& g, const float* x, float* y, ThreadPool* pool, const float* sum,
                          void* workspace) const {
  WinogradF32Job j;
  j.H = g.H;
  j.W = g.W;
  j.OH = g.OH;
  j.OW = g.OW;
  j.pad_top = g.pad_top;
  j.pad_left = g.pad_left;
  j.tile = tile_;
  j.tiles_h = (g.OH + tile_ - 1) / tile_;
  j.tiles_w = (g.OW + tile_ - 1) / tile_;
  j.block = block_;
  j.in_blocks = in_blocks_;
  j.out_blocks = (M_ + block_ - 1) / block_;
  j.m_pad = m_pad_;
  j.m_tail = M_ % block_;
  j.x = x;
  j.y = y;
  j.u = u_;
  j.bias = bias_.data();
  j.sum = sum;
  j.clamp = clamp_;
  j.lo = lo_;
  j.hi = hi_;
  if (!epilogue_.empty()) {
    j.epilogue = run_epilogue;
    j.epilogue_ctx = &epilogue_;
  }
  const RunSplit r = run_split(g, tile_, block_, in_blocks_, m_pad_, pool ? pool->num_threads() : 1);
  const int64_t tiles = r.tiles;
  if (tiles == 0) return;
  const WorkSplit& w = r.w;
  j.tile_block = w.tile_block;
  const int64_t panels = m_pad_ / 16, items = w.blocks * w.m_slices, parts = r.parts;
  const int64_t stride = part_stride_floats(r.scratch_floats);
  std::unique_ptr<float, void (*)(float*)> own(nullptr, free_floats);
  float* scratch = static_cast<float*>(workspace);
  if (!scratch) {  // no run scratch given (tests, benchmarks): this call's own
    own.reset(aligned_floats(parts * stride));
    scratch = own.get();
  }
  parallel_for(pool, parts, [&](int64_t begin, int64_t end) {
    for (int64_t part = begin; part < end; ++part) {
      float* s = scratch + part * stride;
      for (int64_t i = part * items / parts; i < (part + 1) * items / parts; ++i) {
        const int64_t b = i / w.m_slices, slice = i % w.m_slices;
        (block_ == 16 ? winograd_f32_tiles_avx512 : winograd_f32_tiles_avx2)(
            j, b * j.tile_block, std::min(tiles, (b + 1) * j.tile_block), slice * panels / w.m_slices,
            (slice + 1) * panels / w.m_slices, s);
      }
    }
  });
}

WinogradMode winograd_mode() {
  switch (settings().winograd) {
    case Settings::Winograd::kOff: return WinogradMode::kOff;
    case Settings::Winograd::kForce: return WinogradMode::kForce;
    case Settings::Winograd::kAuto: break;
  }
  return WinogradMode::kAuto;
}

bool winograd_f32_wins(int64_t N, int64_t C, int64_t M, int64_t OH, int64_t OW) {
  // Speed, measured on Zen 3 (AVX2, one thread) against oneDNN 2.6's
  // jit:avx2 direct convolution (docs/kernels.md): Winograd is 1.3x to 3x
  // faster on every 3x3 layer of the CNN zoo down to C16 and 7x7 outputs
  // (4 tiles); it ties with 8 channels and is 3x slower on a single tile (a
  // 3x3 output of C512: U, 4x the weights, streamed for one tile).
  // Accuracy: its transforms add a rounding error of about 1e-6 of the
  // terms' magnitudes per layer whatever C is, while the direct sum's own
  // error grows with C; with C = 32 (Inception-v3's 147x147 stem) that
  // amplifies to 1.2e-4 relative L2 at the output, over kiln's 1e-4
  // budget, so small-C layers (also those it speeds up least) stay direct.
  // Memory: the transformed weights are 4x the 3x3 ones. On 7x7 outputs (4
  // tiles an image: ResNet's last stage, 512 channels, 38 MB a conv) it
  // gains least (1.5x) and costs most, and would lift ResNet-50's peak
  // memory from 180 to 310 MB: those stay direct, whatever the batch.
  // The batch does not enter the choice, so that a conv's kernel picks once
  // for every batch size and keeps only the weights that one needs.
  static_cast<void>(N);
  const int64_t tiles_per_image = ((OH + 3) / 4) * ((OW + 3) / 4);
  return winograd_f32_accurate_enough(C, OH, OW) && M >= 16 && tiles_per_image >= 9;
}

bool winograd_f32_accurate_enough(int64_t C, int64_t OH, int64_t OW) {
  // Small C is fine on maps up to 56x56 (SqueezeNet's 16-64 channel expand
  // convs at 55x55 and below: 1.3x faster, zoo error unchanged); it is the
  // large 147x147 map of Inception-v3's C32 stem that amplifies the error.
  return C >= 64 || (C >= 16 && OH * OW <= 56 * 56);
}

}  // namespace kiln
