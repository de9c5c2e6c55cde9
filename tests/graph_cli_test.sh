#!/usr/bin/env bash
# `kiln graph`: SVG that parses as XML with one node element per graph node
# (as many as `kiln inspect` counts, or after --optimized as many as
# `kiln profile` executes) plus one per input and output and the legend;
# fused nodes marked, in an engine's graph too; PNG with the PNG signature; DOT text; bad extension,
# missing model and unwritable output exit 1 naming the file.
set -eu
kiln="$1"
src="$2"
digits="$src/models/digits/model.onnx"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$kiln" graph --help > "$tmp/help.txt"
grep -q -- "--optimized" "$tmp/help.txt"
"$kiln" graph "$digits" -o "$tmp/d.svg"
"$kiln" graph "$digits" -o "$tmp/d.png"
"$kiln" graph "$digits" -o "$tmp/d.dot"
"$kiln" graph "$digits" -o "$tmp/d.txt" --format dot
"$kiln" graph "$digits" --optimized -o "$tmp/opt.svg"
"$kiln" build "$digits" -o "$tmp/d.kiln" --shapes image:1x1x8x8 > /dev/null
"$kiln" graph "$tmp/d.kiln" -o "$tmp/engine.svg"
"$kiln" inspect "$digits" --shapes 1x1x8x8 --format json > "$tmp/inspect.json"
"$kiln" profile "$digits" --shapes 1x1x8x8 --format json --warmup 0 -n 1 > "$tmp/profile.json"
head -c 8 "$tmp/d.png" | od -An -tx1 | tr -d ' \n' | grep -qx "89504e470d0a1a0a"
head -1 "$tmp/d.dot" | grep -q "^digraph"
cmp -s "$tmp/d.dot" "$tmp/d.txt"

python3 - "$tmp" <<'PY'
import json, re, sys
import xml.etree.ElementTree as ET
d = sys.argv[1]
SVG = "{http://www.w3.org/2000/svg}"

def drawn(path):
    """DOT ids of the SVG's node elements, and their classes."""
    ids = {}
    for g in ET.parse(path).iter(SVG + "g"):
        classes = g.get("class", "").split()
        if "node" in classes:
            title = g.find(SVG + "title").text
            assert title not in ids, f"{path}: {title} drawn twice"
            ids[title] = classes
    return ids

def check(path, n_nodes, n_inputs, n_outputs):
    ids = drawn(path)
    ops = [i for i in ids if re.fullmatch(r"n\d+", i)]
    assert len(ops) == n_nodes, (path, len(ops), n_nodes)
    assert sorted(ops) == sorted(f"n{i}" for i in range(n_nodes))
    assert len([i for i in ids if re.fullmatch(r"in\d+", i)]) == n_inputs, (path, ids)
    assert len([i for i in ids if re.fullmatch(r"out\d+", i)]) == n_outputs, (path, ids)
    assert "legend" in ids
    assert len(ids) == n_nodes + n_inputs + n_outputs + 1, (path, sorted(ids))
    return ids

inspect = json.load(open(f"{d}/inspect.json"))
plain = check(f"{d}/d.svg", len(inspect["nodes"]), len(inspect["inputs"]), len(inspect["outputs"]))
assert not any("fused" in c for c in plain.values()), "nothing is fused before the optimizer"
profile = json.load(open(f"{d}/profile.json"))
opt = check(f"{d}/opt.svg", len(profile["nodes"]), len(inspect["inputs"]), len(inspect["outputs"]))
fused = [i for i, c in opt.items() if "fused" in c]
assert fused, "no fused node marked"
svg = open(f"{d}/opt.svg").read()
assert "fused: Conv" in svg or "fused: Gemm" in svg, "fused nodes list their ops"
# An engine holds the optimized graph, fused nodes and all.
engine = check(f"{d}/engine.svg", len(profile["nodes"]), len(inspect["inputs"]), len(inspect["outputs"]))
assert len([i for i, c in engine.items() if "fused" in c]) == len(fused)
# Edges carry shapes (digits' input is float [batch, 1, 8, 8]).
assert "float batchx1x8x8" in open(f"{d}/d.svg").read()
PY

# Errors: exit 1, a message naming the file.
expect_error() {
  local what="$1" pattern="$2"
  shift 2
  if "$kiln" graph "$@" 2> "$tmp/err.txt"; then
    echo "graph_cli_test: $what: expected failure" >&2
    exit 1
  fi
  if ! grep -q -- "$pattern" "$tmp/err.txt"; then
    echo "graph_cli_test: $what: message lacks '$pattern':" >&2
    cat "$tmp/err.txt" >&2
    exit 1
  fi
}
expect_error "bad extension" "d.jpg" "$digits" -o "$tmp/d.jpg"
expect_error "bad --format" "--format" "$digits" -o "$tmp/d.svg" --format gif
expect_error "missing model" "nope.onnx" "$tmp/nope.onnx" -o "$tmp/x.svg"
expect_error "unwritable output" "no-such-dir/g.svg" "$digits" -o "$tmp/no-such-dir/g.svg"
expect_error "no output" "output" "$digits"
[ ! -e "$tmp/d.jpg" ] && [ ! -e "$tmp/x.svg" ]
echo "graph_cli_test: ok"
