// Network-definition API: each layer kind built into a tiny network, run
// through a Session and compared on random inputs with a plain-loop
// reference written here.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "network_test_util.h"
#include "onnx/import.h"

namespace kiln::test {

namespace {

// Row-major offset of idx in a tensor of shape s.
int64_t offset(const Shape& s, std::initializer_list<int64_t> idx) {
  int64_t o = 0;
  size_t d = 0;
  for (int64_t i : idx) o = o * s[d++] + i;
  return o;
}
float at(const Tensor& t, std::initializer_list<int64_t> idx) { return t.data<float>()[offset(t.shape(), idx)]; }
float& at(Tensor& t, std::initializer_list<int64_t> idx) { return t.data<float>()[offset(t.shape(), idx)]; }

struct Window2d {
  int64_t sh = 1, sw = 1, pt = 0, pl = 0, pb = 0, pr = 0, dh = 1, dw = 1, group = 1;
};

Tensor conv2d_ref(const Tensor& x, const Tensor& w, const Tensor* bias, const Window2d& p) {
  const int64_t N = x.dim(0), H = x.dim(2), W = x.dim(3), M = w.dim(0), Cg = w.dim(1), KH = w.dim(2), KW = w.dim(3);
  const int64_t OH = (H + p.pt + p.pb - (p.dh * (KH - 1) + 1)) / p.sh + 1;
  const int64_t OW = (W + p.pl + p.pr - (p.dw * (KW - 1) + 1)) / p.sw + 1;
  const int64_t Mg = M / p.group;
  Tensor y(DType::kFloat32, {N, M, OH, OW});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = bias ? bias->data<float>()[m] : 0;
          const int64_t g = m / Mg;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t kh = 0; kh < KH; ++kh)
              for (int64_t kw = 0; kw < KW; ++kw) {
                const int64_t ih = oh * p.sh - p.pt + kh * p.dh, iw = ow * p.sw - p.pl + kw * p.dw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += static_cast<double>(at(x, {n, g * Cg + c, ih, iw})) * at(w, {m, c, kh, kw});
              }
          at(y, {n, m, oh, ow}) = static_cast<float>(acc);
        }
  return y;
}

Tensor deconv2d_ref(const Tensor& x, const Tensor& w, const Tensor* bias, const Window2d& p, int64_t out_pad) {
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), Mg = w.dim(1), KH = w.dim(2), KW = w.dim(3);
  const int64_t M = Mg * p.group, Cg = C / p.group;
  const int64_t OH = (H - 1) * p.sh - p.pt - p.pb + p.dh * (KH - 1) + 1 + out_pad;
  const int64_t OW = (W - 1) * p.sw - p.pl - p.pr + p.dw * (KW - 1) + 1 + out_pad;
  Tensor y(DType::kFloat32, {N, M, OH, OW});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) at(y, {n, m, oh, ow}) = bias ? bias->data<float>()[m] : 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t ih = 0; ih < H; ++ih)
        for (int64_t iw = 0; iw < W; ++iw)
          for (int64_t ml = 0; ml < Mg; ++ml)
            for (int64_t kh = 0; kh < KH; ++kh)
              for (int64_t kw = 0; kw < KW; ++kw) {
                const int64_t oh = ih * p.sh - p.pt + kh * p.dh, ow = iw * p.sw - p.pl + kw * p.dw;
                if (oh < 0 || oh >= OH || ow < 0 || ow >= OW) continue;
                at(y, {n, (c / Cg) * Mg + ml, oh, ow}) += at(x, {n, c, ih, iw}) * at(w, {c, ml, kh, kw});
              }
  return y;
}

Tensor pool2d_ref(const Tensor& x, int64_t KH, int64_t KW, const Window2d& p, bool max, bool include_pad,
                  bool ceil_mode) {
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  auto out_size = [&](int64_t in, int64_t k, int64_t s, int64_t pb, int64_t pe) {
    const int64_t span = in + pb + pe - k;
    int64_t o = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (o - 1) * s >= in + pb) --o;
    return o;
  };
  const int64_t OH = out_size(H, KH, p.sh, p.pt, p.pb), OW = out_size(W, KW, p.sw, p.pl, p.pr);
  Tensor y(DType::kFloat32, {N, C, OH, OW});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = max ? -INFINITY : 0;
          int64_t count = 0;
          for (int64_t kh = 0; kh < KH; ++kh)
            for (int64_t kw = 0; kw < KW; ++kw) {
              const int64_t ih = oh * p.sh - p.pt + kh, iw = ow * p.sw - p.pl + kw;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) {
                if (include_pad && ih < H + p.pb && iw < W + p.pr) ++count;
                continue;
              }
              const float v = at(x, {n, c, ih, iw});
              acc = max ? std::max<double>(acc, v) : acc + v;
              ++count;
            }
          at(y, {n, c, oh, ow}) = static_cast<float>(max ? acc : acc / count);
        }
  return y;
}

// y = f(x) element by element.
Tensor map_ref(const Tensor& x, const std::function<double(double)>& f) {
  Tensor y(DType::kFloat32, x.shape());
  for (int64_t i = 0; i < x.numel(); ++i) y.data<float>()[i] = static_cast<float>(f(x.data<float>()[i]));
  return y;
}

// x [rows, n] with w [out, n], bias [out] -> [rows, out].
Tensor linear_ref(const Tensor& x, const Tensor& w, const Tensor* bias) {
  const int64_t n = w.dim(1), out = w.dim(0), rows = x.numel() / n;
  Shape s = x.shape();
  s.back() = out;
  Tensor y(DType::kFloat32, s);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double acc = bias ? bias->data<float>()[o] : 0;
      for (int64_t i = 0; i < n; ++i)
        acc += static_cast<double>(x.data<float>()[r * n + i]) * w.data<float>()[o * n + i];
      y.data<float>()[r * out + o] = static_cast<float>(acc);
    }
  return y;
}

// Softmax over the last dim.
Tensor softmax_ref(const Tensor& x) {
  const int64_t n = x.shape().back(), rows = x.numel() / n;
  Tensor y(DType::kFloat32, x.shape());
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = x.data<float>() + r * n;
    double mx = -INFINITY, sum = 0;
    for (int64_t i = 0; i < n; ++i) mx = std::max<double>(mx, in[i]);
    for (int64_t i = 0; i < n; ++i) sum += std::exp(in[i] - mx);
    for (int64_t i = 0; i < n; ++i) y.data<float>()[r * n + i] = static_cast<float>(std::exp(in[i] - mx) / sum);
  }
  return y;
}

// q [G, S, D], k [G, L, D], v [G, L, Dv], mask [S, L] or null.
Tensor attention_ref(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* mask, double scale) {
  const int64_t G = q.dim(0), S = q.dim(1), D = q.dim(2), L = k.dim(1), Dv = v.dim(2);
  Tensor scores(DType::kFloat32, {G, S, L});
  for (int64_t g = 0; g < G; ++g)
    for (int64_t s = 0; s < S; ++s)
      for (int64_t l = 0; l < L; ++l) {
        double acc = 0;
        for (int64_t d = 0; d < D; ++d) acc += static_cast<double>(at(q, {g, s, d})) * at(k, {g, l, d});
        at(scores, {g, s, l}) = static_cast<float>(acc * scale + (mask ? at(*mask, {s, l}) : 0));
      }
  Tensor p = softmax_ref(scores);
  Tensor y(DType::kFloat32, {G, S, Dv});
  for (int64_t g = 0; g < G; ++g)
    for (int64_t s = 0; s < S; ++s)
      for (int64_t e = 0; e < Dv; ++e) {
        double acc = 0;
        for (int64_t l = 0; l < L; ++l) acc += static_cast<double>(at(p, {g, s, l})) * at(v, {g, l, e});
        at(y, {g, s, e}) = static_cast<float>(acc);
      }
  return y;
}

// A network with one float input "x" of the given shape, f's result its output.
Network one_layer(const Shape& shape, const std::function<NetworkTensor(Network&, NetworkTensor)>& f) {
  Network net("test");
  std::vector<NetworkDim> dims(shape.begin(), shape.end());
  NetworkTensor y = f(net, net.input("x", DType::kFloat32, dims));
  net.mark_output(y, "y");
  return net;
}

}  // namespace

TEST(NetworkLayers, ConvWithBiasPadsStridesDilationGroups) {
  Tensor x = random_tensor({2, 4, 9, 9}, 1);
  struct Case {
    ConvOptions o;
    Window2d p;
    Shape w;
  };
  const std::vector<Case> cases = {
      {{.pads = {1, 1}}, {.pt = 1, .pl = 1, .pb = 1, .pr = 1}, {6, 4, 3, 3}},
      {{.strides = {2, 2}, .dilations = {2, 2}, .pads = {0, 1, 2, 0}, .group = 2},
       {.sh = 2, .sw = 2, .pt = 0, .pl = 1, .pb = 2, .pr = 0, .dh = 2, .dw = 2, .group = 2},
       {6, 2, 3, 3}},
      {{.group = 4}, {.group = 4}, {4, 1, 3, 3}},  // depthwise
      {{.strides = {2, 2}, .padding = Padding::kSameUpper},
       {.sh = 2, .sw = 2, .pt = 1, .pl = 1, .pb = 1, .pr = 1},
       {5, 4, 3, 3}},
      {{.strides = {2, 2}, .padding = Padding::kSameLower},
       {.sh = 2, .sw = 2, .pt = 1, .pl = 1, .pb = 1, .pr = 1},
       {5, 4, 4, 4}},  // total pad 3: 2 before with SAME_LOWER
      {{.padding = Padding::kValid}, {}, {3, 4, 2, 2}},
  };
  int i = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(i++);
    Tensor w = random_tensor(c.w, 10 + i), bias = random_tensor({c.w[0]}, 20 + i);
    Window2d p = c.p;
    if (c.o.padding == Padding::kSameLower) p.pt = p.pl = 2, p.pb = p.pr = 1;
    Network net = one_layer(x.shape(), [&](Network& n, NetworkTensor t) { return n.conv(t, w, bias, c.o, "conv"); });
    expect_close(run_x(net, x), conv2d_ref(x, w, &bias, p));
  }
}

TEST(NetworkLayers, Conv1dAnd3dByWeightRank) {
  Network net1 = one_layer({1, 3, 10}, [](Network& n, NetworkTensor t) {
    return n.conv(t, random_tensor({4, 3, 3}, 2), {}, {.pads = {1}});
  });
  EXPECT_EQ(net1.outputs()[0].shape(), (Shape{1, 4, 10}));
  // A 1-d conv is a 2-d one of height 1.
  Tensor x = random_tensor({1, 3, 10}, 3), w = random_tensor({4, 3, 3}, 2);
  Tensor want = conv2d_ref(x.reshaped({1, 3, 1, 10}), w.reshaped({4, 3, 1, 3}), nullptr, {.pl = 1, .pr = 1});
  expect_close(run_x(net1, x), want.reshaped({1, 4, 10}));
  Network net3 = one_layer({1, 2, 5, 6, 7}, [](Network& n, NetworkTensor t) {
    return n.conv(t, random_tensor({3, 2, 3, 3, 3}, 4), {}, {.strides = {1, 2, 2}});
  });
  EXPECT_EQ(net3.outputs()[0].shape(), (Shape{1, 3, 3, 2, 3}));
  EXPECT_EQ(run_x(net3, random_tensor({1, 2, 5, 6, 7}, 5)).shape(), (Shape{1, 3, 3, 2, 3}));
}

TEST(NetworkLayers, Deconvolution) {
  Tensor x = random_tensor({2, 4, 5, 5}, 6);
  for (int64_t group : {1, 2}) {
    SCOPED_TRACE(group);
    Tensor w = random_tensor({4, 3, 3, 3}, 7), bias = random_tensor({3 * group}, 8);
    Network net = one_layer(x.shape(), [&](Network& n, NetworkTensor t) {
      return n.deconv(t, w, bias, {.strides = {2, 2}, .pads = {1, 1}, .group = group, .output_padding = {1, 1}});
    });
    Window2d p{.sh = 2, .sw = 2, .pt = 1, .pl = 1, .pb = 1, .pr = 1, .group = group};
    expect_close(run_x(net, x), deconv2d_ref(x, w, &bias, p, 1));
  }
}

TEST(NetworkLayers, BatchNorm) {
  Tensor x = random_tensor({2, 3, 4, 5}, 9);
  Tensor s = random_tensor({3}, 10), b = random_tensor({3}, 11), m = random_tensor({3}, 12),
         v = random_tensor({3}, 13, 0.5f, 2);
  Network net = one_layer(x.shape(), [&](Network& n, NetworkTensor t) { return n.batch_norm(t, s, b, m, v, 1e-3f); });
  Tensor want(DType::kFloat32, x.shape());
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t c = (i / 20) % 3;
    want.data<float>()[i] = static_cast<float>((x.data<float>()[i] - m.data<float>()[c]) /
                                                   std::sqrt(v.data<float>()[c] + 1e-3) * s.data<float>()[c] +
                                               b.data<float>()[c]);
  }
  expect_close(run_x(net, x), want);
}

TEST(NetworkLayers, LinearOnMatricesAndSequences) {
  Tensor w = random_tensor({5, 8}, 14), bias = random_tensor({5}, 15);
  for (Shape shape : {Shape{3, 8}, Shape{2, 3, 8}}) {
    SCOPED_TRACE(shape_str(shape));
    Tensor x = random_tensor(shape, 16);
    Network net = one_layer(shape, [&](Network& n, NetworkTensor t) { return n.linear(t, w, bias, "fc"); });
    expect_close(run_x(net, x), linear_ref(x, w, &bias));
    Network no_bias = one_layer(shape, [&](Network& n, NetworkTensor t) { return n.linear(t, w); });
    expect_close(run_x(no_bias, x), linear_ref(x, w, nullptr));
  }
}

TEST(NetworkLayers, MatMulAndGemm) {
  Network net("mm");
  NetworkTensor a = net.input("a", DType::kFloat32, {2, 3, 4});
  NetworkTensor b = net.input("b", DType::kFloat32, {4, 5});
  net.mark_output(net.matmul(a, b), "y");
  Tensor av = random_tensor({2, 3, 4}, 17), bv = random_tensor({4, 5}, 18);
  Tensor got = net.session().run({{"a", av}, {"b", bv}})[0];
  // a · b is linear with weight bᵀ.
  Tensor bt(DType::kFloat32, {5, 4});
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 5; ++j) at(bt, {j, i}) = at(bv, {i, j});
  expect_close(got, linear_ref(av, bt, nullptr));

  Network g("gemm");
  NetworkTensor ga = g.input("a", DType::kFloat32, {4, 3});  // used transposed
  NetworkTensor gc = g.constant(random_tensor({5}, 19), "c");
  g.mark_output(g.gemm(ga, g.constant(bt, "b"), gc, 2.0f, 0.5f, true, true), "y");
  Tensor a2 = random_tensor({4, 3}, 20);
  Tensor a2t(DType::kFloat32, {3, 4});
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 3; ++j) at(a2t, {j, i}) = at(a2, {i, j});
  Tensor want = linear_ref(a2t, bt, nullptr);
  const Tensor& cv = *g.model().graph->find("c")->initializer;
  for (int64_t r = 0; r < 3; ++r)
    for (int64_t o = 0; o < 5; ++o) at(want, {r, o}) = 2 * at(want, {r, o}) + 0.5f * cv.data<float>()[o];
  expect_close(g.session().run({{"a", a2}})[0], want);
}

TEST(NetworkLayers, Activations) {
  Tensor x = random_tensor({2, 3, 8}, 21, -4, 4);
  const double selu_a = 1.67326319217681884765625, selu_g = 1.05070102214813232421875;
  auto sigmoid = [](double v) { return 1 / (1 + std::exp(-v)); };
  auto softplus = [](double v) { return std::log1p(std::exp(v)); };
  struct Case {
    Activation kind;
    float alpha, beta;
    std::function<double(double)> f;
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<Case> cases = {
      {Activation::kRelu, nan, nan, [](double v) { return std::max(0.0, v); }},
      {Activation::kSigmoid, nan, nan, sigmoid},
      {Activation::kTanh, nan, nan, [](double v) { return std::tanh(v); }},
      {Activation::kLeakyRelu, 0.1f, nan, [](double v) { return v > 0 ? v : 0.1f * v; }},
      {Activation::kElu, nan, nan, [](double v) { return v > 0 ? v : std::exp(v) - 1; }},
      {Activation::kSelu, nan, nan, [&](double v) { return selu_g * (v > 0 ? v : selu_a * (std::exp(v) - 1)); }},
      {Activation::kClip, -0.5f, 1.5f, [](double v) { return std::clamp(v, -0.5, 1.5); }},
      {Activation::kRelu6, nan, nan, [](double v) { return std::clamp(v * 1, 0.0, 6.0); }},
      {Activation::kHardSigmoid, nan, nan, [](double v) { return std::clamp(v / 6 + 0.5, 0.0, 1.0); }},
      {Activation::kHardSwish, nan, nan, [](double v) { return v * std::clamp(v / 6 + 0.5, 0.0, 1.0); }},
      {Activation::kGelu, nan, nan, [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }},
      {Activation::kGeluTanh, nan, nan,
       [](double v) { return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))); }},
      {Activation::kSilu, nan, nan, [&](double v) { return v * sigmoid(v); }},
      {Activation::kSoftplus, nan, nan, softplus},
      {Activation::kMish, nan, nan, [&](double v) { return v * std::tanh(softplus(v)); }},
  };
  for (const Case& c : cases) {
    Network net =
        one_layer(x.shape(), [&](Network& n, NetworkTensor t) { return n.activation(t, c.kind, c.alpha, c.beta); });
    SCOPED_TRACE(net.model().graph->nodes.back()->name);
    expect_close(run_x(net, x), map_ref(x, c.f), 1e-5);
  }
  // The named shortcuts are the same layers.
  Network gelu = one_layer(x.shape(), [](Network& n, NetworkTensor t) { return n.gelu(t, "g"); });
  expect_close(run_x(gelu, x), map_ref(x, cases[10].f), 1e-5);
}

TEST(NetworkLayers, SoftmaxOnAnyAxis) {
  Tensor x = random_tensor({2, 3, 5}, 22, -3, 3);
  Network last = one_layer(x.shape(), [](Network& n, NetworkTensor t) { return n.softmax(t); });
  expect_close(run_x(last, x), softmax_ref(x));
  // Axis 1, checked through a transpose to the last axis.
  Network mid = one_layer(x.shape(), [](Network& n, NetworkTensor t) {
    return n.transpose(n.softmax(t, 1), {0, 2, 1});
  });
  Network ref = one_layer(x.shape(), [](Network& n, NetworkTensor t) { return n.transpose(t, {0, 2, 1}); });
  expect_close(run_x(mid, x), softmax_ref(run_x(ref, x)));
  Network log = one_layer(x.shape(), [](Network& n, NetworkTensor t) { return n.log_softmax(t); });
  expect_close(run_x(log, x), map_ref(softmax_ref(x), [](double v) { return std::log(v); }));
}

TEST(NetworkLayers, Pooling) {
  Tensor x = random_tensor({2, 3, 9, 8}, 23);
  struct Case {
    PoolType type;
    PoolOptions o;
    Window2d p;
  };
  const std::vector<Case> cases = {
      {PoolType::kMax,
       {.kernel = {3, 3}, .strides = {2, 2}, .pads = {1, 1}},
       {.sh = 2, .sw = 2, .pt = 1, .pl = 1, .pb = 1, .pr = 1}},
      {PoolType::kMax, {.kernel = {2, 2}, .strides = {2, 2}, .ceil_mode = true}, {.sh = 2, .sw = 2}},
      {PoolType::kAverage, {.kernel = {2, 2}, .strides = {2, 2}}, {.sh = 2, .sw = 2}},
      {PoolType::kAverage, {.kernel = {3, 3}, .strides = {1, 1}, .pads = {1, 1}}, {.pt = 1, .pl = 1, .pb = 1, .pr = 1}},
      {PoolType::kAverage,
       {.kernel = {3, 3}, .strides = {1, 1}, .pads = {1, 1}, .count_include_pad = true},
       {.pt = 1, .pl = 1, .pb = 1, .pr = 1}},
  };
  int i = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(i++);
    Network net = one_layer(x.shape(), [&](Network& n, NetworkTensor t) { return n.pool(t, c.type, c.o); });
    Tensor want = pool2d_ref(x, c.o.kernel[0], c.o.kernel[1], c.p, c.type == PoolType::kMax, c.o.count_include_pad,
                             c.o.ceil_mode);
    expect_close(run_x(net, x), want);
  }
  for (PoolType type : {PoolType::kMax, PoolType::kAverage}) {
    Network net = one_layer(x.shape(), [&](Network& n, NetworkTensor t) { return n.global_pool(t, type); });
    expect_close(run_x(net, x), pool2d_ref(x, 9, 8, {}, type == PoolType::kMax, false, false));
  }
}

TEST(NetworkLayers, BinaryWithBroadcastingAndUnary) {
  Tensor a = random_tensor({2, 3, 4}, 24, 0.5f, 2), b = random_tensor({3, 1}, 25, 0.5f, 2);
  struct Case {
    BinaryOp op;
    std::function<double(double, double)> f;
  };
  const std::vector<Case> cases = {
      {BinaryOp::kAdd, [](double p, double q) { return p + q; }},
      {BinaryOp::kSub, [](double p, double q) { return p - q; }},
      {BinaryOp::kMul, [](double p, double q) { return p * q; }},
      {BinaryOp::kDiv, [](double p, double q) { return p / q; }},
      {BinaryOp::kPow, [](double p, double q) { return std::pow(p, q); }},
      {BinaryOp::kMax, [](double p, double q) { return std::max(p, q); }},
      {BinaryOp::kMin, [](double p, double q) { return std::min(p, q); }},
  };
  for (const Case& c : cases) {
    Network net("bin");
    NetworkTensor x = net.input("x", DType::kFloat32, {2, 3, 4});
    net.mark_output(net.binary(x, net.constant(b, "b"), c.op), "y");
    Tensor want(DType::kFloat32, a.shape());
    for (int64_t i = 0; i < a.numel(); ++i)
      want.data<float>()[i] = static_cast<float>(c.f(a.data<float>()[i], b.data<float>()[(i / 4) % 3]));
    expect_close(run_x(net, a), want, 1e-6);
  }
  struct UCase {
    UnaryOp op;
    double (*f)(double);
  };
  const std::vector<UCase> unary = {
      {UnaryOp::kExp, std::exp},   {UnaryOp::kLog, std::log},         {UnaryOp::kSqrt, std::sqrt},
      {UnaryOp::kAbs, std::fabs},  {UnaryOp::kErf, std::erf},         {UnaryOp::kFloor, std::floor},
      {UnaryOp::kCeil, std::ceil}, {UnaryOp::kRound, std::nearbyint}, {UnaryOp::kSin, std::sin},
      {UnaryOp::kCos, std::cos},
  };
  Tensor x = random_tensor({2, 3, 4}, 26, 0.1f, 4);
  for (const UCase& c : unary) {
    Network net = one_layer(x.shape(), [&](Network& n, NetworkTensor t) { return n.unary(t, c.op); });
    expect_close(run_x(net, x), map_ref(x, c.f), 1e-6);
  }
  Network neg = one_layer(
      x.shape(), [](Network& n, NetworkTensor t) { return n.unary(n.unary(t, UnaryOp::kNeg), UnaryOp::kReciprocal); });
  expect_close(run_x(neg, x), map_ref(x, [](double v) { return -1 / v; }), 1e-6);
}

TEST(NetworkLayers, ReduceAndCast) {
  Tensor x = random_tensor({2, 3, 4}, 27);
  Network mean = one_layer(x.shape(), [](Network& n, NetworkTensor t) { return n.reduce(t, ReduceOp::kMean, {2}); });
  Network sum =
      one_layer(x.shape(), [](Network& n, NetworkTensor t) { return n.reduce(t, ReduceOp::kSum, {2}, false); });
  Tensor want(DType::kFloat32, {2, 3, 1});
  for (int64_t i = 0; i < x.numel(); ++i) want.data<float>()[i / 4] += x.data<float>()[i] / 4;
  expect_close(run_x(mean, x), want);
  expect_close(run_x(sum, x), map_ref(want, [](double v) { return 4 * v; }).reshaped({2, 3}));
  Network cast = one_layer(x.shape(), [](Network& n, NetworkTensor t) { return n.cast(t, DType::kInt64); });
  EXPECT_EQ(run_x(cast, x).dtype(), DType::kInt64);
}

TEST(NetworkLayers, ReshapeTransposeConcatSliceSplitFlattenSqueeze) {
  Tensor x = random_tensor({2, 3, 4}, 28);
  Network net("shapes");
  NetworkTensor in = net.input("x", DType::kFloat32, {2, 3, 4});
  NetworkTensor r = net.reshape(in, {0, -1}, "reshape");
  EXPECT_EQ(r.shape(), (Shape{2, 12}));
  net.mark_output(r, "r");
  net.mark_output(net.transpose(in, {2, 0, 1}), "t");
  net.mark_output(net.concat({in, net.slice(in, {1}, {3}, {1})}, 1), "c");
  net.mark_output(net.slice(in, {3, 0}, {0, 4}, {2, 0}, {-2, 1}), "s");
  std::vector<NetworkTensor> parts = net.split(in, 1, {2, 1});
  ASSERT_EQ(parts.size(), 2u);
  net.mark_output(parts[1], "p1");
  net.mark_output(net.flatten(in, 2), "f");
  net.mark_output(net.squeeze(net.unsqueeze(in, {0, 3}), {0}), "u");
  std::vector<Tensor> out = net.session().run({{"x", x}});
  ASSERT_EQ(out.size(), 7u);
  EXPECT_EQ(out[0].shape(), (Shape{2, 12}));
  EXPECT_EQ(out[6].shape(), (Shape{2, 3, 1, 4}));
  EXPECT_EQ(out[5].shape(), (Shape{6, 4}));
  for (int64_t i = 0; i < x.numel(); ++i) {
    EXPECT_EQ(out[0].data<float>()[i], x.data<float>()[i]);
    EXPECT_EQ(out[5].data<float>()[i], x.data<float>()[i]);
    EXPECT_EQ(out[6].data<float>()[i], x.data<float>()[i]);
  }
  ASSERT_EQ(out[1].shape(), (Shape{4, 2, 3}));
  ASSERT_EQ(out[2].shape(), (Shape{2, 5, 4}));
  ASSERT_EQ(out[3].shape(), (Shape{2, 3, 2}));
  ASSERT_EQ(out[4].shape(), (Shape{2, 1, 4}));
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t w = 0; w < 4; ++w) {
        const float v = at(x, {n, c, w});
        EXPECT_EQ(at(out[1], {w, n, c}), v);
        EXPECT_EQ(at(out[2], {n, c, w}), v);
        if (c >= 1) {
          EXPECT_EQ(at(out[2], {n, 3 + c - 1, w}), v);
        }
        if (w == 3 || w == 1) {
          EXPECT_EQ(at(out[3], {n, c, (3 - w) / 2}), v);
        }
        if (c == 2) {
          EXPECT_EQ(at(out[4], {n, 0, w}), v);
        }
      }
}

TEST(NetworkLayers, LayerNorm) {
  Tensor x = random_tensor({2, 3, 16}, 29, -2, 3);
  Tensor s = random_tensor({16}, 30), b = random_tensor({16}, 31);
  Network net = one_layer(x.shape(), [&](Network& n, NetworkTensor t) { return n.layer_norm(t, s, b, 1e-5f); });
  Tensor want(DType::kFloat32, x.shape());
  for (int64_t r = 0; r < 6; ++r) {
    const float* in = x.data<float>() + r * 16;
    double mean = 0, var = 0;
    for (int i = 0; i < 16; ++i) mean += in[i] / 16.0;
    for (int i = 0; i < 16; ++i) var += (in[i] - mean) * (in[i] - mean) / 16.0;
    for (int i = 0; i < 16; ++i)
      want.data<float>()[r * 16 + i] =
          static_cast<float>((in[i] - mean) / std::sqrt(var + 1e-5) * s.data<float>()[i] + b.data<float>()[i]);
  }
  expect_close(run_x(net, x), want);
}

TEST(NetworkLayers, ResizeNearestAndLinear) {
  Tensor x = random_tensor({1, 2, 3, 4}, 32);
  Network nearest = one_layer(x.shape(), [](Network& n, NetworkTensor t) { return n.resize(t, {.scales = {2, 2}}); });
  Tensor near = run_x(nearest, x);
  ASSERT_EQ(near.shape(), (Shape{1, 2, 6, 8}));
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t h = 0; h < 6; ++h)
      for (int64_t w = 0; w < 8; ++w) EXPECT_EQ(at(near, {0, c, h, w}), at(x, {0, c, h / 2, w / 2}));
  Network linear = one_layer(x.shape(), [](Network& n, NetworkTensor t) {
    return n.resize(t, {.mode = ResizeOptions::Mode::kLinear, .sizes = {5, 7}});
  });
  // PyTorch's bilinear, align_corners=False.
  auto src = [](int64_t o, int64_t in, int64_t out, int64_t* i0, int64_t* i1, double* l) {
    double f = std::max(0.0, (o + 0.5) * static_cast<double>(in) / out - 0.5);
    *i0 = static_cast<int64_t>(f);
    *i1 = std::min(*i0 + 1, in - 1);
    *l = f - *i0;
  };
  Tensor want(DType::kFloat32, {1, 2, 5, 7});
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t h = 0; h < 5; ++h)
      for (int64_t w = 0; w < 7; ++w) {
        int64_t h0, h1, w0, w1;
        double lh, lw;
        src(h, 3, 5, &h0, &h1, &lh);
        src(w, 4, 7, &w0, &w1, &lw);
        at(want, {0, c, h, w}) =
            static_cast<float>((1 - lh) * ((1 - lw) * at(x, {0, c, h0, w0}) + lw * at(x, {0, c, h0, w1})) +
                               lh * ((1 - lw) * at(x, {0, c, h1, w0}) + lw * at(x, {0, c, h1, w1})));
      }
  expect_close(run_x(linear, x), want);
}

TEST(NetworkLayers, ScaledDotProductAttentionWithMask) {
  Network net("attn");
  NetworkTensor q = net.input("q", DType::kFloat32, {2, 2, 5, 8});
  NetworkTensor k = net.input("k", DType::kFloat32, {2, 2, 6, 8});
  NetworkTensor v = net.input("v", DType::kFloat32, {2, 2, 6, 4});
  Tensor mask = random_tensor({5, 6}, 33, -2, 0);
  net.mark_output(net.attention(q, k, v, net.constant(mask, "mask"), 0, "attn"), "y");
  Tensor qv = random_tensor({2, 2, 5, 8}, 34), kv = random_tensor({2, 2, 6, 8}, 35),
         vv = random_tensor({2, 2, 6, 4}, 36);
  Tensor got = net.session().run({{"q", qv}, {"k", kv}, {"v", vv}})[0];
  Tensor want =
      attention_ref(qv.reshaped({4, 5, 8}), kv.reshaped({4, 6, 8}), vv.reshaped({4, 6, 4}), &mask, 1 / std::sqrt(8.0));
  expect_close(got, want.reshaped({2, 2, 5, 4}));
}

TEST(NetworkLayers, MultiHeadAttentionLikePyTorch) {
  const int64_t B = 2, S = 5, E = 8, H = 2, D = E / H;
  MultiHeadAttentionWeights w{random_tensor({3 * E, E}, 37, -0.5f, 0.5f), random_tensor({3 * E}, 38),
                              random_tensor({E, E}, 39, -0.5f, 0.5f), random_tensor({E}, 40)};
  Network net = one_layer(
      {B, S, E}, [&](Network& n, NetworkTensor t) { return n.multi_head_attention(t, t, t, H, w, {}, "mha"); });
  Tensor x = random_tensor({B, S, E}, 41);
  // Projections, heads [B*H, S, D], attention, merge, out projection.
  Tensor proj[3];
  for (int64_t i = 0; i < 3; ++i) {
    Tensor wi(DType::kFloat32, {E, E}), bi(DType::kFloat32, {E});
    std::copy_n(w.in_proj_weight.data<float>() + i * E * E, E * E, wi.data<float>());
    std::copy_n(w.in_proj_bias.data<float>() + i * E, E, bi.data<float>());
    Tensor p = linear_ref(x, wi, &bi);
    proj[i] = Tensor(DType::kFloat32, {B * H, S, D});
    for (int64_t b = 0; b < B; ++b)
      for (int64_t s = 0; s < S; ++s)
        for (int64_t e = 0; e < E; ++e) at(proj[i], {b * H + e / D, s, e % D}) = at(p, {b, s, e});
  }
  Tensor o = attention_ref(proj[0], proj[1], proj[2], nullptr, 1 / std::sqrt(static_cast<double>(D)));
  Tensor merged(DType::kFloat32, {B, S, E});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < S; ++s)
      for (int64_t e = 0; e < E; ++e) at(merged, {b, s, e}) = at(o, {b * H + e / D, s, e % D});
  expect_close(run_x(net, x), linear_ref(merged, w.out_proj_weight, &w.out_proj_bias));
}

TEST(NetworkLayers, PReluPadGather) {
  Tensor x = random_tensor({2, 3, 4, 5}, 42);
  Tensor slope = random_tensor({3}, 43, 0, 0.5f);
  Network prelu = one_layer(x.shape(), [&](Network& n, NetworkTensor t) { return n.prelu(t, slope); });
  Tensor want(DType::kFloat32, x.shape());
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float v = x.data<float>()[i];
    want.data<float>()[i] = v > 0 ? v : v * slope.data<float>()[(i / 20) % 3];
  }
  expect_close(run_x(prelu, x), want);

  // Pad H by (1, 2) and W by (0, 1): constant 0.5, reflect, edge.
  const std::vector<int64_t> pads = {0, 0, 1, 0, 0, 0, 2, 1};
  for (PadMode mode : {PadMode::kConstant, PadMode::kReflect, PadMode::kEdge}) {
    SCOPED_TRACE(static_cast<int>(mode));
    Network net = one_layer(x.shape(), [&](Network& n, NetworkTensor t) { return n.pad(t, pads, mode, 0.5f); });
    Tensor got = run_x(net, x);
    ASSERT_EQ(got.shape(), (Shape{2, 3, 7, 6}));
    auto source = [&](int64_t i, int64_t size) {  // index into x along a padded dim, -1 for the constant
      if (i >= 0 && i < size) return i;
      if (mode == PadMode::kConstant) return int64_t{-1};
      if (mode == PadMode::kEdge) return i < 0 ? int64_t{0} : size - 1;
      return i < 0 ? -i : 2 * (size - 1) - i;
    };
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t h = 0; h < 7; ++h)
          for (int64_t w = 0; w < 6; ++w) {
            const int64_t sh = source(h - 1, 4), sw = source(w, 5);
            const float v = sh < 0 || sw < 0 ? 0.5f : at(x, {n, c, sh, sw});
            EXPECT_EQ(at(got, {n, c, h, w}), v);
          }
  }

  // An embedding lookup.
  Tensor table = random_tensor({10, 4}, 44);
  Network emb("embedding");
  NetworkTensor ids = emb.input("ids", DType::kInt64, {"batch", 3});
  emb.mark_output(emb.gather(emb.constant(table, "table"), ids, 0, "embed"), "y");
  EXPECT_EQ(emb.outputs()[0].str(), "float[batch x 3 x 4]");
  Tensor idv(DType::kInt64, {2, 3});
  for (int64_t i = 0; i < 6; ++i) idv.data<int64_t>()[i] = (i * 7) % 10;
  Tensor got = emb.session().run({{"ids", idv}})[0];
  ASSERT_EQ(got.shape(), (Shape{2, 3, 4}));
  for (int64_t i = 0; i < 6; ++i)
    for (int64_t e = 0; e < 4; ++e) EXPECT_EQ(got.data<float>()[i * 4 + e], at(table, {(i * 7) % 10, e}));
  std::string e = error_of([&] { emb.gather(emb.inputs()[0], emb.outputs()[0], 0, "bad"); });
  EXPECT_NE(e.find("layer 'bad' (Gather): indices 'y' must be int64 or int32"), std::string::npos) << e;
}

}  // namespace kiln::test
