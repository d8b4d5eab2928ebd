#!/usr/bin/env bash
# The test command from the README: sets up what the tests need on a fresh
# machine (Python interop packages, the two small MCU corpus pairs), then runs
# every test in the workspace and the no_std link probe.
#
# Environment:
#   CORPUS_DIR    where corpus pairs live (default: ../corpus-data beside the repo)
#   CORPUS_PAIRS  pairs to fetch (default: the two small MCU pairs; "all" for all five)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# Interop and corpus tests fail instead of skipping when their tools or data are missing.
export DELTASEAL_REQUIRE_INTEROP=1
export CORPUS_DIR="${CORPUS_DIR:-$(cd .. && pwd)/corpus-data}"
pairs="${CORPUS_PAIRS:-mcu-moondancer mcu-cityhub}"
[ "$pairs" = all ] && pairs=""

echo "== test deps: pycose + cbor2<6 (COSE interop), openssl (key interop), bsdiff (BSDIFF40 interop)"
if ! python3 -c 'import pycose, cbor2' 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check 'pycose==1.1.0' 'cbor2<6'
fi
if ! command -v openssl >/dev/null; then
    apt-get install -y -q openssl || { apt-get update -q && apt-get install -y -q openssl; }
fi
if [ ! -x /usr/bin/bspatch ] || [ ! -x /usr/bin/bsdiff ]; then
    echo "== test deps: Debian bsdiff/bspatch (BSDIFF40 interop)"
    apt-get install -y -q bsdiff || { apt-get update -q && apt-get install -y -q bsdiff; }
fi

echo "== corpus: ${pairs:-all pairs} into $CORPUS_DIR"
fetch="$root/../shared/corpus/fetch.sh"
if [ -f "$fetch" ]; then
    # shellcheck disable=SC2086
    bash "$fetch" "$CORPUS_DIR" $pairs
    # The corpus test fails (instead of skipping) when one of these is missing.
    export DELTASEAL_REQUIRE_CORPUS="${pairs:-mcu-moondancer mcu-cityhub uefi-ovmf exe-ruff kernel-vmlinux}"
else
    echo "WARNING: $fetch not found; corpus tests will skip"
fi

echo "== cargo test"
cargo test --workspace --locked

echo "== no_std probe (a no_std binary with its own panic handler: duplicate panic_impl if std sneaks in)"
# Not --locked: the probe has its own lock file, which follows verify's dependencies.
cargo check --manifest-path probe/no-std/Cargo.toml
if rustup target add thumbv7em-none-eabihf >/dev/null 2>&1; then
    echo "== deltaseal-verify for thumbv7em-none-eabihf (Cortex-M4F)"
    cargo build --locked -p deltaseal-verify --no-default-features --target thumbv7em-none-eabihf
else
    echo "NOTE: thumbv7em-none-eabihf not installable here; the host probe above proves no_std"
fi

echo "all tests passed"
