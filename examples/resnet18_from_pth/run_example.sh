#!/usr/bin/env bash
# ResNet-18 by hand from a real .pth matches PyTorch (relative L2 <= 1e-4),
# and the engine the example builds runs through `kiln run` with the same
# result; a checkpoint that is not ResNet-18 fails naming the tensor.
set -eu
example="$1"
kiln="$2"
src="$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 "$src/make_reference.py" "$tmp"
"$example" "$tmp/resnet18.pth" --input "$tmp/image.npy" --output "$tmp/kiln.npy" --engine "$tmp/resnet18.kiln"
"$kiln" run "$tmp/resnet18.kiln" --input "image=$tmp/image.npy" --output-dir "$tmp/engine_out" > /dev/null
/usr/bin/python3 - "$tmp" <<'PY'
import sys
import numpy as np
d = sys.argv[1]
want = np.load(f"{d}/logits.npy").astype(np.float64)
for got_file in ("kiln.npy", "engine_out/logits.npy"):
    got = np.load(f"{d}/{got_file}").astype(np.float64)
    assert got.shape == want.shape, (got_file, got.shape, want.shape)
    rel = np.linalg.norm(got - want) / np.linalg.norm(want)
    print(f"{got_file}: relative L2 error vs PyTorch {rel:.2e}")
    assert rel <= 1e-4, rel
PY
/usr/bin/python3 -c "
import torch, sys
torch.save({'conv1.weight': torch.zeros(64, 3, 7, 7)}, sys.argv[1])" "$tmp/partial.pth"
rc=0
"$example" "$tmp/partial.pth" 2> "$tmp/err.txt" || rc=$?
[ "$rc" = 1 ] && grep -q "no tensor 'bn1\." "$tmp/err.txt" || { echo "partial checkpoint: exit $rc"; cat "$tmp/err.txt"; exit 1; }
echo "resnet18_from_pth ok"
