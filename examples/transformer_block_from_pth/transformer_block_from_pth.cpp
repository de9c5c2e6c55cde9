// A transformer encoder block built with kiln's network-definition API from
// the state_dict of PyTorch's nn.TransformerEncoderLayer(batch_first=True,
// norm_first=True, activation="gelu"), saved with torch.save:
//
//   x = x + self_attn(norm1(x));  x = x + linear2(gelu(linear1(norm2(x))))
//
//   transformer_block_from_pth WEIGHTS.pth HEADS [--input X.npy] [--output Y.npy]
//
// X.npy: float32 [batch, sequence, d_model]; batch and sequence are
// symbolic in the network, so any sizes run.
#include <cstdio>
#include <cstring>
#include <string>

#include "kiln/network.h"
#include "kiln/session.h"
#include "kiln/tensor_io.h"
#include "kiln/weights.h"

namespace {

kiln::Tensor get(const kiln::WeightMap& w, const std::string& name) {
  const kiln::Tensor* t = w.find(name);
  if (!t) throw kiln::Error("no tensor '" + name + "' in the checkpoint (an nn.TransformerEncoderLayer state_dict?)");
  return kiln::weights_to_float32(*t);
}

kiln::Network encoder_block(const kiln::WeightMap& w, int64_t heads) {
  const kiln::Tensor in_proj = get(w, "self_attn.in_proj_weight");
  const int64_t d_model = in_proj.dim(1);
  kiln::Network net("transformer_block");
  kiln::NetworkTensor x = net.input("x", kiln::DType::kFloat32, {"batch", "sequence", d_model});
  kiln::NetworkTensor h = net.layer_norm(x, get(w, "norm1.weight"), get(w, "norm1.bias"), 1e-5f, "norm1");
  kiln::MultiHeadAttentionWeights attn{in_proj, get(w, "self_attn.in_proj_bias"), get(w, "self_attn.out_proj.weight"),
                                       get(w, "self_attn.out_proj.bias")};
  h = net.multi_head_attention(h, h, h, heads, attn, {}, "self_attn");
  x = net.add(x, h, "residual1");
  h = net.layer_norm(x, get(w, "norm2.weight"), get(w, "norm2.bias"), 1e-5f, "norm2");
  h = net.linear(h, get(w, "linear1.weight"), get(w, "linear1.bias"), "linear1");
  h = net.gelu(h, "gelu");
  h = net.linear(h, get(w, "linear2.weight"), get(w, "linear2.bias"), "linear2");
  net.mark_output(net.add(x, h, "residual2"), "y");
  return net;
}

int run(int argc, char** argv) {
  if (argc < 3 || std::strcmp(argv[1], "--help") == 0) {
    std::printf("usage: %s WEIGHTS.pth HEADS [--input X.npy] [--output Y.npy]\n", argv[0]);
    return argc < 3 ? 1 : 0;
  }
  std::string input, output;
  for (int i = 3; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--input") == 0)
      input = argv[i + 1];
    else if (std::strcmp(argv[i], "--output") == 0)
      output = argv[i + 1];
    else
      throw kiln::Error(std::string("unknown flag ") + argv[i]);
  }
  const kiln::WeightMap weights = kiln::load_weights(argv[1]);
  const kiln::Network net = encoder_block(weights, std::stoll(argv[2]));
  kiln::Tensor x = input.empty() ? kiln::Tensor(kiln::DType::kFloat32, {1, 16, get(weights, "norm1.weight").dim(0)})
                                 : kiln::load_npy(input);
  const kiln::Tensor y = net.session().run({{"x", x}})[0];
  std::printf("built %s (%zu layers); output %s\n", net.name().c_str(), net.num_layers(),
              kiln::shape_str(y.shape()).c_str());
  if (!output.empty()) kiln::save_npy(y, output);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "transformer_block_from_pth: error: %s\n", e.what());
    return 1;
  }
}
