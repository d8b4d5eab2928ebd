//! BSDIFF40 export and import: round trips, an in-process oracle (the
//! `bsdiff` crate, an independent implementation of bsdiff's algorithm whose
//! raw interleaved format maps 1:1 onto BSDIFF40's three streams), Debian's
//! `bsdiff`/`bspatch` both ways (skip-or-require via
//! `DELTASEAL_REQUIRE_INTEROP`), the MCU corpus pairs, and one negative test
//! per import rule (CVE-2014-9862 class: negative and huge control values,
//! old reads and seeks outside old, output past the declared size).

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

use bzip2::Compression;
use bzip2::write::BzEncoder;
use deltaseal_diff::DiffOptions;
use deltaseal_diff::bsdiff40::{self, ImportError, ImportLimits, Stream};
use deltaseal_testkit::{Corpus, PairImages, mcu_pairs};
use deltaseal_verify::digest::sha256;
use deltaseal_verify::patch::{ImageIoError, ImageSink};

fn opts() -> DiffOptions {
    DiffOptions {
        threads: 2,
        chunk_size: 4096,
        ..DiffOptions::default()
    }
}

fn import(old: &[u8], patch: &[u8]) -> Result<Vec<u8>, ImportError> {
    let mut out = Vec::new();
    let s = bsdiff40::apply(&mut &old[..], patch, &mut out, &ImportLimits::default())?;
    assert_eq!(s.new_size, out.len() as u64);
    assert_eq!(s.new_digest, sha256(&out));
    Ok(out)
}

/// Deterministic pseudo-random bytes (xorshift).
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A firmware-like pair: shared blocks, a moved block, an insertion, edits.
fn pair(seed: u64, n: usize) -> (Vec<u8>, Vec<u8>) {
    let old = noise(seed, n);
    let mut new = Vec::with_capacity(n + 600);
    new.extend_from_slice(&old[n / 2..]);
    new.extend_from_slice(&noise(seed + 1, 500));
    new.extend_from_slice(&old[..n / 2]);
    for i in (0..new.len()).step_by(997) {
        new[i] = new[i].wrapping_add(3);
    }
    (old, new)
}

fn bz(raw: &[u8]) -> Vec<u8> {
    let mut e = BzEncoder::new(Vec::new(), Compression::best());
    e.write_all(raw).unwrap();
    e.finish().unwrap()
}

fn offt(x: i64) -> [u8; 8] {
    let mut b = x.unsigned_abs().to_le_bytes();
    if x < 0 {
        b[7] |= 0x80;
    }
    b
}

/// A BSDIFF40 patch from raw parts, each stream bzip2-compressed.
fn craft(triples: &[(i64, i64, i64)], diff: &[u8], extra: &[u8], new_size: i64) -> Vec<u8> {
    let mut ctrl = Vec::new();
    for &(a, e, s) in triples {
        ctrl.extend_from_slice(&offt(a));
        ctrl.extend_from_slice(&offt(e));
        ctrl.extend_from_slice(&offt(s));
    }
    assemble(&bz(&ctrl), &bz(diff), &bz(extra), new_size)
}

fn assemble(ctrl: &[u8], diff: &[u8], extra: &[u8], new_size: i64) -> Vec<u8> {
    let mut p = b"BSDIFF40".to_vec();
    p.extend_from_slice(&offt(ctrl.len() as i64));
    p.extend_from_slice(&offt(diff.len() as i64));
    p.extend_from_slice(&offt(new_size));
    p.extend_from_slice(ctrl);
    p.extend_from_slice(diff);
    p.extend_from_slice(extra);
    p
}

/// The `bsdiff` crate's raw patch (triple, diff bytes, extra bytes, ...) as BSDIFF40.
fn raw_to_bsdiff40(raw: &[u8], new_size: usize) -> Vec<u8> {
    let (mut ctrl, mut diff, mut extra) = (Vec::new(), Vec::new(), Vec::new());
    let mut r = raw;
    while !r.is_empty() {
        let t = &r[..24];
        let get = |i: usize| {
            let b: [u8; 8] = t[i * 8..i * 8 + 8].try_into().unwrap();
            let v = u64::from_le_bytes(b);
            let m = (v & !(1 << 63)) as i64;
            if v >> 63 == 1 { -m } else { m }
        };
        let (a, e) = (get(0) as usize, get(1) as usize);
        ctrl.extend_from_slice(t);
        diff.extend_from_slice(&r[24..24 + a]);
        extra.extend_from_slice(&r[24 + a..24 + a + e]);
        r = &r[24 + a + e..];
    }
    assemble(&bz(&ctrl), &bz(&diff), &bz(&extra), new_size as i64)
}

/// A BSDIFF40 patch as the `bsdiff` crate's raw format.
fn bsdiff40_to_raw(patch: &[u8]) -> Vec<u8> {
    let len = |i: usize| i64::from_le_bytes(patch[i..i + 8].try_into().unwrap()) as usize;
    let (cl, dl) = (len(8), len(16));
    let unbz = |s: &[u8]| {
        let mut v = Vec::new();
        bzip2::read::BzDecoder::new(s).read_to_end(&mut v).unwrap();
        v
    };
    let ctrl = unbz(&patch[32..32 + cl]);
    let diff = unbz(&patch[32 + cl..32 + cl + dl]);
    let extra = unbz(&patch[32 + cl + dl..]);
    let (mut di, mut ei, mut raw) = (0, 0, Vec::new());
    for t in ctrl.chunks(24) {
        let a = u64::from_le_bytes(t[..8].try_into().unwrap()) as usize;
        let e = u64::from_le_bytes(t[8..16].try_into().unwrap()) as usize;
        raw.extend_from_slice(t);
        raw.extend_from_slice(&diff[di..di + a]);
        raw.extend_from_slice(&extra[ei..ei + e]);
        di += a;
        ei += e;
    }
    raw
}

#[test]
fn export_import_round_trips() {
    let (old, new) = pair(7, 100_000);
    let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (old.clone(), new.clone()),
        (old.clone(), old.clone()),
        (Vec::new(), new.clone()),
        (old.clone(), Vec::new()),
        (Vec::new(), Vec::new()),
        (b"a".to_vec(), b"b".to_vec()),
        (noise(1, 5000), noise(2, 7000)),
    ];
    for (o, n) in &cases {
        let p = bsdiff40::export(o, n, &opts()).unwrap();
        assert!(bsdiff40::is_bsdiff40(&p));
        assert_eq!(
            &import(o, &p).unwrap(),
            n,
            "old {} new {}",
            o.len(),
            n.len()
        );
    }
}

#[test]
fn export_does_not_depend_on_threads() {
    let (old, new) = pair(9, 60_000);
    let one = bsdiff40::export(
        &old,
        &new,
        &DiffOptions {
            threads: 1,
            ..opts()
        },
    )
    .unwrap();
    let four = bsdiff40::export(
        &old,
        &new,
        &DiffOptions {
            threads: 4,
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(one, four);
}

#[test]
fn bsdiff_crate_oracle_both_ways() {
    let (old, new) = pair(11, 80_000);
    // Their writer -> our reader.
    let mut raw = Vec::new();
    bsdiff::diff(&old, &new, &mut raw).unwrap();
    assert_eq!(
        import(&old, &raw_to_bsdiff40(&raw, new.len())).unwrap(),
        new
    );
    // Our writer -> their reader.
    let ours = bsdiff40::export(&old, &new, &opts()).unwrap();
    let mut out = Vec::new();
    bsdiff::patch(&old, &mut bsdiff40_to_raw(&ours).as_slice(), &mut out).unwrap();
    assert_eq!(out, new);
}

// ---- Debian bsdiff / bspatch -------------------------------------------------

fn debian_tools() -> bool {
    // Neither tool has a version flag; both print usage and exit 1 without
    // arguments, so look for the binaries instead.
    let ok = Path::new("/usr/bin/bspatch").exists() && Path::new("/usr/bin/bsdiff").exists();
    if !ok {
        assert!(
            std::env::var_os("DELTASEAL_REQUIRE_INTEROP").is_none(),
            "Debian bsdiff/bspatch are required (DELTASEAL_REQUIRE_INTEROP is set): apt-get install bsdiff"
        );
        eprintln!("SKIP: Debian bsdiff/bspatch not installed; interop not tested");
    }
    ok
}

/// Our export -> `bspatch` (returns our patch size).
fn to_bspatch(dir: &Path, old: &[u8], new: &[u8]) -> usize {
    let (o, p, r) = (dir.join("old"), dir.join("patch"), dir.join("out"));
    std::fs::write(&o, old).unwrap();
    let ours = bsdiff40::export(old, new, &opts()).unwrap();
    std::fs::write(&p, &ours).unwrap();
    let st = Command::new("/usr/bin/bspatch")
        .args([&o, &r, &p])
        .status()
        .unwrap();
    assert!(st.success(), "bspatch refused our patch");
    assert!(std::fs::read(&r).unwrap() == new, "bspatch output differs");
    ours.len()
}

/// Our export -> `bspatch`, and `bsdiff` -> our import; returns (ours, debian) patch sizes.
fn interop(dir: &Path, old: &[u8], new: &[u8]) -> (usize, usize) {
    let (o, n, p, r) = (
        dir.join("old"),
        dir.join("new"),
        dir.join("patch"),
        dir.join("out"),
    );
    std::fs::write(&o, old).unwrap();
    std::fs::write(&n, new).unwrap();

    // Default chunk size (1 MiB), as `deltaseal diff --format bsdiff40`.
    let cli_opts = DiffOptions {
        threads: 2,
        ..DiffOptions::default()
    };
    let ours = bsdiff40::export(old, new, &cli_opts).unwrap();
    std::fs::write(&p, &ours).unwrap();
    let st = Command::new("/usr/bin/bspatch")
        .args([&o, &r, &p])
        .status()
        .unwrap();
    assert!(st.success(), "bspatch refused our patch");
    assert!(std::fs::read(&r).unwrap() == new, "bspatch output differs");

    let st = Command::new("/usr/bin/bsdiff")
        .args([&o, &n, &p])
        .status()
        .unwrap();
    assert!(st.success(), "bsdiff failed");
    let theirs = std::fs::read(&p).unwrap();
    assert!(
        import(old, &theirs).unwrap() == new,
        "our import of bsdiff's patch differs"
    );
    (ours.len(), theirs.len())
}

#[test]
fn debian_bspatch_applies_our_export_and_we_apply_debian_bsdiff() {
    if !debian_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = pair(13, 200_000);
    interop(dir.path(), &old, &new);
    // Debian bsdiff cannot mmap empty files; bspatch takes our patches for them.
    to_bspatch(dir.path(), &[], &noise(3, 1000));
    to_bspatch(dir.path(), &noise(4, 1000), &[]);
}

/// The MCU pairs through Debian's tools both ways; prints our export size
/// against Debian bsdiff's (`cargo test -- --nocapture`).
/// `DELTASEAL_BSDIFF40_PAIRS` names other pairs (e.g. "uefi-ovmf exe-ruff").
#[test]
fn corpus_pairs_interop_with_debian() {
    if !debian_tools() {
        return;
    }
    let pairs = std::env::var("DELTASEAL_BSDIFF40_PAIRS").unwrap_or_else(|_| {
        let mcu: Vec<_> = mcu_pairs().map(|p| p.name).collect();
        mcu.join(" ")
    });
    let corpus = Corpus::locate();
    let dir = tempfile::tempdir().unwrap();
    for pair in pairs.split_whitespace() {
        let Some(PairImages { old, new }) = corpus.load_or_skip(pair) else {
            continue;
        };
        let (ours, theirs) = interop(dir.path(), &old, &new);
        println!(
            "{pair}: new {} BSDIFF40 ours {ours} ({:.2}%) debian bsdiff {theirs} ({:.2}%) ratio {:.3}",
            new.len(),
            ours as f64 * 100.0 / new.len() as f64,
            theirs as f64 * 100.0 / new.len() as f64,
            ours as f64 / theirs as f64
        );
    }
}

// ---- hostile input: one test per rule -----------------------------------------

const OLD: &[u8] = b"0123456789abcdef";

#[test]
fn handcrafted_patch_applies() {
    // add 4 from 0 (+1 each), extra "XY", seek +6; add 2 from 10 (+0).
    let p = craft(&[(4, 2, 6), (2, 0, 0)], &[1, 1, 1, 1, 0, 0], b"XY", 8);
    assert_eq!(import(OLD, &p).unwrap(), b"1234XYab");
}

#[test]
fn rejects_bad_magic_and_short_headers() {
    assert_eq!(import(OLD, b"BSDIFF41").unwrap_err(), ImportError::BadMagic);
    assert_eq!(import(OLD, b"DSLPATCH").unwrap_err(), ImportError::BadMagic);
    let p = craft(&[(1, 0, 0)], &[0], &[], 1);
    for cut in [0, 7, 8, 20, 31] {
        assert_eq!(import(OLD, &p[..cut]).unwrap_err(), ImportError::Truncated);
    }
}

#[test]
fn rejects_negative_header_lengths() {
    let good = craft(&[(1, 0, 0)], &[0], &[], 1);
    for field in [8, 16, 24] {
        let mut p = good.clone();
        p[field + 7] |= 0x80;
        p[field] = p[field].max(1); // -0 would read as 0
        assert_eq!(import(OLD, &p).unwrap_err(), ImportError::NegativeLength);
    }
}

#[test]
fn rejects_stream_lengths_past_the_patch_and_overflowing() {
    let good = craft(&[(1, 0, 0)], &[0], &[], 1);
    let mut p = good.clone();
    p[8..16].copy_from_slice(&offt(good.len() as i64)); // ctrl runs past the end
    assert_eq!(import(OLD, &p).unwrap_err(), ImportError::Truncated);
    let mut p = good.clone();
    p[8..16].copy_from_slice(&offt(i64::MAX));
    p[16..24].copy_from_slice(&offt(i64::MAX)); // 32 + 2 * (2^63 - 1) overflows u64
    assert_eq!(import(OLD, &p).unwrap_err(), ImportError::Truncated);
    // Truncating the file (the extra stream) is a decode failure or early end.
    let e = import(OLD, &good[..good.len() - 1]).unwrap_err();
    assert!(matches!(
        e,
        ImportError::Decompress { .. } | ImportError::StreamEnded { .. }
    ));
}

#[test]
fn rejects_new_size_over_the_limit_before_any_work() {
    let p = craft(&[], &[], &[], 1 << 62);
    let e = import(OLD, &p).unwrap_err();
    assert_eq!(
        e,
        ImportError::NewSizeOverLimit {
            declared: 1 << 62,
            limit: 1 << 40
        }
    );
    let tight = ImportLimits {
        max_new_size: 7,
        ..ImportLimits::default()
    };
    let p = craft(&[(8, 0, 0)], &[0; 8], &[], 8);
    let e = bsdiff40::apply(&mut &OLD[..], &p, &mut Vec::new(), &tight).unwrap_err();
    assert!(matches!(
        e,
        ImportError::NewSizeOverLimit { declared: 8, .. }
    ));
}

#[test]
fn huge_declared_size_with_tiny_streams_fails_fast_without_allocating() {
    // 2^40 declared (within the default limit) but only 1 triple of 1 byte:
    // memory stays bounded (nothing is sized by the declaration).
    let p = craft(&[(1, 0, 0)], &[0], &[], 1 << 40);
    assert_eq!(
        import(OLD, &p).unwrap_err(),
        ImportError::StreamEnded {
            stream: Stream::Control
        }
    );
}

#[test]
fn rejects_negative_add_and_extra() {
    // CVE-2014-9862: bspatch 4.3 used negative lengths unchecked.
    for t in [(-1, 0, 0), (0, -1, 0), (i64::MIN + 1, 0, 0), (1, -5, 0)] {
        let p = craft(&[t], &[0], b"x", 4);
        assert_eq!(
            import(OLD, &p).unwrap_err(),
            ImportError::NegativeControl { triple: 0 },
            "{t:?}"
        );
    }
}

#[test]
fn rejects_output_past_the_declared_size() {
    let cases = [
        vec![(5, 0, 0)],
        vec![(2, 3, 0)],
        vec![(i64::MAX, 0, 0)],
        vec![(0, i64::MAX, 0)],
        vec![(2, 0, 0), (2, 1, 0)],
    ];
    for (i, ts) in cases.iter().enumerate() {
        let p = craft(ts, &[0; 8], b"xyz", 4);
        let triple = ts.len() as u64 - 1;
        assert_eq!(
            import(OLD, &p).unwrap_err(),
            ImportError::OutputOverrun { triple },
            "case {i}"
        );
    }
}

#[test]
fn rejects_old_reads_outside_old() {
    // 16-byte old; reading 17 from 0, or 4 from 14 after a seek.
    let p = craft(&[(17, 0, 0)], &[0; 17], &[], 20);
    assert_eq!(
        import(OLD, &p).unwrap_err(),
        ImportError::OldReadOutOfBounds { triple: 0 }
    );
    let p = craft(&[(0, 0, 14), (4, 0, 0)], &[0; 4], &[], 4);
    assert_eq!(
        import(OLD, &p).unwrap_err(),
        ImportError::OldReadOutOfBounds { triple: 1 }
    );
    // Any read from an empty old image.
    let p = craft(&[(1, 0, 0)], &[0], &[], 1);
    assert_eq!(
        import(&[], &p).unwrap_err(),
        ImportError::OldReadOutOfBounds { triple: 0 }
    );
}

#[test]
fn rejects_seeks_outside_old() {
    for seek in [-1, 17, i64::MAX, -i64::MAX] {
        let p = craft(&[(0, 1, seek), (0, 1, 0)], &[], b"ab", 2);
        assert_eq!(
            import(OLD, &p).unwrap_err(),
            ImportError::SeekOutOfBounds { triple: 0 },
            "seek {seek}"
        );
    }
    // Seeking to exactly the end is allowed (bsdiff does it); reading there is not.
    let p = craft(&[(0, 1, 16), (0, 1, 0)], &[], b"ab", 2);
    assert_eq!(import(OLD, &p).unwrap(), b"ab");
}

#[test]
fn rejects_streams_that_end_early() {
    let p = craft(&[(2, 0, 0)], &[0; 2], &[], 4);
    assert_eq!(
        import(OLD, &p).unwrap_err(),
        ImportError::StreamEnded {
            stream: Stream::Control
        }
    );
    let p = craft(&[(4, 0, 0)], &[0; 3], &[], 4);
    assert_eq!(
        import(OLD, &p).unwrap_err(),
        ImportError::StreamEnded {
            stream: Stream::Diff
        }
    );
    let p = craft(&[(0, 4, 0)], &[], b"abc", 4);
    assert_eq!(
        import(OLD, &p).unwrap_err(),
        ImportError::StreamEnded {
            stream: Stream::Extra
        }
    );
}

#[test]
fn rejects_unused_stream_data() {
    let p = craft(&[(2, 0, 0), (0, 0, 0)], &[0; 2], &[], 2);
    assert_eq!(
        import(OLD, &p).unwrap_err(),
        ImportError::TrailingData {
            stream: Stream::Control
        }
    );
    let p = craft(&[(2, 0, 0)], &[0; 3], &[], 2);
    assert_eq!(
        import(OLD, &p).unwrap_err(),
        ImportError::TrailingData {
            stream: Stream::Diff
        }
    );
    let p = craft(&[(0, 2, 0)], &[], b"abc", 2);
    assert_eq!(
        import(OLD, &p).unwrap_err(),
        ImportError::TrailingData {
            stream: Stream::Extra
        }
    );
    // Garbage after a complete bzip2 stream.
    let mut p = craft(&[(0, 2, 0)], &[], b"ab", 2);
    p.extend_from_slice(b"junk");
    assert_eq!(
        import(OLD, &p).unwrap_err(),
        ImportError::TrailingData {
            stream: Stream::Extra
        }
    );
}

#[test]
fn rejects_corrupt_bzip2() {
    let ctrl = b"BZh9 this is not bzip2 at all".to_vec();
    let p = assemble(&ctrl, &bz(&[0]), &bz(&[]), 1);
    assert_eq!(
        import(OLD, &p).unwrap_err(),
        ImportError::Decompress {
            stream: Stream::Control
        }
    );
    let p = assemble(&bz(&offt_triple(1, 0, 0)), b"garbage!", &bz(&[]), 1);
    assert_eq!(
        import(OLD, &p).unwrap_err(),
        ImportError::Decompress {
            stream: Stream::Diff
        }
    );
}

fn offt_triple(a: i64, e: i64, s: i64) -> Vec<u8> {
    [offt(a), offt(e), offt(s)].concat()
}

#[test]
fn rejects_endless_empty_triples() {
    // (0,0,0) triples never make progress: at most new_size + 1 triples.
    let p = craft(&[(0, 0, 0); 5], &[], b"a", 1);
    assert_eq!(import(OLD, &p).unwrap_err(), ImportError::TooManyTriples);
    // A control bomb: a million empty triples compress to a few hundred bytes.
    let p = craft(&vec![(0, 0, 0); 1_000_000], &[], b"a", 1);
    assert!(p.len() < 2000);
    assert_eq!(import(OLD, &p).unwrap_err(), ImportError::TooManyTriples);
    // One empty triple first is legitimate (bsdiff writes one when the first match is at 0).
    let p = craft(&[(0, 0, 3), (1, 0, 0)], &[0], &[], 1);
    assert_eq!(import(OLD, &p).unwrap(), b"3");
}

struct FailingSink;
impl ImageSink for FailingSink {
    fn write(&mut self, _: &[u8]) -> Result<(), ImageIoError> {
        Err(ImageIoError::Write)
    }
}

#[test]
fn reports_sink_failures() {
    let p = craft(&[(1, 0, 0)], &[0], &[], 1);
    let e = bsdiff40::apply(
        &mut &OLD[..],
        &p,
        &mut FailingSink,
        &ImportLimits::default(),
    );
    assert_eq!(e.unwrap_err(), ImportError::Io(ImageIoError::Write));
}

#[test]
fn every_truncation_of_a_real_patch_is_rejected() {
    let (old, new) = pair(5, 3000);
    let p = bsdiff40::export(&old, &new, &opts()).unwrap();
    for cut in 0..p.len() {
        assert!(import(&old, &p[..cut]).is_err(), "cut at {cut} accepted");
    }
}

#[test]
fn bit_flips_never_panic() {
    let (old, new) = pair(6, 2000);
    let p = bsdiff40::export(&old, &new, &opts()).unwrap();
    for i in 0..p.len() {
        let mut q = p.clone();
        q[i] ^= 1 << (i % 8);
        // Either rejected, or (a flip in a data byte bzip2's CRC missed) a
        // different output whose digest the caller would catch.
        if let Ok(out) = import(&old, &q) {
            assert_eq!(out.len(), new.len());
        }
    }
}
