// Helpers shared by op files: shape-inference building blocks, axis handling,
// broadcasting and reading small integer inputs.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/dispatch.h"
#include "ir/op.h"

namespace kiln {

// ----- inference helpers

// Output 0 takes the type (and shape) of input `i`.
void infer_same_as_input(InferContext& ctx, size_t i = 0);
// Output 0 has input 0's shape and the given dtype.
void infer_same_shape(InferContext& ctx, DType dtype);
// Numpy broadcasting of several inputs' shapes; nullopt if any rank unknown.
// Throws (naming the node) when two known dims are incompatible.
std::optional<DimVector> broadcast_dims(const InferContext& ctx, const std::vector<size_t>& inputs);
DimVector dims_of(const Shape& s);
// A fresh unknown dim.
inline Dim unknown_dim() { return Dim::unknown(); }

// ----- run-time helpers

// Normalises an axis in [-rank, rank) (or [-rank-1, rank] with extra=1);
// throws naming the node otherwise.
int64_t normalize_axis(int64_t axis, int64_t rank, const Node& node, int extra = 0);
// Numpy broadcast of two or more shapes; throws naming the node.
Shape broadcast_shapes(const std::vector<Shape>& shapes, const Node& node);
// Strides for reading a tensor of shape `in` broadcast to `out` (0 where
// broadcast).
std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out);
std::vector<int64_t> contiguous_strides(const Shape& s);
// Reads an integer tensor (int32/int64) as int64 values.
std::vector<int64_t> read_ints(const Tensor& t, const KernelContext& ctx, const char* what);
// Reads a scalar (or 1-element) numeric tensor as double.
double read_scalar(const Tensor& t);

// Calls f(out_index, in_offsets...) over an N-d broadcast. Used by the naive
// element-wise kernels: simple, obviously right.
template <typename F>
void for_each_broadcast(const Shape& out, const std::vector<std::vector<int64_t>>& strides, F&& f) {
  int64_t n = shape_numel(out);
  size_t rank = out.size();
  size_t k = strides.size();
  std::vector<int64_t> idx(rank, 0), off(k, 0);
  for (int64_t i = 0; i < n; ++i) {
    f(i, off.data());
    for (size_t d = rank; d-- > 0;) {
      if (++idx[d] < out[d]) {
        for (size_t j = 0; j < k; ++j) off[j] += strides[j][d];
        break;
      }
      for (size_t j = 0; j < k; ++j) off[j] -= strides[j][d] * (out[d] - 1);
      idx[d] = 0;
    }
  }
}

}  // namespace kiln
