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

/// Frame header of a single-segment frame of `len` (< 256) bytes.
fn header(len: u8) -> Vec<u8> {
    vec![0x28, 0xb5, 0x2f, 0xfd, 0x20, len]
}

fn block(last: bool, kind: u8, size: u32) -> [u8; 3] {
    let v = u32::from(last) | u32::from(kind) << 1 | size << 3;
    [v as u8, (v >> 8) as u8, (v >> 16) as u8]
}

#[test]
fn well_formed_small_frames_are_modelled() {
    // one RLE block
    let mut f = header(64);
    f.extend(block(true, 1, 64));
    f.push(b'A');
    assert!(frame_memory(&f, 64, 1024).is_some());
    // two raw blocks and a checksum flag with its 4 bytes
    let mut f = vec![0x28, 0xb5, 0x2f, 0xfd, 0x24, 8];
    f.extend(block(false, 0, 4));
    f.extend(b"abcd");
    f.extend(block(true, 0, 4));
    f.extend(b"efgh");
    f.extend([0; 4]);
    assert!(frame_memory(&f, 8, 1024).is_some());
}

#[test]
fn malformed_or_oversized_frames_are_refused() {
    let good = {
        let mut f = header(64);
        f.extend(block(true, 1, 64));
        f.push(b'A');
        f
    };
    assert!(frame_memory(&good, 64, 1024).is_some());
    let refused = |f: &[u8], len: u64, window: u64, why: &str| {
        assert_eq!(frame_memory(f, len, window), None, "{why}");
    };
    let mut f = good.clone();
    f[0] = 0x29;
    refused(&f, 64, 1024, "bad magic");
    let mut f = good.clone();
    f[4] |= 0x08;
    refused(&f, 64, 1024, "reserved descriptor bit");
    refused(
        &good,
        65,
        1024,
        "content size differs from the stream length",
    );
    refused(&good, 64, 32, "window over the limit");
    refused(&good[..good.len() - 1], 64, 1024, "truncated");
    let mut f = good.clone();
    f.push(0);
    refused(&f, 64, 1024, "trailing byte");
    for n in 0..good.len() {
        assert_eq!(
            frame_memory(&good[..n], 64, 1024),
            None,
            "prefix of {n} bytes"
        );
    }
    // dictionary id 7 (1-byte field) before the content size
    let f = [0x28, 0xb5, 0x2f, 0xfd, 0x21, 7, 64, 0x03, 0x02, 0x00, b'A'];
    refused(&f, 64, 1024, "dictionary");
    // a dictionary field of zero is no dictionary
    let f = [0x28, 0xb5, 0x2f, 0xfd, 0x21, 0, 64, 0x03, 0x02, 0x00, b'A'];
    assert!(frame_memory(&f, 64, 1024).is_some());
    // reserved block type
    let mut f = header(64);
    f.extend(block(true, 3, 64));
    f.push(0);
    refused(&f, 64, 1024, "reserved block type");
    // no last block
    let mut f = header(64);
    f.extend(block(false, 1, 64));
    f.push(b'A');
    refused(&f, 64, 1024, "frame without a last block");
    // a block larger than the frame's window (64 here)
    let mut f = header(64);
    f.extend(block(true, 1, 65));
    f.push(b'A');
    refused(&f, 64, 1024, "block over Block_Maximum_Size");
}

/// A compressed block whose content is `content` in a 200-byte frame.
fn compressed(content: &[u8]) -> Vec<u8> {
    let mut f = header(200);
    f.extend(block(true, 2, content.len() as u32));
    f.extend_from_slice(content);
    f
}

#[test]
fn literal_and_sequence_counts_are_checked_before_decoding() {
    // RLE literals, 20-bit size format: regenerated 2^20 - 1 bytes from one byte.
    let huge_rle = compressed(&[0x01 | 0x0c | 0xf0, 0xff, 0xff, b'A', 0]);
    assert_eq!(frame_memory(&huge_rle, 200, 1024), None);
    // the same shape within the block: 200 literal bytes, no sequences
    let fine_rle = compressed(&[0x01 | 0x04 | (200 & 0xf) << 4, (200 >> 4) as u8, b'A', 0]);
    assert!(frame_memory(&fine_rle, 200, 1024).is_some());
    // 0x7f00 + 0xffff sequences announced in a 200-byte block
    let many_seqs = compressed(&[0x01, b'A', 0xff, 0xff, 0xff, 0x00]);
    assert_eq!(frame_memory(&many_seqs, 200, 1024), None);
    // 67 sequences need at least 201 bytes: one too many for 200
    let seqs_67 = compressed(&[0x01, b'A', 67, 0x00]);
    assert_eq!(frame_memory(&seqs_67, 200, 1024), None);
    // the long count form: 0x7f00 + 0 sequences, far over a 200-byte block,
    // and the two-byte form: (0x80 - 128) << 8 | 66 = 66 sequences fit
    let long_form = compressed(&[0x01, b'A', 0xff, 0x00, 0x00, 0x00]);
    assert_eq!(frame_memory(&long_form, 200, 1024), None);
    let seqs_66 = compressed(&[0x01, b'A', 0x80, 66, 0x00]);
    assert!(frame_memory(&seqs_66, 200, 1024).is_some());
    // compressed literals whose regenerated size (18-bit form) is over the block
    let big_huf = compressed(&[0x02 | 0x0c | 0xf0, 0xff, 0x03, 0, 0, 0]);
    assert_eq!(frame_memory(&big_huf, 200, 1024), None);
    // literals section longer than the block content
    let short = compressed(&[20 << 3, 1, 2, 3]); // raw literals, 20 bytes
    assert_eq!(frame_memory(&short, 200, 1024), None);
}

#[test]
fn vec_growth_and_ring_models() {
    let mut v = VecGrowth::new(1, 8);
    v.need(3).unwrap();
    assert_eq!((v.cap, v.peak), (8, 8));
    v.need(8).unwrap();
    assert_eq!((v.cap, v.peak), (8, 8));
    v.need(9).unwrap();
    assert_eq!((v.cap, v.peak), (16, 24));
    v.need(100).unwrap();
    assert_eq!((v.cap, v.peak), (100, 116));
    // 8 bytes reserved on an empty buffer: 8 + 1; holding 9 needs 10 slots.
    let mut r = Ring::reserved(8).unwrap();
    assert_eq!((r.cap, r.peak), (9, 9));
    r.hold(8).unwrap();
    assert_eq!((r.cap, r.peak), (9, 9));
    r.hold(9).unwrap();
    assert_eq!((r.cap, r.peak), (17, 26));
    // past 256 KiB: 2^k + 256 KiB + 1
    let mut big = Ring::reserved(300_000).unwrap();
    assert_eq!(big.cap, 65_536 + 262_144 + 1);
    big.hold(400_000).unwrap();
    assert!(big.cap > 400_000 && big.cap < 2 * 400_000 + 2);
    assert!(big.hold(u64::MAX).is_none());
}

/// Packs bits least significant first, as FSE table descriptions are read.
fn pack_bits(bits: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; bits.len().div_ceil(8)];
    for (i, &b) in bits.iter().enumerate() {
        out[i / 8] |= b << (i % 8);
    }
    out
}

#[test]
fn fse_descriptions_are_walked_as_the_decoder_reads_them() {
    // Accuracy log 5 (4 bits of 0), then one symbol with all 32 of the
    // probability: 6 bits of 1 read as 63 - 30 = 33, probability 32.
    let one_symbol = pack_bits(&[0, 0, 0, 0, 1, 1, 1, 1, 1, 1]);
    assert_eq!(one_symbol, [0xf0, 0x03]);
    assert_eq!(fse_description(&one_symbol, 9, 36), Some(2));
    assert_eq!(
        fse_description(&one_symbol, 9, 0),
        None,
        "over the symbol count"
    );
    assert_eq!(fse_description(&one_symbol[..1], 9, 36), None, "truncated");
    assert_eq!(fse_description(&[0x0f], 9, 36), None, "accuracy log 20");
    assert_eq!(
        fse_description(&[0x05], 9, 36),
        None,
        "accuracy log 10 over 9"
    );

    // Probability 0 (value 1 in 5 bits), then runs of three more zero
    // symbols: the decoder would grow its vectors without end; refused as
    // soon as the count passes the alphabet.
    let mut bits = vec![0, 0, 0, 0, 1, 0, 0, 0, 0];
    for _ in 0..40 {
        bits.extend([1, 1]);
    }
    assert_eq!(fse_description(&pack_bits(&bits), 9, 36), None);
    assert_eq!(
        fse_description(&pack_bits(&bits), 9, 1000),
        None,
        "then runs out of bits"
    );
}
