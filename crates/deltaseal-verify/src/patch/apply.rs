//! Streaming apply: old image reads, chunk by chunk, sequential sink writes.

use alloc::vec::Vec;

use ruzstd::decoding::{BlockDecodingStrategy, Dictionary, FrameDecoder};
use ruzstd::io::Read as _;
use sha2::Digest as _;

use super::header::{ChunkBodyHeader, body_memory, reference_allowed, zstd_window_limit};
use super::transform::{Predictor, Transform};
use super::{Codec, Limits, PatchError, PatchHeader, try_zeroed};
use crate::digest::{Sha256, sha256};

/// Failure reported by an [`OldImage`] or [`ImageSink`] implementation.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImageIoError {
    /// A read was requested outside the image.
    #[error("read outside the image")]
    OutOfBounds,
    /// The storage failed to read.
    #[error("read failed")]
    Read,
    /// The storage failed to write (or is full).
    #[error("write failed")]
    Write,
}

/// Random-access reads of the old image (flash, file, memory).
pub trait OldImage {
    /// Size of the image in bytes.
    fn len(&self) -> u64;
    /// True if the image is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Fill `buf` with the bytes at `offset..offset + buf.len()`.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), ImageIoError>;
}

/// Sequential writes of the new image.
pub trait ImageSink {
    /// Append `buf` to the output.
    fn write(&mut self, buf: &[u8]) -> Result<(), ImageIoError>;
}

/// The zstd decoder a [`ChunkApplier`] runs. Both decode the same frames to
/// the same bytes, after the same pre-decode walk of every frame
/// (docs/format.md, "Stream encoding"), and every output is checked against
/// its digest whichever decoder made it.
///
/// ```
/// use deltaseal_verify::patch::{ChunkApplier, ZstdDecoder};
/// // What a device runs (and the default):
/// let applier = ChunkApplier::with_decoder(ZstdDecoder::Ruzstd);
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ZstdDecoder {
    /// `ruzstd`: pure Rust, `no_std`, and the decoder whose allocations the
    /// declared `decoder_memory` bounds (see [`chunk_memory`](super::chunk_memory)).
    #[default]
    Ruzstd,
    /// C libzstd (feature `libzstd`), for host appliers: decoding
    /// kernel-vmlinux's patch takes about a seventh of ruzstd's cycles
    /// (perf, 2026-11-26). It decodes straight
    /// into the stream's buffer and takes the extra stream's reference as a
    /// prefix without copying it, so it holds less than ruzstd does, but its
    /// context is C heap that the memory model does not measure.
    #[cfg(feature = "libzstd")]
    Libzstd,
}

fn slice_read_at(data: &[u8], offset: u64, buf: &mut [u8]) -> Result<(), ImageIoError> {
    let start = usize::try_from(offset).map_err(|_| ImageIoError::OutOfBounds)?;
    let end = start
        .checked_add(buf.len())
        .ok_or(ImageIoError::OutOfBounds)?;
    let src = data.get(start..end).ok_or(ImageIoError::OutOfBounds)?;
    buf.copy_from_slice(src);
    Ok(())
}

impl OldImage for &[u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), ImageIoError> {
        slice_read_at(self, offset, buf)
    }
}

/// An in-memory old image.
#[derive(Clone, Copy, Debug)]
pub struct SliceImage<'a>(pub &'a [u8]);

impl OldImage for SliceImage<'_> {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), ImageIoError> {
        slice_read_at(self.0, offset, buf)
    }
}

impl ImageSink for Vec<u8> {
    fn write(&mut self, buf: &[u8]) -> Result<(), ImageIoError> {
        self.try_reserve(buf.len())
            .map_err(|_| ImageIoError::Write)?;
        self.extend_from_slice(buf);
        Ok(())
    }
}

/// What a successful [`apply`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApplySummary {
    /// Bytes written to the sink (= declared new size).
    pub new_size: u64,
    /// Chunks applied.
    pub chunks: u32,
    /// Memory the patch declared it needs.
    pub decoder_memory: u64,
}

/// Apply `patch` to `old`, writing the new image to `sink`.
///
/// Checks old size + old digest first (refusing the wrong old image before
/// writing anything), then per chunk: stored digest before parsing, bounds on
/// every length, output digest after (a chunk is written only once its output
/// digest matched); finally size + new digest.
pub fn apply<O: OldImage + ?Sized, S: ImageSink + ?Sized>(
    old: &mut O,
    patch: &[u8],
    sink: &mut S,
    limits: &Limits,
) -> Result<ApplySummary, PatchError> {
    let header = PatchHeader::decode(patch, limits)?;
    check_old(old, &header)?;

    let mut applier = ChunkApplier::new();
    let mut new_image = NewImage::new(sink);
    let mut index: u32 = 0;
    let mut body_off = header.encoded_len();
    for entry in &header.chunks {
        let stored = usize::try_from(entry.stored_len).map_err(|_| PatchError::Truncated)?;
        let end = body_off.checked_add(stored).ok_or(PatchError::Truncated)?;
        let body = patch.get(body_off..end).ok_or(PatchError::Truncated)?;
        body_off = end;
        new_image.write(applier.run_body(&header, index, body, old)?)?;
        index = index.checked_add(1).ok_or(PatchError::TooManyChunks {
            count: u32::MAX,
            limit: limits.max_chunks,
        })?;
    }
    new_image.finish(&header, index)
}

/// The new image as it is written: its bytes go to the sink in order while
/// their count and SHA-256 are kept for the final check.
struct NewImage<'s, S: ?Sized> {
    hash: Sha256,
    written: u64,
    sink: &'s mut S,
}

impl<'s, S: ImageSink + ?Sized> NewImage<'s, S> {
    fn new(sink: &'s mut S) -> Self {
        Self {
            hash: Sha256::new(),
            written: 0,
            sink,
        }
    }

    /// Hash and write the next chunk's verified output.
    fn write(&mut self, out: &[u8]) -> Result<(), PatchError> {
        self.hash.update(out);
        self.sink.write(out)?;
        self.written = self
            .written
            .checked_add(out.len() as u64)
            .ok_or(PatchError::OutputTooLarge)?;
        Ok(())
    }

    /// The final check once all `chunks` are written: size and digest.
    fn finish(self, header: &PatchHeader, chunks: u32) -> Result<ApplySummary, PatchError> {
        let digest: [u8; 32] = self.hash.finalize().into();
        if self.written != header.new_size || digest != header.new_digest {
            return Err(PatchError::NewImageMismatch);
        }
        Ok(ApplySummary {
            new_size: self.written,
            chunks,
            decoder_memory: header.decoder_memory,
        })
    }
}

/// How [`apply_parallel`] and [`apply_parallel_from`] run: how many chunks
/// at once, with which zstd decoder, and when the old image's digest is
/// checked.
///
/// ```
/// use deltaseal_verify::patch::{OldImageCheck, ApplyOptions, ZstdDecoder};
/// let device_order = ApplyOptions {
///     threads: 2,
///     decoder: ZstdDecoder::Ruzstd,
///     old_image: OldImageCheck::BeforeApply,
/// };
/// assert_eq!(ApplyOptions::threads(2), device_order);
/// ```
#[cfg(feature = "std")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Chunks applied at once, each by its own worker thread (0 is treated as 1).
    pub threads: usize,
    /// The zstd decoder every worker runs.
    pub decoder: ZstdDecoder,
    /// When the old image's digest is checked.
    pub old_image: OldImageCheck,
}

#[cfg(feature = "std")]
impl ApplyOptions {
    /// `threads` workers with the defaults: [`ZstdDecoder::Ruzstd`] and
    /// [`OldImageCheck::BeforeApply`].
    pub fn threads(threads: usize) -> Self {
        Self {
            threads,
            decoder: ZstdDecoder::default(),
            old_image: OldImageCheck::default(),
        }
    }
}

/// When [`apply_parallel_from`] checks the old image's digest. Everything
/// else is checked as chunks go in both (each body's stored digest before it
/// is parsed, every bound, each chunk's output digest before it is written)
/// and the new image's size and digest at the end.
#[cfg(feature = "std")]
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OldImageCheck {
    /// Before any chunk is applied, as docs/format.md orders it: nothing
    /// is written for a wrong old image. For a sink whose writes stand
    /// (flash, a slot that boots), and the default.
    #[default]
    BeforeApply,
    /// Only its size up front; its digest only once an output digest (a
    /// chunk's or the new image's) has failed, to name that failure
    /// `OldImageMismatch`. For a sink that is thrown away unless the apply
    /// returns `Ok` (a temporary file renamed on success, as `deltaseal
    /// apply` writes): it saves a whole read and SHA-256 pass over the old
    /// image. The new image it accepts is the one
    /// [`BeforeApply`](Self::BeforeApply) accepts; it also accepts an old
    /// image that differs from the declared one only in bytes no chunk
    /// reads.
    OnFailure,
}

/// [`apply`], applying up to `options.threads` chunks at once (each worker has
/// its own [`ChunkApplier`] and its own clone of `old`) and writing them to
/// `sink` in order. `old` is any cloneable [`OldImage`]: an in-memory
/// `&[u8]`, or a handle doing positioned reads of a file, so the old image
/// need not be in memory. Same checks and result as [`apply`]; output does
/// not depend on `options`. Peak memory is about `options.threads` times the
/// declared `decoder_memory`.
///
/// ```
/// use deltaseal_verify::patch::{apply_parallel, Limits, ApplyOptions};
/// # fn demo(old: &[u8], patch: &[u8]) -> Result<(), deltaseal_verify::patch::PatchError> {
/// let mut new = Vec::new();
/// apply_parallel(old, patch, &mut new, &Limits::default(), ApplyOptions::threads(2))?;
/// # Ok(()) }
/// ```
#[cfg(feature = "std")]
pub fn apply_parallel<O: OldImage + Clone + Send, S: ImageSink + Send + ?Sized>(
    old: O,
    patch: &[u8],
    sink: &mut S,
    limits: &Limits,
    options: ApplyOptions,
) -> Result<ApplySummary, PatchError> {
    let header = PatchHeader::decode(patch, limits)?;
    apply_parallel_from(old, &header, patch, sink, options)
}

/// [`apply_parallel`] for a patch that is not in memory: `patch` gives
/// random reads of the whole patch (the same [`OldImage`] trait as old
/// images: a `&[u8]`, or positioned reads of a file) and `header` is its
/// header and chunk table, decoded with [`PatchHeader::decode_index`] from
/// the patch's first [`PatchHeader::encoded_len`] bytes and its length.
/// Each worker reads one chunk body at a time (at most the declared
/// `decoder_memory` plus the 44-byte body header: a longer body is
/// refused before it is read), so memory does not grow with the patch.
///
/// ```
/// use deltaseal_verify::patch::{apply_parallel_from, Limits, ApplyOptions, PatchHeader};
/// # fn demo(old: &[u8], patch: &[u8]) -> Result<(), deltaseal_verify::patch::PatchError> {
/// let header = PatchHeader::decode(patch, &Limits::default())?;
/// let mut new = Vec::new();
/// apply_parallel_from(old, &header, patch, &mut new, ApplyOptions::threads(2))?;
/// # Ok(()) }
/// ```
#[cfg(feature = "std")]
pub fn apply_parallel_from<
    O: OldImage + Clone + Send,
    P: OldImage + Clone + Send,
    S: ImageSink + Send + ?Sized,
>(
    old: O,
    header: &PatchHeader,
    patch: P,
    sink: &mut S,
    options: ApplyOptions,
) -> Result<ApplySummary, PatchError> {
    let old_first = options.old_image == OldImageCheck::BeforeApply;
    if old_first {
        check_old(&mut old.clone(), header)?;
    } else if old.len() != header.old_size {
        return Err(PatchError::OldImageMismatch);
    }
    let count = u32::try_from(header.chunks.len()).map_err(|_| PatchError::TooManyChunks {
        count: u32::MAX,
        limit: u32::MAX,
    })?;
    let threads = options.threads.clamp(1, header.chunks.len().max(1));
    // Body offsets, computed once in order (decode_index checked that the
    // bodies fill the patch exactly, so this sum cannot overflow).
    let mut body_off = header.encoded_len() as u64;
    let bodies: Vec<(u32, (u64, u64))> = (0..count)
        .zip(&header.chunks)
        .map(|(index, entry)| {
            let at = (body_off, entry.stored_len);
            body_off = body_off.saturating_add(entry.stored_len);
            (index, at)
        })
        .collect();
    let turn = Turn {
        state: std::sync::Mutex::new(InOrder {
            next: 0,
            error: None,
            new_image: NewImage::new(sink),
        }),
        changed: std::sync::Condvar::new(),
    };
    std::thread::scope(|s| {
        // Worker `w` applies chunks w, w + threads, ... and, when its chunk
        // is next, hashes and writes it itself: the others go on decoding
        // meanwhile, and each worker holds one output buffer.
        let workers: Vec<_> = (0..threads)
            .map(|w| {
                let mine = bodies.iter().copied().skip(w).step_by(threads);
                let (mut old, mut patch, turn) = (old.clone(), patch.clone(), &turn);
                s.spawn(move || {
                    let _stop_all_on_panic = AbandonOnPanic(turn);
                    let mut applier = ChunkApplier::with_decoder(options.decoder);
                    let mut body = Vec::new();
                    for (index, at) in mine {
                        let out = read_body(header, index, at, &mut patch, &mut body)
                            .and_then(|()| applier.run_body(header, index, &body, &mut old));
                        if !turn.write(index, out) {
                            break;
                        }
                    }
                })
            })
            .collect();
        // Joined here so that a panicked worker (none should: run_body does
        // not panic) is an error below rather than a panic of the caller.
        for worker in workers {
            let _ = worker.join();
        }
    });
    let InOrder {
        next,
        error,
        new_image,
    } = turn
        .state
        .into_inner()
        .map_err(|_| PatchError::OutOfMemory)?;
    let error = match error {
        Some(e) => e,
        // A stop without an error cannot happen: `AbandonOnPanic` sets one.
        None if next != count => PatchError::OutOfMemory,
        None => match new_image.finish(header, count) {
            Ok(summary) => return Ok(summary),
            Err(e) => e,
        },
    };
    // Only digests depend on the old image's bytes: name a wrong old image
    // as the check before applying would have.
    let digest_failed = matches!(
        error,
        PatchError::OutputDigestMismatch { .. } | PatchError::NewImageMismatch
    );
    if !old_first && digest_failed {
        check_old(&mut old.clone(), header)?;
    }
    Err(error)
}

/// The writing end of [`apply_parallel_from`]: chunks are hashed and
/// written strictly in order, each by the worker that applied it.
#[cfg(feature = "std")]
struct Turn<'s, S: ?Sized> {
    state: std::sync::Mutex<InOrder<'s, S>>,
    changed: std::sync::Condvar,
}

#[cfg(feature = "std")]
struct InOrder<'s, S: ?Sized> {
    /// The chunk to write next.
    next: u32,
    /// The first error in chunk order; nothing is written after it.
    error: Option<PatchError>,
    new_image: NewImage<'s, S>,
}

#[cfg(feature = "std")]
impl<S: ImageSink + ?Sized> Turn<'_, S> {
    /// Wait until chunk `index` is next, then write its output (or record
    /// its error). False once the apply has failed: the worker stops.
    fn write(&self, index: u32, out: Result<&[u8], PatchError>) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        while state.error.is_none() && state.next != index {
            state = match self.changed.wait(state) {
                Ok(s) => s,
                Err(_) => return false,
            };
        }
        if state.error.is_none() {
            if let Err(e) = out.and_then(|out| state.new_image.write(out)) {
                state.error = Some(e);
            } else {
                state.next = index.saturating_add(1);
            }
        }
        let going = state.error.is_none();
        drop(state);
        self.changed.notify_all();
        going
    }
}

/// Fails the apply if its worker unwinds, so that no other worker waits
/// for a chunk that will never come.
#[cfg(feature = "std")]
struct AbandonOnPanic<'t, 's, S: ?Sized>(&'t Turn<'s, S>);

#[cfg(feature = "std")]
impl<S: ?Sized> Drop for AbandonOnPanic<'_, '_, S> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut state = self
                .0
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            state.error.get_or_insert(PatchError::OutOfMemory);
            drop(state);
            self.0.changed.notify_all();
        }
    }
}

/// Read chunk `index`'s stored body (`len` bytes at `offset`) from `patch`
/// into `buf`, refusing a body longer than any well-formed chunk within the
/// declared memory can be.
#[cfg(feature = "std")]
fn read_body<P: OldImage + ?Sized>(
    header: &PatchHeader,
    index: u32,
    (offset, len): (u64, u64),
    patch: &mut P,
    buf: &mut Vec<u8>,
) -> Result<(), PatchError> {
    // Each stored stream is at most its decoded length, which chunk_memory counts.
    let most = header
        .decoder_memory
        .saturating_add(super::CHUNK_BODY_HEADER_LEN as u64);
    if len > most {
        return Err(PatchError::ChunkMemoryOverDeclared { chunk: index });
    }
    resize(
        buf,
        usize::try_from(len).map_err(|_| PatchError::OutOfMemory)?,
    )?;
    patch.read_at(offset, buf).map_err(|e| match e {
        ImageIoError::OutOfBounds => PatchError::Truncated,
        other => PatchError::Io(other),
    })
}

/// Applies single chunks, for parallel apply or resuming at a chunk boundary.
///
/// The caller must already have checked the old image (size and digest, as
/// [`apply`] does) and must check the final new-image digest itself. Each
/// call checks the chunk's stored digest before parsing it and its output
/// digest before returning the output. Buffers are reused across calls.
///
/// ```
/// use deltaseal_verify::patch::{ChunkApplier, Limits, PatchHeader, SliceImage};
/// # fn demo(old: &[u8], patch: &[u8]) -> Result<(), deltaseal_verify::patch::PatchError> {
/// let header = PatchHeader::decode(patch, &Limits::default())?;
/// let mut applier = ChunkApplier::new();
/// // e.g. resume at chunk 3 after a power loss:
/// if header.chunks.len() > 3 {
///     let out = applier.apply_chunk(&header, patch, 3, &mut SliceImage(old))?;
///     assert_eq!(Some(out.len() as u64), header.chunk_output_len(3));
/// }
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct ChunkApplier {
    state: ChunkState,
}

impl ChunkApplier {
    /// A new applier with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new applier with empty buffers that decodes zstd frames with
    /// `decoder` ([`new`](Self::new) uses [`ZstdDecoder::Ruzstd`]).
    pub fn with_decoder(decoder: ZstdDecoder) -> Self {
        Self {
            state: ChunkState {
                decoder,
                ..ChunkState::default()
            },
        }
    }

    /// Apply chunk `index` of `patch` (whose header is `header`) and return
    /// its verified output.
    pub fn apply_chunk<O: OldImage + ?Sized>(
        &mut self,
        header: &PatchHeader,
        patch: &[u8],
        index: u32,
        old: &mut O,
    ) -> Result<&[u8], PatchError> {
        let range = header
            .chunk_body_range(index)
            .ok_or(PatchError::MalformedChunk { chunk: index })?;
        let body = patch.get(range).ok_or(PatchError::Truncated)?;
        self.run_body(header, index, body, old)
    }

    pub(crate) fn run_body<O: OldImage + ?Sized>(
        &mut self,
        header: &PatchHeader,
        index: u32,
        body: &[u8],
        old: &mut O,
    ) -> Result<&[u8], PatchError> {
        let malformed = PatchError::MalformedChunk { chunk: index };
        let entry = usize::try_from(index)
            .ok()
            .and_then(|i| header.chunks.get(i))
            .ok_or(malformed)?;
        if sha256(body) != entry.stored_digest {
            return Err(PatchError::ChunkDigestMismatch { chunk: index });
        }
        let out_len = header.chunk_output_len(index).ok_or(malformed)?;
        let out = self.state.run(header, index, body, out_len, old)?;
        if sha256(out) != entry.output_digest {
            return Err(PatchError::OutputDigestMismatch { chunk: index });
        }
        Ok(out)
    }
}

/// Apply `patch` to an in-memory `old` image and return the new image.
pub fn apply_to_vec(old: &[u8], patch: &[u8], limits: &Limits) -> Result<Vec<u8>, PatchError> {
    let mut out = Vec::new();
    let mut img = SliceImage(old);
    apply(&mut img, patch, &mut out, limits)?;
    Ok(out)
}

pub(crate) fn check_old<O: OldImage + ?Sized>(
    old: &mut O,
    header: &PatchHeader,
) -> Result<(), PatchError> {
    if old.len() != header.old_size {
        return Err(PatchError::OldImageMismatch);
    }
    let piece = header.old_size.min(16 * 1024);
    let mut buf = try_zeroed(usize::try_from(piece).map_err(|_| PatchError::OutOfMemory)?)?;
    let mut h = Sha256::new();
    let mut off: u64 = 0;
    while off < header.old_size {
        let n = header.old_size.saturating_sub(off).min(piece);
        let n_us = usize::try_from(n).map_err(|_| PatchError::OutOfMemory)?;
        let b = buf.get_mut(..n_us).ok_or(PatchError::OutOfMemory)?;
        old.read_at(off, b)?;
        h.update(&*b);
        off = off.checked_add(n).ok_or(PatchError::OldImageMismatch)?;
    }
    let d: [u8; 32] = h.finalize().into();
    if d != header.old_digest {
        return Err(PatchError::OldImageMismatch);
    }
    Ok(())
}

/// Buffers reused across chunks. What they hold while a chunk is applied
/// never exceeds the patch's declared `decoder_memory`: a buffer that would
/// have to grow is freed before it is allocated again (no reallocation copy
/// holds both), and buffers kept from earlier chunks are released when
/// keeping them would go over the declared memory.
#[derive(Default)]
struct ChunkState {
    decoder: ZstdDecoder,
    out: Vec<u8>,
    ctrl: Vec<u8>,
    diff: Vec<u8>,
    extra: Vec<u8>,
}

/// Make `buf` exactly `len` bytes long without ever holding an old and a
/// new allocation at once. Bytes it already holds are kept, not zeroed
/// again (only new ones are): every caller has all `len` bytes
/// overwritten before it uses any, or fails (a stream decoder must fill
/// its buffer exactly, `execute` must produce every output byte, a body
/// read must fill its buffer and the body then match its digest), so what
/// a buffer held before never shows. Zeroing a whole output and diff
/// buffer for every chunk cost kernel-vmlinux's apply about 3% of its CPU.
fn resize(buf: &mut Vec<u8>, len: usize) -> Result<(), PatchError> {
    if len > buf.capacity() {
        *buf = Vec::new();
        buf.try_reserve_exact(len)
            .map_err(|_| PatchError::OutOfMemory)?;
    }
    buf.truncate(len);
    buf.resize(len, 0);
    Ok(())
}

/// Decode one stream: stored (`stored == len`) or a single frame of exactly
/// `len` bytes; a zstd frame is decoded by the decoder `reference` is for,
/// with the reference it holds. Returns the decoded bytes.
fn decode_stream<'a>(
    codec: Codec,
    window: u64,
    (src, len): (&'a [u8], u32),
    reference: FrameReference,
    buf: &'a mut Vec<u8>,
    chunk: u32,
) -> Result<&'a [u8], PatchError> {
    let len_us = usize::try_from(len).map_err(|_| PatchError::MalformedChunk { chunk })?;
    if src.len() == len_us {
        return Ok(src);
    }
    // `run` has refused stored > decoded, and anything but stored for none.
    match codec {
        Codec::None => Err(PatchError::MalformedChunk { chunk }),
        Codec::Zstd => {
            resize(buf, len_us)?;
            let decoded = match reference {
                FrameReference::Ruzstd(dict) => zstd_into(window, src, dict, buf),
                #[cfg(feature = "libzstd")]
                FrameReference::Libzstd(prefix) => libzstd_into(src, &prefix, buf),
                // read() gives zstd references only for codec zstd.
                #[cfg(feature = "xz")]
                FrameReference::Xz(_) => Err(()),
            };
            decoded.map_err(|()| PatchError::Decompress { chunk })?;
            Ok(buf.as_slice())
        }
        #[cfg(feature = "xz")]
        Codec::Xz => {
            resize(buf, len_us)?;
            let decoded = match reference {
                FrameReference::Xz(prefix) if !prefix.is_empty() => lzma2_into(&prefix, src, buf),
                _ => xz_into(window, src, buf),
            };
            decoded.map_err(|()| PatchError::Decompress { chunk })?;
            Ok(buf.as_slice())
        }
    }
}

/// Decode exactly one .xz stream that fills `dst` exactly and uses all of
/// `src`, with the decoder's memory capped at `window + XZ_DECODER_OVERHEAD`.
#[cfg(feature = "xz")]
fn xz_into(window: u64, src: &[u8], dst: &mut [u8]) -> Result<(), ()> {
    use liblzma::stream::{Action, Status, Stream};
    let limit = window.checked_add(super::XZ_DECODER_OVERHEAD).ok_or(())?;
    // flags 0: a single stream, no concatenation; trailing bytes stay unread.
    let mut s = Stream::new_stream_decoder(limit, 0).map_err(drop)?;
    loop {
        let (in_pos, out_pos) = (s.total_in(), s.total_out());
        let input = src
            .get(usize::try_from(in_pos).map_err(drop)?..)
            .ok_or(())?;
        let output = dst
            .get_mut(usize::try_from(out_pos).map_err(drop)?..)
            .ok_or(())?;
        if s.process(input, output, Action::Finish).map_err(drop)? == Status::StreamEnd {
            break;
        }
        if s.total_in() == in_pos && s.total_out() == out_pos {
            return Err(()); // truncated input or more output than declared
        }
    }
    if s.total_in() != src.len() as u64 || s.total_out() != dst.len() as u64 {
        return Err(());
    }
    Ok(())
}

/// Decode one raw LZMA2 stream (chunks up to its end marker, no container)
/// with `reference` as its preset dictionary, which must fill `dst`
/// exactly and use all of `src`. The dictionary is
/// [`xz_reference_dictionary`](super::header::xz_reference_dictionary).
#[cfg(feature = "xz")]
fn lzma2_into(reference: &[u8], src: &[u8], dst: &mut [u8]) -> Result<(), ()> {
    use std::io::Read as _;
    let ref_len = u32::try_from(reference.len()).map_err(drop)?;
    let extra_len = u32::try_from(dst.len()).map_err(drop)?;
    let dict = super::header::xz_reference_dictionary(ref_len, extra_len).ok_or(())?;
    let dict = u32::try_from(dict).map_err(drop)?;
    let mut reader = lzma_rust2::Lzma2Reader::new(src, dict, Some(reference));
    reader.read_exact(dst).map_err(drop)?;
    // The end marker must come next, and nothing after it.
    let mut probe = [0u8; 1];
    if reader.read(&mut probe).map_err(drop)? != 0 || !reader.into_inner().is_empty() {
        return Err(());
    }
    Ok(())
}

fn zstd_into(
    window: u64,
    src: &[u8],
    reference: Option<Dictionary>,
    dst: &mut [u8],
) -> Result<(), ()> {
    // A fresh decoder per frame, one block at a time, drained to the window
    // after every block: the decoding that `zstd_frame::frame_memory` models.
    let mut dec = FrameDecoder::new();
    dec.set_max_window_size(window);
    // Two header reads: the first sets the decoder up, the second (a reset)
    // reserves the whole window buffer in one allocation. Without it the
    // buffer grows from a few bytes in ~20 copying steps (15% slower on 1 MiB
    // chunks, and a fragmented heap). Same final size, within the model.
    dec.init(&mut &src[..]).map_err(drop)?;
    let mut input = src;
    dec.reset(&mut input).map_err(drop)?;
    if let Some(dict) = reference {
        // The decoder copies the content into its decode buffer: two copies
        // until the decoder is dropped (ruzstd has no way to take it back).
        dec.add_dict(dict).map_err(drop)?;
        dec.force_dict(REFERENCE_DICT_ID).map_err(drop)?;
    }
    let mut written = 0usize;
    loop {
        dec.decode_blocks(&mut input, BlockDecodingStrategy::UptoBlocks(1))
            .map_err(drop)?;
        loop {
            let rest = dst.get_mut(written..).ok_or(())?;
            if rest.is_empty() {
                break;
            }
            let n = dec.read(rest).map_err(drop)?;
            if n == 0 {
                break;
            }
            written = written.checked_add(n).ok_or(())?;
        }
        if dec.can_collect() > 0 {
            return Err(()); // more output than declared
        }
        if dec.is_finished() {
            break;
        }
    }
    if written != dst.len() || !input.is_empty() {
        return Err(());
    }
    Ok(())
}

/// Decode one zstd frame that fills `dst` exactly with C libzstd, with
/// `prefix` (if not empty) as its raw-content prefix. The pre-decode walk
/// has already bounded the frame (window, block sizes, one frame and
/// nothing after it), so a one-shot decode into `dst` needs no window
/// buffer: libzstd refuses output beyond `dst`, and a shorter one is an
/// error here.
#[cfg(feature = "libzstd")]
fn libzstd_into(src: &[u8], prefix: &[u8], dst: &mut [u8]) -> Result<(), ()> {
    let mut dctx = zstd::zstd_safe::DCtx::try_create().ok_or(())?;
    if !prefix.is_empty() {
        dctx.ref_prefix(prefix).map_err(drop)?;
    }
    let written = dctx.decompress(dst, src).map_err(drop)?;
    if written != dst.len() {
        return Err(());
    }
    Ok(())
}

/// An extra stream's reference in the form its chunk's decoder takes it.
// Built and moved once per chunk; a box would be one more heap block on the
// device path for nothing.
#[allow(clippy::large_enum_variant)]
enum FrameReference {
    /// ruzstd: the old bytes as an RFC 8878 dictionary, or none.
    Ruzstd(Option<Dictionary>),
    /// libzstd: the old bytes as a raw-content prefix (empty: none).
    #[cfg(feature = "libzstd")]
    Libzstd(Vec<u8>),
    /// xz: the old bytes as the LZMA2 preset dictionary.
    #[cfg(feature = "xz")]
    Xz(Vec<u8>),
}

impl FrameReference {
    /// No reference, for `decoder`.
    fn none(decoder: ZstdDecoder) -> Self {
        match decoder {
            ZstdDecoder::Ruzstd => Self::Ruzstd(None),
            #[cfg(feature = "libzstd")]
            ZstdDecoder::Libzstd => Self::Libzstd(Vec::new()),
        }
    }

    /// `old[offset..offset + len]` for `decoder` or, with codec xz, for
    /// the LZMA2 decoder (see [`read_reference`]).
    fn read<O: OldImage + ?Sized>(
        (codec, decoder): (Codec, ZstdDecoder),
        old: &mut O,
        offset: u64,
        len: u32,
        chunk: u32,
    ) -> Result<Self, PatchError> {
        #[cfg(feature = "xz")]
        if codec == Codec::Xz {
            let mut raw = try_zeroed(old_range(old, offset, len, chunk)?)?;
            old.read_at(offset, &mut raw)?;
            return Ok(Self::Xz(raw));
        }
        let _ = codec;
        match decoder {
            ZstdDecoder::Ruzstd => Ok(Self::Ruzstd(Some(read_reference(old, offset, len, chunk)?))),
            #[cfg(feature = "libzstd")]
            ZstdDecoder::Libzstd => {
                let range = old_range(old, offset, len, chunk)?;
                let mut prefix = try_zeroed(range)?;
                old.read_at(offset, &mut prefix)?;
                Ok(Self::Libzstd(prefix))
            }
        }
    }
}

/// The length of `old[offset..offset + len]` as a `usize`, or
/// `OldReadOutOfBounds` if that range is not inside the old image.
fn old_range<O: OldImage + ?Sized>(
    old: &O,
    offset: u64,
    len: u32,
    chunk: u32,
) -> Result<usize, PatchError> {
    let oob = PatchError::OldReadOutOfBounds { chunk };
    let end = offset.checked_add(u64::from(len)).ok_or(oob)?;
    if end > old.len() {
        return Err(oob);
    }
    usize::try_from(len).map_err(|_| PatchError::OutOfMemory)
}

/// Dictionary ID the applier files an extra stream's reference under (any
/// non-zero value: frames carry no dictionary ID, the applier forces it).
const REFERENCE_DICT_ID: u32 = 1;

/// Entropy tables (Huffman, then offset, match length and literal length
/// FSE tables) in RFC 8878 dictionary form, made by libzstd's trainer. The
/// decoder needs some to accept a dictionary; a frame compressed against a
/// raw-content prefix never uses them (it starts without entropy tables, so
/// it defines its own before any repeat mode), and a hostile frame that does
/// only decodes to bytes that fail the output digest.
const REFERENCE_TABLES: [u8; 91] = [
    0x14, 0x10, 0xe8, 0x0a, 0xd3, 0x01, 0x00, 0x00, 0x00, 0x10, 0xa3, 0x4c, 0x32, 0xa5, 0x24, 0x65,
    0x02, 0x00, 0x28, 0x23, 0x24, 0x03, 0x00, 0x20, 0x40, 0x60, 0x80, 0x80, 0xa8, 0x7c, 0x78, 0xf2,
    0x04, 0x00, 0x04, 0x80, 0xaf, 0x51, 0x19, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xd4, 0x42, 0x24, 0xa4, 0xa3, 0xa3, 0xa3, 0xa2, 0x62, 0x42, 0x42, 0x02, 0x12, 0x71, 0x38, 0x14,
    0x95, 0xc9, 0xc3, 0xc9, 0x20, 0xab, 0x29, 0x03, 0x00, 0x00, 0x00,
];

/// Length of the dictionary header [`dictionary_bytes`] puts before the
/// content: magic, ID, [`REFERENCE_TABLES`], three repeat offsets.
const REFERENCE_HEAD_LEN: usize = 8 + REFERENCE_TABLES.len() + 12;

/// An RFC 8878 dictionary with `content_len` zero bytes of content to fill
/// in: magic, ID, [`REFERENCE_TABLES`], repeat offsets 1, 4, 8 (what a
/// raw-content prefix starts with).
fn dictionary_bytes(content_len: usize) -> Result<Vec<u8>, PatchError> {
    let mut raw = try_zeroed(
        REFERENCE_HEAD_LEN
            .checked_add(content_len)
            .ok_or(PatchError::OutOfMemory)?,
    )?;
    let head = raw
        .get_mut(..REFERENCE_HEAD_LEN)
        .ok_or(PatchError::OutOfMemory)?;
    let (magic, rest) = head.split_at_mut(4);
    magic.copy_from_slice(&[0x37, 0xa4, 0x30, 0xec]);
    let (id, rest) = rest.split_at_mut(4);
    id.copy_from_slice(&REFERENCE_DICT_ID.to_le_bytes());
    let (tables, reps) = rest.split_at_mut(REFERENCE_TABLES.len());
    tables.copy_from_slice(&REFERENCE_TABLES);
    for (dst, rep) in reps.chunks_exact_mut(4).zip([1u32, 4, 8]) {
        dst.copy_from_slice(&rep.to_le_bytes());
    }
    Ok(raw)
}

/// Read an extra stream's reference, `old[offset..offset + len]`, into a
/// dictionary. The bytes are read straight into the dictionary form, which
/// is dropped once the parsed dictionary holds its copy: the decoder makes
/// the second and last copy (see `header::reference_memory`).
pub(crate) fn read_reference<O: OldImage + ?Sized>(
    old: &mut O,
    offset: u64,
    len: u32,
    chunk: u32,
) -> Result<Dictionary, PatchError> {
    let mut raw = dictionary_bytes(old_range(old, offset, len, chunk)?)?;
    let content = raw
        .get_mut(REFERENCE_HEAD_LEN..)
        .ok_or(PatchError::OutOfMemory)?;
    old.read_at(offset, content)?;
    // Only the fixed tables are parsed (`reference_dictionary_holds_the_old_
    // bytes` checks they are accepted), so this cannot fail on input.
    Dictionary::decode_dict(&raw).map_err(|_| PatchError::OutOfMemory)
}

/// LEB128 unsigned varint, at most 10 bytes, minimal encoding only.
pub(crate) fn read_varint(r: &mut &[u8]) -> Option<u64> {
    let mut v: u64 = 0;
    let mut shift: u32 = 0;
    loop {
        let (&b, rest) = r.split_first()?;
        *r = rest;
        let low = u64::from(b & 0x7f);
        if shift == 63 && b > 1 {
            return None; // overflows u64
        }
        v |= low.checked_shl(shift)?;
        if b & 0x80 == 0 {
            if b == 0 && shift > 0 {
                return None; // non-minimal
            }
            return Some(v);
        }
        shift = shift.checked_add(7)?;
        if shift > 63 {
            return None;
        }
    }
}

/// Zigzag-decoded signed varint.
pub(crate) fn read_svarint(r: &mut &[u8]) -> Option<i64> {
    let n = read_varint(r)?;
    let mag = n.wrapping_shr(1) as i64;
    let sign = 0i64.wrapping_sub((n & 1) as i64);
    Some(mag ^ sign)
}

impl ChunkState {
    /// Free the buffers kept from earlier chunks if keeping them beside this
    /// chunk's `need` (which counts each buffer at this chunk's size) could
    /// go over the `declared` memory.
    fn release_over(&mut self, declared: u64, need: u64, out_len: u64, bh: &ChunkBodyHeader) {
        let kept_beyond_need: u64 = [
            (&self.out, out_len),
            (&self.ctrl, u64::from(bh.ctrl_len)),
            (&self.diff, u64::from(bh.diff_len)),
            (&self.extra, u64::from(bh.extra_len)),
        ]
        .iter()
        .map(|(buf, counted)| (buf.capacity() as u64).saturating_sub(*counted))
        .sum();
        if need.saturating_add(kept_beyond_need) > declared {
            *self = ChunkState {
                decoder: self.decoder,
                ..ChunkState::default()
            };
        }
    }

    fn run<O: OldImage + ?Sized>(
        &mut self,
        header: &PatchHeader,
        chunk: u32,
        body: &[u8],
        out_len: u64,
        old: &mut O,
    ) -> Result<&[u8], PatchError> {
        let malformed = PatchError::MalformedChunk { chunk };
        let bh = ChunkBodyHeader::decode(body).ok_or(malformed)?;
        if bh.body_len() != Some(body.len() as u64) {
            return Err(malformed);
        }
        let streams = bh.streams(body).ok_or(malformed)?;
        for (src, len) in streams {
            let stored = src.len() as u64;
            if stored > u64::from(len) || (header.codec == Codec::None && stored != u64::from(len))
            {
                return Err(malformed);
            }
        }
        if !reference_allowed(header.codec, &bh, streams[2]) {
            return Err(malformed);
        }
        // The buffers alone may already be over the declared memory: say so
        // before walking any frame.
        let buffers = out_len.checked_add(bh.decoded_len());
        if buffers.is_none_or(|b| b > header.decoder_memory) {
            return Err(PatchError::ChunkMemoryOverDeclared { chunk });
        }
        // The body is sound, so only a zstd frame that fails its pre-decode
        // walk makes this `None`.
        let need = body_memory((header.codec, header.transform), out_len, &bh, streams)
            .ok_or(PatchError::Decompress { chunk })?;
        if need > header.decoder_memory {
            return Err(PatchError::ChunkMemoryOverDeclared { chunk });
        }
        if u64::from(bh.diff_len) > out_len || u64::from(bh.extra_len) > out_len {
            return Err(malformed);
        }
        let [ctrl_src, diff_src, extra_src] = streams;
        self.release_over(header.decoder_memory, need, out_len, &bh);
        let window = zstd_window_limit(&bh);
        let codec = header.codec;
        // A referenced extra stream is decoded first, with the output and
        // diff buffers kept from earlier chunks freed: its reference and
        // window are then never held beside them (the declaration still
        // counts them together). Not for libzstd, a host decoder whose
        // context the memory model does not measure anyway: there, freeing
        // them only meant allocating and zeroing them again for the chunk
        // (kernel-vmlinux: 26 of its 63 chunks, ~3% of the apply's CPU).
        let decoder = self.decoder;
        let reference = match bh.ref_len {
            0 => FrameReference::none(decoder),
            len => {
                if !keeps_buffers_beside_reference(codec, decoder) {
                    self.out = Vec::new();
                    self.diff = Vec::new();
                }
                FrameReference::read((codec, decoder), old, bh.ref_offset, len, chunk)?
            }
        };
        let extra = decode_stream(codec, window, extra_src, reference, &mut self.extra, chunk)?;
        let plain = || FrameReference::none(decoder);
        let ctrl = decode_stream(codec, window, ctrl_src, plain(), &mut self.ctrl, chunk)?;
        let diff = decode_stream(codec, window, diff_src, plain(), &mut self.diff, chunk)?;

        let out_us = usize::try_from(out_len).map_err(|_| malformed)?;
        resize(&mut self.out, out_us)?;
        let chunk_start = u64::from(chunk)
            .checked_mul(u64::from(header.chunk_size))
            .ok_or(malformed)?;
        let mut predictor = match header.transform {
            Transform::None => None,
            t => Some(Predictor::new(
                (t, header.image_base),
                ctrl,
                bh.old_offset,
                chunk_start,
                out_len,
            )?),
        };
        execute(
            ctrl,
            diff,
            extra,
            bh.old_offset,
            header.old_size,
            old,
            &mut self.out,
            chunk,
            (chunk_start, predictor.as_mut()),
        )?;
        Ok(self.out.as_slice())
    }
}

/// Whether a chunk's output and diff buffers are kept while its extra
/// stream is decoded against its reference: only by the host's libzstd
/// decoder (see [`ChunkState::run`]).
fn keeps_buffers_beside_reference(codec: Codec, decoder: ZstdDecoder) -> bool {
    let _ = (codec, decoder);
    #[cfg(feature = "libzstd")]
    if codec == Codec::Zstd && decoder == ZstdDecoder::Libzstd {
        return true;
    }
    false
}

/// `out += diff` byte-wise (wrapping) over the shorter of the two.
pub(crate) fn add_diff(out: Option<&mut [u8]>, diff: Option<&[u8]>) {
    if let (Some(out), Some(diff)) = (out, diff) {
        for (x, y) in out.iter_mut().zip(diff) {
            *x = x.wrapping_add(*y);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn execute<O: OldImage + ?Sized>(
    mut ctrl: &[u8],
    diff: &[u8],
    extra: &[u8],
    old_offset: u64,
    old_size: u64,
    old: &mut O,
    out: &mut [u8],
    chunk: u32,
    // Where the chunk starts in the new image, and the predictor of its
    // add regions (`None`: plain byte-wise adds).
    (chunk_start, mut predictor): (u64, Option<&mut Predictor>),
) -> Result<(), PatchError> {
    let bad = PatchError::BadControl { chunk };
    let oob = PatchError::OldReadOutOfBounds { chunk };
    let overrun = PatchError::OutputOverrun { chunk };
    if old_offset > old_size {
        return Err(oob);
    }
    let mut pos = old_offset;
    let mut o = 0usize;
    let mut di = 0usize;
    let mut ei = 0usize;
    while !ctrl.is_empty() {
        let add = read_varint(&mut ctrl).ok_or(bad)?;
        let ext = read_varint(&mut ctrl).ok_or(bad)?;
        let seek = read_svarint(&mut ctrl).ok_or(bad)?;

        // add: out = old[pos..] + diff
        let add_us = usize::try_from(add).map_err(|_| overrun)?;
        let o_end = o.checked_add(add_us).ok_or(overrun)?;
        let dst = out.get_mut(o..o_end).ok_or(overrun)?;
        let old_end = pos.checked_add(add).ok_or(oob)?;
        if old_end > old_size {
            return Err(oob);
        }
        let di_end = di.checked_add(add_us).ok_or(bad)?;
        let d = diff
            .get(di..di_end)
            .ok_or(PatchError::ChunkIncomplete { chunk })?;
        if !dst.is_empty() {
            old.read_at(pos, dst)?;
        }
        match predictor.as_deref_mut() {
            None => add_diff(Some(dst), Some(d)),
            Some(p) => {
                let new_start = chunk_start.checked_add(o as u64).ok_or(overrun)?;
                p.decode_region(dst, d, (pos, old_size, new_start));
            }
        }
        o = o_end;
        di = di_end;
        pos = old_end;

        // extra: literal bytes
        let ext_us = usize::try_from(ext).map_err(|_| overrun)?;
        let o_end = o.checked_add(ext_us).ok_or(overrun)?;
        let dst = out.get_mut(o..o_end).ok_or(overrun)?;
        let ei_end = ei.checked_add(ext_us).ok_or(bad)?;
        let e = extra
            .get(ei..ei_end)
            .ok_or(PatchError::ChunkIncomplete { chunk })?;
        dst.copy_from_slice(e);
        o = o_end;
        ei = ei_end;

        // seek within [0, old_size]
        pos = pos.checked_add_signed(seek).ok_or(oob)?;
        if pos > old_size {
            return Err(oob);
        }
    }
    if o != out.len() || di != diff.len() || ei != extra.len() {
        return Err(PatchError::ChunkIncomplete { chunk });
    }
    Ok(())
}
