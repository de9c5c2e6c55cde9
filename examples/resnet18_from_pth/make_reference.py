"""Writes what the ResNet-18 example is checked against, with PyTorch:
resnet18.pth (torch.save of torchvision.models.resnet18().state_dict(),
random weights, batch norm statistics made non-trivial), image.npy (two
random images) and logits.npy (PyTorch's output for them).

    /usr/bin/python3 examples/resnet18_from_pth/make_reference.py OUT_DIR
"""
import os
import sys

import numpy as np
import torch
import torchvision


def main(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    model = torchvision.models.resnet18()
    # Fresh batch norms are the identity; give them statistics so that the
    # test sees every weight in use.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    model.eval()
    torch.save(model.state_dict(), os.path.join(out, "resnet18.pth"))
    image = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        logits = model(image)
    np.save(os.path.join(out, "image.npy"), image.numpy())
    np.save(os.path.join(out, "logits.npy"), logits.numpy())


if __name__ == "__main__":
    main(sys.argv[1])
