// Indexing, ordering and rearranging ops (Gather*, Scatter*, TopK, ArgMax,
// Unique, OneHot, NonZero, Compress, DepthToSpace, Trilu, CumSum, ...)
// against plain references written here from the spec.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "core/half.h"
#include "core/thread_pool.h"
#include "op_harness.h"

namespace kiln::test {

namespace {

std::vector<int64_t> ints_of(const Tensor& t) { return {t.data<int64_t>(), t.data<int64_t>() + t.numel()}; }
std::vector<float> floats_of(const Tensor& t) { return {t.data<float>(), t.data<float>() + t.numel()}; }

Tensor random_i64(Shape shape, std::mt19937& rng, int64_t lo, int64_t hi) {
  Tensor t(DType::kInt64, std::move(shape));
  std::uniform_int_distribution<int64_t> d(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int64_t>()[i] = d(rng);
  return t;
}

// Expects an Error whose message contains `needle`.
template <typename F>
void expect_error_with(F f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no error (wanted '" << needle << "')";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace

// ------------------------------------------------------------------ gathers

TEST(TensorIndex, GatherNegativeIndicesAndRangeCheck) {
  std::mt19937 rng(21);
  Tensor x = random_f32({3, 5, 2}, rng);
  Tensor idx = random_i64({2, 2}, rng, -5, 4);
  auto out = run_node({.op = "Gather", .opset = 13, .inputs = {x, idx}, .attrs = {{"axis", attr_int(1)}}});
  ASSERT_EQ(out[0].shape(), (Shape{3, 2, 2, 2}));
  for (const auto& o : all_indices(out[0].shape())) {
    int64_t k = idx.data<int64_t>()[o[1] * 2 + o[2]];
    ASSERT_EQ(at(out[0], o), at(x, {o[0], k < 0 ? k + 5 : k, o[3]}));
  }
  expect_error_with(
      [&] {
        run_node({.op = "Gather", .opset = 13, .inputs = {x, make_i64({2}, {0, 3})}});
      },
      "indices[1] = 3");
  // Scalar index removes the axis.
  out = run_node({.op = "Gather", .opset = 13, .inputs = {x, make_i64({}, {-1})}});
  ASSERT_EQ(out[0].shape(), (Shape{5, 2}));
  EXPECT_EQ(at(out[0], {4, 1}), at(x, {2, 4, 1}));
}

// Middle axis, large enough to thread, int64 data; an index out of range in
// the same-shape fast path is still named.
TEST(TensorIndex, GatherElementsMiddleAxisThreaded) {
  std::mt19937 rng(23);
  ThreadPool pool(2);
  Tensor x = random_i64({3, 50, 200}, rng, -1000, 1000), idx = random_i64({3, 70, 200}, rng, -50, 49);
  auto out = run_node(
      {.op = "GatherElements", .opset = 13, .inputs = {x, idx}, .attrs = {{"axis", attr_int(1)}}, .pool = &pool});
  for (int64_t o = 0; o < 3; ++o)
    for (int64_t t = 0; t < 70; ++t)
      for (int64_t r = 0; r < 200; ++r) {
        int64_t k = idx.data<int64_t>()[(o * 70 + t) * 200 + r];
        if (k < 0) k += 50;
        ASSERT_EQ(out[0].data<int64_t>()[(o * 70 + t) * 200 + r], x.data<int64_t>()[(o * 50 + k) * 200 + r]);
      }
  idx.data<int64_t>()[5] = 50;
  expect_error_with(
      [&] {
        run_node({.op = "GatherElements", .opset = 13, .inputs = {x, idx}, .attrs = {{"axis", attr_int(1)}}});
      },
      "indices[5] = 50");
}

TEST(TensorIndex, GatherElementsAndGatherND) {
  std::mt19937 rng(22);
  Tensor x = random_f32({3, 4}, rng);
  Tensor idx = random_i64({2, 4}, rng, -3, 2);
  auto out = run_node({.op = "GatherElements", .opset = 13, .inputs = {x, idx}, .attrs = {{"axis", attr_int(0)}}});
  for (const auto& o : all_indices(idx.shape())) {
    int64_t k = idx.data<int64_t>()[o[0] * 4 + o[1]];
    ASSERT_EQ(at(out[0], o), at(x, {k < 0 ? k + 3 : k, o[1]}));
  }
  expect_error_with(
      [&] {
        run_node({.op = "GatherElements", .opset = 13, .inputs = {x, make_i64({1, 1}, {7})}});
      },
      "indices[0] = 7");

  // GatherND with batch_dims=1: data [2,3,4], indices [2,2,1] -> [2,2,4].
  Tensor d = random_f32({2, 3, 4}, rng);
  Tensor ix = make_i64({2, 2, 1}, {2, 0, -1, 1});
  out = run_node({.op = "GatherND", .opset = 13, .inputs = {d, ix}, .attrs = {{"batch_dims", attr_int(1)}}});
  ASSERT_EQ(out[0].shape(), (Shape{2, 2, 4}));
  for (const auto& o : all_indices(out[0].shape())) {
    int64_t k = ix.data<int64_t>()[o[0] * 2 + o[1]];
    ASSERT_EQ(at(out[0], o), at(d, {o[0], k < 0 ? k + 3 : k, o[2]}));
  }
  // Full-depth tuples without batch dims.
  out = run_node({.op = "GatherND", .opset = 11, .inputs = {d, make_i64({2, 3}, {1, 2, 3, 0, 0, 0})}});
  EXPECT_EQ(floats_of(out[0]), (std::vector<float>{at(d, {1, 2, 3}), at(d, {0, 0, 0})}));
  expect_error_with(
      [&] {
        run_node({.op = "GatherND", .opset = 13, .inputs = {d, make_i64({1, 2}, {0, 3})}});
      },
      "indices[1] = 3");
  EXPECT_THROW(run_node({.op = "GatherND", .opset = 11, .inputs = {d, ix}, .attrs = {{"batch_dims", attr_int(1)}}}),
               Error);
}

// ------------------------------------------------------------------ scatters

TEST(TensorIndex, ScatterElementsReductions) {
  std::mt19937 rng(23);
  Tensor x = random_f32({3, 4}, rng);
  Tensor idx = make_i64({2, 3}, {0, -1, 2, 0, 1, 2});  // duplicates in column 0 and 2
  Tensor up = random_f32({2, 3}, rng);
  for (std::string red : {"none", "add", "mul", "max", "min"}) {
    auto out = run_node({.op = "ScatterElements",
                         .opset = 18,
                         .inputs = {x, idx, up},
                         .attrs = {{"axis", attr_int(0)}, {"reduction", attr_string(red)}}});
    std::vector<float> want = floats_of(x);
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < 3; ++j) {
        int64_t k = idx.data<int64_t>()[i * 3 + j];
        float& w = want[static_cast<size_t>((k < 0 ? k + 3 : k) * 4 + j)];
        float u = at(up, {i, j});
        w = red == "none"  ? u
            : red == "add" ? w + u
            : red == "mul" ? w * u
            : red == "max" ? std::max(w, u)
                           : std::min(w, u);
      }
    EXPECT_EQ(floats_of(out[0]), want) << red;
  }
  // reduction needs opset 16 (add/mul) or 18 (max/min).
  EXPECT_THROW(
      run_node(
          {.op = "ScatterElements", .opset = 16, .inputs = {x, idx, up}, .attrs = {{"reduction", attr_string("max")}}}),
      Error);
  expect_error_with(
      [&] {
        run_node({.op = "ScatterElements", .opset = 13, .inputs = {x, make_i64({1, 1}, {3}), make_f32({1, 1}, {1})}});
      },
      "indices[0] = 3");
  // Scatter (opset 9-10) is ScatterElements without reduction.
  auto out = run_node({.op = "Scatter",
                       .opset = 10,
                       .inputs = {x, make_i64({1, 2}, {3, 0}), make_f32({1, 2}, {5, 6})},
                       .attrs = {{"axis", attr_int(1)}}});
  EXPECT_EQ(at(out[0], {0, 3}), 5.0f);
  EXPECT_EQ(at(out[0], {0, 0}), 6.0f);
  EXPECT_EQ(at(out[0], {1, 1}), at(x, {1, 1}));
}

TEST(TensorIndex, ScatterND) {
  std::mt19937 rng(24);
  Tensor x = random_f32({4, 3}, rng);
  Tensor up = random_f32({2, 3}, rng);
  auto out = run_node({.op = "ScatterND",
                       .opset = 16,
                       .inputs = {x, make_i64({2, 1}, {-1, 1}), up},
                       .attrs = {{"reduction", attr_string("add")}}});
  for (const auto& o : all_indices(x.shape())) {
    float want = at(x, o) + (o[0] == 3 ? at(up, {0, o[1]}) : o[0] == 1 ? at(up, {1, o[1]}) : 0.0f);
    ASSERT_EQ(at(out[0], o), want);
  }
  out = run_node({.op = "ScatterND", .opset = 13, .inputs = {x, make_i64({1, 2}, {2, 2}), make_f32({1}, {9})}});
  EXPECT_EQ(at(out[0], {2, 2}), 9.0f);
  expect_error_with(
      [&] {
        run_node({.op = "ScatterND", .opset = 13, .inputs = {x, make_i64({1, 2}, {4, 0}), make_f32({1}, {9})}});
      },
      "indices[0] = 4");
  EXPECT_THROW(
      run_node({.op = "ScatterND", .opset = 13, .inputs = {x, make_i64({1, 2}, {0, 0}), make_f32({2}, {9, 9})}}),
      Error);
}

TEST(TensorIndex, TensorScatterLinearAndCircular) {
  std::mt19937 rng(25);
  Tensor past = random_f32({2, 5, 3}, rng);  // batch 2, max_seq 5, axis -2
  Tensor up = random_f32({2, 2, 3}, rng);
  Tensor wi = make_i64({2}, {1, 4});
  auto out = run_node(
      {.op = "TensorScatter", .opset = 24, .inputs = {past, up, wi}, .attrs = {{"mode", attr_string("circular")}}});
  for (const auto& o : all_indices(past.shape())) {
    float want = at(past, o);
    for (int64_t t = 0; t < 2; ++t)
      if ((wi.data<int64_t>()[o[0]] + t) % 5 == o[1]) want = at(up, {o[0], t, o[2]});
    ASSERT_EQ(at(out[0], o), want);
  }
  EXPECT_THROW(run_node({.op = "TensorScatter", .opset = 24, .inputs = {past, up, wi}}), Error);  // linear overflows
  out = run_node({.op = "TensorScatter", .opset = 24, .inputs = {past, up}});
  EXPECT_EQ(at(out[0], {1, 1, 2}), at(up, {1, 1, 2}));
  EXPECT_EQ(at(out[0], {1, 2, 2}), at(past, {1, 2, 2}));
}

// ----------------------------------------------------------------- ordering

// Many long rows along a middle axis, with ties and NaN, on threads: against
// a stable sort of each row (NaN largest, ties to the smaller index).
TEST(TensorIndex, TopKLongRowsThreadedAgainstStableSort) {
  std::mt19937 rng(27);
  ThreadPool pool(2);
  const int64_t outer = 3, n = 300, inner = 40;
  Tensor x(DType::kFloat32, {outer, n, inner});
  std::uniform_int_distribution<int> d(0, 50);  // many ties
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = i % 97 == 0 ? NAN : static_cast<float>(d(rng));
  for (int largest : {1, 0})
    for (int64_t k : {0, 1, 16, 64, 65, 300}) {  // both sides of the insertion path's limit (64)
      auto out = run_node({.op = "TopK",
                           .opset = 11,
                           .inputs = {x, make_i64({1}, {k})},
                           .attrs = {{"axis", attr_int(1)}, {"largest", attr_int(largest)}},
                           .num_outputs = 2,
                           .pool = &pool});
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t j = 0; j < inner; ++j) {
          std::vector<int64_t> order(static_cast<size_t>(n));
          std::iota(order.begin(), order.end(), int64_t{0});
          auto val = [&](int64_t i) { return x.data<float>()[(o * n + i) * inner + j]; };
          auto less = [](float a, float b) { return std::isnan(a) ? false : std::isnan(b) ? true : a < b; };
          std::stable_sort(order.begin(), order.end(),
                           [&](int64_t a, int64_t b) { return largest ? less(val(b), val(a)) : less(val(a), val(b)); });
          for (int64_t t = 0; t < k; ++t)
            ASSERT_EQ(out[1].data<int64_t>()[(o * k + t) * inner + j], order[static_cast<size_t>(t)])
                << "largest " << largest << " k " << k << " row " << o << "," << j << " rank " << t;
        }
    }
}

TEST(TensorIndex, TopKStableTiesAndOldForms) {
  Tensor x = make_f32({2, 5}, {3, 1, 3, 2, 1, 0, 0, 5, 5, 0});
  auto out = run_node({.op = "TopK", .opset = 11, .inputs = {x, make_i64({1}, {3})}, .num_outputs = 2});
  EXPECT_EQ(floats_of(out[0]), (std::vector<float>{3, 3, 2, 5, 5, 0}));
  EXPECT_EQ(ints_of(out[1]), (std::vector<int64_t>{0, 2, 3, 2, 3, 0}));  // indices along the axis
  out = run_node({.op = "TopK",
                  .opset = 11,
                  .inputs = {x, make_i64({1}, {2})},
                  .attrs = {{"largest", attr_int(0)}},
                  .num_outputs = 2});
  EXPECT_EQ(ints_of(out[1]), (std::vector<int64_t>{1, 4, 0, 1}));
  // Opset 1-9: k attribute; axis 0.
  out = run_node({.op = "TopK",
                  .opset = 9,
                  .inputs = {x},
                  .attrs = {{"k", attr_int(1)}, {"axis", attr_int(0)}},
                  .num_outputs = 2});
  EXPECT_EQ(ints_of(out[1]), (std::vector<int64_t>{0, 0, 1, 1, 0}));  // column (1, 0) and (3, 5) etc.
  EXPECT_EQ(floats_of(out[0]), (std::vector<float>{3, 1, 5, 5, 1}));
  Tensor ties = make_f32({3, 1}, {4, 4, 4});  // all equal: the smaller index wins
  out = run_node({.op = "TopK",
                  .opset = 9,
                  .inputs = {ties},
                  .attrs = {{"k", attr_int(2)}, {"axis", attr_int(0)}},
                  .num_outputs = 2});
  EXPECT_EQ(ints_of(out[1]), (std::vector<int64_t>{0, 1}));
  EXPECT_THROW(run_node({.op = "TopK", .opset = 11, .inputs = {x, make_i64({1}, {6})}, .num_outputs = 2}), Error);
  // Random: compare with a sort.
  std::mt19937 rng(26);
  Tensor r = random_f32({4, 7}, rng);
  out = run_node({.op = "TopK", .opset = 11, .inputs = {r, make_i64({1}, {4})}, .num_outputs = 2});
  for (int64_t i = 0; i < 4; ++i) {
    std::vector<float> row(r.data<float>() + i * 7, r.data<float>() + i * 7 + 7);
    std::sort(row.rbegin(), row.rend());
    for (int64_t j = 0; j < 4; ++j) {
      EXPECT_EQ(at(out[0], {i, j}), row[static_cast<size_t>(j)]);
      EXPECT_EQ(at(r, {i, out[1].data<int64_t>()[i * 4 + j]}), row[static_cast<size_t>(j)]);
    }
  }
}

TEST(TensorIndex, ArgMaxArgMin) {
  Tensor x = make_f32({2, 4}, {1, 7, 7, 0, 2, 2, -1, -1});
  auto out = run_node({.op = "ArgMax", .opset = 13, .inputs = {x}, .attrs = {{"axis", attr_int(-1)}}});
  EXPECT_EQ(out[0].shape(), (Shape{2, 1}));
  EXPECT_EQ(ints_of(out[0]), (std::vector<int64_t>{1, 0}));
  out = run_node({.op = "ArgMax",
                  .opset = 13,
                  .inputs = {x},
                  .attrs = {{"axis", attr_int(1)}, {"select_last_index", attr_int(1)}, {"keepdims", attr_int(0)}}});
  EXPECT_EQ(out[0].shape(), (Shape{2}));
  EXPECT_EQ(ints_of(out[0]), (std::vector<int64_t>{2, 1}));
  out = run_node({.op = "ArgMin",
                  .opset = 13,
                  .inputs = {x},
                  .attrs = {{"axis", attr_int(1)}, {"select_last_index", attr_int(1)}}});
  EXPECT_EQ(ints_of(out[0]), (std::vector<int64_t>{3, 3}));
  out = run_node({.op = "ArgMin",
                  .opset = 11,
                  .inputs = {x},
                  .attrs = {{"axis", attr_int(1)}, {"select_last_index", attr_int(1)}}});
  EXPECT_EQ(ints_of(out[0]), (std::vector<int64_t>{3, 2}));  // no select_last_index before 12
  out = run_node({.op = "ArgMin", .opset = 13, .inputs = {x}});
  EXPECT_EQ(ints_of(out[0]), (std::vector<int64_t>{0, 1, 1, 1}));
}

TEST(TensorIndex, UniqueSortedUnsortedAndAxis) {
  Tensor x = make_f32({6}, {2, 1, 1, 3, 4, 3});
  auto out =
      run_node({.op = "Unique", .opset = 11, .inputs = {x}, .attrs = {{"sorted", attr_int(0)}}, .num_outputs = 4});
  EXPECT_EQ(floats_of(out[0]), (std::vector<float>{2, 1, 3, 4}));
  EXPECT_EQ(ints_of(out[1]), (std::vector<int64_t>{0, 1, 3, 4}));
  EXPECT_EQ(ints_of(out[2]), (std::vector<int64_t>{0, 1, 1, 2, 3, 2}));
  EXPECT_EQ(ints_of(out[3]), (std::vector<int64_t>{1, 2, 2, 1}));
  out = run_node({.op = "Unique", .opset = 11, .inputs = {x}, .num_outputs = 4});
  EXPECT_EQ(floats_of(out[0]), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(ints_of(out[1]), (std::vector<int64_t>{1, 0, 3, 4}));
  EXPECT_EQ(ints_of(out[2]), (std::vector<int64_t>{1, 0, 0, 2, 3, 2}));
  // Unique rows.
  Tensor m = make_f32({3, 2}, {1, 0, 0, 1, 1, 0});
  out = run_node({.op = "Unique", .opset = 11, .inputs = {m}, .attrs = {{"axis", attr_int(0)}}, .num_outputs = 4});
  EXPECT_EQ(out[0].shape(), (Shape{2, 2}));
  EXPECT_EQ(floats_of(out[0]), (std::vector<float>{0, 1, 1, 0}));
  EXPECT_EQ(ints_of(out[3]), (std::vector<int64_t>{1, 2}));
}

// -------------------------------------------------------------- generators

TEST(TensorIndex, OneHotAxesAndOldNegatives) {
  Tensor idx = make_i64({3}, {0, -1, 5});
  Tensor vals = make_f32({2}, {-1, 4});
  auto out = run_node(
      {.op = "OneHot", .opset = 11, .inputs = {idx, make_i64({}, {3}), vals}, .attrs = {{"axis", attr_int(0)}}});
  ASSERT_EQ(out[0].shape(), (Shape{3, 3}));
  for (const auto& o : all_indices(out[0].shape())) {
    int64_t k = idx.data<int64_t>()[o[1]];
    bool on = (k < 0 ? k + 3 : k) == o[0];
    ASSERT_EQ(at(out[0], o), on ? 4.0f : -1.0f);
  }
  out = run_node({.op = "OneHot", .opset = 10, .inputs = {idx, make_f32({}, {3}), vals}});
  EXPECT_EQ(floats_of(out[0]), (std::vector<float>{4, -1, -1, -1, -1, -1, -1, -1, -1}));  // -1 is "off" before 11
  EXPECT_THROW(run_node({.op = "OneHot", .opset = 11, .inputs = {idx, make_i64({}, {0}), vals}}), Error);
}

TEST(TensorIndex, TriluCumSumCumProdEyeLike) {
  std::mt19937 rng(27);
  Tensor x = random_f32({2, 3, 4}, rng);
  for (int64_t k : {-1, 0, 2})
    for (int upper : {0, 1}) {
      auto out = run_node(
          {.op = "Trilu", .opset = 14, .inputs = {x, make_i64({}, {k})}, .attrs = {{"upper", attr_int(upper)}}});
      for (const auto& o : all_indices(x.shape())) {
        bool keep = upper ? o[2] - o[1] >= k : o[2] - o[1] <= k;
        ASSERT_EQ(at(out[0], o), keep ? at(x, o) : 0.0f);
      }
    }
  for (int ex : {0, 1})
    for (int rev : {0, 1}) {
      auto out = run_node({.op = "CumSum",
                           .opset = 14,
                           .inputs = {x, make_i64({}, {-2})},
                           .attrs = {{"exclusive", attr_int(ex)}, {"reverse", attr_int(rev)}}});
      auto prod = run_node({.op = "CumProd",
                            .opset = 26,
                            .inputs = {x, make_i64({}, {1})},
                            .attrs = {{"exclusive", attr_int(ex)}, {"reverse", attr_int(rev)}}});
      for (const auto& o : all_indices(x.shape())) {
        double s = 0, p = 1;
        for (int64_t j = 0; j < 3; ++j) {
          bool in = rev ? (ex ? j > o[1] : j >= o[1]) : (ex ? j < o[1] : j <= o[1]);
          if (in) s += at(x, {o[0], j, o[2]}), p *= at(x, {o[0], j, o[2]});
        }
        ASSERT_NEAR(at(out[0], o), s, 1e-5);
        ASSERT_NEAR(at(prod[0], o), p, 1e-5);
      }
    }
  auto out = run_node({.op = "EyeLike",
                       .opset = 9,
                       .inputs = {make_i64({3, 4}, std::vector<int64_t>(12, 5))},
                       .attrs = {{"k", attr_int(1)}, {"dtype", attr_int(1)}}});
  ASSERT_EQ(out[0].dtype(), DType::kFloat32);
  for (const auto& o : all_indices({3, 4})) ASSERT_EQ(at(out[0], o), o[1] - o[0] == 1 ? 1.0f : 0.0f);
}

// ------------------------------------------------------------- rearranging

// Integers 0..199 in `dt` (float32, int64 or uint8).
Tensor small_ints(const Shape& shape, DType dt, std::mt19937& rng) {
  Tensor t(dt, shape);
  std::uniform_int_distribution<int> d(0, 199);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const int v = d(rng);
    if (dt == DType::kFloat32) t.data<float>()[i] = static_cast<float>(v);
    if (dt == DType::kInt64) t.data<int64_t>()[i] = v;
    if (dt == DType::kUInt8) t.data<uint8_t>()[i] = static_cast<uint8_t>(v);
  }
  return t;
}

// Larger, threaded, other block sizes and dtypes: the transpose path.
TEST(TensorIndex, DepthToSpaceBlocksBatchesDtypesThreads) {
  std::mt19937 rng(29);
  ThreadPool pool(2);
  for (int64_t b : {2, 3})
    for (DType dt : {DType::kFloat32, DType::kInt64, DType::kUInt8}) {
      const int64_t N = 2, C = 3, H = 17, W = 40;
      Tensor x = small_ints({N, C * b * b, H, W}, dt, rng);
      for (std::string mode : {"DCR", "CRD"}) {
        auto out = run_node({.op = "DepthToSpace",
                             .opset = 13,
                             .inputs = {x},
                             .attrs = {{"blocksize", attr_int(b)}, {"mode", attr_string(mode)}},
                             .pool = &pool});
        ASSERT_EQ(out[0].shape(), (Shape{N, C, H * b, W * b}));
        const std::vector<float> got = to_f32(out[0]), in = to_f32(x);
        for (const auto& o : all_indices(out[0].shape())) {
          const int64_t i = o[2] % b, j = o[3] % b, c = o[1];
          const int64_t ch = mode == "DCR" ? (i * b + j) * C + c : (c * b + i) * b + j;
          ASSERT_EQ(got[static_cast<size_t>(offset_of(out[0].shape(), o))],
                    in[static_cast<size_t>(offset_of(x.shape(), {o[0], ch, o[2] / b, o[3] / b}))])
              << mode << " b=" << b;
        }
        if (mode == "DCR") {
          auto back = run_node({.op = "SpaceToDepth",
                                .opset = 13,
                                .inputs = {out[0]},
                                .attrs = {{"blocksize", attr_int(b)}},
                                .pool = &pool});
          EXPECT_EQ(to_f32(back[0]), in);
        }
      }
    }
}

TEST(TensorIndex, DepthToSpaceModesAndSpaceToDepthInverse) {
  std::mt19937 rng(28);
  const int64_t b = 2, C = 2, H = 2, W = 3;
  Tensor x = random_f32({1, C * b * b, H, W}, rng);
  for (std::string mode : {"DCR", "CRD"}) {
    auto out = run_node({.op = "DepthToSpace",
                         .opset = 13,
                         .inputs = {x},
                         .attrs = {{"blocksize", attr_int(b)}, {"mode", attr_string(mode)}}});
    ASSERT_EQ(out[0].shape(), (Shape{1, C, H * b, W * b}));
    // Spec: DCR views depth as [b, b, C], CRD as [C, b, b].
    for (const auto& o : all_indices(out[0].shape())) {
      int64_t i = o[2] % b, j = o[3] % b, c = o[1];
      int64_t ch = mode == "DCR" ? (i * b + j) * C + c : (c * b + i) * b + j;
      ASSERT_EQ(at(out[0], o), at(x, {0, ch, o[2] / b, o[3] / b})) << mode;
    }
    if (mode == "DCR") {
      auto back =
          run_node({.op = "SpaceToDepth", .opset = 13, .inputs = {out[0]}, .attrs = {{"blocksize", attr_int(b)}}});
      EXPECT_EQ(floats_of(back[0]), floats_of(x));
    }
  }
  EXPECT_THROW(run_node({.op = "DepthToSpace",
                         .opset = 10,
                         .inputs = {x},
                         .attrs = {{"blocksize", attr_int(2)}, {"mode", attr_string("CRD")}}}),
               Error);
  EXPECT_THROW(run_node({.op = "DepthToSpace", .opset = 13, .inputs = {x}, .attrs = {{"blocksize", attr_int(3)}}}),
               Error);
}

TEST(TensorIndex, NonZeroCompressReverseSequence) {
  Tensor x = make_f32({2, 3}, {0, 1, 0, 2, 0, 3});
  auto out = run_node({.op = "NonZero", .opset = 13, .inputs = {x}});
  EXPECT_EQ(out[0].shape(), (Shape{2, 3}));
  EXPECT_EQ(ints_of(out[0]), (std::vector<int64_t>{0, 1, 1, 1, 0, 2}));
  out = run_node(
      {.op = "Compress", .opset = 11, .inputs = {x, make_bool({2}, {false, true})}, .attrs = {{"axis", attr_int(-1)}}});
  EXPECT_EQ(out[0].shape(), (Shape{2, 1}));
  EXPECT_EQ(floats_of(out[0]), (std::vector<float>{1, 0}));
  out = run_node({.op = "Compress", .opset = 11, .inputs = {x, make_bool({4}, {true, false, false, true})}});
  EXPECT_EQ(floats_of(out[0]), (std::vector<float>{0, 2}));
  EXPECT_THROW(run_node({.op = "Compress",
                         .opset = 11,
                         .inputs = {x, make_bool({3}, {true, true, true})},
                         .attrs = {{"axis", attr_int(0)}}}),
               Error);

  std::mt19937 rng(29);
  Tensor s = random_f32({4, 3, 2}, rng);  // time 4, batch 3
  Tensor lens = make_i64({3}, {4, 1, 2});
  out = run_node({.op = "ReverseSequence", .opset = 10, .inputs = {s, lens}});
  for (const auto& o : all_indices(s.shape())) {
    int64_t L = lens.data<int64_t>()[o[1]];
    ASSERT_EQ(at(out[0], o), at(s, {o[0] < L ? L - 1 - o[0] : o[0], o[1], o[2]}));
  }
  EXPECT_THROW(run_node({.op = "ReverseSequence", .opset = 10, .inputs = {s, make_i64({3}, {5, 1, 1})}}), Error);
}

}  // namespace kiln::test

namespace kiln::test {

// Non-float dtypes and int32 indices go through the same kernels.
TEST(TensorIndex, TypeCoverage) {
  Tensor h(DType::kFloat16, {4});
  for (int i = 0; i < 4; ++i) h.data<Float16>()[i] = Float16(static_cast<float>(i) + 0.5f);
  Tensor i32(DType::kInt32, {2});
  i32.data<int32_t>()[0] = -1;
  i32.data<int32_t>()[1] = 1;
  auto out = run_node({.op = "Gather", .opset = 13, .inputs = {h, i32}});
  ASSERT_EQ(out[0].dtype(), DType::kFloat16);
  EXPECT_EQ(static_cast<float>(out[0].data<Float16>()[0]), 3.5f);
  EXPECT_EQ(static_cast<float>(out[0].data<Float16>()[1]), 1.5f);

  Tensor n(DType::kInt32, {5});
  for (int i = 0; i < 5; ++i) n.data<int32_t>()[i] = i + 1;
  Tensor axis(DType::kInt32, {});  // int32 axis input, value 0
  out = run_node({.op = "CumSum", .opset = 14, .inputs = {n, axis}, .attrs = {{"reverse", attr_int(1)}}});
  std::vector<int32_t> got(out[0].data<int32_t>(), out[0].data<int32_t>() + 5);
  EXPECT_EQ(got, (std::vector<int32_t>{15, 14, 12, 9, 5}));

  Tensor b = make_bool({2, 2}, {true, false, false, true});
  out = run_node({.op = "Pad",
                  .opset = 13,
                  .inputs = {b, make_i64({4}, {0, 1, 0, 0}), make_bool({}, {true})},
                  .constant_inputs = true});
  ASSERT_EQ(out[0].shape(), (Shape{2, 3}));
  std::vector<bool> gb(out[0].data<bool>(), out[0].data<bool>() + 6);
  EXPECT_EQ(gb, (std::vector<bool>{true, true, false, true, false, true}));

  out = run_node({.op = "Tile", .opset = 13, .inputs = {b, make_i64({2}, {1, 2})}, .constant_inputs = true});
  EXPECT_EQ(out[0].shape(), (Shape{2, 4}));
  out = run_node(
      {.op = "TopK", .opset = 11, .inputs = {make_i64({4}, {5, -2, 9, 5}), make_i64({1}, {2})}, .num_outputs = 2});
  EXPECT_EQ(ints_of(out[0]), (std::vector<int64_t>{9, 5}));
  EXPECT_EQ(ints_of(out[1]), (std::vector<int64_t>{2, 0}));
}

}  // namespace kiln::test

namespace kiln::test {

// Pad's row path against a per-element reference: every mode, pads on every
// axis (negative ones cropping, constant mode), large enough to thread.
TEST(TensorIndex, PadModesRowsThreaded) {
  std::mt19937 rng(41);
  ThreadPool pool(2);
  struct Case {
    Shape x;
    std::vector<int64_t> pads;
    const char* mode;
  };
  const std::vector<Case> cases = {
      {{2, 3, 40, 50}, {0, 1, 2, 3, 1, 0, 4, 2}, "constant"},
      {{2, 3, 40, 50}, {0, 0, -3, 2, 0, 1, 1, -4}, "constant"},
      {{2, 3, 40, 50}, {0, 0, 3, 5, 0, 0, 2, 4}, "reflect"},
      {{2, 3, 40, 50}, {1, 0, 3, 5, 0, 2, 2, 4}, "edge"},
      {{3, 17, 9}, {0, 2, 7, 1, 3, 8}, "wrap"},
  };
  for (const Case& c : cases) {
    Tensor x = random_f32(c.x, rng);
    const size_t r = c.x.size();
    auto out = run_node({.op = "Pad",
                         .opset = 19,
                         .inputs = {x, make_i64({static_cast<int64_t>(2 * r)}, c.pads), make_f32({}, {7.5f})},
                         .attrs = {{"mode", attr_string(c.mode)}},
                         .pool = &pool});
    Shape want_shape;
    for (size_t d = 0; d < r; ++d) want_shape.push_back(c.x[d] + c.pads[d] + c.pads[d + r]);
    ASSERT_EQ(out[0].shape(), want_shape) << c.mode;
    const std::string mode = c.mode;
    for (const auto& o : all_indices(want_shape)) {
      std::vector<int64_t> src(r);
      bool fill = false;
      for (size_t d = 0; d < r; ++d) {
        const int64_t n = c.x[d];
        int64_t j = o[d] - c.pads[d];
        if (j < 0 || j >= n) {
          if (mode == "constant") fill = true;
          if (mode == "edge") j = j < 0 ? 0 : n - 1;
          if (mode == "wrap") j = ((j % n) + n) % n;
          if (mode == "reflect") {
            const int64_t period = 2 * (n - 1);
            j = ((j % period) + period) % period;
            if (j >= n) j = period - j;
          }
        }
        src[d] = j;
      }
      ASSERT_EQ(at(out[0], o), fill ? 7.5f : at(x, src)) << mode << " at " << shape_str(o);
    }
  }
}

}  // namespace kiln::test
