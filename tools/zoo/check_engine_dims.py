#!/usr/bin/python3
"""Engines with dynamic dims beyond batch, checked against PyTorch.

    /usr/bin/python3 tools/zoo/check_engine_dims.py --kiln build/kiln --models lstm,gru
        [--zoo DIR] [--work DIR] [--threads N] [--quick] [--keep]

For each model: rebuild the PyTorch module exactly as tools/zoo/export.py
does (its specs and seeds, so the weights are the exported ones), take its
ONNX export (DIR/<name>/model.onnx of --zoo when its inputs have the dynamic
axes the profile needs, else a fresh export into --work), `kiln build` an
engine with one profile over batch and sequence length (image height and
width for deeplabv3), then for every shape of the model's list `kiln run`
the engine on a random input written as .npy and compare each output with
PyTorch's on the same input: relative L2 error ||kiln - torch|| / ||torch||
at most 1e-4 (the zoo's tolerance). One process per shape starts from a
fresh load each time; so the same inputs and PyTorch's outputs are also laid
out as one ONNX-backend-style test (test_data_set_000, 001, ... in the order
of the list, the engine as its model.onnx: kiln tells an engine by its magic)
and run by `kiln conformance --max-rel-l2 1e-4`: one session through every
shape in turn, each twice (the second run in the memory plan), as a server
would see them. Finally a shape just outside the profile must make `kiln run`
exit 1 naming the input and the allowed range.

Prints one line per shape, and per model the worst error and the time
spent; exits 1 if any check fails. The profiles and shapes are below
(CHECKS); tools/zoo/README.md explains the choices and has measured results.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export  # noqa: E402  (tools/zoo/export.py: the model definitions and seeds)

MAX_REL_L2 = 1e-4
INPUT_SEED = 4321


class Check:
    def __init__(self, lo, opt, hi, shapes, quick, outside, dynamic_hw=False):
        self.min, self.opt, self.max = lo, opt, hi   # profile of the input "input"
        self.shapes = shapes                          # shapes run and compared
        self.quick = quick                            # a subset for --quick
        self.outside = outside                        # must be refused
        self.dynamic_hw = dynamic_hw                  # export with dynamic height/width


def _rnn_check(feat=64, max_batch=8, max_seq=256):
    # Every sequence length 1..64, the batch cycling through 1..8 so that each
    # batch size meets many lengths; then longer ones up to the max, and the
    # profile's corners.
    shapes = [(1 + (s - 1) % max_batch, s, feat) for s in range(1, 65)]
    shapes += [(3, 100, feat), (5, 127, feat), (2, 128, feat), (7, 129, feat), (4, 200, feat),
               (6, 255, feat), (1, max_seq, feat), (max_batch, max_seq, feat)]
    quick = [(1, 1, feat), (2, 2, feat), (3, 17, feat), (8, 64, feat), (max_batch, max_seq, feat)]
    return Check((1, 1, feat), (4, 64, feat), (max_batch, max_seq, feat), shapes, quick,
                 [(1, max_seq + 1, feat)])


def _transformer_check():
    # A spread of lengths (powers of two and their neighbours, odd ones) with
    # every batch size; long sequences mostly at batch 1, since PyTorch here
    # (Debian's build, reference BLAS) needs about 0.25 s per token.
    batch_seq = [(4, 1), (3, 2), (2, 3), (1, 5), (4, 7), (3, 8), (2, 9), (1, 15), (4, 16), (3, 17),
                 (2, 31), (1, 32), (2, 33), (1, 48), (1, 63), (2, 64), (1, 65), (1, 96), (1, 100),
                 (1, 127), (1, 128), (4, 128)]
    shapes = [(n, s, 768) for n, s in batch_seq]
    quick = [(1, 1, 768), (2, 33, 768), (1, 128, 768)]
    return Check((1, 1, 768), (2, 64, 768), (4, 128, 768), shapes, quick, [(1, 129, 768)])


def _deeplab_check():
    sizes = [(1, 160, 160), (1, 224, 224), (2, 320, 320), (1, 161, 223), (1, 223, 161),
             (2, 200, 317), (1, 319, 177), (1, 257, 255), (2, 160, 320), (1, 241, 241)]
    shapes = [(n, 3, h, w) for n, h, w in sizes]
    quick = [(1, 3, 161, 223), (2, 3, 320, 320)]
    return Check((1, 3, 160, 160), (1, 3, 224, 224), (2, 3, 320, 320), shapes, quick,
                 [(1, 3, 321, 224), (1, 3, 159, 224)], dynamic_hw=True)


CHECKS = {
    "lstm": _rnn_check(),
    "gru": _rnn_check(),
    "transformer_encoder": _transformer_check(),
    "deeplabv3_mobilenet_v3_large": _deeplab_check(),
}


def dims(shape):
    return "x".join(str(d) for d in shape)


def rel_l2(got, want):
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    den = np.sqrt(np.sum(want * want))
    num = np.sqrt(np.sum((got - want) ** 2))
    return float(num / den) if den > 0 else float(num)


def _onnx_input_dims(path):
    import onnx
    m = onnx.load(path, load_external_data=False)
    first = m.graph.input[0]
    return [d.dim_param or d.dim_value for d in first.type.tensor_type.shape.dim]


def _fits_profile(path, check):
    """Whether the ONNX file's input leaves symbolic every dim the profile varies."""
    declared = _onnx_input_dims(path)
    if len(declared) != len(check.min):
        return False
    for d, (lo, hi) in enumerate(zip(check.min, check.max)):
        if lo != hi and not isinstance(declared[d], str):
            return False
    return True


def _stored_output_matches(model_dir, model):
    """Whether the rebuilt module gives the stored test data's outputs, i.e.
    whether the ONNX file holds this module's weights."""
    from onnx import numpy_helper, TensorProto
    tdir = os.path.join(model_dir, "test_data_set_0")

    def read(name):
        t = TensorProto()
        with open(os.path.join(tdir, name), "rb") as f:
            t.ParseFromString(f.read())
        return numpy_helper.to_array(t)

    x = np.array(read("input_0.pb"))
    with torch.no_grad():
        outs = model(torch.from_numpy(x))
    if isinstance(outs, torch.Tensor):
        outs = (outs,)
    for k, o in enumerate(outs):
        e = rel_l2(o.numpy(), read(f"output_{k}.pb"))
        if e > 1e-5:
            return f"output {k} of the stored test data differs from the rebuilt module's (relative L2 {e:.3g})"
    return ""


def find_onnx(name, check, zoo, work, log):
    """The ONNX export to build from: the zoo's if it has the dynamic axes the
    profile needs (and the rebuilt module's weights), else a fresh export into
    WORK/onnx (reused by later runs when it fits)."""
    model = export.build_model(name)
    for base in ([zoo] if zoo else []) + [os.path.join(work, "onnx")]:
        path = os.path.join(base, name, "model.onnx")
        if not os.path.exists(path) or not _fits_profile(path, check):
            continue
        why = _stored_output_matches(os.path.dirname(path), model)
        if why:
            log(f"  not using {path}: {why}")
            continue
        return path, model
    out = os.path.join(work, "onnx")
    log(f"  exporting {name}{' (dynamic height/width)' if check.dynamic_hw else ''} into {out}")
    export.export_one(name, out, dynamic_hw=check.dynamic_hw)
    return os.path.join(out, name, "model.onnx"), model


def kiln_build(kiln, onnx_path, engine, check, threads):
    cmd = [kiln, "build", onnx_path, "-o", engine,
           "--min-shapes", f"input:{dims(check.min)}",
           "--opt-shapes", f"input:{dims(check.opt)}",
           "--max-shapes", f"input:{dims(check.max)}"]
    if threads:
        cmd += ["--threads", str(threads)]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"kiln build failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr}{r.stdout}")
    return r.stdout


def kiln_run(kiln, engine, x_path, out_dir, threads):
    cmd = [kiln, "run", engine, "-i", f"input={x_path}", "-o", out_dir]
    if threads:
        cmd += ["--threads", str(threads)]
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def save_pb(path, array, name):
    from onnx import numpy_helper
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(np.ascontiguousarray(array), name).SerializeToString())


def kiln_session_check(kiln, session_dir, threads):
    """Every shape's test data in one session: `kiln conformance` on the
    folder (its model.onnx is the engine). Returns "" or what failed."""
    cmd = [kiln, "conformance", session_dir, "--max-rel-l2", str(MAX_REL_L2), "--timeout", "3600"]
    if threads:
        cmd += ["--threads", str(threads)]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode == 0:
        return ""
    return f"kiln conformance exited {r.returncode}: {(r.stdout + r.stderr).strip()}"


def check_model(name, args, log):
    check = CHECKS[name]
    spec = export.MODELS[name]
    shapes = check.quick if args.quick else check.shapes
    work = os.path.join(args.work, name)
    os.makedirs(work, exist_ok=True)
    t_start = time.time()
    failures = []

    onnx_path, model = find_onnx(name, check, args.zoo, args.work, log)
    log(f"  onnx    {onnx_path}")
    engine = os.path.join(work, "model.kiln")
    t0 = time.time()
    kiln_build(args.kiln, onnx_path, engine, check, args.threads)
    build_s = time.time() - t0
    log(f"  engine  {engine} built in {build_s:.1f} s; profile input:{dims(check.min)}..{dims(check.max)} "
        f"(opt {dims(check.opt)})")

    worst, worst_at = 0.0, None
    kiln_s = torch_s = 0.0
    x_path = os.path.join(work, "input.npy")
    out_dir = os.path.join(work, "out")
    session_dir = os.path.join(work, "session")
    shutil.rmtree(session_dir, ignore_errors=True)
    os.makedirs(session_dir)
    os.symlink(os.path.abspath(engine), os.path.join(session_dir, "model.onnx"))
    for i, shape in enumerate(shapes):
        x = np.random.default_rng(INPUT_SEED + i).standard_normal(shape, dtype=np.float32)
        np.save(x_path, x)
        shutil.rmtree(out_dir, ignore_errors=True)
        t0 = time.time()
        r = kiln_run(args.kiln, engine, x_path, out_dir, args.threads)
        kiln_s += time.time() - t0
        if r.returncode != 0:
            failures.append(f"{dims(shape)}: kiln run exited {r.returncode}: {r.stderr.strip()}")
            log(f"  {dims(shape):>14s}  FAIL kiln run exited {r.returncode}: {r.stderr.strip()}")
            continue
        t0 = time.time()
        with torch.no_grad():
            want = model(torch.from_numpy(x))
        torch_s += time.time() - t0
        if isinstance(want, torch.Tensor):
            want = (want,)
        data_set = os.path.join(session_dir, f"test_data_set_{i:03d}")
        os.makedirs(data_set)
        save_pb(os.path.join(data_set, "input_0.pb"), x, "input")
        for k, (oname, w) in enumerate(zip(spec.output_names, want)):
            save_pb(os.path.join(data_set, f"output_{k}.pb"), w.numpy(), oname)
        errs = []
        for oname, w in zip(spec.output_names, want):
            got = np.load(os.path.join(out_dir, oname + ".npy"))
            w = w.numpy()
            if got.shape != w.shape:
                errs.append((oname, float("inf"), f"shape {got.shape}, PyTorch {w.shape}"))
                continue
            errs.append((oname, rel_l2(got, w), ""))
        bad = [e for e in errs if not e[1] <= MAX_REL_L2]
        for oname, e, _ in errs:
            if e > worst or worst_at is None:
                worst, worst_at = e, f"{oname} at {dims(shape)}"
        text = "  ".join(f"{o} {e:.2e}{' ' + why if why else ''}" for o, e, why in errs)
        if bad:
            failures.append(f"{dims(shape)}: {text}")
        if args.verbose or bad:
            log(f"  {dims(shape):>14s}  {'FAIL' if bad else 'ok  '} {text}")

    t0 = time.time()
    why = kiln_session_check(args.kiln, session_dir, args.threads)
    session_s = time.time() - t0
    if why:
        failures.append(f"one session through all shapes: {why}")
    log(f"  one session through all {len(shapes)} shapes (kiln conformance): "
        f"{'FAIL' if why else 'ok'} in {session_s:.1f} s")

    for shape in check.outside:
        x = np.zeros(shape, dtype=np.float32)
        np.save(x_path, x)
        r = kiln_run(args.kiln, engine, x_path, out_dir, args.threads)
        allowed = f"input:{dims(check.min)}..{dims(check.max)}"
        if r.returncode != 1 or "input:" + dims(shape) not in r.stderr or allowed not in r.stderr:
            failures.append(f"outside the profile, {dims(shape)}: kiln run exited {r.returncode}, expected 1 "
                            f"with an error naming input:{dims(shape)} and {allowed}; stderr: {r.stderr.strip()}")
        else:
            log(f"  {dims(shape):>14s}  refused as expected: {' '.join(r.stderr.split())}")

    total = time.time() - t_start
    log(f"  {name}: {len(shapes)} shapes, worst relative L2 {worst:.2e} ({worst_at}); "
        f"build {build_s:.1f} s, kiln run {kiln_s:.1f} s ({kiln_s / max(len(shapes), 1) * 1e3:.0f} ms/shape), "
        f"PyTorch {torch_s:.1f} s, total {total:.1f} s")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return failures


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kiln", required=True, help="the kiln binary (build/kiln)")
    ap.add_argument("--models", default="lstm,gru", help=f"comma-separated, of: {', '.join(CHECKS)}")
    ap.add_argument("--zoo", help="exported zoo to take ONNX files from (tools/zoo/export.py --out)")
    ap.add_argument("--work", help="folder for exports, engines and .npy files (default: a temporary one)")
    ap.add_argument("--threads", type=int, default=0, help="kiln threads (default: kiln's, the physical cores)")
    ap.add_argument("--torch-threads", type=int, default=1, help="PyTorch threads (default 1)")
    ap.add_argument("--quick", action="store_true", help="only a few shapes per model")
    ap.add_argument("--keep", action="store_true", help="keep the engines and last input/outputs in --work")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every shape's errors")
    args = ap.parse_args(argv)

    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        ap.error(f"no check for {', '.join(unknown)}; have {', '.join(CHECKS)}")
    torch.set_num_threads(args.torch_threads)
    tmp = None
    if not args.work:
        tmp = tempfile.mkdtemp(prefix="kiln_engine_dims_")
        args.work = tmp

    def log(msg):
        print(msg, flush=True)

    failed = []
    try:
        for name in names:
            log(f"{name}")
            try:
                failures = check_model(name, args, log)
            except Exception as e:  # report and go on with the other models
                failures = [f"{type(e).__name__}: {e}"]
            for f in failures:
                log(f"  FAILED {name} {f}")
            if failures:
                failed.append(name)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
