//! The trust-root document decoder and its signature/threshold checks on
//! hostile bytes: decode the body alone, decode the signed document, verify
//! it on its own and as a successor of itself and of a fixed root. All must
//! end in Ok or an error, and whatever decodes must re-encode to the same
//! body bytes (one byte representation per root).
#![no_main]

use deltaseal_verify::root::{SignedRoot, TrustRoot};
use libfuzzer_sys::fuzz_target;

/// A fixed trusted key (the one bundle_decode uses).
const TRUSTED: [u8; 32] = [
    0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
    0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
];

fuzz_target!(|data: &[u8]| {
    let _ = TrustRoot::decode_body(data);
    let Ok(doc) = SignedRoot::decode(data) else { return };
    assert_eq!(doc.root().encode_body(), doc.body(), "accepted a non-canonical root body");
    let _ = doc.signer_kids().count();
    let _ = doc.verify(None);
    let _ = doc.verify(Some(u64::MAX));
    let _ = doc.verify_successor(doc.root(), None);
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&TRUSTED) else { return };
    if let Ok(current) = TrustRoot::new(1, 1, None, vec![key]) {
        let _ = doc.verify_successor(&current, Some(0));
    }
});
