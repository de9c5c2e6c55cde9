#!/usr/bin/env bash
# `kiln weights`: the table and the JSON list ({name, dtype, shape, bytes},
# read back by Python's json module) for a torch.save checkpoint with every
# dtype, a safetensors and a .wts file written by
# tests/weights_make_checkpoints.py; a crafted pickle calling os.system, a
# missing file and a file of another kind exit 1 with the reason.
set -eu
kiln="$1"
src="$2"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! /usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null; then
  echo "skipped: /usr/bin/python3 has no torch (python3-torch)"
  exit 77
fi
/usr/bin/python3 "$src/tests/weights_make_checkpoints.py" "$tmp" >/dev/null
"$kiln" weights "$tmp/dtypes.pt" > "$tmp/dtypes.txt"
grep -q "^f_bfloat16 .* bfloat16 .* \[2x3\] .* 12$" "$tmp/dtypes.txt"
grep -q "^12 tensors, .* bytes (torch)$" "$tmp/dtypes.txt"
"$kiln" weights "$tmp/nested.pt" > "$tmp/nested.txt"
grep -q "^  epoch (int): 7$" "$tmp/nested.txt"
for f in dtypes.pt nested.pt resnet18.pt weights.safetensors weights.wts; do
  "$kiln" weights "$tmp/$f" --format json > "$tmp/$f.json"
done
/usr/bin/python3 - "$tmp" <<'PY'
import json, sys
d = sys.argv[1]
expected = json.load(open(f"{d}/expected.json"))
for f in ("dtypes.pt", "nested.pt", "resnet18.pt", "weights.safetensors", "weights.wts"):
    got = json.load(open(f"{d}/{f}.json"))
    want = expected[f]["tensors"]
    assert isinstance(got, list) and all(list(t) == ["name", "dtype", "shape", "bytes"] for t in got), got[:1]
    assert [(t["name"], t["dtype"], t["shape"], t["bytes"]) for t in got] == \
        [(t["name"], t["dtype"], t["shape"], t["nbytes"]) for t in want], f
dtypes = {t["dtype"] for t in json.load(open(f"{d}/dtypes.pt.json"))}
assert dtypes == {"float32", "float16", "bfloat16", "float64", "int64", "int32", "int16", "int8", "uint8",
                  "bool"}, dtypes
PY
# A pickle that would run os.system('echo pwned') under pickle.load.
/usr/bin/python3 - "$tmp/evil.pt" <<'PY'
import sys, zipfile
evil = b"\x80\x02cposix\nsystem\nX\x0a\x00\x00\x00echo pwned\x85R."
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("evil/data.pkl", evil)
PY
if "$kiln" weights "$tmp/evil.pt" > "$tmp/out" 2> "$tmp/err"; then echo "evil.pt loaded"; exit 1; fi
grep -q "refusing global 'posix.system' at byte 2" "$tmp/err"
grep -q "kiln never runs code from a checkpoint" "$tmp/err"
! grep -q pwned "$tmp/out"
if "$kiln" weights "$tmp/missing.pt" 2> "$tmp/err"; then echo "a missing file listed"; exit 1; fi
grep -q "missing.pt" "$tmp/err"
if "$kiln" weights "$src/models/digits/model.onnx" 2> "$tmp/err"; then echo "an ONNX file listed"; exit 1; fi
grep -q "not a PyTorch checkpoint" "$tmp/err"
if "$kiln" weights "$tmp/dtypes.pt" --format yaml 2> /dev/null; then echo "--format yaml accepted"; exit 1; fi
echo "weights_cli: ok"
