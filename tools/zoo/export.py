#!/usr/bin/env python3
"""Export a model zoo to ONNX, laid out like ONNX backend tests.

Usage:
    /usr/bin/python3 tools/zoo/export.py --out DIR [--models a,b,c] [--small] [--list]
                                         [--dynamic-hw]

For each model this writes
    DIR/<name>/model.onnx
    DIR/<name>/test_data_set_0/input_0.pb, output_0.pb[, output_1.pb ...]
(onnx.TensorProto via onnx.numpy_helper.from_array); the expected outputs are
PyTorch's own outputs for the stored inputs.

All models are torchvision / torch.nn modules with *random* weights (no
downloads, nothing pretrained), exported with opset 17, a dynamic batch axis
(and a dynamic sequence axis for sequence models), batch 2 at export and in the
test data, 224x224 images (299x299 for inception_v3).

Random weights need care:
  * BatchNorm running statistics are set by 3 train-mode forward passes on
    random data under torch.no_grad() with momentum=None (cumulative average),
    then the model is put in eval mode.
  * Any model whose output RMS falls outside [1e-3, 1e3] (or is not finite) is
    REFUSED with an error; if that happens, fix the initialisation of that
    model rather than loosening the check (see e.g. vit_b_16's zero-initialised
    head, which is re-initialised below).

Everything is seeded (per model, independent of order), so outputs are
deterministic for a given torch/torchvision build.

--dynamic-hw exports the fully-convolutional models (deeplabv3_mobilenet_v3_large)
with dynamic `height` and `width` axes on the input and the output too.

--small selects the quick set used by CI:
    squeezenet1_1, mobilenet_v3_small, shufflenet_v2_x1_0, regnet_x_400mf
    (grouped convolutions), lstm, gru

Needs torch, torchvision and onnx (Debian's python3-torch 1.13,
python3-torchvision, python3-onnx); onnxruntime is not needed.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

OPSET = 17
BATCH = 2
SEQ = 16
RMS_MIN, RMS_MAX = 1e-3, 1e3
BN_PASSES = 3
BN_BATCH = 4
SEED = 1234

SMALL = ["squeezenet1_1", "mobilenet_v3_small", "shufflenet_v2_x1_0", "regnet_x_400mf", "lstm", "gru"]


class ModelSpec:
    def __init__(self, build, inputs, input_names, output_names, dynamic_axes, spatial_outputs=None):
        self.build = build                # () -> nn.Module
        self.inputs = inputs              # (batch) -> tuple of input tensors
        self.input_names = input_names
        self.output_names = output_names
        self.dynamic_axes = dynamic_axes
        # Fully-convolutional image models: the outputs whose dims 2 and 3
        # follow the input's height and width (None: not exportable with
        # --dynamic-hw).
        self.spatial_outputs = spatial_outputs

    def axes(self, dynamic_hw=False):
        """The dynamic axes to export with; with dynamic_hw also the input's
        and the spatial outputs' height and width."""
        if not dynamic_hw:
            return self.dynamic_axes
        if self.spatial_outputs is None:
            raise ValueError("--dynamic-hw is only for fully-convolutional image models "
                             f"({', '.join(n for n, s in MODELS.items() if s.spatial_outputs)})")
        axes = {k: dict(v) for k, v in self.dynamic_axes.items()}
        for name in self.input_names[:1] + list(self.spatial_outputs):
            axes.setdefault(name, {}).update({2: "height", 3: "width"})
        return axes


def _tv():
    import torchvision.models as m
    return m


def _image_spec(build, size=224, spatial_outputs=None):
    return ModelSpec(
        build,
        lambda n: (torch.randn(n, 3, size, size),),
        ["input"], ["output"],
        {"input": {0: "batch"}, "output": {0: "batch"}},
        spatial_outputs)


class _OutOnly(nn.Module):
    """Segmentation models return a dict; export only its 'out' tensor."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)["out"]


class _RNN(nn.Module):
    """LSTM/GRU exported as (output sequence, h_n)."""

    def __init__(self, cell):
        super().__init__()
        self.rnn = cell(input_size=64, hidden_size=128, num_layers=2, batch_first=True)

    def forward(self, x):
        out, h = self.rnn(x)
        if isinstance(h, tuple):   # LSTM: (h_n, c_n)
            h = h[0]
        return out, h


def _vit():
    model = _tv().vit_b_16(weights=None)
    # torchvision zero-initialises the classification head, which would give
    # an all-zero output; use a small random head instead.
    head = model.heads.head
    nn.init.normal_(head.weight, std=0.02)
    nn.init.zeros_(head.bias)
    return model


def _seq_spec(build, feat, out_names, extra_out_axes=None):
    axes = {"input": {0: "batch", 1: "seq"}, out_names[0]: {0: "batch", 1: "seq"}}
    if extra_out_axes:
        axes.update(extra_out_axes)
    return ModelSpec(
        build,
        lambda n: (torch.randn(n, SEQ, feat),),
        ["input"], out_names, axes)


def _transformer():
    layer = nn.TransformerEncoderLayer(d_model=768, nhead=12, dim_feedforward=3072,
                                       dropout=0.0, batch_first=True)
    model = nn.TransformerEncoder(layer, num_layers=12, enable_nested_tensor=False)
    # nn.TransformerEncoder deep-copies `layer`, so all 12 layers would start
    # with identical weights (and the ONNX exporter then de-duplicates them into
    # one set of initializers). Give every layer its own random weights.
    for enc in model.layers:
        enc.self_attn._reset_parameters()
        for lin in (enc.self_attn.out_proj, enc.linear1, enc.linear2):
            lin.reset_parameters()
    return model


MODELS = {
    "resnet18": _image_spec(lambda: _tv().resnet18(weights=None)),
    "resnet50": _image_spec(lambda: _tv().resnet50(weights=None)),
    "mobilenet_v2": _image_spec(lambda: _tv().mobilenet_v2(weights=None)),
    "mobilenet_v3_small": _image_spec(lambda: _tv().mobilenet_v3_small(weights=None)),
    "efficientnet_b0": _image_spec(lambda: _tv().efficientnet_b0(weights=None)),
    "squeezenet1_1": _image_spec(lambda: _tv().squeezenet1_1(weights=None)),
    "shufflenet_v2_x1_0": _image_spec(lambda: _tv().shufflenet_v2_x1_0(weights=None)),
    "densenet121": _image_spec(lambda: _tv().densenet121(weights=None)),
    "googlenet": _image_spec(lambda: _tv().googlenet(
        weights=None, aux_logits=False, init_weights=True)),
    "inception_v3": _image_spec(lambda: _tv().inception_v3(
        weights=None, aux_logits=False, init_weights=True), size=299),
    "convnext_tiny": _image_spec(lambda: _tv().convnext_tiny(weights=None)),
    "vit_b_16": _image_spec(_vit),
    "regnet_y_400mf": _image_spec(lambda: _tv().regnet_y_400mf(weights=None)),
    # grouped (not depthwise) convolutions: 32 groups of 4, groups of 16
    "resnext50_32x4d": _image_spec(lambda: _tv().resnext50_32x4d(weights=None)),
    "regnet_x_400mf": _image_spec(lambda: _tv().regnet_x_400mf(weights=None)),
    "deeplabv3_mobilenet_v3_large": _image_spec(lambda: _OutOnly(
        _tv().segmentation.deeplabv3_mobilenet_v3_large(
            weights=None, weights_backbone=None, aux_loss=False)),
        spatial_outputs=["output"]),
    "transformer_encoder": _seq_spec(_transformer, 768, ["output"]),
    "lstm": _seq_spec(lambda: _RNN(nn.LSTM), 64, ["output", "h_n"],
                      {"h_n": {1: "batch"}}),
    "gru": _seq_spec(lambda: _RNN(nn.GRU), 64, ["output", "h_n"],
                     {"h_n": {1: "batch"}}),
}


def _calibrate_batchnorm(model, spec):
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return 0
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None     # cumulative moving average over the passes
    model.train()
    with torch.no_grad():
        for _ in range(BN_PASSES):
            model(*spec.inputs(BN_BATCH))
    return len(bns)


def _rms(a):
    a = np.asarray(a, dtype=np.float64)
    return float(np.sqrt(np.mean(a * a))) if a.size else 0.0


def build_model(name):
    """The model as exported: seeded, BatchNorm calibrated, in eval mode.
    Other tools (tools/zoo/check_engine_dims.py) rebuild the exported
    weights with this."""
    spec = MODELS[name]
    torch.manual_seed(SEED)
    model = spec.build()
    _calibrate_batchnorm(model, spec)
    model.eval()
    return model


def export_one(name, out_dir, dynamic_hw=False):
    import onnx
    from onnx import numpy_helper

    spec = MODELS[name]
    axes = spec.axes(dynamic_hw)
    model = build_model(name)

    torch.manual_seed(SEED + 1)
    inputs = spec.inputs(BATCH)
    with torch.no_grad():
        outs = model(*inputs)
    if isinstance(outs, torch.Tensor):
        outs = (outs,)
    outs = [o.detach().numpy().astype(np.float32) for o in outs]
    if len(outs) != len(spec.output_names):
        raise RuntimeError(f"{name}: {len(outs)} outputs, expected {len(spec.output_names)}")

    rms = []
    for oname, o in zip(spec.output_names, outs):
        r = _rms(o)
        if not np.all(np.isfinite(o)) or not (RMS_MIN <= r <= RMS_MAX):
            raise RuntimeError(
                f"{name}: output '{oname}' RMS {r:.3g} (finite={bool(np.all(np.isfinite(o)))}) "
                f"is outside [{RMS_MIN:g}, {RMS_MAX:g}]; random-weight initialisation "
                f"gives degenerate data, fix the model's init instead of the check")
        rms.append(r)

    mdir = os.path.join(out_dir, name)
    tdir = os.path.join(mdir, "test_data_set_0")
    os.makedirs(tdir, exist_ok=True)
    path = os.path.join(mdir, "model.onnx")

    t0 = time.time()
    # Deliberately NOT under torch.no_grad(): with grad disabled, torch 1.13's
    # nn.TransformerEncoderLayer / nn.MultiheadAttention take their fused
    # "fast path" (aten::_transformer_encoder_layer_fwd,
    # aten::_native_multi_head_attention), which has no ONNX export.
    torch.onnx.export(
        model, tuple(inputs), path,
        input_names=spec.input_names, output_names=spec.output_names,
        dynamic_axes=axes, opset_version=OPSET,
        do_constant_folding=True)
    secs = time.time() - t0
    onnx.checker.check_model(path)

    for i, (iname, x) in enumerate(zip(spec.input_names, inputs)):
        t = numpy_helper.from_array(x.numpy().astype(np.float32), iname)
        with open(os.path.join(tdir, f"input_{i}.pb"), "wb") as f:
            f.write(t.SerializeToString())
    for i, (oname, o) in enumerate(zip(spec.output_names, outs)):
        t = numpy_helper.from_array(o, oname)
        with open(os.path.join(tdir, f"output_{i}.pb"), "wb") as f:
            f.write(t.SerializeToString())

    size = os.path.getsize(path)
    return secs, size, rms


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="output directory")
    ap.add_argument("--models", help="comma-separated model names (default: all)")
    ap.add_argument("--small", action="store_true", help="quick CI set: " + ",".join(SMALL))
    ap.add_argument("--list", action="store_true", help="list model names and exit")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--dynamic-hw", action="store_true",
                    help="also make the input's height and width dynamic (fully-convolutional "
                         "models only: deeplabv3_mobilenet_v3_large); the test data stay 224x224")
    args = ap.parse_args(argv)

    if args.list:
        for n in MODELS:
            print(n + ("  (small)" if n in SMALL else ""))
        return 0
    if not args.out:
        ap.error("--out is required")

    if args.models:
        names = [n.strip() for n in args.models.split(",") if n.strip()]
    elif args.small:
        names = list(SMALL)
    else:
        names = list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        ap.error(f"unknown model(s): {', '.join(unknown)}; see --list")
    if args.dynamic_hw:
        flat = [n for n in names if MODELS[n].spatial_outputs is None]
        if flat:
            ap.error(f"--dynamic-hw: {', '.join(flat)} not fully convolutional; "
                     f"pick from {', '.join(n for n in MODELS if MODELS[n].spatial_outputs)}")

    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    failed = []
    for name in names:
        try:
            secs, size, rms = export_one(name, args.out, args.dynamic_hw)
        except Exception as e:  # report and continue with the other models
            print(f"{name:30s} FAILED: {type(e).__name__}: {e}", flush=True)
            failed.append(name)
            continue
        rms_s = ",".join(f"{r:.4g}" for r in rms)
        print(f"{name:30s} export {secs:7.1f}s  size {size / 1e6:9.2f} MB  output RMS {rms_s}",
              flush=True)
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
