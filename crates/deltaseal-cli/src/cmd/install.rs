//! `deltaseal install BUNDLE --device DIR [--window HH:MM-HH:MM] [--now TIME] [--json]`

use std::path::PathBuf;

use anyhow::Result;
use deltaseal_agent::report::rfc3339;
use deltaseal_agent::{InstallOptions, InstallOutcome, Window};

use crate::cmd::device;
use crate::fsutil;

/// Arguments of `deltaseal install`.
#[derive(clap::Args)]
pub struct Args {
    /// The update bundle.
    bundle: PathBuf,
    /// The device directory (`deltaseal device init`).
    #[arg(long, value_name = "DIR")]
    device: PathBuf,
    /// Maintenance window, daily, UTC: a bundle released with
    /// `--deferrable` waits for it (urgent bundles install at once).
    #[arg(long, value_name = "HH:MM-HH:MM")]
    window: Option<Window>,
    /// Time for expiry checks and the window (RFC 3339 UTC or Unix
    /// seconds); default: the system clock.
    #[arg(long, value_name = "TIME")]
    now: Option<String>,
    /// Reinstall a sequence this device rolled back before.
    #[arg(long)]
    retry_rolled_back: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &Args) -> Result<()> {
    let now = crate::cmd::root::now_or(args.now.as_deref())?;
    let bundle = fsutil::read(&args.bundle)?;
    let options = InstallOptions {
        bundle_name: args.bundle.display().to_string(),
        trusted_now: Some(now),
        window: args.window,
        window_now: now,
        retry_rolled_back: args.retry_rolled_back,
    };
    let outcome = device::open(&args.device)
        .install(&bundle, &options)
        .map_err(|e| {
            device::failed(&args.device, e, || {
                format!("install of {} refused", args.bundle.display())
            })
        })?;
    if args.json || crate::ui::json() {
        let mut value = serde_json::to_value(&outcome)?;
        if let InstallOutcome::Deferred { install_at, .. } = outcome {
            value["install_at"] = rfc3339(install_at).into();
            value["install_at_unix"] = install_at.into();
            value["window"] = args.window.map(|w| w.to_string()).into();
        }
        crate::ui::outln!("{value}");
        return Ok(());
    }
    match outcome {
        InstallOutcome::Pending {
            slot,
            sequence,
            chunks,
            resumed_from_chunk,
            ..
        } => {
            let resumed = resumed_from_chunk
                .map(|c| format!(", resumed at chunk {c}"))
                .unwrap_or_default();
            crate::ui::outln!(
                "installed sequence {sequence} into slot {} ({chunks} chunks{resumed}); \
                 pending: `deltaseal boot` tries it, `deltaseal confirm` keeps it",
                slot.name()
            );
        }
        InstallOutcome::AlreadyInstalled { sequence } => {
            crate::ui::outln!("sequence {sequence} is already installed (pending or on trial)");
        }
        InstallOutcome::Deferred {
            sequence,
            install_at,
            ..
        } => {
            crate::ui::outln!(
                "deferred: sequence {sequence} is deferrable and now is outside the \
                 maintenance window {} UTC; it will install at {}",
                args.window.map(|w| w.to_string()).unwrap_or_default(),
                rfc3339(install_at)
            );
        }
        _ => crate::ui::outln!("done"),
    }
    Ok(())
}
