// The roofline arithmetic of kiln profile (src/analysis/roofline.h) on
// synthetic machines and nodes: which roof applies (L2 or DRAM by working
// set, compute or memory by intensity against the ridge), the fraction of it,
// unknowns; and the bytes a node moves, by hand and on an imported Conv.
#include "analysis/roofline.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "ir/infer.h"
#include "model_builder.h"
#include "onnx/import.h"

namespace kiln {
namespace {

// 100 GFLOP/s; 200 GB/s from L2 (ridge 0.5 FLOP/byte), 20 GB/s from DRAM
// (ridge 5 FLOP/byte); a 32 MiB last-level cache.
MachineRoofs machine() {
  MachineRoofs m;
  m.peak_gflops = 100;
  m.l2_gbps = 200;
  m.dram_gbps = 20;
  m.llc_bytes = int64_t{32} << 20;
  return m;
}

TEST(Roofline, ComputeBoundFractionOfPeak) {
  // 1 GFLOP on 1 MB in 20 ms: 1000 FLOP/byte, far right of the ridge; 50 GFLOP/s of 100.
  const RooflinePoint p = roofline_point(1'000'000'000, 1'000'000, 0.02, machine());
  EXPECT_EQ(p.bound, Bound::kCompute);
  EXPECT_EQ(p.level, MemoryLevel::kL2);
  EXPECT_DOUBLE_EQ(p.intensity, 1000.0);
  EXPECT_DOUBLE_EQ(p.ridge, 0.5);
  EXPECT_DOUBLE_EQ(p.roof, 100.0);
  EXPECT_DOUBLE_EQ(p.achieved_gflops, 50.0);
  EXPECT_DOUBLE_EQ(p.achieved, 50.0);
  EXPECT_DOUBLE_EQ(p.achieved_gbps, 0.05);
  EXPECT_DOUBLE_EQ(p.fraction, 0.5);
}

TEST(Roofline, MemoryBoundFractionOfL2Bandwidth) {
  // 1 MFLOP on 4 MB (0.25 FLOP/byte < 0.5) in 0.1 ms: 40 GB/s of L2's 200.
  const RooflinePoint p = roofline_point(1'000'000, 4'000'000, 1e-4, machine());
  EXPECT_EQ(p.bound, Bound::kMemory);
  EXPECT_EQ(p.level, MemoryLevel::kL2);
  EXPECT_DOUBLE_EQ(p.bandwidth_gbps, 200.0);
  EXPECT_DOUBLE_EQ(p.roof, 200.0);
  EXPECT_DOUBLE_EQ(p.achieved_gbps, 40.0);
  EXPECT_DOUBLE_EQ(p.achieved, 40.0);
  EXPECT_DOUBLE_EQ(p.achieved_gflops, 10.0);
  EXPECT_DOUBLE_EQ(p.fraction, 0.2);
}

TEST(Roofline, WorkingSetOverTheLastLevelCacheUsesDram) {
  // 2 FLOP/byte: memory-bound against DRAM (ridge 5) when the bytes exceed
  // the LLC, compute-bound against L2 (ridge 0.5) when they fit.
  const int64_t big = int64_t{64} << 20, small = int64_t{1} << 20;
  const RooflinePoint far = roofline_point(2 * big, big, 0.01, machine());
  EXPECT_EQ(far.level, MemoryLevel::kDram);
  EXPECT_EQ(far.bound, Bound::kMemory);
  EXPECT_DOUBLE_EQ(far.ridge, 5.0);
  EXPECT_DOUBLE_EQ(far.roof, 20.0);
  const double gbps = static_cast<double>(big) / 0.01 / 1e9;  // 6.71 GB/s
  EXPECT_DOUBLE_EQ(far.achieved_gbps, gbps);
  EXPECT_DOUBLE_EQ(far.fraction, gbps / 20.0);

  const RooflinePoint near = roofline_point(2 * small, small, 1e-4, machine());
  EXPECT_EQ(near.level, MemoryLevel::kL2);
  EXPECT_EQ(near.bound, Bound::kCompute);
  EXPECT_DOUBLE_EQ(near.fraction, 2.0 * small / 1e-4 / 1e9 / 100.0);

  // Exactly the LLC's size still fits.
  EXPECT_EQ(roofline_point(0, machine().llc_bytes, 1e-3, machine()).level, MemoryLevel::kL2);
  EXPECT_EQ(roofline_point(0, machine().llc_bytes + 1, 1e-3, machine()).level, MemoryLevel::kDram);
  // An unknown LLC: every node is taken to fit.
  MachineRoofs no_llc = machine();
  no_llc.llc_bytes = 0;
  EXPECT_EQ(roofline_point(2 * big, big, 0.01, no_llc).level, MemoryLevel::kL2);
}

TEST(Roofline, AtTheRidgeIsComputeBound) {
  const RooflinePoint p = roofline_point(1'000'000, 2'000'000, 1e-3, machine());  // 0.5 FLOP/byte
  EXPECT_DOUBLE_EQ(p.intensity, p.ridge);
  EXPECT_EQ(p.bound, Bound::kCompute);
  const RooflinePoint q = roofline_point(999'999, 2'000'000, 1e-3, machine());
  EXPECT_EQ(q.bound, Bound::kMemory);
}

TEST(Roofline, FractionIsAchievedOverAttainable) {
  // The classic form: attainable GFLOP/s = min(peak, intensity x bandwidth);
  // the fraction of the roof is the achieved GFLOP/s over it, whichever roof
  // bounds the node.
  const MachineRoofs m = machine();
  for (int64_t bytes : {int64_t{1000}, int64_t{1} << 20, int64_t{100} << 20})
    for (int64_t flops : {int64_t{1}, int64_t{999}, int64_t{100'000}, int64_t{1} << 30})
      for (double seconds : {1e-6, 3e-4, 0.5}) {
        const RooflinePoint p = roofline_point(flops, bytes, seconds, m);
        const double bw = bytes > m.llc_bytes ? m.dram_gbps : m.l2_gbps;
        const double intensity = static_cast<double>(flops) / static_cast<double>(bytes);
        const double attainable = std::min(m.peak_gflops, intensity * bw);
        const double achieved = static_cast<double>(flops) / seconds / 1e9;
        EXPECT_NEAR(p.fraction, achieved / attainable, 1e-12 * (achieved / attainable))
            << flops << " FLOPs, " << bytes << " bytes, " << seconds << " s";
        EXPECT_EQ(p.bound, intensity * bw >= m.peak_gflops ? Bound::kCompute : Bound::kMemory);
      }
}

TEST(Roofline, UnknownsStayUnknown) {
  const MachineRoofs m = machine();
  // No FLOPs at all (a copy, a layout change): memory-bound.
  RooflinePoint p = roofline_point(0, 1'000'000, 1e-4, m);
  EXPECT_EQ(p.bound, Bound::kMemory);
  EXPECT_DOUBLE_EQ(p.intensity, 0.0);
  EXPECT_DOUBLE_EQ(p.fraction, 10.0 / 200.0);
  // FLOPs unknown: the bandwidth reached is known, the bound is not.
  p = roofline_point(-1, 1'000'000, 1e-4, m);
  EXPECT_EQ(p.bound, Bound::kUnknown);
  EXPECT_DOUBLE_EQ(p.achieved_gbps, 10.0);
  EXPECT_LT(p.fraction, 0);
  EXPECT_LT(p.intensity, 0);
  // Bytes unknown or zero.
  EXPECT_EQ(roofline_point(1000, -1, 1e-4, m).bound, Bound::kUnknown);
  EXPECT_EQ(roofline_point(1000, 0, 1e-4, m).bound, Bound::kUnknown);
  EXPECT_LT(roofline_point(1000, -1, 1e-4, m).fraction, 0);
  // Too short to time: classified, no rate.
  p = roofline_point(1000, 1000, 0, m);
  EXPECT_EQ(p.bound, Bound::kCompute);
  EXPECT_LT(p.fraction, 0);
  EXPECT_LT(p.achieved, 0);
  // Roofs unknown.
  MachineRoofs none;
  p = roofline_point(1000, 1000, 1e-3, none);
  EXPECT_EQ(p.bound, Bound::kUnknown);
  EXPECT_LT(p.fraction, 0);
  EXPECT_DOUBLE_EQ(p.intensity, 1.0);
}

TEST(Roofline, Names) {
  EXPECT_STREQ(bound_name(Bound::kCompute), "compute");
  EXPECT_STREQ(bound_name(Bound::kMemory), "memory");
  EXPECT_STREQ(bound_name(Bound::kUnknown), "unknown");
  EXPECT_STREQ(memory_level_name(MemoryLevel::kL2), "L2");
  EXPECT_STREQ(memory_level_name(MemoryLevel::kDram), "DRAM");
}

Value tensor_value(DType t, Shape s) {
  Value v;
  v.type = ValueType::tensor(t, std::move(s));
  return v;
}

TEST(RooflineBytes, InputsAndOutputsOnceEach) {
  Value x = tensor_value(DType::kFloat32, {2, 3, 4});  // 96 bytes
  Value axes = tensor_value(DType::kInt64, {3});       // 24
  Value w = tensor_value(DType::kFloat16, {5});        // 10
  Value y = tensor_value(DType::kFloat32, {2, 3, 4});  // 96
  Node n;
  n.inputs = {&x, &axes, nullptr, &w, &x};  // an omitted optional input; x read twice, counted once
  n.outputs = {&y, nullptr};
  EXPECT_EQ(node_bytes_moved(n), 96 + 24 + 10 + 96);

  Value scalar = tensor_value(DType::kFloat64, {});
  Node s;
  s.inputs = {&scalar};
  s.outputs = {&y};
  EXPECT_EQ(node_bytes_moved(s), 8 + 96);
}

TEST(RooflineBytes, UnknownShapesAndTypes) {
  Value x = tensor_value(DType::kFloat32, {2, 3});
  Value symbolic;
  symbolic.type.dtype = DType::kFloat32;
  symbolic.type.shape = DimVector{Dim::named("N"), Dim::known(3)};
  Value no_rank;
  no_rank.type.dtype = DType::kFloat32;
  Value strings = tensor_value(DType::kString, {4});
  Value sequence = tensor_value(DType::kFloat32, {4});
  sequence.type.kind = ValueKind::kSequence;
  Value huge = tensor_value(DType::kFloat32, {int64_t{1} << 40, int64_t{1} << 40});
  for (Value* bad : {&symbolic, &no_rank, &strings, &sequence, &huge}) {
    Node n;
    n.inputs = {&x};
    n.outputs = {bad};
    EXPECT_EQ(node_bytes_moved(n), -1) << bad->type.str();
  }
}

TEST(RooflineBytes, ImportedConvCountsItsWeights) {
  onnx::ModelProto m = test::make_model();
  auto* g = m.mutable_graph();
  *g->add_input() = test::tensor_info("x", onnx::TensorProto::FLOAT, {1, 4, 8, 8});
  *g->add_initializer() = test::float_tensor("w", {6, 4, 3, 3}, std::vector<float>(6 * 4 * 9, 0.1f));
  *g->add_initializer() = test::float_tensor("b", {6}, std::vector<float>(6, 0.0f));
  auto conv = test::make_node("Conv", {"x", "w", "b"}, {"y"}, "conv");
  auto* a = conv.add_attribute();
  a->set_name("pads"), a->set_type(onnx::AttributeProto::INTS);
  for (int i = 0; i < 4; ++i) a->add_ints(1);
  *g->add_node() = conv;
  *g->add_output() = test::tensor_info("y", onnx::TensorProto::FLOAT, {1, 6, 8, 8});
  const std::string bytes = test::bytes_of(m);
  Model model = load_onnx_bytes(bytes.data(), bytes.size());
  std::vector<UnsupportedNode> unsupported;
  infer_graph(*model.graph, &unsupported);
  ASSERT_TRUE(unsupported.empty());
  const Node& n = *model.graph->nodes.at(0);
  EXPECT_EQ(node_bytes_moved(n), 4 * (4 * 64 + 6 * 4 * 9 + 6 + 6 * 64));
}

}  // namespace
}  // namespace kiln
