// Weights outside ONNX (include/kiln/weights.h): checkpoints written by
// PyTorch itself (tests/weights_make_checkpoints.py: every dtype, strided
// views, shared storages, nested dicts, resnet18, a big-endian copy, a
// safetensors and a .wts file) read back bit-exact; pickles crafted by hand
// that name any global outside the allowed set are refused before anything
// runs; truncated, corrupted and inconsistent files fail with a kiln::Error
// saying what is wrong.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/file.h"
#include "core/half.h"
#include "error_of.h"
#include "kiln/error.h"
#include "kiln/weights.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::string_literals;  // pickles hold NUL bytes

std::span<const uint8_t> as_bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// The kiln::Error that loading `bytes` gives; "" when it loads. Any other
// exception fails the test.
std::string load_error(const std::string& bytes, const std::string& label = "test.pt") {
  return error_of([&] { load_weights_bytes(as_bytes(bytes), label); });
}

void expect_error(const std::string& bytes, const std::string& words, const std::string& what) {
  std::string msg = load_error(bytes);
  EXPECT_FALSE(msg.empty()) << what << ": loaded";
  EXPECT_NE(msg.find(words), std::string::npos) << what << ": '" << msg << "' does not say '" << words << "'";
}

// --- Files written by PyTorch -------------------------------------------

// Runs the generator once into the build folder (again when the script is
// newer than its output); the folder is renamed into place when complete, so
// tests running in parallel never see half of it.
fs::path checkpoint_dir() {
  fs::path script = fs::path(KILN_SOURCE_DIR) / "tests/weights_make_checkpoints.py";
  fs::path dir = fs::path(KILN_BINARY_DIR) / "weights_test_data";
  fs::path done = dir / "expected.json";
  if (fs::exists(done) && fs::last_write_time(done) >= fs::last_write_time(script)) return dir;
  fs::path tmp = dir.string() + ".tmp" + std::to_string(getpid());
  std::string cmd = "/usr/bin/python3 '" + script.string() + "' '" + tmp.string() + "' 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    fs::remove_all(tmp);
    return {};
  }
  std::error_code ec;
  if (fs::exists(dir) && !(fs::exists(done) && fs::last_write_time(done) >= fs::last_write_time(script)))
    fs::remove_all(dir, ec);
  fs::rename(tmp, dir, ec);
  if (ec) fs::remove_all(tmp);  // another test process got there first
  return dir;
}

bool have_torch() {
  static bool ok = std::system("/usr/bin/python3 -c 'import torch, torchvision' >/dev/null 2>&1") == 0;
  return ok;
}

class TorchFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_torch()) GTEST_SKIP() << "/usr/bin/python3 has no torch and torchvision (python3-torch)";
    dir_ = checkpoint_dir();
    ASSERT_FALSE(dir_.empty()) << "tests/weights_make_checkpoints.py failed";
    expected_ = json::parse(read_file((dir_ / "expected.json").string()));
    blob_ = read_file((dir_ / "expected.bin").string());
  }
  // Every tensor of `file` has PyTorch's name, dtype, shape and bytes.
  void check_file(const std::string& file) {
    SCOPED_TRACE(file);
    WeightMap m = load_weights((dir_ / file).string());
    const json& want = expected_.at(file);
    ASSERT_EQ(m.tensors.size(), want["tensors"].size());
    for (size_t k = 0; k < m.tensors.size(); ++k) {
      const NamedTensor& got = m.tensors[k];
      const json& w = want["tensors"][k];
      SCOPED_TRACE(got.name);
      EXPECT_EQ(got.name, w["name"].get<std::string>());
      EXPECT_EQ(dtype_numpy_name(got.tensor.dtype()), w["dtype"].get<std::string>());
      EXPECT_EQ(got.tensor.shape(), w["shape"].get<Shape>());
      size_t offset = w["offset"], nbytes = w["nbytes"];
      ASSERT_EQ(got.tensor.nbytes(), nbytes);
      EXPECT_EQ(std::memcmp(got.tensor.raw(), blob_.data() + offset, nbytes), 0) << "values differ";
    }
    ASSERT_EQ(m.values.size(), want["values"].size());
    for (size_t k = 0; k < m.values.size(); ++k) {
      EXPECT_EQ(m.values[k].name, want["values"][k]["name"].get<std::string>());
      EXPECT_EQ(m.values[k].type, want["values"][k]["type"].get<std::string>());
    }
  }
  fs::path dir_;
  json expected_;
  std::string blob_;
};

TEST_F(TorchFiles, EveryDtypeReadsBackExactly) {
  check_file("dtypes.pt");
  WeightMap m = load_weights((dir_ / "dtypes.pt").string());
  EXPECT_EQ(m.format, WeightsFormat::kTorchZip);
  EXPECT_EQ(m.find("f_bfloat16")->dtype(), DType::kBFloat16);
  EXPECT_EQ(m.find("scalar")->rank(), 0);
}

TEST_F(TorchFiles, StridedViewsAndSharedStoragesReadBackExactly) {
  check_file("views.pt");
  WeightMap m = load_weights((dir_ / "views.pt").string());
  // One tensor saved under two names stays one buffer.
  EXPECT_EQ(m.find("tied_1")->raw(), m.find("tied_2")->raw());
  const Tensor& t = *m.find("transposed");
  ASSERT_EQ(t.shape(), (Shape{6, 4}));
  EXPECT_EQ(t.data<float>()[1], 6.0f);  // base[1][0]
}

TEST_F(TorchFiles, BigEndianStoragesAreSwapped) { check_file("bigendian.pt"); }

TEST_F(TorchFiles, NestedDictsFlattenWithDots) {
  check_file("nested.pt");
  WeightMap m = load_weights((dir_ / "nested.pt").string());
  std::map<std::string, std::string> values;
  for (const WeightValue& v : m.values) values[v.name] = v.value;
  EXPECT_EQ(values["epoch"], "7");
  EXPECT_EQ(values["name"], "'run-1'");
  EXPECT_EQ(values["lr"], "0.01");
  EXPECT_EQ(values["best"], "None");
  EXPECT_EQ(values["shape"], "(1, 2)");
  EXPECT_EQ(values["optimizer.param_groups.0.params"], "[0, 1, 2, 3, 4, 5]");
  EXPECT_NE(m.find("optimizer.state.0.momentum_buffer"), nullptr);
}

TEST_F(TorchFiles, BareTensorAndPickleProtocol4) {
  check_file("bare.pt");
  check_file("protocol4.pt");
}

TEST_F(TorchFiles, Resnet18StateDict) {
  check_file("resnet18.pt");
  WeightMap m = load_weights((dir_ / "resnet18.pt").string());
  EXPECT_EQ(m.find("conv1.weight")->shape(), (Shape{64, 3, 7, 7}));
  EXPECT_EQ(m.find("fc.weight")->shape(), (Shape{1000, 512}));
}

TEST_F(TorchFiles, SafetensorsAndWts) {
  check_file("weights.safetensors");
  check_file("weights.wts");
  WeightMap st = load_weights((dir_ / "weights.safetensors").string());
  EXPECT_EQ(st.format, WeightsFormat::kSafetensors);
  ASSERT_EQ(st.values.size(), 1u);
  EXPECT_EQ(st.values[0].value, "pt");
  EXPECT_EQ(load_weights((dir_ / "weights.wts").string()).format, WeightsFormat::kWts);
}

// Cutting a real checkpoint anywhere, or flipping any one of its bytes,
// either still loads or fails with a kiln::Error (never a crash).
TEST_F(TorchFiles, TruncatedOrCorruptedCheckpointsFailCleanly) {
  for (const char* file : {"views.pt", "weights.safetensors", "weights.wts"}) {
    std::string bytes = read_file((dir_ / file).string());
    // (Up to the last byte but one: a .wts file without its final newline is complete.)
    for (size_t n = 0; n + 1 < bytes.size(); ++n)
      EXPECT_NE(load_error(bytes.substr(0, n)), "") << file << " cut at " << n;
    for (size_t k = 0; k < bytes.size(); ++k) {
      std::string bad = bytes;
      bad[k] = static_cast<char>(bad[k] ^ 0xff);
      load_error(bad);
    }
  }
}

TEST_F(TorchFiles, ErrorsNameTheFile) {
  std::string path = (dir_ / "cut.pt").string();
  write_file(path, read_file((dir_ / "dtypes.pt").string()).substr(0, 1000));
  try {
    load_weights(path);
    FAIL() << "a truncated file loaded";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ": ", 0), 0u) << e.what();
  }
}

// --- Crafted files ------------------------------------------------------

std::string le(uint64_t v, int n) {
  std::string s;
  for (int k = 0; k < n; ++k) s += static_cast<char>((v >> (8 * k)) & 0xff);
  return s;
}

// A zip of stored entries, as torch.save writes (CRCs left 0: kiln does not
// check them); with zip64, every size and offset is in the zip64 records, as
// torch writes them for files over 4 GB.
std::string make_zip(const std::vector<std::pair<std::string, std::string>>& entries, uint16_t method = 0,
                     bool zip64 = false) {
  uint64_t big = zip64 ? 0xffffffff : 0;
  std::string out, dir;
  for (const auto& [name, data] : entries) {
    uint64_t offset = out.size();
    out += le(0x04034b50, 4) + le(20, 2) + le(0, 2) + le(method, 2) + le(0, 4) + le(0, 4) + le(data.size(), 4) +
           le(data.size(), 4) + le(name.size(), 2) + le(0, 2) + name + data;
    std::string extra = zip64 ? le(1, 2) + le(24, 2) + le(data.size(), 8) + le(data.size(), 8) + le(offset, 8) : "";
    dir += le(0x02014b50, 4) + le(45, 2) + le(45, 2) + le(0, 2) + le(method, 2) + le(0, 4) + le(0, 4) +
           le(big | data.size(), 4) + le(big | data.size(), 4) + le(name.size(), 2) + le(extra.size(), 2) + le(0, 2) +
           le(0, 2) + le(0, 2) + le(0, 4) + le(big | offset, 4) + name + extra;
  }
  uint64_t dir_offset = out.size();
  out += dir;
  if (zip64) {
    uint64_t record = out.size();
    out += le(0x06064b50, 4) + le(44, 8) + le(45, 2) + le(45, 2) + le(0, 4) + le(0, 4) + le(entries.size(), 8) +
           le(entries.size(), 8) + le(dir.size(), 8) + le(dir_offset, 8);
    out += le(0x07064b50, 4) + le(0, 4) + le(record, 8) + le(1, 4);
  }
  uint64_t count = zip64 ? 0xffff : entries.size();
  out += le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(count, 2) + le(count, 2) + le(big | dir.size(), 4) +
         le(big | dir_offset, 4) + le(0, 2);
  return out;
}

std::string checkpoint(const std::string& pickle, std::vector<std::pair<std::string, std::string>> storages = {}) {
  storages.insert(storages.begin(), {"archive/data.pkl", pickle});
  return make_zip(storages);
}

// Pickle pieces, protocol 2.
std::string str(const std::string& s) { return "X" + le(s.size(), 4) + s; }
std::string integer(int64_t v) { return "\x8a\x08" + le(static_cast<uint64_t>(v), 8); }
std::string ints(const std::vector<int64_t>& v) {
  std::string s = "(";
  for (int64_t x : v) s += integer(x);
  return s + "t";
}
// {name: tensor} with the tensor a view of storage `key` ('FloatStorage' of `numel`).
std::string tensor_pickle(const std::string& key, int64_t numel, int64_t offset, const std::vector<int64_t>& shape,
                          const std::vector<int64_t>& stride, const std::string& storage = "FloatStorage") {
  return "\x80\x02}(" + str("w") + "ctorch._utils\n_rebuild_tensor_v2\n((" + str("storage") + "ctorch\n" + storage +
         "\n" + str(key) + str("cpu") + integer(numel) + "tQ" + integer(offset) + ints(shape) + ints(stride) +
         "\x89}tRu.";
}
std::string floats(int n) {
  std::string s;
  for (int k = 0; k < n; ++k) {
    float f = static_cast<float>(k);
    s.append(reinterpret_cast<const char*>(&f), 4);
  }
  return s;
}

TEST(Weights, CraftedCheckpointLoads) {
  std::string ok = checkpoint(tensor_pickle("0", 6, 1, {2, 2}, {1, 2}), {{"archive/data/0", floats(6)}});
  std::string ok64 = make_zip(
      {{"archive/data.pkl", tensor_pickle("0", 6, 1, {2, 2}, {1, 2})}, {"archive/data/0", floats(6)}}, 0, true);
  for (const std::string& bytes : {ok, ok64}) {
    WeightMap m = load_weights_bytes(as_bytes(bytes));
    ASSERT_EQ(m.tensors.size(), 1u);
    const float* v = m.tensors[0].tensor.data<float>();
    EXPECT_EQ(std::vector<float>(v, v + 4), (std::vector<float>{1, 3, 2, 4}));  // storage[1 + i + 2j]
  }
  std::string bad64 = ok64;
  bad64[bad64.size() - 22 - 20 - 56] = 'X';  // the zip64 end record's signature
  expect_error(bad64, "bad zip64 end record", "zip64 record");
}

// The reason torch.load(weights_only=True) exists: a pickle can import and
// call anything. Every global outside the allowed set is refused where it
// appears, by GLOBAL or STACK_GLOBAL.
TEST(Weights, GlobalsOutsideTheAllowedSetAreRefused) {
  const std::vector<std::pair<std::string, std::string>> globals = {{"posix", "system"},
                                                                    {"os", "system"},
                                                                    {"builtins", "eval"},
                                                                    {"__builtin__", "getattr"},
                                                                    {"subprocess", "Popen"},
                                                                    {"torch._utils", "_rebuild_tensor"},
                                                                    {"torch.storage", "_load_from_bytes"},
                                                                    {"numpy.core.multiarray", "scalar"},
                                                                    {"torch", "load"},
                                                                    {"collections", "OrderedDictX"}};
  for (const auto& [module, name] : globals) {
    std::string call = str("echo pwned") + "\x85R.";
    std::string full = "'" + module + "." + name + "'";
    std::string by_global =
        "\x80\x02"
        "c" +
        module + "\n" + name + "\n" + call;
    expect_error(
        checkpoint(by_global),
        "test.pt: archive/data.pkl: refusing global " + full +
            " at byte 2: only tensors and dicts of tensors can be loaded (kiln never runs code from a checkpoint)",
        full);
    std::string by_stack =
        "\x80\x04\x8c" + le(module.size(), 1) + module + "\x8c" + le(name.size(), 1) + name + "\x93" + call;
    expect_error(checkpoint(by_stack), "refusing global " + full, full + " by STACK_GLOBAL");
  }
  // Allowed names cannot be turned into calls of something else.
  expect_error(checkpoint("\x80\x02" + str("os.system") + str("ls") + "\x85R."), "REDUCE calls a str", "str call");
  expect_error(checkpoint("\x80\x02"
                          "ctorch\nFloatStorage\n)R."),
               "not callable", "storage call");
  expect_error(checkpoint("\x80\x02"
                          "ccollections\nOrderedDict\n)\x81\x8c\x01x}b."),
               "BUILD", "BUILD on a global");
  expect_error(checkpoint("\x80\x02(" + str("storage") + "cposix\nsystem\n" + str("0") + str("cpu") + "K\x01tQ."),
               "refusing global 'posix.system'", "global inside a persistent id");
  // A TorchScript archive gets a hint.
  expect_error(checkpoint("\x80\x02"
                          "c__torch__.Net\nNet\n)\x81."),
               "TorchScript", "TorchScript");
}

TEST(Weights, BadPicklesAreRefused) {
  expect_error(checkpoint("\x80\x02}"), "without STOP", "no STOP");
  expect_error(checkpoint("\x80\x02X\xff\xff\xff\x7f"
                          "abc."),
               "truncated", "long string");
  expect_error(checkpoint("\x80\x02h\x05."), "memo entry 5", "memo");
  expect_error(checkpoint("\x80\x02."), "stack underflow", "empty stack");
  expect_error(checkpoint("\x80\x02t."), "no MARK", "no mark");
  expect_error(checkpoint("\x80\x02I1\n."), "unsupported pickle opcode", "protocol 0 INT");
  expect_error(checkpoint("\x80\x09."), "pickle protocol 9", "protocol");
  expect_error(checkpoint("\x80\x02}q\x00h\x00h\x00s."s), "a dict key that is a dict", "dict key");
  // A dict that contains itself: bounded, no hang and no leak.
  expect_error(checkpoint("\x80\x02}q\x00"s + str("a") + "h\x00s."s), "nested deeper than 64", "cycle");
}

TEST(Weights, BadStoragesAndViewsAreRefused) {
  std::string data = floats(6);
  expect_error(checkpoint(tensor_pickle("9", 6, 0, {6}, {1}), {{"archive/data/0", data}}),
               "storage 'data/9' is missing", "missing storage");
  expect_error(checkpoint(tensor_pickle("0", 8, 0, {6}, {1}), {{"archive/data/0", data}}),
               "holds 24 bytes, but the pickle declares 8 elements", "storage size");
  expect_error(checkpoint(tensor_pickle("0", 6, 2, {5}, {1}), {{"archive/data/0", data}}),
               "reaches element 6 of a storage of 6", "view past the end");
  expect_error(checkpoint(tensor_pickle("0", 6, 0, {3, 2}, {2, 3}), {{"archive/data/0", data}}), "reaches element 7",
               "strides past the end");
  expect_error(checkpoint(tensor_pickle("0", 6, 5, {2}, {-1}), {{"archive/data/0", data}}), "negative stride",
               "negative stride");
  expect_error(checkpoint(tensor_pickle("0", 6, -1, {2}, {1}), {{"archive/data/0", data}}), "negative storage offset",
               "negative offset");
  expect_error(checkpoint(tensor_pickle("0", 6, 0, {-2}, {1}), {{"archive/data/0", data}}), "negative size",
               "negative size");
  expect_error(checkpoint(tensor_pickle("0", 6, 0, {1 << 20, 1 << 20}, {0, 0}), {{"archive/data/0", data}}),
               "expanded views this large are refused", "huge expand");
  expect_error(checkpoint(tensor_pickle("0", 6, 0, {INT64_MAX / 2, 4}, {0, 0}), {{"archive/data/0", data}}),
               "overflows", "numel overflow");
  expect_error(checkpoint(tensor_pickle("0", 6, 0, {6}, {1}, "QUInt8Storage"), {{"archive/data/0", data}}),
               "refusing global 'torch.QUInt8Storage'", "storage type");
}

TEST(Weights, BadZipArchivesAreRefused) {
  std::string ok = checkpoint(tensor_pickle("0", 6, 0, {6}, {1}), {{"archive/data/0", floats(6)}});
  ASSERT_EQ(load_error(ok), "");
  expect_error(ok.substr(0, ok.size() - 1), "no end of central directory", "truncated");
  std::string bad_dir = ok;
  bad_dir[bad_dir.size() - 6] = '\x7f';  // central directory offset
  expect_error(bad_dir, "central directory", "directory offset");
  std::string bad_count = ok;
  bad_count[bad_count.size() - 12] = '\x70';  // entry count
  expect_error(bad_count, "cannot hold", "entry count");
  expect_error(make_zip({{"archive/data.pkl", "x"}}, 8), "compressed (method 8)", "deflate");
  expect_error(make_zip({{"archive/version", "3"}}), "without <folder>/data.pkl", "no pickle");
  expect_error(make_zip({{"a/data.pkl", "."}, {"b/data.pkl", "."}}), "two pickles", "two pickles");
  expect_error(make_zip({{"a/data.pkl", "."}, {"a/data.pkl", "."}}), "appears twice", "duplicate entry");
  expect_error(make_zip({{"a/data.pkl", "\x80\x02N."}, {"a/byteorder", "middle"}}), "'little' or 'big'", "byteorder");
}

TEST(Weights, BadSafetensorsAndWtsAreRefused) {
  auto st = [](const std::string& header, const std::string& data) { return le(header.size(), 8) + header + data; };
  std::string data = floats(6);
  ASSERT_EQ(load_error(st(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})", data)), "");
  expect_error(st(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,28]}})", data), "lie outside the data",
               "offsets");
  expect_error(st(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,24]}})", data), "24 bytes of data for 2x2",
               "size");
  expect_error(st(R"({"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", data), "unsupported dtype", "dtype");
  expect_error(st(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data), "not a non-negative", "dim");
  expect_error(st(R"({"w":{"dtype":"F32", "shape":[2]})", data), "not valid JSON", "json");
  expect_error(st(R"({"w":[1]})", data), "expected an object", "entry");
  expect_error(le(1000, 8) + "{}", "not a PyTorch checkpoint", "header past the end");

  ASSERT_EQ(load_error("2\na 2 3f800000 40000000\nb 1 00000000\n"), "");
  expect_error("3\na 1 3f800000\n", "ends after 1 of 3", "count");
  expect_error("1\na 2 3f800000 zz\n", "value 1 is 'zz'", "hex");
  expect_error("1\na 2 3f800000\n", "value 1 is ''", "truncated");
  expect_error("1\na 1 3f800000 12\n", "more data after", "extra");
  expect_error("1\na 1 3f80000\n", "value 0 is '3f80000'", "7 digits");
  expect_error("1\na 99999999999 0\n", "bad value count", "huge count");
  expect_error("99999999\na 1 0\n", "do not fit", "huge tensor count");
  expect_error("2\na 1 00000000\na 1 00000000\n", "appears twice", "duplicate");
}

TEST(Weights, UnknownFormatsAreRefused) {
  expect_error("", "not a PyTorch checkpoint (zip), safetensors or .wts file (starts with an empty file)", "empty");
  expect_error("hello world", "not a PyTorch checkpoint", "text");
  expect_error("\x80\x02\x8a\x0a", "before PyTorch 1.6", "legacy");
  EXPECT_THROW(load_weights("/nonexistent/weights.pt"), Error);
}

TEST(Weights, ToFloat32) {
  Tensor bf(DType::kBFloat16, {2});
  bf.data<uint16_t>()[0] = float_to_bf16_bits(1.5f);
  bf.data<uint16_t>()[1] = float_to_bf16_bits(-2.0f);
  Tensor f = weights_to_float32(bf);
  EXPECT_EQ(f.dtype(), DType::kFloat32);
  EXPECT_EQ(f.data<float>()[0], 1.5f);
  EXPECT_EQ(f.data<float>()[1], -2.0f);
  Tensor i(DType::kInt64, {1});
  i.data<int64_t>()[0] = -3;
  EXPECT_EQ(weights_to_float32(i).data<float>()[0], -3.0f);
  EXPECT_THROW(weights_to_float32(Tensor(DType::kBool, {1})), Error);
}

}  // namespace
}  // namespace kiln
