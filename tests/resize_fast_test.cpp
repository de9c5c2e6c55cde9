// Resize's float32 fast path (nearest and bilinear over the last two axes)
// against the same node in float64, which runs the reference kernel.
#include <gtest/gtest.h>

#include "core/thread_pool.h"
#include "op_harness.h"

namespace kiln::test {

namespace {

// Nearest must pick the very same pixels (exact); linear may differ by float
// rounding.
void expect_matches_f64(NodeSpec spec, bool exact) {
  NodeSpec ref = spec;
  ref.inputs[0] = to_f64(*ref.inputs[0]);
  const Tensor want = to_f32_tensor(run_node(ref)[0]);
  ThreadPool pool(2);
  for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
    spec.pool = p;
    const Tensor got = run_node(spec)[0];
    ASSERT_EQ(got.shape(), want.shape());
    EXPECT_TRUE(all_close(got, want, exact ? 0 : 1e-6, exact ? 0 : 1e-6)) << " threaded=" << (p != nullptr);
  }
}

// One resize target: either scales or sizes for every axis.
struct Target {
  Shape in;
  std::vector<float> scales;
  std::vector<int64_t> sizes;
};

std::vector<Target> targets() {
  return {
      {{1, 1, 1, 1}, {}, {1, 1, 4, 5}},           // 1x1 input
      {{2, 3, 7, 5}, {}, {2, 3, 23, 11}},         // odd sizes
      {{1, 1, 7, 5}, {}, {1, 1, 1, 1}},           // 1-pixel output
      {{1, 4, 16, 13}, {1, 1, 0.5f, 0.37f}, {}},  // downsample
      {{1, 2, 6, 6}, {1, 1, 1.7f, 2.3f}, {}},     // non-integer upsample
      {{2, 16, 5, 6}, {1, 1, 2, 2}, {}},          // many planes, integer scale
      {{1, 1, 9, 4}, {1, 1, 8, 8}, {}},           // one plane, rows split across threads
      {{1, 3, 5, 9}, {}, {1, 3, 5, 4}},           // one axis unchanged
      {{3, 5, 8}, {}, {3, 5, 17}},                // 3-D, last axis only
      {{2, 5, 7}, {}, {2, 9, 4}},                 // 3-D, last two axes
      {{1, 2, 3, 4, 5}, {1, 1, 1, 2, 1.5f}, {}},  // 5-D
  };
}

NodeSpec resize_spec(const Target& t, std::mt19937& rng, int opset, std::map<std::string, Attribute> attrs) {
  NodeSpec s{.op = "Resize", .opset = opset, .attrs = std::move(attrs)};
  const int64_t r = static_cast<int64_t>(t.in.size());
  s.inputs = {random_f32(t.in, rng), std::nullopt};
  if (!t.scales.empty())
    s.inputs.push_back(make_f32({r}, t.scales));
  else
    s.inputs.insert(s.inputs.end(), {std::nullopt, make_i64({r}, t.sizes)});
  return s;
}

const char* kCoords[] = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "half_pixel_symmetric"};

}  // namespace

TEST(ResizeFast, LinearAllCoordinateModes) {
  std::mt19937 rng(70);
  for (const char* coord : kCoords)
    for (const Target& t : targets()) {
      SCOPED_TRACE(std::string(coord) + " in=" + std::to_string(t.in.back()));
      expect_matches_f64(
          resize_spec(t, rng, 19,
                      {{"mode", attr_string("linear")}, {"coordinate_transformation_mode", attr_string(coord)}}),
          false);
    }
}

TEST(ResizeFast, NearestAllCoordinateAndNearestModes) {
  std::mt19937 rng(71);
  for (const char* coord : kCoords)
    for (const char* nearest : {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"})
      for (const Target& t : targets()) {
        SCOPED_TRACE(std::string(coord) + " " + nearest + " in=" + std::to_string(t.in.back()));
        expect_matches_f64(resize_spec(t, rng, 19,
                                       {{"mode", attr_string("nearest")},
                                        {"coordinate_transformation_mode", attr_string(coord)},
                                        {"nearest_mode", attr_string(nearest)}}),
                           true);
      }
}

TEST(ResizeFast, LegacyVersionsAndAxes) {
  std::mt19937 rng(72);
  const Tensor x = random_f32({2, 3, 5, 7}, rng);
  // Resize-10 and Upsample-9: asymmetric, legacy nearest (ceil when downsampling).
  for (const char* mode : {"nearest", "linear"})
    for (const std::vector<float>& sc : {std::vector<float>{1, 1, 2, 3}, std::vector<float>{1, 1, 0.6f, 0.45f}}) {
      const bool exact = std::string(mode) == "nearest";
      expect_matches_f64(
          {.op = "Resize", .opset = 10, .inputs = {x, make_f32({4}, sc)}, .attrs = {{"mode", attr_string(mode)}}},
          exact);
      expect_matches_f64(
          {.op = "Upsample", .opset = 9, .inputs = {x, make_f32({4}, sc)}, .attrs = {{"mode", attr_string(mode)}}},
          exact);
    }
  expect_matches_f64({.op = "Upsample", .opset = 7, .inputs = {x}, .attrs = {{"scales", attr_floats({1, 1, 2, 2})}}},
                     true);
  // Opset 18 axes and keep_aspect_ratio_policy.
  for (const char* policy : {"stretch", "not_larger", "not_smaller"})
    expect_matches_f64({.op = "Resize",
                        .opset = 18,
                        .inputs = {x, std::nullopt, std::nullopt, make_i64({2}, {9, 20})},
                        .attrs = {{"mode", attr_string("linear")},
                                  {"axes", attr_ints({2, 3})},
                                  {"keep_aspect_ratio_policy", attr_string(policy)}}},
                       false);
}

TEST(ResizeFast, ReferenceStillServesOtherCases) {
  std::mt19937 rng(73);
  const Tensor x = random_f32({1, 3, 5, 7}, rng);
  // Cubic, a resized channel axis, antialias and tf_crop_and_resize.
  expect_matches_f64({.op = "Resize",
                      .opset = 13,
                      .inputs = {x, std::nullopt, make_f32({4}, {1, 1, 1.5f, 2})},
                      .attrs = {{"mode", attr_string("cubic")}}},
                     false);
  expect_matches_f64({.op = "Resize",
                      .opset = 13,
                      .inputs = {x, std::nullopt, make_f32({4}, {1, 2, 2, 2})},
                      .attrs = {{"mode", attr_string("linear")}}},
                     false);
  expect_matches_f64({.op = "Resize",
                      .opset = 18,
                      .inputs = {x, std::nullopt, make_f32({4}, {1, 1, 0.5f, 0.5f})},
                      .attrs = {{"mode", attr_string("linear")}, {"antialias", attr_int(1)}}},
                     false);
  expect_matches_f64({.op = "Resize",
                      .opset = 13,
                      .inputs = {x, make_f32({8}, {0, 0, 0.2f, 0.1f, 1, 1, 0.9f, 1.2f}), make_f32({4}, {1, 1, 2, 2})},
                      .attrs = {{"mode", attr_string("linear")},
                                {"coordinate_transformation_mode", attr_string("tf_crop_and_resize")},
                                {"extrapolation_value", attr_float(3.5f)}}},
                     false);
}

}  // namespace kiln::test
