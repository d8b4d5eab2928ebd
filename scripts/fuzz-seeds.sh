#!/usr/bin/env bash
# Seeds the cargo-fuzz corpora from testvectors/ (idempotent; files are
# named by content hash like libFuzzer's own, so reruns add nothing):
#   bundle_decode        <- every bundle vector
#   root_decode          <- every trust-root document vector
#   patch_header         <- every patch vector
#   patch_apply          <- chunk bodies of the patch vectors, in the target's input framing
#   diff_apply_roundtrip <- synthetic images (old/new pairs joined by the target's framing)
set -euo pipefail
cd "$(dirname "$0")/.."
vectors=testvectors
corpus=fuzz/corpus
mkdir -p "$corpus"/{bundle_decode,root_decode,patch_header,patch_apply,diff_apply_roundtrip}
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
# diff_apply_roundtrip input: [old len: u16 LE][old][new]
python3 - "$vectors" "$corpus/diff_apply_roundtrip" <<'PY'
import hashlib, pathlib, struct, sys
vectors, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
old, new = (vectors / "images/small_old.bin").read_bytes(), (vectors / "images/small_new.bin").read_bytes()
for o, n in [(old, new), (old[:512], new[:600]), (b"", old[:256])]:
    data = struct.pack("<H", len(o)) + o + n
    (out / hashlib.sha1(data).hexdigest()).write_bytes(data)
PY
for t in bundle_decode root_decode patch_header patch_apply diff_apply_roundtrip; do
    echo "fuzz/corpus/$t: $(find "$corpus/$t" -type f | wc -l) inputs"
done
