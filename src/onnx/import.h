// ONNX ModelProto -> kiln IR. The only place (with tensor_io.cpp) that sees
// protobuf types.
#pragma once
#include <map>
#include <memory>
#include <string>

#include "ir/graph.h"
#include "kiln/tensor_io.h"

namespace kiln {

struct Model {
  int64_t ir_version = 0;
  std::string producer_name;
  std::string producer_version;
  std::map<std::string, int> opsets;  // domain ("" = ai.onnx) -> version
  std::shared_ptr<Graph> graph;
  std::string source;  // file path, or "<memory>"
};

// Loads a model file; external data is resolved relative to its folder.
Model load_onnx_file(const std::string& path);
// Loads a model held in memory. External data, if any, is looked up under
// base_dir; with an empty base_dir a model with external data is refused.
Model load_onnx_bytes(const void* data, size_t size, const std::string& base_dir = "",
                      const std::string& source = "<memory>");

}  // namespace kiln
