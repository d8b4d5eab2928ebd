//! `deltaseal device init --device DIR --image IMG --trust ROOT|PUB.pem --sequence N --vendor V --class C`

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use deltaseal_agent::storage::DirStorage;
use deltaseal_agent::{Agent, AgentError, Identity, Trust};
use deltaseal_sign::{ids, keys};
use deltaseal_verify::root::SignedRoot;

use crate::fsutil;

/// Arguments of `deltaseal device`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: DeviceCommand,
}

#[derive(clap::Subcommand)]
enum DeviceCommand {
    /// Create a device directory: slot A holds IMG, slot B is empty, A is active.
    Init(InitArgs),
}

/// Arguments of `deltaseal device init`.
#[derive(clap::Args)]
struct InitArgs {
    /// The device directory to create (may exist, but not hold a device).
    #[arg(long, value_name = "DIR")]
    device: PathBuf,
    /// The image the device runs now (copied into slot A).
    #[arg(long, value_name = "IMG")]
    image: PathBuf,
    /// What the device trusts: a trust root (checked now and at every
    /// install) or one public key (SPKI PEM).
    #[arg(long, value_name = "ROOT|PUB.pem")]
    trust: PathBuf,
    /// Sequence number of IMG: only bundles above it are accepted.
    #[arg(long)]
    sequence: u64,
    /// Vendor (UUID or name, as given to `release`).
    #[arg(long)]
    vendor: String,
    /// Device class (UUID or name).
    #[arg(long)]
    class: String,
    /// This device's id (UUID or name), for bundles made for one device.
    #[arg(long = "id", value_name = "ID")]
    device_id: Option<String>,
}

/// The agent for the device directory `dir`.
pub fn open(dir: &Path) -> Agent<DirStorage> {
    Agent::new(DirStorage::new(dir))
}

/// An agent error as one `error:` line: `what` failed because of `err`,
/// except that a device held by another process says so plainly (the
/// operation did not start, so there is nothing else to tell).
pub fn failed(dir: &Path, err: AgentError, what: impl FnOnce() -> String) -> anyhow::Error {
    match err {
        AgentError::Locked => anyhow!(
            "another deltaseal process holds the device {} (its lock file); nothing was \
             changed, try again when it has finished",
            dir.display()
        ),
        err => anyhow::Error::new(err).context(what()),
    }
}

/// `dir/name`, absolute when the directory can be resolved.
pub fn slot_path(dir: &Path, name: &str) -> PathBuf {
    std::fs::canonicalize(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .join(name)
}

pub fn run(args: &Args) -> Result<()> {
    match &args.command {
        DeviceCommand::Init(init) => run_init(init),
    }
}

fn run_init(args: &InitArgs) -> Result<()> {
    let image = fsutil::read(&args.image)?;
    let raw = fsutil::read(&args.trust)?;
    let trust = if raw.starts_with(b"-----BEGIN") {
        let key = keys::read_verifying_key(&args.trust)
            .with_context(|| format!("cannot read trusted key {}", args.trust.display()))?;
        Trust::Key(key.to_bytes())
    } else {
        let now = crate::cmd::root::now_or(None)?;
        SignedRoot::decode(&raw)
            .and_then(|r| r.verify(Some(now)))
            .with_context(|| format!("{} is not a valid trust root", args.trust.display()))?;
        Trust::Root(raw)
    };
    let vendor_id = ids::vendor_id(&args.vendor);
    let class_id = ids::class_id(&vendor_id, &args.class);
    let identity = Identity {
        vendor_id,
        class_id,
        device_id: args
            .device_id
            .as_deref()
            .map(|d| ids::device_id(&class_id, d)),
    };
    std::fs::create_dir_all(&args.device)
        .with_context(|| format!("cannot create {}", args.device.display()))?;
    open(&args.device)
        .init(&image, &trust, args.sequence, &identity)
        .map_err(|e| {
            failed(&args.device, e, || {
                format!("cannot initialise {}", args.device.display())
            })
        })?;
    if crate::ui::json() {
        let report = serde_json::json!({
            "device": args.device,
            "slot_a": args.image,
            "image_size": image.len(),
            "sequence": args.sequence,
        });
        crate::ui::outln!("{report}");
        return Ok(());
    }
    crate::ui::say!(
        "{}: slot a = {} ({} bytes, sequence {}), slot b empty",
        args.device.display(),
        args.image.display(),
        image.len(),
        args.sequence
    );
    Ok(())
}
