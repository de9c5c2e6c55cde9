#!/usr/bin/env bash
# The Debian package: cpack -G DEB from the build folder gives
# kiln_<version>_amd64.deb whose Depends were computed by dpkg-shlibdeps
# (oneDNN, protobuf, ... and no -dev package), holding the CLI, the library,
# headers, CMake and pkg-config files and the digits model; unpacked, its
# kiln runs the model. (Installing it with apt on a pristine Debian 12 is
# checked with ../shared/tools/fresh-debian-check.)
# Usage: deb_package_test.sh BUILD_DIR
set -euo pipefail
build=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

(cd "$build" && cpack -G DEB -B "$tmp/out" > "$tmp/cpack.log" 2>&1) || { cat "$tmp/cpack.log"; fail "cpack -G DEB"; }
deb=$(ls "$tmp"/out/kiln_*_amd64.deb 2>/dev/null | head -1)
[ -n "$deb" ] || { ls "$tmp/out"; fail "no kiln_<version>_amd64.deb"; }
echo "package: $(basename "$deb"), $(stat -c %s "$deb") bytes"
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
for d in libdnnl2 libprotobuf libc6 libstdc++6; do
  grep -q "$d" <<< "$depends" || fail "Depends lacks $d"
done
if grep -q -- "-dev" <<< "$depends"; then fail "Depends names a -dev package"; fi
contents=$(dpkg-deb -c "$deb")
for f in ./usr/bin/kiln ./usr/include/kiln/session.h ./usr/share/kiln/models/digits/model.onnx \
         ./usr/share/kiln/models/digits/samples/digits10.npy kilnConfig.cmake kiln.pc "libkiln.so."; do
  grep -q -- "$f" <<< "$contents" || fail "package lacks $f"
done
dpkg-deb -x "$deb" "$tmp/root"
"$tmp/root/usr/bin/kiln" --version
"$tmp/root/usr/bin/kiln" run "$tmp/root/usr/share/kiln/models/digits/model.onnx" \
  --input image="$tmp/root/usr/share/kiln/models/digits/samples/digits10.npy" | grep -q "output logits" \
  || fail "the packaged kiln does not run the packaged model"
echo "deb package test: OK"
