#!/usr/bin/env bash
# `kiln profile`: JSON with one row per executed node whose times add up to
# no more than the run, CSV that a CSV parser reads, and a Chrome trace with
# one event per node per run.
set -eu
kiln="$1"
model="$2"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$kiln" profile "$model" -n 4 --warmup 1 --format json --trace "$tmp/trace.json" > "$tmp/p.json"
"$kiln" profile "$model" -n 2 --warmup 0 --format csv > "$tmp/p.csv"
"$kiln" profile "$model" -n 2 --warmup 0 --top 3 > "$tmp/p.txt"
if "$kiln" profile "$model" --format yaml 2> "$tmp/err.txt"; then echo "bad --format accepted"; exit 1; fi
grep -q "format" "$tmp/err.txt"
python3 - "$tmp" <<'PY'
import csv, json, sys
d = sys.argv[1]
j = json.load(open(f"{d}/p.json"))
nodes = j["nodes"]
assert nodes and all({"name", "op", "median_ms", "share"} <= set(n) for n in nodes), nodes[:2]
assert sum(n["median_ms"] for n in nodes) <= j["run_ms"]["median"] * 1.5 + 0.05, j["run_ms"]
assert abs(sum(n["share"] for n in nodes) - 1) < 1e-6
assert sum(o["nodes"] for o in j["ops"]) == len(nodes)
rows = list(csv.DictReader(open(f"{d}/p.csv")))
assert len(rows) == len(nodes) and rows[0]["op"] == nodes[0]["op"], rows[:1]
t = json.load(open(f"{d}/trace.json"))
ev = [e for e in t["traceEvents"] if e.get("cat") != "run"]
assert len(ev) == 4 * len(nodes), (len(ev), len(nodes))
assert all(e["ph"] == "X" and e["dur"] >= 0 for e in ev)
print("profile ok")
PY
