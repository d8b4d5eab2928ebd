//! The trust-root document decoder and its signature/threshold checks on
//! hostile bytes: decode, verify on its own, verify as a successor of a
//! fixed root, and decode the body alone. All must end in Ok or an error.
#![no_main]

use deltaseal_verify::root::{SignedRoot, TrustRoot};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = TrustRoot::decode_body(data);
    if let Ok(doc) = SignedRoot::decode(data) {
        let _ = doc.verify(None);
        let _ = doc.verify(Some(u64::MAX));
        let current = doc.root().clone();
        let _ = doc.verify_successor(&current, None);
        let _ = doc.signer_kids().count();
    }
});
