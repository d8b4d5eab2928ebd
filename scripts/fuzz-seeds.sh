#!/usr/bin/env bash
# Seeds the cargo-fuzz corpora from testvectors/ (idempotent; files are
# named by content hash like libFuzzer's own, so reruns add nothing):
#   bundle_decode        <- every bundle vector
#   cose_sign1           <- every COSE_Sign1 block inside the bundle vectors
#   root_decode          <- every trust-root document vector
#   patch_header         <- every patch vector
#   patch_apply          <- chunk bodies of the patch vectors, in the target's input framing
#   diff_apply_roundtrip <- synthetic images (old/new pairs joined by the target's framing)
#   stream_install       <- every bundle vector (mode 0) and every patch vector (mode 1), empty old
#   bsdiff40_import      <- real BSDIFF40 patches, by Debian's bsdiff and by `deltaseal diff
#                           --format bsdiff40`, for small synthetic pairs and for windows of the
#                           MCU corpus pairs ($CORPUS_DIR, default ../corpus-data; skipped if
#                           absent): whole (mode 0) and, where they fit, as raw streams (mode 1)
set -euo pipefail
cd "$(dirname "$0")/.."
vectors=testvectors
corpus=fuzz/corpus
corpus_dir="${CORPUS_DIR:-../corpus-data}"
mkdir -p "$corpus"/{bundle_decode,cose_sign1,root_decode,patch_header,patch_apply,diff_apply_roundtrip,stream_install,bsdiff40_import}
seed() { # seed TARGET FILE
    local h
    h=$(sha1sum "$2" | cut -c1-40)
    cp "$2" "$corpus/$1/$h"
}
for f in "$vectors"/bundle/*.bundle; do seed bundle_decode "$f"; done
for f in "$vectors"/root/*.cbor; do seed root_decode "$f"; done
for f in "$vectors"/patch/*.dsp; do seed patch_header "$f"; done
# patch_apply input: [codec: 0 none, 1 zstd, 0x80 xz][new size - 1: u16 LE][old len: u8][old bytes][chunk body]
python3 - "$vectors" "$corpus/patch_apply" <<'PY'
import hashlib, pathlib, struct, sys
vectors, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for f in sorted((vectors / "patch").glob("*.dsp")):
    p = f.read_bytes()
    if len(p) < 112 or p[:8] != b"DSLPATCH":
        continue
    codec, chunk_size, new_size = p[10], *struct.unpack_from("<I", p, 12), struct.unpack_from("<Q", p, 56)[0]
    count = struct.unpack_from("<I", p, 104)[0]
    table_end = 112 + 72 * count
    if count == 0 or count > 4096 or len(p) < table_end:
        continue
    stored = struct.unpack_from("<Q", p, 112)[0]
    body = p[table_end:table_end + stored]
    out_len = min(chunk_size, new_size)
    if not body or out_len == 0 or out_len > 65536:
        continue
    old = b""  # the fuzzer explores old images itself; bodies are the interesting part
    data = bytes([0x80 if codec == 2 else codec & 1]) + struct.pack("<H", out_len - 1) + bytes([len(old)]) + old + body
    (out / hashlib.sha1(data).hexdigest()).write_bytes(data)
PY
# cose_sign1 input: the COSE_Sign1 blocks of the bundles' authentication
# wrappers, 107({2: << [<<digest>>, *<<sign1>>] >>, ...}) (see docs/format.md)
python3 - "$vectors" "$corpus/cose_sign1" <<'PY'
import hashlib, pathlib, sys
vectors, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
def head(b, i):  # (major, argument, offset after the head) of the item at i
    ib = b[i]; major, info = ib >> 5, ib & 31
    if info < 24:
        return major, info, i + 1
    n = {24: 1, 25: 2, 26: 4, 27: 8}[info]
    return major, int.from_bytes(b[i + 1:i + 1 + n], "big"), i + 1 + n
def bstr(b, i):
    major, n, i = head(b, i)
    if major != 2:
        raise ValueError("not a bstr")
    return b[i:i + n], i + n
for f in sorted((vectors / "bundle").glob("*.bundle")):
    b = f.read_bytes()
    try:
        major, tag, i = head(b, 0)
        major, entries, i = head(b, i)
        major, key, i = head(b, i)
        if (tag, key) != (107, 2):
            continue
        auth, _ = bstr(b, i)
        major, n, j = head(auth, 0)
        for _ in range(n):
            item, j = bstr(auth, j)
            if item[:1] == b"\xd2":  # tag 18
                (out / hashlib.sha1(item).hexdigest()).write_bytes(item)
    except (IndexError, KeyError, ValueError):
        continue  # malformed vectors are there on purpose
PY
# diff_apply_roundtrip input: [old len: u16 LE][old][new]
python3 - "$vectors" "$corpus/diff_apply_roundtrip" <<'PY'
import hashlib, pathlib, struct, sys
vectors, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
old, new = (vectors / "images/small_old.bin").read_bytes(), (vectors / "images/small_new.bin").read_bytes()
for o, n in [(old, new), (old[:512], new[:600]), (b"", old[:256])]:
    data = struct.pack("<H", len(o)) + o + n
    (out / hashlib.sha1(data).hexdigest()).write_bytes(data)
PY
# stream_install input: [mode][piece seed][old len: u8][old][bundle or patch]
python3 - "$vectors" "$corpus/stream_install" <<'PY'
import hashlib, pathlib, sys
vectors, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for mode, pattern in [(0, "bundle/*.bundle"), (1, "patch/*.dsp")]:
    for i, f in enumerate(sorted(vectors.glob(pattern))):
        data = bytes([mode, i & 0xFF, 0]) + f.read_bytes()
        (out / hashlib.sha1(data).hexdigest()).write_bytes(data)
PY
# bsdiff40_import: the target's old image is at most 255 bytes (one length
# byte), so the pairs are small: synthetic edits, and 255-byte windows of the
# MCU pairs' old images with the stretch of the new image that matches them.
# Real encoders' patches give the fuzzer well-formed bzip2 streams and
# control triples to mutate, which it would almost never build from random
# bytes.
pairs=$(mktemp -d)
trap 'rm -rf "$pairs"' EXIT
python3 - "$vectors" "$corpus_dir" "$pairs" <<'PY'
import pathlib, sys
vectors, corpus_dir, out = (pathlib.Path(a) for a in sys.argv[1:])
def pair(name, old, new):
    assert len(old) <= 255, name  # the target's old length is one byte
    (out / name).mkdir()
    (out / name / "old.bin").write_bytes(old)
    (out / name / "new.bin").write_bytes(new)
small_old = (vectors / "images/small_old.bin").read_bytes()
small_new = (vectors / "images/small_new.bin").read_bytes()
counting = bytes(range(255))
pair("identical", counting, counting)
pair("byte_edits", counting, bytes(b ^ 0x5A if i % 37 == 0 else b for i, b in enumerate(counting)))
pair("insert_and_repeat", counting, counting[:100] + b"inserted" * 9 + counting[100:] * 3)
pair("truncated", counting, counting[:64])
pair("small_vectors", small_old[:255], small_new[:700])
pair("unrelated", small_old[:128], small_new[-900:])
pair("empty_old", b"", small_new[:256])
pair("empty_new", counting, b"")
for name in ("mcu-moondancer", "mcu-cityhub"):
    d = corpus_dir / name
    if not ((d / "old.bin").is_file() and (d / "new.bin").is_file()):
        print(f"SKIP: corpus pair {name} not found under {corpus_dir}; run ../shared/corpus/fetch.sh", file=sys.stderr)
        continue
    old, new = (d / "old.bin").read_bytes(), (d / "new.bin").read_bytes()
    for part in range(4):
        at = len(new) * part // 4
        # Align the old window on where this stretch of new came from.
        found = old.find(new[at:at + 32])
        start = found if found >= 0 else min(at, max(len(old) - 255, 0))
        pair(f"{name}_{part}", old[start:start + 255], new[at:at + 600])
PY
cargo build --quiet --locked -p deltaseal-cli
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
have_bsdiff=1
if ! command -v bsdiff >/dev/null; then
    have_bsdiff=0
    echo "SKIP: Debian bsdiff not on PATH (apt-get install bsdiff); bsdiff40_import gets our patches only" >&2
fi
for d in "$pairs"/*; do
    "$target_dir/debug/deltaseal" diff "$d/old.bin" "$d/new.bin" -o "$d/ours.patch" --format bsdiff40 >/dev/null
    # Debian bsdiff cannot mmap an empty file.
    if [ "$have_bsdiff" = 1 ] && [ -s "$d/old.bin" ] && [ -s "$d/new.bin" ]; then
        bsdiff "$d/old.bin" "$d/new.bin" "$d/debian.patch"
    fi
done
# bsdiff40_import input: [mode][old len][ctrl len][diff len][new size: u16 LE][old][...]
#   mode 0: [patch]; mode 1: [ctrl][diff][extra], uncompressed (the target bzip2s them)
python3 - "$pairs" "$corpus/bsdiff40_import" <<'PY'
import bz2, hashlib, pathlib, struct, sys
pairs, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
def offt(b):  # bsdiff's sign-magnitude off_t
    v = int.from_bytes(b, "little") & ~(1 << 63)
    return -v if b[7] & 0x80 else v
for d in sorted(pairs.iterdir()):
    old = (d / "old.bin").read_bytes()
    for f in sorted(d.glob("*.patch")):
        p = f.read_bytes()
        data = bytes([0, len(old), 0, 0, 0, 0]) + old + p
        (out / hashlib.sha1(data).hexdigest()).write_bytes(data)
        assert p[:8] == b"BSDIFF40", f
        ctrl_len, diff_len, new_size = offt(p[8:16]), offt(p[16:24]), offt(p[24:32])
        ctrl = bz2.decompress(p[32:32 + ctrl_len])
        diff = bz2.decompress(p[32 + ctrl_len:32 + ctrl_len + diff_len])
        extra = bz2.decompress(p[32 + ctrl_len + diff_len:])
        if len(ctrl) > 255 or len(diff) > 255 or new_size > 0xFFFF:
            continue  # the raw mode's lengths are one byte (new size two)
        data = bytes([1, len(old), len(ctrl), len(diff)]) + struct.pack("<H", new_size) + old + ctrl + diff + extra
        (out / hashlib.sha1(data).hexdigest()).write_bytes(data)
PY
for t in bundle_decode cose_sign1 root_decode patch_header patch_apply diff_apply_roundtrip stream_install bsdiff40_import; do
    echo "fuzz/corpus/$t: $(find "$corpus/$t" -type f | wc -l) inputs"
done
