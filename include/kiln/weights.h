// Weights outside ONNX files: PyTorch checkpoints (torch.save's zip format),
// .safetensors and tensorrtx's .wts text format, read in C++ without Python.
// The checkpoint reader implements only the pickle opcodes and the few
// globals a dict of tensors needs and refuses every other global, so a
// malicious checkpoint can never run code (docs/weights.md).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/tensor.h"

namespace kiln {

enum class WeightsFormat { kTorchZip, kSafetensors, kWts };
// "torch", "safetensors", "wts".
std::string weights_format_name(WeightsFormat f);

struct NamedTensor {
  // Nested dicts and lists are flattened with dots: {'model': {'fc.weight': t}}
  // gives "model.fc.weight"; a checkpoint that is a bare tensor gives "tensor".
  std::string name;
  // Contiguous and owned (strided views are copied out of their storage);
  // tensors that were one object in the checkpoint (tied weights) share a buffer.
  Tensor tensor;
};

// A leaf of a checkpoint that is not a tensor: an epoch, a learning rate, a
// name, a list of numbers; or a safetensors "__metadata__" entry.
struct WeightValue {
  std::string name;
  std::string type;   // "int", "float", "str", "bool", "None", "list", "tuple", "metadata"
  std::string value;  // Python-like text: 3, 0.1, 'adam', [1, 2, 3] (cut after 200 characters)
};

struct WeightMap {
  WeightsFormat format = WeightsFormat::kTorchZip;
  std::vector<NamedTensor> tensors;  // in the file's order
  std::vector<WeightValue> values;   // the other leaves, in the file's order

  // nullptr when there is no tensor of that name.
  const Tensor* find(std::string_view name) const;
};

// Reads a checkpoint, detecting the format by its content (not its name):
// "PK\3\4" a torch.save zip, an 8-byte little-endian length and '{' a
// safetensors file, a line with a count a .wts file. Throws kiln::Error
// naming the file, the entry, opcode or offset and what is wrong.
WeightMap load_weights(const std::string& path);
// The same from memory; `label` stands for the file name in messages.
WeightMap load_weights_bytes(std::span<const uint8_t> bytes, const std::string& label = "<memory>");

// A float32 copy of a float16, bfloat16, float64 or integer tensor (float32
// ones are returned as they are); kiln::Error for bool.
Tensor weights_to_float32(const Tensor& t);

}  // namespace kiln
