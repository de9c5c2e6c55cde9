// Windows, DFT, STFT, MelWeightMatrix, Bernoulli and CausalConvWithState
// against plain references.
#include <cmath>
#include <complex>
#include <numbers>

#include <gtest/gtest.h>

#include "op_harness.h"

namespace kiln::test {

namespace {

constexpr double kPi = std::numbers::pi;
using cd = std::complex<double>;

Tensor scalar_i32(int32_t v) {
  Tensor t(DType::kInt32, {});
  t.data<int32_t>()[0] = v;
  return t;
}

// Naive DFT of a complex vector, length n (zero-padded / truncated).
std::vector<cd> ref_dft(const std::vector<cd>& x, int64_t n, bool inverse) {
  std::vector<cd> y(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) {
    cd s = 0;
    for (int64_t j = 0; j < n && j < static_cast<int64_t>(x.size()); ++j)
      s += x[static_cast<size_t>(j)] *
           std::polar(1.0, (inverse ? 2 : -2) * kPi * static_cast<double>(k * j) / static_cast<double>(n));
    y[static_cast<size_t>(k)] = inverse ? s / static_cast<double>(n) : s;
  }
  return y;
}

}  // namespace

TEST(Window, AllThreeWindowsBothModes) {
  struct W {
    const char* op;
    double a0, a1, a2;
  };
  for (W w : {W{"HannWindow", 0.5, 0.5, 0}, W{"HammingWindow", 25.0 / 46, 21.0 / 46, 0},
              W{"BlackmanWindow", 0.42, 0.5, 0.08}})
    for (int periodic : {0, 1}) {
      auto out =
          run_node({.op = w.op, .opset = 17, .inputs = {scalar_i32(7)}, .attrs = {{"periodic", attr_int(periodic)}}});
      ASSERT_EQ(out[0].shape(), Shape({7}));
      double N = periodic ? 7 : 6;
      for (int n = 0; n < 7; ++n)
        EXPECT_NEAR(out[0].data<float>()[n], w.a0 - w.a1 * std::cos(2 * kPi * n / N) + w.a2 * std::cos(4 * kPi * n / N),
                    1e-6)
            << w.op;
    }
  auto d = run_node({.op = "HannWindow",
                     .opset = 17,
                     .inputs = {make_i64({}, {4})},
                     .attrs = {{"output_datatype", attr_int(11)}},
                     .constant_inputs = true});
  EXPECT_EQ(d[0].dtype(), DType::kFloat64);
  EXPECT_NEAR(d[0].data<double>()[2], 1.0, 1e-12);
  auto e = run_node({.op = "HannWindow", .opset = 17, .inputs = {make_i64({}, {0})}});
  EXPECT_EQ(e[0].shape(), Shape({0}));
  EXPECT_THROW(run_node({.op = "HannWindow", .opset = 17, .inputs = {make_i64({}, {-3})}}), Error);
}

TEST(DFT, ForwardInverseOnesidedAgainstReference) {
  std::mt19937 rng(21);
  const int B = 2, L = 6, C = 3;
  Tensor xr = random_f32({B, L, C, 1}, rng);  // real, DFT along axis 1
  Tensor xc = random_f32({B, L, C, 2}, rng);  // complex
  for (int opset : {17, 20})
    for (int inverse : {0, 1})
      for (int onesided : {0, 1})
        for (bool complex_in : {false, true}) {
          if (onesided && inverse != static_cast<int>(complex_in)) continue;  // rfft: real in; irfft: complex in
          const Tensor& x = complex_in ? xc : xr;
          for (int64_t n : {int64_t{-1}, int64_t{8}, int64_t{4}}) {
            NodeSpec spec{.op = "DFT", .opset = opset, .inputs = {x}};
            if (opset == 17) spec.attrs["axis"] = attr_int(1);
            if (n > 0)
              spec.inputs.push_back(make_i64({}, {n}));
            else if (opset == 20)
              spec.inputs.push_back(std::nullopt);
            if (opset == 20) spec.inputs.push_back(make_i64({}, {-3}));  // == axis 1 of rank 4
            spec.attrs["inverse"] = attr_int(inverse);
            spec.attrs["onesided"] = attr_int(onesided);
            auto out = run_node(spec);
            bool irfft = inverse && onesided;
            int64_t N = n > 0 ? n : (irfft ? 2 * (L - 1) : L);
            int64_t out_len = onesided && !inverse ? N / 2 + 1 : N;
            ASSERT_EQ(out[0].shape(), Shape({B, out_len, C, irfft ? 1 : 2}));
            for (int b = 0; b < B; ++b)
              for (int c = 0; c < C; ++c) {
                std::vector<cd> sig;
                int ch = complex_in ? 2 : 1;
                for (int k = 0; k < L; ++k) {
                  const float* p = x.data<float>() + ((b * L + k) * C + c) * ch;
                  sig.emplace_back(p[0], complex_in ? p[1] : 0.0f);
                }
                if (irfft) {  // Hermitian extension of the first N/2+1 bins
                  std::vector<cd> full(static_cast<size_t>(N));
                  for (int64_t k = 0; k <= N / 2 && k < L; ++k)
                    full[static_cast<size_t>(k)] = sig[static_cast<size_t>(k)];
                  for (int64_t k = N / 2 + 1; k < N; ++k)
                    full[static_cast<size_t>(k)] = std::conj(full[static_cast<size_t>(N - k)]);
                  sig = full;
                }
                std::vector<cd> y = ref_dft(sig, N, inverse);
                for (int64_t k = 0; k < out_len; ++k) {
                  const float* p = out[0].data<float>() + ((b * out_len + k) * C + c) * (irfft ? 1 : 2);
                  EXPECT_NEAR(p[0], y[static_cast<size_t>(k)].real(), 1e-4);
                  if (!irfft) {
                    EXPECT_NEAR(p[1], y[static_cast<size_t>(k)].imag(), 1e-4);
                  }
                }
              }
          }
        }
}

TEST(DFT, RfftThenIrfftRoundTrips) {
  std::mt19937 rng(22);
  Tensor x = random_f32({3, 10, 1}, rng);
  auto f = run_node({.op = "DFT", .opset = 20, .inputs = {x}, .attrs = {{"onesided", attr_int(1)}}});
  EXPECT_EQ(f[0].shape(), Shape({3, 6, 2}));
  auto back = run_node(
      {.op = "DFT", .opset = 20, .inputs = {f[0]}, .attrs = {{"onesided", attr_int(1)}, {"inverse", attr_int(1)}}});
  EXPECT_TRUE(all_close(back[0], x, 1e-4, 1e-5));
}

TEST(DFT, BadAxisIsAnError) {
  std::mt19937 rng(23);
  Tensor x = random_f32({2, 4, 1}, rng);
  EXPECT_THROW(run_node({.op = "DFT", .opset = 17, .inputs = {x}, .attrs = {{"axis", attr_int(2)}}}), Error);
  EXPECT_THROW(run_node({.op = "DFT", .opset = 20, .inputs = {x, std::nullopt, make_i64({}, {-1})}}), Error);
  EXPECT_THROW(run_node({.op = "DFT", .opset = 20, .inputs = {random_f32({2, 4, 3}, rng)}}), Error);
}

TEST(STFT, FramesMatchDftOfWindowedSlices) {
  std::mt19937 rng(24);
  const int B = 2, L = 20, F = 6, step = 4;
  Tensor sig = random_f32({B, L, 1}, rng), win = random_f32({F}, rng);
  for (int onesided : {0, 1}) {
    auto out = run_node({.op = "STFT",
                         .opset = 17,
                         .inputs = {sig, make_i64({}, {step}), win, make_i64({}, {F})},
                         .attrs = {{"onesided", attr_int(onesided)}}});
    int frames = (L - F) / step + 1, bins = onesided ? F / 2 + 1 : F;
    ASSERT_EQ(out[0].shape(), Shape({B, frames, bins, 2}));
    for (int b = 0; b < B; ++b)
      for (int f = 0; f < frames; ++f) {
        std::vector<cd> s;
        for (int k = 0; k < F; ++k) s.emplace_back(sig.data<float>()[b * L + f * step + k] * win.data<float>()[k], 0.0);
        auto y = ref_dft(s, F, false);
        for (int k = 0; k < bins; ++k) {
          EXPECT_NEAR(out[0].data<float>()[((b * frames + f) * bins + k) * 2], y[static_cast<size_t>(k)].real(), 1e-4);
          EXPECT_NEAR(out[0].data<float>()[((b * frames + f) * bins + k) * 2 + 1], y[static_cast<size_t>(k)].imag(),
                      1e-4);
        }
      }
  }
  // Window length and frame_length disagree.
  EXPECT_THROW(run_node({.op = "STFT", .opset = 17, .inputs = {sig, make_i64({}, {step}), win, make_i64({}, {F + 1})}}),
               Error);
  EXPECT_THROW(run_node({.op = "STFT", .opset = 17, .inputs = {sig, make_i64({}, {0}), win}}), Error);
}

TEST(MelWeightMatrix, TrianglesPeakAtOneAndMatchReference) {
  auto out = run_node(
      {.op = "MelWeightMatrix",
       .opset = 17,
       .inputs = {scalar_i32(5), scalar_i32(32), scalar_i32(16000), make_f32({}, {100}), make_f32({}, {6000})}});
  ASSERT_EQ(out[0].shape(), Shape({17, 5}));
  // Reference: bin edges from mel-spaced frequencies, then triangles.
  auto mel = [](double f) { return 2595 * std::log10(1 + f / 700); };
  double lo = mel(100), hi = mel(6000), step = (hi - lo) / 7;
  std::vector<int> edge;
  for (int i = 0; i < 7; ++i)
    edge.push_back(static_cast<int>(std::floor(33 * 700 * (std::pow(10, (i * step + lo) / 2595) - 1) / 16000)));
  for (int m = 0; m < 5; ++m) {
    for (int k = 0; k < 17; ++k) {
      double want = 0;
      if (k >= edge[m] && k <= edge[m + 1] && edge[m + 1] > edge[m])
        want = double(k - edge[m]) / (edge[m + 1] - edge[m]);
      if (k == edge[m + 1] && edge[m + 1] == edge[m]) want = 1;
      if (k >= edge[m + 1] && k < edge[m + 2]) want = double(edge[m + 2] - k) / (edge[m + 2] - edge[m + 1]);
      EXPECT_NEAR(out[0].data<float>()[k * 5 + m], want, 1e-6) << "bin " << k << " mel " << m;
    }
  }
}

TEST(Bernoulli, ZeroOneAndExtremes) {
  Tensor p = make_f32({2, 3}, {0, 1, 0, 1, 0.5f, 0.5f});
  auto out = run_node({.op = "Bernoulli", .opset = 15, .inputs = {p}, .attrs = {{"seed", attr_float(3)}}});
  ASSERT_EQ(out[0].dtype(), DType::kFloat32);
  float* v = out[0].data<float>();
  EXPECT_EQ(v[0], 0);
  EXPECT_EQ(v[1], 1);
  EXPECT_EQ(v[2], 0);
  EXPECT_EQ(v[3], 1);
  EXPECT_TRUE(v[4] == 0 || v[4] == 1);
  auto b = run_node({.op = "Bernoulli", .opset = 22, .inputs = {p}, .attrs = {{"dtype", attr_int(9)}}});
  EXPECT_EQ(b[0].dtype(), DType::kBool);
  EXPECT_TRUE(b[0].data<bool>()[1]);
  // Mean of many draws is near p.
  Tensor many(DType::kFloat32, {10000});
  for (int i = 0; i < 10000; ++i) many.data<float>()[i] = 0.3f;
  auto m = run_node({.op = "Bernoulli", .opset = 15, .inputs = {many}, .attrs = {{"dtype", attr_int(7)}}});
  int64_t ones = 0;
  for (int i = 0; i < 10000; ++i) ones += m[0].data<int64_t>()[i];
  EXPECT_NEAR(ones / 10000.0, 0.3, 0.03);
  EXPECT_THROW(run_node({.op = "Bernoulli", .opset = 15, .inputs = {make_f32({1}, {1.5f})}}), Error);
}

TEST(CausalConvWithState, AgainstPaddedConvolution) {
  std::mt19937 rng(25);
  const int B = 2, C = 3, L = 5;
  for (int k : {1, 3, 7})
    for (bool with_past : {false, true})
      for (const char* act : {"none", "silu"}) {
        Tensor x = random_f32({B, C, L}, rng), w = random_f32({C, 1, k}, rng), bias = random_f32({C}, rng);
        Tensor past = random_f32({B, C, k - 1}, rng);
        NodeSpec spec{.op = "CausalConvWithState", .opset = 27, .inputs = {x, w, bias}};
        if (with_past) spec.inputs.push_back(past);
        spec.attrs["activation"] = attr_string(act);
        spec.num_outputs = 2;
        auto out = run_node(spec);
        for (int b = 0; b < B; ++b)
          for (int c = 0; c < C; ++c) {
            std::vector<double> seq;
            for (int i = 0; i < k - 1; ++i)
              seq.push_back(with_past ? past.data<float>()[(b * C + c) * (k - 1) + i] : 0.0);
            for (int t = 0; t < L; ++t) seq.push_back(x.data<float>()[(b * C + c) * L + t]);
            for (int t = 0; t < L; ++t) {
              double s = bias.data<float>()[c];
              for (int i = 0; i < k; ++i) s += w.data<float>()[c * k + i] * seq[static_cast<size_t>(t + i)];
              if (std::string(act) == "silu") s = s / (1 + std::exp(-s));
              EXPECT_NEAR(out[0].data<float>()[(b * C + c) * L + t], s, 1e-5);
            }
            for (int i = 0; i < k - 1; ++i)
              EXPECT_NEAR(out[1].data<float>()[(b * C + c) * (k - 1) + i],
                          seq[seq.size() - static_cast<size_t>(k - 1) + i], 1e-6);
          }
      }
  std::mt19937 r2(26);
  EXPECT_THROW(run_node({.op = "CausalConvWithState",
                         .opset = 27,
                         .inputs = {random_f32({1, 2, 3}, r2), random_f32({3, 1, 2}, r2)},
                         .num_outputs = 2}),
               Error);
}

}  // namespace kiln::test
