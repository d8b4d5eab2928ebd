//! `deltaseal status --device DIR [--json]`

use std::path::PathBuf;

use anyhow::{Context, Result};
use deltaseal_agent::state::{Image, Slot};
use serde_json::{Value, json};

use crate::cmd::device;

/// Arguments of `deltaseal status`.
#[derive(clap::Args)]
pub struct Args {
    /// The device directory.
    #[arg(long, value_name = "DIR")]
    device: PathBuf,
    /// Print the status as JSON.
    #[arg(long)]
    json: bool,
}

fn image_json(image: Option<&Image>) -> Value {
    image.map_or(
        Value::Null,
        |i| json!({ "size": i.size, "sha256": i.sha256, "sequence": i.sequence }),
    )
}

pub fn run(args: &Args) -> Result<()> {
    let st = device::open(&args.device)
        .status()
        .with_context(|| format!("cannot read the state of {}", args.device.display()))?;
    let d = &st.detail;
    let slot = |s: Slot| {
        json!({
            "path": device::slot_path(&args.device, s.file()),
            "image": image_json(d.image(s)),
        })
    };
    let update = |u: &Option<deltaseal_agent::state::Update>| {
        u.as_ref().map_or(Value::Null, |u| {
            json!({ "slot": u.slot, "sequence": u.image.sequence, "sha256": u.image.sha256,
                    "previous": u.previous, "report": u.report })
        })
    };
    let value = json!({
        "device": args.device,
        "state": st.state,
        "active_slot": device::slot_path(&args.device, &st.active_slot),
        "active": st.active,
        "sequence": st.sequence,
        "pending": update(&d.pending),
        "trial": update(&d.trial),
        "rolled_back": d.rolled_back,
        "journal": st.journal.as_ref().map(|j| json!({
            "slot": j.slot, "sequence": j.sequence,
            "chunks_done": j.chunks_done, "chunks_total": j.chunks_total,
        })),
        "slots": { "a": slot(Slot::A), "b": slot(Slot::B) },
    });
    if args.json || crate::ui::json() {
        crate::ui::outln!("{value}");
        return Ok(());
    }
    crate::ui::outln!("device    {}", args.device.display());
    crate::ui::outln!("state     {}", st.state);
    crate::ui::outln!(
        "active    slot {} ({})",
        st.active.name(),
        device::slot_path(&args.device, &st.active_slot).display()
    );
    crate::ui::outln!("sequence  {} (installed, confirmed)", st.sequence);
    for s in [Slot::A, Slot::B] {
        match d.image(s) {
            Some(i) => crate::ui::outln!(
                "slot {}    sequence {}, {} bytes, sha256 {}",
                s.name(),
                i.sequence,
                i.size,
                i.sha256
            ),
            None => crate::ui::outln!("slot {}    (no verified image)", s.name()),
        }
    }
    if let Some(u) = d.pending.as_ref().or(d.trial.as_ref()) {
        crate::ui::outln!(
            "update    sequence {} in slot {} ({})",
            u.image.sequence,
            u.slot.name(),
            st.state
        );
    }
    if let Some(j) = &st.journal {
        crate::ui::outln!(
            "journal   sequence {} into slot {}: {}/{} chunks written (install again to resume)",
            j.sequence,
            j.slot.name(),
            j.chunks_done,
            j.chunks_total
        );
    }
    if let Some(r) = d.rolled_back {
        crate::ui::outln!("rolled back: sequence {r} (reinstall needs --retry-rolled-back)");
    }
    Ok(())
}
