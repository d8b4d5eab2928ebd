//! BSDIFF40 (bsdiff 4.3) export and import, for interop with `bspatch`.
//!
//! A BSDIFF40 patch is a 32-byte header (`"BSDIFF40"`, the compressed
//! control length, the compressed diff length and the new size, each an
//! 8-byte sign-magnitude little-endian integer) followed by three bzip2
//! streams: control triples `(add, extra, seek)` of the same 8-byte
//! integers, the diff bytes and the extra bytes. `bspatch` reads `add` old
//! bytes plus diff bytes, then `extra` literal bytes, then moves the old
//! cursor by `seek`, until the declared new size is written.
//!
//! **BSDIFF40 carries no digests.** Neither the old image nor the result is
//! checked by the format; [`apply`] returns the SHA-256 of what it wrote so
//! the caller can compare it with a digest it trusts. Never apply a
//! BSDIFF40 patch on a device: use the signed deltaseal format.
//!
//! [`export`] reuses the deltaseal matcher (suffix array + bsdiff's scan per
//! new-image chunk, in parallel) and stitches the chunks' triples into one
//! control stream. [`apply`] is hostile-input code (the bsdiff family's
//! readers overflowed, CVE-2014-9862): it streams in bounded memory
//! (three bzip2 decoders and 64 KiB buffers, whatever the sizes) and rejects
//!
//! - negative header lengths or a new size over [`ImportLimits`],
//! - stream lengths that overflow or run past the end of the patch,
//! - negative `add` or `extra` values,
//! - output past the declared new size,
//! - old reads or seeks outside the old image (bsdiff 4.3 writes neither;
//!   `bspatch` silently reads zeros there),
//! - more triples than the new size allows, and streams that end early or
//!   carry data past what the control stream used.
//!
//! ```
//! use deltaseal_diff::{DiffOptions, bsdiff40};
//! use deltaseal_verify::digest::sha256;
//!
//! let old = b"hello old world, hello old world".to_vec();
//! let new = b"hello new world, hello new world!".to_vec();
//! let patch = bsdiff40::export(&old, &new, &DiffOptions::default())?;
//! assert!(bsdiff40::is_bsdiff40(&patch));
//!
//! let mut out = Vec::new();
//! let summary = bsdiff40::apply(&mut old.as_slice(), &patch, &mut out,
//!                               &bsdiff40::ImportLimits::default())?;
//! assert_eq!(out, new);
//! assert_eq!(summary.new_digest, sha256(&new)); // compare with a trusted digest
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{Read, Write};

use bzip2::Compression;
use bzip2::bufread::BzDecoder;
use bzip2::write::BzEncoder;
use deltaseal_verify::digest::Sha256;
use deltaseal_verify::patch::{ImageIoError, ImageSink, OldImage};
use sha2::Digest as _;

use crate::encode::map_chunks;
use crate::matcher::{BSDIFF_MARGIN, Op, Searches, match_chunk};
use crate::sa::SuffixArray;
use crate::{DiffError, DiffOptions};

/// The 8 magic bytes every BSDIFF40 patch starts with.
pub const MAGIC: [u8; 8] = *b"BSDIFF40";

/// Length of the BSDIFF40 header.
pub const HEADER_LEN: usize = 32;

/// Bytes of one control triple.
const TRIPLE_LEN: usize = 24;

/// Bytes processed per step by [`apply`] (bounds its buffers).
const PIECE: usize = 64 * 1024;

/// True if `patch` starts with the BSDIFF40 magic.
///
/// ```
/// assert!(deltaseal_diff::bsdiff40::is_bsdiff40(b"BSDIFF40 and more"));
/// assert!(!deltaseal_diff::bsdiff40::is_bsdiff40(b"DSLPATCH"));
/// ```
pub fn is_bsdiff40(patch: &[u8]) -> bool {
    patch.starts_with(&MAGIC)
}

/// bsdiff's `offtout`: sign-magnitude, little-endian.
fn offtout(x: i64) -> [u8; 8] {
    let mut b = x.unsigned_abs().to_le_bytes();
    if x < 0 {
        b[7] |= 0x80;
    }
    b
}

/// bsdiff's `offtin` (negative zero reads as zero).
fn offtin(b: [u8; 8]) -> i64 {
    let negative = b[7] & 0x80 != 0;
    let magnitude = (u64::from_le_bytes(b) & !(1 << 63)) as i64;
    if negative { -magnitude } else { magnitude }
}

/// Build a BSDIFF40 patch turning `old` into `new`, as bsdiff 4.3 does
/// (bzip2 level 9), so that `bspatch` applies it. Matching runs over
/// `opts.chunk_size` pieces of `new` on `opts.threads` threads; the output
/// does not depend on the thread count. `opts.level` is not used.
///
/// ```
/// use deltaseal_diff::{DiffOptions, bsdiff40};
/// let patch = bsdiff40::export(b"abcdef", b"abcxef", &DiffOptions::default())?;
/// assert_eq!(&patch[..8], b"BSDIFF40");
/// # Ok::<(), deltaseal_diff::DiffError>(())
/// ```
pub fn export(old: &[u8], new: &[u8], opts: &DiffOptions) -> Result<Vec<u8>, DiffError> {
    if opts.chunk_size == 0 {
        return Err(DiffError::ZeroChunkSize);
    }
    let cs = opts.chunk_size as usize;
    let count = new.len().div_ceil(cs);
    let sa = if count == 0 {
        SuffixArray::empty()
    } else {
        SuffixArray::build(old, opts.threads)?
    };
    let results = map_chunks(count, opts.threads, |i, _: &mut ()| {
        let start = i * cs;
        let end = (start + cs).min(new.len());
        let once = &mut Searches::once();
        Ok(match_chunk(old, new, &sa, start, end, BSDIFF_MARGIN, once))
    })?;

    // Stitch: bspatch starts with the old cursor at 0; before each chunk,
    // the previous triple's seek moves it to that chunk's old offset.
    let mut ops: Vec<Op> = Vec::new();
    let mut pos: i64 = 0;
    for m in results {
        let delta = m.old_offset as i64 - pos;
        if delta != 0 {
            match ops.last_mut() {
                Some(last) => last.seek += delta,
                None => ops.push(Op {
                    add: 0,
                    extra: 0,
                    seek: delta,
                }),
            }
        }
        pos = m.old_offset as i64;
        for op in &m.ops {
            pos += op.add as i64 + op.seek;
        }
        ops.extend(m.ops);
    }

    let mut ctrl = Vec::with_capacity(ops.len() * TRIPLE_LEN);
    let mut diff = Vec::new();
    let mut extra = Vec::new();
    let (mut p, mut o) = (0usize, 0usize);
    for op in &ops {
        ctrl.extend_from_slice(&offtout(op.add as i64));
        ctrl.extend_from_slice(&offtout(op.extra as i64));
        ctrl.extend_from_slice(&offtout(op.seek));
        diff.extend(
            new[o..o + op.add]
                .iter()
                .zip(&old[p..p + op.add])
                .map(|(n, o)| n.wrapping_sub(*o)),
        );
        o += op.add;
        extra.extend_from_slice(&new[o..o + op.extra]);
        o += op.extra;
        p = (p as i64 + op.add as i64 + op.seek) as usize;
    }
    debug_assert_eq!(o, new.len());

    // The three streams compress independently: do it in parallel.
    let (ctrl, diff, extra) = std::thread::scope(|s| {
        let c = s.spawn(|| bzip2_compress(&ctrl));
        let d = s.spawn(|| bzip2_compress(&diff));
        let e = bzip2_compress(&extra);
        let join = |h: std::thread::ScopedJoinHandle<'_, Result<Vec<u8>, DiffError>>| {
            h.join().map_err(|_| DiffError::Worker)?
        };
        Ok::<_, DiffError>((join(c)?, join(d)?, e?))
    })?;
    let mut patch = Vec::with_capacity(HEADER_LEN + ctrl.len() + diff.len() + extra.len());
    patch.extend_from_slice(&MAGIC);
    patch.extend_from_slice(&offtout(ctrl.len() as i64));
    patch.extend_from_slice(&offtout(diff.len() as i64));
    patch.extend_from_slice(&offtout(new.len() as i64));
    patch.extend_from_slice(&ctrl);
    patch.extend_from_slice(&diff);
    patch.extend_from_slice(&extra);
    Ok(patch)
}

fn bzip2_compress(raw: &[u8]) -> Result<Vec<u8>, DiffError> {
    let mut enc = BzEncoder::new(Vec::with_capacity(raw.len() / 4 + 64), Compression::best());
    enc.write_all(raw).map_err(DiffError::Compress)?;
    enc.finish().map_err(DiffError::Compress)
}

/// Limits [`apply`] enforces before writing anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportLimits {
    /// Largest accepted declared new size (default 2^40 bytes, as
    /// `deltaseal_verify::patch::Limits`). Work is proportional to it.
    pub max_new_size: u64,
    /// Largest accepted old image (default 2^40 bytes).
    pub max_old_size: u64,
}

impl Default for ImportLimits {
    fn default() -> Self {
        ImportLimits {
            max_new_size: 1 << 40,
            max_old_size: 1 << 40,
        }
    }
}

/// One of the three bzip2 streams of a BSDIFF40 patch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Control triples.
    Control,
    /// Bytes added to old bytes.
    Diff,
    /// Literal bytes.
    Extra,
}

impl core::fmt::Display for Stream {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Stream::Control => "control",
            Stream::Diff => "diff",
            Stream::Extra => "extra",
        })
    }
}

/// Why a BSDIFF40 patch was rejected. `triple` counts control triples from 0.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// The patch does not start with [`MAGIC`].
    #[error("not a BSDIFF40 patch (bad magic)")]
    BadMagic,
    /// The patch is shorter than its header, or than the stream lengths it declares.
    #[error("BSDIFF40 patch is truncated")]
    Truncated,
    /// A header length (control, diff, or new size) is negative.
    #[error("BSDIFF40 header has a negative length")]
    NegativeLength,
    /// The declared new size is over [`ImportLimits::max_new_size`].
    #[error("declared new size {declared} over the limit {limit}")]
    NewSizeOverLimit {
        /// Declared new size.
        declared: u64,
        /// Configured limit.
        limit: u64,
    },
    /// The old image is larger than [`ImportLimits::max_old_size`].
    #[error("old image over the size limit")]
    OldSizeOverLimit,
    /// A stream is not valid bzip2.
    #[error("{stream} stream failed to decompress")]
    Decompress {
        /// Which stream.
        stream: Stream,
    },
    /// A stream ended before the control stream was done with it.
    #[error("{stream} stream ends early")]
    StreamEnded {
        /// Which stream.
        stream: Stream,
    },
    /// A stream holds data the control stream never used.
    #[error("{stream} stream has unused data")]
    TrailingData {
        /// Which stream.
        stream: Stream,
    },
    /// A triple has a negative `add` or `extra` length.
    #[error("control triple {triple} has a negative length")]
    NegativeControl {
        /// Triple index.
        triple: u64,
    },
    /// A triple would write past the declared new size.
    #[error("control triple {triple} writes past the declared new size")]
    OutputOverrun {
        /// Triple index.
        triple: u64,
    },
    /// A triple would read outside the old image.
    #[error("control triple {triple} reads outside the old image")]
    OldReadOutOfBounds {
        /// Triple index.
        triple: u64,
    },
    /// A triple's seek would leave the old image.
    #[error("control triple {triple} seeks outside the old image")]
    SeekOutOfBounds {
        /// Triple index.
        triple: u64,
    },
    /// More control triples than the new size allows (one per output byte, plus one).
    #[error("too many control triples")]
    TooManyTriples,
    /// Reading the old image or writing the new one failed.
    #[error("image i/o failed")]
    Io(#[source] ImageIoError),
}

impl From<ImageIoError> for ImportError {
    fn from(e: ImageIoError) -> Self {
        ImportError::Io(e)
    }
}

/// The decoded 32-byte BSDIFF40 header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Length of the compressed control stream.
    pub ctrl_len: u64,
    /// Length of the compressed diff stream.
    pub diff_len: u64,
    /// Declared size of the new image.
    pub new_size: u64,
}

impl Header {
    /// Decode and check the header of `patch`: magic, non-negative lengths,
    /// streams inside the patch, new size within `limits`.
    ///
    /// ```
    /// use deltaseal_diff::{DiffOptions, bsdiff40};
    /// let patch = bsdiff40::export(b"abc", b"abcd", &DiffOptions::default())?;
    /// let h = bsdiff40::Header::decode(&patch, &bsdiff40::ImportLimits::default())?;
    /// assert_eq!(h.new_size, 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn decode(patch: &[u8], limits: &ImportLimits) -> Result<Header, ImportError> {
        let field = |i: usize| -> Result<u64, ImportError> {
            let end = i.checked_add(8).ok_or(ImportError::Truncated)?;
            let b: [u8; 8] = patch
                .get(i..end)
                .and_then(|s| s.try_into().ok())
                .ok_or(ImportError::Truncated)?;
            u64::try_from(offtin(b)).map_err(|_| ImportError::NegativeLength)
        };
        if patch.len() < HEADER_LEN {
            let n = patch.len().min(MAGIC.len());
            return if patch.get(..n) == MAGIC.get(..n) {
                Err(ImportError::Truncated)
            } else {
                Err(ImportError::BadMagic)
            };
        }
        if !is_bsdiff40(patch) {
            return Err(ImportError::BadMagic);
        }
        let h = Header {
            ctrl_len: field(8)?,
            diff_len: field(16)?,
            new_size: field(24)?,
        };
        if h.new_size > limits.max_new_size {
            return Err(ImportError::NewSizeOverLimit {
                declared: h.new_size,
                limit: limits.max_new_size,
            });
        }
        let streams_end = (HEADER_LEN as u64)
            .checked_add(h.ctrl_len)
            .and_then(|x| x.checked_add(h.diff_len))
            .ok_or(ImportError::Truncated)?;
        if streams_end > patch.len() as u64 {
            return Err(ImportError::Truncated);
        }
        Ok(h)
    }
}

/// What a successful [`apply`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportSummary {
    /// Bytes written (= declared new size).
    pub new_size: u64,
    /// SHA-256 of the bytes written. BSDIFF40 carries no digest: compare
    /// this with one you trust before using the output.
    pub new_digest: [u8; 32],
    /// Control triples executed.
    pub triples: u64,
}

/// A bzip2 stream over a slice of the patch, with typed errors.
struct StreamReader<'a> {
    dec: BzDecoder<&'a [u8]>,
    which: Stream,
}

impl<'a> StreamReader<'a> {
    fn new(src: &'a [u8], which: Stream) -> Self {
        StreamReader {
            dec: BzDecoder::new(src),
            which,
        }
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<(), ImportError> {
        self.dec.read_exact(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                ImportError::StreamEnded { stream: self.which }
            } else {
                ImportError::Decompress { stream: self.which }
            }
        })
    }

    /// The stream must be at its end, with no compressed bytes after it.
    fn finish(mut self) -> Result<(), ImportError> {
        let mut probe = [0u8; 1];
        match self.dec.read(&mut probe) {
            Ok(0) => {}
            Ok(_) => return Err(ImportError::TrailingData { stream: self.which }),
            Err(_) => return Err(ImportError::Decompress { stream: self.which }),
        }
        if self.dec.get_ref().is_empty() {
            Ok(())
        } else {
            Err(ImportError::TrailingData { stream: self.which })
        }
    }
}

/// Apply a BSDIFF40 `patch` to `old`, writing the new image to `sink` in
/// pieces of at most 64 KiB as it is produced. Memory stays bounded (three
/// bzip2 decoders, about 3.6 MiB each for 900k blocks, plus 128 KiB)
/// whatever the image sizes; time is proportional to the declared new size.
///
/// On error, part of the output may already be in `sink`: discard it.
/// Success means only that the patch was well formed: compare
/// [`ImportSummary::new_digest`] with a trusted digest.
///
/// ```
/// use deltaseal_diff::bsdiff40::{apply, ImportError, ImportLimits};
/// let mut out = Vec::new();
/// let r = apply(&mut &b"old"[..], b"DSLPATCH", &mut out, &ImportLimits::default());
/// assert_eq!(r, Err(ImportError::BadMagic));
/// ```
pub fn apply<O: OldImage + ?Sized, S: ImageSink + ?Sized>(
    old: &mut O,
    patch: &[u8],
    sink: &mut S,
    limits: &ImportLimits,
) -> Result<ImportSummary, ImportError> {
    let h = Header::decode(patch, limits)?;
    let old_size = old.len();
    if old_size > limits.max_old_size {
        return Err(ImportError::OldSizeOverLimit);
    }
    // Header::decode checked HEADER_LEN + ctrl_len + diff_len <= patch.len().
    let ctrl_end = HEADER_LEN
        .checked_add(usize::try_from(h.ctrl_len).map_err(|_| ImportError::Truncated)?)
        .ok_or(ImportError::Truncated)?;
    let diff_end = ctrl_end
        .checked_add(usize::try_from(h.diff_len).map_err(|_| ImportError::Truncated)?)
        .ok_or(ImportError::Truncated)?;
    let slice = |a: usize, b: usize| patch.get(a..b).ok_or(ImportError::Truncated);
    let mut ctrl = StreamReader::new(slice(HEADER_LEN, ctrl_end)?, Stream::Control);
    let mut diff = StreamReader::new(slice(ctrl_end, diff_end)?, Stream::Diff);
    let mut extra = StreamReader::new(slice(diff_end, patch.len())?, Stream::Extra);

    let max_triples = h.new_size.saturating_add(1);
    let mut obuf = vec![0u8; PIECE];
    let mut dbuf = vec![0u8; PIECE];
    let mut hash = Sha256::new();
    let mut newpos: u64 = 0;
    let mut oldpos: u64 = 0;
    let mut triple: u64 = 0;
    while newpos < h.new_size {
        if triple >= max_triples {
            return Err(ImportError::TooManyTriples);
        }
        let mut t = [0u8; TRIPLE_LEN];
        ctrl.fill(&mut t)?;
        let field = |i: usize| {
            let mut b = [0u8; 8];
            for (d, s) in b.iter_mut().zip(t.iter().skip(i.saturating_mul(8))) {
                *d = *s;
            }
            offtin(b)
        };
        let (add, ext, seek) = (field(0), field(1), field(2));
        let add = u64::try_from(add).map_err(|_| ImportError::NegativeControl { triple })?;
        let ext = u64::try_from(ext).map_err(|_| ImportError::NegativeControl { triple })?;

        // add: old[oldpos..oldpos + add] + diff
        let overrun = ImportError::OutputOverrun { triple };
        let add_end = newpos.checked_add(add).ok_or(overrun)?;
        if add_end > h.new_size {
            return Err(overrun);
        }
        let old_end = oldpos
            .checked_add(add)
            .ok_or(ImportError::OldReadOutOfBounds { triple })?;
        if old_end > old_size {
            return Err(ImportError::OldReadOutOfBounds { triple });
        }
        let mut left = add;
        while left > 0 {
            let n = piece(left);
            let (o, d) = (&mut obuf[..n], &mut dbuf[..n]);
            diff.fill(d)?;
            old.read_at(oldpos, o)?;
            for (x, y) in o.iter_mut().zip(d.iter()) {
                *x = x.wrapping_add(*y);
            }
            hash.update(&*o);
            sink.write(o)?;
            oldpos += n as u64; // <= old_end, checked above
            left -= n as u64;
        }
        newpos = add_end;

        // extra: literal bytes
        let ext_end = newpos.checked_add(ext).ok_or(overrun)?;
        if ext_end > h.new_size {
            return Err(overrun);
        }
        let mut left = ext;
        while left > 0 {
            let n = piece(left);
            let e = &mut obuf[..n];
            extra.fill(e)?;
            hash.update(&*e);
            sink.write(e)?;
            left -= n as u64;
        }
        newpos = ext_end;

        // seek: the cursor stays within [0, old_size]
        oldpos = oldpos
            .checked_add_signed(seek)
            .filter(|&p| p <= old_size)
            .ok_or(ImportError::SeekOutOfBounds { triple })?;
        triple += 1;
    }
    ctrl.finish()?;
    diff.finish()?;
    extra.finish()?;
    Ok(ImportSummary {
        new_size: newpos,
        new_digest: hash.finalize().into(),
        triples: triple,
    })
}

/// min(left, PIECE) as usize.
fn piece(left: u64) -> usize {
    usize::try_from(left).map_or(PIECE, |l| l.min(PIECE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offt_round_trips() {
        for x in [0i64, 1, -1, 255, -256, i64::MAX, -i64::MAX, 1 << 40] {
            assert_eq!(offtin(offtout(x)), x);
        }
        // Negative zero reads as zero.
        let mut nz = [0u8; 8];
        nz[7] = 0x80;
        assert_eq!(offtin(nz), 0);
    }
}
