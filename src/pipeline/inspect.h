// What is in a model or engine file and what it costs, without running it:
// the data `kiln inspect` prints and kiln.inspect() returns (the JSON layout,
// kept stable, is in docs/flops.md).
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kiln/error.h"
#include "kiln/session.h"

namespace kiln {

// Keys in the order they are written: the report reads top-down (header,
// histogram, unsupported, nodes, totals).
using InspectJson = nlohmann::ordered_json;

// A model whose inputs have dims no shape fixes: the per-node counts need
// numbers, and kiln does not guess them. `inputs` lists those inputs.
class UnresolvedDimsError : public Error {
 public:
  explicit UnresolvedDimsError(std::vector<TensorInfo> open);
  std::vector<TensorInfo> inputs;
};

// An ONNX model: its header (IR version, producer, opsets, inputs and
// outputs, parameters by type), op histogram, the nodes kiln cannot run and
// why, and per node its shapes, parameters, MACs and FLOPs (inside
// control-flow bodies too), with totals. `shapes` fixes symbolic input dims
// (every dim must end up known); `optimized` counts the graph after kiln's
// optimizer (not done, with a warning, for a model kiln cannot run).
InspectJson inspect_model(const std::string& path, const std::map<std::string, Shape>& shapes, bool optimized,
                          std::vector<std::string>* warnings = nullptr);

// An engine file (kiln build): format version, sections, the instruction set
// its kernels were packed for, profiles with their memory plans, and each
// node with the kernel it runs and its packed bytes.
InspectJson inspect_engine(const std::string& path);

}  // namespace kiln
