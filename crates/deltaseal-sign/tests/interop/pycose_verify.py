#!/usr/bin/env python3
"""Independent check of a deltaseal bundle with cbor2 + pycose.

usage: pycose_verify.py BUNDLE PUB.pem
       pycose_verify.py --sign BUNDLE KEY.pem OUT.cose

Decodes the SUIT envelope (CBOR tag 107) with cbor2, checks that the SUIT
digest in the authentication wrapper is SHA-256 over the manifest bstr
(header included), that the integrated payload matches the patch digest and
size the manifest names (private-use parameters -259 / -260), and verifies
each COSE_Sign1 (detached payload = the encoded SUIT_Digest) with pycose
against the Ed25519 public key in PUB.pem. Exits 0 if at least one signature
verifies and every check passes, 1 otherwise.

With --sign, it instead makes a COSE_Sign1 with pycose (alg EdDSA, kid =
first 16 bytes of SHA-256 of the raw public key, detached payload = the
bundle's encoded SUIT_Digest) with the PKCS#8 private key KEY.pem and writes
it to OUT.cose, so that deltaseal can be checked to accept a signature block
it did not produce.

Needs: pip install pycose 'cbor2<6'
"""

import hashlib
import sys

import cbor2
from cryptography.hazmat.primitives import serialization
from pycose.keys import OKPKey
from pycose.keys.curves import Ed25519
from pycose.messages import Sign1Message


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def bstr_header(n):
    # Shortest-form CBOR byte-string head for a length n.
    if n < 24:
        return bytes([0x40 | n])
    if n < 0x100:
        return bytes([0x58, n])
    if n < 0x10000:
        return bytes([0x59]) + n.to_bytes(2, "big")
    if n < 0x100000000:
        return bytes([0x5A]) + n.to_bytes(4, "big")
    return bytes([0x5B]) + n.to_bytes(8, "big")


def sign(bundle_path, key_path, out_path):
    from pycose.headers import KID, Algorithm
    from pycose.algorithms import EdDSA

    env = cbor2.loads(open(bundle_path, "rb").read()).value
    digest_bytes = cbor2.loads(env[2])[0]
    priv = serialization.load_pem_private_key(open(key_path, "rb").read(), password=None)
    d = priv.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    x = priv.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    kid = hashlib.sha256(x).digest()[:16]
    msg = Sign1Message(phdr={Algorithm: EdDSA, KID: kid}, payload=digest_bytes)
    msg.key = OKPKey(crv=Ed25519, d=d, x=x)
    out = msg.encode(tag=True)
    # pycose 1.1 keeps the payload in the message; detach it (nil), as SUIT
    # requires. The signature, made by pycose, covers it either way.
    tagged = cbor2.loads(out)
    tagged.value[2] = None
    out = cbor2.dumps(tagged)
    open(out_path, "wb").write(out)
    print(f"OK: wrote a {len(out)}-byte COSE_Sign1")
    sys.exit(0)


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--sign":
        sign(sys.argv[2], sys.argv[3], sys.argv[4])
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    data = open(sys.argv[1], "rb").read()
    pem = open(sys.argv[2], "rb").read()

    try:
        env = cbor2.loads(data)
    except Exception as e:  # noqa: BLE001
        fail(f"not CBOR: {e}")
    if not isinstance(env, cbor2.CBORTag) or env.tag != 107:
        fail("not a SUIT envelope (tag 107)")
    env = env.value
    if not isinstance(env, dict) or 2 not in env or 3 not in env:
        fail("envelope lacks authentication wrapper or manifest")
    if cbor2.dumps(cbor2.CBORTag(107, env)) != data:
        fail("envelope is not in deterministic encoding")

    manifest_inner = env[3]
    manifest_bstr = bstr_header(len(manifest_inner)) + manifest_inner
    auth = cbor2.loads(env[2])
    digest_bytes = auth[0]
    alg, digest = cbor2.loads(digest_bytes)
    if alg != -16:
        fail(f"SUIT digest algorithm {alg} is not SHA-256 (-16)")
    if hashlib.sha256(manifest_bstr).digest() != digest:
        fail("SUIT digest does not match the manifest bstr")

    manifest = cbor2.loads(manifest_inner)
    if manifest.get(1) != 1:
        fail("manifest version is not 1")
    install = cbor2.loads(manifest[20])
    params = install[1]
    uri = params[21]
    patch_alg, patch_digest = cbor2.loads(params[-259])
    patch_size = params[-260]
    if uri in env:
        payload = env[uri]
        if len(payload) != patch_size or hashlib.sha256(payload).digest() != patch_digest:
            fail("integrated payload does not match the manifest")

    pub = serialization.load_pem_public_key(pem)
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key = OKPKey(crv=Ed25519, x=raw)

    verified = 0
    for block in auth[1:]:
        msg = Sign1Message.decode(block)
        msg.key = key
        # Detached payload: the encoded SUIT_Digest.
        try:
            ok = msg.verify_signature(detached_payload=digest_bytes)
        except Exception as e:  # noqa: BLE001
            print(f"signature error: {e}", file=sys.stderr)
            ok = False
        if ok:
            verified += 1
    if verified == 0:
        fail("no COSE_Sign1 verifies under the given key")
    print(f"OK: {verified} of {len(auth) - 1} signatures verify; manifest sequence {manifest[2]}")
    sys.exit(0)


if __name__ == "__main__":
    main()
