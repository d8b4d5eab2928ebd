//! Chunk bodies (varint control, diff and extra streams, compression) and
//! patch assembly.

use core::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use deltaseal_verify::digest::sha256;
use deltaseal_verify::patch::{
    ChunkBodyHeader, ChunkEntry, Codec, PatchHeader, Predictor, Transform, chunk_memory,
};

use crate::matcher::{ChunkMatch, NEW_MATCH_MARGIN, Op, Searches, match_chunk};
use crate::sa::SuffixArray;
use crate::{DiffError, DiffOptions};

/// Build a patch turning `old` into `new` with the level's codec
/// ([`crate::Level::codec`]); returns the whole patch.
///
/// For an xz level the default level's zstd patch is built too (at the
/// default level's chunk size unless `opts` sets another), and the smaller
/// patch is returned, so `--level max` is never larger than `--level
/// default`. (Before xz extra streams had an old-image reference, the zstd
/// patch won on small images: mcu-moondancer xz 18,076 B, zstd 17,487 B;
/// now xz 15,643 B.)
///
/// An empty `old` gives a full-image patch (what `deltaseal release --full`
/// puts in a bundle for devices whose image is not known); it applies to
/// the empty image only:
///
/// ```
/// use deltaseal_diff::{diff, DiffOptions};
/// use deltaseal_verify::patch::{apply_to_vec, Limits};
///
/// let new = b"firmware 7: the whole image".repeat(100);
/// let full = diff(&[], &new, &DiffOptions::default())?;
/// assert!(full.len() < new.len()); // compressed
/// assert_eq!(apply_to_vec(&[], &full, &Limits::default())?, new);
/// assert!(apply_to_vec(b"any other image", &full, &Limits::default()).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn diff(old: &[u8], new: &[u8], opts: &DiffOptions) -> Result<Vec<u8>, DiffError> {
    let codec = opts.level.codec();
    let patch = diff_with_codec(old, new, opts, codec)?;
    if codec == Codec::Zstd {
        return Ok(patch);
    }
    let default = crate::Level::Default;
    let chunk_size = if opts.chunk_size == opts.level.chunk_size() {
        default.chunk_size()
    } else {
        opts.chunk_size
    };
    let zstd = DiffOptions {
        level: default,
        chunk_size,
        ..*opts
    };
    let zstd = diff_with_codec(old, new, &zstd, default.codec())?;
    Ok(if zstd.len() < patch.len() {
        zstd
    } else {
        patch
    })
}

/// Like [`diff`], with an explicit codec (`Codec::None` stores streams raw,
/// for appliers without a zstd decoder).
pub fn diff_with_codec(
    old: &[u8],
    new: &[u8],
    opts: &DiffOptions,
    codec: Codec,
) -> Result<Vec<u8>, DiffError> {
    if opts.chunk_size == 0 {
        return Err(DiffError::ZeroChunkSize);
    }
    let cs = opts.chunk_size as usize;
    let count = new.len().div_ceil(cs);
    if u32::try_from(count).is_err() {
        return Err(DiffError::TooManyChunks {
            chunks: count as u64,
        });
    }
    let sa = if count == 0 {
        SuffixArray::empty()
    } else {
        SuffixArray::build(old, opts.threads)?
    };

    let transform = opts
        .transform
        .unwrap_or_else(|| crate::detect_transform(new));
    let image_base = match transform {
        Transform::Thumb2 => crate::detect::image_base(new),
        _ => 0,
    };
    let job = Job {
        old,
        new,
        sa: &sa,
        codec,
        transform,
        image_base,
        opts,
        reference_len: match codec {
            Codec::None => 0,
            _ => opts.extra_reference.min(opts.chunk_size),
        },
    };
    let results = map_chunks(count, opts.threads, |i, w: &mut Worker| {
        let start = i * cs;
        let end = (start + cs).min(new.len());
        encode_chunk(&job, start, end, w)
    })?;

    let mut chunks = Vec::with_capacity(count);
    let mut bodies = Vec::with_capacity(count);
    let mut decoder_memory = 0u64;
    for e in results {
        decoder_memory = decoder_memory.max(e.memory);
        chunks.push(e.entry);
        bodies.push(e.body);
    }
    let header = PatchHeader {
        codec,
        transform,
        image_base,
        old_size: old.len() as u64,
        old_digest: sha256(old),
        new_size: new.len() as u64,
        new_digest: sha256(new),
        chunk_size: opts.chunk_size,
        decoder_memory,
        chunks,
    };
    let mut patch = header.encode();
    for b in bodies {
        patch.extend_from_slice(&b);
    }
    Ok(patch)
}

/// Runs `work(i, state)` for every chunk index in `0..count` on up to
/// `threads` workers, each with its own `state` (e.g. a reused compressor),
/// and returns the results in index order, or the first error in index
/// order. A worker stops at its first error. A single worker runs on the
/// calling thread: no spawn per diff (and no thread teardown racing a leak
/// checker, see docs/fuzzing.md).
pub(crate) fn map_chunks<T: Send, S: Default>(
    count: usize,
    threads: usize,
    work: impl Fn(usize, &mut S) -> Result<T, DiffError> + Sync,
) -> Result<Vec<T>, DiffError> {
    let threads = threads.clamp(1, count.max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<T, DiffError>>>> =
        Mutex::new((0..count).map(|_| None).collect());
    let worker = || {
        let mut state = S::default();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= count {
                break;
            }
            let r = work(i, &mut state);
            let failed = r.is_err();
            if let Ok(mut g) = results.lock() {
                g[i] = Some(r);
            }
            if failed {
                break;
            }
        }
    };
    if threads == 1 {
        worker();
    } else {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(worker);
            }
        });
    }
    let results = results.into_inner().map_err(|_| DiffError::Worker)?;
    results
        .into_iter()
        .map(|r| r.ok_or(DiffError::Worker)?)
        .collect()
}

struct Encoded {
    entry: ChunkEntry,
    body: Vec<u8>,
    memory: u64,
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn put_svarint(out: &mut Vec<u8>, v: i64) {
    put_varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Raw streams of one chunk.
struct Streams {
    ctrl: Vec<u8>,
    diff: Vec<u8>,
    extra: Vec<u8>,
}

/// The streams of the chunk `job.new[start..end]` matched as `m`, with the
/// diff stream's branch fields predicted by `job.transform`.
fn streams(job: &Job<'_>, start: usize, end: usize, m: &ChunkMatch) -> Result<Streams, DiffError> {
    let (old, chunk_new) = (job.old, &job.new[start..end]);
    let mut s = Streams {
        ctrl: Vec::new(),
        diff: Vec::with_capacity(chunk_new.len()),
        extra: Vec::new(),
    };
    for op in &m.ops {
        put_varint(&mut s.ctrl, op.add as u64);
        put_varint(&mut s.ctrl, op.extra as u64);
        put_svarint(&mut s.ctrl, op.seek);
    }
    let mut predictor = match job.transform {
        Transform::None => None,
        t => Some(
            Predictor::new(
                (t, job.image_base),
                &s.ctrl,
                m.old_offset as u64,
                start as u64,
                chunk_new.len() as u64,
            )
            .map_err(|_| DiffError::OutOfMemory)?,
        ),
    };
    let mut pos = m.old_offset as i64;
    let mut o = 0usize;
    for op in &m.ops {
        let p = pos as usize;
        let (old_region, new_region) = (&old[p..p + op.add], &chunk_new[o..o + op.add]);
        let d = s.diff.len();
        s.diff.extend(
            new_region
                .iter()
                .zip(old_region)
                .map(|(n, o)| n.wrapping_sub(*o)),
        );
        if let Some(pr) = &mut predictor {
            let at = (p as u64, old.len() as u64, (start + o) as u64);
            pr.encode_region(old_region, new_region, &mut s.diff[d..], at);
        }
        o += op.add;
        s.extra.extend_from_slice(&chunk_new[o..o + op.extra]);
        o += op.extra;
        pos += op.add as i64 + op.seek;
    }
    debug_assert_eq!(o, chunk_new.len());
    Ok(s)
}

type Compressor = zstd::bulk::Compressor<'static>;
use zstd::zstd_safe::{CCtx, CParameter};

/// zstd window of the streams compressed without a reference: 128 KiB (the
/// largest block). The applier's decoder holds one window, not the whole
/// stream: on kernel-vmlinux, apply `-j 2` peaked at 13.6 to 15.2 MiB RSS
/// instead of 15.1 to 17.6 MiB (2026-11-26), for patches 0.06% larger.
const STREAM_WINDOW_LOG: u32 = 17;

fn compress(
    codec: Codec,
    level: i32,
    z: &mut Option<Compressor>,
    raw: &[u8],
    window: u64,
) -> Result<Vec<u8>, DiffError> {
    if codec == Codec::None || raw.is_empty() {
        return Ok(raw.to_vec());
    }
    #[cfg(feature = "xz")]
    if codec == Codec::Xz {
        let packed = xz_compress(raw, window)?;
        return Ok(if packed.len() < raw.len() {
            packed
        } else {
            raw.to_vec()
        });
    }
    let c = match z {
        Some(c) => c,
        None => {
            let mut c = Compressor::new(level).map_err(DiffError::Compress)?;
            c.set_parameter(zstd::stream::raw::CParameter::WindowLog(STREAM_WINDOW_LOG))
                .map_err(DiffError::Compress)?;
            z.insert(c)
        }
    };
    let packed = c.compress(raw).map_err(DiffError::Compress)?;
    // Stored when compression does not strictly help (stored_len == len means raw).
    Ok(if packed.len() < raw.len() {
        packed
    } else {
        raw.to_vec()
    })
}

/// One .xz stream (LZMA2 preset 9e, dictionary `window`, no check) of `raw`.
#[cfg(feature = "xz")]
fn xz_compress(raw: &[u8], window: u64) -> Result<Vec<u8>, DiffError> {
    use liblzma::stream::{Action, Check, Filters, LzmaOptions, PRESET_EXTREME, Status, Stream};
    let err = |e: liblzma::stream::Error| DiffError::Compress(std::io::Error::other(e));
    let dict = u32::try_from(window).map_err(|_| DiffError::TooManyChunks { chunks: window })?;
    let mut opts = LzmaOptions::new_preset(9 | PRESET_EXTREME).map_err(err)?;
    opts.dict_size(dict);
    let mut filters = Filters::new();
    filters.lzma2(&opts);
    let mut s = Stream::new_stream_encoder(&filters, Check::None).map_err(err)?;
    let mut out = Vec::with_capacity(raw.len() / 2 + 4096);
    loop {
        let done = s.total_in() as usize;
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(4096));
        }
        if s.process_vec(&raw[done..], &mut out, Action::Finish)
            .map_err(err)?
            == Status::StreamEnd
        {
            return Ok(out);
        }
    }
}

/// Old-image range the extra stream of a chunk whose matching starts at
/// `old_offset` is compressed against: `len` bytes from `old_offset` (moved
/// back to fit in the old image), where the chunk's content came from.
/// Starting there beat starting an eighth, a quarter or half of `len` before
/// it, and the chunk's lowest or first-quartile add position (kernel-vmlinux
/// 3,095,906 B vs 3,102,964 / 3,104,943 / 3,123,700 / 3,131,317 /
/// 3,107,739; exe-ruff likewise). `None` for `len` 0 (no reference, or a
/// codec without references: [`Job::reference_len`]) or no literals.
fn extra_reference(
    raw_len: usize,
    old_len: usize,
    old_offset: usize,
    len: u32,
) -> Option<core::ops::Range<usize>> {
    let len = len as usize;
    if len == 0 || old_len == 0 || raw_len == 0 {
        return None;
    }
    let start = old_offset.min(old_len.saturating_sub(len));
    Some(start..start.saturating_add(len).min(old_len))
}

/// One zstd frame of `raw` compressed against `prefix` (a raw-content
/// prefix, RFC 8878 dictionary content without an ID): the applier decodes
/// it with the same old-image bytes as its dictionary. `cctx` is reused
/// across calls: a fresh context per call allocated and page-faulted its
/// match tables (tens of MiB at level 19) for every chunk.
fn compress_against<'a>(
    cctx: &mut Option<CCtx<'a>>,
    level: i32,
    raw: &[u8],
    prefix: &'a [u8],
) -> Result<Vec<u8>, DiffError> {
    let err = |code: usize| {
        DiffError::Compress(std::io::Error::other(zstd::zstd_safe::get_error_name(code)))
    };
    let c = match cctx {
        Some(c) => c,
        None => cctx.insert(CCtx::try_create().ok_or(DiffError::Compress(
            std::io::Error::other("zstd context allocation failed"),
        ))?),
    };
    c.set_parameter(CParameter::CompressionLevel(level))
        .map_err(err)?;
    // A prefix holds for the next frame only.
    c.ref_prefix(prefix).map_err(err)?;
    let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(raw.len()));
    c.compress2(&mut out, raw).map_err(err)?;
    Ok(out)
}

/// What every chunk's work reads: the images, the old image's suffix array,
/// the codec and options, and the extra stream reference length they give.
#[derive(Clone, Copy)]
struct Job<'a> {
    old: &'a [u8],
    new: &'a [u8],
    sa: &'a SuffixArray,
    codec: Codec,
    transform: Transform,
    /// Thumb-2's image base (0: no pointer fields).
    image_base: u32,
    opts: &'a DiffOptions,
    /// At most the chunk size; 0 for codecs without references.
    reference_len: u32,
}

/// A worker's state, reused across its chunks: zstd compressors at the
/// level's compression level and at [`proxy_level`], and the current
/// chunk's suffix array searches (shared by its [`MARGINS`] runs).
#[derive(Default)]
struct Worker<'a> {
    level: Option<Compressor>,
    proxy: Option<Compressor>,
    /// Context for frames against an old-image prefix, at either level.
    against: Option<CCtx<'a>>,
    searches: Searches,
}

/// Margins ([`crate::matcher`]) every chunk is matched with above the fast
/// level; the one whose streams compress smaller at [`proxy_level`] is
/// kept. No single margin suits every image (default level, bytes):
///
/// | margin | kernel-vmlinux | exe-ruff | moondancer | mcu profile: moondancer, cityhub |
/// |---|---:|---:|---:|---:|
/// | 8 (bsdiff's) | 3,078,086 | – | – | 22,814, 17,745 |
/// | 10 | 3,031,548 | – | – | – |
/// | 16 | 3,095,906 | 3,541,668 | 17,630 | 24,230, 18,536 |
/// | per chunk from 10, 16 | 3,028,812 | 3,534,871 | 17,665 | 23,330, 18,248 |
/// | per chunk from 8, 10, 16 | 3,029,617 | 3,532,337 | 17,454 | 22,814, 17,742 |
///
/// Three candidates cost about a quarter more diff time than two when each
/// ran its own suffix-array searches; sharing them ([`Searches`]) made the
/// second and third runs cheap (2026-11-26).
const MARGINS: [isize; 3] = [8, 10, 16];

/// zstd level that ranks the margins' streams at `level`. Level 9 picked
/// as well as level 19 (exe-ruff 3,534,871 vs 3,534,030 B) in a fraction
/// of the time; level 3 misranks (3,566,158 B). The default level ranks at
/// 5, as well as 9 there in half the time (kernel-vmlinux 2.8 -> 1.3 s of
/// CPU, exe-ruff 2.5 -> 1.4 s; patches 0.01 and 0.04% larger), but for
/// xz streams it misranks (exe-ruff `--level max` 0.6% larger; 2026-11-26).
fn proxy_level(level: crate::Level) -> i32 {
    match level {
        crate::Level::Max => 9,
        _ => 5,
    }
}

/// Match the chunk `new[start..end]`: with the one [`NEW_MATCH_MARGIN`] at
/// the fast level and for codec none, else with the [`MARGINS`] candidate
/// whose streams (the extra stream against the chunk's reference, as
/// `encode_chunk` will try) compress smallest at [`proxy_level`]; the
/// first on a tie. The candidates are ranked by their plain diff streams,
/// without the branch transform: as small (exe-ruff 3,010,535 B against
/// 3,012,281 ranked transformed; kernel-vmlinux 2,569,654 against
/// 2,569,453) for one transform pass per chunk instead of up to three
/// (exe-ruff 28.8 against 32.5 s of CPU at -j2, 2026-11-26).
fn best_match<'a>(
    job: &Job<'a>,
    start: usize,
    end: usize,
    w: &mut Worker<'a>,
) -> Result<ChunkMatch, DiffError> {
    let Job {
        old,
        new,
        sa,
        codec,
        opts,
        reference_len,
        ..
    } = *job;
    if opts.level == crate::Level::Fast || codec == Codec::None {
        let once = &mut Searches::once();
        return Ok(match_chunk(
            old,
            new,
            sa,
            start,
            end,
            NEW_MATCH_MARGIN,
            once,
        ));
    }
    let plain = Job {
        transform: Transform::None,
        ..*job
    };
    let mut best: Option<(usize, ChunkMatch)> = None;
    // Matchings already ranked: a margin that gives the same one again has
    // the same cost, and the tie keeps the earlier, so it is not compressed
    // (-j2: kernel-vmlinux 31.9 -> 28.1 s user, exe-ruff 45.3 -> 40.8 s).
    let mut ranked: Vec<Vec<Op>> = Vec::with_capacity(MARGINS.len());
    let (zstd, proxy) = (Codec::Zstd, proxy_level(opts.level));
    for margin in MARGINS {
        let m = match_chunk(old, new, sa, start, end, margin, &mut w.searches);
        if ranked.contains(&m.ops) {
            continue;
        }
        ranked.push(m.ops.clone());
        let raw = streams(&plain, start, end, &m)?;
        let extra = match extra_reference(raw.extra.len(), old.len(), m.old_offset, reference_len) {
            Some(r) => compress_against(&mut w.against, proxy, &raw.extra, &old[r])?.len(),
            None => compress(zstd, proxy, &mut w.proxy, &raw.extra, 0)?.len(),
        };
        let cost = compress(zstd, proxy, &mut w.proxy, &raw.ctrl, 0)?.len()
            + compress(zstd, proxy, &mut w.proxy, &raw.diff, 0)?.len()
            + extra;
        if best.as_ref().is_none_or(|(c, _)| cost < *c) {
            best = Some((cost, m));
        }
    }
    best.map(|(_, b)| b).ok_or(DiffError::Worker)
}

/// Chunks of at most this many new bytes also try the *whole-chunk
/// literal* candidate with codec xz: no matches, the chunk in the extra
/// stream, compressed against the reference (the whole old image of an MCU
/// image). LZMA's matching against that preset dictionary beat the
/// bsdiff-style streams on mcu-moondancer (15,637 B against 17,487: code
/// that changed throughout, where short matches beat long approximate
/// ones); on larger chunks it would cost a second xz encode of the chunk.
const WHOLE_CHUNK_LITERAL_MAX: usize = 1 << 20;

fn encode_chunk<'a>(
    job: &Job<'a>,
    start: usize,
    end: usize,
    w: &mut Worker<'a>,
) -> Result<Encoded, DiffError> {
    let m = best_match(job, start, end, w)?;
    let raw = streams(job, start, end, &m)?;
    let chunk_new = &job.new[start..end];
    let mut body = chunk_body(job, w, &raw, m.old_offset)?;
    if job.codec != Codec::Zstd
        && job.codec != Codec::None
        && job.reference_len > 0
        && chunk_new.len() <= WHOLE_CHUNK_LITERAL_MAX
    {
        let mut literal = Streams {
            ctrl: Vec::new(),
            diff: Vec::new(),
            extra: chunk_new.to_vec(),
        };
        put_varint(&mut literal.ctrl, 0);
        put_varint(&mut literal.ctrl, chunk_new.len() as u64);
        put_svarint(&mut literal.ctrl, 0);
        let candidate = chunk_body(job, w, &literal, m.old_offset)?;
        if candidate.len() < body.len() {
            body = candidate;
        }
    }
    let memory =
        chunk_memory(job.codec, job.transform, chunk_new.len() as u64, &body).unwrap_or(u64::MAX);
    Ok(Encoded {
        entry: ChunkEntry {
            stored_len: body.len() as u64,
            stored_digest: sha256(&body),
            output_digest: sha256(chunk_new),
        },
        body,
        memory,
    })
}

/// The chunk body (header and compressed streams) of `raw`, whose old
/// cursor starts at `old_offset`.
fn chunk_body<'a>(
    job: &Job<'a>,
    w: &mut Worker<'a>,
    raw: &Streams,
    old_offset: usize,
) -> Result<Vec<u8>, DiffError> {
    let Job {
        old,
        codec,
        opts,
        reference_len,
        ..
    } = *job;
    let level = opts.level.zstd_level();
    let z = &mut w.level;
    // The reader's window limit W (docs/format.md): the xz dictionary size.
    let longest = raw.ctrl.len().max(raw.diff.len()).max(raw.extra.len()) as u64;
    let window = longest.max(4096).next_power_of_two();
    let ctrl = compress(codec, level, z, &raw.ctrl, window)?;
    let diff = compress(codec, level, z, &raw.diff, window)?;
    // With a reference the extra stream is compressed against it alone:
    // also compressing it without one, to keep the smaller, won 134 B on
    // kernel-vmlinux and 207 B on exe-ruff for about a second of CPU each
    // (2026-11-26).
    let (extra, reference) =
        match extra_reference(raw.extra.len(), old.len(), old_offset, reference_len) {
            Some(r) => {
                let referenced = match codec {
                    #[cfg(feature = "xz")]
                    Codec::Xz => lzma2_against(&raw.extra, &old[r.clone()])?,
                    _ => compress_against(&mut w.against, level, &raw.extra, &old[r.clone()])?,
                };
                // Stored (and without a reference) when that is not smaller.
                if referenced.len() < raw.extra.len() {
                    (referenced, r)
                } else {
                    (raw.extra.clone(), 0..0)
                }
            }
            None => (compress(codec, level, z, &raw.extra, window)?, 0..0),
        };
    let too_big =
        |n: usize| u32::try_from(n).map_err(|_| DiffError::TooManyChunks { chunks: n as u64 });
    let bh = ChunkBodyHeader {
        old_offset: old_offset as u64,
        ctrl_len: too_big(raw.ctrl.len())?,
        ctrl_stored: too_big(ctrl.len())?,
        diff_len: too_big(raw.diff.len())?,
        diff_stored: too_big(diff.len())?,
        extra_len: too_big(raw.extra.len())?,
        extra_stored: too_big(extra.len())?,
        ref_offset: reference.start as u64,
        ref_len: too_big(reference.len())?,
    };
    let mut body = bh.encode().to_vec();
    body.extend_from_slice(&ctrl);
    body.extend_from_slice(&diff);
    body.extend_from_slice(&extra);
    Ok(body)
}

/// One raw LZMA2 stream (chunks and end marker, no container) of `raw`
/// with `reference` as its preset dictionary: what the reader decodes for
/// an xz extra stream with a reference (docs/format.md). Preset 9 with a
/// dictionary that holds both; literal and position bits 3/0/2 (xz's
/// default) or 0/1/1, whichever is smaller: 0/1/1 suits code of 16- and
/// 32-bit instructions (mcu-moondancer, RISC-V with compressed
/// instructions: 15,404 against 15,591 B for its whole-image literal).
#[cfg(feature = "xz")]
fn lzma2_against(raw: &[u8], reference: &[u8]) -> Result<Vec<u8>, DiffError> {
    use lzma_rust2::{Lzma2Options, Lzma2Writer};
    use std::io::Write as _;
    let too_big = |n: usize| DiffError::TooManyChunks { chunks: n as u64 };
    let ref_len = u32::try_from(reference.len()).map_err(|_| too_big(reference.len()))?;
    let raw_len = u32::try_from(raw.len()).map_err(|_| too_big(raw.len()))?;
    let dict = deltaseal_verify::patch::xz_reference_dictionary(ref_len, raw_len)
        .and_then(|d| u32::try_from(d).ok())
        .ok_or(too_big(raw.len()))?;
    let mut best: Option<Vec<u8>> = None;
    for (lc, lp, pb) in [(3, 0, 2), (0, 1, 1)] {
        let mut options = Lzma2Options::with_preset(9);
        options.lzma_options.dict_size = dict;
        (options.lzma_options.lc, options.lzma_options.lp) = (lc, lp);
        options.lzma_options.pb = pb;
        options.lzma_options.preset_dict = Some(reference.to_vec());
        let mut writer = Lzma2Writer::new(Vec::new(), options);
        writer.write_all(raw).map_err(DiffError::Compress)?;
        let packed = writer.finish().map_err(DiffError::Compress)?;
        if best.as_ref().is_none_or(|b| packed.len() < b.len()) {
            best = Some(packed);
        }
    }
    best.ok_or(DiffError::Worker)
}
