//! `deltaseal verify BUNDLE --trust PUB.pem [--installed-sequence N] [--old OLD -o NEW]`

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use deltaseal_sign::{ids, keys};
use deltaseal_verify::bundle::{Bundle, Policy};
use deltaseal_verify::patch::Limits;
use deltaseal_verify::update::apply_update;

use crate::fsutil::{self, AtomicFile};

/// Arguments of `deltaseal verify`.
#[derive(clap::Args)]
pub struct Args {
    /// The bundle to check.
    bundle: PathBuf,
    /// Trusted public key (SPKI PEM); repeat to trust several.
    #[arg(long = "trust", value_name = "PUB.pem", required = true)]
    trust: Vec<PathBuf>,
    /// Sequence number of the installed image: the bundle's must be greater.
    #[arg(long, value_name = "N")]
    installed_sequence: Option<u64>,
    /// Require this vendor (UUID or name, as given to `release`).
    #[arg(long)]
    vendor: Option<String>,
    /// Require this device class (UUID or name; needs --vendor when a name).
    #[arg(long, requires = "vendor")]
    class: Option<String>,
    /// The running image: check it is the precursor, then apply the patch.
    #[arg(long, value_name = "OLD", requires = "output")]
    old: Option<PathBuf>,
    /// Where to write the new image (only if its final digest matches).
    #[arg(short, long, value_name = "NEW", requires = "old")]
    output: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &Args) -> Result<()> {
    let trusted = args
        .trust
        .iter()
        .map(|path| {
            keys::read_verifying_key(path)
                .with_context(|| format!("cannot read trusted key {}", path.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let bytes = fsutil::read(&args.bundle)?;
    let bundle = Bundle::decode(&bytes)
        .with_context(|| format!("{} is not a valid bundle", args.bundle.display()))?;
    let authenticated = bundle
        .authenticate(&trusted)
        .context("signature check failed")?;
    let signers: Vec<String> = authenticated
        .verified_kids()
        .iter()
        .map(hex::encode)
        .collect();
    let vendor_id = args.vendor.as_deref().map(ids::vendor_id);
    let class_id = match (&vendor_id, args.class.as_deref()) {
        (Some(vendor), Some(class)) => Some(ids::class_id(vendor, class)),
        _ => None,
    };
    let policy = Policy {
        installed_sequence: args.installed_sequence,
        vendor_id,
        class_id,
        now: None,
    };
    let approved = authenticated
        .approve(&policy)
        .context("policy check failed")?;
    let manifest = approved.manifest().clone();

    let applied = match (&args.old, &args.output) {
        (Some(old_path), Some(out_path)) => {
            let old = fsutil::read(old_path)?;
            let mut out = AtomicFile::create(out_path)?;
            apply_update(&approved, &mut old.as_slice(), &mut out, &Limits::default())
                .context("update rejected")?;
            out.commit()?;
            true
        }
        (None, None) => {
            approved.checked_payload().context("payload check failed")?;
            false
        }
        _ => bail!("--old and --output go together"),
    };

    if args.json {
        let report = serde_json::json!({
            "verified": true,
            "sequence": manifest.sequence,
            "vendor_id": hex::encode(manifest.vendor_id),
            "class_id": hex::encode(manifest.class_id),
            "precursor_size": manifest.precursor.size,
            "precursor_sha256": hex::encode(manifest.precursor.digest),
            "target_size": manifest.target.size,
            "target_sha256": hex::encode(manifest.target.digest),
            "patch_size": manifest.patch.size,
            "signers": signers,
            "applied": applied,
            "output": args.output,
        });
        println!("{report}");
    } else {
        println!(
            "verified: sequence {}, signed by {}, {} byte patch to a {} byte image (sha256 {})",
            manifest.sequence,
            signers.join(", "),
            manifest.patch.size,
            manifest.target.size,
            hex::encode(manifest.target.digest)
        );
        if let Some(out_path) = &args.output {
            println!("wrote {}: final digest matches", out_path.display());
        }
    }
    Ok(())
}
