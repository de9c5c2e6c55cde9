#!/usr/bin/env python3
"""Export a model zoo to ONNX, laid out like ONNX backend tests.

Usage:
    /usr/bin/python3 tools/zoo/export.py --out DIR [--models a,b,c] [--small] [--list]
                                         [--dynamic-hw]

For each model this writes
    DIR/<name>/model.onnx
    DIR/<name>/test_data_set_0/input_0.pb, output_0.pb[, output_1.pb ...]
(onnx.TensorProto via onnx.numpy_helper.from_array); the expected outputs are
PyTorch's own outputs for the stored inputs. Inputs keep their dtype: floating
point as float32, integer inputs (token ids, timesteps) as int64.

All models are torchvision / torch.nn modules (the zoo's own ones in
tools/zoo/corpus_models.py) with *random* weights (no downloads, nothing
pretrained), exported with opset 17, a dynamic batch axis (and a dynamic
sequence axis for sequence models), batch 2 at export and in the test data,
224x224 images unless a model says otherwise (299x299 for inception_v3).
The models after the first 19 (CORPUS) are the corpus of issue 16; see
tools/zoo/README.md for what each one exercises.

Random weights need care:
  * BatchNorm running statistics are set by 3 train-mode forward passes on
    random data (batch 4; batch 2 for a few heavy models, ModelSpec.bn_batch)
    under torch.no_grad() with momentum=None (cumulative average), then the
    model is put in eval mode.
  * Any model whose output RMS falls outside [1e-3, 1e3] (or is not finite) is
    REFUSED with an error; if that happens, fix the initialisation of that
    model rather than loosening the check (see e.g. vit_b_16's zero-initialised
    head, which is re-initialised below).

Everything is seeded (per model, independent of order), so outputs are
deterministic for a given torch/torchvision build.

--dynamic-hw exports the fully-convolutional models (deeplabv3_mobilenet_v3_large,
fcn_resnet50, deeplabv3_resnet50, lraspp_mobilenet_v3_large, unet_instancenorm,
espcn_superres) with dynamic `height` and `width` axes on the input and the
output too.

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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus_models as cm  # noqa: E402  (the zoo's own nn.Modules)

OPSET = 17
BATCH = 2
SEQ = 16
RMS_MIN, RMS_MAX = 1e-3, 1e3
BN_PASSES = 3
BN_BATCH = 4
SEED = 1234

SMALL = ["squeezenet1_1", "mobilenet_v3_small", "shufflenet_v2_x1_0", "regnet_x_400mf", "lstm", "gru"]


class ModelSpec:
    def __init__(self, build, inputs, input_names, output_names, dynamic_axes, spatial_outputs=None,
                 bn_batch=BN_BATCH):
        self.build = build                # () -> nn.Module
        self.inputs = inputs              # (batch) -> tuple of input tensors
        self.input_names = input_names
        self.output_names = output_names
        self.dynamic_axes = dynamic_axes
        # Fully-convolutional image models: the outputs whose dims 2 and 3
        # follow the input's height and width (None: not exportable with
        # --dynamic-hw).
        self.spatial_outputs = spatial_outputs
        # Batch of the BatchNorm calibration passes (smaller for the models
        # whose PyTorch forward pass dominates the export time).
        self.bn_batch = bn_batch

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


def _image_spec(build, size=224, spatial_outputs=None, bn_batch=BN_BATCH):
    return ModelSpec(
        build,
        lambda n: (torch.randn(n, 3, size, size),),
        ["input"], ["output"],
        {"input": {0: "batch"}, "output": {0: "batch"}},
        spatial_outputs, bn_batch)


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


def _spec(build, inputs, input_names, output_names, axes, spatial_outputs=None):
    return ModelSpec(build, inputs, input_names, output_names, axes, spatial_outputs)


def _batch_axes(input_names, output_names):
    """Only the batch axis (dim 0) dynamic, on every input and output."""
    return {n: {0: "batch"} for n in list(input_names) + list(output_names)}


def _video_spec(build, frames=8, size=112, bn_batch=BN_BATCH):
    return ModelSpec(
        build,
        lambda n: (torch.randn(n, 3, frames, size, size),),
        ["input"], ["output"],
        {"input": {0: "batch"}, "output": {0: "batch"}}, None, bn_batch)


def _seg(builder):
    return lambda: _OutOnly(builder(weights=None, weights_backbone=None, aux_loss=False))


def _s3d():
    model = _tv().video.s3d(weights=None)
    # s3d ends in AvgPool3d((2, 7, 7)), which needs clips of >= 16 frames at
    # 224x224; pool globally instead (identical at that size) so that the
    # zoo's small 8x112x112 clip fits.
    model.avgpool = nn.AdaptiveAvgPool3d(1)
    return model


def _gpt_inputs(n, seq=16, past=32, layers=4, heads=8, hd=32, vocab=4096):
    return (torch.randint(0, vocab, (n, seq), dtype=torch.int64),
            torch.randn(n, layers, heads, past, hd),
            torch.randn(n, layers, heads, past, hd))


# The corpus added for issue 16 ("speed that holds on models nobody tuned
# for"): other widths and families of torchvision's classifiers, segmentation,
# detection heads, video, image-to-image, sequence and point-cloud models.
CORPUS = {
    # classification, torchvision
    "resnet34": _image_spec(lambda: _tv().resnet34(weights=None)),
    "wide_resnet50_2": _image_spec(lambda: _tv().wide_resnet50_2(weights=None), bn_batch=2),
    "alexnet": _image_spec(lambda: _tv().alexnet(weights=None)),
    "vgg11_bn": _image_spec(lambda: _tv().vgg11_bn(weights=None)),
    "mobilenet_v3_large": _image_spec(lambda: _tv().mobilenet_v3_large(weights=None)),
    "mnasnet0_5": _image_spec(lambda: _tv().mnasnet0_5(weights=None)),
    "mnasnet1_0": _image_spec(lambda: _tv().mnasnet1_0(weights=None)),
    "shufflenet_v2_x0_5": _image_spec(lambda: _tv().shufflenet_v2_x0_5(weights=None)),
    "shufflenet_v2_x2_0": _image_spec(lambda: _tv().shufflenet_v2_x2_0(weights=None)),
    # grouped convs of 24 channels
    "regnet_x_1_6gf": _image_spec(lambda: _tv().regnet_x_1_6gf(weights=None)),
    "regnet_y_800mf": _image_spec(lambda: _tv().regnet_y_800mf(weights=None)),
    "efficientnet_v2_s": _image_spec(lambda: _tv().efficientnet_v2_s(weights=None)),
    "swin_t": _image_spec(lambda: _tv().swin_t(weights=None)),
    "maxvit_t": _image_spec(lambda: _tv().maxvit_t(weights=None), bn_batch=2),
    "hardswish_cnn": _image_spec(cm.HardSwishCNN),
    "mlp_mixer": _image_spec(cm.MLPMixer),
    "swin_small_pad": _image_spec(cm.SwinSmall, size=200),
    # segmentation (only the `out` tensor)
    "fcn_resnet50": _image_spec(_seg(lambda **kw: _tv().segmentation.fcn_resnet50(**kw)),
                                spatial_outputs=["output"], bn_batch=2),
    "deeplabv3_resnet50": _image_spec(_seg(lambda **kw: _tv().segmentation.deeplabv3_resnet50(**kw)),
                                      spatial_outputs=["output"], bn_batch=2),
    "lraspp_mobilenet_v3_large": _image_spec(
        lambda: _OutOnly(_tv().segmentation.lraspp_mobilenet_v3_large(
            weights=None, weights_backbone=None)),
        spatial_outputs=["output"]),
    # detection: backbone + heads, no anchors, box decoding or NMS
    "ssdlite320_heads": _spec(
        cm.ssdlite_heads, lambda n: (torch.randn(n, 3, 320, 320),),
        ["input"], ["bbox_regression", "cls_logits"],
        _batch_axes(["input"], ["bbox_regression", "cls_logits"])),
    "retinanet_r18_fpn_heads": _spec(
        cm.retinanet_heads, lambda n: (torch.randn(n, 3, 320, 320),),
        ["input"], ["cls_logits", "bbox_regression"],
        _batch_axes(["input"], ["cls_logits", "bbox_regression"])),
    "fcos_r18_fpn_heads": _spec(
        cm.fcos_heads, lambda n: (torch.randn(n, 3, 320, 320),),
        ["input"], ["cls_logits", "bbox_regression", "bbox_ctrness"],
        _batch_axes(["input"], ["cls_logits", "bbox_regression", "bbox_ctrness"])),
    "keypoint_rcnn_head": _spec(
        cm.KeypointHead, lambda n: (torch.randn(n, 256, 14, 14),),
        ["rois"], ["heatmaps"], {"rois": {0: "rois"}, "heatmaps": {0: "rois"}}),
    # video: [N,3,T,H,W] clips of 8 frames at 112x112
    "r2plus1d_18": _video_spec(lambda: _tv().video.r2plus1d_18(weights=None), bn_batch=2),
    "mc3_18": _video_spec(lambda: _tv().video.mc3_18(weights=None)),
    "s3d": _video_spec(_s3d),
    # image to image
    "unet_instancenorm": _image_spec(cm.UNetSmall, size=256, spatial_outputs=["output"]),
    "dcgan_generator": _spec(
        cm.DCGANGenerator, lambda n: (torch.randn(n, 100, 1, 1),),
        ["latent"], ["image"], _batch_axes(["latent"], ["image"])),
    "conv_autoencoder": _spec(
        cm.ConvAutoencoder, lambda n: (torch.rand(n, 3, 96, 96),),
        ["input"], ["reconstruction", "code"],
        _batch_axes(["input"], ["reconstruction", "code"])),
    "diffusion_unet": _spec(
        cm.DiffusionUNet,
        lambda n: (torch.randn(n, 4, 32, 32), torch.randint(0, 1000, (n,), dtype=torch.int64)),
        ["sample", "timestep"], ["noise_pred"],
        _batch_axes(["sample", "timestep"], ["noise_pred"])),
    "espcn_superres": _spec(
        cm.ESPCN, lambda n: (torch.rand(n, 1, 224, 224),),
        ["input"], ["output"], _batch_axes(["input"], ["output"]), spatial_outputs=["output"]),
    # sequences, audio, text
    "audio_crnn": _spec(
        cm.AudioCRNN, lambda n: (torch.randn(n, 64, 100),),
        ["mel"], ["logits"], {"mel": {0: "batch", 2: "time"}, "logits": {0: "batch"}}),
    "conformer": _spec(
        cm.Conformer, lambda n: (torch.randn(n, 64, 80),),
        ["input"], ["output"], {"input": {0: "batch", 1: "seq"}, "output": {0: "batch", 1: "seq"}}),
    "gpt_kv_cache": _spec(
        cm.GPTWithCache, _gpt_inputs,
        ["input_ids", "past_keys", "past_values"], ["logits", "present_keys", "present_values"],
        {"input_ids": {0: "batch", 1: "seq"},
         "past_keys": {0: "batch", 3: "past"}, "past_values": {0: "batch", 3: "past"},
         "logits": {0: "batch", 1: "seq"},
         "present_keys": {0: "batch", 3: "total"}, "present_values": {0: "batch", 3: "total"}}),
    "text_cnn": _spec(
        cm.TextCNN, lambda n: (torch.randint(1, 8000, (n, 64), dtype=torch.int64),),
        ["input_ids"], ["logits"], {"input_ids": {0: "batch", 1: "seq"}, "logits": {0: "batch"}}),
    # point clouds: Gather, GatherElements, TopK, ScatterND, ScatterElements
    "pointnet_knn": _spec(
        cm.PointNetKNN, lambda n: (torch.randn(n, 512, 3),),
        ["points"], ["logits", "point_logits"],
        {"points": {0: "batch", 1: "points"}, "logits": {0: "batch"},
         "point_logits": {0: "batch", 1: "points"}}),
}
for _name in CORPUS:
    assert _name not in MODELS, _name
MODELS.update(CORPUS)


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
            model(*spec.inputs(spec.bn_batch))
    return len(bns)


def _stored(t):
    """A tensor as written to the test data: floating point as float32,
    integer and bool tensors (token ids, indices, timesteps) in their own
    dtype."""
    a = t.detach().numpy()
    return a.astype(np.float32) if np.issubdtype(a.dtype, np.floating) else a


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
    outs = [_stored(o) for o in outs]
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
        t = numpy_helper.from_array(_stored(x), iname)
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
                         "models only: " + ", ".join(n for n in MODELS if MODELS[n].spatial_outputs)
                         + "); the test data keep their size")
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
        t0 = time.time()
        try:
            secs, size, rms = export_one(name, args.out, args.dynamic_hw)
        except Exception as e:  # report and continue with the other models
            print(f"{name:30s} FAILED: {type(e).__name__}: {e}", flush=True)
            failed.append(name)
            continue
        rms_s = ",".join(f"{r:.4g}" for r in rms)
        print(f"{name:30s} export {secs:7.1f}s  total {time.time() - t0:6.1f}s  "
              f"size {size / 1e6:9.2f} MB  output RMS {rms_s}", flush=True)
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
