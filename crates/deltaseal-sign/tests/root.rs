//! Trust roots end to end: build, sign, rotate, verify the chain, and
//! authenticate bundles k-of-n against a root.

mod common;

use common::{PATCH, input, key};
use deltaseal_sign::root::{self, RootBuildError};
use deltaseal_sign::{SignError, add_signature, attach_signature, build_bundle};
use deltaseal_verify::bundle::{Bundle, Policy, PolicyError, SignatureError, kid};
use deltaseal_verify::root::{RootError, SignedRoot, TrustRoot};
use ed25519_dalek::{Signer, VerifyingKey};

fn pk(n: u8) -> VerifyingKey {
    key(n).verifying_key()
}

/// Root v1: keys 1, 2, 3, threshold 2.
fn v1() -> TrustRoot {
    TrustRoot::new(1, 2, Some(2_000_000_000), vec![pk(1), pk(2), pk(3)]).unwrap()
}

fn signed(r: &TrustRoot, signers: &[u8]) -> Vec<u8> {
    let mut doc = root::unsigned(r);
    for n in signers {
        doc = root::sign(&doc, &key(*n)).unwrap();
    }
    doc
}

#[test]
fn root_threshold_of_own_keys() {
    let r = v1();
    let verify = |signers: &[u8]| {
        SignedRoot::decode(&signed(&r, signers))
            .unwrap()
            .verify(None)
    };
    assert_eq!(verify(&[1, 2]), Ok(r.clone()));
    assert_eq!(verify(&[3, 1, 2]), Ok(r.clone()));
    assert_eq!(
        verify(&[1]),
        Err(RootError::ThresholdNotMet {
            needed: 2,
            counted: 1
        })
    );
    // A key not in the root does not count.
    assert_eq!(
        verify(&[1, 9]),
        Err(RootError::ThresholdNotMet {
            needed: 2,
            counted: 1
        })
    );
    // Expired at the trusted time; fine without one.
    let doc = signed(&r, &[1, 2]);
    let d = SignedRoot::decode(&doc).unwrap();
    assert_eq!(
        d.verify(Some(2_000_000_000)),
        Err(RootError::Expired {
            expires: 2_000_000_000,
            now: 2_000_000_000
        })
    );
    assert_eq!(d.verify(Some(1_999_999_999)), Ok(r));
}

#[test]
fn root_same_key_twice_counts_once() {
    let r = v1();
    let doc = signed(&r, &[1]);
    assert_eq!(
        root::sign(&doc, &key(1)),
        Err(RootBuildError::AlreadySigned)
    );
    // Forge a document with key 1's block twice: still one signer.
    let d = SignedRoot::decode(&doc).unwrap();
    let block = d.signature_blocks()[0];
    let twice = deltaseal_verify::root::encode_document(d.body(), &[block, block]);
    assert_eq!(
        SignedRoot::decode(&twice).unwrap().verify(None),
        Err(RootError::ThresholdNotMet {
            needed: 2,
            counted: 1
        })
    );
}

#[test]
fn root_signature_bit_flips_are_rejected() {
    let r = v1();
    let doc = signed(&r, &[1, 2]);
    for i in 0..doc.len() {
        for bit in [0x01, 0x80] {
            let mut bad = doc.clone();
            bad[i] ^= bit;
            match SignedRoot::decode(&bad) {
                Err(_) => {}
                Ok(d) => assert!(
                    d.verify(None).is_err() || d.root() != &r,
                    "flip at {i} accepted"
                ),
            }
        }
    }
}

/// v2 from v1: remove key 3, add keys 4 and 5, threshold 2.
fn v2() -> TrustRoot {
    root::rotate(&v1(), &[pk(4), pk(5)], &[pk(3)], None, None).unwrap()
}

#[test]
fn rotation_needs_old_and_new_thresholds() {
    let old = v1();
    let new = v2();
    assert_eq!(new.version(), 2);
    assert_eq!(new.threshold(), 2);
    let check = |signers: &[u8]| {
        SignedRoot::decode(&signed(&new, signers))
            .unwrap()
            .verify_successor(&old, None)
    };
    // Old keys 1, 2 are in both roots: two signatures satisfy both.
    assert_eq!(check(&[1, 2]), Ok(new.clone()));
    // Old 3 (removed) + new 4: old threshold 2 of {1,2,3} met by 1 and 3.
    assert_eq!(check(&[1, 3, 4]), Ok(new.clone()));
    // Only new keys.
    assert_eq!(
        check(&[4, 5]),
        Err(RootError::OldThresholdNotMet {
            needed: 2,
            counted: 0
        })
    );
    // Only old keys, not enough of them in the new root (3 was removed).
    assert_eq!(
        check(&[1, 3]),
        Err(RootError::ThresholdNotMet {
            needed: 2,
            counted: 1
        })
    );
    // One old key short.
    assert_eq!(
        check(&[1, 4, 5]),
        Err(RootError::OldThresholdNotMet {
            needed: 2,
            counted: 1
        })
    );
}

#[test]
fn rotation_version_must_be_next() {
    let old = v1();
    for (version, ok) in [(1, false), (2, true), (3, false), (u64::MAX, false)] {
        let r = TrustRoot::new(version, 2, None, vec![pk(1), pk(2)]).unwrap();
        let got = SignedRoot::decode(&signed(&r, &[1, 2]))
            .unwrap()
            .verify_successor(&old, None);
        if ok {
            assert_eq!(got, Ok(r));
        } else {
            assert_eq!(
                got,
                Err(RootError::VersionNotNext {
                    current: 1,
                    offered: version
                })
            );
        }
    }
    // No successor of u64::MAX.
    let top = TrustRoot::new(u64::MAX, 1, None, vec![pk(1)]).unwrap();
    assert_eq!(
        root::rotate(&top, &[], &[], None, None),
        Err(RootBuildError::VersionOverflow)
    );
    let zero = TrustRoot::new(1, 1, None, vec![pk(1)]).unwrap();
    let again_doc = signed(&zero, &[1]);
    let again = SignedRoot::decode(&again_doc).unwrap();
    assert_eq!(
        again.verify_successor(&top, None),
        Err(RootError::VersionNotNext {
            current: u64::MAX,
            offered: 1
        })
    );
}

#[test]
fn rotate_refuses_bad_edits() {
    let r = v1();
    assert_eq!(
        root::rotate(&r, &[pk(1)], &[], None, None),
        Err(RootBuildError::AlreadyInRoot)
    );
    assert_eq!(
        root::rotate(&r, &[], &[pk(9)], None, None),
        Err(RootBuildError::NotInRoot)
    );
    assert_eq!(
        root::rotate(&r, &[], &[pk(1), pk(2)], None, None),
        Err(RootBuildError::Root(RootError::InvalidThreshold))
    );
    assert_eq!(
        root::rotate(&r, &[], &[pk(1), pk(2), pk(3)], Some(1), None),
        Err(RootBuildError::Root(RootError::InvalidKeyList))
    );
    let later = root::rotate(&r, &[], &[], Some(3), Some(None)).unwrap();
    assert_eq!((later.threshold(), later.expires()), (3, None));
}

#[test]
fn root_external_signature_round_trip() {
    let r = v1();
    let doc = root::unsigned(&r);
    let tbs = root::external_tbs(&doc).unwrap();
    let sig = key(2).sign(&tbs).to_bytes();
    assert_eq!(
        root::attach_signature(&doc, &pk(1), &sig),
        Err(RootBuildError::BadSignature)
    );
    let doc = root::attach_signature(&doc, &pk(2), &sig).unwrap();
    // The bytes to sign do not change as signatures are added.
    assert_eq!(root::external_tbs(&doc).unwrap(), tbs);
    let doc = root::sign(&doc, &key(3)).unwrap();
    assert_eq!(SignedRoot::decode(&doc).unwrap().verify(None), Ok(r));
}

// ---- bundles against a root (k of n) ----

fn bundle(signers: &[u8]) -> Vec<u8> {
    let keys: Vec<_> = signers.iter().map(|n| key(*n)).collect();
    build_bundle(&input(7), &keys).unwrap()
}

fn auth(bytes: &[u8], r: &TrustRoot) -> Result<Vec<[u8; 16]>, SignatureError> {
    Bundle::decode(bytes)
        .unwrap()
        .authenticate_root(r)
        .map(|a| a.verified_kids().to_vec())
}

#[test]
fn bundle_k_of_n() {
    let r = v1();
    let got = auth(&bundle(&[2, 1]), &r).unwrap();
    let mut want = vec![kid(&pk(1)), kid(&pk(2))];
    want.sort_by_key(|k| r.kids().position(|x| x == *k));
    assert_eq!(got, want);
    // k-1 signatures.
    assert_eq!(
        auth(&bundle(&[1]), &r),
        Err(SignatureError::ThresholdNotMet {
            needed: 2,
            counted: 1
        })
    );
    // The same key twice counts once.
    assert_eq!(
        auth(&bundle(&[1, 1]), &r),
        Err(SignatureError::ThresholdNotMet {
            needed: 2,
            counted: 1
        })
    );
    // A key not in the root is ignored, not counted.
    assert_eq!(
        auth(&bundle(&[1, 9]), &r),
        Err(SignatureError::ThresholdNotMet {
            needed: 2,
            counted: 1
        })
    );
    assert_eq!(
        auth(&bundle(&[8, 9]), &r),
        Err(SignatureError::NoTrustedSignature)
    );
    assert_eq!(auth(&bundle(&[1, 9, 3]), &r).map(|k| k.len()), Ok(2));
}

#[test]
fn revoked_key_never_counts() {
    // Key 3 is removed in v2: a bundle signed by 3 and 4 passed under
    // v1-with-4... but under v2 only key 4 counts.
    let v2 = v2();
    assert_eq!(
        auth(&bundle(&[3, 4]), &v2),
        Err(SignatureError::ThresholdNotMet {
            needed: 2,
            counted: 1
        })
    );
    assert_eq!(
        auth(&bundle(&[3]), &v2),
        Err(SignatureError::NoTrustedSignature)
    );
    assert_eq!(auth(&bundle(&[4, 5]), &v2).map(|k| k.len()), Ok(2));
}

#[test]
fn single_key_is_a_threshold_one_root() {
    let single = TrustRoot::single(pk(1));
    assert_eq!(auth(&bundle(&[1]), &single), Ok(vec![kid(&pk(1))]));
    assert_eq!(
        auth(&bundle(&[2]), &single),
        Err(SignatureError::NoTrustedSignature)
    );
    let one = bundle(&[1]);
    let a = Bundle::decode(&one)
        .unwrap()
        .authenticate(&[pk(1)])
        .unwrap();
    assert_eq!(a.expires(), None);
}

#[test]
fn expired_root_refuses_bundles_with_trusted_time() {
    let r = v1();
    let b = bundle(&[1, 2]);
    let approve = |now| {
        Bundle::decode(&b)
            .unwrap()
            .authenticate_root(&r)
            .unwrap()
            .approve(&Policy {
                now,
                ..Policy::default()
            })
            .map(|_| ())
    };
    assert_eq!(approve(None), Ok(()));
    assert_eq!(approve(Some(0)), Ok(()));
    assert_eq!(approve(Some(1_999_999_999)), Ok(()));
    assert_eq!(
        approve(Some(2_000_000_000)),
        Err(PolicyError::Expired {
            expires: 2_000_000_000,
            now: 2_000_000_000
        })
    );
    assert_eq!(
        approve(Some(u64::MAX)),
        Err(PolicyError::Expired {
            expires: 2_000_000_000,
            now: u64::MAX
        })
    );
}

#[test]
fn signature_moved_onto_another_manifest_is_rejected() {
    let r = TrustRoot::single(pk(1));
    let a = bundle(&[1]);
    let other = build_bundle(&input(8), &[key(2)]).unwrap();
    let da = Bundle::decode(&a).unwrap();
    let dother = Bundle::decode(&other).unwrap();
    // Sequence 8's manifest with sequence 7's signature block.
    let moved = deltaseal_sign::bundle::envelope(
        dother.manifest_bytes(),
        dother.suit_digest(),
        &[da.signature_blocks()[0].to_vec()],
        Some(PATCH),
    );
    assert_eq!(auth(&moved, &r), Err(SignatureError::NoTrustedSignature));
}

#[test]
fn signatures_added_one_by_one_and_externally() {
    let r = v1();
    let b = bundle(&[1]);
    assert_eq!(add_signature(&b, &key(1)), Err(SignError::AlreadySigned));
    let b2 = add_signature(&b, &key(2)).unwrap();
    assert_eq!(auth(&b2, &r).map(|k| k.len()), Ok(2));
    // External: the bytes to sign, signed elsewhere, attached.
    let tbs = deltaseal_sign::bundle::external_tbs(&b).unwrap();
    assert_eq!(deltaseal_sign::bundle::external_tbs(&b2).unwrap(), tbs);
    let sig = key(3).sign(&tbs).to_bytes();
    assert_eq!(
        attach_signature(&b, &pk(2), &sig),
        Err(SignError::BadSignature)
    );
    let mut flipped = sig;
    flipped[0] ^= 1;
    assert_eq!(
        attach_signature(&b, &pk(3), &flipped),
        Err(SignError::BadSignature)
    );
    let b3 = attach_signature(&b, &pk(3), &sig).unwrap();
    assert_eq!(auth(&b3, &r).map(|k| k.len()), Ok(2));
    assert_eq!(
        attach_signature(&b3, &pk(3), &sig),
        Err(SignError::AlreadySigned)
    );
    // Up to the limit, then refused.
    let mut full = b;
    for n in 2..=8 {
        full = add_signature(&full, &key(n)).unwrap();
    }
    assert_eq!(
        add_signature(&full, &key(20)),
        Err(SignError::TooManySigners { max: 8 })
    );
}

#[test]
fn every_bit_flip_in_a_k_of_n_bundle_is_rejected() {
    // One bit flipped anywhere in envelope, signatures, manifest or payload
    // of a 2-of-3 bundle: decode, authenticate_root or the payload check
    // refuses it; nothing panics.
    let r = v1();
    let bytes = bundle(&[1, 2]);
    let accepts = |b: &[u8]| -> bool {
        let Ok(d) = Bundle::decode(b) else {
            return false;
        };
        let Ok(a) = d.authenticate_root(&r) else {
            return false;
        };
        let Ok(ok) = a.approve(&Policy::default()) else {
            return false;
        };
        ok.checked_payload().is_ok()
    };
    assert!(accepts(&bytes));
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut bad = bytes.clone();
            bad[i] ^= 1 << bit;
            assert!(!accepts(&bad), "flip of bit {bit} at byte {i} accepted");
        }
    }
}

#[test]
fn device_bound_bundle_only_for_that_device() {
    use deltaseal_sign::bundle::{DEFAULT_COMPONENT_ID, build_bundle_with};
    use deltaseal_verify::bundle::DecodeError;
    use deltaseal_verify::bundle::manifest::Manifest;
    let inp = input(7);
    let dev = deltaseal_sign::ids::device_id(&inp.class_id, "SN-0042");
    let other = deltaseal_sign::ids::device_id(&inp.class_id, "SN-0043");
    assert_ne!(dev, other);
    let bytes = build_bundle_with(&inp, DEFAULT_COMPONENT_ID, Some(&dev), &[key(1)]).unwrap();
    let d = Bundle::decode(&bytes).unwrap();
    assert_eq!(d.manifest().device_id, Some(dev));
    let approve = |device_id| {
        Bundle::decode(&bytes)
            .unwrap()
            .authenticate(&[pk(1)])
            .unwrap()
            .approve(&Policy {
                device_id,
                vendor_id: Some(inp.vendor_id),
                class_id: Some(inp.class_id),
                ..Policy::default()
            })
            .map(|_| ())
    };
    assert_eq!(approve(Some(dev)), Ok(()));
    assert_eq!(approve(Some(other)), Err(PolicyError::DeviceMismatch));
    assert_eq!(approve(None), Err(PolicyError::DeviceMismatch));
    // Without a device id the bundle is for the whole class.
    let class_wide = bundle(&[1]);
    assert_eq!(
        Bundle::decode(&class_wide).unwrap().manifest().device_id,
        None
    );
    // Every truncation of the device manifest is refused, never a panic.
    let m = d.manifest_bytes();
    assert!(Manifest::decode(m).is_ok());
    for n in 0..m.len() {
        assert!(Manifest::decode(&m[..n]).is_err());
    }
    // Parameter 24 without condition 24 (or the reverse) is another shape:
    // patch the shared sequence's array head 0x88 (8 items) to 0x86.
    let at = m.windows(2).position(|w| w == [0x88, 0x14]).unwrap();
    let mut bad = m.to_vec();
    bad[at] = 0x86;
    assert!(matches!(
        Manifest::decode(&bad),
        Err(DecodeError::UnsupportedManifest | DecodeError::TrailingBytes)
    ));
    let mut bad = m.to_vec();
    bad[at] = 0x87;
    assert_eq!(
        Manifest::decode(&bad),
        Err(DecodeError::UnsupportedManifest)
    );
}
