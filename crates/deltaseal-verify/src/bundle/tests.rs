//! Unit tests of the strict reader, the COSE view and the policy; the
//! end-to-end bundle tests live in `deltaseal-sign/tests/`, which can build
//! bundles.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use alloc::vec;
use alloc::vec::Vec;

use super::cbor::{Int, Key, MAX_DEPTH, Reader};
use super::manifest::{ImageRef, Manifest, PatchRef};
use super::policy::{Policy, PolicyError};
use super::*;

fn uint(bytes: &[u8]) -> Result<u64, DecodeError> {
    let mut r = Reader::new(bytes);
    let v = r.uint()?;
    r.finish()?;
    Ok(v)
}

#[test]
fn shortest_form_enforced_at_every_width() {
    assert_eq!(uint(&[0x17]), Ok(23));
    assert_eq!(uint(&[0x18, 0x18]), Ok(24));
    assert_eq!(uint(&[0x18, 0x17]), Err(DecodeError::NonCanonical));
    assert_eq!(uint(&[0x19, 0x01, 0x00]), Ok(256));
    assert_eq!(uint(&[0x19, 0x00, 0xff]), Err(DecodeError::NonCanonical));
    assert_eq!(uint(&[0x1a, 0x00, 0x01, 0x00, 0x00]), Ok(65536));
    assert_eq!(
        uint(&[0x1a, 0x00, 0x00, 0xff, 0xff]),
        Err(DecodeError::NonCanonical)
    );
    assert_eq!(uint(&[0x1b, 0, 0, 0, 1, 0, 0, 0, 0]), Ok(1 << 32));
    assert_eq!(
        uint(&[0x1b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]),
        Err(DecodeError::NonCanonical)
    );
    assert_eq!(
        uint(&[0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
        Ok(u64::MAX)
    );
    // Lengths too: a 1-byte bstr with a 1-byte length extension.
    assert_eq!(
        Reader::new(&[0x58, 0x01, 0x00]).bytes(8),
        Err(DecodeError::NonCanonical)
    );
    assert_eq!(uint(&[0x1c]), Err(DecodeError::Malformed));
    assert_eq!(uint(&[0x19, 0x01]), Err(DecodeError::Truncated));
    assert_eq!(uint(&[0x01, 0x00]), Err(DecodeError::TrailingBytes));
}

#[test]
fn indefinite_lengths_rejected() {
    for b in [0x5f, 0x7f, 0x9f, 0xbf] {
        assert_eq!(
            Reader::new(&[b, 0xff]).skip(0),
            Err(DecodeError::IndefiniteLength)
        );
    }
    assert_eq!(
        Reader::new(&[0xbf, 0xff]).map(4),
        Err(DecodeError::IndefiniteLength)
    );
}

#[test]
fn floats_undefined_and_unassigned_simples_rejected() {
    for item in [
        &[0xf9, 0x3c, 0x00][..],
        &[0xf7],
        &[0xf8, 0x20],
        &[0xf8, 0x10],
        &[0xf0],
    ] {
        assert!(Reader::new(item).skip(0).is_err(), "{item:02x?}");
    }
    for ok in [&[0xf4][..], &[0xf5], &[0xf6]] {
        assert_eq!(Reader::new(ok).skip(0), Ok(()));
    }
}

#[test]
fn integers_and_text() {
    let mut r = Reader::new(&[
        0x38, 0x18, 0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ]);
    assert_eq!(r.i64(), Ok(-25));
    assert_eq!(r.i64(), Ok(i64::MIN));
    let mut r = Reader::new(&[0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(r.clone().i64(), Err(DecodeError::UnexpectedValue));
    assert_eq!(r.int(), Ok(Int::Nint(u64::MAX)));
    assert_eq!(
        Reader::new(&[0x62, 0xc3, 0x28]).text(8),
        Err(DecodeError::Malformed)
    );
    assert_eq!(Reader::new(&[0x62, b'h', b'i']).text(8), Ok("hi"));
    assert_eq!(
        Reader::new(&[0x62, b'h', b'i']).text(1),
        Err(DecodeError::TooLarge)
    );
}

#[test]
fn map_keys_must_ascend_bytewise() {
    // {1: 0, 1: 0}
    let mut r = Reader::new(&[0xa2, 0x01, 0x00, 0x01, 0x00]);
    assert_eq!(r.clone().skip(0), Err(DecodeError::DuplicateKey));
    r.map(2).unwrap();
    let (k, raw) = r.key(None).unwrap();
    assert_eq!(k, Key::Int(1));
    r.uint().unwrap();
    assert_eq!(r.key(Some(raw)).err(), Some(DecodeError::DuplicateKey));
    // {-1: 0, 1: 0}: 0x20 sorts after 0x01.
    assert_eq!(
        Reader::new(&[0xa2, 0x20, 0x00, 0x01, 0x00]).skip(0),
        Err(DecodeError::UnsortedKeys)
    );
    // {24: 0, 23: 0}: shorter encodings sort first.
    assert_eq!(
        Reader::new(&[0xa2, 0x18, 0x18, 0x00, 0x17, 0x00]).skip(0),
        Err(DecodeError::UnsortedKeys)
    );
    assert_eq!(
        Reader::new(&[0xa2, 0x17, 0x00, 0x18, 0x18, 0x00]).skip(0),
        Ok(())
    );
}

#[test]
fn nesting_is_bounded() {
    let nested = |n: usize| {
        let mut v = vec![0x81u8; n];
        v.push(0x00);
        v
    };
    assert_eq!(Reader::new(&nested(MAX_DEPTH - 1)).skip(0), Ok(()));
    assert_eq!(
        Reader::new(&nested(MAX_DEPTH)).skip(0),
        Err(DecodeError::NestingTooDeep)
    );
    // 100k levels: an error, no stack overflow.
    assert_eq!(
        Reader::new(&nested(100_000)).skip(0),
        Err(DecodeError::NestingTooDeep)
    );
    let mut tags = vec![0xc1u8; 100_000];
    tags.push(0);
    assert_eq!(Reader::new(&tags).skip(0), Err(DecodeError::NestingTooDeep));
}

#[test]
fn huge_declared_lengths_do_not_allocate_or_panic() {
    let huge = [0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    assert!(Reader::new(&huge).bytes(usize::MAX).is_err());
    let arr = [0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    assert!(Reader::new(&arr).skip(0).is_err());
    // Envelope claiming a giant payload.
    let env = [
        0xd8, 0x6b, 0xa1, 0x66, b'#', b'p', b'a', b't', b'c', b'h', 0x5b, 0xff, 0, 0, 0, 0, 0, 0, 0,
    ];
    assert_eq!(Bundle::decode(&env).err(), Some(DecodeError::Truncated));
}

#[test]
fn manifest_rejects_other_versions_and_extra_keys() {
    // {1: 2, ...}
    assert_eq!(
        Manifest::decode(&[0xa4, 0x01, 0x02]).err(),
        Some(DecodeError::UnsupportedVersion)
    );
    // {1: 1, 4: ...}: reference-uri is not supported.
    assert_eq!(
        Manifest::decode(&[0xa4, 0x01, 0x01, 0x04, 0x60]).err(),
        Some(DecodeError::UnexpectedField)
    );
    assert_eq!(Manifest::decode(&[0xa5]).err(), Some(DecodeError::TooLarge));
    assert_eq!(
        Manifest::decode(&vec![0; 4096]).err(),
        Some(DecodeError::TooLarge)
    );
}

#[test]
fn sign1_view_rejects_wrong_shapes() {
    use super::cose::Sign1;
    // 18([h'a10127', {}, nil, h'00'*64])
    let mut good = vec![0xd2, 0x84, 0x43, 0xa1, 0x01, 0x27, 0xa0, 0xf6, 0x58, 0x40];
    good.extend_from_slice(&[0; 64]);
    let s = Sign1::decode(&good).unwrap();
    assert_eq!((s.alg, s.kid), (-8, None));
    let mut wrong_tag = good.clone();
    wrong_tag[0] = 0xd1;
    assert_eq!(Sign1::decode(&wrong_tag).err(), Some(DecodeError::WrongTag));
    let mut attached = good.clone();
    attached[7] = 0x40; // payload h'' instead of nil
    assert_eq!(
        Sign1::decode(&attached).err(),
        Some(DecodeError::UnexpectedType)
    );
    let mut no_alg = vec![0xd2, 0x84, 0x41, 0xa0, 0xa0, 0xf6, 0x58, 0x40];
    no_alg.extend_from_slice(&[0; 64]);
    assert_eq!(
        Sign1::decode(&no_alg).err(),
        Some(DecodeError::MissingField)
    );
    let mut es256 = good.clone();
    es256[5] = 0x26; // alg -7
    assert_eq!(
        Sign1::decode(&es256).err(),
        Some(DecodeError::UnsupportedAlgorithm)
    );
    let mut short_sig: Vec<u8> = good[..9].to_vec();
    short_sig[8] = 0x58;
    short_sig.extend_from_slice(&[0x3f]);
    short_sig.extend_from_slice(&[0; 63]);
    assert_eq!(
        Sign1::decode(&short_sig).err(),
        Some(DecodeError::UnexpectedValue)
    );
}

fn manifest(sequence: u64) -> Manifest {
    Manifest {
        sequence,
        vendor_id: [1; 16],
        class_id: [2; 16],
        device_id: None,
        component_id: vec![vec![0]],
        payload_uri: "#patch".into(),
        precursor: ImageRef {
            size: 1,
            digest: [3; 32],
        },
        patch: PatchRef {
            size: 2,
            digest: [4; 32],
            index_digest: [5; 32],
        },
        target: ImageRef {
            size: u64::MAX,
            digest: [6; 32],
        },
        deferrable: false,
    }
}

#[test]
fn policy_sequence_vendor_class() {
    let p = |installed| Policy {
        installed_sequence: installed,
        ..Policy::default()
    };
    assert_eq!(p(None).check(&manifest(0)), Ok(()));
    assert_eq!(p(Some(0)).check(&manifest(1)), Ok(()));
    assert_eq!(
        p(Some(1)).check(&manifest(1)),
        Err(PolicyError::SequenceNotNewer {
            installed: 1,
            offered: 1
        })
    );
    assert_eq!(
        p(Some(u64::MAX)).check(&manifest(u64::MAX)),
        Err(PolicyError::SequenceNotNewer {
            installed: u64::MAX,
            offered: u64::MAX
        })
    );
    assert_eq!(p(Some(u64::MAX - 1)).check(&manifest(u64::MAX)), Ok(()));
    // Lower, and a "rollover" from u64::MAX to 0: both replays.
    assert_eq!(
        p(Some(5)).check(&manifest(4)),
        Err(PolicyError::SequenceNotNewer {
            installed: 5,
            offered: 4
        })
    );
    assert_eq!(
        p(Some(u64::MAX)).check(&manifest(0)),
        Err(PolicyError::SequenceNotNewer {
            installed: u64::MAX,
            offered: 0
        })
    );
    let vendor = Policy {
        vendor_id: Some([9; 16]),
        ..Policy::default()
    };
    assert_eq!(vendor.check(&manifest(1)), Err(PolicyError::VendorMismatch));
    let class = Policy {
        vendor_id: Some([1; 16]),
        class_id: Some([9; 16]),
        ..Policy::default()
    };
    assert_eq!(class.check(&manifest(1)), Err(PolicyError::ClassMismatch));
}

#[test]
fn policy_device_id() {
    let mut m = manifest(1);
    let device = |d| Policy {
        device_id: d,
        ..Policy::default()
    };
    // A bundle for the whole class: any device, with or without an id.
    assert_eq!(device(None).check(&m), Ok(()));
    assert_eq!(device(Some([7; 16])).check(&m), Ok(()));
    // A bundle for one device: only that device.
    m.device_id = Some([7; 16]);
    assert_eq!(device(Some([7; 16])).check(&m), Ok(()));
    assert_eq!(
        device(Some([8; 16])).check(&m),
        Err(PolicyError::DeviceMismatch)
    );
    assert_eq!(device(None).check(&m), Err(PolicyError::DeviceMismatch));
}

#[test]
fn checked_payload_checks_size_then_digest() {
    let mut m = manifest(1);
    m.patch.size = 2;
    m.patch.digest = sha256(b"ok");
    assert_eq!(
        Approved::new(m.clone(), Some(b"ok")).checked_payload(),
        Ok(&b"ok"[..])
    );
    assert_eq!(
        Approved::new(m.clone(), None).checked_payload(),
        Err(PolicyError::PayloadMissing)
    );
    assert_eq!(
        Approved::new(m.clone(), Some(b"okk")).checked_payload(),
        Err(PolicyError::PayloadSizeMismatch)
    );
    assert_eq!(
        Approved::new(m, Some(b"no")).checked_payload(),
        Err(PolicyError::PayloadDigestMismatch)
    );
}

#[test]
fn kid_is_sha256_prefix() {
    let key = ed25519_dalek::VerifyingKey::from_bytes(&[
        0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07,
        0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07,
        0x51, 0x1a,
    ])
    .unwrap();
    assert_eq!(kid(&key)[..], sha256(key.as_bytes())[..16]);
}
