#!/usr/bin/python3
"""`kiln inspect` against an independent count on the model zoo.

    /usr/bin/python3 tests/inspect_zoo_test.py KILN ZOO_DIR [ZOO_DIR...]

For every model of the first ZOO_DIR that exists (laid out by
tools/zoo/export.py: NAME/model.onnx, NAME/test_data_set_0/input_0.pb), at
the shape of its stored input: the total MACs of `kiln inspect --format json`
must be within 1% of tests/count_macs.py (fvcore/thop-style counting of the
PyTorch model), and every node must be counted. Also ResNet-50 at 1x3x224x224
must come to the well-known ~4.1 GMACs. Exits 77 (skipped) when no zoo
folder exists or python3-onnx / python3-torch are missing.
"""
import json
import os
import subprocess
import sys

SKIP = 77


def main():
    kiln, dirs = sys.argv[1], sys.argv[2:]
    zoo = next((d for d in dirs if os.path.isdir(d)), None)
    if zoo is None:
        print(f"skipped: no zoo in {dirs} (tools/zoo/export.py --out DIR)")
        return SKIP
    try:
        import onnx  # noqa: F401
        import onnx.numpy_helper  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        print(f"skipped: {e}")
        return SKIP
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import count_macs

    names = sorted(n for n in os.listdir(zoo)
                   if n in count_macs.export.MODELS and os.path.exists(os.path.join(zoo, n, "model.onnx")))
    if not names:
        print(f"skipped: no zoo models in {zoo}")
        return SKIP
    failed = []
    print(f"{'model':30} {'input':>16} {'kiln MACs':>16} {'independent':>16} {'diff':>8}")
    for name in names:
        model = os.path.join(zoo, name, "model.onnx")
        stored = []  # every stored input, in graph-input order
        for i in range(64):
            path = os.path.join(zoo, name, "test_data_set_0", f"input_{i}.pb")
            if not os.path.exists(path):
                break
            stored.append(onnx.numpy_helper.to_array(onnx.load_tensor(path)))
        graph = onnx.load(model, load_external_data=False).graph
        inits = {t.name for t in graph.initializer}
        names_in = [v.name for v in graph.input if v.name not in inits]
        dims = list(stored[0].shape)
        shape = "x".join(map(str, dims))
        shapes = ",".join(f"{n}:{'x'.join(map(str, a.shape)) or 'scalar'}" for n, a in zip(names_in, stored)
                          if a.ndim > 0)
        out = subprocess.run([kiln, "inspect", model, "--format", "json", "--shapes", shapes],
                             capture_output=True, text=True)
        if out.returncode != 0:
            failed.append(f"{name}: kiln inspect failed: {out.stderr.strip()}")
            continue
        totals = json.loads(out.stdout)["totals"]
        ref = count_macs.count_inputs(name, [count_macs.torch.from_numpy(a.copy()) for a in stored])
        diff = (totals["macs"] - ref) / ref
        print(f"{name:30} {shape:>16} {totals['macs']:>16,} {ref:>16,} {100 * diff:>7.3f}%")
        if abs(diff) > 0.01:
            failed.append(f"{name}: kiln {totals['macs']} MACs, independent {ref} ({100 * diff:.2f}%)")
        if totals["uncounted_nodes"]:
            failed.append(f"{name}: {totals['uncounted_nodes']} nodes not counted")
    if "resnet50" in names:
        out = subprocess.run([kiln, "inspect", os.path.join(zoo, "resnet50", "model.onnx"), "--format", "json",
                              "--shapes", "input:1x3x224x224"], capture_output=True, text=True, check=True)
        macs = json.loads(out.stdout)["totals"]["macs"]
        print(f"resnet50 at 1x3x224x224: {macs / 1e9:.3f} GMACs")
        if not 4.0e9 < macs < 4.2e9:
            failed.append(f"resnet50: {macs} MACs at 1x3x224x224, expected ~4.1e9")
    for f in failed:
        print("FAIL", f)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
