// Shape and data-movement ops (Shape, Reshape, Squeeze, Transpose, Concat,
// Split, Slice, Pad, Tile, Expand, ...) against plain references written here
// from the spec, on random inputs, plus every old opset form that differs.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "core/thread_pool.h"
#include "op_harness.h"

namespace kiln::test {

namespace {

Tensor iota_f32(Shape shape) {
  Tensor t(DType::kFloat32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(i);
  return t;
}

std::vector<int64_t> ints_of(const Tensor& t) { return {t.data<int64_t>(), t.data<int64_t>() + t.numel()}; }
std::vector<float> floats_of(const Tensor& t) { return {t.data<float>(), t.data<float>() + t.numel()}; }

}  // namespace

// ------------------------------------------------------------------ Shape, Size

TEST(TensorOps, ShapeWithStartEnd) {
  Tensor x(DType::kFloat32, {2, 3, 4, 5});
  EXPECT_EQ(ints_of(run_node({.op = "Shape", .opset = 13, .inputs = {x}})[0]), (std::vector<int64_t>{2, 3, 4, 5}));
  auto out =
      run_node({.op = "Shape", .opset = 15, .inputs = {x}, .attrs = {{"start", attr_int(-3)}, {"end", attr_int(-1)}}});
  EXPECT_EQ(ints_of(out[0]), (std::vector<int64_t>{3, 4}));
  out = run_node({.op = "Shape", .opset = 15, .inputs = {x}, .attrs = {{"start", attr_int(10)}}});
  EXPECT_EQ(out[0].numel(), 0);  // clamped
  out = run_node({.op = "Size", .opset = 13, .inputs = {x}});
  EXPECT_EQ(out[0].rank(), 0);
  EXPECT_EQ(out[0].data<int64_t>()[0], 120);
}

// -------------------------------------------------------------------- Reshape

TEST(TensorOps, ReshapeZeroMinusOneAndAllowzero) {
  Tensor x = iota_f32({2, 3, 4});
  for (bool constant : {false, true}) {
    auto out =
        run_node({.op = "Reshape", .opset = 14, .inputs = {x, make_i64({3}, {0, -1, 2})}, .constant_inputs = constant});
    EXPECT_EQ(out[0].shape(), (Shape{2, 6, 2}));
    EXPECT_EQ(floats_of(out[0]), floats_of(x));
  }
  // allowzero: a 0 is a real zero dim.
  Tensor empty(DType::kFloat32, {0, 3});
  auto out = run_node({.op = "Reshape",
                       .opset = 14,
                       .inputs = {empty, make_i64({3}, {3, 0, 5})},
                       .attrs = {{"allowzero", attr_int(1)}}});
  EXPECT_EQ(out[0].shape(), (Shape{3, 0, 5}));
  EXPECT_THROW(run_node({.op = "Reshape", .opset = 14, .inputs = {x, make_i64({2}, {-1, -1})}}), Error);
  EXPECT_THROW(run_node({.op = "Reshape", .opset = 14, .inputs = {x, make_i64({2}, {5, -1})}}), Error);
  EXPECT_THROW(run_node({.op = "Reshape", .opset = 14, .inputs = {x, make_i64({2}, {1 << 30, 1 << 30})}}), Error);
  // Opset 1-4: the shape is an attribute.
  out = run_node({.op = "Reshape", .opset = 4, .inputs = {x}, .attrs = {{"shape", attr_ints({4, -1})}}});
  EXPECT_EQ(out[0].shape(), (Shape{4, 6}));
}

TEST(TensorOps, FlattenAxes) {
  Tensor x = iota_f32({2, 3, 4});
  EXPECT_EQ(run_node({.op = "Flatten", .opset = 13, .inputs = {x}})[0].shape(), (Shape{2, 12}));
  EXPECT_EQ(run_node({.op = "Flatten", .opset = 13, .inputs = {x}, .attrs = {{"axis", attr_int(0)}}})[0].shape(),
            (Shape{1, 24}));
  EXPECT_EQ(run_node({.op = "Flatten", .opset = 13, .inputs = {x}, .attrs = {{"axis", attr_int(-1)}}})[0].shape(),
            (Shape{6, 4}));
  EXPECT_EQ(run_node({.op = "Flatten", .opset = 13, .inputs = {x}, .attrs = {{"axis", attr_int(3)}}})[0].shape(),
            (Shape{24, 1}));
  EXPECT_THROW(run_node({.op = "Flatten", .opset = 13, .inputs = {x}, .attrs = {{"axis", attr_int(4)}}}), Error);
}

TEST(TensorOps, SqueezeUnsqueezeOldAndNew) {
  Tensor x = iota_f32({1, 3, 1, 2});
  EXPECT_EQ(run_node({.op = "Squeeze", .opset = 13, .inputs = {x}})[0].shape(), (Shape{3, 2}));
  EXPECT_EQ(run_node({.op = "Squeeze", .opset = 13, .inputs = {x, make_i64({1}, {-2})}})[0].shape(), (Shape{1, 3, 2}));
  EXPECT_EQ(run_node({.op = "Squeeze", .opset = 11, .inputs = {x}, .attrs = {{"axes", attr_ints({0})}}})[0].shape(),
            (Shape{3, 1, 2}));
  EXPECT_THROW(run_node({.op = "Squeeze", .opset = 13, .inputs = {x, make_i64({1}, {1})}}), Error);
  Tensor y = iota_f32({3, 2});
  for (bool constant : {false, true}) {
    auto out =
        run_node({.op = "Unsqueeze", .opset = 13, .inputs = {y, make_i64({2}, {0, -1})}, .constant_inputs = constant});
    EXPECT_EQ(out[0].shape(), (Shape{1, 3, 2, 1}));
  }
  EXPECT_EQ(run_node({.op = "Unsqueeze", .opset = 11, .inputs = {y}, .attrs = {{"axes", attr_ints({1})}}})[0].shape(),
            (Shape{3, 1, 2}));
  EXPECT_THROW(run_node({.op = "Unsqueeze", .opset = 13, .inputs = {y, make_i64({2}, {0, 0})}}), Error);
}

// ------------------------------------------------------------------ Transpose

TEST(TensorOps, TransposeAgainstReference) {
  std::mt19937 rng(11);
  Tensor x = random_f32({2, 3, 4, 5}, rng);
  std::vector<int64_t> perm = {2, 0, 3, 1};
  auto out = run_node({.op = "Transpose", .opset = 13, .inputs = {x}, .attrs = {{"perm", attr_ints(perm)}}});
  ASSERT_EQ(out[0].shape(), (Shape{4, 2, 5, 3}));
  for (const auto& o : all_indices(out[0].shape())) {
    std::vector<int64_t> i(4);
    for (size_t d = 0; d < 4; ++d) i[static_cast<size_t>(perm[d])] = o[d];
    ASSERT_EQ(at(out[0], o), at(x, i));
  }
  out = run_node({.op = "Transpose", .opset = 13, .inputs = {x}});  // default: reversed
  ASSERT_EQ(out[0].shape(), (Shape{5, 4, 3, 2}));
  EXPECT_EQ(at(out[0], {4, 1, 2, 1}), at(x, {1, 2, 1, 4}));
  EXPECT_THROW(run_node({.op = "Transpose", .opset = 13, .inputs = {x}, .attrs = {{"perm", attr_ints({0, 0, 1, 2})}}}),
               Error);
}

// --------------------------------------------------------------- Concat/Split

TEST(TensorOps, ConcatAgainstReference) {
  std::mt19937 rng(12);
  Tensor a = random_f32({2, 3, 2}, rng), b = random_f32({2, 1, 2}, rng), c(DType::kFloat32, {2, 0, 2});
  auto out = run_node({.op = "Concat", .opset = 13, .inputs = {a, c, b}, .attrs = {{"axis", attr_int(-2)}}});
  ASSERT_EQ(out[0].shape(), (Shape{2, 4, 2}));
  for (const auto& o : all_indices(out[0].shape()))
    EXPECT_EQ(at(out[0], o), o[1] < 3 ? at(a, o) : at(b, {o[0], o[1] - 3, o[2]}));
  // Opset 1-3: axis defaults to 1.
  out = run_node({.op = "Concat", .opset = 3, .inputs = {a, b}});
  EXPECT_EQ(out[0].shape(), (Shape{2, 4, 2}));
  EXPECT_THROW(run_node({.op = "Concat", .opset = 13, .inputs = {a, b}, .attrs = {{"axis", attr_int(0)}}}), Error);
  EXPECT_THROW(run_node({.op = "Concat", .opset = 13, .inputs = {a, b}}), Error);  // axis required since 4
}

TEST(TensorOps, SplitAllOpsetForms) {
  Tensor x = iota_f32({2, 7});
  auto check = [&](const std::vector<Tensor>& outs, const std::vector<int64_t>& sizes) {
    ASSERT_EQ(outs.size(), sizes.size());
    int64_t start = 0;
    for (size_t k = 0; k < sizes.size(); ++k) {
      ASSERT_EQ(outs[k].shape(), (Shape{2, sizes[k]}));
      for (int64_t r = 0; r < 2; ++r)
        for (int64_t j = 0; j < sizes[k]; ++j) EXPECT_EQ(at(outs[k], {r, j}), at(x, {r, start + j}));
      start += sizes[k];
    }
  };
  check(run_node({.op = "Split",
                  .opset = 18,
                  .inputs = {x},
                  .attrs = {{"axis", attr_int(1)}, {"num_outputs", attr_int(3)}},
                  .num_outputs = 3}),
        {3, 3, 1});
  check(run_node({.op = "Split",
                  .opset = 13,
                  .inputs = {x, make_i64({3}, {2, 0, 5})},
                  .attrs = {{"axis", attr_int(-1)}},
                  .num_outputs = 3}),
        {2, 0, 5});
  check(run_node({.op = "Split",
                  .opset = 11,
                  .inputs = {x},
                  .attrs = {{"axis", attr_int(1)}, {"split", attr_ints({4, 3})}},
                  .num_outputs = 2}),
        {4, 3});
  check(run_node({.op = "Split",
                  .opset = 1,
                  .inputs = {x, make_i64({2}, {1, 6})},
                  .attrs = {{"axis", attr_int(1)}},
                  .num_outputs = 2}),
        {1, 6});
  check(run_node({.op = "Split",
                  .opset = 13,
                  .inputs = {x, make_i64({2}, {6, 1})},
                  .attrs = {{"axis", attr_int(1)}},
                  .num_outputs = 2,
                  .constant_inputs = true}),
        {6, 1});
  // Before opset 18 an equal split must divide evenly.
  EXPECT_THROW(
      run_node({.op = "Split", .opset = 13, .inputs = {x}, .attrs = {{"axis", attr_int(1)}}, .num_outputs = 2}), Error);
  EXPECT_THROW(run_node({.op = "Split",
                         .opset = 13,
                         .inputs = {x, make_i64({2}, {3, 3})},
                         .attrs = {{"axis", attr_int(1)}},
                         .num_outputs = 2}),
               Error);
}

// ---------------------------------------------------------------------- Slice

TEST(TensorOps, SliceStepsAndClampingAgainstReference) {
  std::mt19937 rng(13);
  // Rows of 20: long enough for the contiguous-run copy (>= 16 elements).
  Tensor x = random_f32({5, 6, 20}, rng);
  struct Case {
    std::vector<int64_t> starts, ends, axes, steps;
  };
  std::vector<Case> cases = {
      {{1}, {4}, {1}, {1}},               // a channel split: whole rows
      {{0, 3}, {5, 19}, {0, 2}, {2, 1}},  // part of each row
      {{2}, {3}, {0}, {1}},               // one contiguous block
      {{1, 0}, {4, 6}, {0, 1}, {1, 2}},
      {{-1}, {-100}, {1}, {-2}},               // negative step to the front
      {{INT64_MAX}, {INT64_MIN}, {-1}, {-1}},  // clamped full reverse
      {{2, 10}, {1, 20}, {0, 2}, {1, 1}},      // empty
      {{-3}, {INT64_MAX}, {0}, {3}},
  };
  for (const Case& c : cases) {
    for (bool constant : {false, true}) {
      auto out = run_node(
          {.op = "Slice",
           .opset = 13,
           .inputs = {x, make_i64({(int64_t)c.starts.size()}, c.starts), make_i64({(int64_t)c.ends.size()}, c.ends),
                      make_i64({(int64_t)c.axes.size()}, c.axes), make_i64({(int64_t)c.steps.size()}, c.steps)},
           .constant_inputs = constant});
      // Reference: python's slice semantics per axis, element by element.
      std::vector<std::vector<int64_t>> sel(3);
      for (int64_t d = 0; d < 3; ++d)
        for (int64_t i = 0; i < x.dim(d); ++i) sel[d].push_back(i);
      for (size_t k = 0; k < c.axes.size(); ++k) {
        int64_t d = (c.axes[k] + 3) % 3, n = x.dim(d), st = c.steps[k];
        auto fix = [&](int64_t v, bool is_end) {
          if (v < 0) v = std::max<int64_t>(v, -n - 1) + n;
          if (st > 0) return std::clamp<int64_t>(v, 0, n);
          return std::clamp<int64_t>(v, -1, n - 1) - (is_end ? 0 : 0);
        };
        int64_t s = fix(c.starts[k], false), e = fix(c.ends[k], true);
        if (st < 0) s = std::min(s, n - 1);
        sel[d].clear();
        for (int64_t i = s; st > 0 ? i < e : i > e; i += st) sel[d].push_back(i);
      }
      ASSERT_EQ(out[0].shape(), (Shape{(int64_t)sel[0].size(), (int64_t)sel[1].size(), (int64_t)sel[2].size()}));
      for (const auto& o : all_indices(out[0].shape()))
        ASSERT_EQ(at(out[0], o), at(x, {sel[0][o[0]], sel[1][o[1]], sel[2][o[2]]}));
    }
  }
  EXPECT_THROW(
      run_node({.op = "Slice",
                .opset = 13,
                .inputs = {x, make_i64({1}, {0}), make_i64({1}, {2}), make_i64({1}, {0}), make_i64({1}, {0})}}),
      Error);
  // Opset 1-9: attributes, no steps.
  auto out = run_node(
      {.op = "Slice",
       .opset = 9,
       .inputs = {x},
       .attrs = {{"starts", attr_ints({1, -2})}, {"ends", attr_ints({3, 1000})}, {"axes", attr_ints({0, 2})}}});
  ASSERT_EQ(out[0].shape(), (Shape{2, 6, 2}));
  EXPECT_EQ(at(out[0], {1, 5, 1}), at(x, {2, 5, 19}));
}

// ------------------------------------------------------------------------ Pad

// Reference source index for one axis; -1 for the constant.
int64_t ref_pad_index(int64_t o, int64_t before, int64_t n, const std::string& mode) {
  int64_t i = o - before;
  if (i >= 0 && i < n) return i;
  if (mode == "constant") return -1;
  if (mode == "edge") return i < 0 ? 0 : n - 1;
  if (mode == "wrap") return ((i % n) + n) % n;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;  // reflect, edge not repeated
  return i;
}

TEST(TensorOps, PadModesAgainstReference) {
  std::mt19937 rng(14);
  Tensor x = random_f32({3, 4}, rng);
  std::vector<int64_t> pads = {2, 1, 1, 3};  // begin0 begin1 end0 end1
  for (std::string mode : {"constant", "reflect", "edge", "wrap"}) {
    auto out = run_node({.op = "Pad",
                         .opset = 19,
                         .inputs = {x, make_i64({4}, pads), Tensor::scalar_float(2.5f)},
                         .attrs = {{"mode", attr_string(mode)}}});
    ASSERT_EQ(out[0].shape(), (Shape{6, 8})) << mode;
    for (const auto& o : all_indices(out[0].shape())) {
      int64_t r = ref_pad_index(o[0], 2, 3, mode), c = ref_pad_index(o[1], 1, 4, mode);
      float want = r < 0 || c < 0 ? 2.5f : at(x, {r, c});
      ASSERT_EQ(at(out[0], o), want) << mode << " at " << o[0] << "," << o[1];
    }
  }
  // Negative pads crop; axes input (opset 18).
  auto out =
      run_node({.op = "Pad", .opset = 18, .inputs = {x, make_i64({2}, {-1, 2}), std::nullopt, make_i64({1}, {-1})}});
  ASSERT_EQ(out[0].shape(), (Shape{3, 5}));
  EXPECT_EQ(at(out[0], {1, 0}), at(x, {1, 1}));
  EXPECT_EQ(at(out[0], {1, 4}), 0.0f);
  // Opset 2-10: pads and value attributes; opset 1: paddings.
  out = run_node({.op = "Pad",
                  .opset = 10,
                  .inputs = {x},
                  .attrs = {{"pads", attr_ints({0, 1, 0, 0})}, {"value", attr_float(-1)}}});
  EXPECT_EQ(at(out[0], {0, 0}), -1.0f);
  EXPECT_EQ(at(out[0], {2, 4}), at(x, {2, 3}));
  out = run_node({.op = "Pad",
                  .opset = 1,
                  .inputs = {x},
                  .attrs = {{"paddings", attr_ints({1, 0, 0, 0})}, {"mode", attr_string("edge")}}});
  EXPECT_EQ(at(out[0], {0, 2}), at(x, {0, 2}));
  EXPECT_THROW(run_node({.op = "Pad", .opset = 13, .inputs = {x, make_i64({3}, {1, 1, 1})}}), Error);
  EXPECT_THROW(run_node({.op = "Pad", .opset = 13, .inputs = {x, make_i64({4}, {0, 0, -4, 0})}}), Error);
}

TEST(TensorOps, CenterCropPad) {
  Tensor x = iota_f32({5, 4, 2});
  auto out = run_node({.op = "CenterCropPad",
                       .opset = 18,
                       .inputs = {x, make_i64({2}, {2, 7})},
                       .attrs = {{"axes", attr_ints({0, -2})}}});
  ASSERT_EQ(out[0].shape(), (Shape{2, 7, 2}));
  // Crop 5 -> 2 starts at (5-2)/2 = 1; pad 4 -> 7 starts at (7-4)/2 = 1.
  for (const auto& o : all_indices(out[0].shape())) {
    int64_t c = o[1] - 1;
    EXPECT_EQ(at(out[0], o), c < 0 || c >= 4 ? 0.0f : at(x, {o[0] + 1, c, o[2]}));
  }
}

// ------------------------------------------------------ Expand, Tile, generators

TEST(TensorOps, ExpandAndTile) {
  std::mt19937 rng(15);
  Tensor x = random_f32({3, 1}, rng);
  for (bool constant : {false, true}) {
    auto out =
        run_node({.op = "Expand", .opset = 13, .inputs = {x, make_i64({3}, {2, 1, 4})}, .constant_inputs = constant});
    ASSERT_EQ(out[0].shape(), (Shape{2, 3, 4}));
    for (const auto& o : all_indices(out[0].shape())) ASSERT_EQ(at(out[0], o), at(x, {o[1], 0}));
  }
  EXPECT_THROW(run_node({.op = "Expand", .opset = 13, .inputs = {x, make_i64({2}, {2, 4})}}), Error);
  EXPECT_THROW(run_node({.op = "Expand", .opset = 13, .inputs = {x, make_i64({3}, {1 << 20, 1 << 20, 1})}}), Error);

  Tensor y = random_f32({2, 3}, rng);
  auto out = run_node({.op = "Tile", .opset = 13, .inputs = {y, make_i64({2}, {3, 2})}});
  ASSERT_EQ(out[0].shape(), (Shape{6, 6}));
  for (const auto& o : all_indices(out[0].shape())) ASSERT_EQ(at(out[0], o), at(y, {o[0] % 2, o[1] % 3}));
  EXPECT_THROW(run_node({.op = "Tile", .opset = 13, .inputs = {y, make_i64({2}, {-1, 2})}}), Error);
  // Tile-1: scalar tiles and axis inputs.
  out = run_node({.op = "Tile", .opset = 5, .inputs = {y, make_i64({}, {2}), make_i64({}, {1})}});
  ASSERT_EQ(out[0].shape(), (Shape{2, 6}));
  EXPECT_EQ(at(out[0], {1, 4}), at(y, {1, 1}));
}

// The row-copy path of Expand and Tile: many broadcast patterns (inner,
// outer, middle, several, none, zero repeats), threaded, against index
// arithmetic.
TEST(TensorOps, ExpandAndTilePatternsThreaded) {
  std::mt19937 rng(16);
  ThreadPool pool(2);
  const std::vector<std::pair<Shape, Shape>> expands = {{{3, 1}, {2, 3, 400}}, {{1, 5, 1, 7}, {4, 5, 30, 7}},
                                                        {{6}, {50, 40, 6}},    {{2, 1, 3}, {2, 900, 3}},
                                                        {{2, 3}, {2, 3}},      {{1}, {0, 5}}};
  for (const auto& [in, want] : expands) {
    Tensor x = random_f32(in, rng);
    auto out = run_node({.op = "Expand",
                         .opset = 13,
                         .inputs = {x, make_i64({static_cast<int64_t>(want.size())}, want)},
                         .pool = &pool});
    ASSERT_EQ(out[0].shape(), want);
    const size_t lead = want.size() - in.size();
    for (const auto& o : all_indices(want)) {
      std::vector<int64_t> src;
      for (size_t d = 0; d < in.size(); ++d) src.push_back(in[d] == 1 ? 0 : o[lead + d]);
      ASSERT_EQ(at(out[0], o), at(x, src)) << shape_str(in) << " -> " << shape_str(want);
    }
  }
  for (const auto& [in, reps] : std::vector<std::pair<Shape, Shape>>{
           {{2, 3, 50}, {3, 1, 40}}, {{5, 7}, {1, 1}}, {{4, 1, 3}, {2, 300, 1}}, {{3, 2}, {0, 2}}}) {
    Tensor x = random_f32(in, rng);
    auto out = run_node(
        {.op = "Tile", .opset = 13, .inputs = {x, make_i64({static_cast<int64_t>(reps.size())}, reps)}, .pool = &pool});
    for (size_t d = 0; d < in.size(); ++d) ASSERT_EQ(out[0].shape()[d], in[d] * reps[d]);
    for (const auto& o : all_indices(out[0].shape())) {
      std::vector<int64_t> src;
      for (size_t d = 0; d < in.size(); ++d) src.push_back(o[d] % in[d]);
      ASSERT_EQ(at(out[0], o), at(x, src));
    }
  }
}

TEST(TensorOps, ConstantOfShapeAndRange) {
  Tensor v(DType::kInt32, {1});
  v.data<int32_t>()[0] = 7;
  for (bool constant : {false, true}) {
    auto out = run_node({.op = "ConstantOfShape",
                         .opset = 20,
                         .inputs = {make_i64({2}, {2, 3})},
                         .attrs = {{"value", attr_tensor(v)}},
                         .constant_inputs = constant});
    ASSERT_EQ(out[0].dtype(), DType::kInt32);
    ASSERT_EQ(out[0].shape(), (Shape{2, 3}));
    for (int i = 0; i < 6; ++i) EXPECT_EQ(out[0].data<int32_t>()[i], 7);
  }
  auto out = run_node({.op = "ConstantOfShape", .opset = 9, .inputs = {make_i64({0}, {})}});
  EXPECT_EQ(out[0].dtype(), DType::kFloat32);
  EXPECT_EQ(out[0].rank(), 0);
  EXPECT_THROW(run_node({.op = "ConstantOfShape", .opset = 9, .inputs = {make_i64({2}, {-1, 3})}}), Error);
  EXPECT_THROW(run_node({.op = "ConstantOfShape", .opset = 9, .inputs = {make_i64({3}, {1 << 20, 1 << 20, 1 << 20})}}),
               Error);

  out = run_node({.op = "Range", .opset = 11, .inputs = {make_i64({}, {10}), make_i64({}, {3}), make_i64({}, {-3})}});
  EXPECT_EQ(ints_of(out[0]), (std::vector<int64_t>{10, 7, 4}));
  out = run_node({.op = "Range",
                  .opset = 11,
                  .inputs = {Tensor::scalar_float(1), Tensor::scalar_float(2), Tensor::scalar_float(0.25f)}});
  EXPECT_EQ(floats_of(out[0]), (std::vector<float>{1, 1.25f, 1.5f, 1.75f}));
  out = run_node({.op = "Range", .opset = 11, .inputs = {make_i64({}, {3}), make_i64({}, {1}), make_i64({}, {2})}});
  EXPECT_EQ(out[0].numel(), 0);
  EXPECT_THROW(
      run_node({.op = "Range", .opset = 11, .inputs = {make_i64({}, {0}), make_i64({}, {1}), make_i64({}, {0})}}),
      Error);
  EXPECT_THROW(
      run_node(
          {.op = "Range", .opset = 11, .inputs = {make_i64({}, {0}), make_i64({}, {INT64_MAX}), make_i64({}, {1})}}),
      Error);
}

TEST(TensorOps, DropoutIsIdentityAtInference) {
  std::mt19937 rng(16);
  Tensor x = random_f32({3, 4}, rng);
  auto out = run_node({.op = "Dropout", .opset = 13, .inputs = {x, Tensor::scalar_float(0.3f)}, .num_outputs = 2});
  EXPECT_EQ(floats_of(out[0]), floats_of(x));
  ASSERT_EQ(out[1].dtype(), DType::kBool);
  for (int i = 0; i < 12; ++i) EXPECT_TRUE(out[1].data<bool>()[i]);
  out = run_node({.op = "Dropout", .opset = 6, .inputs = {x}, .attrs = {{"is_test", attr_int(1)}}, .num_outputs = 2});
  EXPECT_EQ(out[1].dtype(), DType::kFloat32);  // before opset 10 the mask has the input's type
  EXPECT_THROW(
      run_node({.op = "Dropout", .opset = 13, .inputs = {x, Tensor::scalar_float(0.3f), make_bool({}, {true})}}),
      Error);
  out = run_node({.op = "Dropout", .opset = 13, .inputs = {x, Tensor::scalar_float(0.0f), make_bool({}, {true})}});
  EXPECT_EQ(floats_of(out[0]), floats_of(x));
}

TEST(TensorOps, StringTensorsMove) {
  Tensor s = Tensor::from_strings({2, 2}, {"a", "b", "c", "d"});
  auto out = run_node({.op = "Transpose", .opset = 13, .inputs = {s}});
  EXPECT_EQ(out[0].data<std::string>()[1], "c");
  out = run_node({.op = "Concat", .opset = 13, .inputs = {s, s}, .attrs = {{"axis", attr_int(0)}}});
  EXPECT_EQ(out[0].data<std::string>()[6], "c");
}

}  // namespace kiln::test
