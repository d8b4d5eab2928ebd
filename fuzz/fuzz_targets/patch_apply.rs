//! The chunk parser and applier on hostile chunk bodies.
//!
//! Arbitrary bytes almost never pass a patch's SHA-256 checks, so a plain
//! "apply random bytes" target would only ever exercise the header. Instead
//! this target wraps the fuzzer's bytes as the body of a one-chunk patch
//! whose header carries the body's correct stored digest: the chunk parser,
//! the decompressor and the control-stream interpreter then run on hostile
//! input, under a small memory budget, and must end in Ok or an error.
//!
//! It also checks the declared-memory promise: whenever `chunk_memory`
//! accepts the body (the pre-decode walk of its zstd frames passes), the
//! heap the chunk applier allocates while applying it, counted by the
//! allocator below, never exceeds that number, except by what one
//! out-of-range zstd sequence can add before the decoder notices
//! (docs/format.md, "Memory": only a frame the walk cannot see into, with
//! a sequence section RFC 8878 forbids, and it ends in `Decompress`).
//!
//! And it is differential: the host's decoder (`ZstdDecoder::Libzstd`) must
//! reach the device decoder's verdict on the same chunk.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use deltaseal_verify::digest::sha256;
use deltaseal_verify::patch::{
    ChunkApplier, ChunkEntry, Codec, Limits, PatchError, PatchHeader, SliceImage, Transform,
    ZstdDecoder, apply_to_vec, chunk_memory,
};

/// What one zstd sequence past the end of its block can make the decoder
/// reserve before it fails: the longest match (131,074 bytes) and the
/// block's literals, in a window buffer that may double and be copied.
const BAD_SEQUENCE_SLACK: u64 = 3 * (131_074 + 2 * 128 * 1024);
use libfuzzer_sys::fuzz_target;

/// Live bytes and their high-water mark. A reallocation counts the old and
/// the new block as both held, as a moving realloc does.
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

struct Counting;

// SAFETY: every call is forwarded unchanged to `System`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Relaxed) + layout.size();
        PEAK.fetch_max(live, Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let live = LIVE.fetch_add(new_size, Relaxed) + new_size;
        PEAK.fetch_max(live, Relaxed);
        LIVE.fetch_sub(layout.size(), Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fuzz_target!(|data: &[u8]| {
    // [codec, transform and xz bit][new size: u16 LE][old len][old bytes...][chunk body...]
    let [codec, n0, n1, old_len, rest @ ..] = data else {
        return;
    };
    let transform = Transform::from_id((codec >> 1) % 3).unwrap_or_default();
    // Bit 7 picks xz (host appliers; with a reference in the body header,
    // a raw LZMA2 extra stream against old bytes as preset dictionary).
    let codec = match (codec & 0x80, codec & 1) {
        (0x80, _) => Codec::Xz,
        (_, 0) => Codec::None,
        _ => Codec::Zstd,
    };
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
        transform,
        // Pointers into a 256-byte old image linked at 0x100 (Thumb-2 only).
        image_base: if transform == Transform::Thumb2 { 0x100 } else { 0 },
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

    if let Some(declared) = chunk_memory(codec, transform, new_size, body) {
        let mut applier = ChunkApplier::new();
        let base = LIVE.load(Relaxed);
        PEAK.store(base, Relaxed);
        let result = applier.apply_chunk(&header, &patch, 0, &mut SliceImage(old));
        let used = (PEAK.load(Relaxed) - base) as u64;
        let slack = match result {
            Err(PatchError::Decompress { .. }) => BAD_SEQUENCE_SLACK,
            _ => 0,
        };
        assert!(
            used <= declared + slack,
            "chunk applier used {used} B, over the {declared} B chunk_memory declared"
        );
        // The host decoder (C libzstd) reaches the same verdict, except that
        // one decoder may refuse a corrupt frame (`Decompress`) that the
        // other decodes to bytes the chunk then fails on (the control
        // stream, or the output digest). The output digest here never
        // matches, so both must fail.
        let mut host = ChunkApplier::with_decoder(ZstdDecoder::Libzstd);
        let host_result = host.apply_chunk(&header, &patch, 0, &mut SliceImage(old));
        let (a, b) = (result.map(<[u8]>::to_vec), host_result.map(<[u8]>::to_vec));
        let decode =
            |r: &Result<Vec<u8>, PatchError>| matches!(r, Err(PatchError::Decompress { .. }));
        assert!(
            a == b || (a.is_err() && b.is_err() && (decode(&a) || decode(&b))),
            "ruzstd: {a:?}, libzstd: {b:?}"
        );
    }
    if let Ok(new) = apply_to_vec(old, &patch, &limits) {
        // The new digest above is all zeros: nothing may ever be accepted.
        panic!(
            "accepted a chunk whose output digest cannot match: {} bytes",
            new.len()
        );
    }
});
