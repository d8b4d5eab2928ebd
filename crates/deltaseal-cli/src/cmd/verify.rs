//! `deltaseal verify BUNDLE --trust ROOT|PUB.pem [--installed-sequence N] [--old OLD -o NEW]`

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use deltaseal_sign::keys::VerifyingKey;
use deltaseal_sign::{ids, keys};
use deltaseal_verify::bundle::{Bundle, Policy};
use deltaseal_verify::patch::{ApplyOptions, Limits};
use deltaseal_verify::root::{SignedRoot, TrustRoot};
use deltaseal_verify::update::apply_update;

use crate::fsutil::{self, AtomicFile};

/// Arguments of `deltaseal verify`.
#[derive(clap::Args)]
pub struct Args {
    /// The bundle to check.
    bundle: PathBuf,
    /// A trust root (its own threshold of signatures is checked, and the
    /// bundle needs its threshold of distinct root keys), or a trusted
    /// public key (SPKI PEM; repeat to trust several, any one suffices).
    #[arg(long = "trust", value_name = "ROOT|PUB.pem", required = true)]
    trust: Vec<PathBuf>,
    /// Trusted time for expiry checks (RFC 3339 UTC or Unix seconds);
    /// default: the system clock.
    #[arg(long, value_name = "TIME")]
    now: Option<String>,
    /// Sequence number of the installed image: the bundle's must be greater.
    #[arg(long, value_name = "N")]
    installed_sequence: Option<u64>,
    /// Require this vendor (UUID or name, as given to `release`).
    #[arg(long)]
    vendor: Option<String>,
    /// Require this device class (UUID or name; needs --vendor when a name).
    #[arg(long, requires = "vendor")]
    class: Option<String>,
    /// This device's id (UUID or name; needs --class when a name). Bundles
    /// made for another device are refused.
    #[arg(long, requires = "class")]
    device: Option<String>,
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

/// What `--trust` named: a verified root, or plain public keys.
pub enum Trust {
    /// A trust root whose own signatures verified.
    Root(TrustRoot),
    /// Trusted public keys; any one suffices.
    Keys(Vec<VerifyingKey>),
}

impl Trust {
    /// Every trusted key.
    pub fn keys(&self) -> &[VerifyingKey] {
        match self {
            Trust::Root(root) => root.keys(),
            Trust::Keys(keys) => keys,
        }
    }
}

/// Reads `--trust`: one trust root (checked against its own threshold and
/// expiry at `now`), or one or more SPKI public keys.
pub fn load_trust(paths: &[PathBuf], now: u64) -> Result<Trust> {
    let first = fsutil::read(&paths[0])?;
    if first.starts_with(b"-----BEGIN") {
        let keys = paths
            .iter()
            .map(|path| {
                keys::read_verifying_key(path)
                    .with_context(|| format!("cannot read trusted key {}", path.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        return Ok(Trust::Keys(keys));
    }
    if paths.len() > 1 {
        bail!("--trust takes one trust root, or one or more public keys");
    }
    let root = SignedRoot::decode(&first)
        .and_then(|r| r.verify(Some(now)))
        .with_context(|| format!("{} is not a valid trust root", paths[0].display()))?;
    Ok(Trust::Root(root))
}

pub fn run(args: &Args) -> Result<()> {
    let now = crate::cmd::root::now_or(args.now.as_deref())?;
    let trust = load_trust(&args.trust, now)?;
    let bytes = fsutil::read(&args.bundle)?;
    let bundle = Bundle::decode(&bytes)
        .with_context(|| format!("{} is not a valid bundle", args.bundle.display()))?;
    let (authenticated, threshold) = match &trust {
        Trust::Root(root) => (bundle.authenticate_root(root), root.threshold()),
        Trust::Keys(keys) => (bundle.authenticate(keys), 1),
    };
    let authenticated = authenticated.context("signature check failed")?;
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
    let device_id = match (&class_id, args.device.as_deref()) {
        (Some(class), Some(device)) => Some(ids::device_id(class, device)),
        _ => None,
    };
    let policy = Policy {
        installed_sequence: args.installed_sequence,
        vendor_id,
        class_id,
        device_id,
        now: Some(now),
    };
    let approved = authenticated
        .approve(&policy)
        .context("policy check failed")?;
    let manifest = approved.manifest().clone();

    let applied = match (&args.old, &args.output) {
        (Some(old_path), Some(out_path)) => {
            let old = fsutil::read(old_path)?;
            let mut out = AtomicFile::create(out_path)?;
            let bar = crate::ui::bytes_bar(manifest.target.size, "applying");
            let mut sink = crate::ui::ProgressSink::new(&mut out, bar);
            // A recompressing payload (--level max on an image holding LZMA
            // streams) goes to its host-side applier; the payload's digest
            // is checked against the manifest before either looks at it.
            let recompressing = approved
                .checked_payload()
                .is_ok_and(deltaseal_recompress::is_recompressing);
            let applied = if recompressing {
                deltaseal_recompress::apply_update(
                    &approved,
                    &old,
                    &mut sink,
                    &Default::default(),
                    ApplyOptions::threads(
                        std::thread::available_parallelism().map_or(1, |n| n.get()),
                    ),
                )
                .map(drop)
                .map_err(anyhow::Error::from)
            } else {
                apply_update(
                    &approved,
                    &mut old.as_slice(),
                    &mut sink,
                    &Limits::default(),
                )
                .map(drop)
                .map_err(anyhow::Error::from)
            };
            sink.finish();
            applied.context("update rejected")?;
            out.commit()?;
            true
        }
        (None, None) => {
            let spinner = crate::ui::spinner("checking the payload digest");
            let checked = approved.checked_payload().map(|_| ());
            spinner.finish_and_clear();
            checked.context("payload check failed")?;
            false
        }
        _ => bail!("--old and --output go together"),
    };

    if args.json || crate::ui::json() {
        let report = serde_json::json!({
            "verified": true,
            "sequence": manifest.sequence,
            "vendor_id": hex::encode(manifest.vendor_id),
            "class_id": hex::encode(manifest.class_id),
            "device_id": manifest.device_id.map(hex::encode),
            "precursor_size": manifest.precursor.size,
            "precursor_sha256": hex::encode(manifest.precursor.digest),
            "target_size": manifest.target.size,
            "target_sha256": hex::encode(manifest.target.digest),
            "patch_size": manifest.patch.size,
            "signers": signers,
            "signers_counted": signers,
            "threshold": threshold,
            "root_version": match &trust {
                Trust::Root(root) => Some(root.version()),
                Trust::Keys(_) => None,
            },
            "applied": applied,
            "output": args.output,
        });
        crate::ui::outln!("{report}");
    } else {
        crate::ui::say!(
            "verified: sequence {}, signed by {} (threshold {threshold}), {} byte patch to a {} byte image (sha256 {})",
            manifest.sequence,
            signers.join(", "),
            manifest.patch.size,
            manifest.target.size,
            hex::encode(manifest.target.digest)
        );
        if let Some(out_path) = &args.output {
            crate::ui::say!("wrote {}: final digest matches", out_path.display());
        }
    }
    Ok(())
}
