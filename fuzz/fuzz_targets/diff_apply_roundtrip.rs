//! The writer and the reader agree: for any old and new image, the patch
//! `deltaseal-diff` writes (every codec, small and odd chunk sizes, each
//! branch transform) applies under the default limits and gives back
//! exactly the new image.
#![no_main]

use deltaseal_diff::{Codec, DiffOptions, Level, Transform, diff_with_codec};
use deltaseal_verify::patch::{Limits, apply_to_vec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // [old len: u16 LE][old bytes][new bytes]
    let [l0, l1, rest @ ..] = data else { return };
    let split = usize::from(u16::from_le_bytes([*l0, *l1])).min(rest.len());
    let (old, new) = rest.split_at(split);
    let odd_chunk = 1 + u32::from(*l1 % 97);
    // The transform comes from the input too; a Thumb-2 new image that
    // starts with a vector table also gets pointer fields.
    let transform = [Transform::None, Transform::X86, Transform::Thumb2][usize::from(*l0 % 3)];
    for (codec, chunk_size) in [(Codec::None, odd_chunk), (Codec::Zstd, 1024), (Codec::Xz, 1024)] {
        let opts = DiffOptions {
            level: Level::Fast,
            threads: 1,
            chunk_size,
            // zstd chunks compress their literals against the old image.
            extra_reference: chunk_size,
            transform: Some(transform),
        };
        let patch = diff_with_codec(old, new, &opts, codec).expect("diff of in-memory images");
        let out = apply_to_vec(old, &patch, &Limits::default()).expect("our own patch applies");
        assert_eq!(out, new, "round trip changed the image");
    }
});
