//! The device-side COSE_Sign1 decoder (`bundle::cose::Sign1::decode`) on its
//! own, on hostile bytes, plus a structured canonical check against the host
//! encoder in deltaseal-sign: whatever decodes has exactly one byte form.
//!
//! - The protected header can only hold `alg` and `kid`; for EdDSA (-8), the
//!   algorithm the host writes, it must be byte-identical to the host's
//!   `EXTERNAL_PROTECTED` (`{1: -8}`) or `protected_header(kid)`
//!   (`{1: -8, 4: kid}`).
//! - When the unprotected header is one the host writes (`{}` or
//!   `{4: kid}`), the host's `sign1` / `sign1_unprotected_kid` re-encodes the
//!   decoded fields to exactly the input bytes.
//! - Whatever the host encodes from the decoded fields decodes back to the
//!   same fields, and the signature is the input's last 64 bytes.
#![no_main]

use deltaseal_sign::bundle::{EXTERNAL_PROTECTED, protected_header, sign1, sign1_unprotected_kid};
use deltaseal_verify::bundle::cbor::Reader;
use deltaseal_verify::bundle::cose::{ALG_EDDSA, MAX_PROTECTED, Sign1};
use deltaseal_verify::bundle::sig_structure;
use libfuzzer_sys::fuzz_target;

/// The unprotected header's encoded bytes inside an accepted COSE_Sign1.
fn unprotected(data: &[u8]) -> &[u8] {
    let mut r = Reader::new(data);
    r.tag().expect("accepted input has its tag");
    r.array_exact(4).expect("accepted input is a 4-array");
    r.bytes(MAX_PROTECTED)
        .expect("accepted input has a protected bstr");
    let start = r.position();
    // The map is at depth 2 (tag, array): its values at depth 3, as the
    // decoder skips them. With skip(3) here, values the decoder accepted at
    // the deepest level failed as NestingTooDeep (a harness bug, found by
    // this target: fuzz/artifacts crash-bc314a31, see docs/fuzzing.md).
    r.skip(2).expect("accepted input has an unprotected map");
    &data[start..r.position()]
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = Sign1::decode(data) else { return };

    assert!(
        data.ends_with(&s.signature),
        "signature is not the last item"
    );
    let tbs = sig_structure(s.protected, b"payload");
    assert!(tbs.windows(s.protected.len()).any(|w| w == s.protected));

    // The protected header holds `alg` (one byte for -8 and -19) and at
    // most a kid; when the host can write it, it has one byte form.
    let kid_protected = s.protected.len() > EXTERNAL_PROTECTED.len();
    if kid_protected {
        assert!(s.kid.is_some(), "protected header holds more than alg");
    }
    if s.alg == ALG_EDDSA {
        let host = match s.kid.filter(|_| kid_protected) {
            Some(kid) => protected_header(&kid),
            None => EXTERNAL_PROTECTED.to_vec(),
        };
        assert_eq!(s.protected, host, "non-canonical protected header");
    }

    // Re-encoding with the host encoder gives back the input bytes.
    let unprot = unprotected(data);
    if unprot == [0xa0] {
        assert_eq!(sign1(s.protected, &s.signature), data, "re-encode differs");
    }
    if let Some(kid) = s.kid.filter(|_| !kid_protected)
        && unprot == [&[0xa1, 0x04, 0x50][..], &kid].concat()
    {
        let again = sign1_unprotected_kid(s.protected, &kid, &s.signature);
        assert_eq!(again, data, "re-encode with unprotected kid differs");
    }

    // What the host writes from these fields decodes to the same fields.
    let plain = sign1(s.protected, &s.signature);
    let back = Sign1::decode(&plain).expect("host encoding of decoded fields decodes");
    let expected_kid = s.kid.filter(|_| kid_protected);
    assert_eq!(
        back,
        Sign1 {
            kid: expected_kid,
            ..s
        }
    );
    if let Some(kid) = s.kid.filter(|_| !kid_protected) {
        let with_kid = sign1_unprotected_kid(s.protected, &kid, &s.signature);
        let back = Sign1::decode(&with_kid).expect("host encoding with unprotected kid decodes");
        assert_eq!(back, s);
    }
});
