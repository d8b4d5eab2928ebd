//! Corpus round trips: diff (default level, 2 threads), apply, compare, and
//! print `pair old new patch %`. Pairs come from `$CORPUS_DIR` (default
//! `<workspace>/../corpus-data`); missing pairs are skipped with a message,
//! unless `DELTASEAL_REQUIRE_CORPUS` names them (`deltaseal_testkit`).
//! `DELTASEAL_LEVEL=fast|max` and `DELTASEAL_CHUNK_SIZE=<bytes>` change the options.

use std::time::Instant;

use deltaseal_diff::{DiffOptions, Level, Transform, diff};
use deltaseal_testkit::{Corpus, PAIRS, PairImages};
use deltaseal_verify::patch::{Limits, PatchHeader, apply_to_vec};

fn level() -> Level {
    match std::env::var("DELTASEAL_LEVEL").as_deref() {
        Ok("fast") => Level::Fast,
        Ok("max") => Level::Max,
        _ => Level::Default,
    }
}

#[test]
fn corpus_round_trips() {
    let corpus = Corpus::locate();
    for pair in PAIRS.map(|p| p.name) {
        let Some(PairImages { old, new }) = corpus.load_or_skip(pair) else {
            continue;
        };
        let mut opts = DiffOptions {
            level: level(),
            threads: 2,
            ..DiffOptions::default()
        };
        if let Some(cs) = std::env::var("DELTASEAL_CHUNK_SIZE")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            opts.chunk_size = cs;
        }
        let t = Instant::now();
        let patch = diff(&old, &new, &opts).expect("diff");
        let diff_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let out = apply_to_vec(&old, &patch, &Limits::default()).expect("apply");
        let apply_s = t.elapsed().as_secs_f64();
        assert!(out == new, "{pair}: applied output differs from new.bin");
        let header = PatchHeader::decode(&patch, &Limits::default()).expect("header");
        // The writer recognises the corpus' instruction sets from headers
        // (ELF x86-64, a Cortex-M vector table, the PE drivers in a UEFI
        // volume); moondancer (RISC-V) gets none.
        let expected = match pair {
            "exe-ruff" | "kernel-vmlinux" | "uefi-ovmf" => Transform::X86,
            "mcu-cityhub" => Transform::Thumb2,
            _ => Transform::None,
        };
        assert_eq!(header.transform, expected, "{pair}");
        let mem = header.decoder_memory;
        println!(
            "{pair} {} {} {} {:.2}% diff {diff_s:.2}s apply {apply_s:.3}s mem {:.2}MiB {:?}",
            old.len(),
            new.len(),
            patch.len(),
            100.0 * patch.len() as f64 / new.len().max(1) as f64,
            mem as f64 / (1 << 20) as f64,
            header.transform
        );
    }
}

/// mcu-moondancer at `--level max`: RISC-V code that changed throughout,
/// where the whole image as literals, LZMA2-compressed against the old
/// image as preset dictionary, beats the bsdiff-style streams (15,643 B on
/// 2026-11-26, against 17,487 B for them and 17,061 B for `zstd
/// --patch-from` at level 22).
#[test]
fn moondancer_max_is_the_whole_image_against_the_old_one() {
    let Some(PairImages { old, new }) = Corpus::locate().load_or_skip("mcu-moondancer") else {
        return;
    };
    let opts = DiffOptions {
        threads: 2,
        ..DiffOptions::for_level(Level::Max)
    };
    let patch = diff(&old, &new, &opts).expect("diff");
    assert_eq!(apply_to_vec(&old, &patch, &Limits::default()).unwrap(), new);
    let header = PatchHeader::decode(&patch, &Limits::default()).unwrap();
    assert_eq!(header.codec, Level::Max.codec());
    if header.codec == deltaseal_diff::Codec::Xz {
        let body = &patch[header.encoded_len()..];
        let bh = deltaseal_verify::patch::ChunkBodyHeader::decode(body).unwrap();
        // One triple (0, 54560, 0): five control bytes.
        assert_eq!(
            (bh.ctrl_len, bh.diff_len, bh.ref_len),
            (5, 0, old.len() as u32)
        );
        assert!(patch.len() < 16_000, "{}", patch.len());
    }
}
