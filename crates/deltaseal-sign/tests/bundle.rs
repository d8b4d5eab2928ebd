//! Build → decode → authenticate → approve, and every way it must fail.

mod common;

use common::{PATCH, input, key};
use deltaseal_sign::bundle::{DEFAULT_COMPONENT_ID, envelope, manifest_bytes, suit_digest};
use deltaseal_sign::{SignError, build_bundle};
use deltaseal_verify::bundle::{Bundle, DecodeError, Policy, PolicyError, SignatureError, kid};
use ed25519_dalek::VerifyingKey;

fn bundle(seq: u64) -> Vec<u8> {
    build_bundle(&input(seq), &[key(1)]).unwrap()
}

fn accept(bytes: &[u8], trusted: &[VerifyingKey], policy: &Policy) -> Result<Vec<u8>, String> {
    let b = Bundle::decode(bytes).map_err(|e| format!("decode: {e}"))?;
    let a = b.authenticate(trusted).map_err(|e| format!("auth: {e}"))?;
    let ok = a.approve(policy).map_err(|e| format!("policy: {e}"))?;
    ok.checked_payload()
        .map(<[u8]>::to_vec)
        .map_err(|e| format!("payload: {e}"))
}

#[test]
fn round_trip() {
    let bytes = bundle(7);
    let b = Bundle::decode(&bytes).unwrap();
    let m = b.manifest().clone();
    let inp = input(7);
    assert_eq!(m.sequence, 7);
    assert_eq!(m.vendor_id, inp.vendor_id);
    assert_eq!(m.class_id, inp.class_id);
    assert_eq!(m.precursor, inp.precursor);
    assert_eq!(m.target, inp.target);
    assert_eq!(m.patch.size, PATCH.len() as u64);
    assert_eq!(m.patch.index_digest, inp.patch_index_digest);
    assert_eq!(m.payload_uri, "#patch");
    assert_eq!(m.component_id, vec![vec![0u8]]);
    assert_eq!(b.payload(), Some(PATCH));
    let kids: Vec<_> = b.signer_kids().collect();
    assert_eq!(kids, vec![Some(kid(&key(1).verifying_key()))]);
    let a = b.authenticate(&[key(1).verifying_key()]).unwrap();
    assert_eq!(a.verified_kids(), &[kid(&key(1).verifying_key())]);
    let policy = Policy {
        installed_sequence: Some(6),
        vendor_id: Some(inp.vendor_id),
        class_id: Some(inp.class_id),
        device_id: None,
        now: None,
    };
    let ok = a.approve(&policy).unwrap();
    assert_eq!(ok.manifest(), &m);
    assert_eq!(ok.checked_payload().unwrap(), PATCH);
}

#[test]
fn deterministic() {
    assert_eq!(bundle(3), bundle(3));
    let two = build_bundle(&input(3), &[key(1), key(2)]).unwrap();
    assert_eq!(two, build_bundle(&input(3), &[key(1), key(2)]).unwrap());
    assert_ne!(bundle(3), bundle(4));
}

#[test]
fn multiple_signers_any_trusted_one_suffices() {
    let bytes = build_bundle(&input(3), &[key(1), key(2), key(3)]).unwrap();
    let b = Bundle::decode(&bytes).unwrap();
    assert_eq!(b.signer_kids().count(), 3);
    let a = b
        .authenticate(&[key(9).verifying_key(), key(2).verifying_key()])
        .unwrap();
    assert_eq!(a.verified_kids(), &[kid(&key(2).verifying_key())]);
}

#[test]
fn signer_limits() {
    assert_eq!(build_bundle(&input(1), &[]), Err(SignError::NoSigners));
    let many: Vec<_> = (0..9).map(key).collect();
    assert!(matches!(
        build_bundle(&input(1), &many),
        Err(SignError::TooManySigners { .. })
    ));
}

#[test]
fn unsigned_bundle_has_no_signatures() {
    let m = manifest_bytes(&input(1), DEFAULT_COMPONENT_ID).unwrap();
    let bytes = envelope(&m, &suit_digest(&m), &[], Some(PATCH));
    let b = Bundle::decode(&bytes).unwrap();
    assert_eq!(
        b.authenticate(&[key(1).verifying_key()]).err(),
        Some(SignatureError::NoSignatures)
    );
}

#[test]
fn wrong_key_rejected() {
    let bytes = bundle(1);
    let b = Bundle::decode(&bytes).unwrap();
    assert_eq!(
        b.clone().authenticate(&[key(2).verifying_key()]).err(),
        Some(SignatureError::NoTrustedSignature)
    );
    assert_eq!(
        b.authenticate(&[]).err(),
        Some(SignatureError::NoTrustedSignature)
    );
}

/// A valid signature whose kid is stripped still verifies (kid is a hint),
/// but a kid pointing at another key is not tried against the right one.
#[test]
fn small_order_key_rejected() {
    // The identity point (0, 1): encoded y = 1. Small order, "verifies" everything
    // under plain cofactored checks with R = identity, s = 0.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak = VerifyingKey::from_bytes(&identity).unwrap();
    assert!(weak.is_weak());
    // Build a bundle "signed" with R = identity, s = 0 under the weak key's kid.
    let m = manifest_bytes(&input(1), DEFAULT_COMPONENT_ID).unwrap();
    let d = suit_digest(&m);
    let protected = deltaseal_sign::bundle::protected_header(&kid(&weak));
    let mut sig = [0u8; 64];
    sig[0] = 1;
    let s1 = deltaseal_sign::bundle::sign1(&protected, &sig);
    let bytes = envelope(&m, &d, &[s1], Some(PATCH));
    let b = Bundle::decode(&bytes).unwrap();
    assert_eq!(
        b.authenticate(&[weak]).err(),
        Some(SignatureError::NoTrustedSignature)
    );
}

#[test]
fn truncation_at_every_byte_is_an_error() {
    let bytes = bundle(1);
    for n in 0..bytes.len() {
        assert!(
            Bundle::decode(&bytes[..n]).is_err(),
            "prefix of {n} bytes accepted"
        );
    }
}

#[test]
fn trailing_byte_rejected() {
    let mut bytes = bundle(1);
    bytes.push(0);
    assert_eq!(
        Bundle::decode(&bytes).err(),
        Some(DecodeError::TrailingBytes)
    );
}

#[test]
fn wrong_tag_rejected() {
    let mut bytes = bundle(1);
    assert_eq!(&bytes[..2], &[0xd8, 107]);
    bytes[1] = 106;
    assert_eq!(Bundle::decode(&bytes).err(), Some(DecodeError::WrongTag));
    // Untagged envelope map.
    assert_eq!(
        Bundle::decode(&bytes[2..]).err(),
        Some(DecodeError::UnexpectedType)
    );
}

#[test]
fn non_shortest_envelope_map_head_rejected() {
    let bytes = bundle(1);
    // d8 6b a3 ... -> d8 6b b8 03 ...
    assert_eq!(bytes[2], 0xa3);
    let mut bad = bytes[..2].to_vec();
    bad.extend_from_slice(&[0xb8, 0x03]);
    bad.extend_from_slice(&bytes[3..]);
    assert_eq!(Bundle::decode(&bad).err(), Some(DecodeError::NonCanonical));
}

#[test]
fn indefinite_length_map_rejected() {
    let bytes = bundle(1);
    let mut bad = bytes[..2].to_vec();
    bad.push(0xbf);
    bad.extend_from_slice(&bytes[3..]);
    bad.push(0xff);
    assert_eq!(
        Bundle::decode(&bad).err(),
        Some(DecodeError::IndefiniteLength)
    );
}

/// Re-encodes the envelope with its auth entry twice.
#[test]
fn duplicate_key_rejected() {
    let m = manifest_bytes(&input(1), DEFAULT_COMPONENT_ID).unwrap();
    let bytes = envelope(&m, &suit_digest(&m), &[], None);
    assert!(Bundle::decode(&bytes).is_ok());
    // Envelope: d8 6b a2 02 <auth bstr> 03 ... ; duplicate "02 <auth>".
    let auth_start = 4;
    let mut r = bytes[auth_start..].to_vec();
    // auth bstr header: 58 len
    assert_eq!(r[0], 0x58);
    let len = r[1] as usize + 2;
    r.truncate(len);
    let mut bad = vec![0xd8, 0x6b, 0xa3, 0x02];
    bad.extend_from_slice(&r);
    bad.push(0x02);
    bad.extend_from_slice(&bytes[auth_start..]);
    assert_eq!(Bundle::decode(&bad).err(), Some(DecodeError::DuplicateKey));
}

#[test]
fn unknown_envelope_member_rejected() {
    let m = manifest_bytes(&input(1), DEFAULT_COMPONENT_ID).unwrap();
    let d = suit_digest(&m);
    let mut bytes = envelope(&m, &d, &[], Some(PATCH));
    // Rename "#patch" to "#other": the manifest names "#patch".
    let pos = bytes.windows(6).position(|w| w == b"#patch").unwrap();
    bytes[pos + 1..pos + 6].copy_from_slice(b"other");
    assert_eq!(
        Bundle::decode(&bytes).err(),
        Some(DecodeError::UnexpectedField)
    );
}

#[test]
fn deep_nesting_rejected_without_overflow() {
    // A COSE_Sign1 whose unprotected header holds 100k nested arrays.
    let m = manifest_bytes(&input(1), DEFAULT_COMPONENT_ID).unwrap();
    let d = suit_digest(&m);
    let protected = deltaseal_sign::bundle::protected_header(&[0; 16]);
    let mut s1 = vec![0xd2, 0x84];
    s1.push(0x40 | protected.len() as u8);
    s1.extend_from_slice(&protected);
    s1.extend_from_slice(&[0xa1, 0x05]);
    s1.extend(core::iter::repeat_n(0x81u8, 200));
    s1.push(0x00);
    s1.push(0xf6);
    s1.extend_from_slice(&[0x58, 0x40]);
    s1.extend_from_slice(&[0u8; 64]);
    let bytes = envelope(&m, &d, &[s1], Some(PATCH));
    let err = Bundle::decode(&bytes).err();
    // 200 levels is past MAX_SIGN1 as well as MAX_DEPTH; either limit refuses it.
    assert!(
        matches!(
            err,
            Some(DecodeError::TooLarge | DecodeError::NestingTooDeep)
        ),
        "{err:?}"
    );
    // 20 levels fits in size, so only the depth limit refuses it.
    let mut s1 = vec![0xd2, 0x84];
    s1.push(0x40 | protected.len() as u8);
    s1.extend_from_slice(&protected);
    s1.extend_from_slice(&[0xa1, 0x05]);
    s1.extend(core::iter::repeat_n(0x81u8, 20));
    s1.push(0x00);
    s1.push(0xf6);
    s1.extend_from_slice(&[0x58, 0x40]);
    s1.extend_from_slice(&[0u8; 64]);
    let bytes = envelope(&m, &d, &[s1], Some(PATCH));
    assert_eq!(
        Bundle::decode(&bytes).err(),
        Some(DecodeError::NestingTooDeep)
    );
}

/// Flipping any single bit anywhere in the bundle never gets a payload accepted.
#[test]
fn every_single_bit_flip_rejected() {
    let bytes = bundle(5);
    let trusted = [key(1).verifying_key()];
    assert!(accept(&bytes, &trusted, &Policy::default()).is_ok());
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut bad = bytes.clone();
            bad[i] ^= 1 << bit;
            assert!(
                accept(&bad, &trusted, &Policy::default()).is_err(),
                "bit {bit} of byte {i} flipped and still accepted"
            );
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).position(|w| w == needle).unwrap()
}

#[test]
fn flips_fail_at_the_right_stage() {
    let bytes = bundle(5);
    let trusted = [key(1).verifying_key()];
    // Manifest: flip a bit inside the precursor digest (0x11 * 32).
    let mut bad = bytes.clone();
    bad[find(&bytes, &[0x11; 32]) + 3] ^= 4;
    let b = Bundle::decode(&bad).unwrap();
    assert_eq!(
        b.authenticate(&trusted).err(),
        Some(SignatureError::ManifestDigestMismatch)
    );
    // Signature: the last byte of the authentication wrapper (58 len at offset 4).
    let mut bad = bytes.clone();
    assert_eq!(bytes[4], 0x58);
    let sig_end = 6 + bytes[5] as usize;
    bad[sig_end - 1] ^= 0x80;
    let b = Bundle::decode(&bad).unwrap();
    assert_eq!(
        b.authenticate(&trusted).err(),
        Some(SignatureError::NoTrustedSignature)
    );
    // Payload.
    let mut bad = bytes.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    let ok = Bundle::decode(&bad)
        .unwrap()
        .authenticate(&trusted)
        .unwrap()
        .approve(&Policy::default())
        .unwrap();
    assert_eq!(
        ok.checked_payload(),
        Err(PolicyError::PayloadDigestMismatch)
    );
}

#[test]
fn payload_missing_or_resized() {
    let m = manifest_bytes(&input(1), DEFAULT_COMPONENT_ID).unwrap();
    let d = suit_digest(&m);
    let k = key(1);
    let protected = deltaseal_sign::bundle::protected_header(&kid(&k.verifying_key()));
    let sig =
        ed25519_dalek::Signer::sign(&k, &deltaseal_sign::bundle::sig_structure(&protected, &d));
    let s1 = deltaseal_sign::bundle::sign1(&protected, &sig.to_bytes());
    let approve = |bytes: &[u8]| {
        Bundle::decode(bytes)
            .unwrap()
            .authenticate(&[k.verifying_key()])
            .unwrap()
            .approve(&Policy::default())
            .unwrap()
            .checked_payload()
            .map(<[u8]>::to_vec)
    };
    assert_eq!(
        approve(&envelope(&m, &d, core::slice::from_ref(&s1), None)),
        Err(PolicyError::PayloadMissing)
    );
    let longer = [PATCH, b"x"].concat();
    assert_eq!(
        approve(&envelope(&m, &d, core::slice::from_ref(&s1), Some(&longer))),
        Err(PolicyError::PayloadSizeMismatch)
    );
    assert_eq!(
        approve(&envelope(&m, &d, &[s1], Some(PATCH))).unwrap(),
        PATCH
    );
}

#[test]
fn sequence_policy() {
    let trusted = [key(1).verifying_key()];
    let at = |seq: u64, installed: Option<u64>| {
        Bundle::decode(&bundle(seq))
            .unwrap()
            .authenticate(&trusted)
            .unwrap()
            .approve(&Policy {
                installed_sequence: installed,
                ..Policy::default()
            })
            .map(|_| ())
    };
    assert_eq!(
        at(5, Some(5)),
        Err(PolicyError::SequenceNotNewer {
            installed: 5,
            offered: 5
        })
    );
    assert_eq!(
        at(4, Some(5)),
        Err(PolicyError::SequenceNotNewer {
            installed: 5,
            offered: 4
        })
    );
    assert_eq!(at(6, Some(5)), Ok(()));
    assert_eq!(at(0, None), Ok(()));
    assert_eq!(at(u64::MAX, Some(u64::MAX - 1)), Ok(()));
    assert_eq!(
        at(u64::MAX, Some(u64::MAX)),
        Err(PolicyError::SequenceNotNewer {
            installed: u64::MAX,
            offered: u64::MAX
        })
    );
    assert_eq!(
        at(0, Some(u64::MAX)),
        Err(PolicyError::SequenceNotNewer {
            installed: u64::MAX,
            offered: 0
        })
    );
}

#[test]
fn u64_max_sizes_round_trip() {
    let mut inp = input(u64::MAX);
    inp.precursor.size = u64::MAX;
    inp.target.size = u64::MAX;
    let bytes = build_bundle(&inp, &[key(1)]).unwrap();
    let m = Bundle::decode(&bytes).unwrap().manifest().clone();
    assert_eq!(
        (m.sequence, m.precursor.size, m.target.size),
        (u64::MAX, u64::MAX, u64::MAX)
    );
}

#[test]
fn vendor_and_class_policy() {
    let trusted = [key(1).verifying_key()];
    let with = |p: Policy| {
        Bundle::decode(&bundle(1))
            .unwrap()
            .authenticate(&trusted)
            .unwrap()
            .approve(&p)
            .map(|_| ())
    };
    let inp = input(1);
    let other = deltaseal_sign::ids::vendor_id("other.example");
    assert_eq!(
        with(Policy {
            vendor_id: Some(other),
            ..Policy::default()
        }),
        Err(PolicyError::VendorMismatch)
    );
    assert_eq!(
        with(Policy {
            vendor_id: Some(inp.vendor_id),
            class_id: Some(deltaseal_sign::ids::class_id(&inp.vendor_id, "other")),
            ..Policy::default()
        }),
        Err(PolicyError::ClassMismatch)
    );
    assert_eq!(
        with(Policy {
            vendor_id: Some(inp.vendor_id),
            class_id: Some(inp.class_id),
            ..Policy::default()
        }),
        Ok(())
    );
}

/// Deterministic random mutations (replace, insert, delete runs of bytes):
/// never a panic, and nothing but the original is accepted.
///
/// One signer: with several, the COSE_Sign1 blocks of signers the device does
/// not trust are not authenticated by anything, so mutating them is harmless
/// and goes unnoticed (as in any COSE multi-signer message).
#[test]
fn random_mutations_never_panic_or_pass() {
    let bytes = build_bundle(&input(5), &[key(2)]).unwrap();
    let trusted = [key(2).verifying_key()];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let mut bad = bytes.clone();
        for _ in 0..1 + next() % 3 {
            let at = (next() as usize) % bad.len();
            match next() % 3 {
                0 => bad[at] = next() as u8,
                1 => bad.insert(at, next() as u8),
                _ => {
                    let n = 1 + (next() as usize) % 8;
                    bad.drain(at..(at + n).min(bad.len()));
                }
            }
        }
        if bad != bytes && accept(&bad, &trusted, &Policy::default()).is_ok() {
            let first = bad.iter().zip(&bytes).position(|(a, b)| a != b);
            panic!(
                "accepted: len {} vs {}, first diff {first:?}",
                bad.len(),
                bytes.len()
            );
        }
    }
}

/// Issue 7 (maintenance windows): parameter -262 marks a bundle deferrable;
/// absent it is urgent and the manifest bytes are exactly as before.
#[test]
fn deferrable_urgency_parameter() {
    use deltaseal_sign::bundle::{ManifestOptions, build_bundle_opts, manifest_bytes_with};
    let urgent = bundle(5);
    assert!(!Bundle::decode(&urgent).unwrap().manifest().deferrable);
    let plain = manifest_bytes(&input(5), DEFAULT_COMPONENT_ID).unwrap();
    let default_opts =
        manifest_bytes_with(&input(5), DEFAULT_COMPONENT_ID, &ManifestOptions::default()).unwrap();
    assert_eq!(plain, default_opts);

    let options = ManifestOptions::default().deferrable(true);
    let deferrable =
        build_bundle_opts(&input(5), DEFAULT_COMPONENT_ID, &options, &[key(1)]).unwrap();
    let m = Bundle::decode(&deferrable).unwrap().manifest().clone();
    assert!(m.deferrable);
    assert_eq!(m.sequence, 5);
    assert_eq!(m.target, input(5).target);

    // The only value allowed is 1 (deferrable): 0 and 2 are refused.
    let manifest = manifest_bytes_with(&input(5), DEFAULT_COMPONENT_ID, &options).unwrap();
    // -262 = 0x39 0x01 0x05, followed by the value 1 (0x01).
    let at = manifest
        .windows(4)
        .position(|w| w == [0x39, 0x01, 0x05, 0x01])
        .unwrap();
    for value in [0x00, 0x02] {
        let mut bad = manifest.clone();
        bad[at + 3] = value;
        assert_eq!(
            deltaseal_verify::bundle::Manifest::decode(&bad).err(),
            Some(DecodeError::UnexpectedValue)
        );
    }
    // Signed as usual: the signature covers the urgency.
    let a = Bundle::decode(&deferrable)
        .unwrap()
        .authenticate(&[key(1).verifying_key()]);
    assert!(a.is_ok());
}
