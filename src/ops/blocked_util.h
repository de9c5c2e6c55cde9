// What the blocked-layout ops (ops/blocked.h) share: oneDNN memory helpers,
// the block attribute, per-shape caches of primitives, batch chunks, and the
// schema skeleton of a kiln-domain op. Private to ops/blocked_*.cpp.
#pragma once
#include <algorithm>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>

#include "core/thread_pool.h"
#include "ir/op.h"
#include "kernels/cpu/dnnl_glue.h"
#include "ops/common.h"
#include "ops/nn_util.h"

namespace kiln::blocked {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;

inline int threads_of(const KernelContext& ctx) { return ctx.thread_pool() ? ctx.thread_pool()->num_threads() : 1; }

inline memory wrap(const memory::desc& d, const void* p) {
  return memory(d, dnnl_glue::engine(), const_cast<void*>(p));
}

// [N, ceil(C / B), H, W, B] as inferred dims, from a 4-D [N, C, H, W].
inline DimVector blocked_dims(const DimVector& nchw, int64_t block) {
  Dim cb = nchw[1].is_known() ? Dim::known(ceil_div(nchw[1].value, block)) : Dim::unknown();
  return {nchw[0], cb, nchw[2], nchw[3], Dim::known(block)};
}

inline int64_t block_attr(const Node& node) {
  const int64_t b = node.attr_int("block", 0);
  if (b != 8 && b != 16) throw Error(node.describe() + ": block must be 8 or 16, got " + std::to_string(b));
  return b;
}

// A kiln-domain op's input may come from any file (the domain is open to
// all): the block is checked like any other input, 8 or 16 and no other.
inline void check_blocked(const KernelContext& ctx, const Tensor& x, int64_t block) {
  if (block != 8 && block != 16) throw ctx.error("block must be 8 or 16, got " + std::to_string(block));
  if (x.dtype() != DType::kFloat32 || x.rank() != 5 || x.dim(4) != block)
    throw ctx.error("expects a float32 [N, C/" + std::to_string(block) + ", H, W, " + std::to_string(block) +
                    "] tensor, got " + shape_str(x.shape()));
}

// A blocked input's last dim, when known at load, must be a block of 8 or 16.
inline void check_block_dim(const InferContext& ctx, const Dim& block) {
  if (block.is_known() && block.value != 8 && block.value != 16)
    throw ctx.error("the blocked input's last dim must be 8 or 16, got " + std::to_string(block.value));
}

// Per-input-shape cache of what a kernel builds for a shape (oneDNN
// primitives: JIT code and descriptors, tens of KB each). The least recently
// used entry is dropped beyond capacity() shapes, so that memory stays bounded
// however many shapes the runs bring (an OCR recognizer fed text lines of
// every width grew by 130 MB over 97 widths; docs/memory.md). Entries are
// shared: a run still using a dropped one keeps it alive until it is done.
template <typename T>
class ShapeCache {
 public:
  // Shapes kept beyond those a kernel always needs (its batch chunks).
  static constexpr size_t kRecentShapes = 4;
  explicit ShapeCache(size_t always_needed = 0) : capacity_(always_needed + kRecentShapes) {}
  size_t capacity() const { return capacity_; }

  template <typename Make>
  std::shared_ptr<const T> get(const Shape& key, Make make) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = index_.find(key);
    if (it != index_.end()) {
      order_.splice(order_.begin(), order_, it->second);  // now the most recent
      return it->second->second;
    }
    auto made = std::make_shared<const T>(make());
    order_.emplace_front(key, made);
    index_[key] = order_.begin();
    if (order_.size() > capacity_) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
    return made;
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return order_.size();
  }

 private:
  using Entries = std::list<std::pair<Shape, std::shared_ptr<const T>>>;
  const size_t capacity_;
  mutable std::mutex mutex_;
  mutable Entries order_;  // most recently used first
  mutable std::map<Shape, typename Entries::iterator> index_;
};

// The batch sizes a kernel splits a dynamic batch into: the node's
// batch_chunks attribute, which the engine builder sets from a profile (its
// opt batch and the powers of two up to its max batch, src/engine/build.cpp).
// oneDNN primitives are made per shape; splitting keeps their number (and the
// memory they hold) bounded however many batch sizes the runs bring. Empty:
// each batch whole.
inline std::vector<int64_t> batch_chunks(const Node& node) {
  std::vector<int64_t> sizes = node.attr_ints("batch_chunks");
  std::sort(sizes.begin(), sizes.end(), std::greater<>());
  if (sizes.empty() || sizes.back() != 1) return {};  // must be able to cover every batch
  return sizes;
}

// Calls f(start, count) for consecutive slices covering a batch of n: n
// itself when it is an allowed size, else the largest allowed sizes first.
template <typename F>
void for_each_batch_chunk(const std::vector<int64_t>& sizes, int64_t n, F f) {
  if (sizes.empty() || n <= 1 || std::find(sizes.begin(), sizes.end(), n) != sizes.end()) {
    f(0, n);
    return;
  }
  int64_t start = 0;
  for (int64_t size : sizes)
    for (; n - start >= size; start += size) f(start, size);
}

// A shape with another batch size.
inline Shape with_batch(Shape shape, int64_t n) {
  shape[0] = n;
  return shape;
}

// The run's scratchpad for a oneDNN call (null when it needs none).
inline void* scratchpad_for(const dnnl_glue::Call& call, KernelContext& ctx) {
  return call.scratchpad_bytes() > 0 ? ctx.scratch(call.scratchpad_bytes()) : nullptr;
}

// Shape inference of a blocked op y = f(x, p1, p2) whose two parameters are
// per-channel [1, C/B, 1, 1, B] constants (`what` names them in errors): y
// is x's type.
inline void infer_blocked_with_channel_params(InferContext& ctx, const char* what) {
  const ValueType& x = ctx.input_type(0);
  if (x.dtype != DType::kFloat32 || x.rank() != 5) throw ctx.error("expects a float32 5-D blocked input");
  check_block_dim(ctx, (*x.shape)[4]);
  for (size_t i = 1; i < 3; ++i) {
    const ValueType& p = ctx.input_type(i);
    auto is = [&](size_t d, int64_t v) { return (*p.shape)[d].is_known() && (*p.shape)[d].value == v; };
    if (p.dtype != DType::kFloat32 || p.rank() != 5 || !(*x.shape)[1].is_known() || !is(0, 1) ||
        !is(1, (*x.shape)[1].value) || !is(2, 1) || !is(3, 1) || !(*x.shape)[4].is_known() ||
        !is(4, (*x.shape)[4].value))
      throw ctx.error(std::string(what) + " must be float32 [1, C/B, 1, 1, B] constants");
  }
  ctx.set_output(0, x.dtype, x.shape);
}

inline OpSchema kiln_schema(const char* name, int max_inputs) {
  return OpSchema{
      .domain = kKilnDomain,
      .name = name,
      .min_inputs = 1,
      .max_inputs = max_inputs,
      .max_outputs = 1,
      .types = {DType::kFloat32},
  };
}

}  // namespace kiln::blocked
