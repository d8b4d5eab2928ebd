//! `deltaseal release --old OLD --new NEW --key KEY.pem --sequence N --vendor V --class C -o BUNDLE`

use std::path::PathBuf;

use anyhow::{Context, Result};
use deltaseal_sign::bundle::{DEFAULT_COMPONENT_ID, ManifestOptions, build_bundle_opts};
use deltaseal_sign::{ReleaseInput, ids};
use deltaseal_verify::bundle::ImageRef;
use deltaseal_verify::digest::sha256;
use deltaseal_verify::patch::{self, Limits};

use crate::cmd::diff::{EngineArgs, percent_of};
use crate::cmd::sign::read_signing_key;
use crate::fsutil;

/// Arguments of `deltaseal release`.
#[derive(clap::Args)]
pub struct Args {
    /// The image devices run now (the precursor).
    #[arg(long, value_name = "OLD")]
    old: PathBuf,
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
    let old = fsutil::read(&args.old)?;
    let new = fsutil::read(&args.new)?;
    let patch_bytes = deltaseal_diff::diff(&old, &new, &args.engine.options())
        .context("cannot compute the patch")?;
    let index_digest = patch::index_digest(&patch_bytes, &Limits::default())
        .context("the patch just made does not decode")?;
    let vendor_id = ids::vendor_id(&args.vendor);
    let class_id = ids::class_id(&vendor_id, &args.class);
    let input = ReleaseInput {
        sequence: args.sequence,
        vendor_id,
        class_id,
        precursor: ImageRef {
            size: len_u64(&old),
            digest: sha256(&old),
        },
        target: ImageRef {
            size: len_u64(&new),
            digest: sha256(&new),
        },
        patch: &patch_bytes,
        patch_index_digest: index_digest,
    };
    let device_id = args.device.as_deref().map(|d| ids::device_id(&class_id, d));
    let mut options = ManifestOptions::default().deferrable(args.deferrable);
    if let Some(id) = device_id {
        options = options.device(id);
    }
    let bundle = build_bundle_opts(&input, DEFAULT_COMPONENT_ID, &options, &signers)
        .context("cannot build the bundle")?;
    fsutil::write_atomic(&args.output, &bundle)?;

    let kids: Vec<String> = signers
        .iter()
        .map(|key| hex::encode(deltaseal_verify::bundle::kid(&key.verifying_key())))
        .collect();
    if args.json {
        let report = serde_json::json!({
            "bundle": args.output,
            "bundle_size": bundle.len(),
            "patch_size": patch_bytes.len(),
            "new_size": new.len(),
            "percent_of_new": percent_of(bundle.len(), new.len()),
            "sequence": args.sequence,
            "deferrable": args.deferrable,
            "vendor_id": hex::encode(vendor_id),
            "class_id": hex::encode(class_id),
            "signers": kids,
        });
        println!("{report}");
    } else {
        println!(
            "{}: {} bytes ({:.2}% of the {} byte new image), sequence {}, signed by {}",
            args.output.display(),
            bundle.len(),
            percent_of(bundle.len(), new.len()),
            new.len(),
            args.sequence,
            kids.join(", ")
        );
    }
    Ok(())
}

fn len_u64(bytes: &[u8]) -> u64 {
    // usize is at most 64 bits on every supported platform.
    bytes.len() as u64
}
