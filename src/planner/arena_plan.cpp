#include "planner/arena_plan.h"

#include <algorithm>
#include <numeric>

namespace kiln {

namespace {
size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }
bool overlaps(const BufferLifetime& a, const BufferLifetime& b) { return a.first <= b.last && b.first <= a.last; }
}  // namespace

ArenaPlan plan_arena(const std::vector<BufferLifetime>& buffers, size_t alignment) {
  ArenaPlan plan;
  plan.offsets.assign(buffers.size(), 0);
  std::vector<size_t> order(buffers.size());
  std::iota(order.begin(), order.end(), size_t{0});
  // Largest first; ties by start so that the result does not depend on the sort.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (buffers[a].bytes != buffers[b].bytes) return buffers[a].bytes > buffers[b].bytes;
    return buffers[a].first < buffers[b].first;
  });

  std::vector<size_t> placed;                   // indices, in placement order
  std::vector<std::pair<size_t, size_t>> busy;  // [offset, end) of conflicting buffers
  for (size_t i : order) {
    const size_t size = align_up(std::max<size_t>(buffers[i].bytes, 1), alignment);
    plan.total_bytes += size;
    busy.clear();
    for (size_t j : placed)
      if (overlaps(buffers[i], buffers[j]))
        busy.emplace_back(plan.offsets[j],
                          plan.offsets[j] + align_up(std::max<size_t>(buffers[j].bytes, 1), alignment));
    std::sort(busy.begin(), busy.end());
    // Walk the gaps between busy ranges; keep the smallest one that fits.
    size_t best = SIZE_MAX, best_gap = SIZE_MAX, cursor = 0;
    for (const auto& [begin, end] : busy) {
      if (begin > cursor && begin - cursor >= size && begin - cursor < best_gap) {
        best = cursor;
        best_gap = begin - cursor;
      }
      cursor = std::max(cursor, end);
    }
    plan.offsets[i] = best != SIZE_MAX ? best : cursor;
    plan.arena_bytes = std::max(plan.arena_bytes, plan.offsets[i] + size);
    placed.push_back(i);
  }
  return plan;
}

}  // namespace kiln
