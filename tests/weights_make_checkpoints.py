#!/usr/bin/python3
"""Writes the checkpoints tests/weights_test.cpp reads back, and what they hold.

Usage: weights_make_checkpoints.py OUT_DIR

OUT_DIR gets torch.save files (every dtype, strided views, shared storages,
nested dicts with non-tensor leaves, a bare tensor, pickle protocol 4, a
big-endian copy, torchvision's resnet18), a safetensors file and a .wts file
(both written by hand: the formats are simple and no package is needed), and
expected.json + expected.bin: for each file, its tensors in order as
{name, dtype, shape, offset, nbytes} with their values, contiguous, at
expected.bin[offset:offset + nbytes], and its non-tensor leaves. Run with
/usr/bin/python3 (the Python that has torch).
"""
import collections
import io
import json
import os
import pickle
import struct
import sys
import zipfile

import torch

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
blob = bytearray()
expected = {}

DTYPE_NAMES = {
    torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16", torch.float64: "float64",
    torch.int64: "int64", torch.int32: "int32", torch.int16: "int16", torch.int8: "int8", torch.uint8: "uint8",
    torch.bool: "bool",
}


def tensor_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: its bits as int16
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def flatten(obj, prefix, tensors, values):
    """kiln's naming: dict keys and list indices joined with dots."""
    def join(key):
        return f"{prefix}.{key}" if prefix else str(key)
    if isinstance(obj, torch.Tensor):
        tensors.append((prefix or "tensor", obj))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            flatten(v, join(k), tensors, values)
    elif isinstance(obj, (list, tuple)) and any(isinstance(x, (torch.Tensor, dict, list, tuple)) for x in obj):
        for i, v in enumerate(obj):
            flatten(v, join(i), tensors, values)
    else:
        values.append({"name": prefix or "value", "type": type(obj).__name__ if obj is not None else "None"})


def record(file, tensors, values=()):
    entries = []
    for name, t in tensors:
        data = tensor_bytes(t)
        entries.append({"name": name, "dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape),
                        "offset": len(blob), "nbytes": len(data)})
        blob.extend(data)
    expected[file] = {"tensors": entries, "values": list(values)}


def save(file, obj, **kwargs):
    torch.save(obj, os.path.join(OUT, file), **kwargs)
    tensors, values = [], []
    flatten(obj, "", tensors, values)
    record(file, tensors, values)


torch.manual_seed(0)
# Every dtype, with negative values, extremes and (for floats) inf and nan.
f = torch.tensor([[0.0, -1.5, 3.25], [1e-3, float("inf"), float("nan")]])
dtypes = collections.OrderedDict()
for dt in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
    dtypes[f"f_{DTYPE_NAMES[dt]}"] = f.to(dt)
dtypes["i_int64"] = torch.tensor([-(2**62), -1, 0, 2**62 + 5])
dtypes["i_int32"] = torch.tensor([-(2**31), -7, 2**31 - 1], dtype=torch.int32)
dtypes["i_int16"] = torch.tensor([-32768, 12345], dtype=torch.int16)
dtypes["i_int8"] = torch.tensor([[-128, 5], [0, 127]], dtype=torch.int8)
dtypes["i_uint8"] = torch.tensor([0, 200, 255], dtype=torch.uint8)
dtypes["b_bool"] = torch.tensor([True, False, True])
dtypes["scalar"] = torch.tensor(2.5)
dtypes["empty"] = torch.zeros(0, 3)
save("dtypes.pt", dtypes)

# Views: non-contiguous, with storage offsets, broadcast (stride 0), and
# several tensors sharing one storage (torch.save writes it once).
base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
views = collections.OrderedDict()
views["base"] = base
views["transposed"] = base.t()
views["slice"] = base[1:3, 2:5]
views["row"] = base[2]
views["every_other"] = base[:, ::2]
views["expanded"] = torch.arange(3, dtype=torch.float64).expand(4, 3)
views["param"] = torch.nn.Parameter(torch.randn(3, 2).t())
pair = torch.randn(10)
views["shared_a"] = pair[:4]
views["shared_b"] = pair[4:].view(2, 3)
views["tied_1"] = views["tied_2"] = torch.randn(2, 2)
save("views.pt", views)
with zipfile.ZipFile(os.path.join(OUT, "views.pt")) as z:
    names = z.namelist()
# One storage each for base and its views, expanded, param, pair, tied.
assert sum(n.startswith("views/data/") for n in names) == 5, names

# A training checkpoint: model and optimizer state, plus non-tensor leaves.
model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                            torch.nn.Linear(4, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
model(torch.randn(2, 3, 3, 3)).sum().backward()
opt.step()
save("nested.pt", {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 7, "name": "run-1",
                   "lr": 0.01, "best": None, "shape": (1, 2)})

save("bare.pt", torch.arange(5, dtype=torch.int32))
save("protocol4.pt", collections.OrderedDict(w=torch.randn(2, 3), b=torch.randn(3)), pickle_protocol=4)

# The views checkpoint again, as a big-endian machine would write it: every
# storage byte-swapped and a byteorder entry saying so. The element size of
# each storage comes from its persistent id in the pickle.
STORAGE_SIZES = {"FloatStorage": 4, "DoubleStorage": 8}


class StorageScan(pickle.Unpickler):
    sizes = {}

    def find_class(self, module, name):
        if module == "collections":
            return collections.OrderedDict
        return name if module == "torch" else (lambda *args: None)

    def persistent_load(self, pid):
        self.sizes[pid[2]] = STORAGE_SIZES[pid[1]]


with zipfile.ZipFile(os.path.join(OUT, "views.pt")) as src, \
        zipfile.ZipFile(os.path.join(OUT, "bigendian.pt"), "w", zipfile.ZIP_STORED) as dst:
    StorageScan(io.BytesIO(src.read("views/data.pkl"))).load()
    for info in src.infolist():
        data = src.read(info.filename)
        if info.filename.startswith("views/data/"):
            size = StorageScan.sizes[info.filename.rsplit("/", 1)[-1]]
            data = b"".join(data[i:i + size][::-1] for i in range(0, len(data), size))
        dst.writestr(info.filename, data)
    dst.writestr("views/byteorder", "big")
expected["bigendian.pt"] = expected["views.pt"]

resnet = __import__("torchvision").models.resnet18()
save("resnet18.pt", resnet.state_dict())

# safetensors, written by hand: u64 header length, JSON header, data.
st_tensors = collections.OrderedDict(
    [("w", torch.randn(3, 4)), ("h", torch.randn(5).half()), ("bf", torch.randn(2, 2).bfloat16()),
     ("ids", torch.arange(6).reshape(2, 3)), ("mask", torch.tensor([True, False])),
     ("d", torch.randn(2, dtype=torch.float64)), ("i8", torch.tensor([-3, 4], dtype=torch.int8)),
     ("scalar", torch.tensor(7, dtype=torch.int32))])
ST = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64", torch.bool: "BOOL",
      torch.float64: "F64", torch.int8: "I8", torch.int32: "I32"}
header, data = collections.OrderedDict(), bytearray()
header["__metadata__"] = {"format": "pt"}
for name, t in st_tensors.items():
    b = tensor_bytes(t)
    header[name] = {"dtype": ST[t.dtype], "shape": list(t.shape), "data_offsets": [len(data), len(data) + len(b)]}
    data.extend(b)
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
with open(os.path.join(OUT, "weights.safetensors"), "wb") as fh:
    fh.write(struct.pack("<Q", len(h)) + h + bytes(data))
record("weights.safetensors", list(st_tensors.items()), [{"name": "format", "type": "metadata"}])

# .wts as tensorrtx's gen_wts.py writes it: 1-D float32 values.
small = model.state_dict()
with open(os.path.join(OUT, "weights.wts"), "w") as fh:
    fh.write(f"{len(small)}\n")
    for name, t in small.items():
        v = t.reshape(-1).float().tolist()
        fh.write(f"{name} {len(v)}" + "".join(" " + struct.pack(">f", x).hex() for x in v) + "\n")
record("weights.wts", [(n, t.reshape(-1).float()) for n, t in small.items()])

with open(os.path.join(OUT, "expected.bin"), "wb") as fh:
    fh.write(blob)
with open(os.path.join(OUT, "expected.json"), "w") as fh:
    json.dump(expected, fh, indent=1)
