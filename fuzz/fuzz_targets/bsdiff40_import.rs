//! The BSDIFF40 importer on hostile patches.
//!
//! Random bytes are almost never valid bzip2, so besides feeding the input
//! as a whole patch, this target also builds a well-formed BSDIFF40 file
//! whose three streams are the fuzzer's bytes, bzip2-compressed: the control
//! interpreter (negative and huge lengths, seeks, overruns) then runs on
//! hostile triples. Every input must end in Ok or a typed error, with output
//! never past the declared size, within a small size limit.
#![no_main]

use std::io::Write;

use bzip2::Compression;
use bzip2::write::BzEncoder;
use deltaseal_diff::bsdiff40::{ImportLimits, apply};
use libfuzzer_sys::fuzz_target;

fn bz(raw: &[u8]) -> Vec<u8> {
    let mut e = BzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(raw).expect("in-memory write");
    e.finish().expect("in-memory write")
}

fn offt(x: i64) -> [u8; 8] {
    let mut b = x.unsigned_abs().to_le_bytes();
    if x < 0 {
        b[7] |= 0x80;
    }
    b
}

fn run(old: &[u8], patch: &[u8]) {
    let limits = ImportLimits {
        max_new_size: 1 << 20,
        max_old_size: 1 << 20,
    };
    let mut out = Vec::new();
    match apply(&mut &old[..], patch, &mut out, &limits) {
        Ok(s) => assert_eq!(s.new_size, out.len() as u64),
        Err(_) => assert!(out.len() <= 1 << 20),
    }
}

fuzz_target!(|data: &[u8]| {
    // [mode][old len][ctrl len][diff len][new size: u16 LE][old][ctrl][diff][extra]
    let [mode, old_len, ctrl_len, diff_len, n0, n1, rest @ ..] = data else {
        return;
    };
    if mode & 1 == 0 {
        let split = usize::from(*old_len).min(rest.len());
        let (old, patch) = rest.split_at(split);
        return run(old, patch);
    }
    let mut parts = rest;
    let mut take = |n: u8| {
        let (a, b) = parts.split_at(usize::from(n).min(parts.len()));
        parts = b;
        a
    };
    let old = take(*old_len);
    let ctrl = take(*ctrl_len);
    let diff = take(*diff_len);
    let extra = parts;
    let (c, d, e) = (bz(ctrl), bz(diff), bz(extra));
    let mut patch = b"BSDIFF40".to_vec();
    patch.extend_from_slice(&offt(c.len() as i64));
    patch.extend_from_slice(&offt(d.len() as i64));
    patch.extend_from_slice(&offt(i64::from(u16::from_le_bytes([*n0, *n1]))));
    patch.extend_from_slice(&c);
    patch.extend_from_slice(&d);
    patch.extend_from_slice(&e);
    run(old, &patch);
});
