//! Why an agent operation failed.

use std::io;

use deltaseal_verify::bundle::{DecodeError, PolicyError, SignatureError};
use deltaseal_verify::patch::PatchError;
use deltaseal_verify::root::RootError;
use deltaseal_verify::update::UpdateError;

use crate::state::Slot;

/// Why an agent operation failed. Rejections of a bundle leave the device
/// on its current image; I/O failures (a power cut) are recovered by the
/// next [`crate::Agent::boot`] and a repeated install, which resumes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// Reading or writing the device directory failed.
    #[error("i/o failed on {path}")]
    Io {
        /// Storage path.
        path: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A state file does not parse.
    #[error("corrupt state file {path}")]
    CorruptState {
        /// Storage path.
        path: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The directory has no device state (`deltaseal device init` first).
    #[error("not a device directory (no state/state.json)")]
    NotInitialised,
    /// `init` on a directory that already holds a device.
    #[error("the directory already holds a device")]
    AlreadyInitialised,
    /// The stored trust root or key is not valid (or has expired).
    #[error("the device's trust root is not valid")]
    Trust(#[source] RootError),
    /// The stored trusted key is not a valid Ed25519 key.
    #[error("the device's trusted key is not valid")]
    TrustKey,
    /// The bundle does not decode.
    #[error("not a valid bundle")]
    Decode(#[source] DecodeError),
    /// Not signed by enough trusted keys.
    #[error("signature check failed")]
    Signature(#[source] SignatureError),
    /// Sequence, expiry, vendor, class or device refused.
    #[error("policy check failed")]
    Policy(#[source] PolicyError),
    /// This sequence was rolled back here before.
    #[error("sequence {sequence} was rolled back on this device; retry explicitly to reinstall it")]
    RolledBack {
        /// The bundle's sequence.
        sequence: u64,
    },
    /// Another agent holds the device's lock (it is installing, booting or
    /// confirming): this one changed nothing.
    #[error("another process holds the device's lock")]
    Locked,
    /// Another update is pending or on trial.
    #[error(
        "update {sequence} is {state}: boot and confirm it (or boot again to roll it back) first"
    )]
    Busy {
        /// Its sequence.
        sequence: u64,
        /// `pending` or `on trial`.
        state: &'static str,
    },
    /// The patch does not fit the manifest or the running image.
    #[error("update rejected")]
    Update(#[source] UpdateError),
    /// `confirm` without an image on trial.
    #[error("nothing to confirm: no image is on trial")]
    NothingToConfirm,
    /// A slot does not hold the image the state says it holds.
    #[error("slot {} does not hold the image recorded for it", .slot.name())]
    SlotMismatch {
        /// The slot.
        slot: Slot,
    },
}

impl AgentError {
    pub(crate) fn io(path: &str, source: io::Error) -> Self {
        AgentError::Io {
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn corrupt(path: &str, source: serde_json::Error) -> Self {
        AgentError::CorruptState {
            path: path.to_owned(),
            source,
        }
    }

    /// True for failures of the storage (a power cut, a full disk), as
    /// opposed to a rejected bundle.
    pub fn is_io(&self) -> bool {
        matches!(self, AgentError::Io { .. })
    }
}

impl From<PatchError> for AgentError {
    fn from(e: PatchError) -> Self {
        AgentError::Update(UpdateError::Patch(e))
    }
}
