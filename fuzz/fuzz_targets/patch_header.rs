//! Patch header + chunk table decoding on arbitrary bytes.
#![no_main]

use deltaseal_verify::patch::{Limits, PatchHeader, index_digest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(header) = PatchHeader::decode(data, &limits) {
        // What decodes must re-encode to the same bytes it was read from.
        let encoded = header.encode();
        assert_eq!(encoded.len(), header.encoded_len());
        assert_eq!(data.get(..encoded.len()), Some(&encoded[..]));
        assert!(index_digest(data, &limits).is_ok());
    }
});
