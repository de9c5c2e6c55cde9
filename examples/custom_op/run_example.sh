#!/usr/bin/env bash
# The custom-op example end to end: the model runs with --plugin and matches
# numpy; without the plugin it fails naming the op and --plugin; an engine
# built with the plugin records it, fails without it naming the library, and
# runs with it.
set -eu
kiln="$1"
plugin="$2"
src="$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 "$src/make_model.py" "$tmp"
"$kiln" compare "$tmp/model.onnx" --plugin "$plugin" --ref "$tmp/test_data_set_0" --rtol 1e-5 --atol 1e-6
"$kiln" run "$tmp/model.onnx" --plugin "$plugin" --shapes x:4x16 > /dev/null
rc=0
"$kiln" run "$tmp/model.onnx" 2> "$tmp/err.txt" || rc=$?
[ "$rc" = 1 ] || { echo "ran without the plugin (exit $rc)"; exit 1; }
grep -q "com.example:SoftClip is unknown" "$tmp/err.txt" && grep -q -- "--plugin" "$tmp/err.txt" || { cat "$tmp/err.txt"; exit 1; }
"$kiln" build "$tmp/model.onnx" --plugin "$plugin" -o "$tmp/model.kiln" --min-shapes x:1x16 --opt-shapes x:4x16 --max-shapes x:8x16 > /dev/null
rc=0
"$kiln" run "$tmp/model.kiln" 2> "$tmp/err.txt" || rc=$?
[ "$rc" = 1 ] || { echo "engine ran without the plugin (exit $rc)"; exit 1; }
grep -q "$(basename "$plugin")" "$tmp/err.txt" || { cat "$tmp/err.txt"; exit 1; }
"$kiln" compare "$tmp/model.kiln" --plugin "$plugin" --ref "$tmp/test_data_set_0" --rtol 1e-5 --atol 1e-6
"$kiln" ops --format json --plugin "$plugin" | /usr/bin/python3 -c "
import json, sys
ops = [o for o in json.load(sys.stdin) if o['op'] == 'SoftClip']
assert ops and ops[0]['domain'] == 'com.example' and ops[0]['library'].endswith('$(basename "$plugin")'), ops"
rc=0
"$kiln" run "$tmp/model.onnx" --plugin "$tmp/missing.so" 2> "$tmp/err.txt" || rc=$?
[ "$rc" = 1 ] && grep -q "missing.so" "$tmp/err.txt"
echo "custom op example ok"
