// Tensor files: numpy .npy (format 1.0-3.0, little-endian, C order) and
// serialized ONNX TensorProto (.pb, as in the ONNX backend tests).
#pragma once
#include <string>

#include "kiln/tensor.h"

namespace kiln {

Tensor load_npy(const std::string& path);
Tensor parse_npy(const std::string& bytes, const std::string& what);
void save_npy(const Tensor& t, const std::string& path);

Tensor load_tensor_pb(const std::string& path);
// The same, also giving the TensorProto's name ("" when it has none).
Tensor load_tensor_pb(const std::string& path, std::string* name);
Tensor parse_tensor_pb(const void* data, size_t size, const std::string& what, std::string* name = nullptr);
// Writes a TensorProto with raw_data (strings in string_data).
void save_tensor_pb(const Tensor& t, const std::string& name, const std::string& path);

// Picks the reader by extension: .npy, else TensorProto.
Tensor load_tensor_file(const std::string& path);

}  // namespace kiln
