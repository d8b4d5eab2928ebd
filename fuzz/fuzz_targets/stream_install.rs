//! The streaming installer (`deltaseal_verify::stream`) on hostile bundles
//! fed in hostile piece sizes.
//!
//! Input: `[mode][piece seed][old len][old bytes...][rest...]`.
//! - mode bit 0 clear: `rest` is raw bundle bytes (envelope prefix
//!   buffering, the strict decoder, signature checks on any piece split);
//! - mode bit 0 set: `rest` is a patch that this target signs into a
//!   bundle whose manifest agrees with the patch's own header claims, so
//!   the index, precursor and chunk stages run on hostile patches too.
//!
//! Every run must end in `Ok` or a typed error, never a panic; an `Ok` must
//! have written exactly the image whose digest it reports.
#![no_main]

use deltaseal_sign::{ImageRef, ReleaseInput, build_bundle};
use deltaseal_verify::bundle::Policy;
use deltaseal_verify::digest::sha256;
use deltaseal_verify::patch::{Limits, SliceImage};
use deltaseal_verify::root::TrustRoot;
use deltaseal_verify::stream::StreamInstaller;
use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;

/// Little-endian integer at `at` in `patch`, or 0 if it is not all there.
fn le(patch: &[u8], at: usize, len: usize) -> u64 {
    patch.get(at..at + len).map_or(0, |b| {
        b.iter().rev().fold(0u64, |v, &x| (v << 8) | u64::from(x))
    })
}

fuzz_target!(|data: &[u8]| {
    let [mode, seed, old_len, rest @ ..] = data else {
        return;
    };
    let split = usize::from(*old_len).min(rest.len());
    let (old, body) = rest.split_at(split);
    let key = SigningKey::from_bytes(&[1; 32]);
    let trust = TrustRoot::single(key.verifying_key());

    let bundle = if mode & 1 == 0 {
        body.to_vec()
    } else {
        // A manifest that believes the patch's header (new size and digest
        // at 56 and 64, chunk count at 104), signed by the trusted key.
        let count = le(body, 104, 4) as usize;
        let index_len = (112 + 72 * count).min(body.len());
        let mut new_digest = [0u8; 32];
        if let Some(d) = body.get(64..96) {
            new_digest.copy_from_slice(d);
        }
        let input = ReleaseInput {
            sequence: 1,
            vendor_id: [1; 16],
            class_id: [2; 16],
            precursor: ImageRef {
                size: old.len() as u64,
                digest: sha256(old),
            },
            target: ImageRef {
                size: le(body, 56, 8),
                digest: new_digest,
            },
            patch: body,
            patch_index_digest: sha256(&body[..index_len]),
        };
        match build_bundle(&input, &[key]) {
            Ok(b) => b,
            Err(_) => return,
        }
    };

    let mut inst = StreamInstaller::new(&trust, Policy::default(), Limits::mcu());
    let mut sink = Vec::new();
    let mut x = u32::from(*seed) | 1;
    let mut at = 0;
    while at < bundle.len() {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = (1 + (x >> 16) as usize % 300).min(bundle.len() - at);
        if inst
            .feed(&bundle[at..at + n], &mut SliceImage(old), &mut sink)
            .is_err()
        {
            break;
        }
        at += n;
    }
    if let Ok(installed) = inst.finish() {
        assert_eq!(installed.new_size, sink.len() as u64);
        assert_eq!(installed.new_digest, sha256(&sink));
    }
});
