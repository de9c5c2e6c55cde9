// Bad engine files (src/engine/): corrupting any single byte, truncating at
// any length, another format version, and files crafted to pass the
// checksums (sections, metadata, memory plans, graph edited, both checksums
// recomputed) all fail to load, or to run, with a kiln::Error that says what
// is wrong. None crashes, loads by accident or asks for a giant allocation
// (the sanitizer build checks the last).
#include <gtest/gtest.h>
#include <oneapi/dnnl/dnnl_types.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>

#include "core/file.h"
#include "core/settings.h"
#include "engine_bytes.h"
#include "kernels/cpu/winograd_f32.h"
#include "kiln/error.h"
#include "kiln/session.h"
#include "model_builder.h"

namespace kiln {
namespace {

using nlohmann::json;
using namespace kiln::test;

// The kiln::Error that loading `bytes` gives or, with run, loading and then
// running once on the engine's static input; "" when that succeeds. Any other
// exception fails the test.
std::string load_error(const std::string& bytes, bool run = false) {
  try {
    Session s = Session::load_bytes(bytes.data(), bytes.size());
    if (run) s.run({{"x", Tensor(DType::kFloat32, {2, 16, 16, 16})}});
    return "";
  } catch (const Error& e) {
    const std::string msg = e.what();
    return msg.empty() ? "(empty message)" : msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "an exception that is not a kiln::Error: " << e.what();
    return e.what();
  }
}

bool says_any(const std::string& msg, std::initializer_list<const char*> words) {
  for (const char* w : words)
    if (msg.find(w) != std::string::npos) return true;
  return false;
}

// Expects loading (and running, with run) to fail with a message holding `word`.
void expect_refused(const std::string& bytes, const std::string& word, const std::string& what, bool run = false) {
  const std::string msg = load_error(bytes, run);
  EXPECT_FALSE(msg.empty()) << what << ": loaded" << (run ? " and ran" : "");
  EXPECT_NE(msg.find(word), std::string::npos) << what << ": '" << msg << "' does not say '" << word << "'";
}

class EngineFileTest : public ::testing::Test {
 protected:
  // One static engine (x float[2, 16, 16, 16]) of the residual conv model for
  // all the tests.
  static void SetUpTestSuite() {
    dir_ = new std::filesystem::path(std::filesystem::temp_directory_path() /
                                     ("kiln_engine_file_test_" + std::to_string(getpid())));
    std::filesystem::create_directories(*dir_);
    const std::string model = (*dir_ / "model.onnx").string(), engine = (*dir_ / "model.kiln").string();
    write_file(model, bytes_of(residual_conv_model()));
    BuildOptions o;
    o.session.input_shapes["x"] = {2, 16, 16, 16};
    build_engine(model, engine, o);
    engine_ = new std::string(read_file(engine));
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
    delete engine_;
  }

  static std::string path(const std::string& name) { return (*dir_ / name).string(); }
  static const std::string& engine() { return *engine_; }

  static std::vector<EngineSection> sections() {
    std::vector<EngineSection> s;
    EXPECT_TRUE(engine_sections(engine(), &s));
    return s;
  }
  static std::string section(uint32_t kind) {
    for (const EngineSection& s : sections())
      if (s.kind == kind) return s.bytes;
    ADD_FAILURE() << "no section of kind " << kind;
    return "";
  }
  // The engine with one section replaced, laid out again, checksums valid.
  static std::string with_section(uint32_t kind, const std::string& bytes) {
    std::vector<EngineSection> s = sections();
    for (EngineSection& e : s)
      if (e.kind == kind) e.bytes = bytes;
    return pack_engine(s);
  }
  static json meta() { return json::parse(section(kMetaSection)); }
  static std::string with_meta(const json& m) { return with_section(kMetaSection, m.dump()); }
  static std::pair<size_t, size_t> section_range(size_t index) {
    const size_t entry = kEngineHeaderBytes + index * kEngineEntryBytes;
    return {get_le<uint64_t>(engine(), entry + 8), get_le<uint64_t>(engine(), entry + 16)};
  }

  static std::filesystem::path* dir_;
  static std::string* engine_;
};

std::filesystem::path* EngineFileTest::dir_ = nullptr;
std::string* EngineFileTest::engine_ = nullptr;

TEST_F(EngineFileTest, TheHelpersRepackTheFileAsKilnWritesIt) {
  EXPECT_EQ(pack_engine(sections()), engine());
  EXPECT_EQ(load_error(engine(), /*run=*/true), "");
  ASSERT_EQ(sections().size(), 3u);
}

TEST_F(EngineFileTest, EverySingleByteCorruptionIsAnError) {
  const std::string& good = engine();
  std::vector<size_t> offsets;
  const size_t table_end = kEngineHeaderBytes + sections().size() * kEngineEntryBytes;
  for (size_t i = 0; i < table_end; ++i) offsets.push_back(i);
  size_t previous_end = table_end;
  for (size_t s = 0; s < sections().size(); ++s) {
    const auto [at, bytes] = section_range(s);
    // A hundred bytes of the padding before the section.
    for (size_t k = 0; k < 100 && at > previous_end; ++k)
      offsets.push_back(previous_end + k * (at - previous_end) / 100);
    const bool all = get_le<uint32_t>(good, kEngineHeaderBytes + s * kEngineEntryBytes) != kWeightsSection;
    if (all) {
      for (size_t i = 0; i < bytes; ++i) offsets.push_back(at + i);
    } else {  // the weights: 300 bytes spread over them, and their last
      for (size_t k = 0; k < 300; ++k) offsets.push_back(at + k * bytes / 300);
      offsets.push_back(at + bytes - 1);
    }
    previous_end = at + bytes;
  }
  std::vector<std::string> failures;
  for (size_t at : offsets) {
    for (int change = 0; change < 2; ++change) {
      std::string bad = good;
      bad[at] = change == 0 ? static_cast<char>(bad[at] ^ 0xFF) : static_cast<char>(bad[at] + 1);
      const std::string msg = load_error(bad);
      // Without the whole magic the bytes are taken for an ONNX model.
      const bool ok = at < 8 ? says_any(msg, {"not a valid ONNX model", "not an ONNX model"})
                             : says_any(msg, {"corrupted engine", "checksum", "engine format version"});
      if (!ok && failures.size() < 20)
        failures.push_back("byte " + std::to_string(at) + (change == 0 ? " ^ 0xFF" : " + 1") + ": " +
                           (msg.empty() ? "loaded" : msg));
    }
  }
  EXPECT_GT(offsets.size(), 1000u);
  for (const std::string& f : failures) ADD_FAILURE() << f;
}

TEST_F(EngineFileTest, EveryTruncationIsAnError) {
  const std::string& good = engine();
  std::vector<size_t> lengths;
  for (size_t n = 0; n <= kEngineHeaderBytes + sections().size() * kEngineEntryBytes; ++n) lengths.push_back(n);
  for (size_t n = lengths.back() + 64; n < good.size(); n += 64) lengths.push_back(n);
  lengths.push_back(good.size() - 1);
  for (size_t n : lengths) {
    const std::string msg = load_error(good.substr(0, n));
    if (n < 8)  // not even the magic: taken for an ONNX model
      EXPECT_TRUE(says_any(msg, {"not a valid ONNX model", "not an ONNX model"})) << n << " bytes: " << msg;
    else
      EXPECT_NE(msg.find("truncated engine"), std::string::npos) << n << " bytes: " << msg;
  }
}

TEST_F(EngineFileTest, AnotherFormatVersionIsNamed) {
  for (uint32_t version : {0u, 2u, 0xFFFFFFFFu}) {
    std::string bad = engine();
    put_le<uint32_t>(bad, kEngineVersionAt, version);
    fix_engine_checksums(bad);  // so that only the version check can refuse it
    const std::string msg = load_error(bad);
    EXPECT_NE(msg.find("engine format version " + std::to_string(version)), std::string::npos) << msg;
    EXPECT_NE(msg.find("reads version 1"), std::string::npos) << msg;
  }
}

TEST_F(EngineFileTest, CraftedSectionTablesAreRefused) {
  const std::vector<EngineSection> good = sections();
  auto edited = [&](size_t entry, size_t field, uint64_t value) {
    std::string f = engine();
    put_le<uint64_t>(f, kEngineHeaderBytes + entry * kEngineEntryBytes + field, value);
    fix_engine_checksums(f);
    return f;
  };
  const uint64_t size = engine().size();
  expect_refused(edited(0, 8, size + kEnginePage), "lies outside the file", "offset past the end");
  expect_refused(edited(0, 8, section_range(0).first + 8), "lies outside the file", "offset off a page");
  expect_refused(edited(0, 16, UINT64_MAX), "lies outside the file", "size of 2^64 - 1");
  expect_refused(edited(1, 16, size), "lies outside the file", "size of the whole file");
  expect_refused(edited(0, 8, 0), "overlaps the header", "offset 0");
  std::string count = engine();
  put_le<uint32_t>(count, kEngineCountAt, 0xFFFFFFFF);
  fix_engine_checksums(count);
  expect_refused(count, "section table of 4294967295 entries", "a huge section count");
  std::string header_size = engine();
  put_le<uint32_t>(header_size, kEngineHeaderSizeAt, 128);
  fix_engine_checksums(header_size);
  expect_refused(header_size, "header size 128", "another header size");
  std::string longer = engine();
  put_le<uint64_t>(longer, kEngineFileBytesAt, size + 1);
  fix_engine_checksums(longer);
  expect_refused(longer, "truncated engine", "a file size beyond the end");
  std::string shorter = engine() + std::string(64, '\0');
  fix_engine_checksums(shorter);
  expect_refused(shorter, "trailing data", "bytes after the end");

  std::vector<EngineSection> twice = good;
  twice.push_back(good[0]);
  expect_refused(pack_engine(twice), "two ", "a duplicate section");
  for (uint32_t kind : {kMetaSection, kGraphSection, kWeightsSection}) {
    std::vector<EngineSection> missing;
    for (const EngineSection& s : good)
      if (s.kind != kind) missing.push_back(s);
    expect_refused(pack_engine(missing), "corrupted engine: no ", "a missing section " + std::to_string(kind));
  }
  expect_refused(pack_engine({}), "corrupted engine: no ", "no sections");
}

TEST_F(EngineFileTest, MetadataThatIsNotWhatKilnWritesIsRefused) {
  expect_refused(with_section(kMetaSection, "not json"), "not a JSON object", "not JSON");
  expect_refused(with_section(kMetaSection, ""), "not a JSON object", "empty");
  expect_refused(with_section(kMetaSection, "[1, 2, 3]"), "not a JSON object", "an array");
  expect_refused(with_section(kMetaSection, std::string(100000, '[') + std::string(100000, ']')), "nested",
                 "nested 100000 deep");
  expect_refused(with_section(kMetaSection, "{}"), "corrupted engine metadata", "an empty object");
  const json good = meta();
  auto patched = [&](const std::string& pointer, const json& value) {
    json m = good;
    m[json::json_pointer(pointer)] = value;
    return with_meta(m);
  };
  expect_refused(patched("/isa", 5), "corrupted engine metadata", "isa a number");
  expect_refused(patched("/isa", "avx9000"), "unknown instruction set 'avx9000'", "unknown isa");
  expect_refused(patched("/packed", "x"), "corrupted engine metadata", "packed a string");
  expect_refused(patched("/profiles", 7), "corrupted engine metadata", "profiles a number");
  expect_refused(patched("/profiles/0/inputs", json::object()), "at least one input", "a profile without inputs");
  expect_refused(patched("/profiles/0/inputs/nope", good["profiles"][0]["inputs"]["x"]), "'nope'",
                 "a profile of an unknown input");
  expect_refused(patched("/profiles/0/inputs/x/min", json::array({4, 16, 16, 16})), "dim 0", "min > max");
  expect_refused(patched("/profiles/0/inputs/x/max", json(std::vector<int>(17, 1))), "rank", "rank 17");
  expect_refused(patched("/profiles/0/inputs/x/max/0", "2"), "corrupted engine metadata", "a dim as a string");
  expect_refused(patched("/profiles/0/inputs/x/max/0", 2.5), "fractional", "a fractional dim");
  expect_refused(patched("/profiles/0/inputs/x/max/0", 1e300), "fractional", "a dim of 1e300");
  json no_plan = good;
  no_plan["profiles"][0].erase("memory_plan");
  expect_refused(with_meta(no_plan), "corrupted engine metadata", "no memory plan");
}

TEST_F(EngineFileTest, PackedWeightsOutsideTheirBoundsAreRefused) {
  const json good = meta();
  ASSERT_FALSE(good["packed"].empty()) << "the model's convs pack their weights";
  auto patched = [&](const std::string& pointer, const json& value) {
    json m = good;
    m[json::json_pointer(pointer)] = value;
    return with_meta(m);
  };
  const int64_t weights = static_cast<int64_t>(section(kWeightsSection).size());
  const json& blob = good["packed"][0]["blobs"][0];
  const int64_t bytes = blob["bytes"].get<int64_t>();
  expect_refused(patched("/packed/0/node", 999999), "node 999999", "node 999999");
  expect_refused(patched("/packed/0/node", -1), "the graph has", "node -1");
  expect_refused(patched("/packed/0/node", "0"), "corrupted engine metadata", "node a string");
  expect_refused(patched("/packed/0/op", "Relu"), "recorded for a Relu", "another op");
  expect_refused(patched("/packed/0/kernel", "nope"), "unknown kernel 'nope'", "an unknown kernel");
  expect_refused(patched("/packed/0/blobs/0/offset", weights + 64), "outside the weights section", "past the end");
  expect_refused(patched("/packed/0/blobs/0/offset", -64), "outside the weights section", "a negative offset");
  expect_refused(patched("/packed/0/blobs/0/offset", INT64_MAX), "outside the weights section", "offset 2^63 - 1");
  expect_refused(patched("/packed/0/blobs/0/bytes", int64_t{1} << 40), "outside the weights section", "1 TB");
  expect_refused(patched("/packed/0/blobs/0/offset", blob["offset"].get<int64_t>() + 4), "aligned", "misaligned");
  expect_refused(patched("/packed/0/blobs/0/dtype", 999), "element type", "an unknown element type");
  expect_refused(patched("/packed/0/blobs/0/dtype", static_cast<int>(DType::kString)), "element type", "strings");
  expect_refused(patched("/packed/0/blobs/0/shape", json(std::vector<int>(17, 1))), "rank 17", "rank 17");
  expect_refused(patched("/packed/0/blobs/0/shape", json::array({-1})), "negative", "a negative dim");
  // 2^61 + bytes / 8 doubles: their byte count wraps around to `bytes`.
  ASSERT_EQ(bytes % 8, 0);
  json wraps = good;
  wraps["packed"][0]["blobs"][0]["dtype"] = static_cast<int>(DType::kFloat64);
  wraps["packed"][0]["blobs"][0]["shape"] = json::array({(int64_t{1} << 61) + bytes / 8});
  expect_refused(with_meta(wraps), "bytes of data for", "a shape whose byte count wraps around");
}

// oneDNN's layout of the 1x1 conv's weights, which the engine stores as a raw
// dnnl_memory_desc_t: every field oneDNN would trust is checked.
TEST_F(EngineFileTest, CraftedOneDnnLayoutsAreRefused) {
  const json good = meta();
  const json* layout = nullptr;
  for (const json& p : good["packed"])
    for (const json& b : p["blobs"])
      if (p["kernel"] == "onednn" && b["key"] == "layout") layout = &b;
  ASSERT_NE(layout, nullptr) << "the 1x1 conv packs for oneDNN";
  const size_t at = layout->at("offset").get<size_t>();
  dnnl_memory_desc_t desc;
  ASSERT_EQ(layout->at("bytes").get<size_t>(), sizeof desc);
  const std::string weights = section(kWeightsSection);
  std::memcpy(&desc, weights.data() + at, sizeof desc);
  ASSERT_EQ(desc.format_kind, dnnl_blocked);
  auto with_desc = [&](const std::function<void(dnnl_memory_desc_t&)>& edit) {
    dnnl_memory_desc_t d = desc;
    edit(d);
    std::string w = weights;
    std::memcpy(w.data() + at, &d, sizeof d);
    return with_section(kWeightsSection, w);
  };
  const auto& b = desc.format_desc.blocking;
  bool blocks_outside = false;  // some dim has more than one block: its stride matters
  for (int i = 0; i < desc.ndims; ++i) {
    int64_t block = 1;
    for (int k = 0; k < b.inner_nblks; ++k)
      if (b.inner_idxs[k] == i) block *= b.inner_blks[k];
    blocks_outside = blocks_outside || desc.padded_dims[i] / block > 1;
  }
  if (blocks_outside)
    expect_refused(with_desc([](auto& d) {
                     for (int i = 0; i < d.ndims; ++i) d.format_desc.blocking.strides[i] = int64_t{1} << 40;
                   }),
                   "invalid layout", "huge strides");
  expect_refused(with_desc([](auto& d) { d.format_desc.blocking.strides[1] = -1; }), "invalid layout",
                 "a negative stride");
  expect_refused(with_desc([](auto& d) { d.padded_dims[0] = int64_t{1} << 30; }), "invalid layout", "padded far");
  expect_refused(with_desc([](auto& d) { d.ndims = 12; }), "invalid layout", "12 dims");
  expect_refused(with_desc([](auto& d) { d.offset0 = 1 << 20; }), "invalid layout", "an offset");
  expect_refused(with_desc([](auto& d) { d.extra.flags = 1; }), "invalid layout", "compensation");
  expect_refused(with_desc([](auto& d) { d.data_type = dnnl_s8; }), "invalid layout", "int8");
  expect_refused(with_desc([](auto& d) { d.format_kind = dnnl_format_kind_wino; }), "invalid layout", "wino");
  // Values outside the enums (the fuzzer's find: loading one as the enum is
  // undefined behaviour).
  const int outside = 196608;
  expect_refused(with_desc([&](auto& d) { std::memcpy(&d.data_type, &outside, sizeof outside); }), "invalid layout",
                 "a data type outside the enum");
  expect_refused(with_desc([&](auto& d) { std::memcpy(&d.format_kind, &outside, sizeof outside); }), "invalid layout",
                 "a format kind outside the enum");
  expect_refused(with_desc([](auto& d) {
                   std::swap(d.dims[0], d.dims[1]);
                   std::swap(d.padded_dims[0], d.padded_dims[1]);
                 }),
                 "invalid layout", "dims swapped");
  expect_refused(with_desc([](auto& d) { d.format_desc.blocking.inner_nblks = 13; }), "invalid layout", "13 blocks");
  if (b.inner_nblks > 0) {
    expect_refused(with_desc([](auto& d) { d.format_desc.blocking.inner_idxs[0] = 40; }), "invalid layout",
                   "a block of dim 40");
    expect_refused(with_desc([](auto& d) { d.format_desc.blocking.inner_blks[0] = 0; }), "invalid layout",
                   "a block of 0");
  }
}

TEST_F(EngineFileTest, CraftedMemoryPlansAreRefused) {
  const json good = meta();
  const json& plan = good["profiles"][0]["memory_plan"];
  const size_t values = plan["offset"].size();
  size_t v = 0;  // a value in the arena
  while (v < values && plan["offset"][v].get<int64_t>() < 0) ++v;
  ASSERT_LT(v, values);
  const std::string at_v = "/profiles/0/memory_plan/offset/" + std::to_string(v);
  auto patched = [&](std::vector<std::pair<std::string, json>> edits) {
    json m = good;
    for (const auto& [pointer, value] : edits) m[json::json_pointer(pointer)] = value;
    return with_meta(m);
  };
  const int64_t arena = plan["arena_bytes"].get<int64_t>();
  // Refused at load, else at the run that allocates the arena.
  expect_refused(patched({{at_v, arena}}), "outside its arena", "a block at the end of the arena", true);
  expect_refused(patched({{at_v, int64_t{1} << 62}}), "outside its arena", "a block at 2^62", true);
  expect_refused(patched({{at_v, plan["offset"][v].get<int64_t>() + 8}}), "outside its arena", "misaligned", true);
  expect_refused(patched({{at_v, -5}}), "offset -5", "offset -5", true);
  expect_refused(patched({{"/profiles/0/memory_plan/bytes/" + std::to_string(v), -1}}), "outside its arena",
                 "a block of 2^64 - 1 bytes", true);
  expect_refused(patched({{"/profiles/0/memory_plan/arena_bytes", int64_t{1} << 62}}), "inconsistent",
                 "an arena of 2^62 bytes", true);
  expect_refused(patched({{"/profiles/0/memory_plan/arena_bytes", int64_t{1} << 62},
                          {"/profiles/0/memory_plan/planned_bytes", int64_t{1} << 62}}),
                 "inconsistent", "2^62 bytes planned", true);
  expect_refused(patched({{"/profiles/0/memory_plan/arena_bytes", plan["planned_bytes"].get<int64_t>() + 64}}),
                 "inconsistent", "an arena larger than its blocks", true);
  expect_refused(patched({{"/profiles/0/memory_plan/arena_bytes", arena + 1}}), "aligned", "unaligned", true);
  expect_refused(patched({{"/profiles/0/memory_plan/root/0", 1 << 20}}), "invalid root", "a root past the end", true);
  json shorter = good;
  shorter["profiles"][0]["memory_plan"]["offset"].erase(0);
  expect_refused(with_meta(shorter), "memory plan for", "a value short", true);

  // A consistent plan of one 2^62-byte block: it loads, and its first run
  // refuses to allocate the arena.
  json huge = good;
  json& p = huge["profiles"][0]["memory_plan"];
  p["offset"] = std::vector<int64_t>(values, -1);
  p["root"] = std::vector<int>(values, -1);
  p["bytes"] = std::vector<int64_t>(values, 0);
  p["offset"][v] = 0;
  p["bytes"][v] = p["arena_bytes"] = p["planned_bytes"] = int64_t{1} << 62;
  expect_refused(with_meta(huge), "too large to allocate", "an arena of 2^62 bytes, consistent", true);

  // One 64-byte block for one value at a time: harmless for all but the
  // graph's output, which the caller keeps after the run.
  int outputs = 0;
  for (size_t u = 0; u < values; ++u) {
    json one = good;
    json& q = one["profiles"][0]["memory_plan"];
    q["offset"] = std::vector<int64_t>(values, -1);
    q["root"] = std::vector<int>(values, -1);
    q["bytes"] = std::vector<int64_t>(values, 0);
    q["offset"][u] = 0;
    q["bytes"][u] = q["arena_bytes"] = q["planned_bytes"] = 64;
    const std::string msg = load_error(with_meta(one), /*run=*/true);
    if (msg.empty()) continue;
    EXPECT_NE(msg.find("puts graph output 'y' in its arena"), std::string::npos) << "value " << u << ": " << msg;
    ++outputs;
  }
  EXPECT_EQ(outputs, 1);
}

// Every block at offset 0: each lies inside the arena, but blocks alive at
// the same time overlap, and runs overwrote each other's tensors.
TEST_F(EngineFileTest, MemoryPlansWithOverlappingLiveBlocksAreRefused) {
  json m = meta();
  json& plan = m["profiles"][0]["memory_plan"];
  int64_t largest = 0;
  int blocks = 0;
  for (size_t v = 0; v < plan["offset"].size(); ++v) {
    if (plan["offset"][v].get<int64_t>() < 0) continue;
    plan["offset"][v] = 0;
    largest = std::max(largest, (std::max<int64_t>(plan["bytes"][v].get<int64_t>(), 1) + 63) / 64 * 64);
    ++blocks;
  }
  ASSERT_GE(blocks, 2);
  plan["arena_bytes"] = largest;
  expect_refused(with_meta(m), "overlapping bytes", "every block at offset 0", true);
}

// Packed Winograd weights on a node edited (checksums recomputed) to a
// geometry Winograd does not compute: the engine holds no other weights
// (it ran oneDNN on empty weights: SIGSEGV).
TEST_F(EngineFileTest, PackedWinogradWeightsOnAnEditedNodeAreRefused) {
  if (!WinogradF32Conv::available()) GTEST_SKIP() << "Winograd needs AVX2 or AVX-512 selected";
  const Settings::Winograd saved = settings().winograd;
  settings_for_tests().winograd = Settings::Winograd::kForce;
  BuildOptions o;
  o.session.input_shapes["x"] = {2, 16, 16, 16};
  std::string built;
  try {
    build_engine(path("model.onnx"), path("winograd.kiln"), o);
    built = read_file(path("winograd.kiln"));
  } catch (...) {
    settings_for_tests().winograd = saved;
    throw;
  }
  settings_for_tests().winograd = saved;
  std::vector<EngineSection> s;
  ASSERT_TRUE(engine_sections(built, &s));
  json built_meta;
  for (const EngineSection& e : s)
    if (e.kind == kMetaSection) built_meta = json::parse(e.bytes);
  int node = -1;
  for (const json& p : built_meta["packed"])
    if (p["kernel"] == "winograd") {
      node = p["node"].get<int>();
      break;
    }
  ASSERT_GE(node, 0) << "no Winograd weights in an engine built with Winograd forced";
  EXPECT_EQ(load_error(built, true), "");
  for (EngineSection& e : s) {
    if (e.kind != kGraphSection) continue;
    onnx::ModelProto g;
    ASSERT_TRUE(g.ParseFromString(e.bytes));
    onnx::NodeProto* n = g.mutable_graph()->mutable_node(node);
    auto set_ints = [&](const std::string& name, std::vector<int64_t> v) {
      onnx::AttributeProto* a = nullptr;
      for (auto& x : *n->mutable_attribute())
        if (x.name() == name) a = &x;
      if (!a) a = n->add_attribute();
      a->Clear();
      a->set_name(name);
      a->set_type(onnx::AttributeProto::INTS);
      for (int64_t x : v) a->add_ints(x);
    };
    set_ints("dilations", {2, 2});
    set_ints("pads", {2, 2, 2, 2});  // the output keeps its size
    e.bytes = bytes_of(g);
  }
  expect_refused(pack_engine(s), "packed Winograd weights", "dilation 2", true);
}

// The graph section: an ONNX ModelProto whose weights are external data in
// the weights section (location "kiln:weights") or not stored at all
// ("kiln:packed": a kernel's packed copy replaces them).
TEST_F(EngineFileTest, CraftedGraphsAreRefused) {
  expect_refused(with_section(kGraphSection, "not protobuf at all"), "not a valid ONNX model", "not protobuf");
  expect_refused(with_section(kGraphSection, ""), "not an ONNX model", "empty");
  onnx::ModelProto good;
  ASSERT_TRUE(good.ParseFromString(section(kGraphSection)));
  auto location = [](const onnx::TensorProto& t) {
    for (const auto& e : t.external_data())
      if (e.key() == "location") return e.value();
    return std::string();
  };
  auto set = [](onnx::TensorProto& t, const std::string& key, const std::string& value) {
    for (auto& e : *t.mutable_external_data())
      if (e.key() == key) {
        e.set_value(value);
        return;
      }
    auto* e = t.add_external_data();
    e->set_key(key);
    e->set_value(value);
  };
  int stored = 0, unstored_refused = 0;
  for (int i = 0; i < good.graph().initializer_size(); ++i) {
    const onnx::TensorProto& t = good.graph().initializer(i);
    if (t.data_location() != onnx::TensorProto::EXTERNAL) continue;
    auto edited = [&](const std::function<void(onnx::TensorProto&)>& edit) {
      onnx::ModelProto m = good;
      edit(*m.mutable_graph()->mutable_initializer(i));
      return with_section(kGraphSection, bytes_of(m));
    };
    const std::string what = "weight '" + t.name() + "'";
    // Not stored, where the kernel reading it has no packed copy: refused;
    // else it loads and runs on the packed copy.
    const std::string msg = load_error(edited([&](auto& w) { set(w, "location", "kiln:packed"); }), true);
    if (!msg.empty()) {
      EXPECT_TRUE(says_any(msg, {"is not stored", "has no data"})) << what << ": " << msg;
      ++unstored_refused;
    }
    if (location(t) != "kiln:weights") continue;
    ++stored;
    expect_refused(edited([&](auto& w) { set(w, "location", "weights.bin"); }), "not in the engine's weights",
                   what + " in a file");
    expect_refused(edited([&](auto& w) { set(w, "offset", std::to_string(int64_t{1} << 40)); }),
                   "outside the weights section", what + " past the end");
    expect_refused(edited([&](auto& w) { w.set_dims(0, w.dims(0) + (int64_t{1} << 62)); }), "", what + " 2^62 larger");
    expect_refused(edited([&](auto& w) { w.set_data_type(onnx::TensorProto::DOUBLE); }), "", what + " as doubles");
  }
  EXPECT_GT(stored, 0);
  EXPECT_GT(unstored_refused, 0);
}

TEST_F(EngineFileTest, BadFilesOnDiskNameTheirPath) {
  const std::string truncated = path("truncated.kiln");
  write_file(truncated, engine().substr(0, engine().size() / 2));
  try {
    Session::load(truncated);
    FAIL() << "a truncated engine loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(truncated + ": truncated engine"), std::string::npos) << e.what();
  }
  std::mt19937 rng(3);
  for (int k = 0; k < 20; ++k) {
    std::string garbage(kEngineHeaderBytes + rng() % 20000, '\0');
    for (char& c : garbage) c = static_cast<char>(rng());
    std::memcpy(garbage.data(), "KILNENG", 8);
    if (k % 2) put_le<uint32_t>(garbage, kEngineVersionAt, 1);
    const std::string garbage_path = path("garbage.kiln");
    write_file(garbage_path, garbage);
    try {
      Session::load(garbage_path);
      FAIL() << "garbage loaded";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind(garbage_path + ": ", 0), 0u) << msg;
      EXPECT_TRUE(says_any(msg, {"corrupted engine", "engine format version"})) << msg;
    }
  }
  write_file(path("magic_only.kiln"), std::string("KILNENG", 8));
  EXPECT_THROW(Session::load(path("magic_only.kiln")), Error);
}

}  // namespace
}  // namespace kiln
