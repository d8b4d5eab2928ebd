//! The deltaseal delta engine: suffix-array matching and chunked patch encoding.
//!
//! [`diff`] turns an old and a new image into a patch in the v1 format that
//! `deltaseal_verify::patch` reads (spec: `docs/format.md`). It does not sign
//! anything and does no I/O: callers hand it two byte slices.
//!
//! ```text
//! old ─► suffix array (libsais, once, shared read-only)
//! new ─► chunks ─► per chunk, in parallel: bsdiff matching ─► ctrl/diff/extra streams
//!                                            ─► zstd per stream ─► chunk body
//! header + chunk table + bodies ─► patch
//! ```
//!
//! Output is deterministic: the same inputs and options give the same bytes,
//! whatever the thread count.
//!
//! ```
//! use deltaseal_diff::{diff, DiffOptions};
//! use deltaseal_verify::patch::{apply_to_vec, Limits};
//!
//! let old = b"hello old world, hello old world".to_vec();
//! let new = b"hello new world, hello new world!".to_vec();
//! let patch = diff(&old, &new, &DiffOptions::default())?;
//! assert_eq!(apply_to_vec(&old, &patch, &Limits::default())?, new);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Modules
//! - `sa`: suffix array construction (i32 indices below 2 GiB, i64 above)
//!   and longest-match search.
//! - `matcher`: bsdiff-style matching of one new-image chunk against old.
//! - `encode`: varint control stream, per-stream compression, patch assembly.
//! - [`bsdiff40`]: BSDIFF40 (bsdiff 4.3) export and hostile-input-safe import.
//!
//! # Memory
//! About 5.5 bytes per old byte, 1 per new byte, a 68 MB bucket table and
//! 45 MB per thread at the default level (docs/architecture.md, "Diff
//! memory and threads").

pub mod bsdiff40;
mod detect;
mod encode;
mod matcher;
mod sa;

pub use deltaseal_verify::patch::{Codec, Transform};
pub use detect::detect_transform;
pub use encode::{diff, diff_with_codec};

/// Compression effort.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Level {
    /// zstd level 3: quick, larger patches.
    Fast,
    /// zstd level 18, literals compressed against 512 KiB of the old image.
    #[default]
    Default,
    /// Smallest patches: xz (LZMA2, preset 9e) streams in 8 MiB chunks when
    /// the `xz` feature is on (host appliers only), else zstd level 22
    /// (ultra). With xz, [`diff`] returns the `Default` level's patch where
    /// that is smaller, so `Max` is never larger than `Default`.
    Max,
}

impl Level {
    /// zstd compression level used for this effort.
    ///
    /// The default level is 18, not 19: level 19's optimal parser (btultra2:
    /// 256-byte target length, the first block parsed twice) spent 6 to 7 s
    /// of CPU on the mostly-zero diff streams of kernel-vmlinux, level 18
    /// 2.3 s, for patches 1.7% larger (exe-ruff 1.3%); on the extra stream
    /// the two compress alike (2026-11-26).
    pub fn zstd_level(self) -> i32 {
        match self {
            Level::Fast => 3,
            Level::Default => 18,
            Level::Max => 22,
        }
    }

    /// [`DiffOptions::extra_reference`] at this level: 1 MiB for `Max`,
    /// 512 KiB otherwise. The half-size reference took half to two thirds
    /// off the time to compress the extra streams (kernel-vmlinux 5.5 ->
    /// 2.3 s of CPU, exe-ruff 6.5 -> 3.9 s) for patches 0.9% and 2.1%
    /// larger, and needs 1 MiB less apply memory per chunk (2026-11-26).
    /// Without any reference the default patches were 2.5% and 5.1% larger
    /// (measured before the branch transforms).
    pub fn extra_reference(self) -> u32 {
        match self {
            Level::Max => 1 << 20,
            _ => 512 << 10,
        }
    }

    /// Codec [`diff`] writes at this level: xz for `Max` with the `xz`
    /// feature, zstd otherwise.
    pub fn codec(self) -> Codec {
        #[cfg(feature = "xz")]
        if self == Level::Max {
            return Codec::Xz;
        }
        Codec::Zstd
    }

    /// Chunk size callers should use at this level: [`MAX_LEVEL_CHUNK_SIZE`]
    /// for `Max` with the `xz` feature (larger compression context, about
    /// 26 MiB of apply memory), else the 1 MiB default (about 5 MiB).
    pub fn chunk_size(self) -> u32 {
        if self.codec() == Codec::Zstd {
            deltaseal_verify::patch::DEFAULT_CHUNK_SIZE
        } else {
            MAX_LEVEL_CHUNK_SIZE
        }
    }
}

/// Chunk size of `--level max` patches (see [`Level::chunk_size`]).
pub const MAX_LEVEL_CHUNK_SIZE: u32 = 8 << 20;

/// Options for [`diff`]. Use [`DiffOptions::for_level`] to get a level's
/// chunk size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiffOptions {
    /// Compression effort.
    pub level: Level,
    /// Worker threads for matching and compression (0 is treated as 1).
    /// Does not change the output.
    pub threads: usize,
    /// Output bytes per chunk; bounds apply memory (about 5 × chunk size for zstd).
    pub chunk_size: u32,
    /// Bytes of the old image each chunk's extra (literal) stream is
    /// compressed against (zstd only; 0 for none): the literals the matcher
    /// left can then copy short runs from the old image near the chunk.
    /// At most `chunk_size` is used, so apply memory stays proportional to
    /// the chunk size; applying a chunk costs twice the reference.
    pub extra_reference: u32,
    /// Branch-target prediction for the diff streams: `None` picks it from
    /// the new image's headers ([`detect_transform`]); `Some` forces one
    /// (`Some(Transform::None)`: plain version-3 patches).
    pub transform: Option<Transform>,
}

impl Default for DiffOptions {
    /// Default level, all available cores, 1 MiB chunks.
    fn default() -> Self {
        DiffOptions {
            level: Level::Default,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            chunk_size: deltaseal_verify::patch::DEFAULT_CHUNK_SIZE,
            extra_reference: Level::Default.extra_reference(),
            transform: None,
        }
    }
}

impl DiffOptions {
    /// Defaults for `level`, with that level's chunk size ([`Level::chunk_size`]).
    pub fn for_level(level: Level) -> Self {
        DiffOptions {
            level,
            chunk_size: level.chunk_size(),
            extra_reference: level.extra_reference(),
            ..DiffOptions::default()
        }
    }
}

/// Chunk size of the `mcu` profile ([`DiffOptions::mcu`]): with 4 KiB the
/// declared memory of the MCU corpus patches is 47 KB and an install's
/// bound 55 KB; with 8 KiB the bound was 68 to 77 KB, over a 64 KiB heap.
pub const MCU_CHUNK_SIZE: u32 = 4 << 10;

impl DiffOptions {
    /// The `mcu` profile (`deltaseal diff|release --profile mcu`): patches
    /// a microcontroller installs within 64 KiB of heap with
    /// `deltaseal_verify::stream`, declared in the patch header so the
    /// device can check it first. zstd at the default level in
    /// [`MCU_CHUNK_SIZE`] chunks: each stream's frame is pledged at its own
    /// length, so no zstd window exceeds the chunk size, and the decoder
    /// holds one small chunk at a time. Costs some patch size (per-chunk
    /// overhead, less compression context); see docs/format.md.
    pub fn mcu() -> Self {
        DiffOptions {
            level: Level::Default,
            chunk_size: MCU_CHUNK_SIZE,
            extra_reference: 0,
            ..DiffOptions::default()
        }
    }
}

/// Why a patch could not be built.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// `chunk_size` is zero.
    #[error("chunk size must be at least 1")]
    ZeroChunkSize,
    /// The new image needs more than `u32::MAX` chunks at this chunk size.
    #[error("too many chunks ({chunks}); use a larger chunk size")]
    TooManyChunks {
        /// Chunks needed.
        chunks: u64,
    },
    /// The old image is too large for the suffix array on this platform.
    #[error("old image too large ({size} bytes)")]
    OldTooLarge {
        /// Old image size.
        size: u64,
    },
    /// Suffix array construction failed.
    #[error("suffix array construction failed: {reason}")]
    SuffixArray {
        /// libsais failure kind.
        reason: &'static str,
    },
    /// A stream failed to compress.
    #[error("compression failed")]
    Compress(#[source] std::io::Error),
    /// Memory for a chunk's branch-target predictor could not be allocated.
    #[error("out of memory")]
    OutOfMemory,
    /// A worker thread panicked.
    #[error("worker thread panicked")]
    Worker,
}
