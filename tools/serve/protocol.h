// KServe v2 inference requests and responses (the Open Inference Protocol's
// REST form), with Triton's binary tensor extension: a request or response
// body may be a JSON header followed by raw tensor bytes, the header's length
// given by the Inference-Header-Content-Length HTTP header.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/error.h"
#include "kiln/tensor.h"

namespace kiln::serve {

// An error the client caused or must hear about, with its HTTP status.
class HttpError : public Error {
 public:
  HttpError(int status, const std::string& message) : Error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

struct RequestedOutput {
  std::string name;
  bool binary = false;
};

struct InferRequest {
  std::string id;  // echoed in the response ("" when absent)
  std::vector<std::pair<std::string, Tensor>> inputs;
  std::vector<RequestedOutput> outputs;  // empty: every output
  bool binary_outputs = false;           // parameters.binary_data_output: outputs not listed are binary
  int64_t timeout_us = 0;                // parameters.timeout (Triton); 0: the server's
};

// Parses an inference request body. header_length: the value of
// Inference-Header-Content-Length (the JSON header's size; the rest of the
// body is the inputs' binary data), nullopt when the body is all JSON.
// HttpError 400 naming the field or input at fault. Declared sizes are checked
// against the body before anything is allocated. capacity: the bytes
// readable from body.data() (a std::string's capacity()), which spares a copy
// of the JSON when it leaves simdjson's padding after it.
InferRequest parse_infer_request(std::string_view body, std::optional<size_t> header_length, size_t capacity = 0);
// The bytes past the JSON that spare that copy (simdjson's padding).
inline constexpr size_t kJsonPadding = 64;

struct ResponseBody {
  std::string body;
  std::optional<size_t> header_length;  // set when binary outputs follow the JSON
};

// The response to a request: its outputs (named, in the model's order) are
// those the request asked for, JSON or binary as it asked.
ResponseBody make_infer_response(const std::string& model, const std::string& version, const InferRequest& request,
                                 const std::vector<std::pair<std::string, Tensor>>& outputs);

// A tensor's elements as a flat JSON array, and in the binary extension's
// form (raw little-endian bytes; BYTES elements each prefixed by a 4-byte
// length). HttpError 500 for a datatype the protocol cannot carry.
std::string tensor_json_data(const Tensor& t);
std::string tensor_binary_data(const Tensor& t);

// {"error": "..."} with the message escaped.
std::string error_json(const std::string& message);

}  // namespace kiln::serve
