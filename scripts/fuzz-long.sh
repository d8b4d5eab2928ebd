#!/usr/bin/env bash
# A documented long fuzz run: every cargo-fuzz target (or the ones named),
# one after the other in ONE libFuzzer process at a time, each seeded from
# testvectors/ (scripts/fuzz-seeds.sh) and run for FUZZ_SECONDS.
#
#   FUZZ_SECONDS=540 nohup bash scripts/fuzz-long.sh > /dev/null 2>&1 &
#   FUZZ_SECONDS=600 bash scripts/fuzz-long.sh cose_sign1 root_decode
#
# Environment:
#   FUZZ_SECONDS         libFuzzer time per target (default 540)
#   FUZZ_LOG             summary log (default fuzz/artifacts/long-<UTC stamp>.log;
#                        the raw libFuzzer output of each target goes next to it)
#   FUZZ_RSS_MB          -rss_limit_mb (default 2048)
#   FUZZ_TIMEOUT         -timeout per input, seconds (default 25): a slow input
#                        is a finding too (inputs must end in bounded time)
#   FUZZ_MAX_LEN_<name>  overrides the per-target -max_len below
#   FUZZ_COMMIT          fuzz this commit (default HEAD) exported with
#                        `git archive` to a temporary tree, not the working
#                        tree: uncommitted edits never get fuzzed and the log
#                        names exactly what was. The corpus, artifacts and
#                        build cache of fuzz/ are shared with the working tree.
#                        FUZZ_COMMIT=worktree fuzzes the working tree as is.
#                        The tree is kept in /tmp/deltaseal-fuzz-<commit> so
#                        a later run of the same commit reuses its build.
#
# The summary log has one line per target with the exec count, coverage
# (cov = edges, ft = features), corpus size before/after and the crash
# artifacts found; docs/fuzzing.md records the results of each long run.
# Exit status: 0 when no target found anything, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
seconds="${FUZZ_SECONDS:-540}"
rss="${FUZZ_RSS_MB:-2048}"
timeout="${FUZZ_TIMEOUT:-25}"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
log="${FUZZ_LOG:-$root/fuzz/artifacts/long-$stamp.log}"
mkdir -p "$(dirname "$log")"

# Inputs larger than the biggest seed of each kind add time, not coverage:
# bundles and roots are a few hundred bytes to 2 KB, patch headers carry a
# 72-byte-per-chunk table (the largest patch vector is 25 KB), chunk bodies
# and diff inputs are kept small so each exec stays fast.
max_len_for() {
    local var="FUZZ_MAX_LEN_$1"
    if [ -n "${!var:-}" ]; then echo "${!var}"; return; fi
    case "$1" in
        bundle_decode) echo 4096 ;;
        cose_sign1) echo 4096 ;;
        root_decode) echo 2048 ;;
        patch_header) echo 32768 ;;
        patch_apply) echo 16384 ;;
        diff_apply_roundtrip) echo 4096 ;;
        stream_install) echo 8192 ;;
        bsdiff40_import) echo 16384 ;;
        *) echo 8192 ;;
    esac
}

count_files() { find "$1" -type f 2>/dev/null | wc -l; }
count_bytes() { du -sb "$1" 2>/dev/null | cut -f1; }

say() { echo "$*" | tee -a "$log"; }

bash scripts/fuzz-seeds.sh >/dev/null
rev="${FUZZ_COMMIT:-HEAD}"
if [ "$rev" = worktree ]; then
    commit="$(git rev-parse --short HEAD) + uncommitted: $(git status --porcelain -- fuzz crates | wc -l) files"
    cd fuzz
else
    commit=$(git rev-parse --short "$rev")
    # One tree per commit, kept: a later run of the same commit reuses its
    # sanitizer build (delete /tmp/deltaseal-fuzz-* when done).
    snap="${TMPDIR:-/tmp}/deltaseal-fuzz-$commit"
    if [ ! -d "$snap" ]; then
        mkdir -p "$snap.part"
        git archive "$commit" | tar -x -C "$snap.part"
        mv "$snap.part" "$snap"
    fi
    mkdir -p fuzz/corpus fuzz/artifacts fuzz/target
    rm -rf "$snap/fuzz/corpus" "$snap/fuzz/artifacts" "$snap/fuzz/target"
    ln -s "$root/fuzz/corpus" "$snap/fuzz/corpus"
    ln -s "$root/fuzz/artifacts" "$snap/fuzz/artifacts"
    ln -s "$root/fuzz/target" "$snap/fuzz/target"
    cd "$snap/fuzz"
fi
if [ "$#" -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo +nightly fuzz list); fi

say "# fuzz-long $stamp commit $commit"
say "# $(rustc +nightly --version); $(cargo +nightly fuzz --version); ${seconds}s per target, rss ${rss} MB, timeout ${timeout}s"
say "# target | seconds | execs | exec/s | cov | ft | peak RSS MB | corpus before -> after (files) | corpus bytes | crashes"

found=0
for t in "${targets[@]}"; do
    corpus="corpus/$t"
    artifacts="artifacts/$t"
    mkdir -p "$corpus" "$artifacts"
    before=$(count_files "$corpus")
    known=$(ls "$artifacts" 2>/dev/null | sort)
    raw="${log%.log}.$t.txt"
    if ! cargo +nightly fuzz build "$t" >"$raw" 2>&1; then
        say "$t | build failed, see $raw"
        found=1
        continue
    fi
    start=$(date +%s)
    cargo +nightly fuzz run "$t" -- \
        -max_total_time="$seconds" -max_len="$(max_len_for "$t")" \
        -rss_limit_mb="$rss" -timeout="$timeout" -print_final_stats=1 \
        >>"$raw" 2>&1
    status=$?
    elapsed=$(($(date +%s) - start))
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$raw" | tail -n1 | grep -o '[0-9]*$')
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$raw" | tail -n1 | grep -o '[0-9]*$')
    peak=$(grep -o 'stat::peak_rss_mb: *[0-9]*' "$raw" | tail -n1 | grep -o '[0-9]*$')
    last=$(grep -E '^#[0-9]+' "$raw" | grep ' cov: ' | tail -n1)
    cov=$(echo "$last" | grep -o 'cov: [0-9]*' | grep -o '[0-9]*')
    ft=$(echo "$last" | grep -o 'ft: [0-9]*' | grep -o '[0-9]*')
    after=$(count_files "$corpus")
    new_artifacts=$(comm -13 <(echo "$known") <(ls "$artifacts" 2>/dev/null | sort) | tr '\n' ' ')
    crashes="none"
    if [ "$status" -ne 0 ] || [ -n "$new_artifacts" ]; then
        crashes="exit $status: ${new_artifacts:-no artifact} (see $raw)"
        found=1
    fi
    say "$t | $elapsed | ${execs:-?} | ${rate:-?} | ${cov:-?} | ${ft:-?} | ${peak:-?} | $before -> $after | $(count_bytes "$corpus") | $crashes"
done
say "# done $(date -u +%Y-%m-%dT%H:%M:%SZ); findings: $found"
exit "$found"
