//! The device's persistent state (`state/state.json`), the install journal
//! (`state/journal.json`) and the one way they are written: atomically.

use serde::{Deserialize, Serialize};

use crate::error::AgentError;
use crate::storage::{Storage, parent};

/// Path of the state file.
pub const STATE: &str = "state/state.json";
/// Path of the install journal (present only while an install is under way).
pub const JOURNAL: &str = "state/journal.json";
/// Path of a trust root document (when the device trusts a root).
pub const TRUST_ROOT: &str = "state/trust.cbor";
/// Path of a single trusted Ed25519 key, hex (when the device trusts a key).
pub const TRUST_KEY: &str = "state/trust.key";
/// Directory of install reports.
pub const REPORTS: &str = "reports";

/// One of the two image slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    /// Slot A, `slot-a.img`.
    A,
    /// Slot B, `slot-b.img`.
    B,
}

impl Slot {
    /// The other slot.
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    /// The slot's image file (a storage path).
    pub fn file(self) -> &'static str {
        match self {
            Slot::A => "slot-a.img",
            Slot::B => "slot-b.img",
        }
    }

    /// `"a"` or `"b"`.
    pub fn name(self) -> &'static str {
        match self {
            Slot::A => "a",
            Slot::B => "b",
        }
    }
}

/// What a slot holds, when it holds a known, verified image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, hex.
    pub sha256: String,
    /// Sequence number of the release that wrote it.
    pub sequence: u64,
}

/// An update between install and confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    /// The slot holding the new image.
    pub slot: Slot,
    /// The slot it replaces (the backup, kept intact).
    pub previous: Slot,
    /// The new image.
    pub image: Image,
    /// SHA-256 of the bundle, hex.
    pub bundle_sha256: String,
    /// Report file name under `reports/`.
    pub report: String,
    /// When the device switched to the new slot (Unix ms), once booted.
    pub switched_ms: Option<u64>,
}

/// `state/state.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Format of this file (1).
    pub format: u32,
    /// Vendor id the device accepts, hex.
    pub vendor_id: String,
    /// Class id the device accepts, hex.
    pub class_id: String,
    /// This device's id, hex, if it has one.
    pub device_id: Option<String>,
    /// Sequence number of the confirmed image: bundles must be newer. Only
    /// ever raised, and only by a confirmation.
    pub installed_sequence: u64,
    /// The slot the device boots.
    pub active: Slot,
    /// Slot A's verified image, if any.
    pub slot_a: Option<Image>,
    /// Slot B's verified image, if any.
    pub slot_b: Option<Image>,
    /// Installed, verified, not booted yet.
    pub pending: Option<Update>,
    /// Booted once on trial, not confirmed yet: the next boot rolls it back.
    pub trial: Option<Update>,
    /// Highest sequence ever rolled back: not reinstalled without an
    /// explicit retry.
    pub rolled_back: Option<u64>,
}

impl State {
    /// What slot `slot` holds.
    pub fn image(&self, slot: Slot) -> Option<&Image> {
        match slot {
            Slot::A => self.slot_a.as_ref(),
            Slot::B => self.slot_b.as_ref(),
        }
    }

    /// Record what slot `slot` holds.
    pub fn set_image(&mut self, slot: Slot, image: Option<Image>) {
        match slot {
            Slot::A => self.slot_a = image,
            Slot::B => self.slot_b = image,
        }
    }
}

/// `state/journal.json`: progress of the install under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// SHA-256 of the bundle being installed, hex.
    pub bundle_sha256: String,
    /// The slot being written.
    pub slot: Slot,
    /// The bundle's sequence number.
    pub sequence: u64,
    /// Chunks in the patch.
    pub chunks_total: u32,
    /// Chunks written and synced, from the first: the install resumes here.
    pub chunks_done: u32,
    /// Report file name under `reports/`.
    pub report: String,
}

/// Writes `bytes` to `path` so that after a power cut `path` holds either
/// its old or its new contents: temp file, fsync, rename, fsync directory.
pub fn write_atomic<S: Storage + ?Sized>(
    storage: &mut S,
    path: &str,
    bytes: &[u8],
) -> Result<(), AgentError> {
    let tmp = format!("{path}.tmp");
    let io = |e| AgentError::io(path, e);
    storage.set_len(&tmp, 0).map_err(io)?;
    storage.write_at(&tmp, 0, bytes).map_err(io)?;
    storage.sync(&tmp).map_err(io)?;
    storage.rename(&tmp, path).map_err(io)?;
    storage.sync_dir(parent(path)).map_err(io)
}

/// Serialises `value` as pretty JSON and writes it atomically.
pub fn write_json<S: Storage + ?Sized, T: Serialize>(
    storage: &mut S,
    path: &str,
    value: &T,
) -> Result<(), AgentError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| AgentError::corrupt(path, e))?;
    bytes.push(b'\n');
    write_atomic(storage, path, &bytes)
}

/// Reads JSON from `path`, `None` if the file does not exist.
pub fn read_json<S: Storage + ?Sized, T: for<'de> Deserialize<'de>>(
    storage: &mut S,
    path: &str,
) -> Result<Option<T>, AgentError> {
    match storage.read(path).map_err(|e| AgentError::io(path, e))? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| AgentError::corrupt(path, e)),
    }
}

/// Removes `path` durably (remove, fsync directory).
pub fn remove_durably<S: Storage + ?Sized>(storage: &mut S, path: &str) -> Result<(), AgentError> {
    storage.remove(path).map_err(|e| AgentError::io(path, e))?;
    storage
        .sync_dir(parent(path))
        .map_err(|e| AgentError::io(path, e))
}
