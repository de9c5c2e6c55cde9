// A oneDNN convolution-like primitive run between plain (row-major)
// tensors: oneDNN picks its own layouts for the primitive (format `any`), and
// the input and output are reordered into and out of them around it, in the
// run's scratch. For the convs that live outside kiln's blocked layout
// (ConvTranspose, 1-D and 3-D Conv), whose reorders cost little next to
// them. Private to ops/.
#pragma once
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "ops/blocked_util.h"

namespace kiln::dnnl_plain {

using blocked::Tag;
using dnnl::memory;
constexpr auto kF32 = memory::data_type::f32;

// Dense row-major strides of `dims`.
inline memory::dims dense_strides(const memory::dims& dims) {
  memory::dims s(dims.size(), 1);
  for (size_t i = dims.size() - 1; i-- > 0;) s[i] = s[i + 1] * dims[i + 1];
  return s;
}

inline memory::desc plain_desc(const memory::dims& dims) { return memory::desc(dims, kF32, dense_strides(dims)); }

// The primitive and the reorders around it, for one input shape.
struct PlainCall {
  std::unique_ptr<dnnl_glue::Call> src_in, prim, dst_out;  // reorders null where the layout is plain
  size_t src_bytes = 0, dst_bytes = 0;

  // y = prim(x), both plain.
  void run(KernelContext& ctx, const void* x, void* y, int threads) const {
    auto round = [](size_t n) { return (n + 63) / 64 * 64; };
    const size_t sb = src_in ? round(src_bytes) : 0, db = dst_out ? round(dst_bytes) : 0;
    // One scratch block: [reordered src][primitive's dst][primitive scratchpad].
    auto* scratch = static_cast<std::byte*>(ctx.scratch(sb + db + prim->scratchpad_bytes() + 64));
    const void* src = x;
    if (src_in) {
      src_in->run({x, scratch}, threads, nullptr);
      src = scratch;
    }
    void* dst = dst_out ? static_cast<void*>(scratch + sb) : y;
    prim->run({src, dst}, threads, prim->scratchpad_bytes() > 0 ? scratch + sb + db : nullptr);
    if (dst_out) dst_out->run({dst, y}, threads, nullptr);
  }
};

// A reorder from `from` to `to` as a call that runs concurrently with others;
// its data are given per run (from, to).
inline std::unique_ptr<dnnl_glue::Call> make_reorder(const memory::desc& from, const memory::desc& to) {
  dnnl::reorder::primitive_desc rpd(dnnl_glue::engine(), from, dnnl_glue::engine(), to,
                                    dnnl_glue::attr_for_concurrent_runs());
  return std::make_unique<dnnl_glue::Call>(
      dnnl::reorder(rpd), rpd.scratchpad_desc(),
      std::vector<std::pair<int, memory::desc>>{{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}});
}

// Wraps primitive `p` of descriptor `pd` (its src and dst made with `any`)
// between the plain `src` and `dst`; `fixed`: its constant arguments.
template <typename PrimitiveDesc, typename Primitive>
std::shared_ptr<PlainCall> make_plain_call(const PrimitiveDesc& pd, Primitive p, const memory::desc& src,
                                           const memory::desc& dst, std::unordered_map<int, memory> fixed) {
  auto call = std::make_shared<PlainCall>();
  call->prim = std::make_unique<dnnl_glue::Call>(
      std::move(p), pd.scratchpad_desc(),
      std::vector<std::pair<int, memory::desc>>{{DNNL_ARG_SRC, pd.src_desc()}, {DNNL_ARG_DST, pd.dst_desc()}},
      std::move(fixed));
  if (pd.src_desc() != src) {
    call->src_in = make_reorder(src, pd.src_desc());
    call->src_bytes = pd.src_desc().get_size();
  }
  if (pd.dst_desc() != dst) {
    call->dst_out = make_reorder(pd.dst_desc(), dst);
    call->dst_bytes = pd.dst_desc().get_size();
  }
  return call;
}

// Constant weights reordered into the layouts primitives ask for, once per
// distinct layout.
class PackedWeights {
 public:
  explicit PackedWeights(const void* data) : data_(data) {}

  memory get(const memory::desc& plain, const memory::desc& want) const {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [desc, mem] : packed_)
      if (desc == want) return mem;
    memory out(want, dnnl_glue::engine());
    memory in = blocked::wrap(plain, data_);
    dnnl::stream s(dnnl_glue::engine());
    dnnl::reorder(in, out).execute(s, in, out);
    s.wait();
    packed_.emplace_back(want, out);
    return out;
  }

 private:
  const void* data_;
  mutable std::mutex mutex_;
  mutable std::vector<std::pair<memory::desc, memory>> packed_;
};

}  // namespace kiln::dnnl_plain
