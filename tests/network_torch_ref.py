#!/usr/bin/env python3
"""PyTorch references for tests/network_models_test.cpp.

Writes, under OUT/<model>/, every parameter and buffer of the model as
<state_dict key>.npy, the input as input.npy and PyTorch's output as
output.npy, for:
  resnet_block: a ResNet basic block with a stride-2 downsample (eval mode,
                batch norm statistics made non-trivial);
  transformer:  nn.TransformerEncoderLayer(norm_first=True, GELU,
                batch_first=True): LayerNorm -> MHA -> residual ->
                LayerNorm -> MLP with GELU -> residual.
Exits with 77 when torch is missing, so that the test can skip.
"""
import os
import sys

try:
    import numpy as np
    import torch
    from torch import nn
except ImportError:
    sys.exit(77)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + self.downsample(x))


def randomize_batch_norms(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)


def save(model, x, folder):
    os.makedirs(folder, exist_ok=True)
    model.eval()
    with torch.no_grad():
        y = model(x)
    for key, value in model.state_dict().items():
        if value.dtype == torch.float32:
            np.save(os.path.join(folder, key + ".npy"), value.numpy())
    np.save(os.path.join(folder, "input.npy"), x.numpy())
    np.save(os.path.join(folder, "output.npy"), y.numpy())


def main():
    out = sys.argv[1]
    torch.manual_seed(0)
    block = BasicBlock(16, 32, 2)
    randomize_batch_norms(block)
    save(block, torch.randn(2, 16, 14, 14), os.path.join(out, "resnet_block"))

    layer = nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64, dropout=0.0, activation="gelu",
                                       batch_first=True, norm_first=True)
    with torch.no_grad():
        for p in (layer.norm1, layer.norm2):
            p.weight.uniform_(0.5, 1.5)
            p.bias.uniform_(-0.2, 0.2)
    save(layer, torch.randn(2, 7, 32), os.path.join(out, "transformer"))


if __name__ == "__main__":
    main()
