//! Recompressing patches (`deltaseal-recompress`) on hostile input.
//!
//! Mode 0 (first byte even): the rest is a recompressing patch after its
//! magic, against a fixed old image that holds one LZMA stream. Its old
//! size and digest are overwritten with that image's, so the region tables,
//! the decoding of fuzzer-chosen old regions and the inner patch's header
//! are reached. The fuzzer cannot forge the new image's SHA-256: apply must
//! end in an error, never a panic.
//!
//! Mode 1 (first byte odd): the fuzzer picks LZMA parameters, where the
//! stream sits and what it holds; the target builds the new image with that
//! stream and a valid patch to it (inner chunks of 1 KiB, so the region
//! arrives split across writes). Apply must give back exactly the new image:
//! the sink's region bookkeeping at any position, and the encoder on any
//! parameters the header accepts.
#![no_main]

use std::sync::OnceLock;

use deltaseal_diff::{DiffOptions, Level, Transform, diff};
use deltaseal_recompress::{LzmaParams, MAGIC, RecompressHeader, Region, apply, lzma_encode as encode};
use deltaseal_verify::digest::sha256;
use deltaseal_verify::patch::ApplyOptions;
use libfuzzer_sys::fuzz_target;

struct Old {
    image: Vec<u8>,
    expanded: Vec<u8>,
    region: Region,
}

/// "head", a 13-byte `.lzma` header, the stream, "tail".
fn old() -> &'static Old {
    static OLD: OnceLock<Old> = OnceLock::new();
    OLD.get_or_init(|| {
        let raw = b"DxeCore PciBus Smbios \x00\x01\x02".repeat(200);
        let params = LzmaParams { lc: 3, lp: 0, pb: 2, dict_size: 1 << 16, fb: 0, mc: 0 };
        let stored = encode(&raw, &LzmaParams { fb: 32, mc: 32, ..params });
        let mut image = b"head".to_vec();
        image.push(params.props_byte());
        image.extend(params.dict_size.to_le_bytes());
        image.extend((raw.len() as u64).to_le_bytes());
        let offset = image.len() as u64;
        image.extend(&stored);
        image.extend(b"tail");
        let expanded = [&b"head"[..], &image[4..17], &raw, b"tail"].concat();
        let region = Region { offset, stored_len: stored.len() as u64, raw_len: raw.len() as u64, params };
        Old { image, expanded, region }
    })
}

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else { return };
    let old = old();
    let limits = deltaseal_recompress::Limits { max_dict_size: 1 << 20, ..Default::default() };
    if mode % 2 == 0 {
        let mut patch = MAGIC.to_vec();
        patch.extend_from_slice(rest);
        if patch.len() >= 60 {
            patch[20..28].copy_from_slice(&(old.image.len() as u64).to_le_bytes());
            patch[28..60].copy_from_slice(&sha256(&old.image));
        }
        let mut out = Vec::new();
        let result = apply(&old.image, &patch, &mut out, &limits, ApplyOptions::threads(1));
        assert!(result.is_err(), "applied a patch whose new digest was not forged: {result:?}");
        return;
    }
    // [lc lp pb][fb][mc][dict shift][prefix len][prefix...][raw...]
    let [lc, lp, pb, fb, mc, dict, prefix_len, rest @ ..] = rest else { return };
    let params = LzmaParams {
        lc: lc % 9,
        lp: lp % 5,
        pb: pb % 5,
        dict_size: 1 << (12 + dict % 5),
        fb: 5 + u16::from(*fb) % 269,
        mc: 1 + u32::from(*mc),
    };
    let (prefix, raw) = rest.split_at(usize::from(*prefix_len).min(rest.len()));
    if raw.is_empty() {
        return;
    }
    let stored = encode(raw, &params);
    let new = [prefix, &stored, b"tail"].concat();
    let expanded_new = [prefix, raw, b"tail"].concat();
    let options = DiffOptions {
        level: Level::Fast,
        threads: 1,
        chunk_size: 1024,
        extra_reference: 0,
        transform: Some(Transform::None),
    };
    let inner = diff(&old.expanded, &expanded_new, &options).expect("diff of in-memory images");
    let header = RecompressHeader {
        old_size: old.image.len() as u64,
        old_digest: sha256(&old.image),
        new_size: new.len() as u64,
        new_digest: sha256(&new),
        old_regions: vec![old.region],
        new_regions: vec![Region {
            offset: prefix.len() as u64,
            stored_len: stored.len() as u64,
            raw_len: raw.len() as u64,
            params,
        }],
    };
    let mut patch = header.encode();
    patch.extend(inner);
    let mut out = Vec::new();
    apply(&old.image, &patch, &mut out, &limits, ApplyOptions::threads(1)).expect("a valid patch applies");
    assert_eq!(out, new, "round trip changed the image");
});
