//! `deltaseal release --old OLD --new NEW --key KEY.pem --sequence N --vendor V --class C -o BUNDLE`

use std::path::PathBuf;

use anyhow::Result;

use crate::bundler::{self, Spec};
use crate::cmd::diff::{EngineArgs, percent_of};
use crate::cmd::sign::read_signing_key;
use crate::ui::{self, say};
use crate::{evidence, fsutil};

/// Arguments of `deltaseal release`.
#[derive(clap::Args)]
pub struct Args {
    /// The image devices run now (the precursor).
    #[arg(long, value_name = "OLD", required_unless_present = "full")]
    old: Option<PathBuf>,
    /// A full-image bundle instead of a delta: for devices whose image is
    /// not known (its patch is made against the empty image; apply it with
    /// an empty old image).
    #[arg(long, conflicts_with = "old")]
    full: bool,
    /// The image to install.
    #[arg(long, value_name = "NEW")]
    new: PathBuf,
    /// Signing key (PKCS#8 PEM); repeat to add signatures.
    #[arg(long = "key", value_name = "KEY.pem", required = true)]
    keys: Vec<PathBuf>,
    /// Sequence number; devices refuse anything not above what they run.
    #[arg(long)]
    sequence: u64,
    /// Vendor: a UUID, or a name (usually a domain) turned into UUID5 as SUIT does.
    #[arg(long)]
    vendor: String,
    /// Device class: a UUID, or a name turned into UUID5 under the vendor id.
    #[arg(long)]
    class: String,
    /// Only for this one device: a UUID, or a name (serial number) turned
    /// into UUID5 under the class id. Other devices refuse the bundle.
    #[arg(long)]
    device: Option<String>,
    /// Let devices defer the install to their maintenance window
    /// (`deltaseal install --window`); default: urgent, install at once.
    #[arg(long)]
    deferrable: bool,
    /// Bundle file to write.
    #[arg(short, long, value_name = "BUNDLE")]
    output: PathBuf,
    #[command(flatten)]
    engine: EngineArgs,
    /// Also write a release evidence record (JSON: input digests, tool
    /// version, signer key ids, sizes, time) to this file.
    #[arg(long, value_name = "FILE")]
    evidence: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &Args) -> Result<()> {
    let signers = args
        .keys
        .iter()
        .map(|path| read_signing_key(path))
        .collect::<Result<Vec<_>>>()?;
    let old = match &args.old {
        Some(path) => fsutil::read(path)?,
        None => Vec::new(),
    };
    let new = fsutil::read(&args.new)?;
    let options = args.engine.options();
    let spec = Spec {
        old: &old,
        new: &new,
        sequence: args.sequence,
        vendor: &args.vendor,
        class: &args.class,
        device: args.device.as_deref(),
        deferrable: args.deferrable,
        signers: &signers,
        options: &options,
        recompress: args.engine.recompress(),
    };
    let spinner = ui::spinner("computing the patch and signing");
    let built = bundler::build(&spec);
    spinner.finish_and_clear();
    let built = built?;
    fsutil::write_atomic(&args.output, &built.bundle)?;
    if let Some(path) = &args.evidence {
        let old_name = args.old.as_ref().map(|p| p.display().to_string());
        let sources = evidence::Sources {
            old: old_name.as_deref(),
            new: &args.new.display().to_string(),
            bundle: &args.output.display().to_string(),
            keys: args.keys.iter().map(|p| p.display().to_string()).collect(),
        };
        evidence::write(path, &evidence::record(&spec, &built, &sources)?)?;
    }

    let bundle = &built.bundle;
    if args.json || ui::json() {
        let report = serde_json::json!({
            "bundle": args.output,
            "kind": if args.full { "full" } else { "delta" },
            "bundle_size": bundle.len(),
            "patch_size": built.patch_size,
            "new_size": new.len(),
            "percent_of_new": percent_of(bundle.len(), new.len()),
            "sequence": args.sequence,
            "deferrable": args.deferrable,
            "vendor_id": hex::encode(built.vendor_id),
            "class_id": hex::encode(built.class_id),
            "signers": built.kids,
            "evidence": args.evidence,
        });
        crate::ui::outln!("{report}");
    } else {
        say!(
            "{}: {} bytes ({:.2}% of the {} byte new image), sequence {}, signed by {}",
            args.output.display(),
            bundle.len(),
            percent_of(bundle.len(), new.len()),
            new.len(),
            args.sequence,
            built.kids.join(", ")
        );
    }
    Ok(())
}
