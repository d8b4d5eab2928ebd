//! Strict decoding of trust root documents: every rule has a negative test.
//! Signing and rotation tests live in `deltaseal-sign/tests/root.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use alloc::vec;
use alloc::vec::Vec;

use ed25519_dalek::SigningKey;

use super::*;

fn key(n: u8) -> VerifyingKey {
    SigningKey::from_bytes(&[n; 32]).verifying_key()
}

fn root(threshold: usize, expires: Option<u64>) -> TrustRoot {
    TrustRoot::new(1, threshold, expires, vec![key(1), key(2), key(3)]).unwrap()
}

fn decode(bytes: &[u8]) -> Result<TrustRoot, RootError> {
    SignedRoot::decode(bytes).map(|d| d.root().clone())
}

#[test]
fn body_round_trips_and_is_deterministic() {
    for r in [root(2, None), root(3, Some(u64::MAX)), root(1, Some(0))] {
        let body = r.encode_body();
        assert_eq!(TrustRoot::decode_body(&body), Ok(r.clone()));
        let doc = encode_document(&body, &[]);
        let d = SignedRoot::decode(&doc).unwrap();
        assert_eq!(d.root(), &r);
        assert_eq!(d.body(), &body[..]);
        assert!(d.signature_blocks().is_empty());
    }
    // Keys are sorted whatever order they are given in.
    let a = TrustRoot::new(1, 1, None, vec![key(3), key(1)]).unwrap();
    let b = TrustRoot::new(1, 1, None, vec![key(1), key(3)]).unwrap();
    assert_eq!(a.encode_body(), b.encode_body());
}

#[test]
fn new_refuses_bad_parameters() {
    let keys = || vec![key(1), key(2)];
    assert_eq!(
        TrustRoot::new(0, 1, None, keys()),
        Err(RootError::InvalidVersion)
    );
    assert_eq!(
        TrustRoot::new(1, 0, None, keys()),
        Err(RootError::InvalidThreshold)
    );
    assert_eq!(
        TrustRoot::new(1, 3, None, keys()),
        Err(RootError::InvalidThreshold)
    );
    assert_eq!(
        TrustRoot::new(1, 1, None, vec![]),
        Err(RootError::InvalidKeyList)
    );
    assert_eq!(
        TrustRoot::new(1, 1, None, vec![key(1), key(1)]),
        Err(RootError::InvalidKeyList)
    );
    // A bundle carries at most 8 signatures: threshold 9 is refused.
    let nine: Vec<_> = (1..=9).map(key).collect();
    assert_eq!(
        TrustRoot::new(1, 9, None, nine.clone()),
        Err(RootError::InvalidThreshold)
    );
    assert!(TrustRoot::new(1, 8, None, nine).is_ok());
    let many: Vec<_> = (1..=17).map(key).collect();
    assert_eq!(
        TrustRoot::new(1, 1, None, many),
        Err(RootError::InvalidKeyList)
    );
    // The identity point is a small-order (weak) key.
    let mut weak = [0u8; 32];
    weak[0] = 1;
    let weak = VerifyingKey::from_bytes(&weak).unwrap();
    assert!(weak.is_weak());
    assert_eq!(
        TrustRoot::new(1, 1, None, vec![weak]),
        Err(RootError::InvalidKey)
    );
}

/// Hand-encoded bodies: `{1: v, 2: t, 4: [keys]}`.
fn body_with(entries: &[(u8, &[u8])]) -> Vec<u8> {
    let mut out = vec![0xa0 | entries.len() as u8];
    for (k, v) in entries {
        out.push(*k);
        out.extend_from_slice(v);
    }
    out
}

fn keys_array(keys: &[VerifyingKey]) -> Vec<u8> {
    let mut out = vec![0x80 | keys.len() as u8];
    for k in keys {
        out.extend_from_slice(&[0x58, 0x20]);
        out.extend_from_slice(k.as_bytes());
    }
    out
}

fn sorted(mut keys: Vec<VerifyingKey>) -> Vec<VerifyingKey> {
    keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    keys
}

#[test]
fn malformed_bodies_get_exact_errors() {
    let ks = keys_array(&sorted(vec![key(1), key(2)]));
    let good = body_with(&[(1, &[0x01]), (2, &[0x01]), (4, &ks)]);
    assert!(TrustRoot::decode_body(&good).is_ok());
    let dec = |b: &[u8]| TrustRoot::decode_body(b);
    // Duplicate and unsorted map keys.
    assert_eq!(
        dec(&body_with(&[(1, &[0x01]), (1, &[0x01]), (4, &ks)])),
        Err(RootError::Decode(DecodeError::DuplicateKey))
    );
    assert_eq!(
        dec(&body_with(&[(2, &[0x01]), (1, &[0x01]), (4, &ks)])),
        Err(RootError::Decode(DecodeError::UnsortedKeys))
    );
    // Unknown field, missing fields.
    assert_eq!(
        dec(&body_with(&[
            (1, &[0x01]),
            (2, &[0x01]),
            (4, &ks),
            (5, &[0x00])
        ])),
        Err(RootError::Decode(DecodeError::UnexpectedField))
    );
    assert_eq!(
        dec(&body_with(&[(1, &[0x01]), (4, &ks)])),
        Err(RootError::Decode(DecodeError::MissingField))
    );
    // Version 0, threshold 0, threshold above the key count.
    assert_eq!(
        dec(&body_with(&[(1, &[0x00]), (2, &[0x01]), (4, &ks)])),
        Err(RootError::InvalidVersion)
    );
    assert_eq!(
        dec(&body_with(&[(1, &[0x01]), (2, &[0x00]), (4, &ks)])),
        Err(RootError::InvalidThreshold)
    );
    assert_eq!(
        dec(&body_with(&[(1, &[0x01]), (2, &[0x03]), (4, &ks)])),
        Err(RootError::InvalidThreshold)
    );
    // Threshold u64::MAX.
    assert_eq!(
        dec(&body_with(&[
            (1, &[0x01]),
            (2, &[0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            (4, &ks)
        ])),
        Err(RootError::InvalidThreshold)
    );
    // Non-canonical integer, indefinite-length array.
    assert_eq!(
        dec(&body_with(&[(1, &[0x18, 0x01]), (2, &[0x01]), (4, &ks)])),
        Err(RootError::Decode(DecodeError::NonCanonical))
    );
    let mut indefinite = ks.clone();
    indefinite[0] = 0x9f;
    indefinite.push(0xff);
    assert_eq!(
        dec(&body_with(&[(1, &[0x01]), (2, &[0x01]), (4, &indefinite)])),
        Err(RootError::Decode(DecodeError::IndefiniteLength))
    );
    // Keys: duplicate, unsorted, wrong length, empty, too many, weak.
    let k = sorted(vec![key(1), key(2)]);
    let dup = keys_array(&[k[0], k[0]]);
    assert_eq!(
        dec(&body_with(&[(1, &[0x01]), (2, &[0x01]), (4, &dup)])),
        Err(RootError::Decode(DecodeError::DuplicateKey))
    );
    let unsorted = keys_array(&[k[1], k[0]]);
    assert_eq!(
        dec(&body_with(&[(1, &[0x01]), (2, &[0x01]), (4, &unsorted)])),
        Err(RootError::Decode(DecodeError::UnsortedKeys))
    );
    let mut short = vec![0x81, 0x58, 0x1f];
    short.extend_from_slice(&[1; 31]);
    assert_eq!(
        dec(&body_with(&[(1, &[0x01]), (2, &[0x01]), (4, &short)])),
        Err(RootError::Decode(DecodeError::UnexpectedValue))
    );
    assert_eq!(
        dec(&body_with(&[(1, &[0x01]), (2, &[0x01]), (4, &[0x80])])),
        Err(RootError::InvalidKeyList)
    );
    assert_eq!(
        dec(&body_with(&[(1, &[0x01]), (2, &[0x01]), (4, &[0x91])])),
        Err(RootError::Decode(DecodeError::TooLarge))
    );
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak = keys_array(&[VerifyingKey::from_bytes(&identity).unwrap()]);
    assert_eq!(
        dec(&body_with(&[(1, &[0x01]), (2, &[0x01]), (4, &weak)])),
        Err(RootError::InvalidKey)
    );
    // Trailing bytes.
    let mut trailing = good.clone();
    trailing.push(0x00);
    assert_eq!(
        dec(&trailing),
        Err(RootError::Decode(DecodeError::TrailingBytes))
    );
}

#[test]
fn malformed_documents_get_exact_errors() {
    let doc = encode_document(&root(2, None).encode_body(), &[]);
    // Truncation at every byte never panics and is refused.
    for n in 0..doc.len() {
        assert!(decode(&doc[..n]).is_err(), "truncated to {n}");
    }
    let mut trailing = doc.clone();
    trailing.push(0x00);
    assert_eq!(
        decode(&trailing),
        Err(RootError::Decode(DecodeError::TrailingBytes))
    );
    // Not a 2-array.
    assert_eq!(
        decode(&[0xa0]),
        Err(RootError::Decode(DecodeError::UnexpectedType))
    );
    assert_eq!(
        decode(&[0x81, 0x40]),
        Err(RootError::Decode(DecodeError::UnexpectedValue))
    );
    // Huge declared body length.
    assert_eq!(
        decode(&[0x82, 0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
        Err(RootError::Decode(DecodeError::TooLarge))
    );
    // Huge declared signature count.
    let mut many = doc.clone();
    let at = many.len() - 1;
    assert_eq!(many[at], 0x80);
    many[at] = 0x9b;
    many.extend_from_slice(&[0xff; 8]);
    assert_eq!(decode(&many), Err(RootError::Decode(DecodeError::TooLarge)));
    // A signature block that is not a COSE_Sign1.
    let bad = encode_document(&root(2, None).encode_body(), &[&[0xa0]]);
    assert_eq!(
        decode(&bad),
        Err(RootError::Decode(DecodeError::UnexpectedType))
    );
    // Deep nesting inside a skipped unprotected header.
    let mut deep = vec![0xd2, 0x84, 0x43, 0xa1, 0x01, 0x27, 0xa1, 0x18, 0x63];
    deep.extend_from_slice(&[0x81; 20]);
    deep.push(0x00);
    deep.push(0xf6);
    deep.extend_from_slice(&[0x58, 0x40]);
    deep.extend_from_slice(&[0; 64]);
    let nested = encode_document(&root(2, None).encode_body(), &[&deep]);
    assert_eq!(
        decode(&nested),
        Err(RootError::Decode(DecodeError::NestingTooDeep))
    );
}

#[test]
fn unsigned_root_meets_no_threshold_and_expiry_edges() {
    let r = root(2, Some(100));
    let doc = encode_document(&r.encode_body(), &[]);
    let d = SignedRoot::decode(&doc).unwrap();
    assert_eq!(
        d.verify(None),
        Err(RootError::ThresholdNotMet {
            needed: 2,
            counted: 0
        })
    );
    assert_eq!(r.check_expiry(None), Ok(()));
    assert_eq!(r.check_expiry(Some(99)), Ok(()));
    assert_eq!(
        r.check_expiry(Some(100)),
        Err(RootError::Expired {
            expires: 100,
            now: 100
        })
    );
    assert_eq!(
        r.check_expiry(Some(u64::MAX)),
        Err(RootError::Expired {
            expires: 100,
            now: u64::MAX
        })
    );
    assert_eq!(root(1, None).check_expiry(Some(u64::MAX)), Ok(()));
    assert_eq!(
        root(1, Some(u64::MAX)).check_expiry(Some(u64::MAX - 1)),
        Ok(())
    );
}
