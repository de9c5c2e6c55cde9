#!/usr/bin/env bash
# `kiln profile --below`: the roofline of every executed node (bytes moved,
# intensity, bound, roof, fraction) in the table, JSON and CSV; --below
# filters (0 lists nothing, 1e9 every node with a fraction); bad values are
# refused with exit 1. Also `kiln device`'s L2 and DRAM bandwidth.
set -eu
kiln="$1"
model="$2"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
die() {
  echo "FAIL: $*" >&2
  exit 1
}
# Fixed roofs: 100 GFLOP/s, 200 GB/s from L2, 20 GB/s from DRAM.
roofs=(--peak-gflops 100 --l2-gbps 200 --dram-gbps 20)
run=(--shapes 1x1x8x8 -n 3 --warmup 1)

# Measured roofs (the FMA loop and the streams), the listing's columns.
"$kiln" profile "$model" "${run[@]}" --below 0.3 > "$tmp/below.txt" || die "profile --below 0.3"
for col in "op" "median ms" "bound" "achieved" "roof" "of roof" "FLOP/B" "shapes"; do
  grep -q -- "$col" "$tmp/below.txt" || die "--below table has no '$col' column: $(cat "$tmp/below.txt")"
done
grep -Eq "^roofs on [0-9]+ threads?: peak [0-9.]+ GFLOP/s .*L2 [0-9.]+ GB/s, DRAM [0-9.]+ GB/s" "$tmp/below.txt" \
  || die "no roofs line: $(head -5 "$tmp/below.txt")"
grep -q "executed nodes under 30% of their roof" "$tmp/below.txt" || die "no --below heading"

# --below 0: nothing is under 0% of its roof.
"$kiln" profile "$model" "${run[@]}" "${roofs[@]}" --below 0 > "$tmp/zero.txt"
grep -q "^0 of [0-9]* executed nodes under 0% of their roof" "$tmp/zero.txt" || die "--below 0: $(cat "$tmp/zero.txt")"
grep -q "shapes (inputs -> outputs)" "$tmp/zero.txt" && die "--below 0 printed a table"

# --below 1e9: every node that has a fraction.
"$kiln" profile "$model" "${run[@]}" "${roofs[@]}" --below 1e9 > "$tmp/all.txt"
"$kiln" profile "$model" "${run[@]}" "${roofs[@]}" --below 1e9 --format json > "$tmp/all.json"
"$kiln" profile "$model" "${run[@]}" "${roofs[@]}" --below 1e9 --format csv > "$tmp/all.csv"
"$kiln" profile "$model" "${run[@]}" "${roofs[@]}" --below 0.3 --format json > "$tmp/p.json"
"$kiln" profile "$model" "${run[@]}" "${roofs[@]}" > "$tmp/full.txt"
grep -q "FLOP/B *bound *roof" "$tmp/full.txt" || die "the full table has no roofline columns"

# Bad values: one clear line, exit 1.
for bad in -1 abc nan inf ""; do
  rc=0
  "$kiln" profile "$model" "${run[@]}" "${roofs[@]}" --below "$bad" > /dev/null 2> "$tmp/err.txt" || rc=$?
  [ "$rc" = 1 ] || die "--below '$bad': exit $rc, want 1"
  grep -q "^kiln: error: .*--below" "$tmp/err.txt" || die "--below '$bad': $(cat "$tmp/err.txt")"
done

"$kiln" device --json > "$tmp/device.json"

# An engine with a dynamic batch: its graph's dims are bound to the fed shape,
# so every node has bytes and FLOPs as with the ONNX model.
"$kiln" build "$model" -o "$tmp/dyn.kiln" --min-shapes image:1x1x8x8 --opt-shapes image:2x1x8x8 \
  --max-shapes image:4x1x8x8 > /dev/null
"$kiln" profile "$tmp/dyn.kiln" -n 3 --warmup 1 "${roofs[@]}" --shapes image:4x1x8x8 --format json > "$tmp/engine.json"

python3 - "$tmp" <<'PY'
import csv, json, re, sys
d = sys.argv[1]
SIZES = {"float": 4, "float16": 2, "bfloat16": 2, "double": 8, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2,
         "int32": 4, "uint32": 4, "int64": 8, "uint64": 8, "bool": 1}

def tensor_bytes(t):
    m = re.fullmatch(r"(\w+)\[(.*)\]", t)
    assert m, t
    n = SIZES[m.group(1)]
    for dim in filter(None, m.group(2).split("x")):
        n *= int(dim)
    return n

j = json.load(open(f"{d}/all.json"))
nodes = j["nodes"]
r = j["roofs"]
assert (r["peak_gflops"], r["l2_gbps"], r["dram_gbps"]) == (100, 200, 20), r
assert r["measured"] == {"peak": False, "bandwidth": False} and r["llc_bytes"] > 0, r
fields = {"bytes", "gbps", "intensity", "memory_level", "bandwidth_gbps", "ridge", "bound", "roof", "roof_unit",
          "achieved", "roof_fraction", "inputs", "flops", "median_ms"}
with_fraction = []
for n in nodes:
    assert fields <= set(n), (fields - set(n), n)
    # Bytes moved: every distinct input and output tensor, weights included.
    types = list(dict.fromkeys(t for t in n["inputs"] + n["outputs"] if t))
    assert n["bytes"] == sum(tensor_bytes(t) for t in types), n
    if n["roof_fraction"] is None:
        continue
    with_fraction.append(n["index"])
    level_bw = 20 if n["bytes"] > r["llc_bytes"] else 200
    assert n["memory_level"] == ("DRAM" if level_bw == 20 else "L2") and n["bandwidth_gbps"] == level_bw, n
    intensity = n["flops"] / n["bytes"]
    assert abs(n["intensity"] - intensity) <= 1e-12 * max(intensity, 1e-300), n
    assert abs(n["ridge"] - 100 / level_bw) < 1e-12, n
    seconds = n["median_ms"] / 1e3
    if intensity >= 100 / level_bw:
        assert n["bound"] == "compute" and n["roof"] == 100 and n["roof_unit"] == "GFLOP/s", n
        achieved = n["flops"] / seconds / 1e9
    else:
        assert n["bound"] == "memory" and n["roof"] == level_bw and n["roof_unit"] == "GB/s", n
        achieved = n["bytes"] / seconds / 1e9
    assert abs(n["achieved"] - achieved) <= 1e-9 * achieved, (n, achieved)
    assert abs(n["roof_fraction"] - achieved / n["roof"]) <= 1e-9 * achieved / n["roof"], n
assert with_fraction, "no node has a roof fraction"
assert any(n["bound"] == "compute" for n in nodes) and any(n["bound"] == "memory" for n in nodes), \
    [(n["op"], n["bound"]) for n in nodes]

# --below 1e9 lists every node that has a fraction, slowest first.
below = j["below"]
assert below["threshold"] == 1e9 and sorted(below["nodes"]) == sorted(with_fraction), (below, with_fraction)
assert below["without_fraction"] == len(nodes) - len(with_fraction), below
ms = [nodes[i]["median_ms"] for i in below["nodes"]]
assert ms == sorted(ms, reverse=True), ms
rows = list(csv.DictReader(open(f"{d}/all.csv")))
assert len(rows) == len(with_fraction) and {"bound", "roof_fraction", "bytes", "shapes"} <= set(rows[0]), rows[:1]
table = open(f"{d}/all.txt").read()
assert f"{len(with_fraction)} of {len(nodes)} executed nodes under" in table, table
listed = [l for l in table.splitlines() if re.match(r"^\s+\d+\s", l)]
assert len(listed) == len(with_fraction), (len(listed), table)

# --below 0.3: exactly the nodes under 30%.
p = json.load(open(f"{d}/p.json"))
want = {n["index"] for n in p["nodes"] if n["roof_fraction"] is not None and n["roof_fraction"] < 0.3}
assert set(p["below"]["nodes"]) == want, (p["below"], want)

e = json.load(open(f"{d}/engine.json"))
assert all(n["bytes"] and n["flops"] is not None and n["bound"] for n in e["nodes"]), e["nodes"]
assert all(n["inputs"][0].startswith("float[4x") for n in e["nodes"] if n["index"] == 0), e["nodes"][0]

dev = json.load(open(f"{d}/device.json"))
for scope in ("per_core", "all_cores"):
    bw = dev["bandwidth_gbps"][scope]
    for level in ("l2", "dram"):
        assert bw[level]["read"] > 0 and bw[level]["triad"] > 0, bw
        assert bw[level]["roof"] == max(bw[level]["read"], bw[level]["triad"]), bw
assert dev["peak_gflops"]["loop"] in ("avx512", "avx2", "sse2"), dev["peak_gflops"]
assert dev["llc_bytes"] > 0 and dev["ridge_flop_per_byte"]["dram"] > 0, dev
print("profile roofline ok")
PY
