//! `deltaseal confirm --device DIR [--json]`: keep the image on trial.

use anyhow::Result;

use crate::cmd::{boot, device};

pub fn run(args: &boot::Args) -> Result<()> {
    let update = device::open(&args.device).confirm().map_err(|e| {
        device::failed(&args.device, e, || {
            format!("confirm on {} failed", args.device.display())
        })
    })?;
    if args.json || crate::ui::json() {
        crate::ui::outln!(
            "{}",
            serde_json::json!({
                "confirmed": true,
                "slot": update.slot,
                "sequence": update.image.sequence,
                "report": update.report,
            })
        );
    } else {
        crate::ui::outln!(
            "confirmed sequence {} in slot {}; slot {} is kept as the backup",
            update.image.sequence,
            update.slot.name(),
            update.previous.name()
        );
    }
    Ok(())
}
