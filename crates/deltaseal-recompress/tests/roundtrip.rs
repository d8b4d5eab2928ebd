//! Recompressing patches end to end: synthetic images holding `.lzma`
//! streams, hostile edits of the patch, and uefi-ovmf from the corpus.

use deltaseal_diff::{DiffOptions, Level};
use deltaseal_recompress::{HEADER_LEN, RecompressError, RecompressHeader, apply, diff};
use deltaseal_testkit::{Corpus, PairImages, Rng};
use deltaseal_verify::patch::{ApplyOptions, PatchError};

/// Text-like bytes that compress (`len` of them, seeded).
fn text(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng(seed);
    let words: [&[u8]; 5] = [
        b"DxeCore ",
        b"PciBus ",
        b"\0\0\0\0",
        b"\xff\xff",
        b"Smbios ",
    ];
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(words[rng.below(words.len())]);
        out.push(rng.below(256) as u8);
    }
    out.truncate(len);
    out
}

/// A `.lzma` stream as EDK2's LzmaCompress writes it (13-byte header,
/// level-5 settings with a 16 MiB dictionary).
fn lzma_alone(raw: &[u8]) -> Vec<u8> {
    let props = lzma_sdk_rs::LzmaProps::for_level(5, u32::MAX);
    let mut out = lzma_sdk_rs::decoder_props(&props).to_vec();
    out.extend_from_slice(&(raw.len() as u64).to_le_bytes());
    out.extend(lzma_sdk_rs::encode(raw, &props));
    out
}

/// An image: a header, a stream, a gap, a second stream, a trailer.
fn image(header: &[u8], first: &[u8], second: &[u8]) -> Vec<u8> {
    let mut out = header.to_vec();
    out.extend(lzma_alone(first));
    out.extend_from_slice(&[0xff; 333]);
    out.extend(lzma_alone(second));
    out.extend_from_slice(b"trailer");
    out
}

/// An old and a new image whose streams differ by a few bytes each.
fn pair() -> (Vec<u8>, Vec<u8>) {
    let first = text(1, 200_000);
    let second = text(2, 60_000);
    let old = image(&text(3, 5000), &first, &second);
    let (mut first_new, mut second_new) = (first.clone(), second.clone());
    first_new[1234..1240].copy_from_slice(b"v2.0.1");
    first_new.splice(150_000..150_000, *b"inserted");
    second_new[50_000] ^= 0x55;
    let mut header = text(3, 5000);
    header[10] = 0xaa;
    let new = image(&header, &first_new, &second_new);
    (old, new)
}

fn options() -> DiffOptions {
    DiffOptions {
        threads: 2,
        ..DiffOptions::default()
    }
}

fn apply_vec(old: &[u8], patch: &[u8]) -> Result<Vec<u8>, RecompressError> {
    let mut out = Vec::new();
    apply(
        old,
        patch,
        &mut out,
        &Default::default(),
        ApplyOptions::threads(2),
    )?;
    Ok(out)
}

#[test]
fn images_with_streams_round_trip_through_small_patches() {
    let (old, new) = pair();
    let patch = diff(&old, &new, &options())
        .unwrap()
        .expect("streams found");
    let header = RecompressHeader::decode(&patch, &Default::default()).unwrap();
    assert_eq!(header.old_regions.len(), 2);
    assert_eq!(header.new_regions.len(), 2);
    assert_eq!(apply_vec(&old, &patch).unwrap(), new);
    // The byte-wise patch pays for every compressed byte after the first change.
    let plain = deltaseal_diff::diff(&old, &new, &options()).unwrap();
    assert!(
        patch.len() * 10 < plain.len(),
        "{} vs {}",
        patch.len(),
        plain.len()
    );
}

#[test]
fn a_stream_only_the_new_image_has_round_trips() {
    let old = text(9, 100_000);
    let mut new = old[..50_000].to_vec();
    new.extend(lzma_alone(&text(10, 80_000)));
    let patch = diff(&old, &new, &options()).unwrap().expect("a stream");
    let header = RecompressHeader::decode(&patch, &Default::default()).unwrap();
    assert!(header.old_regions.is_empty());
    assert_eq!(apply_vec(&old, &patch).unwrap(), new);
}

#[test]
fn a_stream_that_grows_when_compressed_round_trips() {
    // Random bytes: the LZMA data are longer than what they decompress to,
    // so the expanded image is shorter than the image.
    let raw = Rng(4).bytes(50_000);
    let old = [b"head".to_vec(), lzma_alone(&raw), b"tail".repeat(100)].concat();
    let mut raw_new = raw.clone();
    raw_new[100] ^= 1;
    let new = [
        b"head".to_vec(),
        lzma_alone(&raw_new),
        b"tail".repeat(100),
        lzma_alone(&text(5, 9000)),
    ]
    .concat();
    let patch = diff(&old, &new, &options()).unwrap().expect("streams");
    let header = RecompressHeader::decode(&patch, &Default::default()).unwrap();
    assert!(header.new_regions[0].raw_len < header.new_regions[0].stored_len);
    assert_eq!(apply_vec(&old, &patch).unwrap(), new);
}

#[test]
fn images_without_reproducible_streams_get_none() {
    let (old, mut new) = pair();
    assert!(diff(&old, &old[..1000], &options()).unwrap().is_none());
    // Flip a bit in each stream's last byte: it still decodes (or not), but
    // no encoder setting gives those bytes.
    let header = RecompressHeader::decode(
        &diff(&old, &new, &options()).unwrap().unwrap(),
        &Default::default(),
    )
    .unwrap();
    for region in &header.new_regions {
        let last = (region.offset + region.stored_len - 1) as usize;
        new[last] ^= 0x80;
    }
    if let Some(patch) = diff(&old, &new, &options()).unwrap() {
        let header = RecompressHeader::decode(&patch, &Default::default()).unwrap();
        assert!(header.new_regions.is_empty(), "{header:?}");
    }
}

#[test]
fn wrong_old_images_and_edited_patches_are_refused() {
    let (old, new) = pair();
    let patch = diff(&old, &new, &options()).unwrap().unwrap();
    let header = RecompressHeader::decode(&patch, &Default::default()).unwrap();

    let mut wrong_old = old.clone();
    wrong_old[7] ^= 1;
    assert!(matches!(
        apply_vec(&wrong_old, &patch),
        Err(RecompressError::OldImageMismatch)
    ));
    assert!(matches!(
        apply_vec(&old[1..], &patch),
        Err(RecompressError::OldImageMismatch)
    ));

    let edit = |at: usize, bytes: &[u8]| {
        let mut p = patch.clone();
        p[at..at + bytes.len()].copy_from_slice(bytes);
        apply_vec(&old, &p)
    };
    // The declared new digest (offset 68): everything applies, the check at
    // the end refuses it.
    assert!(matches!(
        edit(68, &[0; 32]),
        Err(RecompressError::NewImageMismatch)
    ));
    // Other encoder settings (the first new region's lc, at 25 in the
    // entry): the stream comes out different.
    let first_new = HEADER_LEN + 40 * header.old_regions.len();
    assert!(matches!(
        edit(first_new + 25, &[0]),
        Err(RecompressError::Reencode { index: 0, .. } | RecompressError::NewImageMismatch)
    ));
    // A region's declared stored length one longer: the expanded sizes no
    // longer fit the inner patch.
    let stored = header.new_regions[0].stored_len + 1;
    assert!(matches!(
        edit(first_new + 8, &stored.to_le_bytes()),
        Err(RecompressError::InnerMismatch)
    ));
    // The old region's raw length one less: the inner patch does not fit.
    let old_raw = header.old_regions[0].raw_len - 1;
    assert!(matches!(
        edit(HEADER_LEN + 16, &old_raw.to_le_bytes()),
        Err(RecompressError::InnerMismatch)
    ));
    // A flipped bit in the inner patch's last chunk body.
    let last = patch.len() - 1;
    assert!(matches!(
        edit(last, &[patch[last] ^ 1]),
        Err(RecompressError::Patch(
            PatchError::ChunkDigestMismatch { .. }
        ))
    ));
    // Cut short inside the inner patch.
    assert!(matches!(
        apply_vec(&old, &patch[..patch.len() - 1]),
        Err(RecompressError::Patch(_))
    ));
}

#[test]
fn bundles_bind_the_recompressing_index_and_both_images() {
    use deltaseal_recompress::{apply_update, index_digest};
    use deltaseal_sign::{ImageRef, ReleaseInput, build_bundle, ids, keys};
    use deltaseal_verify::bundle::{Bundle, Policy};
    use deltaseal_verify::digest::sha256;

    let (old, new) = pair();
    let patch = diff(&old, &new, &options()).unwrap().unwrap();
    let key = keys::generate().unwrap();
    let vendor = ids::vendor_id("example.com");
    let image = |bytes: &[u8]| ImageRef {
        size: bytes.len() as u64,
        digest: sha256(bytes),
    };
    let good = ReleaseInput {
        sequence: 2,
        vendor_id: vendor,
        class_id: ids::class_id(&vendor, "uefi"),
        precursor: image(&old),
        target: image(&new),
        patch: &patch,
        patch_index_digest: index_digest(&patch, &Default::default()).unwrap(),
    };
    let run = |input: &ReleaseInput<'_>| {
        let bytes = build_bundle(input, core::slice::from_ref(&key)).unwrap();
        let approved = Bundle::decode(&bytes)
            .unwrap()
            .authenticate(&[key.verifying_key()])
            .unwrap()
            .approve(&Policy::default())
            .unwrap();
        let mut out = Vec::new();
        apply_update(
            &approved,
            &old,
            &mut out,
            &Default::default(),
            ApplyOptions::threads(2),
        )
        .map(|_| out)
    };
    assert_eq!(run(&good).unwrap(), new);
    // The index digest, the precursor or the target differing from the
    // patch: refused before anything is decoded or written.
    let mismatches = [
        ReleaseInput {
            patch_index_digest: [0; 32],
            ..good
        },
        ReleaseInput {
            precursor: image(&new),
            ..good
        },
        ReleaseInput {
            target: image(&old),
            ..good
        },
    ];
    for input in &mismatches {
        assert!(matches!(
            run(input),
            Err(RecompressError::PatchManifestMismatch)
        ));
    }
    // The index digest covers the region tables and the inner chunk table
    // (here: a byte of the new region's dictionary size, and of the first
    // inner chunk's stored digest).
    let header = RecompressHeader::decode(&patch, &Default::default()).unwrap();
    let index = index_digest(&patch, &Default::default()).unwrap();
    let new_region = HEADER_LEN + 40 * header.old_regions.len();
    for at in [new_region + 30, header.encoded_len() + 112 + 8] {
        let mut edited = patch.clone();
        edited[at] ^= 1;
        let edited_index = index_digest(&edited, &Default::default()).unwrap();
        assert_ne!(edited_index, index, "byte {at}");
    }
}

/// uefi-ovmf: the image is almost all one LZMA stream (EDK2's LzmaCompress),
/// which the encoder reproduces; the recompressing patch is a small fraction
/// of the byte-wise one.
#[test]
fn uefi_ovmf_round_trips_through_its_decompressed_volume() {
    let Some(PairImages { old, new }) = Corpus::locate().load_or_skip("uefi-ovmf") else {
        return;
    };
    let options = DiffOptions {
        threads: 2,
        ..DiffOptions::for_level(Level::Max)
    };
    let patch = diff(&old, &new, &options)
        .unwrap()
        .expect("ovmf's LZMA stream reproduced");
    assert_eq!(apply_vec(&old, &patch).unwrap(), new);
    println!(
        "uefi-ovmf recompressing patch: {} bytes ({:.3}% of {})",
        patch.len(),
        patch.len() as f64 * 100.0 / new.len() as f64,
        new.len()
    );
    // 3,894 bytes on 2026-11-26 (x86 prediction of the drivers inside).
    assert!(patch.len() < 8_000, "{}", patch.len());
}
