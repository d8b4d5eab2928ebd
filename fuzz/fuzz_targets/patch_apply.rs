//! The chunk parser and applier on hostile chunk bodies.
//!
//! Arbitrary bytes almost never pass a patch's SHA-256 checks, so a plain
//! "apply random bytes" target would only ever exercise the header. Instead
//! this target wraps the fuzzer's bytes as the body of a one-chunk patch
//! whose header carries the body's correct stored digest: the chunk parser,
//! the decompressor and the control-stream interpreter then run on hostile
//! input, under a small memory budget, and must end in Ok or an error.
#![no_main]

use deltaseal_verify::digest::sha256;
use deltaseal_verify::patch::{ChunkEntry, Codec, Limits, PatchHeader, apply_to_vec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // [codec][new size: u16 LE][old len][old bytes...][chunk body...]
    let [codec, n0, n1, old_len, rest @ ..] = data else { return };
    let codec = if codec & 1 == 0 { Codec::None } else { Codec::Zstd };
    let new_size = u64::from(u16::from_le_bytes([*n0, *n1])) + 1;
    let split = usize::from(*old_len).min(rest.len());
    let (old, body) = rest.split_at(split);

    let limits = Limits {
        max_new_size: 1 << 20,
        max_decoder_memory: 4 << 20,
        ..Limits::default()
    };
    let header = PatchHeader {
        codec,
        old_size: old.len() as u64,
        old_digest: sha256(old),
        new_size,
        new_digest: [0; 32],
        chunk_size: new_size as u32,
        decoder_memory: limits.max_decoder_memory,
        chunks: vec![ChunkEntry {
            stored_len: body.len() as u64,
            stored_digest: sha256(body),
            output_digest: [0; 32],
        }],
    };
    let mut patch = header.encode();
    patch.extend_from_slice(body);
    if let Ok(new) = apply_to_vec(old, &patch, &limits) {
        // The new digest above is all zeros: nothing may ever be accepted.
        panic!("accepted a chunk whose output digest cannot match: {} bytes", new.len());
    }
});
