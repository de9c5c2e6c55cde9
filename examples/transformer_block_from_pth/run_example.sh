#!/usr/bin/env bash
# A transformer encoder block by hand from a real .pth matches PyTorch
# (relative L2 <= 1e-4).
set -eu
example="$1"
src="$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 "$src/make_reference.py" "$tmp"
"$example" "$tmp/block.pth" 4 --input "$tmp/x.npy" --output "$tmp/kiln.npy"
/usr/bin/python3 - "$tmp" <<'PY'
import sys
import numpy as np
d = sys.argv[1]
want, got = np.load(f"{d}/y.npy").astype(np.float64), np.load(f"{d}/kiln.npy").astype(np.float64)
assert got.shape == want.shape, (got.shape, want.shape)
rel = np.linalg.norm(got - want) / np.linalg.norm(want)
print(f"relative L2 error vs PyTorch {rel:.2e}")
assert rel <= 1e-4, rel
PY
echo "transformer_block_from_pth ok"
