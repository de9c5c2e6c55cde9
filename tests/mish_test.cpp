// Mish, an activation added in one file (src/ops/mish.cpp): it runs, fuses
// into the conv before it (plain and blocked layout), and counts its FLOPs,
// from its facts alone.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "analysis/flops.h"
#include "ir/op.h"
#include "kernels/cpu/cpu_isa.h"
#include "kiln/session.h"
#include "model_builder.h"
#include "op_harness.h"

namespace kiln::test {
namespace {

double mish_ref(double x) { return x * std::tanh(std::log1p(std::exp(x))); }

// x [2, C, 12, 12] -> Conv 3x3 (pad 1) -> Mish -> Conv 3x3 -> Mish -> y.
std::string conv_mish_model(int64_t c) {
  onnx::ModelProto m = make_model(18);
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {2, c, 12, 12});
  *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {2, c, 12, 12});
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> u(-0.4f, 0.4f);
  std::string cur = "x";
  for (int i = 0; i < 2; ++i) {
    const std::string id = std::to_string(i);
    std::vector<float> w(static_cast<size_t>(c * c * 9));
    for (float& v : w) v = u(rng);
    *g->add_initializer() = float_tensor("w" + id, {c, c, 3, 3}, w);
    onnx::NodeProto conv = make_node("Conv", {cur, "w" + id}, {"c" + id}, "conv" + id);
    auto* pads = conv.add_attribute();
    pads->set_name("pads");
    pads->set_type(onnx::AttributeProto::INTS);
    for (int k = 0; k < 4; ++k) pads->add_ints(1);
    *g->add_node() = conv;
    const std::string out = i == 1 ? "y" : "m" + id;
    *g->add_node() = make_node("Mish", {"c" + id}, {out}, "mish" + id);
    cur = out;
  }
  return bytes_of(m);
}

TEST(Mish, MatchesTheDoubleReference) {
  std::mt19937 rng(9);
  Tensor x = random_f32({3, 257}, rng, -30, 30);
  onnx::ModelProto m = make_model(18);
  *m.mutable_graph()->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {3, 257});
  *m.mutable_graph()->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {3, 257});
  *m.mutable_graph()->add_node() = make_node("Mish", {"x"}, {"y"}, "mish");
  const std::string bytes = bytes_of(m);
  const Tensor y = Session::load_bytes(bytes.data(), bytes.size()).run({{"x", x}})[0];
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double want = mish_ref(x.data<float>()[i]);
    EXPECT_NEAR(y.data<float>()[i], want, 4e-7 * std::max(1.0, std::fabs(want))) << x.data<float>()[i];
  }
}

TEST(Mish, FusesIntoTheConvBeforeItAndMatchesTheUnfusedGraph) {
  for (int64_t c : {5, 16}) {  // odd channels: the blocked layout's padded lanes
    const std::string bytes = conv_mish_model(c);
    SessionOptions plain;
    plain.opt_level = 0;
    Session unfused = Session::load_bytes(bytes.data(), bytes.size(), plain);
    Session fused = Session::load_bytes(bytes.data(), bytes.size());
    int convs_with_mish = 0, blocked = 0;
    for (const Session::ExecutedNode& n : fused.executed_nodes()) {
      blocked += n.op == "kiln.BlockedConv";
      EXPECT_NE(n.op, "Mish") << "Mish ran on its own";
      bool conv = false, mish = false;
      for (const std::string& o : n.origins) {
        conv |= o.rfind("conv", 0) == 0;
        mish |= o.rfind("mish", 0) == 0;
      }
      convs_with_mish += conv && mish;
    }
    EXPECT_EQ(convs_with_mish, 2) << "channels " << c;
    // oneDNN has no Mish post-op: a blocked conv applies the step itself.
    if (c == 16 && cpu_isa_selected() >= CpuIsa::kAvx2) {
      EXPECT_GT(blocked, 0);
    }
    std::mt19937 rng(2);
    const Tensor x = random_f32({2, c, 12, 12}, rng);
    // 1e-4: a 16-channel 3x3 conv runs Winograd under AVX2, whose rounding
    // error scales with the sum of the terms, not with each output.
    EXPECT_TRUE(all_close(fused.run({{"x", x}})[0], unfused.run({{"x", x}})[0], 1e-4, 1e-4)) << "channels " << c;
  }
}

TEST(Mish, AFusedMishCostsItsFlops) {
  // 16 channels: no padded lanes in either channel block (8 or 16).
  const std::string bytes = conv_mish_model(16);
  Session fused = Session::load_bytes(bytes.data(), bytes.size());
  int fused_convs = 0;
  for (const auto& n : fused.executed_nodes()) {
    if (n.macs <= 0) continue;
    ++fused_convs;
    EXPECT_EQ(n.flops, 2 * n.macs + 5 * (2 * 16 * 12 * 12)) << n.name << " (" << n.op << ")";
  }
  EXPECT_EQ(fused_convs, 2);
}

}  // namespace
}  // namespace kiln::test
