// One pattern for kernels built per instruction set (XNNPACK's microkernel
// lists): a family declares its variants in one list, best first, each
// {name, isa, fn}, with a portable one last; select_variant() picks the
// first the selected ISA (cpu_isa_selected(), capped by KILN_CPU_ISA) may
// run. Dispatch, tests and benchmarks all walk the same list, so a new
// variant is one line there (and its *_<isa>.cpp file).
//
// Names follow <family>_<dtype>_<isa>[_<tile>]: gemm_f32_avx2_6x16.
#pragma once
#include <stdexcept>

#include "kernels/cpu/cpu_isa.h"

namespace kiln {

template <typename Fn>
struct KernelVariant {
  const char* name;
  CpuIsa isa;  // the lowest instruction set it needs
  Fn fn;
};

// The first variant of `list` whose ISA `isa` includes.
template <typename V, size_t N>
const V& select_variant(const V (&list)[N], CpuIsa isa) {
  for (const V& v : list)
    if (static_cast<int>(v.isa) <= static_cast<int>(isa)) return v;
  throw std::logic_error("kernel variant list without a portable variant");
}

// The first variant this process may run; chosen once per list.
template <typename V, size_t N>
const V& select_variant(const V (&list)[N]) {
  static const V& chosen = select_variant(list, cpu_isa_selected());
  return chosen;
}

// Whether this CPU (and the KILN_CPU_ISA cap) can run `v` (tests walk every
// variant that can).
template <typename V>
bool variant_runs_here(const V& v) {
  return static_cast<int>(v.isa) <= static_cast<int>(cpu_isa_selected());
}

}  // namespace kiln
