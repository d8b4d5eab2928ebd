//! Push-style streaming install: feed bundle bytes as they arrive, in pieces
//! of any size, and get a verified new image in memory bounded by the
//! patch's declared decoder memory, never by the bundle's size.
//!
//! A device that receives an update over a radio, a UART or HTTP cannot
//! hold the whole bundle. [`StreamInstaller`] takes the bytes piece by piece
//! ([`StreamInstaller::feed`]), reads the running image through
//! [`OldImage`], writes the new one through [`ImageSink`] and runs the same
//! checks, in the same order, as [`crate::update::apply_update`]:
//!
//! ```text
//! envelope prefix (buffered, at most MAX_ENVELOPE_PREFIX bytes)
//!   ─► Bundle decode (strict CBOR) ─► authenticate (k of n trust-root keys)
//!   ─► approve (policy) ─► payload size == manifest, old size == precursor size
//! "#patch" payload, streamed:
//!   header + chunk table (buffered, bounded by Limits::max_chunks)
//!   ─► index digest == signed manifest's (before any other header field is parsed)
//!   ─► header decode + limits (declared memory refused here, before any write)
//!   ─► header agrees with manifest ─► old image size + SHA-256 (precursor)
//!   ─► [resume: chunks already written are read back and checked]
//!   ─► per chunk: body buffered (at most one) ─► stored digest ─► decode
//!      ─► output digest ─► written to the sink
//! end of payload ─► whole-payload digest ─► new image size + SHA-256 ─► finish()
//! ```
//!
//! The only header field looked at before the index digest is checked is
//! `chunk_count`, which says how long the index is; it is refused above
//! [`Limits::max_chunks`] before anything is allocated for it.
//!
//! # Memory
//!
//! At any time the installer holds at most one of: the envelope prefix
//! (at most [`MAX_ENVELOPE_PREFIX`] bytes), the raw index while it is parsed
//! (`112 + 72 × chunks`), the 16 KiB old-image hashing buffer, or one
//! chunk's stored body (at most `32 + decoder_memory`) plus the decoder's
//! working buffers (at most the declared `decoder_memory`); besides that it
//! keeps the decoded chunk table (`72 × chunks`) from the index on, and its
//! own fixed state. See `docs/format.md` ("Streaming install") for the
//! formula and measured numbers.
//!
//! # Resume
//!
//! [`StreamInstaller::resume`] restarts an interrupted install at a chunk
//! boundary. The caller feeds the **whole bundle again from its first
//! byte**; the bodies of the chunks already done still stream through the
//! digests (each is checked against its stored digest, and the whole
//! payload against the manifest) but are not decoded or written. What the
//! caller must guarantee, and what the installer checks:
//!
//! - the sink already holds exactly chunks `0..done` of the new image (the
//!   first `min(done × chunk_size, new_size)` bytes) and its next
//!   [`ImageSink::write`] appends right after them: so `done` must only
//!   count chunks whose writes were made durable (flushed) before `done` was
//!   recorded, and anything written after them must be cut off first;
//! - [`ReadBack::read_back`] returns those bytes as stored. The installer
//!   reads them back, after the old image has been checked and before
//!   anything is written, and compares each chunk with its output digest
//!   from the authenticated chunk table ([`StreamError::ResumeMismatch`]
//!   otherwise), then feeds them into the final new-image digest; so a
//!   half-written or corrupted chunk is never accepted as done.
//!
//! A fresh install ([`StreamInstaller::new`]) never calls `read_back`.
//!
//! ```
//! use deltaseal_verify::bundle::Policy;
//! use deltaseal_verify::patch::{Limits, SliceImage};
//! use deltaseal_verify::root::TrustRoot;
//! use deltaseal_verify::stream::{StreamError, StreamInstaller};
//!
//! # fn demo(trust: &TrustRoot, bundle: &[u8], old: &[u8]) -> Result<(), StreamError> {
//! let policy = Policy { installed_sequence: Some(6), ..Policy::default() };
//! let mut inst = StreamInstaller::new(trust, policy, Limits::mcu());
//! let mut new_image = Vec::new();
//! for piece in bundle.chunks(512) {
//!     // e.g. one radio packet at a time
//!     let p = inst.feed(piece, &mut SliceImage(old), &mut new_image)?;
//!     let _ = (p.chunks_done, p.chunks_total, p.written);
//! }
//! let installed = inst.finish()?;
//! assert_eq!(installed.new_size, new_image.len() as u64);
//! # Ok(()) }
//! ```

use alloc::boxed::Box;
use alloc::vec::Vec;

use sha2::Digest as _;

use crate::bundle::{
    DecodeError, MAX_ENVELOPE_PREFIX, Manifest, Policy, PolicyError, PrefixError, SignatureError,
    decode_prefix,
};
use crate::digest::{Sha256, sha256};
use crate::patch::{
    CHUNK_BODY_HEADER_LEN, ChunkApplier, HEADER_LEN, ImageIoError, ImageSink, Limits, OldImage,
    PatchError, PatchHeader, check_old, index_len,
};
use crate::root::TrustRoot;
use crate::update::UpdateError;

/// Bytes read back at a time when a resumed install checks the chunks
/// already written.
const READ_BACK_PIECE: usize = 4096;

/// Allowance for the installer's own state besides its buffers: the
/// decoded manifest, the boxed chunk state, and the small allocations of
/// the envelope checks (signature list, trust-root key ids).
pub const STREAM_FIXED_OVERHEAD: u64 = 4096;

/// Bytes of old image hashed at a time by the precursor check.
const OLD_CHECK_PIECE: u64 = 16 * 1024;

/// Upper bound on the heap a [`StreamInstaller`] needs for a patch with
/// this header (`None` on overflow):
///
/// ```text
/// table + max(envelope prefix, raw index, 16 KiB old-check buffer,
///             decoder_memory + largest stored chunk body) + STREAM_FIXED_OVERHEAD
/// table = 72 × chunk_count, raw index = 112 + table
/// ```
///
/// The decoded chunk table lives from the index on; the other terms are
/// never held at the same time. `decoder_memory` is what the header
/// declares (and [`Limits`] enforced), so the bound follows from
/// authenticated, limited numbers only.
///
/// ```
/// use deltaseal_verify::patch::{Limits, PatchHeader};
/// use deltaseal_verify::stream::memory_bound;
/// # fn demo(patch: &[u8]) -> Result<(), deltaseal_verify::patch::PatchError> {
/// let header = PatchHeader::decode(patch, &Limits::mcu())?;
/// let bytes = memory_bound(&header);
/// assert!(bytes.is_some_and(|b| b >= header.decoder_memory));
/// # Ok(()) }
/// ```
pub fn memory_bound(header: &PatchHeader) -> Option<u64> {
    let entries = u64::try_from(header.chunks.len()).ok()?;
    let table = entries.checked_mul(72)?;
    let index = table.checked_add(HEADER_LEN as u64)?;
    let body = header
        .chunks
        .iter()
        .map(|c| c.stored_len)
        .max()
        .unwrap_or(0);
    let working = header.decoder_memory.checked_add(body)?;
    let transient = (MAX_ENVELOPE_PREFIX as u64)
        .max(index)
        .max(OLD_CHECK_PIECE)
        .max(READ_BACK_PIECE as u64)
        .max(working);
    table
        .checked_add(transient)?
        .checked_add(STREAM_FIXED_OVERHEAD)
}

/// Reads back the new image written so far; used only by a resumed install
/// ([`StreamInstaller::resume`]) to check the chunks already done.
///
/// A sink that is never resumed may simply return
/// `Err(ImageIoError::Read)`.
pub trait ReadBack {
    /// Fill `buf` with the new image's bytes at `offset..offset + buf.len()`.
    fn read_back(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), ImageIoError>;
}

impl ReadBack for Vec<u8> {
    fn read_back(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), ImageIoError> {
        let start = usize::try_from(offset).map_err(|_| ImageIoError::OutOfBounds)?;
        let end = start
            .checked_add(buf.len())
            .ok_or(ImageIoError::OutOfBounds)?;
        buf.copy_from_slice(self.get(start..end).ok_or(ImageIoError::OutOfBounds)?);
        Ok(())
    }
}

/// Why a streamed install failed. Once [`StreamInstaller::feed`] has
/// returned an error, every later call returns the same error; whatever
/// reached the sink must be discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The envelope is malformed (or trailing bytes follow the bundle).
    #[error("bundle is malformed")]
    Decode(#[source] DecodeError),
    /// Not signed by enough trusted keys.
    #[error("bundle is not authentic")]
    Signature(#[source] SignatureError),
    /// Authentic, but refused by the device's policy.
    #[error("bundle refused by policy")]
    Policy(#[source] PolicyError),
    /// The payload, the patch, the old image or the new image was rejected.
    #[error("update rejected")]
    Update(#[source] UpdateError),
    /// [`StreamInstaller::finish`] was called before the whole bundle arrived.
    #[error("the bundle ended before it was complete")]
    Truncated,
    /// The resume point is past the patch's last chunk.
    #[error("resume point {done} is past the patch's {total} chunks")]
    ResumeBeyondEnd {
        /// Chunks the caller said were done.
        done: u32,
        /// Chunks in the patch.
        total: u32,
    },
    /// A chunk the caller said was done does not match its output digest.
    #[error("chunk {chunk} already written does not match the patch")]
    ResumeMismatch {
        /// Chunk index.
        chunk: u32,
    },
    /// A buffer within the declared bounds could not be allocated.
    #[error("out of memory")]
    OutOfMemory,
}

impl From<PatchError> for StreamError {
    fn from(e: PatchError) -> Self {
        StreamError::Update(UpdateError::Patch(e))
    }
}

impl From<ImageIoError> for StreamError {
    fn from(e: ImageIoError) -> Self {
        StreamError::Update(UpdateError::Patch(PatchError::Io(e)))
    }
}

/// Which part of the bundle the installer is reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    /// Buffering the envelope up to the payload (nothing authenticated yet).
    Envelope,
    /// Authenticated and approved; buffering the patch header and chunk table.
    Index,
    /// Index, precursor (and resume point) checked; applying chunks.
    Chunks,
    /// Every check passed; call [`StreamInstaller::finish`].
    Complete,
}

/// Where a streamed install stands, returned by every successful
/// [`StreamInstaller::feed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// What the installer is reading now.
    pub stage: Stage,
    /// Bundle bytes consumed so far (all bytes fed).
    pub consumed: u64,
    /// Total bundle length, once the payload's length is known.
    pub bundle_len: Option<u64>,
    /// Chunks done (including those skipped by a resume).
    pub chunks_done: u32,
    /// Chunks in the patch, once the index is authenticated.
    pub chunks_total: Option<u32>,
    /// Bytes of new image in the sink (including those already there on resume).
    pub written: u64,
}

/// A verified install, returned by [`StreamInstaller::finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Installed {
    /// The manifest's sequence number (record it as installed).
    pub sequence: u64,
    /// Size of the new image (all of it is in the sink).
    pub new_size: u64,
    /// SHA-256 of the new image.
    pub new_digest: [u8; 32],
    /// Chunks in the patch.
    pub chunks: u32,
    /// Chunks that were already done when the install was resumed.
    pub resumed_chunks: u32,
    /// Decoder memory the patch declared.
    pub decoder_memory: u64,
    /// Distinct trusted keys whose signatures verified.
    pub signers: usize,
    /// Bundle bytes consumed.
    pub bundle_len: u64,
}

/// A push-style, bounded-memory installer of one bundle. See the [module
/// documentation](self) for the order of checks, memory and resume.
#[derive(Debug)]
pub struct StreamInstaller<'t> {
    trust: &'t TrustRoot,
    policy: Policy,
    limits: Limits,
    resume_from: u32,
    phase: Phase,
    consumed: u64,
    /// Set once the envelope is authenticated and approved.
    approved: Option<ApprovedState>,
}

#[derive(Debug)]
struct ApprovedState {
    manifest: Manifest,
    signers: usize,
    prefix_len: u64,
    payload_len: u64,
    payload_seen: u64,
    payload_hash: Sha256,
}

#[derive(Debug)]
enum Phase {
    Envelope {
        buf: Vec<u8>,
        need: usize,
    },
    Index {
        buf: Vec<u8>,
        /// Length of header + table, once the header's chunk count is read.
        total: Option<usize>,
    },
    Chunks(Box<Chunks>),
    Complete(Installed),
    Failed(StreamError),
}

struct Chunks {
    header: PatchHeader,
    count: u32,
    /// Chunk being received.
    index: u32,
    /// Bytes of its body received so far.
    seen: u64,
    /// The body of the current chunk (chunks at or past the resume point).
    body: Vec<u8>,
    /// Digest of the current chunk's body (chunks before the resume point).
    skip_hash: Sha256,
    applier: ChunkApplier,
    new_hash: Sha256,
    written: u64,
}

impl core::fmt::Debug for Chunks {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Chunks")
            .field("count", &self.count)
            .field("index", &self.index)
            .field("seen", &self.seen)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl<'t> StreamInstaller<'t> {
    /// An installer for a fresh install: bundles must be signed by
    /// `trust`'s threshold of keys, be acceptable to `policy`, and carry a
    /// patch within `limits` (declared decoder memory, sizes, chunks).
    pub fn new(trust: &'t TrustRoot, policy: Policy, limits: Limits) -> Self {
        Self::resume(trust, policy, limits, 0)
    }

    /// An installer that resumes an interrupted install: chunks `0..done`
    /// are already in the sink. Feed the whole bundle again from its first
    /// byte. See the [module documentation](self#resume) for what the
    /// caller must guarantee and what is checked.
    pub fn resume(trust: &'t TrustRoot, policy: Policy, limits: Limits, done: u32) -> Self {
        StreamInstaller {
            trust,
            policy,
            limits,
            resume_from: done,
            phase: Phase::Envelope {
                buf: Vec::new(),
                need: 1,
            },
            consumed: 0,
            approved: None,
        }
    }

    /// The authenticated, approved manifest, once the envelope has been
    /// checked (`None` before).
    pub fn manifest(&self) -> Option<&Manifest> {
        self.approved.as_ref().map(|a| &a.manifest)
    }

    /// Where the install stands.
    pub fn progress(&self) -> Progress {
        let (stage, chunks_done, chunks_total, written) = match &self.phase {
            Phase::Envelope { .. } | Phase::Failed(_) => (Stage::Envelope, 0, None, 0),
            Phase::Index { .. } => (Stage::Index, 0, None, 0),
            Phase::Chunks(c) => (Stage::Chunks, c.index, Some(c.count), c.written),
            Phase::Complete(i) => (Stage::Complete, i.chunks, Some(i.chunks), i.new_size),
        };
        Progress {
            stage,
            consumed: self.consumed,
            bundle_len: self
                .approved
                .as_ref()
                .and_then(|a| a.prefix_len.checked_add(a.payload_len)),
            chunks_done,
            chunks_total,
            written,
        }
    }

    /// Consumes the next `piece` of the bundle (any length, including 0).
    /// Reads `old` to check the precursor and to apply chunks; appends
    /// verified chunk outputs to `sink`.
    pub fn feed<O, S>(
        &mut self,
        piece: &[u8],
        old: &mut O,
        sink: &mut S,
    ) -> Result<Progress, StreamError>
    where
        O: OldImage + ?Sized,
        S: ImageSink + ReadBack + ?Sized,
    {
        if let Phase::Failed(e) = self.phase {
            return Err(e);
        }
        match self.run(piece, old, sink) {
            Ok(()) => Ok(self.progress()),
            Err(e) => {
                // Drop every buffer; the installer only reports the error from now on.
                self.phase = Phase::Failed(e);
                self.approved = None;
                Err(e)
            }
        }
    }

    /// Ends the stream: succeeds only if the whole bundle arrived and every
    /// check passed.
    pub fn finish(self) -> Result<Installed, StreamError> {
        match self.phase {
            Phase::Complete(installed) => Ok(installed),
            Phase::Failed(e) => Err(e),
            _ => Err(StreamError::Truncated),
        }
    }

    fn run<O, S>(&mut self, mut piece: &[u8], old: &mut O, sink: &mut S) -> Result<(), StreamError>
    where
        O: OldImage + ?Sized,
        S: ImageSink + ReadBack + ?Sized,
    {
        loop {
            let (taken, progressed) = self.step(piece, old, sink)?;
            piece = piece.get(taken..).unwrap_or_default();
            self.consumed = self
                .consumed
                .checked_add(taken as u64)
                .ok_or(StreamError::Decode(DecodeError::TooLarge))?;
            if taken == 0 && !progressed {
                return Ok(());
            }
        }
    }

    /// One step: consumes some of `piece` and/or makes one transition that
    /// needs no input. Returns the bytes consumed and whether a transition
    /// happened.
    fn step<O, S>(
        &mut self,
        piece: &[u8],
        old: &mut O,
        sink: &mut S,
    ) -> Result<(usize, bool), StreamError>
    where
        O: OldImage + ?Sized,
        S: ImageSink + ReadBack + ?Sized,
    {
        match &mut self.phase {
            Phase::Failed(e) => Err(*e),
            Phase::Complete(_) => {
                if piece.is_empty() {
                    Ok((0, false))
                } else {
                    Err(StreamError::Decode(DecodeError::TrailingBytes))
                }
            }
            Phase::Envelope { buf, need } => {
                if piece.is_empty() {
                    return Ok((0, false));
                }
                let want = need.saturating_sub(buf.len());
                let take = piece.get(..want.min(piece.len())).unwrap_or_default();
                buf.extend_from_slice(take);
                if buf.len() < *need {
                    return Ok((take.len(), false));
                }
                match decode_prefix(buf, false) {
                    Err(PrefixError::NeedMore(n)) => {
                        if n > MAX_ENVELOPE_PREFIX {
                            return Err(StreamError::Decode(DecodeError::TooLarge));
                        }
                        *need = n.max(buf.len().saturating_add(1));
                        let more = need.saturating_sub(buf.len());
                        buf.try_reserve_exact(more)
                            .map_err(|_| StreamError::OutOfMemory)?;
                        Ok((take.len(), false))
                    }
                    Err(PrefixError::Decode(e)) => Err(StreamError::Decode(e)),
                    Ok(prefix) => {
                        let prefix_len = prefix.len as u64;
                        let payload_len = prefix.payload_len;
                        let authenticated = prefix
                            .bundle
                            .authenticate_root(self.trust)
                            .map_err(StreamError::Signature)?;
                        let signers = authenticated.verified_kids().len();
                        let approved = authenticated
                            .approve(&self.policy)
                            .map_err(StreamError::Policy)?;
                        let manifest = approved.manifest().clone();
                        let payload = |e| StreamError::Update(UpdateError::Payload(e));
                        let payload_len =
                            payload_len.ok_or(payload(PolicyError::PayloadMissing))?;
                        if u64::try_from(payload_len).ok() != Some(manifest.patch.size) {
                            return Err(payload(PolicyError::PayloadSizeMismatch));
                        }
                        if old.len() != manifest.precursor.size {
                            return Err(StreamError::Update(UpdateError::PrecursorMismatch));
                        }
                        if manifest.patch.size < HEADER_LEN as u64 {
                            return Err(PatchError::Truncated.into());
                        }
                        self.approved = Some(ApprovedState {
                            payload_len: manifest.patch.size,
                            manifest,
                            signers,
                            prefix_len,
                            payload_seen: 0,
                            payload_hash: Sha256::new(),
                        });
                        let mut buf = Vec::new();
                        buf.try_reserve_exact(HEADER_LEN)
                            .map_err(|_| StreamError::OutOfMemory)?;
                        self.phase = Phase::Index { buf, total: None };
                        Ok((take.len(), true))
                    }
                }
            }
            Phase::Index { buf, total } => {
                let approved = self.approved.as_mut().ok_or(StreamError::Truncated)?;
                let need = total.unwrap_or(HEADER_LEN);
                let take = take_payload(approved, piece, need.saturating_sub(buf.len()))?;
                buf.extend_from_slice(take);
                if buf.len() < need {
                    return Ok((take.len(), false));
                }
                if total.is_none() {
                    let len = index_len(buf, &self.limits).ok_or(PatchError::Truncated)??;
                    if len as u64 > approved.payload_len {
                        return Err(PatchError::Truncated.into());
                    }
                    *total = Some(len);
                    let more = len.saturating_sub(buf.len());
                    buf.try_reserve_exact(more)
                        .map_err(|_| StreamError::OutOfMemory)?;
                    return Ok((take.len(), true));
                }
                // Taken out of the phase so it is freed as soon as it is decoded.
                let index = core::mem::take(buf);
                let chunks =
                    open_chunks_phase(&self.limits, self.resume_from, approved, index, old, sink)?;
                self.phase = Phase::Chunks(chunks);
                Ok((take.len(), true))
            }
            Phase::Chunks(c) => {
                let approved = self.approved.as_mut().ok_or(StreamError::Truncated)?;
                if c.index >= c.count {
                    // Every chunk is done: the payload must be too.
                    if !piece.is_empty() {
                        return Err(StreamError::Decode(DecodeError::TrailingBytes));
                    }
                    let installed = finalize(approved, c, self.resume_from)?;
                    self.phase = Phase::Complete(installed);
                    return Ok((0, true));
                }
                let entry = usize::try_from(c.index)
                    .ok()
                    .and_then(|i| c.header.chunks.get(i))
                    .copied()
                    .ok_or(PatchError::MalformedChunk { chunk: c.index })?;
                let skipped = c.index < self.resume_from;
                if c.seen == 0 && !skipped && c.body.is_empty() {
                    // One body at a time, bounded by the declared memory:
                    // stored <= 32 + decoded stream lengths <= 32 + decoder_memory.
                    let bound = c
                        .header
                        .decoder_memory
                        .checked_add(CHUNK_BODY_HEADER_LEN as u64);
                    if bound.is_none_or(|b| entry.stored_len > b) {
                        return Err(PatchError::MalformedChunk { chunk: c.index }.into());
                    }
                    let len = usize::try_from(entry.stored_len)
                        .map_err(|_| PatchError::MalformedChunk { chunk: c.index })?;
                    if len > c.body.capacity() {
                        // Free the smaller old buffer first: never hold both.
                        c.body = Vec::new();
                    }
                    c.body
                        .try_reserve_exact(len)
                        .map_err(|_| StreamError::OutOfMemory)?;
                }
                let left = entry.stored_len.saturating_sub(c.seen);
                let left = usize::try_from(left).unwrap_or(usize::MAX);
                let take = take_payload(approved, piece, left)?;
                if skipped {
                    c.skip_hash.update(take);
                } else {
                    c.body.extend_from_slice(take);
                }
                c.seen = c
                    .seen
                    .checked_add(take.len() as u64)
                    .ok_or(PatchError::BodyLengthMismatch)?;
                if c.seen < entry.stored_len {
                    return Ok((take.len(), false));
                }
                if skipped {
                    let d: [u8; 32] = core::mem::take(&mut c.skip_hash).finalize().into();
                    if d != entry.stored_digest {
                        return Err(PatchError::ChunkDigestMismatch { chunk: c.index }.into());
                    }
                } else {
                    let out = c.applier.run_body(&c.header, c.index, &c.body, old)?;
                    c.new_hash.update(out);
                    sink.write(out)?;
                    c.written = c
                        .written
                        .checked_add(out.len() as u64)
                        .ok_or(PatchError::OutputTooLarge)?;
                    c.body.clear();
                }
                c.seen = 0;
                c.index = c.index.checked_add(1).ok_or(PatchError::TooManyChunks {
                    count: u32::MAX,
                    limit: self.limits.max_chunks,
                })?;
                Ok((take.len(), true))
            }
        }
    }
}

/// The index has arrived: authenticate it, decode it, check it against
/// the manifest, check the old image and the resume point.
fn open_chunks_phase<O, S>(
    limits: &Limits,
    resume_from: u32,
    approved: &ApprovedState,
    index: Vec<u8>,
    old: &mut O,
    sink: &mut S,
) -> Result<Box<Chunks>, StreamError>
where
    O: OldImage + ?Sized,
    S: ImageSink + ReadBack + ?Sized,
{
    let manifest = &approved.manifest;
    if sha256(&index) != manifest.patch.index_digest {
        return Err(StreamError::Update(UpdateError::PatchManifestMismatch));
    }
    let header = PatchHeader::decode_index(&index, approved.payload_len, limits)?;
    // The raw index is not needed once decoded: free it before the old
    // image is hashed (memory_bound counts it only while it is parsed).
    drop(index);
    if header.precursor() != manifest.precursor || header.target() != manifest.target {
        return Err(StreamError::Update(UpdateError::PatchManifestMismatch));
    }
    check_old(old, &header).map_err(|e| match e {
        PatchError::OldImageMismatch => StreamError::Update(UpdateError::PrecursorMismatch),
        other => other.into(),
    })?;
    let count = u32::try_from(header.chunks.len()).map_err(|_| PatchError::TooManyChunks {
        count: u32::MAX,
        limit: limits.max_chunks,
    })?;
    if resume_from > count {
        return Err(StreamError::ResumeBeyondEnd {
            done: resume_from,
            total: count,
        });
    }
    let mut chunks = Box::new(Chunks {
        header,
        count,
        index: 0,
        seen: 0,
        body: Vec::new(),
        skip_hash: Sha256::new(),
        applier: ChunkApplier::new(),
        new_hash: Sha256::new(),
        written: 0,
    });
    if resume_from > 0 {
        check_written(&mut chunks, resume_from, sink)?;
    }
    Ok(chunks)
}

/// Up to `max` bytes of `piece`, all within the payload; hashes them into
/// the whole-payload digest.
fn take_payload<'p>(
    approved: &mut ApprovedState,
    piece: &'p [u8],
    max: usize,
) -> Result<&'p [u8], StreamError> {
    let left = approved.payload_len.saturating_sub(approved.payload_seen);
    if left == 0 && !piece.is_empty() {
        return Err(StreamError::Decode(DecodeError::TrailingBytes));
    }
    let n = usize::try_from(left)
        .unwrap_or(usize::MAX)
        .min(max)
        .min(piece.len());
    let take = piece.get(..n).unwrap_or_default();
    approved.payload_hash.update(take);
    approved.payload_seen = approved
        .payload_seen
        .checked_add(n as u64)
        .ok_or(StreamError::Decode(DecodeError::TooLarge))?;
    Ok(take)
}

/// Reads back chunks `0..done` from the sink, checks each against its
/// output digest, and feeds them into the new-image digest.
fn check_written<S: ReadBack + ?Sized>(
    c: &mut Chunks,
    done: u32,
    sink: &mut S,
) -> Result<(), StreamError> {
    let mut buf = Vec::new();
    let piece = READ_BACK_PIECE.min(usize::try_from(c.header.chunk_size).unwrap_or(usize::MAX));
    buf.try_reserve_exact(piece)
        .map_err(|_| StreamError::OutOfMemory)?;
    buf.resize(piece, 0);
    let mut offset: u64 = 0;
    for chunk in 0..done {
        let mismatch = StreamError::ResumeMismatch { chunk };
        let out_len = c.header.chunk_output_len(chunk).ok_or(mismatch)?;
        let entry = usize::try_from(chunk)
            .ok()
            .and_then(|i| c.header.chunks.get(i))
            .ok_or(mismatch)?;
        let mut h = Sha256::new();
        let end = offset.checked_add(out_len).ok_or(mismatch)?;
        while offset < end {
            let n = end.saturating_sub(offset).min(piece as u64);
            let b = buf
                .get_mut(..usize::try_from(n).map_err(|_| mismatch)?)
                .ok_or(mismatch)?;
            sink.read_back(offset, b)?;
            h.update(&*b);
            c.new_hash.update(&*b);
            offset = offset.checked_add(n).ok_or(mismatch)?;
        }
        let d: [u8; 32] = h.finalize().into();
        if d != entry.output_digest {
            return Err(mismatch);
        }
    }
    c.written = offset;
    Ok(())
}

/// All chunks done and the payload complete: the whole-payload digest and
/// the new image's size and digest.
fn finalize(
    approved: &mut ApprovedState,
    c: &mut Chunks,
    resumed: u32,
) -> Result<Installed, StreamError> {
    if approved.payload_seen != approved.payload_len {
        return Err(PatchError::BodyLengthMismatch.into());
    }
    let payload: [u8; 32] = core::mem::take(&mut approved.payload_hash)
        .finalize()
        .into();
    if payload != approved.manifest.patch.digest {
        return Err(StreamError::Update(UpdateError::Payload(
            PolicyError::PayloadDigestMismatch,
        )));
    }
    let new: [u8; 32] = core::mem::take(&mut c.new_hash).finalize().into();
    if c.written != c.header.new_size || new != c.header.new_digest {
        return Err(PatchError::NewImageMismatch.into());
    }
    Ok(Installed {
        sequence: approved.manifest.sequence,
        new_size: c.written,
        new_digest: new,
        chunks: c.count,
        resumed_chunks: resumed,
        decoder_memory: c.header.decoder_memory,
        signers: approved.signers,
        bundle_len: approved
            .prefix_len
            .checked_add(approved.payload_len)
            .ok_or(StreamError::Decode(DecodeError::TooLarge))?,
    })
}
