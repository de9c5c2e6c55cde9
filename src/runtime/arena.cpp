#include "runtime/arena.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <new>

#include "planner/arena_plan.h"

namespace kiln {

namespace {}  // namespace

void LifetimeRecorder::produced(int node, int value, const Tensor& t, bool from_output) {
  ValueRecord& r = values[static_cast<size_t>(value)];
  r.producer = node;
  r.bytes = t.dtype() == DType::kString ? 0 : t.nbytes();
  if (r.bytes == 0) return;
  const auto* begin = static_cast<const std::byte*>(t.raw());
  auto it = live_.upper_bound(begin);
  if (it != live_.begin() && begin < std::prev(it)->second.first) {
    r.root = std::prev(it)->second.second;  // a view of (part of) an earlier fresh value
    ++live_members_[r.root];
    return;
  }
  if (!from_output) return;  // memory the kernel got elsewhere: not ours to plan
  r.fresh = true;
  r.root = value;
  live_[begin] = {begin + r.bytes, value};
  live_members_[value] = 1;
}

void LifetimeRecorder::released(int value) {
  int root = values[static_cast<size_t>(value)].root;
  if (root < 0) return;
  auto it = live_members_.find(root);
  if (it == live_members_.end() || --it->second > 0) return;
  live_members_.erase(it);
  for (auto r = live_.begin(); r != live_.end(); ++r)
    if (r->second.second == root) {
      live_.erase(r);
      break;
    }
}

std::shared_ptr<RunPlan> make_run_plan(const std::vector<ValueRecord>& values, const std::vector<int>& last_read,
                                       const std::vector<bool>& is_output) {
  const size_t n = values.size();
  // A block lives from its producer to the last read of any value in it.
  std::vector<int64_t> last(n, -1);
  std::vector<bool> escapes(n, false);
  for (size_t v = 0; v < n; ++v) {
    const ValueRecord& r = values[v];
    if (r.root < 0) continue;
    size_t root = static_cast<size_t>(r.root);
    last[root] = std::max({last[root], static_cast<int64_t>(r.producer), static_cast<int64_t>(last_read[v])});
    if (is_output[v]) escapes[root] = true;
  }
  std::vector<BufferLifetime> buffers;
  std::vector<size_t> owner;
  for (size_t v = 0; v < n; ++v)
    if (values[v].fresh && !escapes[v]) {
      buffers.push_back({values[v].producer, last[v], values[v].bytes});
      owner.push_back(v);
    }
  ArenaPlan ap = plan_arena(buffers, kArenaAlignment);

  auto plan = std::make_shared<RunPlan>();
  plan->offset.assign(n, -1);
  plan->bytes.assign(n, 0);
  plan->root.assign(n, -1);
  for (size_t b = 0; b < buffers.size(); ++b) {
    plan->offset[owner[b]] = static_cast<int64_t>(ap.offsets[b]);
    plan->bytes[owner[b]] = buffers[b].bytes;
  }
  for (size_t v = 0; v < n; ++v) {
    int root = values[v].root;
    if (root >= 0 && plan->offset[static_cast<size_t>(root)] >= 0) plan->root[v] = root;
  }
  plan->arena_bytes = ap.arena_bytes;
  plan->planned_bytes = ap.total_bytes;
  return plan;
}

std::unique_ptr<RunState> RunPlan::acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!free_.empty()) {
      std::unique_ptr<RunState> s = std::move(free_.back());
      free_.pop_back();
      return s;
    }
  }
  auto s = std::make_unique<RunState>();
  if (arena_bytes > static_cast<size_t>(INT64_MAX))
    throw Error("a " + std::to_string(arena_bytes) + "-byte arena for intermediate tensors is too large to allocate");
  try {
    s->arena = Tensor(DType::kUInt8, {static_cast<int64_t>(std::max(arena_bytes, kArenaAlignment))});
  } catch (const Error& e) {
    throw Error("the arena for intermediate tensors: " + std::string(e.what()));
  }
  return s;
}

void RunPlan::release(std::unique_ptr<RunState> state) {
  std::lock_guard<std::mutex> lock(mu_);
  free_.push_back(std::move(state));
}

bool arena_output_ok(const RunPlan& plan, const std::byte* arena, int v, const Tensor& t) {
  if (t.dtype() == DType::kString || t.nbytes() == 0) return true;
  const auto* p = static_cast<const std::byte*>(t.raw());
  if (p < arena || p >= arena + plan.arena_bytes) return true;
  size_t vi = static_cast<size_t>(v);
  int owner = plan.offset[vi] >= 0 ? v : plan.root[vi];
  if (owner < 0) return false;
  const std::byte* block = arena + plan.offset[static_cast<size_t>(owner)];
  return p >= block && p + t.nbytes() <= block + plan.bytes[static_cast<size_t>(owner)];
}

}  // namespace kiln
