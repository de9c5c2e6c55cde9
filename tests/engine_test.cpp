// Engine files (kiln build, src/engine/): static and dynamic builds run like
// the ONNX model they came from, profiles bound the shapes and the memory.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/file.h"
#include "kernels/cpu/winograd_f32.h"
#include "kiln/error.h"
#include "kiln/session.h"
#include "model_builder.h"

namespace kiln {
namespace {

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("kiln_engine_test_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    model_ = (dir_ / "model.onnx").string();
    write_file(model_, test::bytes_of(test::residual_conv_model()));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  static Tensor input(int64_t n, uint32_t seed) {
    Tensor t(DType::kFloat32, {n, 16, 16, 16});
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
    return t;
  }

  // Largest |a - b| relative to the largest |b|.
  static double rel_diff(const Tensor& a, const Tensor& b) {
    EXPECT_EQ(a.shape(), b.shape());
    double diff = 0, scale = 1e-30;
    for (int64_t i = 0; i < std::min(a.numel(), b.numel()); ++i) {
      diff = std::max(diff, static_cast<double>(std::fabs(a.data<float>()[i] - b.data<float>()[i])));
      scale = std::max(scale, static_cast<double>(std::fabs(b.data<float>()[i])));
    }
    return diff / scale;
  }

  std::filesystem::path dir_;
  std::string model_;
};

ShapeProfile batch_profile(int64_t lo, int64_t opt, int64_t hi) {
  ShapeProfile p;
  p.min["x"] = {lo, 16, 16, 16};
  p.opt["x"] = {opt, 16, 16, 16};
  p.max["x"] = {hi, 16, 16, 16};
  return p;
}

TEST_F(EngineTest, StaticBuildMatchesTheOnnxModel) {
  BuildOptions o;
  o.session.input_shapes["x"] = {3, 16, 16, 16};
  o.time_tactics = false;  // kiln's rule, which picks Winograd for these convs (timing may not)
  BuildReport r = build_engine(model_, path("static.kiln"), o);
  EXPECT_GT(r.engine_bytes, 0u);
  EXPECT_GT(r.packed_bytes, 0u);
  Session onnx = Session::load(model_);
  Session engine = Session::load(path("static.kiln"));
  EXPECT_TRUE(engine.is_engine());
  EXPECT_FALSE(onnx.is_engine());
  ASSERT_EQ(engine.profiles().size(), 1u);
  EXPECT_EQ(engine.profiles()[0].min.at("x"), (Shape{3, 16, 16, 16}));
  EXPECT_TRUE(engine.load_warnings().empty());
  const Tensor x = input(3, 1);
  EXPECT_LT(rel_diff(engine.run({{"x", x}})[0], onnx.run({{"x", x}})[0]), 1e-5);
  // The packed kernels are the ones recorded at build (no Winograd below
  // AVX2, e.g. KILN_CPU_ISA=scalar).
  const std::vector<std::string> impl = engine.implementations();
  if (WinogradF32Conv::available()) {
    EXPECT_NE(std::find(impl.begin(), impl.end(), "winograd"), impl.end()) << ::testing::PrintToString(impl);
  }
  EXPECT_NE(std::find(impl.begin(), impl.end(), "onednn"), impl.end());
  // Another shape than the static one is refused, naming the input.
  try {
    engine.run({{"x", input(2, 1)}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("x"), std::string::npos) << e.what();
  }
}

TEST_F(EngineTest, TacticTimingChoosesPerConvAndCachesTheTimings) {
  BuildOptions o;
  o.session.input_shapes["x"] = {2, 16, 16, 16};
  o.timing_cache = path("timing.json");
  const BuildReport first = build_engine(model_, path("timed.kiln"), o);
  const BuildReport second = build_engine(model_, path("timed.kiln"), o);
  if (!WinogradF32Conv::available()) {
    EXPECT_EQ(first.tactics_timed + first.tactics_cached, 0);  // one candidate kernel only
    return;
  }
  EXPECT_GT(first.tactics_timed, 0);
  EXPECT_EQ(second.tactics_timed, 0);
  EXPECT_EQ(second.tactics_cached, first.tactics_timed + first.tactics_cached);
  Session onnx = Session::load(model_);
  Session engine = Session::load(path("timed.kiln"));
  const Tensor x = input(2, 5);
  EXPECT_LT(rel_diff(engine.run({{"x", x}})[0], onnx.run({{"x", x}})[0]), 1e-5);
}

TEST_F(EngineTest, ProfileRunsEveryBatchInsideItAndRefusesOthers) {
  BuildOptions o;
  o.profiles = {batch_profile(1, 4, 9)};
  build_engine(model_, path("dyn.kiln"), o);
  Session onnx = Session::load(model_);
  Session engine = Session::load(path("dyn.kiln"));
  for (int64_t n : {1, 3, 4, 7, 9, 2, 9, 1}) {
    const Tensor x = input(n, static_cast<uint32_t>(n));
    EXPECT_LT(rel_diff(engine.run({{"x", x}})[0], onnx.run({{"x", x}})[0]), 1e-5) << "batch " << n;
  }
  for (int64_t n : {10, 0}) {
    try {
      engine.run({{"x", input(n, 0)}});
      FAIL() << "batch " << n << " ran";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("x:" + std::to_string(n) + "x16x16x16"), std::string::npos) << msg;
      EXPECT_NE(msg.find("x:1x16x16x16..9x16x16x16"), std::string::npos) << msg;
    }
  }
}

TEST_F(EngineTest, SeveralProfilesPickTheOneThatFits) {
  BuildOptions o;
  o.profiles = {batch_profile(1, 2, 4), batch_profile(5, 8, 12)};
  build_engine(model_, path("two.kiln"), o);
  Session onnx = Session::load(model_);
  Session engine = Session::load(path("two.kiln"));
  ASSERT_EQ(engine.profiles().size(), 2u);
  for (int64_t n : {2, 12, 5, 4}) {
    const Tensor x = input(n, 3);
    EXPECT_LT(rel_diff(engine.run({{"x", x}})[0], onnx.run({{"x", x}})[0]), 1e-5) << "batch " << n;
  }
  SessionOptions first;
  first.profile = 0;
  Session fixed = Session::load(path("two.kiln"), first);
  EXPECT_NO_THROW(fixed.run({{"x", input(3, 3)}}));
  EXPECT_THROW(fixed.run({{"x", input(6, 3)}}), Error);
  SessionOptions missing;
  missing.profile = 2;
  EXPECT_THROW(Session::load(path("two.kiln"), missing), Error);
}

TEST_F(EngineTest, BadProfilesAreRefusedAtBuild) {
  BuildOptions o;
  o.profiles = {batch_profile(4, 2, 8)};  // opt < min
  EXPECT_THROW(build_engine(model_, path("bad.kiln"), o), Error);
  ShapeProfile fixed_dim = batch_profile(1, 2, 4);
  fixed_dim.max["x"][1] = 32;  // the model fixes dim 1 to 16
  o.profiles = {fixed_dim};
  EXPECT_THROW(build_engine(model_, path("bad.kiln"), o), Error);
  ShapeProfile unknown = batch_profile(1, 2, 4);
  unknown.min["nope"] = unknown.opt["nope"] = unknown.max["nope"] = {1};
  o.profiles = {unknown};
  EXPECT_THROW(build_engine(model_, path("bad.kiln"), o), Error);
  // Dynamic dims without a profile or shapes.
  EXPECT_THROW(build_engine(model_, path("bad.kiln"), BuildOptions{}), Error);
}

// Resident memory in bytes (/proc/self/statm).
size_t resident_bytes() {
  std::ifstream f("/proc/self/statm");
  size_t pages = 0, resident = 0;
  f >> pages >> resident;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

// Sanitizer builds hold freed memory in a quarantine: resident memory grows
// with every allocation there, so this measurement means nothing under them.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

TEST_F(EngineTest, RandomBatchesInsideTheProfileKeepMemoryFlat) {
  if (kSanitized) GTEST_SKIP() << "resident memory under AddressSanitizer's quarantine";
  BuildOptions o;
  o.profiles = {batch_profile(1, 8, 32)};
  build_engine(model_, path("mem.kiln"), o);
  SessionOptions so;
  so.threads = 1;
  Session engine = Session::load(path("mem.kiln"), so);
  std::vector<Tensor> inputs;
  for (int64_t n = 1; n <= 32; ++n) inputs.push_back(input(n, static_cast<uint32_t>(n)));
  engine.run({{"x", inputs.back()}});  // the max batch first
  const size_t arena = engine.arena_bytes();
  const size_t after_first = resident_bytes();
  std::mt19937 rng(11);
  auto runs = [&](int count) {
    for (int i = 0; i < count; ++i) engine.run({{"x", inputs[rng() % inputs.size()]}});
  };
  // Within 5% of the first run's (code paths first taken elsewhere cost a
  // little), then nothing grows with more shapes.
  runs(300);
  const size_t warm = resident_bytes();
  EXPECT_LE(static_cast<double>(warm), static_cast<double>(after_first) * 1.05)
      << "after the first run " << after_first << ", after 300 " << warm;
  runs(2000);
  const size_t after = resident_bytes();
  EXPECT_EQ(engine.arena_bytes(), arena);
  EXPECT_LE(static_cast<double>(after), static_cast<double>(warm) * 1.01)
      << "resident memory grew from " << warm << " to " << after << " bytes over 2000 runs";
  // Primitives for the batch_chunks sizes only (a BlockedConv preparing the
  // whole batch just to learn its output size made one per batch size: 2-5 MB
  // for these 32 sizes).
  EXPECT_LE(after, after_first + (size_t{2} << 20));
}

}  // namespace
}  // namespace kiln
