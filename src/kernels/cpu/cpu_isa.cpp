#include "kernels/cpu/cpu_isa.h"
#include "core/settings.h"

#include <cstdlib>
#include <cstring>

namespace kiln {

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kScalar: return "scalar";
    case CpuIsa::kAvx2: return "avx2";
    case CpuIsa::kAvx512: return "avx512";
  }
  return "?";
}

CpuIsa cpu_isa_supported() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // __builtin_cpu_supports checks the OS saves the wide registers too (XCR0).
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")) return CpuIsa::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return CpuIsa::kAvx2;
#endif
  return CpuIsa::kScalar;
}

CpuIsa cpu_isa_selected() {
  static const CpuIsa selected = [] {
    CpuIsa isa = cpu_isa_supported();
    const std::string& cap = settings().cpu_isa;
    if (cap.empty()) return isa;
    CpuIsa limit = isa;
    if (cap == "scalar")
      limit = CpuIsa::kScalar;
    else if (cap == "avx2")
      limit = CpuIsa::kAvx2;
    else if (cap == "avx512")
      limit = CpuIsa::kAvx512;
    return static_cast<int>(limit) < static_cast<int>(isa) ? limit : isa;
  }();
  return selected;
}

}  // namespace kiln
