//! Property tests for the CBOR types not covered by proptest.rs: trust roots
//! (sign's `root::unsigned` / `root::sign` → verify's strict `SignedRoot`
//! decoder) and COSE_Sign1 headers (sign's encoders → verify's
//! `cose::Sign1` view). Each writer/reader pair must agree field by field,
//! and what decodes must re-encode to the same bytes.

use deltaseal_sign::bundle::{
    EXTERNAL_PROTECTED, protected_header, sig_structure, sign1, sign1_unprotected_kid,
};
use deltaseal_sign::root;
use deltaseal_verify::bundle::cose::{ALG_EDDSA, Sign1};
use deltaseal_verify::bundle::{DecodeError, kid};
use deltaseal_verify::root::{RootError, SignedRoot, TrustRoot};
use ed25519_dalek::{Signer, SigningKey};
use proptest::prelude::*;

/// Key `n` of a pool of distinct test keys.
fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n.wrapping_mul(37).wrapping_add(1); 32])
}

/// A trust root's parts: key indices (distinct), threshold, version, expiry.
fn root_parts() -> impl Strategy<Value = (Vec<u8>, usize, u64, Option<u64>)> {
    proptest::sample::subsequence((0u8..40).collect::<Vec<_>>(), 1..=16).prop_flat_map(|keys| {
        let n = keys.len().min(8);
        (
            Just(keys),
            1..=n,
            1u64..=u64::MAX,
            proptest::option::of(any::<u64>()),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever root sign builds and however many of its keys (and
    /// strangers) sign it, verify decodes the same root, the body is the
    /// canonical encoding, the signers are listed in order, and the root
    /// verifies exactly when a threshold of distinct own keys signed.
    #[test]
    fn trust_root_sign_and_strict_decoder_agree(
        (keys, threshold, version, expires) in root_parts(),
        signers in proptest::collection::vec(0u8..48, 0..10),
    ) {
        let publics = keys.iter().map(|n| key(*n).verifying_key()).collect();
        let r = TrustRoot::new(version, threshold, expires, publics).unwrap();
        let mut doc = root::unsigned(&r);
        let mut signed_by = Vec::new();
        for n in &signers {
            if signed_by.contains(n) {
                // sign refuses a second signature by the same key
                prop_assert!(root::sign(&doc, &key(*n)).is_err());
                continue;
            }
            doc = root::sign(&doc, &key(*n)).unwrap();
            signed_by.push(*n);
        }
        let decoded = SignedRoot::decode(&doc).unwrap();
        prop_assert_eq!(decoded.root(), &r);
        let body = r.encode_body();
        prop_assert_eq!(decoded.body(), body.as_slice());
        prop_assert_eq!(TrustRoot::decode_body(decoded.body()).unwrap(), r.clone());
        let kids: Vec<_> = decoded.signer_kids().collect();
        let expected: Vec<_> = signed_by
            .iter()
            .map(|n| Some(kid(&key(*n).verifying_key())))
            .collect();
        prop_assert_eq!(kids, expected);
        let own = signed_by.iter().filter(|n| keys.contains(n)).count();
        match decoded.verify(None) {
            Ok(v) => {
                prop_assert!(own >= threshold);
                prop_assert_eq!(v, r.clone());
            }
            Err(e) => prop_assert_eq!(e, RootError::ThresholdNotMet { needed: threshold, counted: own }),
        }
        // Re-assembling the decoded parts gives the document back.
        let again = deltaseal_verify::root::encode_document(
            decoded.body(),
            decoded.signature_blocks(),
        );
        prop_assert_eq!(again, doc);
    }

    /// The protected header deltaseal writes, with the kid in either
    /// bucket, decodes to exactly the fields written, and the signature
    /// verifies over the device's Sig_structure.
    #[test]
    fn cose_sign1_headers_round_trip(seed in any::<[u8; 32]>(), payload in proptest::collection::vec(any::<u8>(), 0..64)) {
        let k = SigningKey::from_bytes(&seed);
        let id = kid(&k.verifying_key());

        let protected = protected_header(&id);
        let sig = k.sign(&sig_structure(&protected, &payload)).to_bytes();
        let bytes = sign1(&protected, &sig);
        let s = Sign1::decode(&bytes).unwrap();
        prop_assert_eq!(s, Sign1 { protected: &protected, alg: ALG_EDDSA, kid: Some(id), signature: sig });
        prop_assert!(k.verifying_key().verify_strict(&sig_structure(s.protected, &payload), &s.signature.into()).is_ok());

        let sig = k.sign(&sig_structure(EXTERNAL_PROTECTED, &payload)).to_bytes();
        let bytes = sign1_unprotected_kid(EXTERNAL_PROTECTED, &id, &sig);
        let s = Sign1::decode(&bytes).unwrap();
        prop_assert_eq!(s, Sign1 { protected: EXTERNAL_PROTECTED, alg: ALG_EDDSA, kid: Some(id), signature: sig });
        prop_assert_eq!(sign1_unprotected_kid(s.protected, &id, &s.signature), bytes);

        let bytes = sign1(EXTERNAL_PROTECTED, &sig);
        prop_assert_eq!(Sign1::decode(&bytes).unwrap().kid, None);

        // A kid in both buckets is refused (RFC 9052 §3).
        let both = sign1_unprotected_kid(&protected, &id, &sig);
        prop_assert_eq!(Sign1::decode(&both), Err(DecodeError::DuplicateKey));
    }
}
