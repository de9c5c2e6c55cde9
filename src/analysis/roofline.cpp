#include "analysis/roofline.h"

#include <algorithm>
#include <vector>

namespace kiln {

namespace {

// Bytes of one value's tensor, -1 when not known (see node_bytes_moved).
int64_t value_bytes(const Value& v) {
  const ValueType& t = v.type;
  if (t.kind != ValueKind::kTensor || !t.is_static()) return -1;
  if (t.dtype == DType::kUndefined || t.dtype == DType::kString) return -1;
  int64_t n = static_cast<int64_t>(dtype_size(t.dtype));
  for (const Dim& d : *t.shape)
    if (__builtin_mul_overflow(n, d.value, &n)) return -1;
  return n;
}

}  // namespace

RooflinePoint roofline_point(int64_t flops, int64_t bytes, double seconds, const MachineRoofs& roofs) {
  RooflinePoint p;
  if (bytes <= 0) return p;
  p.level = roofs.llc_bytes > 0 && bytes > roofs.llc_bytes ? MemoryLevel::kDram : MemoryLevel::kL2;
  p.bandwidth_gbps = p.level == MemoryLevel::kDram ? roofs.dram_gbps : roofs.l2_gbps;
  if (seconds > 0) p.achieved_gbps = static_cast<double>(bytes) / seconds * 1e-9;
  if (flops < 0) return p;
  if (seconds > 0) p.achieved_gflops = static_cast<double>(flops) / seconds * 1e-9;
  p.intensity = static_cast<double>(flops) / static_cast<double>(bytes);
  if (roofs.peak_gflops <= 0 || p.bandwidth_gbps <= 0) return p;
  p.ridge = roofs.peak_gflops / p.bandwidth_gbps;
  // At the ridge both roofs give the same attainable rate; call it compute.
  p.bound = p.intensity >= p.ridge ? Bound::kCompute : Bound::kMemory;
  p.roof = p.bound == Bound::kCompute ? roofs.peak_gflops : p.bandwidth_gbps;
  if (seconds > 0) {
    p.achieved = p.bound == Bound::kCompute ? p.achieved_gflops : p.achieved_gbps;
    p.fraction = p.achieved / p.roof;
  }
  return p;
}

int64_t node_bytes_moved(const Node& node) {
  std::vector<const Value*> seen;
  int64_t total = 0;
  const auto add = [&](const Value* v) {
    if (!v || std::find(seen.begin(), seen.end(), v) != seen.end()) return true;
    seen.push_back(v);
    const int64_t b = value_bytes(*v);
    return b >= 0 && !__builtin_add_overflow(total, b, &total);
  };
  for (const Value* v : node.inputs)
    if (!add(v)) return -1;
  for (const Value* v : node.outputs)
    if (!add(v)) return -1;
  return total;
}

const char* bound_name(Bound b) {
  switch (b) {
    case Bound::kCompute: return "compute";
    case Bound::kMemory: return "memory";
    case Bound::kUnknown: break;
  }
  return "unknown";
}

const char* memory_level_name(MemoryLevel l) { return l == MemoryLevel::kDram ? "DRAM" : "L2"; }

}  // namespace kiln
