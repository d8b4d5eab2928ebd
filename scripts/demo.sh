#!/usr/bin/env bash
# The main job on a real example: build deltaseal, fetch two consecutive
# releases of real MCU firmware (Pybricks City Hub, Cortex-M0), make a signing
# key, build a signed delta bundle, inspect it, then verify it as a device
# would and apply it to the old image.
#
# Usage: bash scripts/demo.sh [PAIR]   (default mcu-cityhub; any pair fetch.sh knows)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
pair="${1:-mcu-cityhub}"
export CORPUS_DIR="${CORPUS_DIR:-$(cd .. && pwd)/corpus-data}"

echo "== build"
cargo build --release --locked -p deltaseal-cli
ds="$root/target/release/deltaseal"

echo "== fetch $pair"
bash "$root/../shared/corpus/fetch.sh" "$CORPUS_DIR" "$pair"
old="$CORPUS_DIR/$pair/old.bin"
new="$CORPUS_DIR/$pair/new.bin"

out="$root/target/demo"
rm -rf "$out" && mkdir -p "$out"
set -x
"$ds" keygen -o "$out/release.pem"
"$ds" release --old "$old" --new "$new" --key "$out/release.pem" \
    --sequence 7 --vendor example.com --class city-hub -o "$out/update.bundle"
"$ds" inspect "$out/update.bundle"
"$ds" verify "$out/update.bundle" --trust "$out/release.pub.pem" --installed-sequence 6 \
    --vendor example.com --class city-hub --old "$old" -o "$out/new.bin"
cmp "$new" "$out/new.bin"
set +x
echo "demo ok: $(stat -c %s "$new") byte image updated by a $(stat -c %s "$out/update.bundle") byte signed bundle; output in $out"
