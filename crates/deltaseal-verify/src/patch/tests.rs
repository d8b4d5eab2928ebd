#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::digest::sha256;

const OLD: &[u8] = b"0123456789abcdefghij";

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn ctrl(triples: &[(u64, u64, i64)]) -> Vec<u8> {
    let mut c = Vec::new();
    for &(a, e, s) in triples {
        varint(&mut c, a);
        varint(&mut c, e);
        varint(&mut c, ((s << 1) ^ (s >> 63)) as u64);
    }
    c
}

/// One chunk as (old offset, raw ctrl, raw diff, raw extra), stored raw.
struct Spec {
    old_offset: u64,
    ctrl: Vec<u8>,
    diff: Vec<u8>,
    extra: Vec<u8>,
}

fn body_of(s: &Spec) -> Vec<u8> {
    let bh = ChunkBodyHeader {
        old_offset: s.old_offset,
        ctrl_len: s.ctrl.len() as u32,
        ctrl_stored: s.ctrl.len() as u32,
        diff_len: s.diff.len() as u32,
        diff_stored: s.diff.len() as u32,
        extra_len: s.extra.len() as u32,
        extra_stored: s.extra.len() as u32,
        ..ChunkBodyHeader::default()
    };
    let mut b = bh.encode().to_vec();
    b.extend_from_slice(&s.ctrl);
    b.extend_from_slice(&s.diff);
    b.extend_from_slice(&s.extra);
    b
}

/// Assemble a patch with correct digests and declared memory.
fn assemble(old: &[u8], new: &[u8], chunk_size: u32, bodies: Vec<Vec<u8>>) -> Vec<u8> {
    let mut chunks = Vec::new();
    let mut mem = 0;
    for (i, b) in bodies.iter().enumerate() {
        let s = i * chunk_size as usize;
        let e = (s + chunk_size as usize).min(new.len());
        // A body the frame walk refuses gets a roomy declaration, so the
        // test reaches the refusal it is about.
        mem = chunk_memory(Codec::Zstd, Transform::None, (e - s) as u64, b)
            .unwrap_or(1 << 20)
            .max(mem);
        chunks.push(ChunkEntry {
            stored_len: b.len() as u64,
            stored_digest: sha256(b),
            output_digest: sha256(&new[s..e]),
        });
    }
    let h = PatchHeader {
        codec: Codec::None,
        transform: Transform::None,
        image_base: 0,
        old_size: old.len() as u64,
        old_digest: sha256(old),
        new_size: new.len() as u64,
        new_digest: sha256(new),
        chunk_size,
        decoder_memory: mem,
        chunks,
    };
    let mut p = h.encode();
    for b in bodies {
        p.extend_from_slice(&b);
    }
    p
}

/// new = "0123X5" + "YZ" | "abcd" with chunk size 8.
fn sample_new() -> Vec<u8> {
    b"0123X5YZabcd".to_vec()
}

fn sample_specs() -> Vec<Spec> {
    vec![
        Spec {
            old_offset: 0,
            ctrl: ctrl(&[(6, 2, 0)]),
            diff: vec![0, 0, 0, 0, b'X'.wrapping_sub(b'4'), 0],
            extra: b"YZ".to_vec(),
        },
        Spec {
            old_offset: 10,
            ctrl: ctrl(&[(4, 0, 0)]),
            diff: vec![0; 4],
            extra: Vec::new(),
        },
    ]
}

fn sample_patch() -> Vec<u8> {
    let bodies = sample_specs().iter().map(body_of).collect();
    assemble(OLD, &sample_new(), 8, bodies)
}

/// Patch whose chunk 0 is replaced by `spec` (digests recomputed).
fn with_chunk0(spec: Spec) -> Vec<u8> {
    let mut specs = sample_specs();
    specs[0] = spec;
    assemble(OLD, &sample_new(), 8, specs.iter().map(body_of).collect())
}

fn set_header_u64(p: &mut [u8], off: usize, v: u64) {
    p[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

fn set_header_u32(p: &mut [u8], off: usize, v: u32) {
    p[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn apply_err(old: &[u8], patch: &[u8]) -> PatchError {
    let mut sink = Vec::new();
    apply(&mut SliceImage(old), patch, &mut sink, &Limits::default()).unwrap_err()
}

#[test]
fn sample_applies() {
    let p = sample_patch();
    let out = apply_to_vec(OLD, &p, &Limits::default()).unwrap();
    assert_eq!(out, sample_new());
    let mut sink = Vec::new();
    let s = apply(&mut SliceImage(OLD), &p, &mut sink, &Limits::default()).unwrap();
    assert_eq!(s.new_size, 12);
    assert_eq!(s.chunks, 2);
    // &[u8] is an OldImage too.
    let mut old: &[u8] = OLD;
    let mut sink2 = Vec::new();
    apply(&mut old, &p, &mut sink2, &Limits::default()).unwrap();
    assert_eq!(sink2, sink);
}

#[test]
fn header_round_trip() {
    let p = sample_patch();
    let h = PatchHeader::decode(&p, &Limits::default()).unwrap();
    assert_eq!(h.codec, Codec::None);
    assert_eq!(h.new_size, 12);
    assert_eq!(h.chunks.len(), 2);
    assert_eq!(h.encoded_len(), HEADER_LEN + 2 * CHUNK_ENTRY_LEN);
    let enc = h.encode();
    assert_eq!(enc[..], p[..h.encoded_len()]);
    assert_eq!(PatchHeader::decode(&p, &Limits::default()).unwrap(), h);
    assert_eq!(
        index_digest(&p, &Limits::default()).unwrap(),
        sha256(&p[..h.encoded_len()])
    );
    assert_eq!(h.chunk_output_len(0), Some(8));
    assert_eq!(h.chunk_output_len(1), Some(4));
    assert_eq!(h.chunk_output_len(2), None);
}

#[test]
fn empty_new_image() {
    let p = assemble(OLD, b"", 8, Vec::new());
    assert_eq!(apply_to_vec(OLD, &p, &Limits::default()).unwrap(), b"");
    let p = assemble(b"", b"", 8, Vec::new());
    assert_eq!(apply_to_vec(b"", &p, &Limits::default()).unwrap(), b"");
}

#[test]
fn every_truncation_is_rejected() {
    let p = sample_patch();
    for n in 0..p.len() {
        let e = PatchHeader::decode(&p[..n], &Limits::default()).unwrap_err();
        let ok = match n {
            0..8 => e == PatchError::BadMagic,
            8..HEADER_LEN => e == PatchError::Truncated,
            _ if n < HEADER_LEN + 2 * CHUNK_ENTRY_LEN => e == PatchError::Truncated,
            _ => e == PatchError::BodyLengthMismatch,
        };
        assert!(ok, "prefix {n}: {e:?}");
        assert!(apply_to_vec(OLD, &p[..n], &Limits::default()).is_err());
    }
}

#[test]
fn trailing_garbage_is_rejected() {
    let mut p = sample_patch();
    p.push(0);
    assert_eq!(apply_err(OLD, &p), PatchError::BodyLengthMismatch);
}

#[test]
fn bad_magic() {
    let mut p = sample_patch();
    p[0] ^= 1;
    assert_eq!(apply_err(OLD, &p), PatchError::BadMagic);
    // A recompressing patch says so (host appliers only).
    let mut p = sample_patch();
    p[..8].copy_from_slice(b"DSLRECMP");
    assert_eq!(apply_err(OLD, &p), PatchError::Recompressing);
}

#[test]
fn unsupported_version() {
    for version in [0u8, 1, 2, 5, 0xff] {
        let mut p = sample_patch();
        p[8] = version;
        assert_eq!(
            apply_err(OLD, &p),
            PatchError::UnsupportedVersion {
                found: version.into()
            }
        );
    }
}

#[test]
fn version_4_names_a_transform_in_byte_11() {
    // Version 4 names a transform: the version 3 sample relabelled as
    // version 4 with transform 0 is refused (one byte form per header). In
    // version 3, byte 11 is flags and must be zero.
    for (version, id, err) in [
        (4, 0, PatchError::UnknownTransform { id: 0 }),
        (4, 3, PatchError::UnknownTransform { id: 3 }),
        (4, 0xff, PatchError::UnknownTransform { id: 0xff }),
        (3, 1, PatchError::ReservedNotZero),
    ] {
        let mut p = sample_patch();
        p[8] = version;
        p[11] = id;
        assert_eq!(apply_err(OLD, &p), err, "version {version}, byte 11 = {id}");
    }
    // Bytes 108..112 hold Thumb-2's image base in version 4; reserved (zero)
    // otherwise.
    for (version, id, ok) in [(4, 2, true), (4, 1, false), (3, 0, false)] {
        let mut p = sample_patch();
        p[8] = version;
        p[11] = id;
        p[108..112].copy_from_slice(&0x0800_0000u32.to_le_bytes());
        match PatchHeader::decode(&p, &Limits::default()) {
            Ok(h) => assert!(ok && h.image_base == 0x0800_0000),
            Err(e) => assert!(!ok && e == PatchError::ReservedNotZero, "{version} {id}"),
        }
    }
    // A header with a transform encodes as version 4, without as version 3;
    // an image base is written for Thumb-2 only, so every encoding decodes.
    for (t, version, base) in [
        (Transform::None, 3u8, 0),
        (Transform::X86, 4, 0),
        (Transform::Thumb2, 4, 0x0800_0000),
    ] {
        let mut h = PatchHeader::decode(&sample_patch(), &Limits::default()).unwrap();
        h.transform = t;
        h.image_base = 0x0800_0000;
        let e = h.encode();
        assert_eq!((e[8], e[11]), (version, t.id()));
        let body_len = h
            .chunks
            .iter()
            .map(|c| c.stored_len as usize)
            .sum::<usize>();
        let mut whole = e.clone();
        whole.resize(e.len() + body_len, 0);
        let decoded = PatchHeader::decode(&whole, &Limits::default()).unwrap();
        assert_eq!((decoded.transform, decoded.image_base), (t, base));
    }
}

#[test]
fn unknown_codec() {
    let mut p = sample_patch();
    p[10] = 2; // xz: unknown to a reader without the `xz` feature
    #[cfg(not(feature = "xz"))]
    assert_eq!(apply_err(OLD, &p), PatchError::UnknownCodec { id: 2 });
    #[cfg(feature = "xz")]
    assert_ne!(apply_err(OLD, &p), PatchError::UnknownCodec { id: 2 });
    p[10] = 3;
    assert_eq!(apply_err(OLD, &p), PatchError::UnknownCodec { id: 3 });
    p[10] = 0xff;
    assert_eq!(apply_err(OLD, &p), PatchError::UnknownCodec { id: 0xff });
}

#[test]
fn reserved_fields_must_be_zero() {
    let mut p = sample_patch();
    p[11] = 1;
    assert_eq!(apply_err(OLD, &p), PatchError::ReservedNotZero);
    let mut p = sample_patch();
    p[108] = 1;
    assert_eq!(apply_err(OLD, &p), PatchError::ReservedNotZero);
}

#[test]
fn chunk_size_checks() {
    let mut p = sample_patch();
    set_header_u32(&mut p, 12, 0);
    assert_eq!(
        apply_err(OLD, &p),
        PatchError::BadChunkSize { chunk_size: 0 }
    );
    let mut p = sample_patch();
    set_header_u32(&mut p, 12, u32::MAX);
    assert_eq!(
        apply_err(OLD, &p),
        PatchError::BadChunkSize {
            chunk_size: u32::MAX
        }
    );
    // A chunk size that implies a different chunk count.
    let mut p = sample_patch();
    set_header_u32(&mut p, 12, 12);
    assert_eq!(
        apply_err(OLD, &p),
        PatchError::ChunkCountMismatch {
            found: 2,
            expected: 1
        }
    );
}

#[test]
fn chunk_count_checks() {
    for (count, expected) in [(1u32, 2u64), (3, 2), (0, 2), (u32::MAX, 2)] {
        let mut p = sample_patch();
        set_header_u32(&mut p, 104, count);
        assert_eq!(
            apply_err(OLD, &p),
            PatchError::ChunkCountMismatch {
                found: count,
                expected
            }
        );
    }
    let p = sample_patch();
    let limits = Limits {
        max_chunks: 1,
        ..Limits::default()
    };
    assert_eq!(
        PatchHeader::decode(&p, &limits).unwrap_err(),
        PatchError::TooManyChunks { count: 2, limit: 1 }
    );
}

#[test]
fn sizes_near_u64_max() {
    // new_size near u64::MAX: over the default limit.
    let mut p = sample_patch();
    set_header_u64(&mut p, 56, u64::MAX);
    assert_eq!(apply_err(OLD, &p), PatchError::OutputTooLarge);
    let mut p = sample_patch();
    set_header_u64(&mut p, 16, u64::MAX - 1);
    assert_eq!(apply_err(OLD, &p), PatchError::OutputTooLarge);
    // With unlimited limits, the count check catches it without overflow.
    let unlimited = Limits {
        max_new_size: u64::MAX,
        max_old_size: u64::MAX,
        max_decoder_memory: u64::MAX,
        max_chunks: u32::MAX,
        max_chunk_size: u32::MAX,
    };
    let mut p = sample_patch();
    set_header_u64(&mut p, 56, u64::MAX);
    assert!(matches!(
        PatchHeader::decode(&p, &unlimited),
        Err(PatchError::ChunkCountMismatch { .. })
    ));
    // Chunk stored lengths that overflow when summed.
    let mut p = sample_patch();
    set_header_u64(&mut p, HEADER_LEN, u64::MAX);
    assert_eq!(apply_err(OLD, &p), PatchError::BodyLengthMismatch);
    let mut p = sample_patch();
    set_header_u64(&mut p, HEADER_LEN, u64::MAX - 50);
    set_header_u64(&mut p, HEADER_LEN + CHUNK_ENTRY_LEN, 200);
    assert_eq!(apply_err(OLD, &p), PatchError::BodyLengthMismatch);
    // Control lengths near u64::MAX.
    let p = with_chunk0(Spec {
        old_offset: 0,
        ctrl: ctrl(&[(u64::MAX, 0, 0)]),
        diff: Vec::new(),
        extra: Vec::new(),
    });
    assert!(matches!(
        apply_err(OLD, &p),
        PatchError::OutputOverrun { chunk: 0 } | PatchError::OldReadOutOfBounds { chunk: 0 }
    ));
    let p = with_chunk0(Spec {
        old_offset: 0,
        ctrl: ctrl(&[(0, u64::MAX, 0)]),
        diff: Vec::new(),
        extra: Vec::new(),
    });
    assert_eq!(apply_err(OLD, &p), PatchError::OutputOverrun { chunk: 0 });
    let p = with_chunk0(Spec {
        old_offset: 0,
        ctrl: ctrl(&[(0, 0, i64::MAX), (0, 0, i64::MAX)]),
        diff: Vec::new(),
        extra: Vec::new(),
    });
    assert_eq!(
        apply_err(OLD, &p),
        PatchError::OldReadOutOfBounds { chunk: 0 }
    );
    let p = with_chunk0(Spec {
        old_offset: u64::MAX,
        ctrl: ctrl(&[(1, 0, 0)]),
        diff: vec![0],
        extra: Vec::new(),
    });
    assert_eq!(
        apply_err(OLD, &p),
        PatchError::OldReadOutOfBounds { chunk: 0 }
    );
}

#[test]
fn declared_memory_over_limit() {
    let p = sample_patch();
    let h = PatchHeader::decode(&p, &Limits::default()).unwrap();
    let limits = Limits {
        max_decoder_memory: h.decoder_memory - 1,
        ..Limits::default()
    };
    assert_eq!(
        PatchHeader::decode(&p, &limits).unwrap_err(),
        PatchError::DecoderMemoryOverLimit {
            declared: h.decoder_memory,
            limit: h.decoder_memory - 1
        }
    );
    let mut sink = Vec::new();
    assert!(apply(&mut SliceImage(OLD), &p, &mut sink, &limits).is_err());
    assert!(sink.is_empty(), "nothing written before the memory check");
}

#[test]
fn chunk_needing_more_than_declared() {
    let mut p = sample_patch();
    set_header_u64(&mut p, 96, 10);
    assert_eq!(
        apply_err(OLD, &p),
        PatchError::ChunkMemoryOverDeclared { chunk: 0 }
    );
}

#[test]
fn stored_digest_mismatch() {
    let mut p = sample_patch();
    let last = p.len() - 1;
    p[last] ^= 0x40; // inside chunk 1
    let mut sink = Vec::new();
    let e = apply(&mut SliceImage(OLD), &p, &mut sink, &Limits::default()).unwrap_err();
    assert_eq!(e, PatchError::ChunkDigestMismatch { chunk: 1 });
    assert_eq!(sink, b"0123X5YZ", "chunk 0 was verified and written");
    let mut p = sample_patch();
    p[HEADER_LEN + 2 * CHUNK_ENTRY_LEN] ^= 1; // first body byte
    assert_eq!(
        apply_err(OLD, &p),
        PatchError::ChunkDigestMismatch { chunk: 0 }
    );
}

#[test]
fn output_digest_mismatch() {
    let mut p = sample_patch();
    p[HEADER_LEN + 40] ^= 1; // chunk 0 output digest
    let mut sink = Vec::new();
    let e = apply(&mut SliceImage(OLD), &p, &mut sink, &Limits::default()).unwrap_err();
    assert_eq!(e, PatchError::OutputDigestMismatch { chunk: 0 });
    assert!(
        sink.is_empty(),
        "a chunk is written only after its digest matched"
    );
}

#[test]
fn new_digest_mismatch() {
    let mut p = sample_patch();
    p[64] ^= 1;
    assert_eq!(apply_err(OLD, &p), PatchError::NewImageMismatch);
}

#[test]
fn wrong_old_image() {
    let p = sample_patch();
    let mut sink = Vec::new();
    let e = apply(
        &mut SliceImage(&OLD[1..]),
        &p,
        &mut sink,
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(e, PatchError::OldImageMismatch);
    let mut other = OLD.to_vec();
    other[19] ^= 1;
    let e = apply(&mut SliceImage(&other), &p, &mut sink, &Limits::default()).unwrap_err();
    assert_eq!(e, PatchError::OldImageMismatch);
    assert!(sink.is_empty());
}

#[test]
fn control_overruns_old() {
    // add past the end of old
    let p = with_chunk0(Spec {
        old_offset: 15,
        ctrl: ctrl(&[(6, 2, 0)]),
        diff: vec![0; 6],
        extra: b"YZ".to_vec(),
    });
    assert_eq!(
        apply_err(OLD, &p),
        PatchError::OldReadOutOfBounds { chunk: 0 }
    );
    // seek before the start of old
    let p = with_chunk0(Spec {
        old_offset: 0,
        ctrl: ctrl(&[(2, 0, -3), (4, 2, 0)]),
        diff: vec![0; 6],
        extra: b"YZ".to_vec(),
    });
    assert_eq!(
        apply_err(OLD, &p),
        PatchError::OldReadOutOfBounds { chunk: 0 }
    );
    // seek past the end of old
    let p = with_chunk0(Spec {
        old_offset: 0,
        ctrl: ctrl(&[(2, 0, 19), (4, 2, 0)]),
        diff: vec![0; 6],
        extra: b"YZ".to_vec(),
    });
    assert_eq!(
        apply_err(OLD, &p),
        PatchError::OldReadOutOfBounds { chunk: 0 }
    );
    // start offset past the end of old
    let p = with_chunk0(Spec {
        old_offset: 21,
        ctrl: ctrl(&[(0, 8, 0)]),
        diff: Vec::new(),
        extra: b"0123X5YZ".to_vec(),
    });
    assert_eq!(
        apply_err(OLD, &p),
        PatchError::OldReadOutOfBounds { chunk: 0 }
    );
}

#[test]
fn control_overruns_new() {
    let p = with_chunk0(Spec {
        old_offset: 0,
        ctrl: ctrl(&[(6, 3, 0)]),
        diff: vec![0; 6],
        extra: b"YZW".to_vec(),
    });
    assert_eq!(apply_err(OLD, &p), PatchError::OutputOverrun { chunk: 0 });
    let p = with_chunk0(Spec {
        old_offset: 0,
        ctrl: ctrl(&[(9, 0, 0)]),
        diff: vec![0; 8],
        extra: Vec::new(),
    });
    assert_eq!(apply_err(OLD, &p), PatchError::OutputOverrun { chunk: 0 });
    // a diff stream longer than the chunk output is refused before decoding
    let p = with_chunk0(Spec {
        old_offset: 0,
        ctrl: ctrl(&[(9, 0, 0)]),
        diff: vec![0; 9],
        extra: Vec::new(),
    });
    assert_eq!(apply_err(OLD, &p), PatchError::MalformedChunk { chunk: 0 });
}

#[test]
fn control_must_produce_exact_output() {
    // too short
    let p = with_chunk0(Spec {
        old_offset: 0,
        ctrl: ctrl(&[(6, 1, 0)]),
        diff: vec![0; 6],
        extra: b"Y".to_vec(),
    });
    assert_eq!(apply_err(OLD, &p), PatchError::ChunkIncomplete { chunk: 0 });
    // unused diff bytes
    let p = with_chunk0(Spec {
        old_offset: 0,
        ctrl: ctrl(&[(6, 2, 0)]),
        diff: vec![0; 7],
        extra: b"YZ".to_vec(),
    });
    assert_eq!(apply_err(OLD, &p), PatchError::ChunkIncomplete { chunk: 0 });
    // unused extra bytes
    let p = with_chunk0(Spec {
        old_offset: 0,
        ctrl: ctrl(&[(6, 2, 0)]),
        diff: vec![0; 6],
        extra: b"YZW".to_vec(),
    });
    assert_eq!(apply_err(OLD, &p), PatchError::ChunkIncomplete { chunk: 0 });
    // diff stream shorter than the adds
    let p = with_chunk0(Spec {
        old_offset: 0,
        ctrl: ctrl(&[(6, 2, 0)]),
        diff: vec![0; 5],
        extra: b"YZ".to_vec(),
    });
    assert_eq!(apply_err(OLD, &p), PatchError::ChunkIncomplete { chunk: 0 });
}

#[test]
fn malformed_control_varints() {
    for bad in [
        vec![0x86, 0x00, 0x02, 0x00], // non-minimal varint
        vec![0x06, 0x02],             // truncated triple
        vec![
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0,
        ], // > u64
    ] {
        let p = with_chunk0(Spec {
            old_offset: 0,
            ctrl: bad,
            diff: vec![0; 6],
            extra: b"YZ".to_vec(),
        });
        assert_eq!(apply_err(OLD, &p), PatchError::BadControl { chunk: 0 });
    }
}

#[test]
fn malformed_chunk_bodies() {
    // stream lengths that do not add up to the body
    let mut specs = sample_specs();
    let mut b0 = body_of(&specs.remove(0));
    b0.push(0);
    let b1 = body_of(&specs[0]);
    let p = assemble(OLD, &sample_new(), 8, vec![b0, b1]);
    assert_eq!(apply_err(OLD, &p), PatchError::MalformedChunk { chunk: 0 });
    // body shorter than its 44-byte header
    let b1 = body_of(&sample_specs()[1]);
    let p = assemble(OLD, &sample_new(), 8, vec![vec![0; 10], b1]);
    assert_eq!(apply_err(OLD, &p), PatchError::MalformedChunk { chunk: 0 });
    // codec none but stored != decoded length
    let mut b0 = body_of(&sample_specs()[0]);
    b0[12..16].copy_from_slice(&0u32.to_le_bytes()); // ctrl_stored = 0
    b0.drain(CHUNK_BODY_HEADER_LEN..CHUNK_BODY_HEADER_LEN + 3);
    let b1 = body_of(&sample_specs()[1]);
    let p = assemble(OLD, &sample_new(), 8, vec![b0, b1]);
    assert_eq!(apply_err(OLD, &p), PatchError::MalformedChunk { chunk: 0 });
}

/// A zstd patch whose only chunk is 64 literal bytes in one extra stream,
/// given as a zstd frame.
fn zstd_patch(frame: &[u8]) -> Vec<u8> {
    let new = [b'A'; 64];
    let c = ctrl(&[(0, new.len() as u64, 0)]);
    let bh = ChunkBodyHeader {
        old_offset: 0,
        ctrl_len: c.len() as u32,
        ctrl_stored: c.len() as u32,
        diff_len: 0,
        diff_stored: 0,
        extra_len: new.len() as u32,
        extra_stored: frame.len() as u32,
        ..ChunkBodyHeader::default()
    };
    let mut body = bh.encode().to_vec();
    body.extend_from_slice(&c);
    body.extend_from_slice(frame);
    let mut p = assemble(OLD, &new, 64, vec![body]);
    p[10] = Codec::Zstd.id();
    p
}

/// Hand-made frame: magic, single-segment descriptor, content size 64, one
/// last RLE block of 64 x 'A'.
const RLE_FRAME: [u8; 10] = [0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x40, 0x03, 0x02, 0x00, b'A'];

#[test]
fn zstd_stream_decodes() {
    let p = zstd_patch(&RLE_FRAME);
    let out = apply_to_vec(OLD, &p, &Limits::default()).unwrap();
    assert_eq!(out, [b'A'; 64]);
}

#[test]
fn zstd_bad_frames_fail_cleanly() {
    // RLE block of 65 bytes: more output than declared
    let mut f = RLE_FRAME;
    f[6] = 0x0b;
    assert_eq!(
        apply_err(OLD, &zstd_patch(&f)),
        PatchError::Decompress { chunk: 0 }
    );
    // reserved block type
    let mut f = RLE_FRAME;
    f[6] = 0x07;
    assert_eq!(
        apply_err(OLD, &zstd_patch(&f)),
        PatchError::Decompress { chunk: 0 }
    );
    // trailing bytes after the frame (11 stored bytes < 64, so still a frame)
    let mut f = RLE_FRAME.to_vec();
    f.push(0);
    assert_eq!(
        apply_err(OLD, &zstd_patch(&f)),
        PatchError::Decompress { chunk: 0 }
    );
    // skippable frame instead of a zstd frame
    let f = [0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0];
    assert_eq!(
        apply_err(OLD, &zstd_patch(&f)),
        PatchError::Decompress { chunk: 0 }
    );
    // stored length above the decoded length
    let f = [0u8; 65];
    assert_eq!(
        apply_err(OLD, &zstd_patch(&f)),
        PatchError::MalformedChunk { chunk: 0 }
    );
}

#[test]
fn zstd_window_over_limit_is_refused() {
    use ruzstd::encoding::{CompressionLevel, compress_to_vec};
    // ruzstd's encoder declares a large window, over the 1 KiB this chunk allows.
    let frame = compress_to_vec(&[b'A'; 64][..], CompressionLevel::Fastest);
    assert!(frame.len() < 64);
    assert_eq!(
        apply_err(OLD, &zstd_patch(&frame)),
        PatchError::Decompress { chunk: 0 }
    );
}

#[test]
fn varint_reader() {
    use super::apply::{read_svarint, read_varint};
    let mut buf = Vec::new();
    for v in [0u64, 1, 127, 128, 300, u64::MAX] {
        buf.clear();
        varint(&mut buf, v);
        assert_eq!(read_varint(&mut buf.as_slice()), Some(v));
    }
    for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
        buf.clear();
        varint(&mut buf, ((v << 1) ^ (v >> 63)) as u64);
        assert_eq!(read_svarint(&mut buf.as_slice()), Some(v));
    }
}

/// Deterministic mutation smoke test: apply never panics, and with the chunk
/// digests recomputed the chunk parser itself sees the mutated bytes.
#[test]
fn mutations_never_panic() {
    let base = sample_patch();
    let body_start = HEADER_LEN + 2 * CHUNK_ENTRY_LEN;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..4000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut p = base.clone();
        let i = (x % p.len() as u64) as usize;
        p[i] ^= (x >> 32) as u8 | 1;
        let _ = apply_to_vec(OLD, &p, &Limits::default());
        if i >= body_start {
            // re-hash bodies so the mutation reaches the chunk parser
            let mut off = body_start;
            for c in 0..2 {
                let e = HEADER_LEN + c * CHUNK_ENTRY_LEN;
                let len = u64::from_le_bytes(p[e..e + 8].try_into().unwrap()) as usize;
                let d = sha256(&p[off..off + len]);
                p[e + 8..e + 40].copy_from_slice(&d);
                off += len;
            }
            let _ = apply_to_vec(OLD, &p, &Limits::default());
        }
    }
}

#[test]
fn chunks_apply_independently_in_any_order() {
    let p = sample_patch();
    let h = PatchHeader::decode(&p, &Limits::default()).unwrap();
    let mut a = ChunkApplier::new();
    let c1 = a
        .apply_chunk(&h, &p, 1, &mut SliceImage(OLD))
        .unwrap()
        .to_vec();
    let c0 = a
        .apply_chunk(&h, &p, 0, &mut SliceImage(OLD))
        .unwrap()
        .to_vec();
    assert_eq!([c0, c1].concat(), sample_new());
    assert_eq!(
        a.apply_chunk(&h, &p, 2, &mut SliceImage(OLD)).unwrap_err(),
        PatchError::MalformedChunk { chunk: 2 }
    );
    let mut bad = p.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert_eq!(
        a.apply_chunk(&h, &bad, 1, &mut SliceImage(OLD))
            .unwrap_err(),
        PatchError::ChunkDigestMismatch { chunk: 1 }
    );
}

/// Issue 8, resource limits: hostile streams end in a bounded error. Work is
/// bounded by the declared (and capped) lengths, never by what a stream
/// would expand to, and nothing is allocated before the declared memory is
/// checked.
#[test]
fn hostile_streams_fail_within_declared_bounds() {
    // An "endless" control stream: 1 MiB - 1 of (0, 0, 0) triples produces
    // nothing; the interpreter runs once over it and stops.
    let p = with_chunk0(Spec {
        old_offset: 0,
        ctrl: vec![0; (1 << 20) - 1],
        diff: Vec::new(),
        extra: Vec::new(),
    });
    assert_eq!(apply_err(OLD, &p), PatchError::ChunkIncomplete { chunk: 0 });

    // A zstd bomb: 61 stored bytes, 14 RLE blocks of 1 KiB (14 KiB) for an
    // extra stream declared as 64 bytes. Decoding stops at the declared length.
    let mut bomb = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x00];
    for i in 0..14 {
        let last = u32::from(i == 13);
        let h = (1024u32 << 3) | (1 << 1) | last;
        bomb.extend_from_slice(&h.to_le_bytes()[..3]);
        bomb.push(b'A');
    }
    assert!(bomb.len() < 64);
    assert_eq!(
        apply_err(OLD, &zstd_patch(&bomb)),
        PatchError::Decompress { chunk: 0 }
    );

    // A chunk declaring a 4 GiB control stream: its honest declared memory
    // is over the limit (refused at the header) ...
    let c = ctrl(&[(0, 64, 0)]);
    let bh = ChunkBodyHeader {
        old_offset: 0,
        ctrl_len: u32::MAX,
        ctrl_stored: c.len() as u32,
        diff_len: 0,
        diff_stored: 0,
        extra_len: 64,
        extra_stored: RLE_FRAME.len() as u32,
        ..ChunkBodyHeader::default()
    };
    let mut body = bh.encode().to_vec();
    body.extend_from_slice(&c);
    body.extend_from_slice(&RLE_FRAME);
    let mut p = assemble(OLD, &[b'A'; 64], 64, vec![body]);
    p[10] = Codec::Zstd.id();
    set_header_u64(&mut p, 96, u64::from(u32::MAX) + 128);
    assert!(matches!(
        apply_err(OLD, &p),
        PatchError::DecoderMemoryOverLimit { .. }
    ));
    // ... and with a small declared memory, the chunk is refused before decoding.
    set_header_u64(&mut p, 96, 1 << 20);
    assert_eq!(
        apply_err(OLD, &p),
        PatchError::ChunkMemoryOverDeclared { chunk: 0 }
    );

    // Declared sizes of 2^63 are refused by the header checks.
    for off in [16, 56, 96] {
        let mut p = sample_patch();
        set_header_u64(&mut p, off, 1 << 63);
        assert!(matches!(
            apply_err(OLD, &p),
            PatchError::OutputTooLarge | PatchError::DecoderMemoryOverLimit { .. }
        ));
    }
}

/// An old image zstd can find matches in: 4 KiB of a simple PRNG.
fn ref_old() -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..4096)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 24) as u8
        })
        .collect()
}

/// A one-chunk zstd patch whose output is all extra bytes (`new`), the
/// frame compressed against `old[range]`, declaring reference `decl`.
fn ref_patch(old: &[u8], new: &[u8], range: core::ops::Range<usize>, decl: (u64, u32)) -> Vec<u8> {
    let mut c = zstd::zstd_safe::CCtx::create();
    c.set_parameter(zstd::zstd_safe::CParameter::CompressionLevel(19))
        .unwrap();
    c.ref_prefix(&old[range]).unwrap();
    let mut frame = Vec::with_capacity(zstd::zstd_safe::compress_bound(new.len()));
    c.compress2(&mut frame, new).unwrap();
    ref_patch_with_frame(old, new, &frame, decl)
}

fn ref_patch_with_frame(old: &[u8], new: &[u8], frame: &[u8], decl: (u64, u32)) -> Vec<u8> {
    let c = ctrl(&[(0, new.len() as u64, 0)]);
    let bh = ChunkBodyHeader {
        ctrl_len: c.len() as u32,
        ctrl_stored: c.len() as u32,
        extra_len: new.len() as u32,
        extra_stored: frame.len() as u32,
        ref_offset: decl.0,
        ref_len: decl.1,
        ..ChunkBodyHeader::default()
    };
    let mut body = bh.encode().to_vec();
    body.extend_from_slice(&c);
    body.extend_from_slice(frame);
    let mut p = assemble(old, new, new.len() as u32, vec![body]);
    p[10] = Codec::Zstd.id();
    p
}

/// New bytes that are mostly runs copied from `old[1024..3072]`.
fn ref_new(old: &[u8]) -> Vec<u8> {
    let mut new = Vec::new();
    for i in 0..40 {
        new.extend_from_slice(&old[1024 + i * 47..1024 + i * 47 + 40]);
        new.extend_from_slice(b"--");
    }
    new
}

#[test]
fn extra_reference_decodes_and_is_needed() {
    let old = ref_old();
    let new = ref_new(&old);
    let p = ref_patch(&old, &new, 1024..3072, (1024, 2048));
    assert!(
        p.len() < 1000,
        "the frame copies from the reference: {}",
        p.len()
    );
    assert_eq!(apply_to_vec(&old, &p, &Limits::default()).unwrap(), new);
    // The same frame with another reference (same length) does not decode
    // to the new bytes.
    let p = ref_patch(&old, &new, 1024..3072, (0, 2048));
    let err = apply_err(&old, &p);
    assert!(
        matches!(
            err,
            PatchError::OutputDigestMismatch { chunk: 0 } | PatchError::Decompress { chunk: 0 }
        ),
        "{err:?}"
    );
    // Without the reference it cannot decode at all.
    let p = ref_patch(&old, &new, 1024..3072, (0, 0));
    assert_eq!(apply_err(&old, &p), PatchError::Decompress { chunk: 0 });
}

#[test]
fn extra_reference_memory_is_declared() {
    let old = ref_old();
    let new = ref_new(&old);
    let with = ref_patch(&old, &new, 1024..3072, (1024, 2048));
    let h = PatchHeader::decode(&with, &Limits::default()).unwrap();
    let body = &with[h.chunk_body_range(0).unwrap()];
    let mut bh = ChunkBodyHeader::decode(body).unwrap();
    let with_mem = chunk_memory(Codec::Zstd, Transform::None, new.len() as u64, body).unwrap();
    bh.ref_len = 0;
    let mut without = body.to_vec();
    without[..CHUNK_BODY_HEADER_LEN].copy_from_slice(&bh.encode());
    let without_mem =
        chunk_memory(Codec::Zstd, Transform::None, new.len() as u64, &without).unwrap();
    assert_eq!(
        with_mem - without_mem,
        2 * 2048 + zstd_frame::ZSTD_TABLES,
        "two copies of the reference and the dictionary's tables"
    );
}

#[test]
fn extra_reference_is_checked() {
    let old = ref_old();
    let new = ref_new(&old);
    // Past the end of the old image, or overflowing.
    for decl in [(3072, 2048), (u64::MAX, 2), (4096, 1)] {
        let p = ref_patch(&old, &new, 1024..3072, decl);
        assert_eq!(
            apply_err(&old, &p),
            PatchError::OldReadOutOfBounds { chunk: 0 },
            "{decl:?}"
        );
    }
    // A reference for an extra stream stored raw.
    let p = ref_patch_with_frame(&old, &new, &new, (0, 16));
    assert_eq!(apply_err(&old, &p), PatchError::MalformedChunk { chunk: 0 });
    // A reference with codec none.
    let mut p = ref_patch(&old, &new, 1024..3072, (1024, 2048));
    p[10] = Codec::None.id();
    assert_eq!(apply_err(&old, &p), PatchError::MalformedChunk { chunk: 0 });
}

/// A raw LZMA2 stream of `raw` against the preset dictionary `reference`,
/// with the dictionary size the reader uses.
#[cfg(feature = "xz")]
fn lzma2_against(raw: &[u8], reference: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut options = lzma_rust2::Lzma2Options::with_preset(6);
    options.lzma_options.dict_size =
        super::xz_reference_dictionary(reference.len() as u32, raw.len() as u32).unwrap() as u32;
    options.lzma_options.preset_dict = Some(reference.to_vec());
    let mut writer = lzma_rust2::Lzma2Writer::new(Vec::new(), options);
    writer.write_all(raw).unwrap();
    writer.finish().unwrap()
}

#[cfg(feature = "xz")]
#[test]
fn xz_extra_stream_decodes_against_its_reference_and_nothing_else() {
    let old = ref_old();
    let new = ref_new(&old);
    // The one-chunk patch, its codec xz and its declared memory that of xz.
    let with_stream = |stream: &[u8], decl: (u64, u32)| {
        let mut p = ref_patch_with_frame(&old, &new, stream, decl);
        p[10] = Codec::Xz.id();
        let body = &p[HEADER_LEN + CHUNK_ENTRY_LEN..];
        let memory = chunk_memory(Codec::Xz, Transform::None, new.len() as u64, body).unwrap();
        p[96..104].copy_from_slice(&memory.to_le_bytes());
        (p, memory)
    };
    let stream = lzma2_against(&new, &old[1024..3072]);
    assert!(
        stream.len() < 1000,
        "copies from the reference: {}",
        stream.len()
    );
    let (p, memory) = with_stream(&stream, (1024, 2048));
    assert_eq!(apply_to_vec(&old, &p, &Limits::default()).unwrap(), new);
    // Output and extra buffers (1680 bytes each), 4 control bytes, the
    // dictionary (2048 + 1680 -> 4096), the reference's copy and the
    // decoder allowance.
    assert_eq!(memory, 2 * 1680 + 4 + 4096 + 2048 + (1 << 20));
    // Another reference of the same length: other bytes, refused by the
    // output digest (or by the decoder).
    let (other, _) = with_stream(&stream, (0, 2048));
    assert!(matches!(
        apply_err(&old, &other),
        PatchError::OutputDigestMismatch { chunk: 0 } | PatchError::Decompress { chunk: 0 }
    ));
    // A byte after the end marker, no end marker, a flipped bit.
    let mut trailing = stream.clone();
    trailing.push(0);
    let mut flipped = stream.clone();
    flipped[stream.len() / 2] ^= 0x10;
    let truncated = &stream[..stream.len() - 1];
    for bad in [&trailing[..], truncated, &flipped] {
        let (p, _) = with_stream(bad, (1024, 2048));
        assert!(
            matches!(
                apply_err(&old, &p),
                PatchError::Decompress { chunk: 0 } | PatchError::OutputDigestMismatch { chunk: 0 }
            ),
            "{}",
            bad.len()
        );
    }
}

#[test]
fn reference_dictionary_holds_the_old_bytes() {
    // The fixed tables must stay acceptable to the decoder.
    let old = ref_old();
    let d = apply::read_reference(&mut SliceImage(&old), 100, 3000, 0).unwrap();
    assert_eq!(d.dict_content, old[100..3100]);
    assert_eq!(d.offset_hist, [1, 4, 8]);
}
