//! `deltaseal boot --device DIR [--json]`: simulate a reboot.

use std::path::PathBuf;

use anyhow::Result;
use deltaseal_agent::BootOutcome;

use crate::cmd::device;

/// Arguments of `deltaseal boot` and `deltaseal confirm`.
#[derive(clap::Args)]
pub struct Args {
    /// The device directory.
    #[arg(long, value_name = "DIR")]
    pub device: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &Args) -> Result<()> {
    let outcome = device::open(&args.device).boot().map_err(|e| {
        device::failed(&args.device, e, || {
            format!("boot of {} failed", args.device.display())
        })
    })?;
    if args.json || crate::ui::json() {
        crate::ui::outln!("{}", serde_json::to_value(&outcome)?);
        return Ok(());
    }
    match outcome {
        BootOutcome::Normal { slot } => crate::ui::outln!("booted slot {}", slot.name()),
        BootOutcome::Trial { slot, sequence } => crate::ui::outln!(
            "booted slot {} on trial (sequence {sequence}): `deltaseal confirm` before the \
             next boot keeps it, otherwise the next boot rolls back",
            slot.name()
        ),
        BootOutcome::RolledBack { slot, sequence } => crate::ui::outln!(
            "sequence {sequence} was not confirmed: rolled back, booted slot {}",
            slot.name()
        ),
        BootOutcome::PendingDiscarded { slot } => crate::ui::outln!(
            "the pending image changed on disk and was dropped; booted slot {}",
            slot.name()
        ),
        _ => crate::ui::outln!("booted"),
    }
    Ok(())
}
