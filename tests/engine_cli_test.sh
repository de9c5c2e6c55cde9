#!/usr/bin/env bash
# kiln build and engines through the CLI, on the digits model (symbolic
# batch): a profile build runs like the ONNX model at every batch inside it,
# refuses one outside, loads with kernels capped below the build's (one
# warning, same outputs), shows up in inspect, and bad flags exit 1.
set -u
kiln="$1"
src="$2"
model="$src/models/digits/model.onnx"
data="$src/models/digits/test_data_set_0/input_0.pb"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
die() { echo "FAIL $*"; fail=1; }
py=/usr/bin/python3

"$kiln" build --help >/dev/null || die "build --help"
"$kiln" build "$model" -o "$tmp/d.kiln" --min-shapes image:1x1x8x8 --opt-shapes image:4x1x8x8 \
  --max-shapes image:16x1x8x8 >"$tmp/build.txt" || die "build: $(cat "$tmp/build.txt")"
grep -q "profile 0" "$tmp/build.txt" || die "build output has no profile line"

# The engine and the ONNX model agree at the test data's batch and at others.
same() {  # same DIR_A DIR_B
  $py - "$1" "$2" <<'EOF' || return 1
import sys, numpy as np, glob, os
for f in glob.glob(os.path.join(sys.argv[1], "*.npy")):
    a, b = np.load(f), np.load(os.path.join(sys.argv[2], os.path.basename(f)))
    assert a.shape == b.shape, (f, a.shape, b.shape)
    err = np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)
    assert err <= 1e-6, (f, err)
EOF
}
"$kiln" run "$model" -i "image=$data" -o "$tmp/onnx" >/dev/null || die "run onnx"
"$kiln" run "$tmp/d.kiln" -i "image=$data" -o "$tmp/engine" >/dev/null || die "run engine"
same "$tmp/engine" "$tmp/onnx" || die "engine outputs differ from the ONNX model's"
for b in 1 3 4 16; do
  "$kiln" run "$model" --shapes "image:${b}x1x8x8" --seed 5 -o "$tmp/onnx$b" >/dev/null || die "run onnx batch $b"
  "$kiln" run "$tmp/d.kiln" --shapes "image:${b}x1x8x8" --seed 5 -o "$tmp/engine$b" >/dev/null || die "run engine batch $b"
  same "$tmp/engine$b" "$tmp/onnx$b" || die "batch $b: engine outputs differ"
done

# Outside the profile: exit 1 naming the input, the shape and the range.
out=$("$kiln" run "$tmp/d.kiln" --shapes image:17x1x8x8 2>&1)
[ $? = 1 ] || die "batch 17 did not exit 1"
grep -q "image:17x1x8x8" <<<"$out" && grep -q "image:1x1x8x8..16x1x8x8" <<<"$out" ||
  die "batch 17: message lacks the shape or the range: $out"

# Kernels capped below the build's ISA: one warning line, same outputs.
if grep -q avx2 /proc/cpuinfo; then
  KILN_CPU_ISA=scalar "$kiln" run "$tmp/d.kiln" -i "image=$data" -o "$tmp/scalar" >"$tmp/scalar.txt" 2>&1 ||
    die "scalar run: $(cat "$tmp/scalar.txt")"
  [ "$(grep -c "warning" "$tmp/scalar.txt")" = 1 ] || die "scalar run: expected one warning line: $(cat "$tmp/scalar.txt")"
  same "$tmp/scalar" "$tmp/onnx" || die "scalar run: outputs differ"
fi

# inspect: profiles and kernels, as a table and as JSON.
"$kiln" inspect "$tmp/d.kiln" >"$tmp/inspect.txt" || die "inspect"
grep -q "profile 0" "$tmp/inspect.txt" && grep -q "BlockedConv" "$tmp/inspect.txt" || die "inspect table"
"$kiln" inspect "$tmp/d.kiln" --format json | $py -c "
import json, sys
j = json.load(sys.stdin)
assert j['format_version'] == 1 and j['profiles'][0]['inputs']['image']['max'] == [16, 1, 8, 8], j['profiles']
assert any(n.get('packed') for n in j['nodes']) and {s['name'] for s in j['sections']} == {'meta', 'graph', 'weights'}
" || die "inspect json"

# bench: an engine like a model, and a sweep over its profile.
"$kiln" bench "$tmp/d.kiln" --shapes-sweep image:1x1x8x8,16x1x8x8 -n 3 --warmup 1 --json | $py -c "
import json, sys
j = json.load(sys.stdin)
assert [e['batch'] for e in j['sweep']] == [1, 16], j['sweep']
" || die "bench sweep on an engine"

# A static build; bad flags and files.
"$kiln" build "$model" -o "$tmp/s.kiln" --shapes image:10x1x8x8 >/dev/null || die "static build"
"$kiln" run "$tmp/s.kiln" -i "image=$data" -o "$tmp/static" >/dev/null || die "run static engine"
same "$tmp/static" "$tmp/onnx" || die "static engine outputs differ"
bad() {  # bad NAME PHRASE CMD...
  local name="$1" phrase="$2"
  shift 2
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  [ "$rc" = 1 ] || die "$name: exit code $rc, expected 1"
  grep -q "^kiln: error: .*$phrase" <<<"$out" || die "$name: no 'kiln: error: ...$phrase' line: $out"
}
bad "dynamic without a profile" "dynamic dims" "$kiln" build "$model" -o "$tmp/x.kiln"
bad "min without max" "max" "$kiln" build "$model" -o "$tmp/x.kiln" --min-shapes image:1x1x8x8
bad "opt below min" "min <= opt <= max" "$kiln" build "$model" -o "$tmp/x.kiln" --min-shapes image:4x1x8x8 \
  --opt-shapes image:2x1x8x8 --max-shapes image:8x1x8x8
bad "fixed dim varies" "fixed" "$kiln" build "$model" -o "$tmp/x.kiln" --min-shapes image:1x1x8x8 \
  --max-shapes image:4x2x8x8
bad "unknown input" "nope" "$kiln" build "$model" -o "$tmp/x.kiln" --min-shapes nope:1 --max-shapes nope:2
head -c 100 "$tmp/d.kiln" >"$tmp/cut.kiln"
bad "truncated engine" "truncated" "$kiln" run "$tmp/cut.kiln"
exit $fail
