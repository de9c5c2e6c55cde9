// Memory planning: places buffers with known lifetimes in one arena so that
// buffers whose lifetimes overlap never share bytes. A pure function, tested
// on synthetic lifetimes (tests/arena_plan_test.cpp); the executor feeds it
// the intermediate tensors of a run (runtime/executor.cpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace kiln {

// One buffer: `bytes` long, live from step `first` to step `last` inclusive
// (steps are node indices in execution order).
struct BufferLifetime {
  int64_t first = 0;
  int64_t last = 0;
  size_t bytes = 0;
};

struct ArenaPlan {
  std::vector<size_t> offsets;  // parallel to the buffers, multiples of the alignment
  size_t arena_bytes = 0;       // size of the arena that holds them all
  size_t total_bytes = 0;       // sum of the aligned buffer sizes (the arena without reuse)
};

// Greedy by size (largest first), each buffer into the tightest gap left by
// the already placed buffers whose lifetimes intersect its own, else above
// them all. Not optimal (the problem is NP-hard) but within a few percent of
// the lower bound on CNN and transformer graphs.
ArenaPlan plan_arena(const std::vector<BufferLifetime>& buffers, size_t alignment = 64);

}  // namespace kiln
