// ONNX import: tensor encodings, initializers as inputs, Constant folding,
// model-local functions, external data (and its path checks), IR versions.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "kiln/session.h"
#include "model_builder.h"

namespace kiln::test {

namespace fs = std::filesystem;

namespace {

// y = x + w for x, w of shape [2, 3].
onnx::ModelProto add_model(const onnx::TensorProto& w, bool w_is_input = false, int64_t ir = 8) {
  onnx::ModelProto m = make_model(17, ir);
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {2, 3});
  if (w_is_input) *g->add_input() = tensor_info("w", onnx::TensorProto::FLOAT, {2, 3});
  *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {2, 3});
  *g->add_initializer() = w;
  *g->add_node() = make_node("Add", {"x", "w"}, {"y"}, "add");
  return m;
}

Tensor iota_tensor(Shape s, float start = 0) {
  Tensor t(DType::kFloat32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = start + static_cast<float>(i);
  return t;
}

const std::vector<float> kW = {10, 20, 30, 40, 50, 60};

void expect_x_plus_w(const Session& s, std::vector<std::pair<std::string, Tensor>> extra = {}, float wscale = 1) {
  Tensor x = iota_tensor({2, 3});
  extra.insert(extra.begin(), {"x", x});
  auto out = s.run(extra);
  ASSERT_EQ(out.size(), 1u);
  for (int i = 0; i < 6; ++i)
    EXPECT_FLOAT_EQ(out[0].data<float>()[i], static_cast<float>(i) + kW[static_cast<size_t>(i)] * wscale);
}

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/kiln-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};

}  // namespace

TEST(Import, RawAndTypedInitializersAgree) {
  for (bool raw : {true, false}) {
    std::string b = bytes_of(add_model(float_tensor("w", {2, 3}, kW, raw)));
    expect_x_plus_w(Session::load_bytes(b.data(), b.size()));
  }
}

TEST(Import, InitializerThatIsAlsoAnInputCanBeOverridden) {
  std::string b = bytes_of(add_model(float_tensor("w", {2, 3}, kW), /*w_is_input=*/true));
  Session s = Session::load_bytes(b.data(), b.size());
  ASSERT_EQ(s.inputs().size(), 2u);
  EXPECT_FALSE(s.inputs()[0].has_default);
  EXPECT_TRUE(s.inputs()[1].has_default);
  expect_x_plus_w(s);  // default weight
  Tensor w2(DType::kFloat32, {2, 3});
  for (int i = 0; i < 6; ++i) w2.data<float>()[i] = 2 * kW[static_cast<size_t>(i)];
  expect_x_plus_w(s, {{"w", w2}}, 2);  // overridden
}

TEST(Import, ConstantNodeIsFolded) {
  onnx::ModelProto m = make_model();
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {2, 3});
  *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {2, 3});
  auto c = make_node("Constant", {}, {"w"}, "c");
  auto* a = c.add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  *a->mutable_t() = float_tensor("", {2, 3}, kW);
  *g->add_node() = c;
  *g->add_node() = make_node("Add", {"x", "w"}, {"y"}, "add");
  std::string b = bytes_of(m);
  Session s = Session::load_bytes(b.data(), b.size());
  EXPECT_EQ(s.num_nodes(), 1u);
  expect_x_plus_w(s);
}

TEST(Import, ModelLocalFunctionIsInlined) {
  onnx::ModelProto m = make_model();
  auto* o = m.add_opset_import();
  o->set_domain("custom");
  o->set_version(1);
  auto* f = m.add_functions();
  f->set_name("AddRelu");
  f->set_domain("custom");
  f->add_input("a");
  f->add_input("b");
  f->add_output("c");
  *f->add_node() = make_node("Add", {"a", "b"}, {"t"});
  *f->add_node() = make_node("Relu", {"t"}, {"c"});
  auto* fo = f->add_opset_import();
  fo->set_domain("");
  fo->set_version(17);
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {2, 3});
  *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {2, 3});
  *g->add_initializer() = float_tensor("w", {2, 3}, {-10, 20, -30, 40, -50, 60});
  *g->add_node() = make_node("AddRelu", {"x", "w"}, {"y"}, "call", "custom");
  std::string b = bytes_of(m);
  SessionOptions opts;
  opts.opt_level = 0;  // the importer's node count, before the optimizer fuses Add+Relu
  Session s = Session::load_bytes(b.data(), b.size(), opts);
  EXPECT_EQ(s.num_nodes(), 2u);
  auto out = s.run({{"x", iota_tensor({2, 3})}});
  std::vector<float> want = {0, 21, 0, 43, 0, 65};
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(out[0].data<float>()[i], want[static_cast<size_t>(i)]);
}

TEST(Import, AcceptsIrVersions3To10) {
  for (int64_t ir = 3; ir <= 10; ++ir) {
    std::string b = bytes_of(add_model(float_tensor("w", {2, 3}, kW), false, ir));
    EXPECT_NO_THROW(expect_x_plus_w(Session::load_bytes(b.data(), b.size()))) << "IR " << ir;
  }
}

TEST(Import, ExternalDataWithOffsetAndLength) {
  TempDir dir;
  std::vector<float> blob(8, 0.f);
  std::copy(kW.begin(), kW.end(), blob.begin() + 2);  // at byte offset 8
  std::ofstream(dir.path / "weights.bin", std::ios::binary)
      .write(reinterpret_cast<const char*>(blob.data()), static_cast<std::streamsize>(blob.size() * 4));
  onnx::TensorProto w = float_tensor("w", {2, 3}, {}, true);
  w.clear_raw_data();
  w.set_data_location(onnx::TensorProto::EXTERNAL);
  for (auto [k, v] : std::vector<std::pair<std::string, std::string>>{
           {"location", "weights.bin"}, {"offset", "8"}, {"length", "24"}}) {
    auto* e = w.add_external_data();
    e->set_key(k);
    e->set_value(v);
  }
  std::ofstream(dir.path / "model.onnx", std::ios::binary) << bytes_of(add_model(w));
  expect_x_plus_w(Session::load((dir.path / "model.onnx").string()));

  // The same model from memory has no folder to read from.
  std::string b = bytes_of(add_model(w));
  EXPECT_THROW(Session::load_bytes(b.data(), b.size()), Error);

  // A length that disagrees with the shape, and a file too short.
  w.mutable_external_data(2)->set_value("20");
  std::ofstream(dir.path / "bad_len.onnx", std::ios::binary) << bytes_of(add_model(w));
  EXPECT_THROW(Session::load((dir.path / "bad_len.onnx").string()), Error);
  w.mutable_external_data(2)->set_value("24");
  w.mutable_external_data(1)->set_value("16");
  std::ofstream(dir.path / "short.onnx", std::ios::binary) << bytes_of(add_model(w));
  EXPECT_THROW(Session::load((dir.path / "short.onnx").string()), Error);
}

TEST(Import, ExternalDataSymlinkOutsideFolderIsRefused) {
  TempDir outside, dir;
  std::vector<float> blob(kW);
  std::ofstream(outside.path / "secret.bin", std::ios::binary).write(reinterpret_cast<const char*>(blob.data()), 24);
  fs::create_symlink(outside.path / "secret.bin", dir.path / "link.bin");
  onnx::TensorProto w = float_tensor("w", {2, 3}, {}, true);
  w.clear_raw_data();
  w.set_data_location(onnx::TensorProto::EXTERNAL);
  auto* e = w.add_external_data();
  e->set_key("location");
  e->set_value("link.bin");
  std::ofstream(dir.path / "model.onnx", std::ios::binary) << bytes_of(add_model(w));
  try {
    Session::load((dir.path / "model.onnx").string());
    FAIL() << "symlink escape accepted";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("outside the model's folder"), std::string::npos) << err.what();
  }
}

}  // namespace kiln::test
