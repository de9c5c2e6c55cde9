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
#include <unordered_map>
#include <vector>

#include "ir/epilogue.h"

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

}  // namespace kiln::dnnl_glue
