//! Strict bundle decoding, then signature and policy checks, on arbitrary bytes.
#![no_main]

use deltaseal_verify::bundle::{Bundle, Policy};
use libfuzzer_sys::fuzz_target;

/// A fixed trusted key: arbitrary inputs must be rejected, never panic.
const TRUSTED: [u8; 32] = [
    0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
    0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
];

fuzz_target!(|data: &[u8]| {
    let Ok(bundle) = Bundle::decode(data) else { return };
    let _ = bundle.manifest();
    let _ = bundle.signer_kids().count();
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&TRUSTED) else { return };
    if let Ok(authenticated) = bundle.authenticate(&[key]) {
        if let Ok(approved) = authenticated.approve(&Policy::default()) {
            let _ = approved.checked_payload();
        }
    }
});
