#pragma once
#include <onnx/onnx_pb.h>

#include <string>

#include "kiln/tensor.h"
#include "onnx/import.h"

namespace kiln {

// Converts a TensorProto, checking every size against its shape first.
// `what` names the tensor in errors. External data comes from `resolver`
// when given, else from the file its location names under base_dir.
Tensor tensor_from_proto(const onnx::TensorProto& p, const std::string& base_dir, const std::string& what,
                         const ExternalResolver* resolver = nullptr);
void tensor_to_proto(const Tensor& t, const std::string& name, onnx::TensorProto* p);

}  // namespace kiln
