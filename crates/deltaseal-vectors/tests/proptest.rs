//! Property tests across the writer/reader pairs: diff → apply with
//! structured firmware edits, sign's manifest builder → verify's strict
//! decoder, and the patch header / chunk body header codecs.
//!
//! They live here because this crate already depends on all three library
//! crates (verify, diff, sign).

use deltaseal_diff::{Codec, DiffOptions, Level, diff_with_codec};
use deltaseal_sign::bundle::build_bundle_for_component;
use deltaseal_sign::{ImageRef, ReleaseInput};
use deltaseal_vectors::generate::test_key;
use deltaseal_vectors::synth;
use deltaseal_verify::bundle::{Bundle, Policy};
use deltaseal_verify::digest::sha256;
use deltaseal_verify::patch::{
    ChunkBodyHeader, ChunkEntry, Limits, PatchHeader, Transform, apply_to_vec, index_digest,
};
use proptest::prelude::*;

/// One edit of a firmware-like image.
#[derive(Debug, Clone)]
enum Edit {
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
    Delete {
        at: usize,
        len: usize,
    },
    Move {
        from: usize,
        len: usize,
        to: usize,
    },
    /// Shift every 4-byte little-endian word that looks like a branch target.
    ShiftTargets {
        delta: i32,
    },
    Flip {
        at: usize,
        xor: u8,
    },
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..300)
        )
            .prop_map(|(at, bytes)| Edit::Insert { at, bytes }),
        (any::<usize>(), 1usize..400).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<usize>(), 1usize..600, any::<usize>()).prop_map(|(from, len, to)| Edit::Move {
            from,
            len,
            to
        }),
        (-4096i32..4096).prop_map(|delta| Edit::ShiftTargets { delta }),
        (any::<usize>(), 1u8..=255).prop_map(|(at, xor)| Edit::Flip { at, xor }),
    ]
}

fn apply_edit(img: &mut Vec<u8>, e: &Edit) {
    let n = img.len();
    match e {
        Edit::Insert { at, bytes } => {
            let at = if n == 0 { 0 } else { at % (n + 1) };
            img.splice(at..at, bytes.iter().copied());
        }
        Edit::Delete { at, len } if n > 0 => {
            let at = at % n;
            let end = (at + len).min(n);
            img.drain(at..end);
        }
        Edit::Move { from, len, to } if n > 0 => {
            let from = from % n;
            let end = (from + len).min(n);
            let block: Vec<u8> = img.drain(from..end).collect();
            let to = to % (img.len() + 1);
            img.splice(to..to, block);
        }
        Edit::ShiftTargets { delta } => {
            for w in img.chunks_exact_mut(4) {
                let v = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
                if (0x0800_0000..0x0900_0000).contains(&v) {
                    w.copy_from_slice(&v.wrapping_add_signed(*delta).to_le_bytes());
                }
            }
        }
        Edit::Flip { at, xor } if n > 0 => img[at % n] ^= xor,
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn diff_apply_round_trips_structured_edits(
        seed in any::<u64>(),
        size in 0usize..6000,
        edits in proptest::collection::vec(edit_strategy(), 0..8),
        zstd in any::<bool>(),
        chunk_size in prop_oneof![1u32..64, 64u32..4096, Just(1u32 << 20)],
    ) {
        let old = synth::firmware(seed, size);
        let mut new = old.clone();
        for e in &edits {
            apply_edit(&mut new, e);
        }
        let opts = DiffOptions { level: Level::Fast, threads: 1, chunk_size, ..DiffOptions::default() };
        let codec = if zstd { Codec::Zstd } else { Codec::None };
        let patch = diff_with_codec(&old, &new, &opts, codec).unwrap();
        prop_assert_eq!(apply_to_vec(&old, &patch, &Limits::default()).unwrap(), new);
    }

    #[test]
    fn manifest_builder_and_strict_decoder_agree(
        sequence in any::<u64>(),
        vendor_id in any::<[u8; 16]>(),
        class_id in any::<[u8; 16]>(),
        precursor in (any::<u64>(), any::<[u8; 32]>()),
        target in (any::<u64>(), any::<[u8; 32]>()),
        patch in proptest::collection::vec(any::<u8>(), 0..200),
        patch_index_digest in any::<[u8; 32]>(),
        component in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..=64), 1..=4),
    ) {
        let input = ReleaseInput {
            sequence,
            vendor_id,
            class_id,
            precursor: ImageRef { size: precursor.0, digest: precursor.1 },
            target: ImageRef { size: target.0, digest: target.1 },
            patch: &patch,
            patch_index_digest,
        };
        let parts: Vec<&[u8]> = component.iter().map(Vec::as_slice).collect();
        let key = test_key("release_a");
        let bytes = build_bundle_for_component(&input, &parts, core::slice::from_ref(&key)).unwrap();
        let bundle = Bundle::decode(&bytes).unwrap();
        let m = bundle.manifest().clone();
        prop_assert_eq!(m.sequence, sequence);
        prop_assert_eq!(m.vendor_id, vendor_id);
        prop_assert_eq!(m.class_id, class_id);
        prop_assert_eq!(&m.component_id, &component);
        prop_assert_eq!(m.precursor, input.precursor);
        prop_assert_eq!(m.target, input.target);
        prop_assert_eq!(m.patch.size, patch.len() as u64);
        prop_assert_eq!(m.patch.digest, sha256(&patch));
        prop_assert_eq!(m.patch.index_digest, patch_index_digest);
        let approved = bundle
            .authenticate(&[key.verifying_key()])
            .unwrap()
            .approve(&Policy::default())
            .unwrap();
        prop_assert_eq!(approved.checked_payload().unwrap(), &patch[..]);
        // Any single-byte change is refused somewhere before the payload is released.
        let mut rng = synth::SplitMix64::new(sequence);
        let mut bad = bytes.clone();
        let at = rng.below(bad.len());
        bad[at] ^= 1 << rng.below(8);
        let accepted = Bundle::decode(&bad)
            .ok()
            .and_then(|b| b.authenticate(&[key.verifying_key()]).ok())
            .and_then(|a| a.approve(&Policy::default()).ok())
            .and_then(|a| a.checked_payload().ok().map(<[u8]>::to_vec));
        prop_assert!(accepted.is_none(), "a bit flip at {} was accepted", at);
    }

    #[test]
    fn patch_header_round_trips(
        codec in prop_oneof![Just(Codec::None), Just(Codec::Zstd)],
        transform in prop_oneof![Just(Transform::None), Just(Transform::X86), Just(Transform::Thumb2)],
        chunk_size in 1u32..5000,
        new_size in 0u64..40_000,
        old_size in any::<u64>().prop_map(|s| s % (1 << 40)),
        old_digest in any::<[u8; 32]>(),
        new_digest in any::<[u8; 32]>(),
        decoder_memory in 0u64..(64 << 20),
        seed in any::<u64>(),
    ) {
        let count = new_size.div_ceil(u64::from(chunk_size));
        let mut rng = synth::SplitMix64::new(seed);
        let chunks: Vec<ChunkEntry> = (0..count)
            .map(|_| ChunkEntry {
                stored_len: rng.below(40) as u64,
                stored_digest: sha256(&rng.next_u64().to_le_bytes()),
                output_digest: sha256(&rng.next_u64().to_be_bytes()),
            })
            .collect();
        let h = PatchHeader { codec, transform, image_base: if transform == Transform::Thumb2 { chunk_size } else { 0 }, old_size, old_digest, new_size, new_digest, chunk_size, decoder_memory, chunks };
        let mut p = h.encode();
        prop_assert_eq!(p.len(), h.encoded_len());
        let bodies: u64 = h.chunks.iter().map(|c| c.stored_len).sum();
        p.resize(p.len() + bodies as usize, 0xa5);
        prop_assert_eq!(&PatchHeader::decode(&p, &Limits::default()).unwrap(), &h);
        prop_assert_eq!(index_digest(&p, &Limits::default()).unwrap(), sha256(&p[..h.encoded_len()]));
    }

    #[test]
    fn chunk_body_header_round_trips(
        old_offset in any::<u64>(),
        lens in any::<[u32; 6]>(),
        ref_offset in any::<u64>(),
        ref_len in any::<u32>(),
    ) {
        let bh = ChunkBodyHeader {
            old_offset,
            ctrl_len: lens[0],
            ctrl_stored: lens[1],
            diff_len: lens[2],
            diff_stored: lens[3],
            extra_len: lens[4],
            extra_stored: lens[5],
            ref_offset,
            ref_len,
        };
        prop_assert_eq!(ChunkBodyHeader::decode(&bh.encode()), Some(bh));
    }
}
