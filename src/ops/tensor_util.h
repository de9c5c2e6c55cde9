// Helpers shared by the shape and tensor-manipulation ops (Reshape, Concat,
// Slice, Gather, Pad, ...): type-generic element moves, size limits for shapes
// read from data, and small inference building blocks.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ops/common.h"

namespace kiln {

// Data-movement kernels only copy elements, so they dispatch on the element
// size (plus std::string) instead of instantiating every dtype.
template <typename F>
void dispatch_by_size(DType t, const std::string& what, F&& f) {
  if (t == DType::kString) {
    f.template operator()<std::string>();
    return;
  }
  switch (t == DType::kUndefined ? 0 : dtype_size(t)) {
    case 1: f.template operator()<uint8_t>(); return;
    case 2: f.template operator()<uint16_t>(); return;
    case 4: f.template operator()<uint32_t>(); return;
    case 8: f.template operator()<uint64_t>(); return;
    default: throw Error(what + ": element type " + dtype_name(t) + " is not supported");
  }
}

// Largest element count an op may create from a shape it reads from data
// (Reshape, Expand, Tile, ConstantOfShape, Range, ...): a guard against a bad
// input asking for an absurd allocation.
constexpr int64_t kMaxDataDrivenElements = int64_t{1} << 32;

// Element count of `shape`, throwing ctx.error for a negative dim or a count
// above kMaxDataDrivenElements. `what` names the shape's origin.
template <typename Ctx>
int64_t checked_numel(const Ctx& ctx, const Shape& shape, const std::string& what) {
  for (int64_t d : shape)
    if (d < 0) throw ctx.error(what + ": negative dimension " + std::to_string(d) + " in " + shape_str(shape));
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d == 0) return 0;
    if (n > kMaxDataDrivenElements / d)
      throw ctx.error(what + ": shape " + shape_str(shape) + " is too large (more than " +
                      std::to_string(kMaxDataDrivenElements) + " elements)");
    n *= d;
  }
  return n;
}

// The rank of input i, or -1 when unknown.
inline int input_rank(const InferContext& ctx, size_t i) { return ctx.input_type(i).rank(); }

// A DimVector of `rank` unknown dims.
inline DimVector unknown_dims(size_t rank) { return DimVector(rank, Dim::unknown()); }

// Calls f(index, linear) for every index of `shape` in row-major order.
template <typename F>
void for_each_index(const Shape& shape, F&& f) {
  int64_t n = shape_numel(shape);
  std::vector<int64_t> idx(shape.size(), 0);
  for (int64_t i = 0; i < n; ++i) {
    f(static_cast<const int64_t*>(idx.data()), i);
    for (size_t d = shape.size(); d-- > 0;) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

// Copies `count` elements of any type (strings included) between tensors of
// the same dtype, by element offsets.
void copy_elements(const Tensor& src, int64_t src_off, Tensor& dst, int64_t dst_off, int64_t count);

// out (allocated by the caller, x's dtype) = x read as `view` (x's element
// count in another shape) with its axes permuted by `perm`: the Transpose
// kernel (tiled, threaded) for ops that are transposes of a reshape
// (DepthToSpace, SpaceToDepth). Every dtype but string.
void permute_view(const Tensor& x, const Shape& view, const std::vector<int64_t>& perm, Tensor& out, ThreadPool* pool);

// out (allocated by the caller, x's dtype) = x read as `x_view` broadcast
// (numpy rules, same rank) to `out_view` (out's element count): Expand, and
// Tile as [1, d0, 1, d1, ...] broadcast to [r0, d0, r1, d1, ...]. Runs of
// dims are merged, so each output row is one memcpy or one fill; rows go
// to the thread pool. Every dtype but string.
void broadcast_view(const Tensor& x, const Shape& x_view, const Shape& out_view, Tensor& out, ThreadPool* pool);

// Inference helper: the known int values of input i, or nullopt.
inline std::optional<std::vector<int64_t>> const_ints(const InferContext& ctx, size_t i) {
  std::vector<int64_t> v;
  if (!ctx.has_input(i) || !ctx.input_ints(i, &v)) return std::nullopt;
  return v;
}

// Inference helper: the length of a 1-D input when known, else -1.
inline int64_t input_length(const InferContext& ctx, size_t i) {
  const ValueType& t = ctx.input_type(i);
  if (t.shape && t.shape->size() == 1 && (*t.shape)[0].is_known()) return (*t.shape)[0].value;
  return -1;
}

}  // namespace kiln
