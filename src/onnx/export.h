// kiln IR -> ONNX ModelProto: the inverse of import.h, for a graph as
// imported, as the optimizer left it (kiln-domain ops included) or as built
// by hand. Whatever the importer reads is written back, so that importing
// the result gives the same graph.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "ir/graph.h"
#include "onnx/import.h"  // Model, ExternalRef

namespace kiln {

struct OnnxExportOptions {
  // Called for every initializer tensor (not for tensor attributes, and not
  // for string tensors, which ONNX cannot store externally): return true
  // after filling *ref to store the data as ONNX external data
  // (data_location = EXTERNAL with keys location/offset/length) instead of
  // raw_data; ref->length must be the tensor's byte size. The callback writes
  // the bytes wherever ref says. Null: every tensor goes inline as raw_data
  // (strings as string_data).
  std::function<bool(const Value& v, const Tensor& t, ExternalRef* ref)> external;
  int64_t ir_version = 0;  // 0: the model's own, at least 8 (model-local functions)
};

// Serializes `model` as an ONNX ModelProto. Throws kiln::Error naming the
// value for an initializer whose data kiln freed after packing it (compile's
// free_owned) unless `external` takes it, and for a model over protobuf's 2 GB
// (store the weights externally then).
std::string export_onnx(const Model& model, const OnnxExportOptions& options = {});
void save_onnx(const Model& model, const std::string& path, const OnnxExportOptions& options = {});

}  // namespace kiln
