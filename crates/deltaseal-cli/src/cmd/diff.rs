//! `deltaseal diff OLD NEW -o PATCH`

use std::path::PathBuf;

use anyhow::{Context, Result};
use deltaseal_diff::{DiffOptions, Level, Transform};

use crate::fsutil;

/// Compression effort, from fastest to smallest.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum LevelArg {
    /// Quick diffs for development builds.
    Fast,
    /// The release default.
    Default,
    /// Smallest patches, slowest diff (xz streams in 8 MiB chunks: for
    /// host-side appliers; devices use `default`), or the `default` patch
    /// where that is smaller.
    Max,
}

impl From<LevelArg> for Level {
    fn from(level: LevelArg) -> Level {
        match level {
            LevelArg::Fast => Level::Fast,
            LevelArg::Default => Level::Default,
            LevelArg::Max => Level::Max,
        }
    }
}

/// Who will apply the patch.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProfileArg {
    /// Hosts and Linux-class devices: the level's chunk size (1 MiB).
    Default,
    /// Microcontrollers: zstd in 4 KiB chunks, so a streaming install
    /// (`deltaseal_verify::stream`) declares and needs under 64 KiB of heap
    /// (plus 72 bytes per chunk of table).
    Mcu,
}

/// Branch-target prediction of the diff streams (patch format version 4).
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TransformArg {
    /// From the new image's headers: ELF or PE machine, or a Cortex-M
    /// vector table; none for anything else.
    Auto,
    /// Plain byte-wise differences (a version 3 patch).
    None,
    /// x86 and x86-64 calls, jumps and RIP-relative operands.
    X86,
    /// ARM Thumb-2 BL and B.W.
    Thumb2,
}

/// Options shared by every command that computes a patch.
#[derive(clap::Args)]
pub struct EngineArgs {
    /// Compression level.
    #[arg(long, value_enum, default_value = "default")]
    level: LevelArg,
    /// Worker threads for matching (0 = one per core).
    #[arg(short = 'j', long, default_value_t = 0)]
    jobs: usize,
    /// Bytes of new image per independently applicable chunk (bounds device memory).
    #[arg(long, value_name = "BYTES")]
    chunk_size: Option<u32>,
    /// Bytes of old image each chunk's literals are compressed against
    /// (0 = none; default 512 KiB, 1 MiB with --level max, at most the
    /// chunk size, none with --profile mcu): smaller patches for twice
    /// this in apply memory.
    #[arg(long, value_name = "BYTES")]
    extra_reference: Option<u32>,
    /// Target device class; `mcu` fixes the codec, level and chunk size
    /// (so it does not combine with --level).
    #[arg(long, value_enum, conflicts_with = "level")]
    profile: Option<ProfileArg>,
    /// Predict branch targets in the diff streams for this instruction set.
    #[arg(long, value_enum, default_value = "auto")]
    transform: TransformArg,
    /// With --level max, do not write a recompressing patch (one that
    /// decompresses the images' LZMA streams and compresses the new ones
    /// again on apply; host appliers only: docs/format.md).
    #[arg(long)]
    no_recompress: bool,
}

impl EngineArgs {
    /// Whether to write a recompressing patch where it is smaller:
    /// `--level max` without `--no-recompress`.
    pub fn recompress(&self) -> bool {
        self.profile.is_none() && matches!(self.level, LevelArg::Max) && !self.no_recompress
    }

    /// The engine options these flags select.
    pub fn options(&self) -> DiffOptions {
        let mut options = match self.profile {
            Some(ProfileArg::Mcu) => DiffOptions::mcu(),
            Some(ProfileArg::Default) | None => DiffOptions::for_level(self.level.into()),
        };
        options.threads = match self.jobs {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        if let Some(chunk_size) = self.chunk_size {
            options.chunk_size = chunk_size;
        }
        if let Some(len) = self.extra_reference {
            options.extra_reference = len;
        }
        options.transform = match self.transform {
            TransformArg::Auto => None,
            TransformArg::None => Some(Transform::None),
            TransformArg::X86 => Some(Transform::X86),
            TransformArg::Thumb2 => Some(Transform::Thumb2),
        };
        options
    }
}

/// Arguments of `deltaseal diff`.
#[derive(clap::Args)]
pub struct Args {
    /// The image the device has now.
    old: PathBuf,
    /// The image to update it to.
    new: PathBuf,
    /// Patch file to write.
    #[arg(short, long, value_name = "PATCH")]
    output: PathBuf,
    #[command(flatten)]
    engine: EngineArgs,
    /// Patch format: `deltaseal` (chunked, digests, what devices apply) or
    /// `bsdiff40` (bsdiff 4.3, bzip2; what `bspatch` applies; no digests).
    #[arg(long, value_enum, default_value = "deltaseal")]
    format: FormatArg,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Patch file format written by `deltaseal diff`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// The deltaseal patch format (docs/format.md).
    Deltaseal,
    /// BSDIFF40, for Debian's and the BSDs' `bspatch` (ignores --level).
    Bsdiff40,
}

pub fn run(args: &Args) -> Result<()> {
    let old = fsutil::read(&args.old)?;
    let new = fsutil::read(&args.new)?;
    let options = args.engine.options();
    let spinner = crate::ui::spinner("computing the patch");
    let patch = match args.format {
        FormatArg::Deltaseal if args.engine.recompress() => {
            deltaseal_recompress::smallest(&old, &new, &options).map_err(anyhow::Error::from)
        }
        FormatArg::Deltaseal => deltaseal_diff::diff(&old, &new, &options).map_err(Into::into),
        FormatArg::Bsdiff40 => {
            deltaseal_diff::bsdiff40::export(&old, &new, &options).map_err(Into::into)
        }
    };
    spinner.finish_and_clear();
    let patch = patch.context("cannot compute the patch")?;
    let recompressing = deltaseal_recompress::is_recompressing(&patch);
    fsutil::write_atomic(&args.output, &patch)?;
    let percent = percent_of(patch.len(), new.len());
    if args.json || crate::ui::json() {
        let report = serde_json::json!({
            "patch": args.output,
            "old_size": old.len(),
            "new_size": new.len(),
            "patch_size": patch.len(),
            "format": match args.format {
                FormatArg::Bsdiff40 => "bsdiff40",
                FormatArg::Deltaseal if recompressing => "deltaseal-recompressing",
                FormatArg::Deltaseal => "deltaseal",
            },
            "percent_of_new": percent,
        });
        crate::ui::outln!("{report}");
    } else {
        crate::ui::say!(
            "{}: {} bytes ({percent:.2}% of the {} byte new image{})",
            args.output.display(),
            patch.len(),
            new.len(),
            if recompressing {
                "; recompressing: apply it with `deltaseal apply`"
            } else {
                ""
            }
        );
    }
    Ok(())
}
/// `part` as a percentage of `whole` (0 for an empty whole).
pub fn percent_of(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}
