// ResNet-18 built by hand with kiln's network-definition API (tensorrtx
// style), its weights read straight from a PyTorch checkpoint: the
// state_dict of torchvision.models.resnet18, saved with torch.save. No ONNX
// and no Python on the way.
//
//   resnet18_from_pth WEIGHTS.pth [--input IMAGE.npy] [--output LOGITS.npy]
//                     [--engine OUT.kiln] [--onnx OUT.onnx]
//
// IMAGE.npy: float32 [N, 3, H, W], normalized as torchvision expects
// (random when not given). --engine builds an engine for batches 1..8 at the
// input's H x W, which `kiln run` then runs without this program.
#include <cstdio>
#include <cstring>
#include <random>
#include <string>

#include "kiln/network.h"
#include "kiln/session.h"
#include "kiln/tensor_io.h"
#include "kiln/weights.h"

namespace {

// The state_dict's tensors by name; a missing one is an error naming it.
class StateDict {
 public:
  explicit StateDict(const std::string& path) : weights_(kiln::load_weights(path)), path_(path) {}
  kiln::Tensor operator[](const std::string& name) const {
    const kiln::Tensor* t = weights_.find(name);
    if (!t) throw kiln::Error(path_ + ": no tensor '" + name + "' (is this a torchvision resnet18 state_dict?)");
    return kiln::weights_to_float32(*t);
  }

 private:
  kiln::WeightMap weights_;
  std::string path_;
};

// conv (no bias, as torchvision's) + batch norm, named after the module.
kiln::NetworkTensor conv_bn(kiln::Network& net, const StateDict& w, kiln::NetworkTensor x, const std::string& conv,
                            const std::string& bn, int64_t stride, int64_t pad) {
  kiln::ConvOptions o;
  o.strides = {stride, stride};
  o.pads = {pad, pad};
  x = net.conv(x, w[conv + ".weight"], {}, o, conv);
  return net.batch_norm(x, w[bn + ".weight"], w[bn + ".bias"], w[bn + ".running_mean"], w[bn + ".running_var"], 1e-5f,
                        bn);
}

// torchvision's BasicBlock: conv3x3-bn-relu-conv3x3-bn, plus the input (or
// its 1x1 strided projection), then relu.
kiln::NetworkTensor basic_block(kiln::Network& net, const StateDict& w, kiln::NetworkTensor x, const std::string& p,
                                int64_t stride, bool downsample) {
  kiln::NetworkTensor y = net.relu(conv_bn(net, w, x, p + ".conv1", p + ".bn1", stride, 1), p + ".relu1");
  y = conv_bn(net, w, y, p + ".conv2", p + ".bn2", 1, 1);
  kiln::NetworkTensor identity =
      downsample ? conv_bn(net, w, x, p + ".downsample.0", p + ".downsample.1", stride, 0) : x;
  return net.relu(net.add(y, identity, p + ".add"), p + ".relu2");
}

kiln::Network resnet18(const StateDict& w) {
  kiln::Network net("resnet18");
  kiln::NetworkTensor x = net.input("image", kiln::DType::kFloat32, {"batch", 3, "height", "width"});
  x = net.relu(conv_bn(net, w, x, "conv1", "bn1", 2, 3), "relu");
  kiln::PoolOptions pool;
  pool.kernel = {3, 3};
  pool.strides = {2, 2};
  pool.pads = {1, 1};
  x = net.pool(x, kiln::PoolType::kMax, pool, "maxpool");
  for (int layer = 1; layer <= 4; ++layer)
    for (int block = 0; block < 2; ++block) {
      const bool first = block == 0 && layer > 1;
      x = basic_block(net, w, x, "layer" + std::to_string(layer) + "." + std::to_string(block), first ? 2 : 1, first);
    }
  x = net.flatten(net.global_pool(x, kiln::PoolType::kAverage, "avgpool"), 1, "flatten");
  net.mark_output(net.linear(x, w["fc.weight"], w["fc.bias"], "fc"), "logits");
  return net;
}

int run(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::printf(
        "usage: %s WEIGHTS.pth [--input IMAGE.npy] [--output LOGITS.npy] [--engine OUT.kiln] [--onnx OUT.onnx]\n",
        argv[0]);
    return argc < 2 ? 1 : 0;
  }
  std::string input, output, engine, onnx;
  for (int i = 2; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) throw kiln::Error(flag + ": needs a value");
    const std::string value = argv[++i];
    if (flag == "--input")
      input = value;
    else if (flag == "--output")
      output = value;
    else if (flag == "--engine")
      engine = value;
    else if (flag == "--onnx")
      onnx = value;
    else
      throw kiln::Error("unknown flag " + flag);
  }
  const StateDict weights(argv[1]);
  const kiln::Network net = resnet18(weights);
  std::printf("built %s: %zu layers\n", net.name().c_str(), net.num_layers());

  kiln::Tensor image;
  if (!input.empty()) {
    image = kiln::load_npy(input);
  } else {
    image = kiln::Tensor(kiln::DType::kFloat32, {1, 3, 224, 224});
    std::mt19937 rng(0);
    std::normal_distribution<float> n(0.f, 1.f);
    for (int64_t i = 0; i < image.numel(); ++i) image.data<float>()[i] = n(rng);
  }
  const kiln::Session session = net.session();
  const kiln::Tensor logits = session.run({{"image", image}})[0];
  for (int64_t b = 0; b < logits.dim(0); ++b) {
    const float* row = logits.data<float>() + b * logits.dim(1);
    int64_t best = 0;
    for (int64_t k = 1; k < logits.dim(1); ++k)
      if (row[k] > row[best]) best = k;
    std::printf("image %lld: class %lld (logit %.4f)\n", static_cast<long long>(b), static_cast<long long>(best),
                row[best]);
  }
  if (!output.empty()) kiln::save_npy(logits, output);
  if (!onnx.empty()) net.save_onnx(onnx);
  if (!engine.empty()) {
    const kiln::Shape s = image.shape();
    kiln::BuildOptions build;
    kiln::ShapeProfile profile;
    profile.min["image"] = {1, s[1], s[2], s[3]};
    profile.opt["image"] = {std::min<int64_t>(s[0], 8), s[1], s[2], s[3]};
    profile.max["image"] = {std::max<int64_t>(s[0], 8), s[1], s[2], s[3]};
    build.profiles = {profile};
    const kiln::BuildReport r = net.build_engine(engine, build);
    std::printf("wrote %s (%zu bytes)\n", engine.c_str(), r.engine_bytes);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "resnet18_from_pth: error: %s\n", e.what());
    return 1;
  }
}
