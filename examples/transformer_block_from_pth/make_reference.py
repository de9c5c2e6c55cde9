"""Writes the transformer-block example's reference with PyTorch:
block.pth (torch.save of an nn.TransformerEncoderLayer's state_dict:
d_model 64, 4 heads, feed-forward 128, GELU, pre-norm, batch first), x.npy
(batch 3, sequence 21) and y.npy (PyTorch's output).

    /usr/bin/python3 examples/transformer_block_from_pth/make_reference.py OUT_DIR
"""
import os
import sys

import numpy as np
import torch


def main(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(d_model=64, nhead=4, dim_feedforward=128, dropout=0.0,
                                             activation="gelu", batch_first=True, norm_first=True).eval()
    torch.save(layer.state_dict(), os.path.join(out, "block.pth"))
    x = torch.randn(3, 21, 64)
    with torch.no_grad():
        y = layer(x)
    np.save(os.path.join(out, "x.npy"), x.numpy())
    np.save(os.path.join(out, "y.npy"), y.numpy())


if __name__ == "__main__":
    main(sys.argv[1])
