//! Decompress, diff, recompress: patches for images that hold LZMA streams.
//!
//! A firmware image that carries a compressed stream (a UEFI firmware
//! volume's LZMA section, say) defeats every delta tool: a small change
//! to what was compressed changes every compressed byte after it. uefi-ovmf's
//! 3.6 MB image holds one 1.5 MB LZMA stream, and every byte-wise patch of
//! the pair (ours, bsdiff's, HDiffPatch's, zstd's) is 41% of the new image.
//! The two decompressed streams differ by a 5 KB patch.
//!
//! [`diff`] finds the `.lzma` streams of both images and keeps the new
//! image's streams it can *reproduce*: encoding the decompressed bytes again
//! with the LZMA SDK's encoder (what EDK2 and 7-Zip run) gives the very same
//! bytes. It then diffs the images with those streams decompressed and wraps
//! that patch in a *recompressing patch*: a header naming the old and new
//! images (sizes, SHA-256) and the streams, then the inner deltaseal patch
//! (docs/format.md, "Recompressing patch"). Streams it cannot reproduce stay
//! compressed and are diffed byte-wise, as before; an image without any
//! gives `None`.
//!
//! [`apply`] decompresses the old image's streams, applies the inner patch
//! (its chunk digests checked as always), compresses the new image's streams
//! again as the output goes by, and checks the new image's size and SHA-256.
//! An encoder that drifted would give other bytes and fail that check: a
//! wrong image is never accepted.
//!
//! This is host-side work: the applier holds both images, the decompressed
//! streams and an LZMA encoder (about 10 bytes per dictionary byte: 170 MB
//! for EDK2's 16 MiB dictionary). Devices apply ordinary patches.
//!
//! ```
//! use deltaseal_recompress::{apply, diff};
//! use deltaseal_diff::DiffOptions;
//! use deltaseal_verify::patch::ApplyOptions;
//!
//! // Images without LZMA streams get no recompressing patch.
//! let old = b"plain old image".repeat(100);
//! let new = b"plain new image".repeat(100);
//! assert!(diff(&old, &new, &DiffOptions::default())?.is_none());
//! # Ok::<(), deltaseal_recompress::RecompressError>(())
//! ```

mod format;
mod lzma;

use deltaseal_diff::{DiffError, DiffOptions};
use deltaseal_verify::bundle::{Approved, PolicyError};
use deltaseal_verify::patch::{
    self, ApplyOptions, ImageIoError, ImageSink, PatchError, PatchHeader, SliceImage,
};
use sha2::{Digest as _, Sha256};

pub use lzma::encode as lzma_encode;

pub use format::{
    HEADER_LEN, Limits, LzmaParams, MAGIC, REGION_LEN, RecompressHeader, Region, VERSION,
    is_recompressing,
};

/// Why a recompressing patch could not be built, read or applied.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum RecompressError {
    /// The patch does not start with [`MAGIC`].
    #[error("not a recompressing patch (bad magic)")]
    BadMagic,
    /// The format version is not [`VERSION`].
    #[error("unsupported recompressing patch version {found} (this reader reads {VERSION})")]
    UnsupportedVersion {
        /// Version found in the header.
        found: u16,
    },
    /// A reserved field is not zero.
    #[error("reserved field is not zero")]
    ReservedNotZero,
    /// The patch ends inside its header or region tables.
    #[error("recompressing patch is truncated")]
    Truncated,
    /// More regions than [`Limits::max_regions`].
    #[error("too many compressed regions")]
    TooManyRegions,
    /// A region's codec id is unknown.
    #[error("unknown region codec id {id}")]
    UnknownCodec {
        /// Codec id found.
        id: u8,
    },
    /// A region's LZMA parameters are out of range or over the limits.
    #[error("LZMA parameters out of range")]
    BadParams,
    /// A region is empty, or decompresses to more than the limits allow.
    #[error("region length zero or over the limit")]
    TooLarge,
    /// Regions overlap, are out of order, or reach past their image.
    #[error("region outside its image or overlapping another")]
    RegionOutOfBounds,
    /// The inner patch's old or new size is not the expanded images' size.
    #[error("the inner patch does not fit the expanded images")]
    InnerMismatch,
    /// The old image has the wrong size or digest.
    #[error("old image does not match the patch (size or digest)")]
    OldImageMismatch,
    /// An old-image region did not decompress to its declared length.
    #[error("old image region {index} does not decompress as declared")]
    OldRegion {
        /// Region index.
        index: usize,
    },
    /// Compressing a new-image region again gave a different length than
    /// the stream had: the encoder is not the one the patch was made with.
    #[error("new image region {index} compressed to {got} bytes, not {expected}")]
    Reencode {
        /// Region index.
        index: usize,
        /// Bytes the encoder wrote.
        got: u64,
        /// Bytes the region holds.
        expected: u64,
    },
    /// The new image came out with the wrong size or digest.
    #[error("new image does not match the patch (size or digest)")]
    NewImageMismatch,
    /// The inner patch was refused.
    #[error(transparent)]
    Patch(#[from] PatchError),
    /// The inner patch could not be built.
    #[error(transparent)]
    Diff(#[from] DiffError),
    /// The sink refused a write.
    #[error("write failed")]
    Write,
    /// A bundle's integrated payload is missing or differs from its signed
    /// manifest ([`apply_update`]).
    #[error("payload rejected")]
    Payload(#[source] PolicyError),
    /// The patch disagrees with the signed manifest on a size or digest
    /// ([`apply_update`]).
    #[error("the patch does not match the signed manifest")]
    PatchManifestMismatch,
}

/// Build a recompressing patch from `old` to `new`, or `None` if `new`
/// holds no LZMA stream the encoder reproduces. The inner patch is
/// `deltaseal_diff::diff` of the expanded images with `options`; callers
/// keep whichever of this and the ordinary patch is smaller.
///
/// Reproducing a stream costs one or two encodes (about 2.5 s for 13.5 MB
/// decompressed).
pub fn diff(
    old: &[u8],
    new: &[u8],
    options: &DiffOptions,
) -> Result<Option<Vec<u8>>, RecompressError> {
    let limits = Limits::default();
    // Only reproducible streams count towards the limits, and trial
    // encodes stop once they are reached.
    let reproducible = lzma::find_streams(new, &limits).filter_map(|mut found| {
        let start = usize::try_from(found.region.offset).ok()?;
        let stored = new
            .get(start..)?
            .get(..usize::try_from(found.region.stored_len).ok()?)?;
        found.region.params = lzma::encoder_candidates(&found.region.params)
            .into_iter()
            .find(|params| lzma::encode(&found.raw, params) == stored)?;
        Some(found)
    });
    let new_streams = within_limits(reproducible, &limits);
    if new_streams.is_empty() {
        return Ok(None);
    }
    let old_streams = within_limits(lzma::find_streams(old, &limits), &limits);
    let expanded_old = expand(old, &old_streams);
    let expanded_new = expand(new, &new_streams);
    let inner = deltaseal_diff::diff(&expanded_old, &expanded_new, options)?;
    let header = RecompressHeader {
        old_size: old.len() as u64,
        old_digest: Sha256::digest(old).into(),
        new_size: new.len() as u64,
        new_digest: Sha256::digest(new).into(),
        old_regions: old_streams.iter().map(|s| s.region).collect(),
        new_regions: new_streams.iter().map(|s| s.region).collect(),
    };
    let mut out = header.encode();
    out.extend_from_slice(&inner);
    Ok(Some(out))
}

/// The ordinary patch (`deltaseal_diff::diff`), or the recompressing one
/// where [`diff`] makes one and it is smaller: what `deltaseal diff` and
/// `deltaseal release` write at `--level max`.
///
/// ```
/// use deltaseal_diff::DiffOptions;
/// let old = b"an image without LZMA streams".repeat(50);
/// let new = b"an image without LZMA streams!".repeat(50);
/// let patch = deltaseal_recompress::smallest(&old, &new, &DiffOptions::default())?;
/// assert!(!deltaseal_recompress::is_recompressing(&patch));
/// # Ok::<(), deltaseal_recompress::RecompressError>(())
/// ```
pub fn smallest(old: &[u8], new: &[u8], options: &DiffOptions) -> Result<Vec<u8>, RecompressError> {
    let plain = deltaseal_diff::diff(old, new, options)?;
    Ok(match diff(old, new, options)? {
        Some(recompressing) if recompressing.len() < plain.len() => recompressing,
        _ => plain,
    })
}

/// The digest a signed manifest carries for a recompressing patch (its
/// `patch.index_digest`): SHA-256 of the header, the region tables and the
/// inner patch's header and chunk table, which hold every chunk body's
/// digest. For a deltaseal patch, `deltaseal_verify::patch::index_digest`.
pub fn index_digest(patch: &[u8], limits: &Limits) -> Result<[u8; 32], RecompressError> {
    let header = RecompressHeader::decode(patch, limits)?;
    let outer = header.encoded_len();
    let inner = patch.get(outer..).ok_or(RecompressError::Truncated)?;
    let inner_index = PatchHeader::decode(inner, &patch::Limits::default())?.encoded_len();
    let end = outer
        .checked_add(inner_index)
        .ok_or(RecompressError::Truncated)?;
    let index = patch.get(..end).ok_or(RecompressError::Truncated)?;
    Ok(Sha256::digest(index).into())
}

/// Apply the recompressing patch of an approved bundle (host side, like
/// [`apply`]): the payload's size and digest against the signed manifest
/// first, then the patch's index digest, old and new sizes and digests
/// against the manifest, then [`apply`]. What `deltaseal verify` runs for
/// a bundle whose payload [`is_recompressing`]; devices refuse such
/// payloads (`deltaseal_verify::patch::PatchError::Recompressing`).
pub fn apply_update<S: ImageSink + Send + ?Sized>(
    approved: &Approved<'_>,
    old: &[u8],
    sink: &mut S,
    limits: &Limits,
    options: ApplyOptions,
) -> Result<Applied, RecompressError> {
    let manifest = approved.manifest();
    let payload = approved
        .checked_payload()
        .map_err(RecompressError::Payload)?;
    let header = RecompressHeader::decode(payload, limits)?;
    if !manifest.names_patch(
        &index_digest(payload, limits)?,
        &header.precursor(),
        &header.target(),
    ) {
        return Err(RecompressError::PatchManifestMismatch);
    }
    apply(old, payload, sink, limits, options)
}

/// The first streams that fit in `limits` (count and decompressed total);
/// `streams` is not advanced past the first one that does not fit.
fn within_limits(streams: impl Iterator<Item = lzma::Found>, limits: &Limits) -> Vec<lzma::Found> {
    let mut raw_total = 0u64;
    streams
        .take(limits.max_regions as usize)
        .take_while(|s| {
            raw_total = raw_total.saturating_add(s.region.raw_len);
            raw_total <= limits.max_raw_len
        })
        .collect()
}

/// `image` with each stream's bytes replaced by what they decompress to.
fn expand(image: &[u8], streams: &[lzma::Found]) -> Vec<u8> {
    let mut out = Vec::with_capacity(image.len());
    let mut at = 0;
    for stream in streams {
        // find_streams only returns streams inside the image, in order.
        let start = stream.region.offset as usize;
        out.extend_from_slice(&image[at..start]);
        out.extend_from_slice(&stream.raw);
        at = start + stream.region.stored_len as usize;
    }
    out.extend_from_slice(&image[at..]);
    out
}

/// What a successful [`apply`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Applied {
    /// Bytes written to the sink (the new image's size).
    pub new_size: u64,
    /// Chunks of the inner patch applied.
    pub chunks: u32,
    /// Streams compressed again.
    pub regions: usize,
}

/// Apply the recompressing patch `patch` to `old`, writing the new image to
/// `sink`, within `limits`. Checks the old image's size and digest first; the inner patch's
/// chunks are checked as [`patch::apply_parallel`] checks them; the new
/// image's size and digest are checked last, so a sink must be thrown away
/// unless this returns `Ok` (as `deltaseal apply`'s temporary file is).
///
/// ```
/// # fn demo(old: &[u8], patch: &[u8]) -> Result<(), deltaseal_recompress::RecompressError> {
/// use deltaseal_recompress::Limits;
/// use deltaseal_verify::patch::ApplyOptions;
/// let mut new = Vec::new();
/// deltaseal_recompress::apply(old, patch, &mut new, &Limits::default(), ApplyOptions::threads(2))?;
/// # Ok(()) }
/// ```
pub fn apply<S: ImageSink + Send + ?Sized>(
    old: &[u8],
    patch: &[u8],
    sink: &mut S,
    limits: &Limits,
    options: ApplyOptions,
) -> Result<Applied, RecompressError> {
    let header = RecompressHeader::decode(patch, limits)?;
    if old.len() as u64 != header.old_size
        || <[u8; 32]>::from(Sha256::digest(old)) != header.old_digest
    {
        return Err(RecompressError::OldImageMismatch);
    }
    let inner = patch
        .get(header.encoded_len()..)
        .ok_or(RecompressError::Truncated)?;
    let inner_header = PatchHeader::decode(inner, &patch::Limits::default())?;
    if inner_header.old_size != header.expanded_old_size()?
        || inner_header.new_size != header.expanded_new_size()?
    {
        return Err(RecompressError::InnerMismatch);
    }
    let expanded_old = expand_old(old, &header.old_regions)?;
    let mut recompress = RecompressSink::new(sink, &header.new_regions);
    let applied = patch::apply_parallel_from(
        SliceImage(&expanded_old),
        &inner_header,
        inner,
        &mut recompress,
        options,
    );
    if let Some(err) = recompress.failure.take() {
        return Err(err);
    }
    let applied = applied?;
    let digest: [u8; 32] = recompress.digest.finalize_reset().into();
    if recompress.written != header.new_size
        || recompress.next < header.new_regions.len()
        || digest != header.new_digest
    {
        return Err(RecompressError::NewImageMismatch);
    }
    Ok(Applied {
        new_size: header.new_size,
        chunks: applied.chunks,
        regions: header.new_regions.len(),
    })
}

/// The old image with its regions decompressed (the inner patch's old image).
fn expand_old(old: &[u8], regions: &[Region]) -> Result<Vec<u8>, RecompressError> {
    let mut out = Vec::new();
    let mut at = 0usize;
    for (index, region) in regions.iter().enumerate() {
        let bad = || RecompressError::OldRegion { index };
        let start = usize::try_from(region.offset).map_err(|_| bad())?;
        let len = usize::try_from(region.stored_len).map_err(|_| bad())?;
        // decode() checked the regions are in order and inside the image.
        let gap = old.get(at..start).ok_or_else(bad)?;
        let data = old
            .get(start..)
            .and_then(|d| d.get(..len))
            .ok_or_else(bad)?;
        out.extend_from_slice(gap);
        out.extend_from_slice(&lzma::decode_region(region, data).ok_or_else(bad)?);
        at = start.checked_add(len).ok_or_else(bad)?;
    }
    out.extend_from_slice(old.get(at..).unwrap_or_default());
    Ok(out)
}

/// Passes the inner patch's output (the expanded new image) to `out`,
/// compressing each region again once all its bytes have come by, and
/// hashes what it writes.
struct RecompressSink<'a, S: ?Sized> {
    out: &'a mut S,
    regions: &'a [Region],
    /// The next region to fill.
    next: usize,
    /// Where that region starts in the expanded image.
    next_start: u64,
    /// Expanded-image bytes seen so far.
    position: u64,
    /// The next region's decompressed bytes so far.
    raw: Vec<u8>,
    digest: Sha256,
    written: u64,
    /// Why a write failed, for [`apply`] to report instead of the inner
    /// apply's generic write error.
    failure: Option<RecompressError>,
}

impl<'a, S: ImageSink + ?Sized> RecompressSink<'a, S> {
    fn new(out: &'a mut S, regions: &'a [Region]) -> Self {
        RecompressSink {
            out,
            regions,
            next: 0,
            next_start: regions.first().map_or(u64::MAX, |r| r.offset),
            position: 0,
            raw: Vec::new(),
            digest: Sha256::new(),
            written: 0,
            failure: None,
        }
    }

    fn emit(&mut self, bytes: &[u8]) -> Result<(), RecompressError> {
        self.out.write(bytes).map_err(|_| RecompressError::Write)?;
        self.digest.update(bytes);
        self.written = self.written.saturating_add(bytes.len() as u64);
        Ok(())
    }

    fn take(&mut self, mut buf: &[u8]) -> Result<(), RecompressError> {
        while !buf.is_empty() {
            let Some(region) = self.regions.get(self.next) else {
                self.position = self.position.saturating_add(buf.len() as u64);
                return self.emit(buf);
            };
            if self.position < self.next_start {
                let before = usize::try_from(self.next_start - self.position)
                    .map_or(buf.len(), |n| n.min(buf.len()));
                let (plain, rest) = buf.split_at(before);
                self.emit(plain)?;
                self.position += before as u64;
                buf = rest;
                continue;
            }
            let missing = usize::try_from(region.raw_len - self.raw.len() as u64)
                .map_or(buf.len(), |n| n.min(buf.len()));
            let (raw, rest) = buf.split_at(missing);
            self.raw.extend_from_slice(raw);
            self.position += missing as u64;
            buf = rest;
            if self.raw.len() as u64 == region.raw_len {
                self.finish_region(region)?;
            }
        }
        Ok(())
    }

    fn finish_region(&mut self, region: &Region) -> Result<(), RecompressError> {
        let stored = lzma::encode(&self.raw, &region.params);
        if stored.len() as u64 != region.stored_len {
            return Err(RecompressError::Reencode {
                index: self.next,
                got: stored.len() as u64,
                expected: region.stored_len,
            });
        }
        self.emit(&stored)?;
        self.raw = Vec::new();
        // The next region's expanded start: its offset moved by what the
        // regions so far grew (or shrank) by. `written` is this region's
        // end, at most the next offset (decode() checked the order).
        self.next += 1;
        self.next_start = self.regions.get(self.next).map_or(u64::MAX, |r| {
            r.offset
                .saturating_add(self.position)
                .saturating_sub(self.written)
        });
        Ok(())
    }
}

impl<S: ImageSink + ?Sized> ImageSink for RecompressSink<'_, S> {
    fn write(&mut self, buf: &[u8]) -> Result<(), ImageIoError> {
        if self.failure.is_some() {
            return Err(ImageIoError::Write);
        }
        self.take(buf).map_err(|err| {
            self.failure = Some(err);
            ImageIoError::Write
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;

    fn stream(offset: u64, raw_len: u64) -> lzma::Found {
        lzma::Found {
            region: Region {
                offset,
                stored_len: 1,
                raw_len,
                params: lzma::tests::PARAMS,
            },
            raw: Vec::new(),
        }
    }

    #[test]
    fn within_limits_stops_at_the_first_stream_that_does_not_fit() {
        let pulled = Cell::new(0);
        let counted = |n: u64, raw_len: u64| {
            (0..n)
                .map(move |i| stream(i, raw_len))
                .inspect(|_| pulled.set(pulled.get() + 1))
        };
        let limits = Limits {
            max_regions: 3,
            ..Limits::default()
        };
        let kept = within_limits(counted(10, 1), &limits);
        assert_eq!(kept.len(), 3);
        // Trial encodes and decodes happen as streams are pulled: no more
        // than the limit.
        assert_eq!(pulled.get(), 3);

        pulled.set(0);
        let limits = Limits {
            max_raw_len: 250,
            ..Limits::default()
        };
        let kept = within_limits(counted(10, 100), &limits);
        assert_eq!(kept.len(), 2);
        assert_eq!(pulled.get(), 3);
    }
}
