#!/usr/bin/env python3
"""Checks that src/ folders include only the folders below them.

The layers, lowest first (docs/architecture.md explains each):
    core -> kernels -> ir -> planner -> runtime -> ops -> passes
         -> onnx, weights, analysis, engine -> pipeline -> network -> api
A folder may include itself, the public headers (kiln/) and any folder on
an earlier line of LAYERS; never one on its own line or later. Exit 1 with
every offending include listed.
    layering_test.py SOURCE_DIR
"""
import os
import re
import sys

# Folders of one entry are peers: they may not include each other.
LAYERS = [
    ["core"],
    ["kernels"],
    ["ir"],
    ["planner"],
    ["runtime"],
    ["ops"],
    ["passes"],
    ["onnx", "weights", "analysis", "engine"],
    ["pipeline"],
    ["network"],
    ["api"],
]
RANK = {folder: i for i, layer in enumerate(LAYERS) for folder in layer}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/')


def main(src_root):
    src = os.path.join(src_root, "src")
    bad = []
    for folder in sorted(os.listdir(src)):
        if folder not in RANK:
            bad.append(f"src/{folder}/: a folder the layering does not know (add it to tests/layering_test.py)")
            continue
        for dirpath, _, files in os.walk(os.path.join(src, folder)):
            for name in sorted(files):
                if not name.endswith((".h", ".cpp")):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, src_root)
                with open(path, encoding="utf-8") as f:
                    for lineno, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        target = m.group(1)
                        if target in ("kiln", folder):
                            continue
                        if target not in RANK:
                            bad.append(f"{rel}:{lineno}: includes {target}/, not a src/ layer")
                        elif RANK[target] >= RANK[folder]:
                            bad.append(f"{rel}:{lineno}: {folder}/ includes {target}/ "
                                       f"({'a peer' if RANK[target] == RANK[folder] else 'a higher layer'})")
    for b in bad:
        print(b)
    print(f"layering: {len(bad)} include(s) against the layers")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")))
