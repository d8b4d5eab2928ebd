//! `deltaseal apply OLD PATCH -o NEW`

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use deltaseal_diff::bsdiff40::{self, ImportLimits};
use deltaseal_verify::patch::{
    self, ApplyOptions, CHUNK_ENTRY_LEN, HEADER_LEN, Limits, OldImage as _, OldImageCheck,
    PatchHeader, ZstdDecoder,
};

use deltaseal_recompress::{Limits as RecompressLimits, RecompressHeader};

use crate::fsutil::{AtomicFile, FileImage};

/// Arguments of `deltaseal apply`.
#[derive(clap::Args)]
pub struct Args {
    /// The image the patch was made from (read in place, never loaded whole).
    old: PathBuf,
    /// The patch: a deltaseal patch (recompressing or not), or a BSDIFF40
    /// (bsdiff 4.3) patch.
    patch: PathBuf,
    /// Where to write the new image (only if every digest matches).
    #[arg(short, long, value_name = "NEW")]
    output: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// Chunks applied in parallel (0 = one per core); memory grows with it.
    #[arg(short = 'j', long, default_value_t = 0)]
    jobs: usize,
    /// The SHA-256 (hex) the new image must have; NEW is written only if it
    /// matches. BSDIFF40 patches carry no digests: without this their result
    /// is unchecked.
    #[arg(long, value_name = "HEX", value_parser = parse_sha256)]
    expect_sha256: Option<[u8; 32]>,
}

fn parse_sha256(s: &str) -> Result<[u8; 32], String> {
    let mut d = [0u8; 32];
    hex::decode_to_slice(s, &mut d).map_err(|_| "expected 64 hex digits".to_string())?;
    Ok(d)
}

pub fn run(args: &Args) -> Result<()> {
    let old = FileImage::open(&args.old)?;
    let mut patch_file = FileImage::open(&args.patch)?;
    let cannot = || format!("cannot apply {}", args.patch.display());
    let index = read_index(&mut patch_file).with_context(cannot)?;
    if bsdiff40::is_bsdiff40(&index) {
        let patch_bytes = crate::fsutil::read(&args.patch)?;
        return run_bsdiff40(args, old, &patch_bytes);
    }
    if deltaseal_recompress::is_recompressing(&index) {
        return run_recompressing(args);
    }
    let header = PatchHeader::decode_index(&index, patch_file.len(), &Limits::default())
        .with_context(cannot)?;
    drop(index);
    check_expected(args, &header.new_digest)?;
    let mut out = AtomicFile::create(&args.output)?;
    // Chunk bodies are read from the file as workers need them: memory
    // stays at about `jobs` x the declared decoder memory, whatever the sizes.
    let bar = crate::ui::bytes_bar(header.new_size, "applying");
    let mut sink = crate::ui::ProgressSink::new(&mut out, bar);
    let options = host_options(args);
    let summary = patch::apply_parallel_from(old, &header, patch_file, &mut sink, options);
    sink.finish();
    let summary = summary.with_context(cannot)?;
    out.commit()?;
    if args.json || crate::ui::json() {
        let report = serde_json::json!({
            "output": args.output,
            "format": "deltaseal",
            "new_size": summary.new_size,
            "chunks": summary.chunks,
        });
        crate::ui::outln!("{report}");
    } else {
        crate::ui::outln!(
            "{}: {} bytes, digest verified",
            args.output.display(),
            summary.new_size
        );
    }
    Ok(())
}

/// Refuse a patch that makes another image than `--expect-sha256` names.
fn check_expected(args: &Args, new_digest: &[u8; 32]) -> Result<()> {
    if args
        .expect_sha256
        .is_some_and(|expected| expected != *new_digest)
    {
        bail!(
            "cannot apply {}: the patch makes an image with SHA-256 {}, not the expected one",
            args.patch.display(),
            hex::encode(new_digest)
        );
    }
    Ok(())
}

/// `-j` workers decoding with libzstd, several times ruzstd's speed on the
/// host. The output is a temporary file removed unless every check passes,
/// so the old image's digest need only name a failure
/// (`OldImageCheck::OnFailure`).
fn host_options(args: &Args) -> ApplyOptions {
    let threads = match args.jobs {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    ApplyOptions {
        threads,
        decoder: ZstdDecoder::Libzstd,
        old_image: OldImageCheck::OnFailure,
    }
}

/// A recompressing patch (`deltaseal_recompress`): both images and the
/// patch are read whole, the old image's LZMA streams decompressed and the
/// new image's compressed again (host-side memory: docs/format.md).
fn run_recompressing(args: &Args) -> Result<()> {
    let cannot = || format!("cannot apply {}", args.patch.display());
    let old = crate::fsutil::read(&args.old)?;
    let patch_bytes = crate::fsutil::read(&args.patch)?;
    let header = RecompressHeader::decode(&patch_bytes, &RecompressLimits::default())
        .with_context(cannot)?;
    check_expected(args, &header.new_digest)?;
    let mut out = AtomicFile::create(&args.output)?;
    let bar = crate::ui::bytes_bar(header.new_size, "applying");
    let mut sink = crate::ui::ProgressSink::new(&mut out, bar);
    let limits = RecompressLimits::default();
    let options = host_options(args);
    let applied = deltaseal_recompress::apply(&old, &patch_bytes, &mut sink, &limits, options);
    sink.finish();
    let applied = applied.with_context(cannot)?;
    out.commit()?;
    if args.json || crate::ui::json() {
        let report = serde_json::json!({
            "output": args.output,
            "format": "deltaseal-recompressing",
            "new_size": applied.new_size,
            "chunks": applied.chunks,
            "recompressed_streams": applied.regions,
        });
        crate::ui::outln!("{report}");
    } else {
        crate::ui::outln!(
            "{}: {} bytes, LZMA streams compressed again: {}, digest verified",
            args.output.display(),
            applied.new_size,
            applied.regions
        );
    }
    Ok(())
}

/// The patch's index (header + chunk table) for a deltaseal patch, or its
/// first bytes for anything else (enough to see the BSDIFF40 magic). Never
/// more than the file holds.
fn read_index(patch: &mut FileImage) -> Result<Vec<u8>> {
    let len = patch.len();
    let fixed = len.min(HEADER_LEN as u64);
    let mut index = vec![0u8; usize::try_from(fixed)?];
    patch.read_at(0, &mut index)?;
    // The chunk count is the u32 at offset 104 (docs/format.md, "Header").
    if let (HEADER_LEN, Some(count)) = (index.len(), index.get(104..108)) {
        let count = u64::from(u32::from_le_bytes(count.try_into()?));
        let want = count
            .checked_mul(CHUNK_ENTRY_LEN as u64)
            .and_then(|t| t.checked_add(HEADER_LEN as u64))
            .map_or(len, |w| w.min(len));
        index.resize(usize::try_from(want)?, 0);
        if let Some(table) = index.get_mut(HEADER_LEN..) {
            patch.read_at(fixed, table)?;
        }
    }
    Ok(index)
}

/// BSDIFF40 import: applied in bounded memory; checked only against
/// `--expect-sha256`, with a warning on stderr when that is missing.
fn run_bsdiff40(args: &Args, mut old: FileImage, patch: &[u8]) -> Result<()> {
    let mut out = AtomicFile::create(&args.output)?;
    let summary = bsdiff40::apply(&mut old, patch, &mut out, &ImportLimits::default())
        .with_context(|| format!("cannot apply BSDIFF40 patch {}", args.patch.display()))?;
    let digest = hex::encode(summary.new_digest);
    if args
        .expect_sha256
        .is_some_and(|expected| expected != summary.new_digest)
    {
        bail!(
            "cannot apply BSDIFF40 patch {}: the result has SHA-256 {digest}, not the expected one",
            args.patch.display()
        );
    }
    out.commit()?;
    let verified = args.expect_sha256.is_some();
    if !verified {
        eprintln!(
            "warning: {} is a BSDIFF40 patch, which carries no digests: neither OLD nor {} was checked (pass --expect-sha256 to check it)",
            args.patch.display(),
            args.output.display()
        );
    }
    if args.json || crate::ui::json() {
        let report = serde_json::json!({
            "output": args.output,
            "format": "bsdiff40",
            "new_size": summary.new_size,
            "sha256": digest,
            "verified": verified,
        });
        crate::ui::outln!("{report}");
    } else {
        let state = if verified {
            "digest verified (--expect-sha256)"
        } else {
            "UNCHECKED"
        };
        crate::ui::outln!(
            "{}: {} bytes, SHA-256 {digest}, {state}",
            args.output.display(),
            summary.new_size
        );
    }
    Ok(())
}
