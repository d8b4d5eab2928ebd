//! `deltaseal apply OLD PATCH -o NEW`

use std::path::PathBuf;

use anyhow::{Context, Result};
use deltaseal_verify::patch::{self, Limits};

use crate::fsutil::{self, AtomicFile};

/// Arguments of `deltaseal apply`.
#[derive(clap::Args)]
pub struct Args {
    /// The image the patch was made from.
    old: PathBuf,
    /// The patch.
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
}

pub fn run(args: &Args) -> Result<()> {
    let old = fsutil::read(&args.old)?;
    let patch_bytes = fsutil::read(&args.patch)?;
    let mut out = AtomicFile::create(&args.output)?;
    let jobs = match args.jobs {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let summary = patch::apply_parallel(&old, &patch_bytes, &mut out, &Limits::default(), jobs)
        .with_context(|| format!("cannot apply {}", args.patch.display()))?;
    out.commit()?;
    if args.json {
        let report = serde_json::json!({
            "output": args.output,
            "new_size": summary.new_size,
            "chunks": summary.chunks,
        });
        println!("{report}");
    } else {
        println!(
            "{}: {} bytes, digest verified",
            args.output.display(),
            summary.new_size
        );
    }
    Ok(())
}
