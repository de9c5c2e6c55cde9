// Attention, RotaryEmbedding, the two losses, Einsum and Det against plain
// references computed here.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>

#include "core/thread_pool.h"
#include "op_harness.h"

namespace kiln::test {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

float at4(const Tensor& t, int64_t a, int64_t b, int64_t c, int64_t d) {
  const Shape& s = t.shape();
  return t.data<float>()[((a * s[1] + b) * s[2] + c) * s[3] + d];
}

// Reference attention on 4-D Q (B,Hq,S,D), K/V (B,Hk,T,E) that already hold
// the past; bias(b, h, i, j) is the composed additive mask.
struct AttnOut {
  Tensor y, qk;
};
AttnOut ref_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale, double softcap, int mode,
                      const std::function<double(int64_t, int64_t, int64_t, int64_t)>& bias) {
  int64_t B = q.dim(0), Hq = q.dim(1), S = q.dim(2), D = q.dim(3), Hk = k.dim(1), T = k.dim(2), E = v.dim(3);
  AttnOut r{Tensor(DType::kFloat32, {B, Hq, S, E}), Tensor(DType::kFloat32, {B, Hq, S, T})};
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h)
      for (int64_t i = 0; i < S; ++i) {
        int64_t kh = h / (Hq / Hk);
        std::vector<double> s(static_cast<size_t>(T)), p(static_cast<size_t>(T));
        bool all_masked = true;
        for (int64_t j = 0; j < T; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += at4(q, b, h, i, d) * at4(k, b, kh, j, d);
          dot *= scale;
          if (softcap > 0) dot = softcap * std::tanh(dot / softcap);
          double bj = bias(b, h, i, j);
          if (bj != -kInf) all_masked = false;
          s[static_cast<size_t>(j)] = dot + bj;
          r.qk.data<float>()[((b * Hq + h) * S + i) * T + j] = static_cast<float>(mode == 2 ? dot + bj : dot);
        }
        double mx = -kInf, sum = 0;
        for (double e : s) mx = std::max(mx, e);
        for (int64_t j = 0; j < T; ++j)
          sum += p[static_cast<size_t>(j)] = all_masked ? 0 : std::exp(s[static_cast<size_t>(j)] - mx);
        for (int64_t j = 0; j < T; ++j) {
          if (!all_masked) p[static_cast<size_t>(j)] /= sum;
          if (mode == 3)
            r.qk.data<float>()[((b * Hq + h) * S + i) * T + j] = static_cast<float>(p[static_cast<size_t>(j)]);
        }
        for (int64_t e = 0; e < E; ++e) {
          double acc = 0;
          for (int64_t j = 0; j < T; ++j) acc += p[static_cast<size_t>(j)] * at4(v, b, kh, j, e);
          r.y.data<float>()[((b * Hq + h) * S + i) * E + e] = static_cast<float>(acc);
        }
      }
  return r;
}

// (B, H, S, E) <-> (B, S, H*E).
Tensor to_3d(const Tensor& t) {
  int64_t B = t.dim(0), H = t.dim(1), S = t.dim(2), E = t.dim(3);
  Tensor r(DType::kFloat32, {B, S, H * E});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t s = 0; s < S; ++s)
        for (int64_t e = 0; e < E; ++e) r.data<float>()[(b * S + s) * H * E + h * E + e] = at4(t, b, h, s, e);
  return r;
}

// Concatenates along dim 2 of two 4-D tensors.
Tensor concat_seq(const Tensor& a, const Tensor& b) {
  Shape s = a.shape();
  s[2] += b.dim(2);
  Tensor r(DType::kFloat32, s);
  for (int64_t i = 0; i < s[0]; ++i)
    for (int64_t h = 0; h < s[1]; ++h)
      for (int64_t j = 0; j < s[2]; ++j)
        for (int64_t e = 0; e < s[3]; ++e)
          r.data<float>()[((i * s[1] + h) * s[2] + j) * s[3] + e] =
              j < a.dim(2) ? at4(a, i, h, j, e) : at4(b, i, h, j - a.dim(2), e);
  return r;
}

}  // namespace

TEST(Attention, GqaCausalWithPastAndBoolMask) {
  std::mt19937 rng(20);
  int64_t B = 2, Hq = 4, Hk = 2, S = 3, P = 2, D = 5, E = 3, T = P + S;
  Tensor q = random_f32({B, Hq, S, D}, rng), k = random_f32({B, Hk, S, D}, rng), v = random_f32({B, Hk, S, E}, rng);
  Tensor pk = random_f32({B, Hk, P, D}, rng), pv = random_f32({B, Hk, P, E}, rng);
  // Bool mask (S, T-1): the last key column is padded with False.
  std::vector<bool> mvals;
  for (int64_t i = 0; i < S * (T - 1); ++i) mvals.push_back(i % 4 != 1);
  Tensor mask = make_bool({S, T - 1}, mvals);
  auto out = run_node({.op = "Attention",
                       .opset = 23,
                       .inputs = {q, k, v, mask, pk, pv},
                       .attrs = {{"is_causal", attr_int(1)}, {"qk_matmul_output_mode", attr_int(2)}},
                       .num_outputs = 4});
  Tensor fk = concat_seq(pk, k), fv = concat_seq(pv, v);
  auto bias = [&](int64_t, int64_t, int64_t i, int64_t j) {
    double b = 0;
    if (j >= T - 1 || !mvals[static_cast<size_t>(i * (T - 1) + j)]) b = -kInf;
    if (j > i + P) b = -kInf;  // bottom-right causal
    return b;
  };
  AttnOut want = ref_attention(q, fk, fv, 1 / std::sqrt(5.0), 0, 2, bias);
  EXPECT_TRUE(all_close(out[0], want.y, 1e-5, 1e-6));
  EXPECT_TRUE(all_close(out[1], fk));
  EXPECT_TRUE(all_close(out[2], fv));
  EXPECT_TRUE(all_close(out[3], want.qk, 1e-5, 1e-6));
}

TEST(Attention, ThreeDInputsFloatMaskScaleSoftcap) {
  std::mt19937 rng(21);
  int64_t B = 1, H = 2, S = 4, T = 3, D = 4, E = 2;
  Tensor q = random_f32({B, H, S, D}, rng, -2, 2), k = random_f32({B, H, T, D}, rng, -2, 2),
         v = random_f32({B, H, T, E}, rng);
  Tensor mask = random_f32({H, S, T}, rng);  // rank-3 float mask: (heads, q, kv)
  auto out = run_node({.op = "Attention",
                       .opset = 23,
                       .inputs = {to_3d(q), to_3d(k), to_3d(v), mask},
                       .attrs = {{"q_num_heads", attr_int(H)},
                                 {"kv_num_heads", attr_int(H)},
                                 {"scale", attr_float(0.7f)},
                                 {"softcap", attr_float(1.5f)},
                                 {"qk_matmul_output_mode", attr_int(3)}},
                       .num_outputs = 4});
  auto bias = [&](int64_t, int64_t h, int64_t i, int64_t j) { return double(mask.data<float>()[(h * S + i) * T + j]); };
  AttnOut want = ref_attention(q, k, v, 0.7, 1.5, 3, bias);
  EXPECT_TRUE(all_close(out[0], to_3d(want.y), 1e-5, 1e-6));
  EXPECT_TRUE(all_close(out[3], want.qk, 1e-5, 1e-6));
  // 3-D inputs without head counts are rejected.
  EXPECT_THROW(run_node({.op = "Attention", .opset = 23, .inputs = {to_3d(q), to_3d(k), to_3d(v)}}), Error);
}

TEST(Attention, NonpadSeqlenAndFullyMaskedRows) {
  std::mt19937 rng(22);
  int64_t B = 2, H = 1, S = 3, T = 4, D = 2;
  Tensor q = random_f32({B, H, S, D}, rng), k = random_f32({B, H, T, D}, rng), v = random_f32({B, H, T, D}, rng);
  std::vector<int64_t> nonpad = {2, 4};
  auto out = run_node({.op = "Attention",
                       .opset = 24,
                       .inputs = {q, k, v, std::nullopt, std::nullopt, std::nullopt, make_i64({2}, nonpad)},
                       .attrs = {{"is_causal", attr_int(1)}}});
  auto bias = [&](int64_t b, int64_t, int64_t i, int64_t j) {
    int64_t n = nonpad[static_cast<size_t>(b)];
    return j >= n || j > i + (n - S) ? -kInf : 0.0;  // padding + bottom-right causal
  };
  AttnOut want = ref_attention(q, k, v, 1 / std::sqrt(2.0), 0, 0, bias);
  EXPECT_TRUE(all_close(out[0], want.y, 1e-5, 1e-6));
  // Batch 0 has offset 2 - 3 = -1: its first query row sees no key -> zeros.
  for (int e = 0; e < 2; ++e) EXPECT_EQ(out[0].data<float>()[e], 0.f);
  // Opset 23 has no nonpad_kv_seqlen input.
  EXPECT_THROW(run_node({.op = "Attention",
                         .opset = 23,
                         .inputs = {q, k, v, std::nullopt, std::nullopt, std::nullopt, make_i64({2}, nonpad)}}),
               Error);
}

TEST(LinearAttention, LinearClosedFormWithGqaAndPast) {
  std::mt19937 rng(27);
  int64_t B = 2, T = 3, Hq = 4, Hk = 2, Dk = 3, Dv = 2;
  Tensor q = random_f32({B, T, Hq * Dk}, rng), k = random_f32({B, T, Hk * Dk}, rng),
         v = random_f32({B, T, Hk * Dv}, rng);
  Tensor past = random_f32({B, Hk, Dk, Dv}, rng);
  auto out = run_node(
      {.op = "LinearAttention",
       .opset = 27,
       .inputs = {q, k, v, past},
       .attrs = {{"update_rule", attr_string("linear")}, {"q_num_heads", attr_int(Hq)}, {"kv_num_heads", attr_int(Hk)}},
       .num_outputs = 2});
  // S_t = S_0 + sum_{s <= t} k_s v_s^T; o_t = q_t^T S_t / sqrt(Dk).
  auto state = [&](int64_t b, int64_t h, int64_t t, int64_t i, int64_t j) {
    double s = past.data<float>()[((b * Hk + h) * Dk + i) * Dv + j];
    for (int64_t u = 0; u <= t; ++u)
      s += k.data<float>()[(b * T + u) * Hk * Dk + h * Dk + i] * v.data<float>()[(b * T + u) * Hk * Dv + h * Dv + j];
    return s;
  };
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < Hq; ++h)
        for (int64_t j = 0; j < Dv; ++j) {
          double o = 0;
          for (int64_t i = 0; i < Dk; ++i)
            o += q.data<float>()[(b * T + t) * Hq * Dk + h * Dk + i] * state(b, h / 2, t, i, j);
          EXPECT_NEAR(out[0].data<float>()[(b * T + t) * Hq * Dv + h * Dv + j], o / std::sqrt(3.0), 1e-5);
        }
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hk; ++h)
      for (int64_t i = 0; i < Dk; ++i)
        for (int64_t j = 0; j < Dv; ++j)
          EXPECT_NEAR(out[1].data<float>()[((b * Hk + h) * Dk + i) * Dv + j], state(b, h, T - 1, i, j), 1e-5);
}

TEST(LinearAttention, GatedDeltaStepByStep) {
  std::mt19937 rng(28);
  int64_t T = 4, Dk = 2, Dv = 3;  // B = 1, one head
  Tensor q = random_f32({1, T, Dk}, rng), k = random_f32({1, T, Dk}, rng), v = random_f32({1, T, Dv}, rng);
  Tensor g = random_f32({1, T, 1}, rng, -0.5f, 0), beta = random_f32({1, T, 1}, rng, 0, 1);
  auto out =
      run_node({.op = "LinearAttention",
                .opset = 27,
                .inputs = {q, k, v, std::nullopt, g, beta},
                .attrs = {{"q_num_heads", attr_int(1)}, {"kv_num_heads", attr_int(1)}, {"scale", attr_float(0.5f)}},
                .num_outputs = 2});
  double S[2][3] = {};
  for (int64_t t = 0; t < T; ++t) {
    const float* kt = k.data<float>() + t * Dk;
    for (auto& row : S)
      for (double& e : row) e *= std::exp(g.data<float>()[t]);
    for (int64_t j = 0; j < Dv; ++j) {
      double r = S[0][j] * kt[0] + S[1][j] * kt[1];
      double u = beta.data<float>()[t] * (v.data<float>()[t * Dv + j] - r);
      for (int64_t i = 0; i < Dk; ++i) S[i][j] += kt[i] * u;
    }
    for (int64_t j = 0; j < Dv; ++j) {
      double o = 0.5 * (q.data<float>()[t * Dk] * S[0][j] + q.data<float>()[t * Dk + 1] * S[1][j]);
      EXPECT_NEAR(out[0].data<float>()[t * Dv + j], o, 1e-5);
    }
  }
  EXPECT_NEAR(out[1].data<float>()[5], S[1][2], 1e-5);
  // gated_delta without decay is an error.
  EXPECT_THROW(run_node({.op = "LinearAttention",
                         .opset = 27,
                         .inputs = {q, k, v, std::nullopt, std::nullopt, beta},
                         .attrs = {{"q_num_heads", attr_int(1)}, {"kv_num_heads", attr_int(1)}}}),
               Error);
}

TEST(SwiGLU, GateTimesValue) {
  std::mt19937 rng(29);
  Tensor a = random_f32({2, 3}, rng, -3, 3), b = random_f32({2, 3}, rng);
  Tensor y = run_node({.op = "SwiGLU", .opset = 28, .inputs = {a, b}, .attrs = {{"alpha", attr_float(0.5f)}}})[0];
  for (int i = 0; i < 6; ++i) {
    double x = a.data<float>()[i];
    EXPECT_NEAR(y.data<float>()[i], x / (1 + std::exp(-0.5 * x)) * b.data<float>()[i], 1e-6);
  }
  EXPECT_THROW(run_node({.op = "SwiGLU", .opset = 28, .inputs = {a, random_f32({3}, rng)}}), Error);
}

TEST(RotaryEmbedding, HalvesAndInterleavedWithPositions) {
  std::mt19937 rng(23);
  int64_t B = 2, H = 2, S = 3, D = 6, R = 4;
  Tensor x = random_f32({B, H, S, D}, rng), cosc = random_f32({5, R / 2}, rng), sinc = random_f32({5, R / 2}, rng);
  Tensor pos = make_i64({B, S}, {0, 1, 2, 4, 3, 0});
  for (int inter = 0; inter <= 1; ++inter) {
    Tensor y = run_node({.op = "RotaryEmbedding",
                         .opset = 23,
                         .inputs = {x, cosc, sinc, pos},
                         .attrs = {{"interleaved", attr_int(inter)}, {"rotary_embedding_dim", attr_int(R)}}})[0];
    Tensor want = x.clone();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t s = 0; s < S; ++s) {
          int64_t p = pos.data<int64_t>()[b * S + s];
          float* w = want.data<float>() + ((b * H + h) * S + s) * D;
          const float* in = x.data<float>() + ((b * H + h) * S + s) * D;
          for (int64_t k = 0; k < R / 2; ++k) {
            int64_t i1 = inter ? 2 * k : k, i2 = inter ? 2 * k + 1 : k + R / 2;
            float c = cosc.data<float>()[p * R / 2 + k], sn = sinc.data<float>()[p * R / 2 + k];
            w[i1] = c * in[i1] - sn * in[i2];
            w[i2] = sn * in[i1] + c * in[i2];
          }
        }
    EXPECT_TRUE(all_close(y, want, 1e-5, 1e-6)) << "interleaved " << inter;
    // The 3-D layout gives the same rotation.
    Tensor y3 = run_node(
        {.op = "RotaryEmbedding",
         .opset = 23,
         .inputs = {to_3d(x), cosc, sinc, pos},
         .attrs = {
             {"interleaved", attr_int(inter)}, {"rotary_embedding_dim", attr_int(R)}, {"num_heads", attr_int(H)}}})[0];
    EXPECT_TRUE(all_close(y3, to_3d(want), 1e-5, 1e-6));
  }
  EXPECT_THROW(run_node({.op = "RotaryEmbedding",
                         .opset = 23,
                         .inputs = {x, cosc, sinc, make_i64({B, S}, {0, 1, 2, 5, 0, 0})},
                         .attrs = {{"rotary_embedding_dim", attr_int(R)}}}),
               Error);  // position 5 is outside the cache
}

TEST(Loss, SoftmaxCrossEntropyAndNllWithWeightsAndIgnoreIndex) {
  std::mt19937 rng(24);
  int64_t N = 3, C = 4, Dd = 2;
  Tensor x = random_f32({N, C, Dd}, rng, -2, 2), w = random_f32({C}, rng, 0.5, 1.5);
  Tensor labels = make_i64({N, Dd}, {0, 3, -1, 2, 1, -1});
  for (const char* red : {"none", "sum", "mean"}) {
    auto sce = run_node({.op = "SoftmaxCrossEntropyLoss",
                         .opset = 13,
                         .inputs = {x, labels, w},
                         .attrs = {{"reduction", attr_string(red)}, {"ignore_index", attr_int(-1)}},
                         .num_outputs = 2});
    auto nll = run_node({.op = "NegativeLogLikelihoodLoss",
                         .opset = 13,
                         .inputs = {sce[1], labels, w},
                         .attrs = {{"reduction", attr_string(red)}, {"ignore_index", attr_int(-1)}}});
    std::vector<float> loss;
    double sum = 0, wsum = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t d = 0; d < Dd; ++d) {
        int64_t t = labels.data<int64_t>()[n * Dd + d];
        double mx = -kInf, se = 0;
        for (int64_t c = 0; c < C; ++c) mx = std::max(mx, double(x.data<float>()[(n * C + c) * Dd + d]));
        for (int64_t c = 0; c < C; ++c) se += std::exp(x.data<float>()[(n * C + c) * Dd + d] - mx);
        double l = 0;
        if (t != -1) {
          double logp = x.data<float>()[(n * C + t) * Dd + d] - mx - std::log(se);
          l = -logp * w.data<float>()[t];
          wsum += w.data<float>()[t];
        }
        loss.push_back(static_cast<float>(l));
        sum += l;
      }
    Tensor want = std::string(red) == "none"  ? make_f32({N, Dd}, loss)
                  : std::string(red) == "sum" ? make_f32({}, {static_cast<float>(sum)})
                                              : make_f32({}, {static_cast<float>(sum / wsum)});
    EXPECT_TRUE(all_close(sce[0], want, 1e-5, 1e-6)) << red;
    EXPECT_TRUE(all_close(nll[0], want, 1e-5, 1e-6)) << red;
  }
  // A label out of [0, C) that is not ignore_index is an error.
  EXPECT_THROW(run_node({.op = "NegativeLogLikelihoodLoss", .opset = 13, .inputs = {x, labels}}), Error);
}

TEST(Einsum, MatmulTraceDiagonalEllipsisAndImplicit) {
  std::mt19937 rng(25);
  Tensor a = random_f32({2, 3}, rng), b = random_f32({3, 4}, rng), sq = random_f32({3, 3}, rng);
  auto ein = [](const char* eq, std::vector<std::optional<Tensor>> ins) {
    return run_node(
        {.op = "Einsum", .opset = 12, .inputs = std::move(ins), .attrs = {{"equation", attr_string(eq)}}})[0];
  };
  Tensor mm = ein("ij,jk->ik", {a, b}), mm_implicit = ein("ij,jk", {a, b}), mt = ein("ij,jk->ki", {a, b});
  ASSERT_EQ(mm.shape(), (Shape{2, 4}));
  ASSERT_EQ(mt.shape(), (Shape{4, 2}));
  for (int i = 0; i < 2; ++i)
    for (int k = 0; k < 4; ++k) {
      double s = 0;
      for (int j = 0; j < 3; ++j) s += a.data<float>()[i * 3 + j] * b.data<float>()[j * 4 + k];
      EXPECT_NEAR(mm.data<float>()[i * 4 + k], s, 1e-5);
      EXPECT_NEAR(mm_implicit.data<float>()[i * 4 + k], s, 1e-5);
      EXPECT_NEAR(mt.data<float>()[k * 2 + i], s, 1e-5);
    }
  Tensor tr = ein("ii", {sq}), dg = ein("ii->i", {sq});
  ASSERT_EQ(tr.shape(), Shape{});
  EXPECT_NEAR(tr.data<float>()[0], sq.data<float>()[0] + sq.data<float>()[4] + sq.data<float>()[8], 1e-6);
  EXPECT_EQ(to_f32(dg), (std::vector<float>{sq.data<float>()[0], sq.data<float>()[4], sq.data<float>()[8]}));
  // Batched matmul with a broadcast ellipsis: (2,1,2,3) x (3,3,4) -> (2,3,2,4).
  Tensor x = random_f32({2, 1, 2, 3}, rng), y = random_f32({3, 3, 4}, rng);
  Tensor bm = ein("...ij,...jk->...ik", {x, y});
  ASSERT_EQ(bm.shape(), (Shape{2, 3, 2, 4}));
  for (int p = 0; p < 2; ++p)
    for (int r = 0; r < 3; ++r)
      for (int i = 0; i < 2; ++i)
        for (int k = 0; k < 4; ++k) {
          double s = 0;
          for (int j = 0; j < 3; ++j) s += x.data<float>()[(p * 2 + i) * 3 + j] * y.data<float>()[(r * 3 + j) * 4 + k];
          EXPECT_NEAR(bm.data<float>()[((p * 3 + r) * 2 + i) * 4 + k], s, 1e-5);
        }
  EXPECT_THROW(ein("ij,jk->ik", {a, a}), Error);  // j extents 3 vs 2
  EXPECT_THROW(ein("ij->iz", {a}), Error);
}

// Two float32 operands take the batched-GEMM path; the same equations in
// float64 take the naive one: they must agree, for batch, contracted,
// one-sided and summed-away labels in every order, outer and inner products.
TEST(Einsum, GemmPathMatchesNaiveOnEveryLabelRole) {
  std::mt19937 rng(27);
  struct Case {
    const char* eq;
    Shape a, b;
  };
  const std::vector<Case> cases = {
      {"bhnd,bhmd->bhnm", {2, 3, 17, 8}, {2, 3, 9, 8}},  // attention scores
      {"bhnm,bhmd->bhnd", {2, 3, 17, 9}, {2, 3, 9, 8}},  // attention values
      {"bhnd,bhmd->bnhm", {2, 3, 5, 4}, {2, 3, 6, 4}},   // output permuted
      {"ij,kj->ik", {33, 20}, {40, 20}},
      {"abc,cd->abd", {2, 3, 4}, {4, 5}},
      {"i,j->ij", {7}, {5}},
      {"ij,ij->i", {6, 9}, {6, 9}},
      {"bi,oij->bo", {3, 4}, {5, 4, 2}},  // j summed within B: naive
      {"...ij,...jk->...ik", {2, 3, 4}, {2, 4, 5}},
      {"nd,md", {130, 64}, {70, 64}},  // implicit output, large enough to thread
  };
  ThreadPool pool(2);
  for (const Case& c : cases) {
    Tensor a = random_f32(c.a, rng), b = random_f32(c.b, rng);
    const auto attrs = std::map<std::string, Attribute>{{"equation", attr_string(c.eq)}};
    Tensor fast = run_node({.op = "Einsum", .opset = 12, .inputs = {a, b}, .attrs = attrs, .pool = &pool})[0];
    Tensor naive = run_node({.op = "Einsum", .opset = 12, .inputs = {to_f64(a), to_f64(b)}, .attrs = attrs})[0];
    EXPECT_TRUE(all_close(fast, to_f32_tensor(naive), 1e-5, 1e-5)) << c.eq;
  }
}

TEST(Det, MatchesClosedFormsAndBatches) {
  Tensor m = make_f32({2, 3, 3}, {2, 0, 1, 1, 3, 2, 1, 1, 1,    // det = 2*(3-2) - 0 + 1*(1-3) = 0
                                  4, 3, 0, 6, 3, 0, 0, 0, 2});  // det = 2 * (12 - 18) = -12
  Tensor d = run_node({.op = "Det", .opset = 11, .inputs = {m}})[0];
  ASSERT_EQ(d.shape(), Shape{2});
  EXPECT_NEAR(d.data<float>()[0], 0.0, 1e-5);
  EXPECT_NEAR(d.data<float>()[1], -12.0, 1e-5);
  std::mt19937 rng(26);
  Tensor r = random_f32({2, 2}, rng);
  const float* p = r.data<float>();
  EXPECT_NEAR(run_node({.op = "Det", .opset = 11, .inputs = {r}})[0].data<float>()[0], p[0] * p[3] - p[1] * p[2], 1e-6);
  EXPECT_THROW(run_node({.op = "Det", .opset = 11, .inputs = {random_f32({2, 3}, rng)}}), Error);
}

}  // namespace kiln::test
