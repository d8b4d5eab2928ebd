//! Diff → apply round trips on synthetic images, and determinism.

use deltaseal_diff::{Codec, DiffError, DiffOptions, Level, Transform, diff, diff_with_codec};
use deltaseal_testkit::Rng;
use deltaseal_verify::patch::{
    ApplyOptions, ChunkBodyHeader, Limits, OldImageCheck, PatchHeader, ZstdDecoder, apply_to_vec,
};

/// Code-like data: few distinct byte patterns, so matches exist.
fn structured(rng: &mut Rng, n: usize) -> Vec<u8> {
    let words: Vec<[u8; 4]> = (0..64)
        .map(|_| (rng.next_u64() as u32).to_le_bytes())
        .collect();
    let mut v = Vec::with_capacity(n + 4);
    while v.len() < n {
        v.extend_from_slice(&words[rng.below(words.len())]);
    }
    v.truncate(n);
    v
}

/// Insertions, deletions, moved blocks and byte edits.
fn edit(rng: &mut Rng, old: &[u8]) -> Vec<u8> {
    let mut new = old.to_vec();
    for _ in 0..8 {
        match rng.below(4) {
            0 if !new.is_empty() => {
                let at = rng.below(new.len());
                let n = 1 + rng.below(300);
                let ins = rng.bytes(n);
                new.splice(at..at, ins);
            }
            1 if new.len() > 10 => {
                let at = rng.below(new.len() - 5);
                let len = (1 + rng.below(400)).min(new.len() - at);
                new.drain(at..at + len);
            }
            2 if new.len() > 1000 => {
                let at = rng.below(new.len() - 500);
                let block: Vec<u8> = new.drain(at..at + 500).collect();
                let to = rng.below(new.len());
                new.splice(to..to, block);
            }
            _ if !new.is_empty() => {
                let at = rng.below(new.len());
                new[at] = new[at].wrapping_add(1 + rng.below(255) as u8);
            }
            _ => new.extend_from_slice(&rng.bytes(10)),
        }
    }
    new
}

fn opts(level: Level, threads: usize, chunk_size: u32) -> DiffOptions {
    DiffOptions {
        level,
        threads,
        chunk_size,
        ..DiffOptions::default()
    }
}

fn round_trip(old: &[u8], new: &[u8], o: &DiffOptions) -> Vec<u8> {
    let patch = diff(old, new, o).expect("diff");
    let out = apply_to_vec(old, &patch, &Limits::default()).expect("apply");
    assert!(
        out == new,
        "round trip mismatch ({} -> {} bytes)",
        old.len(),
        new.len()
    );
    patch
}

#[test]
fn empty_images() {
    let mut rng = Rng(1);
    let data = structured(&mut rng, 5000);
    let d = DiffOptions::default();
    round_trip(b"", b"", &d);
    round_trip(b"", &data, &d);
    round_trip(&data, b"", &d);
    round_trip(b"", b"x", &opts(Level::Fast, 1, 64));
}

#[test]
fn identical_images_are_tiny() {
    let mut rng = Rng(2);
    let data = structured(&mut rng, 200_000);
    let p = round_trip(&data, &data, &DiffOptions::default());
    // header + 1 chunk entry + body header + a few bytes of streams
    assert!(p.len() < 400, "identical patch is {} bytes", p.len());
}

#[test]
fn one_byte_change_costs_little() {
    let mut rng = Rng(3);
    let old = structured(&mut rng, 300_000);
    let mut new = old.clone();
    new[150_000] ^= 0x5a;
    let p = round_trip(&old, &new, &DiffOptions::default());
    assert!(p.len() < 500, "one-byte change patch is {} bytes", p.len());
}

#[test]
fn random_images() {
    let mut rng = Rng(4);
    for (a, b) in [
        (1, 1),
        (10, 1000),
        (1000, 10),
        (4096, 4096),
        (30_000, 20_000),
    ] {
        let old = rng.bytes(a);
        let new = rng.bytes(b);
        for cs in [64, 1000, 1 << 20] {
            round_trip(&old, &new, &opts(Level::Fast, 2, cs));
        }
    }
}

#[test]
fn structured_edits_all_levels_and_chunk_sizes() {
    let mut rng = Rng(5);
    for size in [100, 5_000, 150_000] {
        let old = structured(&mut rng, size);
        let new = edit(&mut rng, &old);
        for level in [Level::Fast, Level::Default, Level::Max] {
            for cs in [64, 4096, 1 << 20] {
                if level == Level::Max && cs == 64 && size > 10_000 {
                    continue; // slow and adds nothing
                }
                let p = round_trip(&old, &new, &opts(level, 2, cs));
                if size == 150_000 && cs == 1 << 20 {
                    assert!(
                        p.len() < new.len() / 10,
                        "{level:?}: patch {} of {}",
                        p.len(),
                        new.len()
                    );
                }
            }
        }
    }
}

/// Code whose calls cross an insertion, before and after relinking: a call
/// (x86 `E8 rel32` or Thumb-2 `BL`) every 12 bytes to one of 40 function
/// starts, between filler that holds many false opcode bytes (`E8`, `0F 8x`,
/// `8B 05`, `F0..F7`), so the scan meets fields it must not take for calls.
/// Thumb-2 code also starts with a Cortex-M vector table and holds a
/// pointer to the callee after each call (an image linked at 0x0800_0000).
fn relinked(rng: &mut Rng, n: usize, t: Transform) -> (Vec<u8>, Vec<u8>) {
    let functions: Vec<usize> = (0..40).map(|_| rng.below(n)).collect();
    let filler: Vec<u8> = (0..n + 4096)
        .map(|_| [0xE8, 0x0F, 0x85, 0x8B, 0x05, 0xF0, 0xF4, 0x90][rng.below(8)])
        .collect();
    let calls: Vec<usize> = (0..n / 12).map(|_| rng.below(functions.len())).collect();
    let (ins_at, ins_len) = ((n / 3) & !1, 2 * (1 + rng.below(500)));
    let build = |ins: usize| {
        let mut v = filler[..n].to_vec();
        v.splice(ins_at..ins_at, filler[n..n + ins].iter().copied());
        let moved = |p: usize| if p >= ins_at { p + ins } else { p };
        for (i, &f) in calls.iter().enumerate() {
            let site = moved(i * 12 + 4);
            let rel = (moved(functions[f]) as u64).wrapping_sub(site as u64 + 4);
            let template = match t {
                Transform::Thumb2 => 0xF800_F000,
                _ => {
                    v[site - 1] = 0xE8;
                    0
                }
            };
            let w = t.with_displacement(template, rel);
            v[site..site + 4].copy_from_slice(&w.to_le_bytes());
            if t == Transform::Thumb2 {
                // A function pointer between calls (a literal pool entry),
                // for an image linked at 0x0800_0000.
                let pointer = (0x0800_0000 + moved(functions[f]) as u32) | 1;
                let at = moved(i * 12 + 8);
                v[at..at + 4].copy_from_slice(&pointer.to_le_bytes());
            }
        }
        if t == Transform::Thumb2 {
            // A Cortex-M vector table: stack pointer, reset, NMI, HardFault.
            let reset = (0x0800_0000 + moved(functions[0]) as u32) | 1;
            for (k, w) in [0x2000_1000, reset, reset, reset].into_iter().enumerate() {
                v[4 * k..4 * k + 4].copy_from_slice(&w.to_le_bytes());
            }
        }
        v
    };
    (build(0), build(ins_len))
}

/// Every transform round-trips on any bytes (random, structured, and code
/// full of false opcodes) at every level and chunk size, and predicting the
/// right instruction set makes relinked code's patch smaller.
#[test]
fn transforms_round_trip_and_shrink_relinked_code() {
    let mut rng = Rng(13);
    for t in [Transform::X86, Transform::Thumb2] {
        let with = |level, cs, transform| DiffOptions {
            transform: Some(transform),
            ..opts(level, 2, cs)
        };
        let random = (rng.bytes(20_000), rng.bytes(20_000));
        let old = structured(&mut rng, 30_000);
        let structured_edit = (old.clone(), edit(&mut rng, &old));
        let code = relinked(&mut rng, 60_000, t);
        for (old, new) in [&random, &structured_edit, &code] {
            for level in [Level::Fast, Level::Default] {
                for cs in [64, 4096, 1 << 20] {
                    let p = round_trip(old, new, &with(level, cs, t));
                    let h = PatchHeader::decode(&p, &Limits::default()).unwrap();
                    assert_eq!((h.transform, p[8]), (t, 4));
                    if t == Transform::Thumb2 && (old, new) == (&code.0, &code.1) {
                        assert_eq!(h.image_base, 0x0800_0000, "found from the vector table");
                    }
                    assert_eq!(apply_with(ZstdDecoder::Libzstd, old, &p).unwrap(), *new);
                }
            }
        }
        let (old, new) = &code;
        let plain = round_trip(old, new, &with(Level::Default, 1 << 20, Transform::None));
        let predicted = round_trip(old, new, &with(Level::Default, 1 << 20, t));
        assert!(
            predicted.len() * 10 < plain.len() * 8,
            "{t:?}: {} bytes predicted, {} plain",
            predicted.len(),
            plain.len()
        );
    }
}

#[test]
fn codec_none_round_trips() {
    let mut rng = Rng(6);
    let old = structured(&mut rng, 20_000);
    let new = edit(&mut rng, &old);
    let p = diff_with_codec(&old, &new, &opts(Level::Default, 2, 4096), Codec::None).unwrap();
    let h = PatchHeader::decode(&p, &Limits::default()).unwrap();
    assert_eq!(h.codec, Codec::None);
    assert_eq!(apply_to_vec(&old, &p, &Limits::default()).unwrap(), new);
}

#[test]
fn deterministic_across_threads() {
    let mut rng = Rng(7);
    let old = structured(&mut rng, 400_000);
    let new = edit(&mut rng, &old);
    for cs in [64 * 1024, 1 << 20] {
        let p1 = round_trip(&old, &new, &opts(Level::Default, 1, cs));
        let p2 = round_trip(&old, &new, &opts(Level::Default, 2, cs));
        let p3 = round_trip(&old, &new, &opts(Level::Default, 3, cs));
        assert_eq!(p1, p2);
        assert_eq!(p1, p3);
    }
}

#[test]
fn declared_memory_is_bounded_by_chunk_size() {
    let mut rng = Rng(8);
    let old = rng.bytes(3 << 20);
    let new = rng.bytes(3 << 20);
    let p = round_trip(&old, &new, &DiffOptions::default());
    let h = PatchHeader::decode(&p, &Limits::default()).unwrap();
    assert_eq!(h.chunks.len(), 3);
    assert!(h.decoder_memory <= 6 << 20, "declared {}", h.decoder_memory);
    assert!(h.decoder_memory >= 1 << 20);
}

#[test]
fn zero_chunk_size_is_an_error() {
    let e = diff(b"a", b"b", &opts(Level::Fast, 1, 0)).unwrap_err();
    assert!(matches!(e, DiffError::ZeroChunkSize));
}

#[test]
fn mcu_style_patches_fit_mcu_limits() {
    let mut rng = Rng(9);
    let old = structured(&mut rng, 200_000);
    let new = edit(&mut rng, &old);
    let o = DiffOptions {
        threads: 2,
        ..DiffOptions::mcu()
    };
    for codec in [Codec::Zstd, Codec::None] {
        let p = diff_with_codec(&old, &new, &o, codec).unwrap();
        let h = PatchHeader::decode(&p, &Limits::mcu()).unwrap();
        assert!(
            h.decoder_memory <= 64 * 1024,
            "{codec:?}: declared {}",
            h.decoder_memory
        );
        assert_eq!(apply_to_vec(&old, &p, &Limits::mcu()).unwrap(), new);
    }
}

/// Mutate chunk bodies of real zstd patches and re-hash them, so the
/// mutated bytes reach the stream decoders and the control interpreter:
/// apply must return an error (or the right image), never panic.
#[test]
fn mutated_chunk_bodies_never_panic() {
    mutated_chunk_bodies(Level::Default);
}

/// The same with `Level::Max` (xz streams when the `xz` feature is on).
#[test]
fn mutated_max_level_chunk_bodies_never_panic() {
    mutated_chunk_bodies(Level::Max);
}

/// `Level::Max` writes its level's codec or the default level's patch,
/// whichever is smaller, round trips, and does not depend on the thread
/// count.
#[test]
fn max_level_codec_and_determinism() {
    let mut rng = Rng(11);
    let old = structured(&mut rng, 300_000);
    let new = edit(&mut rng, &old);
    let p1 = round_trip(&old, &new, &opts(Level::Max, 1, 64 * 1024));
    let p2 = round_trip(&old, &new, &opts(Level::Max, 3, 64 * 1024));
    assert_eq!(p1, p2);
    let h = PatchHeader::decode(&p1, &Limits::default()).unwrap();
    assert!([Level::Max.codec(), Level::Default.codec()].contains(&h.codec));
    let own = diff_with_codec(
        &old,
        &new,
        &opts(Level::Max, 1, 64 * 1024),
        Level::Max.codec(),
    )
    .unwrap();
    let default = diff(&old, &new, &opts(Level::Default, 1, 64 * 1024)).unwrap();
    assert_eq!(p1.len(), own.len().min(default.len()));
    // The level's own chunk size keeps declared memory within the default limits.
    let o = DiffOptions::for_level(Level::Max);
    assert_eq!(o.chunk_size, Level::Max.chunk_size());
    let p = round_trip(&old, &new, &o);
    let h = PatchHeader::decode(&p, &Limits::default()).unwrap();
    assert!(h.decoder_memory <= 64 << 20);
}

fn mutated_chunk_bodies(level: Level) {
    use deltaseal_verify::digest::sha256;
    use deltaseal_verify::patch::{CHUNK_ENTRY_LEN, HEADER_LEN, PatchError};
    let mut rng = Rng(10);
    // Relinked x86 code: the mutations also hit predicted fields.
    let (old, new) = relinked(&mut rng, 40_000, Transform::X86);
    // The level's own codec (`diff` may return the default level's patch).
    let x86 = DiffOptions {
        transform: Some(Transform::X86),
        ..opts(level, 1, 8192)
    };
    let base = diff_with_codec(&old, &new, &x86, level.codec()).unwrap();
    assert_eq!(
        PatchHeader::decode(&base, &Limits::default())
            .unwrap()
            .transform,
        Transform::X86
    );
    let h = PatchHeader::decode(&base, &Limits::default()).unwrap();
    let n = h.chunks.len();
    let bodies = HEADER_LEN + n * CHUNK_ENTRY_LEN;
    let mut errors = 0;
    for _ in 0..3000 {
        let mut p = base.clone();
        for _ in 0..1 + rng.below(3) {
            let i = bodies + rng.below(p.len() - bodies);
            p[i] ^= 1 << rng.below(8);
        }
        let mut off = bodies;
        for c in 0..n {
            let e = HEADER_LEN + c * CHUNK_ENTRY_LEN;
            let len = h.chunks[c].stored_len as usize;
            let d = sha256(&p[off..off + len]);
            p[e + 8..e + 40].copy_from_slice(&d);
            off += len;
        }
        let ruzstd = apply_with(ZstdDecoder::Ruzstd, &old, &p);
        // The host decoder reaches the same verdict on every hostile body:
        // the walk before decoding is the same, and both outputs face the
        // same digests. ruzstd decodes some corrupt frames libzstd refuses
        // (as the patch_apply fuzz target found); both then fail.
        let libzstd = apply_with(ZstdDecoder::Libzstd, &old, &p);
        let decompress = |r: &Result<_, _>| matches!(r, Err(PatchError::Decompress { .. }));
        if !(ruzstd.is_err() && libzstd.is_err() && (decompress(&ruzstd) || decompress(&libzstd))) {
            assert_eq!(ruzstd, libzstd);
        }
        match ruzstd {
            Ok(out) => assert_eq!(out, new),
            Err(_) => errors += 1,
        }
    }
    assert!(errors > 2500, "only {errors} mutations detected");
}

fn apply_with(
    decoder: ZstdDecoder,
    old: &[u8],
    patch: &[u8],
) -> Result<Vec<u8>, deltaseal_verify::patch::PatchError> {
    let mut out = Vec::new();
    let run = ApplyOptions {
        threads: 1,
        decoder,
        old_image: OldImageCheck::BeforeApply,
    };
    deltaseal_verify::patch::apply_parallel(old, patch, &mut out, &Limits::default(), run)?;
    Ok(out)
}

/// `apply_parallel` gives the same image as `apply` for any thread count and
/// either zstd decoder, and the same error on a corrupt patch.
#[test]
fn parallel_apply_matches_serial() {
    use deltaseal_verify::patch::{PatchError, apply_parallel};
    let mut rng = Rng(12);
    let old = rng.bytes(200_000);
    // Short pieces of the old image a little ahead, too short for the
    // matcher: literals that the extra stream's reference covers.
    let mut new = edit(&mut rng, &old);
    for _ in 0..400 {
        let at = rng.below(new.len().min(old.len() - 4096));
        let from = at + rng.below(4000);
        new.splice(at..at, old[from..from + 9].to_vec());
    }
    let p = diff(&old, &new, &opts(Level::Default, 2, 16 * 1024)).unwrap();
    let header = PatchHeader::decode(&p, &Limits::default()).unwrap();
    let referenced = (0..header.chunks.len() as u32)
        .filter_map(|i| header.chunk_body_range(i))
        .filter(|r| ChunkBodyHeader::decode(&p[r.clone()]).is_some_and(|b| b.ref_len > 0))
        .count();
    assert!(referenced > 0, "no chunk exercises the extra reference");
    let mut bad = p.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let serial = apply_to_vec(&old, &bad, &Limits::default()).unwrap_err();
    assert!(matches!(serial, PatchError::ChunkDigestMismatch { .. }));
    // Same size, one byte off where the first chunk reads it.
    let mut wrong_old = old.clone();
    wrong_old[0] ^= 0x40;
    for decoder in [ZstdDecoder::Ruzstd, ZstdDecoder::Libzstd] {
        for old_image in [OldImageCheck::BeforeApply, OldImageCheck::OnFailure] {
            for threads in [0, 1, 2, 3, 64] {
                let run = ApplyOptions {
                    threads,
                    decoder,
                    old_image,
                };
                let mut out = Vec::new();
                let s = apply_parallel(old.as_slice(), &p, &mut out, &Limits::default(), run);
                assert_eq!(s.unwrap().new_size, new.len() as u64);
                assert_eq!(out, new);
                let limits = Limits::default();
                let e = apply_parallel(old.as_slice(), &bad, &mut Vec::new(), &limits, run);
                assert_eq!(e.unwrap_err(), serial);
                for wrong in [&new, &wrong_old] {
                    let e = apply_parallel(wrong.as_slice(), &p, &mut Vec::new(), &limits, run);
                    assert_eq!(e.unwrap_err(), PatchError::OldImageMismatch);
                }
            }
        }
    }
}

/// `OldImageCheck::OnFailure` reads the old image's digest only once the
/// new image's failed: an old image that differs only where no chunk reads
/// still gives exactly the new image, which `BeforeApply` refuses.
#[test]
fn old_image_checked_on_failure_only() {
    use deltaseal_verify::patch::{PatchError, apply_parallel};
    // The new image reads old[..4096] only; the rest is never read.
    let mut rng = Rng(14);
    let old = rng.bytes(8192);
    let mut new = old[..4096].to_vec();
    new[100] ^= 1;
    let p = diff(&old, &new, &opts(Level::Default, 1, 1024)).unwrap();
    let mut unread_changed = old.clone();
    unread_changed[8000] ^= 1;
    let run = |old_image| ApplyOptions {
        threads: 2,
        decoder: ZstdDecoder::Ruzstd,
        old_image,
    };
    let limits = Limits::default();
    let mut out = Vec::new();
    let at_end = run(OldImageCheck::OnFailure);
    apply_parallel(unread_changed.as_slice(), &p, &mut out, &limits, at_end).unwrap();
    assert_eq!(out, new);
    let first = run(OldImageCheck::BeforeApply);
    let e = apply_parallel(
        unread_changed.as_slice(),
        &p,
        &mut Vec::new(),
        &limits,
        first,
    );
    assert_eq!(e.unwrap_err(), PatchError::OldImageMismatch);
}

/// `apply_parallel_from` (chunk bodies read from a patch source on demand,
/// as `deltaseal apply` does from the file) matches `apply`; a source shorter
/// than the index says is `Truncated`; a body longer than the declared
/// memory allows is refused before it is read.
#[test]
fn parallel_apply_from_a_patch_source() {
    use deltaseal_verify::patch::{PatchError, PatchHeader, apply_parallel_from};
    let mut rng = Rng(13);
    let old = structured(&mut rng, 150_000);
    let new = edit(&mut rng, &old);
    let p = diff(&old, &new, &opts(Level::Default, 2, 16 * 1024)).unwrap();
    let full = PatchHeader::decode(&p, &Limits::default()).unwrap();
    let index = &p[..full.encoded_len()];
    let header = PatchHeader::decode_index(index, p.len() as u64, &Limits::default()).unwrap();
    for threads in [1, 2, 5] {
        let mut out = Vec::new();
        let run = ApplyOptions::threads(threads);
        apply_parallel_from(old.as_slice(), &header, p.as_slice(), &mut out, run).unwrap();
        assert_eq!(out, new);
    }
    let two = ApplyOptions::threads(2);
    let short = &p[..p.len() - 1];
    let e = apply_parallel_from(old.as_slice(), &header, short, &mut Vec::new(), two).unwrap_err();
    assert_eq!(e, PatchError::Truncated);
    let mut tight = header.clone();
    tight.decoder_memory = 16;
    let e = apply_parallel_from(old.as_slice(), &tight, p.as_slice(), &mut Vec::new(), two)
        .unwrap_err();
    assert_eq!(e, PatchError::ChunkMemoryOverDeclared { chunk: 0 });
}
