// A served model's configuration: Triton's config.pbtxt (protobuf text
// format of its ModelConfig), read for the fields kiln's server uses, or
// derived from the model when the file is absent. Other fields are accepted
// and ignored, so a Triton repository of ONNX models serves unchanged.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kiln/dtype.h"
#include "kiln/session.h"

namespace kiln::serve {

struct TensorConfig {
  std::string name;
  DType dtype = DType::kUndefined;
  // Without the batch dim when max_batch_size > 0; -1: any size.
  std::vector<int64_t> dims;
};

struct ModelConfig {
  std::string name;
  // > 0: every input and output has a leading batch dim, not listed in
  // dims, of at most this size, and requests may be batched together.
  int64_t max_batch_size = 0;
  std::vector<TensorConfig> inputs, outputs;
  bool dynamic_batching = false;
  int64_t max_queue_delay_us = 0;
  std::vector<int64_t> preferred_batch_sizes;
  int64_t max_queue_size = 0;  // 0: the server's default bound
  int instance_count = 1;
};

// Parses config.pbtxt text; kiln::Error naming `origin` and the line at
// fault. Only the fields above are read; unknown fields are skipped.
ModelConfig parse_model_config(const std::string& text, const std::string& origin);

// The configuration of a model without config.pbtxt, Triton's
// auto-complete: batching (max_batch_size default_max_batch, dynamic
// batching) when every input and output has a symbolic leading dim, and an
// engine's profiles allow batches above 1.
ModelConfig derive_model_config(const std::string& name, const Session& session, int64_t default_max_batch);

// Fills what a config.pbtxt left out from the model (inputs and outputs when
// none are listed) and checks the rest against it: names, data types, dims.
// kiln::Error naming the model and the tensor at fault.
void complete_model_config(ModelConfig& config, const Session& session);

// KServe v2 datatype names ("FP32", "INT64", "BYTES") and Triton's config
// names ("TYPE_FP32").
std::string kserve_datatype(DType dtype);
std::optional<DType> dtype_of_kserve(const std::string& name);
std::optional<DType> dtype_of_triton(const std::string& name);

}  // namespace kiln::serve
