"""A torchvision model from PyTorch to a kiln engine to inference.

    python examples/python/torchvision_to_engine.py [OUT_DIR]
"""
import os
import sys

import numpy as np
import torch
import torchvision

import kiln

out = sys.argv[1] if len(sys.argv) > 1 else "."
net = torchvision.models.resnet18(weights=None).eval()  # or weights="DEFAULT" to download them
x = torch.rand(2, 3, 224, 224)
onnx_path, engine_path = os.path.join(out, "resnet18.onnx"), os.path.join(out, "resnet18.kiln")
torch.onnx.export(net, x, onnx_path, input_names=["image"], output_names=["logits"],
                  dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17)
kiln.build_engine(onnx_path, engine_path, min_shapes={"image": (1, 3, 224, 224)},
                  opt_shapes={"image": (2, 3, 224, 224)}, max_shapes={"image": (8, 3, 224, 224)})
session = kiln.InferenceSession(engine_path)
(logits,) = session.run(None, {"image": x.numpy()})
with torch.no_grad():
    want = net(x).numpy()
print("max |kiln - torch|", float(np.abs(logits - want).max()))
assert np.allclose(logits, want, rtol=1e-3, atol=1e-3)
