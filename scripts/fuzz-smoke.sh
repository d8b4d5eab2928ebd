#!/usr/bin/env bash
# A short run of every cargo-fuzz target (a smoke test that can fail: any
# crash is a bug). Longer runs: FUZZ_SECONDS=3600 bash scripts/fuzz-smoke.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fuzz-seeds.sh
cd fuzz
seconds="${FUZZ_SECONDS:-15}"
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi
for target in $(cargo +nightly fuzz list); do
    echo "== fuzz $target for ${seconds}s"
    cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 2>&1 | tail -n 3
done
