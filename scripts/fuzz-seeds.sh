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
set -euo pipefail
cd "$(dirname "$0")/.."
vectors=testvectors
corpus=fuzz/corpus
mkdir -p "$corpus"/{bundle_decode,cose_sign1,root_decode,patch_header,patch_apply,diff_apply_roundtrip,stream_install}
seed() { # seed TARGET FILE
    local h
    h=$(sha1sum "$2" | cut -c1-40)
    cp "$2" "$corpus/$1/$h"
}
for f in "$vectors"/bundle/*.bundle; do seed bundle_decode "$f"; done
for f in "$vectors"/root/*.cbor; do seed root_decode "$f"; done
for f in "$vectors"/patch/*.dsp; do seed patch_header "$f"; done
# patch_apply input: [codec][new size - 1: u16 LE][old len: u8][old bytes][chunk body]
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
    data = bytes([codec & 1]) + struct.pack("<H", out_len - 1) + bytes([len(old)]) + old + body
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
for t in bundle_decode cose_sign1 root_decode patch_header patch_apply diff_apply_roundtrip stream_install; do
    echo "fuzz/corpus/$t: $(find "$corpus/$t" -type f | wc -l) inputs"
done
