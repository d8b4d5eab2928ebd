#!/usr/bin/env bash
# compare-peers.sh -- deltaseal (each level) against the peer delta tools on
# the corpus, same machine, same run. Writes benches/results/<UTC date>/:
#   results.csv  one row per pair and tool (the peers' harness format)
#   table.md     size % of new, diff s, apply s, peak RSS (GNU /usr/bin/time -v)
#   sizes.svg    grouped bars: patch size as % of the new image
#
#   benches/compare-peers.sh [CORPUS_DIR]
#
# env: PAIRS, TOOLS (peer subset), PEER_TIMEOUT, PEERS_HOME: passed to the peers'
#      harness (../shared/peers/run_peers.sh, or PEERS_SH), which installs and
#      runs the peers; SKIP_PEERS=1 runs deltaseal only; JOBS (default 2)
#      threads for deltaseal diff/apply; LEVELS (default "fast default max").
# Rows already in results.csv are not re-run (delete it to start over).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CORPUS=$(cd "${1:-${CORPUS_DIR:-$ROOT/../corpus-data}}" && pwd)
PEERS_SH=${PEERS_SH:-$ROOT/../shared/peers/run_peers.sh}
OUT_DIR=$ROOT/benches/results/$(date -u +%Y-%m-%d)
CSV=$OUT_DIR/results.csv
JOBS=${JOBS:-2}
LEVELS=${LEVELS:-fast default max}
mkdir -p "$OUT_DIR"

command -v /usr/bin/time >/dev/null || { apt-get update -q && apt-get install -y -q time; }
(cd "$ROOT" && cargo build --release --locked -p deltaseal-cli)
DS=${CARGO_TARGET_DIR:-$ROOT/target}/release/deltaseal
[ -x "$DS" ] || DS=$ROOT/target/release/deltaseal

if [ -z "${SKIP_PEERS:-}" ]; then
  if [ -f "$PEERS_SH" ]; then
    bash "$PEERS_SH" "$CORPUS" "$CSV"
  else
    echo "SKIP peers: $PEERS_SH not found (set PEERS_SH)" >&2
  fi
fi
[ -f "$CSV" ] || echo "pair,tool,patch_bytes,new_bytes,pct,diff_s,diff_rss_mb,apply_s,apply_rss_mb,ok" >"$CSV"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# measure CMD...: sets RC, WALL (s), RSS_MB from GNU time -v
measure() {
  set +e
  /usr/bin/time -v -o "$WORK/time" "$@" >"$WORK/log" 2>&1
  RC=$?
  set -e
  WALL=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; printf "%.2f", s}' "$WORK/time")
  RSS_MB=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$WORK/time")
}

if [ -n "${PAIRS:-}" ]; then pairs=$PAIRS; else
  pairs=$(for d in "$CORPUS"/*/; do d=${d%/}; [ -f "$d/new.bin" ] && echo "$(stat -c %s "$d/new.bin") $(basename "$d")"; done | sort -n | awk '{print $2}')
fi
for pair in $pairs; do
  o=$CORPUS/$pair/old.bin n=$CORPUS/$pair/new.bin
  [ -f "$o" ] && [ -f "$n" ] || { echo "skip $pair: missing files" >&2; continue; }
  nb=$(stat -c %s "$n")
  for level in $LEVELS; do
    tool=deltaseal-$level
    grep -q "^$pair,$tool," "$CSV" && continue
    p=$WORK/patch r=$WORK/out
    measure "$DS" diff "$o" "$n" -o "$p" --level "$level" -j "$JOBS"
    if [ "$RC" != 0 ]; then echo "$pair,$tool,,$nb,,,,,,ERR" >>"$CSV"; cat "$WORK/log" >&2; continue; fi
    d_s=$WALL d_rss=$RSS_MB pb=$(stat -c %s "$p")
    measure "$DS" apply "$o" "$p" -o "$r" -j "$JOBS"
    ok=ok
    if [ "$RC" != 0 ]; then ok=ERR; elif ! cmp -s "$r" "$n"; then ok=MISMATCH; fi
    pct=$(awk -v a="$pb" -v b="$nb" 'BEGIN{printf "%.2f", 100*a/b}')
    echo "$pair,$tool,$pb,$nb,$pct,$d_s,$d_rss,$WALL,$RSS_MB,$ok" >>"$CSV"
    echo "$pair $tool: $pct% diff ${d_s}s apply ${WALL}s ($ok)"
    rm -f "$p" "$r"
  done
done

python3 "$ROOT/benches/peers_report.py" "$CSV" "$OUT_DIR" \
  "$(uname -m), $(nproc) cores; deltaseal -j $JOBS; $(date -u +%Y-%m-%dT%H:%MZ)"
echo "wrote $OUT_DIR/table.md and $OUT_DIR/sizes.svg"
