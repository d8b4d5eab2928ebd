//! A reference A/B update agent for Linux-class devices.
//!
//! The device is a directory: two image slots (`slot-a.img`, `slot-b.img`),
//! a state directory (`state/state.json`: installed sequence, vendor/class
//! ids, active and pending slot; `state/trust.*`; `state/journal.json` while
//! an install is under way), `reports/` (one JSON record per install,
//! deferrals included) and `lock`, which keeps a second agent process off
//! the device (see [`Agent`]).
//! Every state write is atomic (temp file, fsync, rename, fsync directory),
//! and every byte goes through the [`storage::Storage`] trait, so the
//! power-cut tests can interrupt the agent after any single operation.
//!
//! ```text
//! install: bundle ─► decode ─► trust root threshold ─► policy (sequence > installed,
//!   vendor, class, expiry, not rolled back) ─► [window: deferrable waits, report only]
//!   ─► payload + patch index vs manifest ─► precursor = active slot
//!   ─► per chunk: apply, write inactive slot, fsync, journal ─► final digest ─► pending
//! boot:    pending ─► trial (booted once) ─► confirm ─► installed sequence raised
//!                     trial not confirmed ─► next boot rolls back to the kept slot
//! ```
//!
//! This crate does not verify anything itself: [`deltaseal_verify`] does,
//! in the documented order of checks. It does not talk to a network or a
//! bootloader; `boot` simulates what MCUboot's test/revert swap would do.
//!
//! Which type do I use:
//! - [`Agent`] over [`storage::DirStorage`] for a real device directory;
//! - [`sim::PowerCutStorage`] to prove power-cut safety of a flow;
//! - [`report::Report`] and [`report::csv`] for operators.
//!
//! ```no_run
//! use deltaseal_agent::{Agent, InstallOptions, storage::DirStorage};
//! # fn demo(bundle: &[u8]) -> Result<(), deltaseal_agent::AgentError> {
//! let mut agent = Agent::new(DirStorage::new("/var/lib/deltaseal/pump-1"));
//! agent.install(bundle, &InstallOptions::default())?; // resumes if interrupted
//! agent.boot()?; // trial
//! agent.confirm()?; // permanent; installed sequence raised
//! # Ok(()) }
//! ```
//!
//! # Limits
//!
//! The bundle is held in memory; the old image is read with positioned
//! reads; one chunk of output (the patch's chunk size, 1 MiB by default) is
//! held at a time. Host [`deltaseal_verify::patch::Limits::default`] apply.
#![forbid(unsafe_code)]
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]

mod agent;
pub mod error;
pub mod report;
pub mod sim;
pub mod state;
pub mod storage;
pub mod window;

pub use agent::{
    Agent, BootOutcome, Identity, InstallOptions, InstallOutcome, Status, Trust, error_line,
};
pub use error::AgentError;
pub use window::Window;
