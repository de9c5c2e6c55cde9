// Winograd F(4x4, 3x3) and F(2x2, 3x3) on the blocked layout
// (kernels/cpu/winograd_f32.h) against a plain double-precision direct
// convolution, and a conv chain run with and without it (KILN_WINOGRAD).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "core/settings.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/winograd_f32.h"
#include "kiln/session.h"
#include "model_builder.h"
#include "op_harness.h"

namespace kiln::test {
namespace {

struct WinoCase {
  int64_t n, c, m, h, w, pt, pl, pb, pr;
};

// y[n, m, oy, ox] = bias[m] + sum x[n, c, oy + i - pt, ox + k - pl] w[m, c, i, k], in double;
// *mag gets the sums of the terms' magnitudes, the scale of float rounding.
std::vector<double> direct_conv(const WinoCase& s, const std::vector<float>& x, const std::vector<float>& w,
                                const std::vector<float>& b, int64_t oh, int64_t ow, std::vector<double>* mag) {
  std::vector<double> y(size_t(s.n * s.m * oh * ow));
  mag->assign(y.size(), 0.0);
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t m = 0; m < s.m; ++m)
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          double acc = b[size_t(m)], sum_abs = std::abs(acc);
          for (int64_t c = 0; c < s.c; ++c)
            for (int64_t i = 0; i < 3; ++i)
              for (int64_t k = 0; k < 3; ++k) {
                const int64_t iy = oy + i - s.pt, ix = ox + k - s.pl;
                if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
                const double t = double(x[size_t(((n * s.c + c) * s.h + iy) * s.w + ix)]) *
                                 w[size_t(((m * s.c + c) * 3 + i) * 3 + k)];
                acc += t;
                sum_abs += std::abs(t);
              }
          y[size_t(((n * s.m + m) * oh + oy) * ow + ox)] = acc;
          (*mag)[size_t(((n * s.m + m) * oh + oy) * ow + ox)] = sum_abs;
        }
  return y;
}

// NCHW -> [N, ceil(C/B), H, W, B], padded channels zero; B: the block of
// the layout Winograd runs on (8 with AVX2, 16 with AVX-512).
std::vector<float> to_blocked(const std::vector<float>& v, int64_t n, int64_t c, int64_t h, int64_t w, int64_t B) {
  const int64_t cb = (c + B - 1) / B;
  std::vector<float> out(size_t(n * cb * h * w * B), 0.0f);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < c; ++j)
      for (int64_t p = 0; p < h * w; ++p)
        out[size_t(((i * cb + j / B) * h * w + p) * B + j % B)] = v[size_t((i * c + j) * h * w + p)];
  return out;
}

void check_case(const WinoCase& s, const std::vector<EpilogueStep>& epilogue, ThreadPool* pool, int tile = 4) {
  std::mt19937 rng(unsigned(s.c * 131 + s.m * 7 + s.h));
  std::uniform_real_distribution<float> u(-1, 1);
  auto fill = [&](size_t k) {
    std::vector<float> v(k);
    for (float& f : v) f = u(rng);
    return v;
  };
  const int64_t oh = s.h + s.pt + s.pb - 2, ow = s.w + s.pl + s.pr - 2;
  std::vector<float> x = fill(size_t(s.n * s.c * s.h * s.w)), w = fill(size_t(s.m * s.c * 9)), b = fill(size_t(s.m));
  std::vector<double> mag;
  std::vector<double> want = direct_conv(s, x, w, b, oh, ow, &mag);
  const int64_t B = WinogradF32Conv::block(), mb = (s.m + B - 1) / B;
  std::vector<float> xb = to_blocked(x, s.n, s.c, s.h, s.w, B), y(size_t(s.n * mb * oh * ow * B), NAN);
  WinogradF32Conv conv(w.data(), b.data(), s.c, s.m, epilogue, tile);
  WinogradF32Geometry g;
  g.N = s.n;
  g.H = s.h;
  g.W = s.w;
  g.pad_top = s.pt;
  g.pad_left = s.pl;
  g.OH = oh;
  g.OW = ow;
  conv.run(g, xb.data(), y.data(), pool);
  // F(4x4, 3x3)'s error (transforms with factors up to 8 in float) is a few
  // 1e-6 of the sum of the terms' magnitudes; the epilogues shrink errors.
  int bad = 0;
  double worst = 0;
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t m = 0; m < mb * B; ++m)
      for (int64_t p = 0; p < oh * ow; ++p) {
        const float got = y[size_t(((n * mb + m / B) * oh * ow + p) * B + m % B)];
        if (m >= s.m) {
          if (got != 0.0f && bad++ < 5) ADD_FAILURE() << "padded channel " << m << " holds " << got;
          continue;
        }
        const size_t at = size_t((n * s.m + m) * oh * ow + p);
        const double ref = apply_epilogue(epilogue, want[at]);
        worst = std::max(worst, std::abs(got - ref) / mag[at]);
        if (!(std::abs(got - ref) <= 1e-5 * mag[at]) && bad++ < 5)
          ADD_FAILURE() << "n " << n << " m " << m << " p " << p << ": " << got << " vs " << ref;
      }
  EXPECT_EQ(bad, 0) << "F(" << tile << "x" << tile << ", 3x3) N" << s.n << " C" << s.c << " M" << s.m << " " << s.h
                    << "x" << s.w << " pads " << s.pt << s.pl << s.pb << s.pr;
  ::testing::Test::RecordProperty("worst_relative_error", std::to_string(worst));
  if (std::getenv("KILN_WINOGRAD_TEST_VERBOSE"))
    printf("C%ld M%ld: worst error / sum|terms| %.3g\n", long(s.c), long(s.m), worst);
}

const WinoCase kCases[] = {
    {1, 8, 8, 8, 8, 1, 1, 1, 1},     {1, 16, 32, 13, 11, 1, 1, 1, 1},  // odd sizes: partial tiles
    {2, 5, 13, 9, 7, 0, 0, 0, 0},                                      // C, M not multiples of 8, batch 2, no padding
    {1, 12, 20, 3, 5, 1, 1, 1, 1},                                     // smaller than a tile
    {1, 3, 9, 3, 3, 0, 0, 0, 0},                                       // a 1x1 output
    {3, 24, 40, 10, 14, 0, 1, 1, 0},                                   // asymmetric pads
    {1, 64, 64, 17, 17, 1, 1, 1, 1}, {1, 130, 70, 6, 9, 2, 2, 2, 2},
    {2, 40, 48, 30, 26, 1, 1, 1, 1},  // 3 column panels (AVX-512: a pair and a single), row tiles and a tail
    {1, 17, 33, 21, 19, 1, 0, 0, 1},  // one lane past a 16-channel block in and out
};

// The kernel runs on the layout of the selected ISA (AVX2: 8-channel
// blocks, AVX-512: 16); none below AVX2.
bool cpu_runs_winograd() { return WinogradF32Conv::available(); }

TEST(Winograd, MatchesDirectConvolution) {
  if (!cpu_runs_winograd()) GTEST_SKIP() << "needs AVX2 or AVX-512";
  for (const WinoCase& s : kCases) check_case(s, {}, nullptr);
}

TEST(Winograd, F2x2MatchesDirectConvolution) {
  if (!cpu_runs_winograd()) GTEST_SKIP() << "needs AVX2 or AVX-512";
  ThreadPool pool(2);
  for (const WinoCase& s : kCases) {
    check_case(s, {}, nullptr, 2);
    check_case(s, {{&kEpilogueSigmoid}}, &pool, 2);
  }
}

TEST(Winograd, EpiloguesAndThreads) {
  if (!cpu_runs_winograd()) GTEST_SKIP() << "needs AVX2 or AVX-512";
  ThreadPool pool(2);
  const std::vector<std::vector<EpilogueStep>> epilogues = {
      {{&kEpilogueRelu}},
      {{&kEpilogueClip, -0.5f, 0.5f}},
      {{&kEpilogueSigmoid}},  // non-zero at 0: padded channels must stay 0
      {{&kEpilogueRelu}, {&kEpilogueTanh}},
  };
  for (const auto& e : epilogues)
    for (const WinoCase& s : kCases) check_case(s, e, &pool);
}

// Model `m` on input x (named "x"), in sessions with Winograd forced and off
// (2 threads): the outputs agree within Winograd's rounding, and differ in
// bits (equal bits would mean it did not run).
void expect_same_with_and_without(const onnx::ModelProto& m, const Tensor& x) {
  const std::string bytes = bytes_of(m);
  const Settings::Winograd saved = settings().winograd;
  std::vector<Tensor> out[2];
  for (int on = 0; on < 2; ++on) {
    settings_for_tests().winograd = on ? Settings::Winograd::kForce : Settings::Winograd::kOff;
    SessionOptions o;
    o.threads = 2;
    Session s = Session::load_bytes(bytes.data(), bytes.size(), o);
    out[on] = s.run({{"x", x}});
  }
  settings_for_tests().winograd = saved;
  EXPECT_TRUE(all_close(out[1][0], out[0][0], 1e-4, 1e-5));
  EXPECT_NE(to_f32(out[0][0]), to_f32(out[1][0]));
}

// A conv chain (3x3 pad 1 + Relu, 20 channels, odd size) through a session
// with and without Winograd.
TEST(Winograd, ConvChainSameWithAndWithout) {
  if (!WinogradF32Conv::available()) GTEST_SKIP() << "sessions run Winograd only with AVX2 or AVX-512 selected";
  std::mt19937 rng(5);
  expect_same_with_and_without(conv_chain_model(4, 20, 15), random_f32({2, 20, 15, 15}, rng));
}

// A (2+1)-D block: Conv 1x3x3 (pad 0,1,1, bias, Relu) then Conv 3x1x1 over
// x float[2, 20, 3, 11, 9]: the frame conv runs as a 2-D Winograd conv of
// 2 x 3 frames (20 and 24 channels: part of a channel block in and out),
// and gives what oneDNN's 3-D convolution gives.
onnx::ModelProto frames_conv_model() {
  onnx::ModelProto m = make_model();
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {2, 20, 3, 11, 9});
  *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {2, 16, 3, 11, 9});
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-0.3f, 0.3f);
  auto values = [&](size_t n) {
    std::vector<float> v(n);
    for (float& f : v) f = u(rng);
    return v;
  };
  *g->add_initializer() = float_tensor("w1", {24, 20, 1, 3, 3}, values(24 * 20 * 9));
  *g->add_initializer() = float_tensor("b1", {24}, values(24));
  *g->add_initializer() = float_tensor("w2", {16, 24, 3, 1, 1}, values(16 * 24 * 3));
  onnx::NodeProto c1 = make_node("Conv", {"x", "w1", "b1"}, {"c1"}, "frames");
  auto* pads = c1.add_attribute();
  pads->set_name("pads");
  pads->set_type(onnx::AttributeProto::INTS);
  for (int64_t p : {0, 1, 1, 0, 1, 1}) pads->add_ints(p);
  *g->add_node() = c1;
  *g->add_node() = make_node("Relu", {"c1"}, {"r1"}, "relu");
  onnx::NodeProto c2 = make_node("Conv", {"r1", "w2"}, {"y"}, "time");
  auto* tp = c2.add_attribute();
  tp->set_name("pads");
  tp->set_type(onnx::AttributeProto::INTS);
  for (int64_t p : {1, 0, 0, 1, 0, 0}) tp->add_ints(p);
  *g->add_node() = c2;
  return m;
}

TEST(Winograd, FrameConvOf3dModelSameWithAndWithout) {
  if (!WinogradF32Conv::available()) GTEST_SKIP() << "sessions run Winograd only with AVX2 or AVX-512 selected";
  std::mt19937 rng(9);
  expect_same_with_and_without(frames_conv_model(), random_f32({2, 20, 3, 11, 9}, rng));
}

}  // namespace
}  // namespace kiln::test
