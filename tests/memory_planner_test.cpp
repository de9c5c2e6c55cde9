// The memory planner end to end (runtime/arena.h): arena reuse, results
// identical to heap allocation, views of planned blocks, new input shapes and
// concurrent runs.
#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "kernels/cpu/dnnl_glue.h"
#include "kiln/session.h"
#include "model_builder.h"
#include "ops/blocked_util.h"

namespace kiln::test {

namespace {
Session load(const onnx::ModelProto& m, bool planner, int opt_level = 2) {
  std::string b = bytes_of(m);
  SessionOptions o;
  o.memory_planner = planner;
  o.opt_level = opt_level;
  o.threads = 1;
  return Session::load_bytes(b.data(), b.size(), o);
}

Tensor ramp(Shape shape, float scale) {
  Tensor t(DType::kFloat32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>((i * 37) % 101) * scale - 1.f;
  return t;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}
}  // namespace

TEST(MemoryPlanner, ChainArenaIsSmallerThanItsTensors) {
  Session s = load(conv_chain_model(8), true);
  EXPECT_EQ(s.arena_bytes(), 0u);  // planned at the first run
  s.run({{"x", ramp({2, 8, 16, 16}, 0.02f)}});
  s.run({{"x", ramp({2, 8, 16, 16}, 0.02f)}});
  // Nine tensors of 16 KiB (the conv outputs, Relu fused in, and the skip
  // sum) of which at most three are live at once: a conv's input and output,
  // and the middle layer's output held for the skip Add through its views.
  // With AVX-512's 16-channel blocks the 8 channels are padded to 16 and
  // the layout differs (tests/passes_test.cpp, blocks_of_avx2).
  if (dnnl_glue::channel_block() != 8) {
    EXPECT_LT(s.arena_bytes(), s.planned_bytes() / 2);
    return;
  }
  EXPECT_GE(s.planned_bytes(), 9u * 16384);
  EXPECT_EQ(s.arena_bytes(), 3u * 16384);
}

TEST(MemoryPlanner, ResultsBitIdenticalToHeapAllocation) {
  Session planned = load(conv_chain_model(6), true);
  Session heap = load(conv_chain_model(6), false);
  for (int run = 0; run < 4; ++run) {
    Tensor x = ramp({2, 8, 16, 16}, 0.01f * static_cast<float>(run + 1));
    auto a = planned.run({{"x", x}});
    auto b = heap.run({{"x", x}});
    ASSERT_TRUE(same_bits(a[0], b[0])) << "run " << run;
  }
  EXPECT_GT(planned.arena_bytes(), 0u);
  EXPECT_EQ(heap.arena_bytes(), 0u);
}

TEST(MemoryPlanner, DigitsModelBitIdentical) {
  std::string path = std::string(KILN_SOURCE_DIR) + "/models/digits/model.onnx";
  SessionOptions on, off;
  off.memory_planner = false;
  Session a = Session::load(path, on), b = Session::load(path, off);
  const TensorInfo& in = a.inputs()[0];
  Shape shape;
  for (const TensorDim& d : in.shape) shape.push_back(d.size >= 0 ? d.size : 2);
  for (int run = 0; run < 3; ++run) {
    Tensor x = ramp(shape, 0.01f + 0.01f * static_cast<float>(run));
    auto ya = a.run({{in.name, x}});
    auto yb = b.run({{in.name, x}});
    ASSERT_EQ(ya.size(), yb.size());
    for (size_t i = 0; i < ya.size(); ++i) EXPECT_TRUE(same_bits(ya[i], yb[i])) << "output " << i;
  }
  EXPECT_GT(a.arena_bytes(), 0u);
}

TEST(MemoryPlanner, OutputsOutliveTheRunAndLaterRuns) {
  // The caller owns outputs: a later run reusing the arena must not touch them.
  Session s = load(conv_chain_model(4), true);
  auto first = s.run({{"x", ramp({2, 8, 16, 16}, 0.03f)}});
  auto second = s.run({{"x", ramp({2, 8, 16, 16}, 0.03f)}});
  Tensor kept = second[0].clone();
  s.run({{"x", ramp({2, 8, 16, 16}, -0.05f)}});
  EXPECT_TRUE(same_bits(first[0], kept));
  EXPECT_TRUE(same_bits(second[0], kept));
}

TEST(MemoryPlanner, SymbolicShapesGetOnePlanEach) {
  // y = relu(x + x) with x float[N, 3]: every N gets its own plan.
  onnx::ModelProto m = make_model();
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {-1, 3}, {"N"});
  *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {-1, 3}, {"N"});
  *g->add_node() = make_node("Add", {"x", "x"}, {"t"}, "add");
  *g->add_node() = make_node("Relu", {"t"}, {"u"}, "relu");
  *g->add_node() = make_node("Neg", {"u"}, {"y"}, "neg");
  Session s = load(m, true, /*opt_level=*/0);  // keep Relu and Neg apart
  for (int64_t n : {1000, 7, 1000, 0, 20000, 7}) {
    Tensor x = ramp({n, 3}, 0.1f);
    for (int rep = 0; rep < 2; ++rep) {
      auto y = s.run({{"x", x}});
      for (int64_t i = 0; i < x.numel(); ++i)
        ASSERT_EQ(y[0].data<float>()[i], -std::max(0.f, 2 * x.data<float>()[i])) << "N=" << n;
    }
  }
  // The largest plan (N = 20000): t and u are live together at the Relu.
  EXPECT_EQ(s.arena_bytes(), 2u * 20000 * 3 * sizeof(float));
}

TEST(MemoryPlanner, ConcurrentRunsFromFourThreads) {
  Session s = load(conv_chain_model(6), true);
  Session reference = load(conv_chain_model(6), false);
  std::vector<Tensor> inputs, expected;
  for (int t = 0; t < 4; ++t) {
    inputs.push_back(ramp({2, 8, 16, 16}, 0.01f * static_cast<float>(t + 1)));
    expected.push_back(reference.run({{"x", inputs.back()}})[0]);
  }
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int iter = 0; iter < 50; ++iter) {
        size_t k = static_cast<size_t>((t + iter) % 4);
        if (!same_bits(s.run({{"x", inputs[k]}})[0], expected[k])) ++mismatches;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace kiln::test

// Kernels' per-shape caches (oneDNN primitives) keep a bounded number of
// shapes, least recently used dropped first, and an entry a run still holds
// stays alive when it is dropped.
TEST(ShapeCache, KeepsABoundedNumberOfShapesLeastRecentlyUsedDroppedFirst) {
  kiln::blocked::ShapeCache<int> cache(2);  // 2 always-needed shapes + the recent ones
  const size_t cap = cache.capacity();
  ASSERT_EQ(cap, 2 + kiln::blocked::ShapeCache<int>::kRecentShapes);
  int made = 0;
  auto get = [&](int64_t w) { return cache.get({1, w}, [&] { return ++made; }); };
  std::shared_ptr<const int> first = get(0);
  for (int64_t w = 1; w < static_cast<int64_t>(cap); ++w) get(w);
  EXPECT_EQ(made, static_cast<int>(cap));
  EXPECT_EQ(*get(0), 1);  // a hit, and now the most recent
  EXPECT_EQ(made, static_cast<int>(cap));
  for (int64_t w = 100; w < 200; ++w) get(w);  // many new shapes: the size stays at the bound
  EXPECT_EQ(cache.size(), cap);
  EXPECT_EQ(*first, 1);  // dropped from the cache, alive for its holder
  const int made_before = made;
  EXPECT_EQ(*get(0), made_before + 1);  // made again
  // The most recent shapes are kept, the oldest were dropped.
  const int before = made;
  get(199);
  EXPECT_EQ(made, before);
  get(100);
  EXPECT_EQ(made, before + 1);
}
