// oneDNN (Debian's libdnnl, 2.6) glue: the process's CPU engine, the blocked
// activation layout kiln keeps between convolutions, epilogues as post-ops,
// and running a primitive on the session's thread count.
//
// The blocked layout: a [N, C, H, W] float tensor is stored as
// [N, ceil(C / B), H, W, B] (oneDNN's nChw8c / nChw16c), channels padded with
// zeros to a multiple of B. In kiln's IR such a value simply has that 5-D
// shape, so element-wise ops run on it unchanged and every other op sees an
// honest shape. B is 8 with AVX2 and 16 with AVX-512 (one vector register of
// channels), fixed per process by channel_block().
#pragma once
#include <dnnl.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kernels/cpu/epilogue.h"

namespace kiln::dnnl_glue {

const dnnl::engine& engine();
// The channel block of the blocked layout on this CPU: 16 with AVX-512,
// 8 otherwise (KILN_CPU_ISA caps it like the other kernels).
int64_t channel_block();
// nChw8c / nChw16c for 4-D.
dnnl::memory::format_tag blocked_tag(int64_t block);
// The epilogue as oneDNN post-ops; false when a step has no equivalent.
bool post_ops_for(const std::vector<EpilogueStep>& steps, dnnl::post_ops* out);
// Sets the calling thread's OpenMP team size for what follows. oneDNN sizes
// a primitive's work split when the primitive is created, so call it before
// creating one as well as before running it.
void use_threads(int threads);
// Runs p on `threads` threads (oneDNN's OpenMP team for this call) and waits.
void execute(const dnnl::primitive& p, const std::unordered_map<int, dnnl::memory>& args, int threads);

// Attributes every primitive that kiln runs more than once is created with:
// a user-managed scratchpad. With oneDNN's default (library-managed)
// scratchpad a primitive must not run in two threads at once, nor in another
// thread than the one that created it (oneDNN's docs on scratchpad_mode),
// which is exactly what several threads running one session do: grouped
// convolutions, whose kernels use a scratchpad, gave wrong outputs. Each
// run's scratchpad is that run's own (KernelContext::scratch).
dnnl::primitive_attr attr_for_concurrent_runs();

// A primitive with its argument layouts, run many times on new data: the
// memory objects and the argument map are made once and only get new data
// pointers, the stream is the calling thread's, so a run allocates nothing
// (measured: making them per run cost about a sixth of MobileNetV3-small's
// time at batch 1, most of it in its small squeeze-excite convs). Runs may
// be concurrent: each checks out its own argument set, and brings its own
// scratchpad.
class Call {
 public:
  // `prim` must have been created with attr_for_concurrent_runs() (or
  // attributes derived from it); `scratchpad`: its pd's scratchpad_desc().
  // `args`: the arguments given per run, in the order run() takes their
  // data; `fixed`: arguments that never change (packed weights).
  Call(dnnl::primitive prim, const dnnl::memory::desc& scratchpad, std::vector<std::pair<int, dnnl::memory::desc>> args,
       std::unordered_map<int, dnnl::memory> fixed = {});
  // Bytes of scratchpad a run needs (0: none).
  size_t scratchpad_bytes() const { return scratchpad_bytes_; }
  // `scratchpad`: scratchpad_bytes() bytes that no other run uses meanwhile
  // (ignored when scratchpad_bytes() is 0).
  void run(std::initializer_list<const void*> data, int threads, void* scratchpad) const;

 private:
  struct ArgSet {
    std::unordered_map<int, dnnl::memory> map;
    std::vector<dnnl::memory> per_run;  // parallel to args_
    dnnl::memory scratchpad;            // in map when scratchpad_bytes_ > 0
  };
  dnnl::primitive prim_;
  dnnl::memory::desc scratchpad_desc_;
  size_t scratchpad_bytes_ = 0;
  std::vector<std::pair<int, dnnl::memory::desc>> args_;
  std::unordered_map<int, dnnl::memory> fixed_;
  mutable std::mutex mutex_;
  mutable std::vector<std::unique_ptr<ArgSet>> free_;
};

}  // namespace kiln::dnnl_glue
