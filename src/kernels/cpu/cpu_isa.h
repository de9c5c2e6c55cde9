// Which instruction set the optimized kernels may use on this CPU, decided once
// at run time. KILN_CPU_ISA=scalar|avx2|avx512 caps it (to test a lower path on
// a machine that has a higher one); it never raises it above what the CPU has.
#pragma once

namespace kiln {

// Ordered: a CPU that supports one level supports all lower ones.
enum class CpuIsa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

const char* cpu_isa_name(CpuIsa isa);
// What this CPU (and OS) supports, ignoring KILN_CPU_ISA.
CpuIsa cpu_isa_supported();
// What kernels should use: cpu_isa_supported() capped by KILN_CPU_ISA.
CpuIsa cpu_isa_selected();

}  // namespace kiln
