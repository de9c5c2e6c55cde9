// Element types. The numeric values are ONNX's TensorProto.DataType, so a
// dtype read from a file needs no mapping table.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace kiln {

enum class DType : int32_t {
  kUndefined = 0,
  kFloat32 = 1,
  kUInt8 = 2,
  kInt8 = 3,
  kUInt16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kString = 8,
  kBool = 9,
  kFloat16 = 10,
  kFloat64 = 11,
  kUInt32 = 12,
  kUInt64 = 13,
  kBFloat16 = 16,
};

// True for the types kiln can hold in a Tensor.
bool dtype_is_supported(int32_t onnx_type);
// Bytes per element; strings report sizeof(std::string).
size_t dtype_size(DType t);
// ONNX spelling: "float", "int64", "float16", ...
std::string dtype_name(DType t);
// numpy spelling: "float32", "int64", ... (PyTorch uses the same names).
std::string dtype_numpy_name(DType t);
bool dtype_is_float(DType t);    // float16, bfloat16, float32, float64
bool dtype_is_integer(DType t);  // signed and unsigned integers (not bool)
bool dtype_is_signed(DType t);

}  // namespace kiln
