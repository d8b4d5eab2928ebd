//! The device-side COSE_Sign1 view and Sig_structure agree with coset.

mod common;

use common::{PATCH, input, key};
use coset::{
    CborSerializable, CoseSign1, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable, iana,
};
use deltaseal_sign::build_bundle;
use deltaseal_sign::bundle::{
    DEFAULT_COMPONENT_ID, envelope, manifest_bytes, protected_header, sig_structure, suit_digest,
};
use deltaseal_verify::bundle::{Bundle, DecodeError, SignatureError, cose::Sign1, kid};
use ed25519_dalek::{Signature, Signer};

fn coset_sign1(alg: iana::Algorithm, payload: &[u8], n: u8) -> CoseSign1 {
    let k = key(n);
    let protected = HeaderBuilder::new()
        .algorithm(alg)
        .key_id(kid(&k.verifying_key()).to_vec())
        .build();
    CoseSign1Builder::new()
        .protected(protected)
        .create_detached_signature(payload, b"", |tbs| k.sign(tbs).to_bytes().to_vec())
        .build()
}

/// The auth wrapper's COSE_Sign1 blocks of one of our bundles.
fn our_sign1s(bundle: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    use minicbor::Decoder;
    let mut d = Decoder::new(bundle);
    d.tag().unwrap();
    d.map().unwrap();
    d.u8().unwrap();
    let auth = d.bytes().unwrap();
    let mut a = Decoder::new(auth);
    let n = a.array().unwrap().unwrap();
    let digest = a.bytes().unwrap().to_vec();
    let sigs = (1..n).map(|_| a.bytes().unwrap().to_vec()).collect();
    (digest, sigs)
}

#[test]
fn sig_structure_matches_coset_tbs() {
    let m = manifest_bytes(&input(1), DEFAULT_COMPONENT_ID).unwrap();
    let digest = suit_digest(&m);
    let s = coset_sign1(iana::Algorithm::EdDSA, &digest, 1);
    let protected = s.protected.clone().to_vec().unwrap();
    assert_eq!(protected, protected_header(&kid(&key(1).verifying_key())));
    assert_eq!(
        s.tbs_detached_data(&digest, b""),
        sig_structure(&protected, &digest)
    );
}

#[test]
fn our_sign1_is_byte_identical_to_coset_and_coset_verifies_it() {
    let bytes = build_bundle(&input(9), &[key(1), key(2)]).unwrap();
    let (digest, sigs) = our_sign1s(&bytes);
    for (n, raw) in [1u8, 2].into_iter().zip(&sigs) {
        let c = CoseSign1::from_tagged_slice(raw).unwrap();
        assert!(c.payload.is_none());
        let vk = key(n).verifying_key();
        c.verify_detached_signature(&digest, b"", |sig, tbs| {
            vk.verify_strict(tbs, &Signature::from_slice(sig).unwrap())
        })
        .unwrap();
        // coset verifies under the wrong key fails (the closure is real).
        let other = key(3).verifying_key();
        assert!(
            c.verify_detached_signature(&digest, b"", |sig, tbs| {
                other.verify_strict(tbs, &Signature::from_slice(sig).unwrap())
            })
            .is_err()
        );
        let made = coset_sign1(iana::Algorithm::EdDSA, &digest, n);
        assert_eq!(&made.to_tagged_vec().unwrap(), raw);
    }
}

#[test]
fn our_view_verifies_coset_made_signatures_eddsa_and_ed25519() {
    let m = manifest_bytes(&input(4), DEFAULT_COMPONENT_ID).unwrap();
    let digest = suit_digest(&m);
    for alg in [iana::Algorithm::EdDSA, iana::Algorithm::Ed25519] {
        let raw = coset_sign1(alg, &digest, 5).to_tagged_vec().unwrap();
        let view = Sign1::decode(&raw).unwrap();
        assert_eq!(view.alg, alg as i64);
        assert_eq!(view.kid, Some(kid(&key(5).verifying_key())));
        let bytes = envelope(&m, &digest, &[raw], Some(PATCH));
        let b = Bundle::decode(&bytes).unwrap();
        assert!(b.clone().authenticate(&[key(5).verifying_key()]).is_ok());
        assert_eq!(
            b.authenticate(&[key(6).verifying_key()]).err(),
            Some(SignatureError::NoTrustedSignature)
        );
    }
}

#[test]
fn kid_in_unprotected_header_and_no_kid_both_work() {
    let m = manifest_bytes(&input(4), DEFAULT_COMPONENT_ID).unwrap();
    let digest = suit_digest(&m);
    let k = key(7);
    for with_kid in [true, false] {
        let mut unprotected = HeaderBuilder::new();
        if with_kid {
            unprotected = unprotected.key_id(kid(&k.verifying_key()).to_vec());
        }
        let c = CoseSign1Builder::new()
            .protected(
                HeaderBuilder::new()
                    .algorithm(iana::Algorithm::EdDSA)
                    .build(),
            )
            .unprotected(unprotected.build())
            .create_detached_signature(&digest, b"", |tbs| k.sign(tbs).to_bytes().to_vec())
            .build();
        let bytes = envelope(&m, &digest, &[c.to_tagged_vec().unwrap()], Some(PATCH));
        let b = Bundle::decode(&bytes).unwrap();
        let kids: Vec<_> = b.signer_kids().collect();
        assert_eq!(kids, vec![with_kid.then(|| kid(&k.verifying_key()))]);
        assert!(
            b.authenticate(&[key(1).verifying_key(), k.verifying_key()])
                .is_ok()
        );
    }
}

#[test]
fn unsupported_cose_headers_rejected() {
    let m = manifest_bytes(&input(4), DEFAULT_COMPONENT_ID).unwrap();
    let digest = suit_digest(&m);
    let k = key(7);
    let make = |protected: coset::Header, unprotected: coset::Header| {
        let c = CoseSign1Builder::new()
            .protected(protected)
            .unprotected(unprotected)
            .create_detached_signature(&digest, b"", |tbs| k.sign(tbs).to_bytes().to_vec())
            .build();
        Bundle::decode(&envelope(&m, &digest, &[c.to_tagged_vec().unwrap()], None))
            .map(|_| ())
            .err()
    };
    let eddsa = || HeaderBuilder::new().algorithm(iana::Algorithm::EdDSA);
    // crit in the protected header.
    assert_eq!(
        make(
            eddsa()
                .add_critical(iana::HeaderParameter::ContentType)
                .content_format(iana::CoapContentFormat::CoseSign1)
                .build(),
            HeaderBuilder::new().build()
        ),
        Some(DecodeError::UnknownCriticalHeader)
    );
    // ES256 is not accepted.
    assert_eq!(
        make(
            HeaderBuilder::new()
                .algorithm(iana::Algorithm::ES256)
                .build(),
            HeaderBuilder::new().build()
        ),
        Some(DecodeError::UnsupportedAlgorithm)
    );
    // kid in both buckets.
    assert_eq!(
        make(
            eddsa().key_id(vec![1; 16]).build(),
            HeaderBuilder::new().key_id(vec![1; 16]).build()
        ),
        Some(DecodeError::DuplicateKey)
    );
    // kid of the wrong length.
    assert_eq!(
        make(
            eddsa().key_id(vec![1; 8]).build(),
            HeaderBuilder::new().build()
        ),
        Some(DecodeError::UnexpectedValue)
    );
    // Unknown non-critical unprotected header: ignored.
    assert_eq!(
        make(
            eddsa().build(),
            HeaderBuilder::new()
                .content_type("text/plain".into())
                .build()
        ),
        None
    );
    // Unknown protected header: refused (it is signed and could change meaning).
    assert_eq!(
        make(
            eddsa().content_type("text/plain".into()).build(),
            HeaderBuilder::new().build()
        ),
        Some(DecodeError::UnsupportedHeader)
    );
}
