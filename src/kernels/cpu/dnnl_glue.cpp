#include "kernels/cpu/dnnl_glue.h"

#include "kernels/cpu/cpu_isa.h"

#include <cstdlib>
#include <stdexcept>

// libgomp's entry point, declared here rather than through <omp.h> so that
// kiln itself is not built with -fopenmp (only oneDNN uses OpenMP).
extern "C" void omp_set_num_threads(int);

namespace kiln::dnnl_glue {

namespace {
constexpr int kPrimitiveCacheCapacity = 128;
}  // namespace

const dnnl::engine& engine() {
  static const dnnl::engine e = [] {
    // oneDNN picks its own ISA; keep it within what kiln's kernels may use so
    // that KILN_CPU_ISA=avx2 on an AVX-512 machine tests the AVX2 path.
    const CpuIsa isa = cpu_isa_selected();
    dnnl::set_max_cpu_isa(isa == CpuIsa::kAvx512 ? dnnl::cpu_isa::all
                          : isa == CpuIsa::kAvx2 ? dnnl::cpu_isa::avx2
                                                 : dnnl::cpu_isa::sse41);
    // kiln's kernels keep the primitives they use (ops/blocked_util.h:
    // ShapeCache, a few shapes per node); oneDNN's own cache of 1,024 more
    // would hold every shape a dynamic model has seen (docs/memory.md). The
    // environment's DNNL_PRIMITIVE_CACHE_CAPACITY wins.
    if (!std::getenv("DNNL_PRIMITIVE_CACHE_CAPACITY") && !std::getenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY"))
      dnnl::set_primitive_cache_capacity(kPrimitiveCacheCapacity);
    return dnnl::engine(dnnl::engine::kind::cpu, 0);
  }();
  return e;
}

int64_t channel_block() { return cpu_isa_selected() == CpuIsa::kAvx512 ? 16 : 8; }

dnnl::memory::format_tag blocked_tag(int64_t block) {
  return block == 16 ? dnnl::memory::format_tag::nChw16c : dnnl::memory::format_tag::nChw8c;
}

bool post_ops_for(const std::vector<EpilogueStep>& steps, dnnl::post_ops* out) {
  using A = dnnl::algorithm;
  dnnl::post_ops po;
  for (const EpilogueStep& s : steps) {
    const EpilogueFn* f = s.fn;
    if (f == &kEpilogueRelu)
      po.append_eltwise(1.0f, A::eltwise_relu, 0.0f, 0.0f);
    else if (f == &kEpilogueLeakyRelu)
      po.append_eltwise(1.0f, A::eltwise_relu, s.alpha, 0.0f);
    else if (f == &kEpilogueClip)
      po.append_eltwise(1.0f, A::eltwise_clip, s.alpha, s.beta);
    else if (f == &kEpilogueSigmoid)
      po.append_eltwise(1.0f, A::eltwise_logistic, 0.0f, 0.0f);
    else if (f == &kEpilogueSilu)
      po.append_eltwise(1.0f, A::eltwise_swish, 1.0f, 0.0f);
    else if (f == &kEpilogueHardSwish)
      po.append_eltwise(1.0f, A::eltwise_hardswish, 0.0f, 0.0f);
    else if (f == &kEpilogueHardSigmoid) {  // max(0, min(1, alpha * x + beta))
      po.append_eltwise(1.0f, A::eltwise_linear, s.alpha, s.beta);
      po.append_eltwise(1.0f, A::eltwise_clip, 0.0f, 1.0f);
    } else if (f == &kEpilogueGelu)
      po.append_eltwise(1.0f, A::eltwise_gelu_erf, 0.0f, 0.0f);
    else if (f == &kEpilogueGeluTanh)
      po.append_eltwise(1.0f, A::eltwise_gelu_tanh, 0.0f, 0.0f);
    else if (f == &kEpilogueTanh)
      po.append_eltwise(1.0f, A::eltwise_tanh, 0.0f, 0.0f);
    else
      return false;
  }
  *out = po;
  return true;
}

void use_threads(int threads) { omp_set_num_threads(threads > 0 ? threads : 1); }

namespace {
dnnl::stream& thread_stream() {
  thread_local dnnl::stream s(engine());
  return s;
}
}  // namespace

void execute(const dnnl::primitive& p, const std::unordered_map<int, dnnl::memory>& args, int threads) {
  use_threads(threads);
  dnnl::stream& s = thread_stream();
  p.execute(s, args);
  s.wait();
}

dnnl::primitive_attr attr_for_concurrent_runs() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

Call::Call(dnnl::primitive prim, const dnnl::memory::desc& scratchpad,
           std::vector<std::pair<int, dnnl::memory::desc>> args, std::unordered_map<int, dnnl::memory> fixed)
    : prim_(std::move(prim)),
      scratchpad_desc_(scratchpad),
      scratchpad_bytes_(scratchpad.get_size()),
      args_(std::move(args)),
      fixed_(std::move(fixed)) {}

void Call::run(std::initializer_list<const void*> data, int threads, void* scratchpad) const {
  std::unique_ptr<ArgSet> set;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!free_.empty()) {
      set = std::move(free_.back());
      free_.pop_back();
    }
  }
  if (data.size() != args_.size()) throw std::logic_error("dnnl_glue::Call: wrong number of arguments");
  if (scratchpad_bytes_ > 0 && !scratchpad) throw std::logic_error("dnnl_glue::Call: no scratchpad given");
  const void* const* ptr = data.begin();
  if (!set) {
    set = std::make_unique<ArgSet>();
    set->map = fixed_;
    for (size_t i = 0; i < args_.size(); ++i) {
      set->per_run.emplace_back(args_[i].second, engine(), const_cast<void*>(ptr[i]));
      set->map.emplace(args_[i].first, set->per_run.back());
    }
    if (scratchpad_bytes_ > 0) {
      set->scratchpad = dnnl::memory(scratchpad_desc_, engine(), scratchpad);
      set->map.emplace(DNNL_ARG_SCRATCHPAD, set->scratchpad);
    }
  } else {
    for (size_t i = 0; i < args_.size(); ++i) set->per_run[i].set_data_handle(const_cast<void*>(ptr[i]));
    if (scratchpad_bytes_ > 0) set->scratchpad.set_data_handle(scratchpad);
  }
  execute(prim_, set->map, threads);
  std::lock_guard<std::mutex> lock(mutex_);
  free_.push_back(std::move(set));
}

}  // namespace kiln::dnnl_glue
