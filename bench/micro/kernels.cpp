// Kernel micro-benchmarks, one core: the FMA peak measured here, kiln's
// packed GEMM, and the main convolutions of ResNet-50 and MobileNetV2 both
// through kiln's own NCHW kernels (im2col + GEMM, direct depthwise) and
// through oneDNN in the blocked layout, which is what the layout pass runs;
// and the 3x3 stride-1 convolutions of the CNN zoo through oneDNN and through
// kiln's Winograd F(4x4, 3x3), which is where winograd_f32_wins() comes from.
// Every benchmark reports GFLOP/s ("FLOPS" counter) and its share of the
// peak ("peak_frac"); see docs/benchmarks.md.
//
//   build/bench/micro/kiln_microbench [--benchmark_filter=Conv]
#include <benchmark/benchmark.h>

#include <cstdio>
#include <ctime>
#include <dnnl.hpp>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu/binary_f32.h"
#include "kernels/cpu/conv_f32.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/dnnl_glue.h"
#include "kernels/cpu/gemm_f32.h"
#include "kernels/cpu/pool_f32.h"
#include "kernels/cpu/vec_math_f32.h"
#include "kernels/cpu/winograd_f32.h"

namespace kiln::bench {

float fma_chains_avx2(int64_t iterations);

namespace {

std::vector<float> random_floats(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// FLOP/s of one core's FMA units, measured once on this thread's CPU time
// (like the benchmarks' rates, so a busy machine skews neither); needs AVX2,
// 0 otherwise.
double fma_peak_flops() {
  static const double peak = [] {
    if (cpu_isa_supported() < CpuIsa::kAvx2) return 0.0;
    const int64_t iters = 20'000'000;
    double best = 0;
    for (int rep = 0; rep < 3; ++rep) {
      const double t0 = thread_cpu_seconds();
      benchmark::DoNotOptimize(fma_chains_avx2(iters));
      const double s = thread_cpu_seconds() - t0;
      best = std::max(best, double(iters) * 12 * 8 * 2 / s);
    }
    return best;
  }();
  return peak;
}

void report(benchmark::State& state, double flops_per_iteration) {
  state.counters["FLOPS"] = benchmark::Counter(flops_per_iteration, benchmark::Counter::kIsIterationInvariantRate,
                                               benchmark::Counter::kIs1000);
  const double peak = fma_peak_flops();
  if (peak > 0) {
    state.counters["peak_frac"] =
        benchmark::Counter(flops_per_iteration / peak, benchmark::Counter::kIsIterationInvariantRate);
  }
}

void BM_FmaPeak(benchmark::State& state) {
  if (cpu_isa_supported() < CpuIsa::kAvx2) {
    state.SkipWithError("no AVX2");
    return;
  }
  const int64_t iters = 1'000'000;
  for (auto _ : state) benchmark::DoNotOptimize(fma_chains_avx2(iters));
  report(state, double(iters) * 12 * 8 * 2);
}
BENCHMARK(BM_FmaPeak);

// C[M, N] = A[M, K] * B[K, N], B packed ahead like a weight; range(3) is the
// thread count (with more than one, rates are per wall-clock second).
void BM_Gemm(benchmark::State& state) {
  const int64_t M = state.range(0), N = state.range(1), K = state.range(2);
  const int threads = static_cast<int>(state.range(3));
  auto a = random_floats(size_t(M * K), 1), b = random_floats(size_t(K * N), 2);
  std::vector<float> c(size_t(M * N));
  auto packed = PackedMatrixF32::pack(PackedMatrixF32::Side::kB, b.data(), N, false, K, N, gemm_f32_default_kernel());
  std::unique_ptr<ThreadPool> pool = threads > 1 ? std::make_unique<ThreadPool>(threads) : nullptr;
  for (auto _ : state) {
    gemm_f32(M, N, K, 1.0f, {a.data(), K}, {b.data(), N, false, packed.get()}, 0.0f, c.data(), N, pool.get());
    benchmark::ClobberMemory();
  }
  report(state, 2.0 * M * N * K);
}

// The same product through oneDNN's matmul (B in the layout it picks,
// reordered once), for the ratio in the same run.
void BM_GemmOneDnn(benchmark::State& state) {
  using dnnl::memory;
  const int64_t M = state.range(0), N = state.range(1), K = state.range(2);
  const int threads = static_cast<int>(state.range(3));
  const auto f32 = memory::data_type::f32;
  dnnl_glue::use_threads(threads);
  memory::desc ad({M, K}, f32, memory::format_tag::ab), bd({K, N}, f32, memory::format_tag::any),
      cd({M, N}, f32, memory::format_tag::ab);
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(ad, bd, cd), dnnl_glue::engine());
  auto a = random_floats(size_t(M * K), 1), b = random_floats(size_t(K * N), 2);
  std::vector<float> c(size_t(M * N));
  memory am(ad, dnnl_glue::engine(), a.data()), cm(cd, dnnl_glue::engine(), c.data());
  memory b_plain({{K, N}, f32, memory::format_tag::ab}, dnnl_glue::engine(), b.data());
  memory bm(pd.weights_desc(), dnnl_glue::engine());
  dnnl_glue::execute(dnnl::reorder(b_plain, bm), {{DNNL_ARG_FROM, b_plain}, {DNNL_ARG_TO, bm}}, threads);
  dnnl::matmul mm(pd);
  for (auto _ : state)
    dnnl_glue::execute(mm, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}}, threads);
  report(state, 2.0 * M * N * K);
  state.SetLabel(pd.impl_info_str());
}

// Shapes: square; ViT-B/16 at batch 1 (M = 197) and 8 (M = 1576); the
// transformer_encoder's projections (M = 128..512, N = K = 512); the
// ResNet-50 classifier at batch 1 (a GEMV); LSTM/GRU steps (M = batch rows,
// N = 4 * hidden, K = hidden).
constexpr int64_t kGemmShapes[][3] = {{256, 256, 256},  {1024, 1024, 1024}, {197, 768, 768},   {197, 3072, 768},
                                      {197, 768, 3072}, {1576, 768, 768},   {1576, 3072, 768}, {128, 512, 512},
                                      {512, 512, 512},  {1, 1000, 2048},    {1, 256, 64},      {4, 512, 128},
                                      {8, 1024, 256},   {2, 2048, 512},     {8, 2048, 512}};
void gemm_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "N", "K", "threads"});
  for (const auto& s : kGemmShapes) b->Args({s[0], s[1], s[2], 1});
}
// Two threads on a few of them, timed by the wall clock.
void gemm_args_2t(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "N", "K", "threads"});
  for (int i : {2, 5, 8, 9, 12}) b->Args({kGemmShapes[i][0], kGemmShapes[i][1], kGemmShapes[i][2], 2});
}
BENCHMARK(BM_Gemm)->Apply(gemm_args);
BENCHMARK(BM_GemmOneDnn)->Apply(gemm_args);
BENCHMARK(BM_Gemm)->Apply(gemm_args_2t)->UseRealTime();
BENCHMARK(BM_GemmOneDnn)->Apply(gemm_args_2t)->UseRealTime();

struct ConvShape {
  int64_t c, h, m, k, stride, group;
};
// ResNet-50 (batch 1): stem, bottleneck 1x1 / 3x3 of each stage.
// MobileNetV2: expand 1x1, depthwise 3x3 s1 and s2, project 1x1, head.
const ConvShape kConvs[] = {
    {3, 224, 64, 7, 2, 1},  {64, 56, 64, 1, 1, 1},   {64, 56, 64, 3, 1, 1},     {64, 56, 256, 1, 1, 1},
    {256, 56, 64, 1, 1, 1}, {128, 28, 128, 3, 1, 1}, {256, 14, 256, 3, 1, 1},   {1024, 14, 256, 1, 1, 1},
    {512, 7, 512, 3, 1, 1}, {24, 56, 144, 1, 1, 1},  {144, 56, 144, 3, 1, 144}, {144, 56, 144, 3, 2, 144},
    {144, 56, 24, 1, 1, 1}, {320, 7, 1280, 1, 1, 1},
};

double conv_flops(const ConvShape& s) {
  const int64_t oh = (s.h + 2 * (s.k / 2) - s.k) / s.stride + 1;
  return 2.0 * s.m * oh * oh * (s.c / s.group) * s.k * s.k;
}

void BM_ConvKilnNchw(benchmark::State& state) {
  const ConvShape& cs = kConvs[state.range(0)];
  Conv2dF32Shape s;
  s.C = cs.c;
  s.H = s.W = cs.h;
  s.M = cs.m;
  s.KH = s.KW = cs.k;
  s.stride_h = s.stride_w = cs.stride;
  s.pad_h = s.pad_w = cs.k / 2;
  s.group = cs.group;
  s.OH = s.OW = (cs.h + 2 * s.pad_h - cs.k) / cs.stride + 1;
  auto x = random_floats(size_t(s.C * s.H * s.W), 1), w = random_floats(size_t(s.M * (s.C / s.group) * cs.k * cs.k), 2);
  std::vector<float> y(size_t(s.M * s.OH * s.OW));
  auto packed = s.depthwise() ? nullptr : pack_conv_weights_f32(w.data(), s.M, s.group, (s.C / s.group) * cs.k * cs.k);
  for (auto _ : state) {
    conv2d_f32(s, x.data(), w.data(), packed.get(), nullptr, y.data(), nullptr);
    benchmark::ClobberMemory();
  }
  report(state, conv_flops(cs));
  state.SetLabel("C" + std::to_string(cs.c) + " " + std::to_string(cs.h) + "x" + std::to_string(cs.h) + " M" +
                 std::to_string(cs.m) + " k" + std::to_string(cs.k) + " s" + std::to_string(cs.stride) +
                 (cs.group > 1 ? " dw" : ""));
}

void BM_ConvOneDnnBlocked(benchmark::State& state) {
  using dnnl::memory;
  const ConvShape& cs = kConvs[state.range(0)];
  const int64_t block = dnnl_glue::channel_block(), pad = cs.k / 2;
  const int64_t oh = (cs.h + 2 * pad - cs.k) / cs.stride + 1;
  const auto f32 = memory::data_type::f32;
  const auto tag = dnnl_glue::blocked_tag(block);
  dnnl_glue::use_threads(1);
  memory::desc src({1, cs.c, cs.h, cs.h}, f32, cs.c < block ? memory::format_tag::nchw : tag);
  memory::desc wd = cs.group == 1 ? memory::desc({cs.m, cs.c, cs.k, cs.k}, f32, memory::format_tag::any)
                                  : memory::desc({cs.group, cs.m / cs.group, cs.c / cs.group, cs.k, cs.k}, f32,
                                                 memory::format_tag::any);
  memory::desc dst({1, cs.m, oh, oh}, f32, tag);
  dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src, wd,
                                    dst, {cs.stride, cs.stride}, {pad, pad}, {pad, pad});
  dnnl::convolution_forward::primitive_desc pd(d, dnnl_glue::engine());
  memory sm(pd.src_desc(), dnnl_glue::engine()), wm(pd.weights_desc(), dnnl_glue::engine()),
      dm(pd.dst_desc(), dnnl_glue::engine());
  dnnl::convolution_forward conv(pd);
  for (auto _ : state) dnnl_glue::execute(conv, {{DNNL_ARG_SRC, sm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, dm}}, 1);
  report(state, conv_flops(cs));
  state.SetLabel(pd.impl_info_str());
}

void conv_args(benchmark::internal::Benchmark* b) {
  b->ArgName("shape");
  for (size_t i = 0; i < std::size(kConvs); ++i) b->Arg(int64_t(i));
}
BENCHMARK(BM_ConvKilnNchw)->Apply(conv_args);
BENCHMARK(BM_ConvOneDnnBlocked)->Apply(conv_args);

// 3x3 stride-1 convolutions, blocked layout: oneDNN's direct convolution
// against Winograd F(4x4, 3x3). GFLOP/s count the direct convolution's FLOPs
// for both, so the rates compare times.
struct Conv3x3Shape {
  int64_t n, c, h, m, pad;
  const char* model;
};
const Conv3x3Shape k3x3Convs[] = {
    {1, 64, 56, 64, 1, "resnet"},      {1, 128, 28, 128, 1, "resnet"},    {1, 256, 14, 256, 1, "resnet"},
    {1, 512, 7, 512, 1, "resnet"},     {8, 64, 56, 64, 1, "resnet b8"},   {8, 256, 14, 256, 1, "resnet b8"},
    {8, 512, 7, 512, 1, "resnet b8"},  {1, 16, 55, 64, 1, "squeezenet"},  {1, 32, 27, 128, 1, "squeezenet"},
    {1, 48, 13, 192, 1, "squeezenet"}, {1, 64, 13, 256, 1, "squeezenet"}, {1, 128, 56, 32, 1, "densenet"},
    {1, 128, 28, 32, 1, "densenet"},   {1, 128, 14, 32, 1, "densenet"},   {1, 128, 7, 32, 1, "densenet"},
    {1, 64, 56, 192, 1, "googlenet"},  {1, 96, 28, 128, 1, "googlenet"},  {1, 16, 28, 32, 1, "googlenet"},
    {1, 128, 28, 192, 1, "googlenet"}, {1, 96, 14, 208, 1, "googlenet"},  {1, 160, 14, 320, 1, "googlenet"},
    {1, 160, 7, 320, 1, "googlenet"},  {1, 192, 7, 384, 1, "googlenet"},  {1, 32, 149, 32, 0, "inception3"},
    {1, 32, 147, 64, 1, "inception3"}, {1, 80, 73, 192, 0, "inception3"}, {1, 64, 35, 96, 1, "inception3"},
    {1, 96, 35, 96, 1, "inception3"},  {1, 448, 8, 384, 1, "inception3"},
};

double conv3x3_flops(const Conv3x3Shape& s) {
  const int64_t o = s.h + 2 * s.pad - 2;
  return 2.0 * s.n * s.m * o * o * s.c * 9;
}

std::string conv3x3_label(const Conv3x3Shape& s) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%s N%lld C%lld %lldx%lld M%lld p%lld", s.model, (long long)s.n, (long long)s.c,
                (long long)s.h, (long long)s.h, (long long)s.m, (long long)s.pad);
  return buf;
}

void BM_Conv3x3OneDnn(benchmark::State& state) {
  using dnnl::memory;
  const Conv3x3Shape& cs = k3x3Convs[state.range(0)];
  const int64_t o = cs.h + 2 * cs.pad - 2;
  const auto f32 = memory::data_type::f32;
  const auto tag = dnnl_glue::blocked_tag(dnnl_glue::channel_block());
  dnnl_glue::use_threads(1);
  memory::desc src({cs.n, cs.c, cs.h, cs.h}, f32, tag), dst({cs.n, cs.m, o, o}, f32, tag);
  memory::desc wd({cs.m, cs.c, 3, 3}, f32, memory::format_tag::any), bd({cs.m}, f32, memory::format_tag::a);
  dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src, wd,
                                    bd, dst, {1, 1}, {cs.pad, cs.pad}, {cs.pad, cs.pad});
  dnnl::post_ops po;
  po.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
  dnnl::primitive_attr attr;
  attr.set_post_ops(po);
  dnnl::convolution_forward::primitive_desc pd(d, attr, dnnl_glue::engine());
  memory sm(pd.src_desc(), dnnl_glue::engine()), wm(pd.weights_desc(), dnnl_glue::engine()),
      bm(pd.bias_desc(), dnnl_glue::engine()), dm(pd.dst_desc(), dnnl_glue::engine());
  dnnl::convolution_forward conv(pd);
  for (auto _ : state)
    dnnl_glue::execute(conv, {{DNNL_ARG_SRC, sm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_BIAS, bm}, {DNNL_ARG_DST, dm}}, 1);
  report(state, conv3x3_flops(cs));
  state.SetLabel(conv3x3_label(cs) + " " + pd.impl_info_str());
}

// range(1): the output tile, 4 for F(4x4, 3x3) (what kiln runs), 2 for F(2x2, 3x3).
void BM_Conv3x3Winograd(benchmark::State& state) {
  const Conv3x3Shape& cs = k3x3Convs[state.range(0)];
  const int tile = int(state.range(1));
  if (!WinogradF32Conv::available()) {
    state.SkipWithError("no AVX2 or AVX-512");
    return;
  }
  const int64_t B = WinogradF32Conv::block(), cb = (cs.c + B - 1) / B, mb = (cs.m + B - 1) / B;
  WinogradF32Geometry g;
  g.N = cs.n;
  g.H = g.W = cs.h;
  g.pad_top = g.pad_left = cs.pad;
  g.OH = g.OW = cs.h + 2 * cs.pad - 2;
  auto x = random_floats(size_t(cs.n * cb * cs.h * cs.h * B), 1);
  auto w = random_floats(size_t(cs.m * cs.c * 9), 2), b = random_floats(size_t(cs.m), 3);
  std::vector<float> y(size_t(cs.n * mb * g.OH * g.OW * B));
  WinogradF32Conv conv(w.data(), b.data(), cs.c, cs.m, {{&kEpilogueRelu}}, tile);
  for (auto _ : state) {
    conv.run(g, x.data(), y.data(), nullptr);
    benchmark::ClobberMemory();
  }
  report(state, conv3x3_flops(cs));
  state.SetLabel(conv3x3_label(cs) + (tile == 4 && winograd_f32_wins(cs.n, cs.c, cs.m, g.OH, g.OW) ? " picked" : ""));
}

void conv3x3_args(benchmark::internal::Benchmark* b) {
  b->ArgName("shape");
  for (size_t i = 0; i < std::size(k3x3Convs); ++i) b->Arg(int64_t(i));
}
void winograd_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"shape", "tile"});
  for (int64_t tile : {4, 2})
    for (size_t i = 0; i < std::size(k3x3Convs); ++i) b->Args({int64_t(i), tile});
}
BENCHMARK(BM_Conv3x3OneDnn)->Apply(conv3x3_args);
BENCHMARK(BM_Conv3x3Winograd)->Apply(winograd_args);

// The sweep behind the conv rules (docs/kernels.md, "The channel-width and group sweep"):
// 3x3 stride-1 convs, C = M channels in groups of width `gw` (C: ungrouped, 1:
// depthwise), over widths 8-2048 and sizes 7-112 at about constant work, on
// kiln's NCHW kernels, oneDNN's blocked layout and oneDNN's NHWC layout; a
// failed primitive (no implementation) is skipped. range: c, h, gw, impl
// (0 kiln, 1 oneDNN blocked, 2 oneDNN NHWC).
void BM_ConvSweep(benchmark::State& state) {
  using dnnl::memory;
  const int64_t c = state.range(0), h = state.range(1), gw = state.range(2), impl = state.range(3);
  const int64_t group = c / gw;
  const ConvShape cs{c, h, c, 3, 1, group};
  const double flops = conv_flops(cs);
  auto x = random_floats(size_t(c * h * h), 1), w = random_floats(size_t(c * gw * 9), 2);
  std::vector<float> y(size_t(c * h * h));
  std::string label =
      "C" + std::to_string(c) + " " + std::to_string(h) + "x" + std::to_string(h) + " width " + std::to_string(gw);
  if (impl == 0) {
    Conv2dF32Shape s;
    s.C = s.M = c;
    s.H = s.W = s.OH = s.OW = h;
    s.KH = s.KW = 3;
    s.pad_h = s.pad_w = 1;
    s.group = group;
    auto packed = s.depthwise() ? nullptr : pack_conv_weights_f32(w.data(), c, group, gw * 9);
    for (auto _ : state) {
      conv2d_f32(s, x.data(), w.data(), packed.get(), nullptr, y.data(), nullptr);
      benchmark::ClobberMemory();
    }
    report(state, flops);
    state.SetLabel(label + " kiln");
    return;
  }
  const auto f32 = memory::data_type::f32;
  const auto tag = impl == 1 ? dnnl_glue::blocked_tag(dnnl_glue::channel_block()) : memory::format_tag::nhwc;
  dnnl_glue::use_threads(1);
  memory::desc src({1, c, h, h}, f32, tag), dst({1, c, h, h}, f32, tag);
  memory::desc wd = group == 1 ? memory::desc({c, c, 3, 3}, f32, memory::format_tag::any)
                               : memory::desc({group, c / group, gw, 3, 3}, f32, memory::format_tag::any);
  try {
    dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src, wd,
                                      dst, {1, 1}, {1, 1}, {1, 1});
    dnnl::convolution_forward::primitive_desc pd(d, dnnl_glue::engine());
    memory sm(pd.src_desc(), dnnl_glue::engine()), wm(pd.weights_desc(), dnnl_glue::engine()),
        dm(pd.dst_desc(), dnnl_glue::engine());
    dnnl::convolution_forward conv(pd);
    for (auto _ : state) dnnl_glue::execute(conv, {{DNNL_ARG_SRC, sm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, dm}}, 1);
    report(state, flops);
    state.SetLabel(label + " " + pd.impl_info_str());
  } catch (const dnnl::error&) {
    state.SkipWithError("no oneDNN implementation");
  }
}

void conv_sweep_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"c", "h", "gw", "impl"});
  // Sizes chosen so that C * h stays near 1800-3600 (similar work per conv).
  const std::pair<int64_t, int64_t> sizes[] = {{8, 112}, {16, 112}, {24, 112}, {32, 56}, {48, 56},  {64, 56},
                                               {96, 28}, {128, 28}, {256, 14}, {512, 7}, {1024, 7}, {2048, 7}};
  for (auto [c, h] : sizes)
    for (int64_t gw : {c, int64_t(24), int64_t(8), int64_t(1)}) {
      if (gw > c || c % gw != 0) continue;
      if (gw == 24 && c == 24) continue;  // the same as ungrouped
      for (int64_t impl : {0, 1, 2}) b->Args({c, h, gw, impl});
    }
}
BENCHMARK(BM_ConvSweep)->Apply(conv_sweep_args);

// Every variant of the kernel-family lists (kernels/cpu/variants.h) that this
// CPU runs, registered from the lists themselves: a variant added to a list
// is benchmarked here with no new code. Rates in elements per second.
template <typename Run>
void register_variant(const std::string& name, int64_t elements, Run run) {
  benchmark::RegisterBenchmark(name.c_str(), [elements, run](benchmark::State& state) {
    for (auto _ : state) {
      run();
      benchmark::ClobberMemory();
    }
    state.counters["elements"] = benchmark::Counter(double(elements), benchmark::Counter::kIsIterationInvariantRate,
                                                    benchmark::Counter::kIs1000);
  });
}

[[maybe_unused]] const bool kVariantBenchmarks = [] {
  static const std::vector<float> a = random_floats(1 << 16, 7), b = random_floats(1 << 16, 8);
  static std::vector<float> y(1 << 16);
  for (const auto& v : kVecMathF32Variants)
    if (variant_runs_here(v)) {
      register_variant(std::string("BM_Variant/") + v.name + "/sigmoid", 1 << 16,
                       [fns = v.fn] { fns->sigmoid(a.data(), y.data(), 1 << 16); });
      register_variant(std::string("BM_Variant/") + v.name + "/gelu_erf", 1 << 16,
                       [fns = v.fn] { fns->gelu_erf(a.data(), y.data(), 1 << 16); });
    }
  for (const auto& v : kBinaryRowsF32Variants)
    if (variant_runs_here(v))
      register_variant(std::string("BM_Variant/") + v.name + "/add", 1 << 16,
                       [fn = v.fn] { fn(BinaryOpF32::kAdd, a.data(), 1, 256, b.data(), 1, 256, y.data(), 256, 256); });
  for (const auto& v : kDepthwiseChannelF32Variants)
    if (variant_runs_here(v))  // one 3x3 channel of 128 x 128, stride 1
      register_variant(std::string("BM_Variant/") + v.name + "/3x3", 128 * 128, [fn = v.fn] {
        fn(a.data(), 128, 128, b.data(), 3, 3, 1, 1, 1, 1, 1, 1, 0.0f, y.data(), 128, 128);
      });
  for (const auto& v : kPoolF32Variants)
    if (variant_runs_here(v))  // max 3x3 stride 2 over one 128 x 128 plane
      register_variant(std::string("BM_Variant/") + v.name + "/max3x3s2", 64 * 64, [fns = v.fn] {
        fns.plane(true, a.data(), 128, 128, 3, 3, 2, 2, 1, 1, 1, 1, -3.4e38f, y.data(), 64, 64);
      });
  return true;
}();

}  // namespace

}  // namespace kiln::bench

BENCHMARK_MAIN();
