//! The patch format: header and chunk table decoding, and streaming apply.
//!
//! A patch turns an *old* image into a *new* one. It is cut into independent
//! chunks: chunk `i` produces `new[i * chunk_size .. min((i + 1) * chunk_size, new_size)]`
//! from random reads of the old image, so chunks can be applied in parallel or
//! resumed at a chunk boundary. The byte-level layout is specified in
//! `docs/format.md`; this module is its reference reader.
//!
//! ```text
//! [header 112 B][chunk table: 72 B per chunk][chunk 0 body][chunk 1 body]...
//! ```
//!
//! Authentication: [`index_digest`] (SHA-256 of header + chunk table) goes in the
//! signed manifest. The table holds every chunk's stored-bytes digest, so the
//! applier checks each chunk body against the table *before* parsing it.
//!
//! ```
//! use deltaseal_verify::patch::{apply_to_vec, Limits, PatchHeader};
//! # fn demo(old: &[u8], patch: &[u8]) -> Result<(), deltaseal_verify::patch::PatchError> {
//! let limits = Limits::default();
//! let header = PatchHeader::decode(patch, &limits)?;
//! println!("needs {} bytes of decoder memory", header.decoder_memory);
//! let new = apply_to_vec(old, patch, &limits)?;
//! assert_eq!(new.len() as u64, header.new_size);
//! # Ok(()) }
//! ```

use alloc::vec::Vec;

mod apply;
mod header;
#[cfg(test)]
mod tests;
mod transform;
mod zstd_frame;

pub(crate) use apply::check_old;
#[cfg(feature = "std")]
pub use apply::{ApplyOptions, OldImageCheck, apply_parallel, apply_parallel_from};
pub use apply::{
    ApplySummary, ChunkApplier, ImageIoError, ImageSink, OldImage, SliceImage, ZstdDecoder, apply,
    apply_to_vec,
};
pub(crate) use header::index_len;
pub use header::{
    CHUNK_BODY_HEADER_LEN, CHUNK_ENTRY_LEN, ChunkBodyHeader, ChunkEntry, HEADER_LEN, PatchHeader,
    chunk_memory, index_digest, xz_reference_dictionary,
};
pub use transform::{Field, Predictor, Transform};

/// The 8 magic bytes every patch starts with (all versions).
pub const MAGIC: [u8; 8] = *b"DSLPATCH";

/// The magic of a recompressing patch (crate `deltaseal-recompress`, host
/// appliers only; docs/format.md): this reader refuses it as
/// [`PatchError::Recompressing`], so a device says why it cannot apply one.
pub const RECOMPRESSING_MAGIC: [u8; 8] = *b"DSLRECMP";

/// The newest format version: version 4 is version 3 with header byte 11
/// naming a [`Transform`] (branch-target prediction) where version 3 has a
/// zero. Writers write version 3 for patches without a transform, so
/// version-3 readers keep reading those; this reader reads both. Version 3
/// added the extra stream's old-image reference to the chunk body header
/// (44 bytes); version 2 (32-byte body header) and version 1 (a fixed zstd
/// memory allowance that was not a true bound) are refused.
pub const FORMAT_VERSION: u16 = 4;

/// The oldest format version this reader accepts (see [`FORMAT_VERSION`]).
pub const OLDEST_FORMAT_VERSION: u16 = 3;

/// Default chunk size chosen by writers: 1 MiB, which keeps apply memory
/// around 5.3 MiB whatever the image size (see [`chunk_memory`]).
pub const DEFAULT_CHUNK_SIZE: u32 = 1 << 20;

/// Fixed allowance for the xz (LZMA2) decoder's state beyond its dictionary,
/// counted in [`chunk_memory`] for every chunk of an xz patch; also the slack
/// over the window `W` given to the decoder's memory limit.
pub const XZ_DECODER_OVERHEAD: u64 = 1 << 20;

/// Compression codec of every stream in every chunk of a patch.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Streams are stored as-is (id 0).
    None,
    /// Streams are single zstd frames (RFC 8878), id 1, unless stored (see format.md).
    Zstd,
    /// Streams are single .xz streams (LZMA2, no check), id 2, unless stored.
    /// Host-side only: needs the `xz` feature (C liblzma); readers without it
    /// reject id 2 as [`PatchError::UnknownCodec`].
    #[cfg(feature = "xz")]
    Xz,
}

impl Codec {
    /// Wire id of the codec (id 2 is xz/LZMA2, see [`Codec::Xz`]).
    pub fn id(self) -> u8 {
        match self {
            Codec::None => 0,
            Codec::Zstd => 1,
            #[cfg(feature = "xz")]
            Codec::Xz => 2,
        }
    }

    /// Codec for a wire id, or `None` if this reader does not know it.
    pub fn from_id(id: u8) -> Option<Codec> {
        match id {
            0 => Some(Codec::None),
            1 => Some(Codec::Zstd),
            #[cfg(feature = "xz")]
            2 => Some(Codec::Xz),
            _ => None,
        }
    }
}

/// Resource limits the applier enforces before doing any work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted declared new image size in bytes.
    pub max_new_size: u64,
    /// Largest accepted declared old image size in bytes.
    pub max_old_size: u64,
    /// Largest accepted declared decoder memory (`PatchHeader::decoder_memory`).
    pub max_decoder_memory: u64,
    /// Largest accepted chunk count (bounds the chunk table allocation).
    pub max_chunks: u32,
    /// Largest accepted chunk size.
    pub max_chunk_size: u32,
}

impl Default for Limits {
    /// Host-friendly limits: images up to 2^40 bytes, 64 MiB of decoder
    /// memory, chunks up to 16 MiB, up to 2^24 chunks.
    fn default() -> Self {
        Limits {
            max_new_size: 1 << 40,
            max_old_size: 1 << 40,
            max_decoder_memory: 64 << 20,
            max_chunks: 1 << 24,
            max_chunk_size: 16 << 20,
        }
    }
}

impl Limits {
    /// Limits for a small device: images up to 16 MiB, chunks up to 16 KiB,
    /// at most 64 KiB of declared decoder memory (a `--profile mcu` patch, 4
    /// KiB chunks with zstd, declares 45 to 50 KiB), at most 1024 chunks (the
    /// reference reader keeps the 72-byte-per-chunk table in memory: 72 KiB).
    pub fn mcu() -> Self {
        Limits {
            max_new_size: 16 << 20,
            max_old_size: 16 << 20,
            max_decoder_memory: 64 << 10,
            max_chunks: 1024,
            max_chunk_size: 16 << 10,
        }
    }
}

/// Why a patch was rejected. Every variant is a hard failure; nothing has been
/// written for errors raised before the first chunk is applied.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch does not start with [`MAGIC`].
    #[error("not a deltaseal patch (bad magic)")]
    BadMagic,
    /// The patch is a recompressing patch (magic `DSLRECMP`, crate
    /// `deltaseal-recompress`): it re-encodes LZMA streams on apply, which
    /// only host appliers do.
    #[error(
        "a recompressing patch (LZMA streams re-encoded on apply): host appliers only (`deltaseal apply`, `deltaseal verify`)"
    )]
    Recompressing,
    /// The format version is not [`FORMAT_VERSION`].
    #[error(
        "unsupported patch format version {found} (this reader reads versions {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION}; re-create the patch with this deltaseal)"
    )]
    UnsupportedVersion {
        /// Version found in the header.
        found: u16,
    },
    /// The codec id is unknown to this reader.
    #[error("unknown codec id {id}")]
    UnknownCodec {
        /// Codec id found in the header.
        id: u8,
    },
    /// The transform id (version 4, header byte 11) is unknown to this
    /// reader, or 0 (a patch without a transform is version 3).
    #[error("unknown transform id {id}")]
    UnknownTransform {
        /// Transform id found in the header.
        id: u8,
    },
    /// A reserved header field is not zero.
    #[error("reserved header field is not zero")]
    ReservedNotZero,
    /// The patch ends inside the header or chunk table.
    #[error("patch is truncated")]
    Truncated,
    /// Chunk bodies do not add up to exactly the bytes after the chunk table.
    #[error("chunk bodies do not match the patch length")]
    BodyLengthMismatch,
    /// `chunk_size` is zero or over `limits.max_chunk_size`.
    #[error("invalid chunk size {chunk_size}")]
    BadChunkSize {
        /// Declared chunk size.
        chunk_size: u32,
    },
    /// The chunk count is not `ceil(new_size / chunk_size)`.
    #[error("chunk count {found} does not match new size (expected {expected})")]
    ChunkCountMismatch {
        /// Declared chunk count.
        found: u32,
        /// Count implied by `new_size` and `chunk_size`.
        expected: u64,
    },
    /// More chunks than `limits.max_chunks`.
    #[error("too many chunks: {count} (limit {limit})")]
    TooManyChunks {
        /// Declared chunk count.
        count: u32,
        /// Configured limit.
        limit: u32,
    },
    /// The declared new or old size is over the limits.
    #[error("declared image size over the limit")]
    OutputTooLarge,
    /// The header declares more decoder memory than the limit allows.
    #[error("declared decoder memory {declared} over the limit {limit}")]
    DecoderMemoryOverLimit {
        /// Declared decoder memory in bytes.
        declared: u64,
        /// Configured limit in bytes.
        limit: u64,
    },
    /// A chunk needs more memory than the header declared.
    #[error("chunk {chunk} needs more memory than declared")]
    ChunkMemoryOverDeclared {
        /// Chunk index.
        chunk: u32,
    },
    /// The old image has the wrong size or digest.
    #[error("old image does not match the patch (size or digest)")]
    OldImageMismatch,
    /// A chunk's stored bytes do not match the digest in the chunk table.
    #[error("chunk {chunk} stored digest mismatch")]
    ChunkDigestMismatch {
        /// Chunk index.
        chunk: u32,
    },
    /// A chunk body is malformed (bad stream lengths, trailing bytes).
    #[error("chunk {chunk} is malformed")]
    MalformedChunk {
        /// Chunk index.
        chunk: u32,
    },
    /// A stream of a chunk failed to decompress to exactly its declared length.
    #[error("chunk {chunk} failed to decompress")]
    Decompress {
        /// Chunk index.
        chunk: u32,
    },
    /// A control triple is malformed (bad varint, arithmetic overflow).
    #[error("chunk {chunk} has a malformed control stream")]
    BadControl {
        /// Chunk index.
        chunk: u32,
    },
    /// The control stream would read outside the old image.
    #[error("chunk {chunk} reads outside the old image")]
    OldReadOutOfBounds {
        /// Chunk index.
        chunk: u32,
    },
    /// The control stream would write past the chunk's output.
    #[error("chunk {chunk} overruns its output")]
    OutputOverrun {
        /// Chunk index.
        chunk: u32,
    },
    /// The chunk ended before producing all its output or consuming all its streams.
    #[error("chunk {chunk} ends early or leaves unused data")]
    ChunkIncomplete {
        /// Chunk index.
        chunk: u32,
    },
    /// A chunk's output does not match its digest in the chunk table.
    #[error("chunk {chunk} output digest mismatch")]
    OutputDigestMismatch {
        /// Chunk index.
        chunk: u32,
    },
    /// The whole new image does not match the declared digest.
    #[error("new image digest mismatch")]
    NewImageMismatch,
    /// Reading the old image or writing the new one failed.
    #[error("image i/o failed")]
    Io(#[source] ImageIoError),
    /// A buffer of the declared size could not be allocated.
    #[error("out of memory")]
    OutOfMemory,
}

impl From<ImageIoError> for PatchError {
    fn from(e: ImageIoError) -> Self {
        PatchError::Io(e)
    }
}

/// Try to allocate a zeroed buffer of `len` bytes without aborting on failure.
pub(crate) fn try_zeroed(len: usize) -> Result<Vec<u8>, PatchError> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| PatchError::OutOfMemory)?;
    v.resize(len, 0);
    Ok(v)
}
