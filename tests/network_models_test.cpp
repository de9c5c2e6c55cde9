// Network-definition API against PyTorch: a ResNet basic block and a
// transformer encoder block built from PyTorch's own weights
// (tests/network_torch_ref.py writes them with the expected outputs), to
// 1e-4 relative L2. Skipped when /usr/bin/python3 has no torch.
#include <gtest/gtest.h>

#include <unistd.h>
#include <cstdlib>
#include <filesystem>

#include "kiln/tensor_io.h"
#include "network_test_util.h"

namespace kiln::test {

namespace {

// The references' folder, made once per test binary run; "" when torch is missing.
const std::string& reference_dir() {
  static const std::string dir = [] {
    const std::string out =
        (std::filesystem::temp_directory_path() / ("kiln_network_torch_" + std::to_string(::getpid()))).string();
    const std::string cmd = "/usr/bin/python3 " KILN_SOURCE_DIR "/tests/network_torch_ref.py " + out + " 2>&1";
    const int rc = std::system(cmd.c_str());
    return rc == 0 ? out : std::string();
  }();
  return dir;
}

// The state_dict of one reference model, read by key.
struct Weights {
  std::string folder;
  Tensor operator[](const std::string& key) const { return load_npy(folder + "/" + key + ".npy"); }
};

// PyTorch's conv + BatchNorm2d pair, as tensorrtx writes them.
NetworkTensor conv_bn(Network& net, const Weights& w, NetworkTensor x, const std::string& conv, const std::string& bn,
                      int64_t stride, int64_t pad) {
  NetworkTensor y = net.conv(x, w[conv + ".weight"], {}, {.strides = {stride, stride}, .pads = {pad, pad}}, conv);
  return net.batch_norm(y, w[bn + ".weight"], w[bn + ".bias"], w[bn + ".running_mean"], w[bn + ".running_var"], 1e-5f,
                        bn);
}

}  // namespace

TEST(NetworkModels, ResNetBasicBlockMatchesPyTorch) {
  if (reference_dir().empty()) GTEST_SKIP() << "torch is not available to /usr/bin/python3";
  const Weights w{reference_dir() + "/resnet_block"};
  Network net("resnet_block");
  NetworkTensor x = net.input("x", DType::kFloat32, {"batch", 16, 14, 14});
  NetworkTensor y = net.relu(conv_bn(net, w, x, "conv1", "bn1", 2, 1), "relu1");
  y = conv_bn(net, w, y, "conv2", "bn2", 1, 1);
  NetworkTensor shortcut = conv_bn(net, w, x, "downsample.0", "downsample.1", 2, 0);
  net.mark_output(net.relu(net.add(y, shortcut, "add"), "relu2"), "y");
  EXPECT_EQ(net.outputs()[0].str(), "float[batch x 32 x 7 x 7]");
  const Tensor input = w["input"], want = w["output"];
  EXPECT_LT(rel_l2(run_x(net, input), want), 1e-4);
  EXPECT_LT(rel_l2(run_x(net, input, {.opt_level = 0}), want), 1e-4);
}

TEST(NetworkModels, TransformerEncoderBlockMatchesPyTorch) {
  if (reference_dir().empty()) GTEST_SKIP() << "torch is not available to /usr/bin/python3";
  const Weights w{reference_dir() + "/transformer"};
  Network net("transformer_block");
  NetworkTensor x = net.input("x", DType::kFloat32, {"batch", "seq", 32});
  NetworkTensor h = net.layer_norm(x, w["norm1.weight"], w["norm1.bias"], 1e-5f, "norm1");
  MultiHeadAttentionWeights attn{w["self_attn.in_proj_weight"], w["self_attn.in_proj_bias"],
                                 w["self_attn.out_proj.weight"], w["self_attn.out_proj.bias"]};
  h = net.multi_head_attention(h, h, h, 4, attn, {}, "self_attn");
  x = net.add(x, h, "residual1");
  h = net.layer_norm(x, w["norm2.weight"], w["norm2.bias"], 1e-5f, "norm2");
  h = net.gelu(net.linear(h, w["linear1.weight"], w["linear1.bias"], "linear1"), "gelu");
  h = net.linear(h, w["linear2.weight"], w["linear2.bias"], "linear2");
  net.mark_output(net.add(x, h, "residual2"), "y");
  EXPECT_EQ(net.outputs()[0].str(), "float[batch x seq x 32]");
  const Tensor input = w["input"], want = w["output"];
  Session s = net.session();
  EXPECT_LT(rel_l2(s.run({{"x", input}})[0], want), 1e-4);
  // The optimizer saw the attention, GELU and layer norms for what they are.
  bool fused_attention = false, erf_left = false;
  for (const Session::ExecutedNode& n : s.executed_nodes()) {
    fused_attention = fused_attention || n.op == "kiln.Attention";
    erf_left = erf_left || n.op == "Erf";
  }
  EXPECT_TRUE(fused_attention);
  EXPECT_FALSE(erf_left);
  EXPECT_LT(rel_l2(run_x(net, input, {.opt_level = 0}), want), 1e-4);
}

}  // namespace kiln::test
