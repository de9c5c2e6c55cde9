// kiln serve's pieces without HTTP: config.pbtxt reading, the KServe v2
// request and response codec, and the dynamic batcher
// (tests/serve_test.py drives the whole server over HTTP).
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>

#include "error_of.h"
#include "kiln/session.h"
#include "model_builder.h"
#include "serve/model.h"
#include "serve/model_config.h"
#include "serve/protocol.h"

namespace kiln::serve {
namespace {

TEST(ModelConfig, ReadsTritonsTextFormatAndSkipsUnknownFields) {
  ModelConfig c = parse_model_config(R"(
# a Triton config
name: "resnet"
platform: "onnxruntime_onnx"
max_batch_size: 16
input [
  { name: "input" data_type: TYPE_FP32 format: FORMAT_NCHW dims: [ 3, -1, -1 ] },
  { name: "mask", data_type: TYPE_BOOL, dims: 7 }
]
output < name: "logits" data_type: TYPE_FP16 dims: [ 1000 ] >
dynamic_batching { preferred_batch_size: [ 8, 4 ] max_queue_delay_microseconds: 100
                   default_queue_policy { max_queue_size: 5 timeout_action: REJECT } }
instance_group [ { count: 2 kind: KIND_CPU }, { kind: KIND_CPU } ]
optimization { execution_accelerators { cpu_execution_accelerator: [ { name: "openvino" } ] } }
parameters { key: "x" value: { string_value: "a \"quoted\" value" } }
)",
                                     "repo/resnet/config.pbtxt");
  EXPECT_EQ(c.name, "resnet");
  EXPECT_EQ(c.max_batch_size, 16);
  ASSERT_EQ(c.inputs.size(), 2u);
  EXPECT_EQ(c.inputs[0].name, "input");
  EXPECT_EQ(c.inputs[0].dtype, DType::kFloat32);
  EXPECT_EQ(c.inputs[0].dims, (std::vector<int64_t>{3, -1, -1}));
  EXPECT_EQ(c.inputs[1].dtype, DType::kBool);
  EXPECT_EQ(c.inputs[1].dims, (std::vector<int64_t>{7}));
  ASSERT_EQ(c.outputs.size(), 1u);
  EXPECT_EQ(c.outputs[0].dtype, DType::kFloat16);
  EXPECT_TRUE(c.dynamic_batching);
  EXPECT_EQ(c.max_queue_delay_us, 100);
  EXPECT_EQ(c.preferred_batch_sizes, (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(c.max_queue_size, 5);
  EXPECT_EQ(c.instance_count, 3);  // 2 + 1 (count defaults to 1)
}

TEST(ModelConfig, ErrorsNameTheFileAndLine) {
  const std::string origin = "repo/m/config.pbtxt";
  EXPECT_EQ(error_of([&] { parse_model_config("name: \"m\"\nmax_batch_size: {{", origin); }),
            "repo/m/config.pbtxt:2: config.pbtxt: expected a field name, found '{'");
  EXPECT_NE(error_of([&] {
              parse_model_config("max_batch_size: eight", origin);
            }).find(":1: config.pbtxt: 'max_batch_size' must be an integer, not 'eight'"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              parse_model_config("\n\ninput [ { name: \"x\" data_type: TYPE_COMPLEX } ]", origin);
            }).find(":3: config.pbtxt: data_type 'TYPE_COMPLEX'"),
            std::string::npos);
  EXPECT_NE(error_of([&] { parse_model_config("input { name: \"x\"", origin); }).find("expected '}' before the end"),
            std::string::npos);
  EXPECT_NE(error_of([&] { parse_model_config("name: \"unterminated\n", origin); }).find("past the end of its line"),
            std::string::npos);
  EXPECT_NE(error_of([&] { parse_model_config("instance_group [ { count: 0 } ]", origin); }).find("count 0"),
            std::string::npos);
  EXPECT_NE(error_of([&] { parse_model_config("instance_group [ { kind: KIND_GPU } ]", origin); }).find("KIND_GPU"),
            std::string::npos);
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "a { ";
  EXPECT_NE(error_of([&] { parse_model_config(deep, origin); }).find("nested too deeply"), std::string::npos);
  EXPECT_EQ(error_of([&] { parse_model_config("", origin); }), "");  // empty: all defaults
}

TEST(ModelConfig, DatatypeNamesRoundTrip) {
  for (DType d : {DType::kBool, DType::kUInt8, DType::kUInt16, DType::kUInt32, DType::kUInt64, DType::kInt8,
                  DType::kInt16, DType::kInt32, DType::kInt64, DType::kFloat16, DType::kFloat32, DType::kFloat64,
                  DType::kString, DType::kBFloat16}) {
    EXPECT_EQ(dtype_of_kserve(kserve_datatype(d)), d);
    const std::string triton = d == DType::kString ? "TYPE_STRING" : "TYPE_" + kserve_datatype(d);
    EXPECT_EQ(dtype_of_triton(triton), d) << triton;
  }
  EXPECT_FALSE(dtype_of_kserve("FLOAT"));
  EXPECT_FALSE(dtype_of_triton("TYPE_BYTES"));  // Triton spells it TYPE_STRING
}

// Random tensors of every datatype, written as a request by
// tensor_json_data / tensor_binary_data, read back by parse_infer_request.
Tensor random_tensor(DType d, const Shape& shape, std::mt19937& rng) {
  if (d == DType::kString) {
    std::vector<std::string> v(static_cast<size_t>(shape_numel(shape)));
    for (auto& s : v) {
      s.resize(rng() % 12);
      for (char& c : s) c = static_cast<char>(rng() % 256);  // any bytes: quotes, control, invalid UTF-8
    }
    return Tensor::from_strings(shape, std::move(v));
  }
  Tensor t = Tensor::uninitialized(d, shape);
  auto* bytes = static_cast<unsigned char*>(t.raw());
  for (size_t i = 0; i < t.nbytes(); ++i) bytes[i] = static_cast<unsigned char>(rng());
  if (d == DType::kBool)
    for (int64_t i = 0; i < t.numel(); ++i) bytes[i] &= 1;
  // Floats: finite values only in JSON (NaN has no JSON form to compare by
  // value); the binary path keeps every bit pattern.
  auto clamp = [&](auto* p) {
    for (int64_t i = 0; i < t.numel(); ++i)
      if (!std::isfinite(static_cast<double>(p[i]))) p[i] = 1.5;
  };
  if (d == DType::kFloat32) clamp(t.data<float>());
  if (d == DType::kFloat64) clamp(t.data<double>());
  if (d == DType::kFloat16 || d == DType::kBFloat16)
    for (int64_t i = 0; i < t.numel(); ++i) reinterpret_cast<uint16_t*>(bytes)[i] &= 0x3fff;  // finite, |x| < 2
  return t;
}

bool same_tensor(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  if (a.dtype() == DType::kString) {
    for (int64_t i = 0; i < a.numel(); ++i)
      if (a.data<std::string>()[i] != b.data<std::string>()[i]) return false;
    return true;
  }
  return a.nbytes() == 0 || std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

TEST(Protocol, EveryDatatypeRoundTripsThroughJsonAndBinary) {
  std::mt19937 rng(7);
  for (DType d : {DType::kBool, DType::kUInt8, DType::kUInt16, DType::kUInt32, DType::kUInt64, DType::kInt8,
                  DType::kInt16, DType::kInt32, DType::kInt64, DType::kFloat16, DType::kFloat32, DType::kFloat64,
                  DType::kBFloat16, DType::kString}) {
    for (const Shape& shape : {Shape{}, Shape{0}, Shape{3}, Shape{2, 0, 4}, Shape{2, 3, 5}}) {
      SCOPED_TRACE(dtype_name(d) + " " + shape_str(shape));
      const Tensor t = random_tensor(d, shape, rng);
      const std::string head = fmt::format(R"({{"inputs":[{{"name":"x","datatype":"{}","shape":[{}],)",
                                           kserve_datatype(d), fmt::join(shape, ","));
      if (d != DType::kString) {  // BYTES in JSON are text: tested with text below
        const std::string json = head + R"("data":)" + tensor_json_data(t) + "}]}";
        InferRequest r = parse_infer_request(json, std::nullopt);
        ASSERT_EQ(r.inputs.size(), 1u);
        EXPECT_TRUE(same_tensor(r.inputs[0].second, t));
      }
      const std::string bytes = tensor_binary_data(t);
      const std::string header = head + fmt::format(R"("parameters":{{"binary_data_size":{}}}}}]}})", bytes.size());
      InferRequest r = parse_infer_request(header + bytes, header.size());
      EXPECT_TRUE(same_tensor(r.inputs[0].second, t));
    }
  }
}

TEST(Protocol, NestedAndFlatDataAreTheSame) {
  auto parse = [](const std::string& data) {
    return parse_infer_request(R"({"inputs":[{"name":"x","datatype":"INT32","shape":[2,3],"data":)" + data + "}]}",
                               std::nullopt)
        .inputs[0]
        .second;
  };
  EXPECT_TRUE(same_tensor(parse("[[1,2,3],[4,5,6]]"), parse("[1,2,3,4,5,6]")));
  EXPECT_EQ(parse("[[1,2,3],[4,5,6]]").data<int32_t>()[5], 6);
}

TEST(Protocol, AnUnpaddedAndAPaddedBodyParseAlike) {
  std::string body = R"({"inputs":[{"name":"x","datatype":"FP64","shape":[3],"data":[1.5,-2,3e-7]}]})";
  const Tensor copied = parse_infer_request(body, std::nullopt).inputs[0].second;
  body.reserve(body.size() + kJsonPadding);
  const Tensor in_place = parse_infer_request(body, std::nullopt, body.capacity()).inputs[0].second;
  EXPECT_TRUE(same_tensor(copied, in_place));
  EXPECT_EQ(in_place.data<double>()[2], 3e-7);
}

TEST(Protocol, RequestFieldsAreRead) {
  InferRequest r = parse_infer_request(
      R"({"id":"abc","parameters":{"binary_data_output":true,"timeout":500},
          "inputs":[{"name":"s","datatype":"BYTES","shape":[2],"data":["h\u00e9llo","a\"b"]}],
          "outputs":[{"name":"y"},{"name":"z","parameters":{"binary_data":false}}]})",
      std::nullopt);
  EXPECT_EQ(r.id, "abc");
  EXPECT_TRUE(r.binary_outputs);
  EXPECT_EQ(r.timeout_us, 500);
  EXPECT_EQ(r.inputs[0].second.data<std::string>()[0], "h\xc3\xa9llo");
  EXPECT_EQ(r.inputs[0].second.data<std::string>()[1], "a\"b");
  ASSERT_EQ(r.outputs.size(), 2u);
  EXPECT_TRUE(r.outputs[0].binary);  // the request's default
  EXPECT_FALSE(r.outputs[1].binary);
}

TEST(Protocol, BadRequestsAre400sNamingTheProblem) {
  auto status_and_message = [](const std::string& body, std::optional<size_t> header = std::nullopt) {
    try {
      parse_infer_request(body, header);
    } catch (const HttpError& e) {
      return std::to_string(e.status()) + " " + e.what();
    }
    return std::string("accepted");
  };
  const std::string x = R"({"inputs":[{"name":"x","datatype":"FP32","shape":[2],)";
  EXPECT_EQ(status_and_message(x + R"("data":[1,2,3]}]})"),
            "400 input 'x': data has 3 elements, its shape [2] needs 2");
  EXPECT_EQ(status_and_message(x + R"("data":[1,true]}]})"), "400 input 'x': element 1 is not a number");
  // A flat-looking array with a nested one later: never more writes than the shape holds.
  EXPECT_EQ(status_and_message(x + R"("data":[1,[]]}]})"), "400 input 'x': data has 1 elements, its shape needs 2");
  EXPECT_EQ(status_and_message(x + R"("data":[1,[2,3]]}]})"),
            "400 input 'x': data has more than the 2 elements of its shape");
  EXPECT_EQ(status_and_message(R"({"inputs":[{"name":"s","datatype":"BYTES","shape":[2],"data":["a",["b","c"]]}]})"),
            "400 input 's': data has more than the 2 elements of its shape");
  EXPECT_EQ(status_and_message(R"({"inputs":[{"name":"x","datatype":"INT8","shape":[1],"data":[300]}]})"),
            "400 input 'x': element 0 is not an integer in the range of its datatype");
  EXPECT_EQ(status_and_message(R"({"inputs":[{"name":"x","datatype":"UINT8","shape":[1],"data":[-1]}]})"),
            "400 input 'x': element 0 is not an integer in the range of its datatype");
  EXPECT_EQ(status_and_message(R"({"inputs":[{"name":"x","datatype":"INT64","shape":[1],"data":[1.5]}]})"),
            "400 input 'x': element 0 is not an integer in the range of its datatype");
  EXPECT_EQ(status_and_message(x + R"("data":[1,2]},{"name":"x","datatype":"FP32","shape":[2],"data":[1,2]}]})"),
            "400 input 'x' is given twice");
  const std::string bin = x + R"("parameters":{"binary_data_size":8}}]})";
  EXPECT_EQ(status_and_message(bin + std::string(4, '\0'), bin.size()),
            "400 input 'x': binary_data_size is 8, but only 4 binary bytes remain in the body");
  EXPECT_EQ(status_and_message(bin + std::string(12, '\0'), bin.size()),
            "400 the body has 4 binary bytes after the inputs' binary data");
  EXPECT_EQ(status_and_message(bin),
            "400 input 'x' has binary_data_size but the request has no Inference-Header-Content-Length");
  EXPECT_EQ(status_and_message("{}", 3), "400 Inference-Header-Content-Length is 3, but the body has only 2 bytes");
  // BYTES in binary form: lengths that run past the data.
  const std::string s =
      R"({"inputs":[{"name":"s","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":6}}]})";
  EXPECT_EQ(status_and_message(s + std::string("\x05\0\0\0ab", 6), s.size()),
            "400 input 's': binary BYTES element 0 runs past its data");
  // Sizes are checked before anything is allocated.
  EXPECT_EQ(
      status_and_message(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[4611686018427387904,4],"data":[]}]})"),
      "400 input 'x': shape [4611686018427387904,4] has too many elements");
  EXPECT_EQ(status_and_message(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1000000000000],"data":[]}]})"),
            "400 input 'x': data has 0 elements, its shape [1000000000000] needs 1000000000000");
}

TEST(Protocol, ResponsesCarryTheRequestedOutputsInTheRequestedForm) {
  Tensor a = Tensor::uninitialized(DType::kFloat32, {2});
  a.data<float>()[0] = 0.1f;
  a.data<float>()[1] = NAN;
  Tensor b = Tensor::from_strings({1}, {"q\"\n"});
  InferRequest r;
  r.id = "7";
  ResponseBody all = make_infer_response("m", "1", r, {{"a", a}, {"b", b}});
  EXPECT_FALSE(all.header_length);
  EXPECT_EQ(all.body, R"({"model_name":"m","model_version":"1","id":"7","outputs":[)"
                      R"({"name":"a","datatype":"FP32","shape":[2],"data":[0.1,NaN]},)"
                      R"({"name":"b","datatype":"BYTES","shape":[1],"data":["q\"\u000a"]}]})");
  r.id.clear();
  r.outputs = {{"b", true}};
  ResponseBody one = make_infer_response("m", "1", r, {{"a", a}, {"b", b}});
  ASSERT_TRUE(one.header_length);
  EXPECT_EQ(one.body.substr(0, *one.header_length),
            R"({"model_name":"m","model_version":"1","outputs":[{"name":"b","datatype":"BYTES","shape":[1],)"
            R"("parameters":{"binary_data_size":7}}]})");
  EXPECT_EQ(one.body.substr(*one.header_length), std::string("\x03\0\0\0q\"\n", 7));
}

// --- the batcher -----------------------------------------------------------

// y = GatherElements(x, idx, axis 1): x [batch, 4] float, idx [batch, 1]
// int64. An index out of range fails the run: the request at fault.
std::string gather_model(const std::filesystem::path& dir) {
  onnx::ModelProto m = test::make_model();
  auto* g = m.mutable_graph();
  *g->add_input() = test::tensor_info("x", onnx::TensorProto::FLOAT, {-1, 4}, {"batch"});
  *g->add_input() = test::tensor_info("idx", onnx::TensorProto::INT64, {-1, 1}, {"batch"});
  *g->add_output() = test::tensor_info("y", onnx::TensorProto::FLOAT, {-1, 1}, {"batch"});
  auto* n = g->add_node();
  *n = test::make_node("GatherElements", {"x", "idx"}, {"y"});
  auto* axis = n->add_attribute();
  axis->set_name("axis");
  axis->set_type(onnx::AttributeProto::INT);
  axis->set_i(1);
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "gather.onnx").string();
  std::ofstream(path, std::ios::binary) << m.SerializeAsString();
  return path;
}

struct Results {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<NamedTensors, std::string>> got;  // outputs, error message
  size_t done = 0;
  ServedModel::Done slot(size_t i) {
    return [this, i](NamedTensors out, std::exception_ptr error) {
      std::string message;
      if (error) {
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& e) {
          message = e.what();
        }
      }
      std::lock_guard lock(mu);
      got[i] = {std::move(out), message};
      ++done;
      cv.notify_all();
    };
  }
  void wait(size_t n) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done == n; });
  }
};

std::shared_ptr<InferRequest> gather_request(int64_t batch, int64_t first_row, int64_t index) {
  auto r = std::make_shared<InferRequest>();
  Tensor x(DType::kFloat32, {batch, 4}), idx(DType::kInt64, {batch, 1});
  for (int64_t i = 0; i < batch; ++i) {
    for (int j = 0; j < 4; ++j) x.data<float>()[i * 4 + j] = static_cast<float>(100 * (first_row + i) + j);
    idx.data<int64_t>()[i] = index;
  }
  r->inputs = {{"x", x}, {"idx", idx}};
  return r;
}

TEST(Batcher, MergesQueuedRequestsAndGivesEachItsRowsAndItsError) {
  const std::string path = gather_model(std::filesystem::path(testing::TempDir()) / "kiln_serve_batcher");
  Scheduler scheduler(2);
  ModelConfig config;
  config.max_batch_size = 8;
  config.dynamic_batching = true;
  config.max_queue_delay_us = 200'000;  // long: every request below is queued before the batch runs
  ServedModel model("gather", "1", path, config, scheduler, ServeLimits{});
  EXPECT_EQ(model.config().inputs.size(), 2u);  // completed from the model

  // Batches 1, 3, 2, 2 (one with an index out of range) = 8 rows: one run,
  // then (after the failure) one run per request.
  const std::vector<std::tuple<int64_t, int64_t, int64_t>> requests = {{1, 0, 2}, {3, 1, 3}, {2, 4, 9}, {2, 6, 0}};
  Results results;
  results.got.resize(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    auto [batch, first, index] = requests[i];
    auto r = gather_request(batch, first, index);
    model.validate(*r);
    model.submit(r, results.slot(i));
  }
  results.wait(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    auto [batch, first, index] = requests[i];
    SCOPED_TRACE(i);
    if (index >= 4) {
      EXPECT_NE(results.got[i].second.find("model 'gather' failed"), std::string::npos) << results.got[i].second;
      continue;
    }
    ASSERT_EQ(results.got[i].second, "");
    const Tensor& y = results.got[i].first.at(0).second;
    ASSERT_EQ(y.shape(), (Shape{batch, 1}));
    for (int64_t row = 0; row < batch; ++row) EXPECT_EQ(y.data<float>()[row], 100.0f * (first + row) + index);
  }
  EXPECT_EQ(model.stats().failure, 1u);
  EXPECT_EQ(model.stats().executions, 1u + requests.size());  // the merged run, then each alone
}

TEST(Batcher, AnEnginesProfilesBoundItsBatch) {
  const std::filesystem::path dir = std::filesystem::path(testing::TempDir()) / "kiln_serve_engine";
  const std::string engine = (dir / "gather.kiln").string();
  BuildOptions build;
  build.time_tactics = false;
  build.profiles.push_back(ShapeProfile{
      {{"x", {1, 4}}, {"idx", {1, 1}}}, {{"x", {2, 4}}, {"idx", {2, 1}}}, {{"x", {3, 4}}, {"idx", {3, 1}}}});
  build_engine(gather_model(dir), engine, build);
  Scheduler scheduler(1);
  ServeLimits limits;
  limits.default_max_batch = 8;
  // Derived: at most the profiles' largest batch.
  EXPECT_EQ(ServedModel("gather", "1", engine, std::nullopt, scheduler, limits).config().max_batch_size, 3);
  ModelConfig config;
  config.max_batch_size = 4;
  EXPECT_EQ(error_of([&] { ServedModel("gather", "1", engine, config, scheduler, limits); }),
            "model 'gather': max_batch_size 4 is above the largest batch of the engine's profiles (3); lower it, or "
            "rebuild the engine with a larger --max-shapes batch");
}

TEST(Batcher, ValidateNamesWhatDoesNotFit) {
  const std::string path = gather_model(std::filesystem::path(testing::TempDir()) / "kiln_serve_validate");
  Scheduler scheduler(1);
  ModelConfig config;
  config.max_batch_size = 4;
  ServedModel model("gather", "1", path, config, scheduler, ServeLimits{});
  auto message = [&](const std::shared_ptr<InferRequest>& r) { return error_of([&] { model.validate(*r); }); };
  EXPECT_EQ(message(gather_request(2, 0, 1)), "");
  EXPECT_EQ(message(gather_request(5, 0, 1)),
            "input 'x' has shape [5,4], model 'gather' expects [-1,4] (batch 5 is outside 1..max_batch_size 4)");
  auto r = gather_request(1, 0, 1);
  r->inputs[1].second = Tensor(DType::kInt32, {1, 1});
  EXPECT_EQ(message(r), "input 'idx' has datatype INT32, model 'gather' expects INT64");
  r = gather_request(1, 0, 1);
  r->inputs.pop_back();
  EXPECT_EQ(message(r), "the request lacks input 'idx' of model 'gather'");
  r = gather_request(1, 0, 1);
  r->inputs[1].second = Tensor(DType::kInt64, {2, 1});
  EXPECT_EQ(message(r), "input 'idx' has batch 2, another input has 1");
  r = gather_request(1, 0, 1);
  r->outputs = {{"z", false}};
  EXPECT_EQ(message(r), "model 'gather' has no output 'z' (its outputs: y)");
}

}  // namespace
}  // namespace kiln::serve
