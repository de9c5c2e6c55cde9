// Several threads running one session: every output bit-identical to a
// serial run of the same input, for a CNN with the kernels that keep state
// between runs (oneDNN grouped, depthwise and dense convolutions with their
// scratchpads, reorders to and from the blocked layout, pools, Winograd where
// the ISA has it, GEMM), from an ONNX model and from an engine whose profile
// lets the threads use different batch sizes. The zoo models get the same
// check through tests/concurrency/concurrency_check.cpp.
#include <gtest/gtest.h>

#include <unistd.h>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kiln/session.h"
#include "model_builder.h"
#include "op_harness.h"

namespace kiln::test {
namespace {

void set_ints(onnx::NodeProto* n, const std::string& name, std::vector<int64_t> v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}

void set_int(onnx::NodeProto* n, const std::string& name, int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}

// x float[N, 32, 28, 28] -> 3x3 conv (Winograd-sized) + Relu -> grouped 3x3
// conv (8 groups of 4, as ResNeXt) + Relu -> 1x1 conv stride 2 -> depthwise
// 3x3 -> max pool -> grouped 1x1 conv (2 groups) -> global average pool ->
// Gemm 10.
onnx::ModelProto grouped_cnn() {
  onnx::ModelProto m = make_model();
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {-1, 32, 28, 28}, {"N"});
  *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {-1, 10}, {"N"});
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-0.3f, 0.3f);
  auto weights = [&](const std::string& name, std::vector<int64_t> dims) {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = u(rng);
    *g->add_initializer() = float_tensor(name, dims, v);
  };
  auto conv = [&](const std::string& name, const std::string& in, int64_t m_out, int64_t c_per_group, int64_t k,
                  int64_t group, int64_t stride) {
    weights(name + "_w", {m_out, c_per_group, k, k});
    weights(name + "_b", {m_out});
    *g->add_node() = make_node("Conv", {in, name + "_w", name + "_b"}, {name}, name);
    onnx::NodeProto* n = g->mutable_node(g->node_size() - 1);
    set_ints(n, "pads", {k / 2, k / 2, k / 2, k / 2});
    set_ints(n, "strides", {stride, stride});
    set_int(n, "group", group);
  };
  conv("dense", "x", 32, 32, 3, 1, 1);
  *g->add_node() = make_node("Relu", {"dense"}, {"r1"}, "relu1");
  conv("grouped", "r1", 32, 4, 3, 8, 1);
  *g->add_node() = make_node("Relu", {"grouped"}, {"r2"}, "relu2");
  // A strided 1x1 conv (ResNet's downsample): oneDNN gathers its strided
  // input into a scratchpad first.
  conv("downsample", "r2", 64, 32, 1, 1, 2);
  conv("depthwise", "downsample", 64, 1, 3, 64, 1);
  *g->add_node() = make_node("MaxPool", {"depthwise"}, {"pooled"}, "maxpool");
  onnx::NodeProto* mp = g->mutable_node(g->node_size() - 1);
  set_ints(mp, "kernel_shape", {2, 2});
  set_ints(mp, "strides", {2, 2});
  conv("grouped1x1", "pooled", 64, 32, 1, 2, 1);
  *g->add_node() = make_node("GlobalAveragePool", {"grouped1x1"}, {"gap"}, "gap");
  *g->add_node() = make_node("Flatten", {"gap"}, {"flat"}, "flatten");
  weights("fc_w", {10, 64});
  weights("fc_b", {10});
  *g->add_node() = make_node("Gemm", {"flat", "fc_w", "fc_b"}, {"y"}, "fc");
  set_int(g->mutable_node(g->node_size() - 1), "transB", 1);
  return m;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// `workers` threads x `runs` runs of `s`, thread w taking input sets w, w+1,
// ...; returns how many runs gave an output that differs from a serial run.
int concurrent_mismatches(const Session& s, const std::vector<Tensor>& inputs, int workers, int runs) {
  std::vector<Tensor> refs;
  for (const Tensor& x : inputs) refs.push_back(s.run({{"x", x}})[0].clone());
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      for (int r = 0; r < runs; ++r) {
        const size_t k = static_cast<size_t>(w + r) % inputs.size();
        if (!same_bits(s.run({{"x", inputs[k]}})[0], refs[k])) ++mismatches;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  return mismatches;
}

std::vector<Tensor> inputs_with_batches(std::vector<int64_t> batches) {
  std::mt19937 rng(3);
  std::vector<Tensor> v;
  for (int64_t n : batches) v.push_back(random_f32({n, 32, 28, 28}, rng));
  return v;
}

TEST(Concurrency, OneSessionManyThreadsMatchesSerialRuns) {
  const std::string bytes = bytes_of(grouped_cnn());
  for (int threads : {1, 2}) {
    SessionOptions o;
    o.threads = threads;
    Session s = Session::load_bytes(bytes.data(), bytes.size(), o);
    EXPECT_EQ(concurrent_mismatches(s, inputs_with_batches({1, 1, 2, 3}), 8, 60), 0) << "session threads " << threads;
  }
}

TEST(Concurrency, EngineWithBatchProfileManyThreadsMatchesSerialRuns) {
  const auto dir = std::filesystem::temp_directory_path() / ("kiln_concurrency_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string model = (dir / "grouped.onnx").string(), engine = (dir / "grouped.kiln").string();
  {
    const std::string bytes = bytes_of(grouped_cnn());
    FILE* f = std::fopen(model.c_str(), "wb");
    ASSERT_TRUE(f);
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }
  BuildOptions b;
  ShapeProfile p;
  p.min["x"] = {1, 32, 28, 28};
  p.opt["x"] = {2, 32, 28, 28};
  p.max["x"] = {4, 32, 28, 28};
  b.profiles = {p};
  b.time_tactics = false;
  build_engine(model, engine, b);
  for (int threads : {1, 2}) {
    SessionOptions o;
    o.threads = threads;
    Session s = Session::load(engine, o);
    EXPECT_EQ(concurrent_mismatches(s, inputs_with_batches({1, 3, 2, 4, 1}), 8, 60), 0)
        << "session threads " << threads;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kiln::test
