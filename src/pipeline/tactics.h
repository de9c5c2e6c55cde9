// Tactic timing at engine build (TensorRT's idea): where more than one kernel
// could run a node, run each at the profile's opt shape and keep the faster.
// Today: 3x3 stride-1 convolutions, Winograd F(4x4, 3x3) against oneDNN's
// direct convolution, on the convs where Winograd's error stays within
// kiln's budget. The choice goes into the node (BlockedConv's `algorithm`
// attribute), so it is part of the engine. A timing cache (JSON) keeps the
// measurements by conv geometry, instruction set and threads, so that later
// builds of the same layers skip the timing.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/session.h"

namespace kiln::engine {

class TimingCache {
 public:
  // An empty cache, or the one in `path` when it exists (kiln::Error naming
  // the file when it is not a timing cache).
  static TimingCache load(const std::string& path);
  void save(const std::string& path) const;
  const nlohmann::json* find(const std::string& key) const;
  void put(const std::string& key, nlohmann::json timings) { entries_[key] = std::move(timings); }
  size_t size() const { return entries_.size(); }

 private:
  nlohmann::json entries_ = nlohmann::json::object();
};

struct TacticReport {
  int timed = 0;                                     // nodes measured now
  int cached = 0;                                    // nodes whose timings came from the cache
  nlohmann::json choices = nlohmann::json::array();  // {node, key, winograd_us, direct_us, algorithm}
};

// Sets `algorithm` on each BlockedConv where the choice is open. threads: the
// pool the engine is tuned for (0 = physical cores).
TacticReport choose_conv_algorithms(Graph& g, const std::vector<ShapeProfile>& profiles, int threads,
                                    TimingCache& cache);

}  // namespace kiln::engine
