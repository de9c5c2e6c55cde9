// ONNX ModelProto -> kiln IR. The only place (with tensor_io.cpp) that sees
// protobuf types.
#pragma once
#include <cstdint>
#include <functional>
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

// Where a tensor's data lies outside the model: ONNX external data
// (data_location = EXTERNAL, keys location/offset/length).
struct ExternalRef {
  std::string location;
  int64_t offset = 0;
  int64_t length = 0;
};

// Produces the tensor an EXTERNAL TensorProto refers to, in place of reading
// the file it names. The result must have the given dtype and shape; it may
// wrap memory the resolver owns (Tensor::wrap) or have no data at all
// (Tensor::wrap(dtype, shape, nullptr)) for a caller that never runs it.
// tensor_name is the TensorProto's name (empty for some tensor attributes).
using ExternalResolver =
    std::function<Tensor(const ExternalRef& ref, DType dtype, const Shape& shape, const std::string& tensor_name)>;

// Loads a model file; external data is resolved relative to its folder.
Model load_onnx_file(const std::string& path);
// Loads a model held in memory. External data, if any, is looked up under
// base_dir; with an empty base_dir a model with external data is refused.
Model load_onnx_bytes(const void* data, size_t size, const std::string& base_dir = "",
                      const std::string& source = "<memory>");
// Loads a model held in memory whose every EXTERNAL tensor (initializers and
// tensor attributes) comes from `resolver`; no file is read. The ref's length
// is the tensor's byte size when the file gave none.
Model load_onnx_bytes(const void* data, size_t size, const ExternalResolver& resolver,
                      const std::string& source = "<memory>");

}  // namespace kiln
