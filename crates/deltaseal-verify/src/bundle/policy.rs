//! Device policy applied to an authenticated manifest, and the checked
//! payload of an approved bundle.

use super::{Manifest, sha256};

/// What the device requires of a bundle besides a trusted signature.
///
/// `Policy::default()` puts no constraint on sequence, expiry, vendor or
/// class (but refuses bundles that name a device id);
/// payload size and digest are still always checked by
/// [`Approved::checked_payload`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// Sequence number of the installed image: the bundle must be strictly newer.
    pub installed_sequence: Option<u64>,
    /// Vendor identifier the bundle must name.
    pub vendor_id: Option<[u8; 16]>,
    /// Class identifier the bundle must name.
    pub class_id: Option<[u8; 16]>,
    /// This device's identifier. A bundle that names a device id is only
    /// accepted when it equals this one (so a device without an id refuses
    /// it); a bundle without one is for every device of its class.
    pub device_id: Option<[u8; 16]>,
    /// Trusted current time, Unix seconds. Expiry can only be checked with a
    /// trusted time source (RTC with secure time sync, signed time from the
    /// backend): `None` means the device has none, and expiry is **not
    /// checked**. With `Some(now)`, metadata is valid while `now < expires`.
    pub now: Option<u64>,
}

/// Why an authenticated bundle is not acceptable for this device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Rollback or replay: the bundle is not newer than what is installed.
    #[error("sequence {offered} is not newer than installed {installed}")]
    SequenceNotNewer {
        /// Installed sequence number.
        installed: u64,
        /// Sequence number in the bundle.
        offered: u64,
    },
    /// The bundle is for another vendor.
    #[error("vendor id mismatch")]
    VendorMismatch,
    /// The bundle is for another device class.
    #[error("class id mismatch")]
    ClassMismatch,
    /// The bundle is for another device (or names a device and this
    /// device has no id).
    #[error("device id mismatch")]
    DeviceMismatch,
    /// The trust root that authenticated the bundle has expired.
    #[error("trust root expired at {expires} (now {now})")]
    Expired {
        /// Expiry, Unix seconds.
        expires: u64,
        /// Trusted time, Unix seconds.
        now: u64,
    },
    /// The bundle carries no integrated payload.
    #[error("payload missing")]
    PayloadMissing,
    /// The payload size differs from the manifest's.
    #[error("payload size mismatch")]
    PayloadSizeMismatch,
    /// The payload digest differs from the manifest's.
    #[error("payload digest mismatch")]
    PayloadDigestMismatch,
}

impl Policy {
    /// Fails when `expires` is known, a trusted time is set and
    /// `now >= expires`.
    pub fn check_expiry(&self, expires: Option<u64>) -> Result<(), PolicyError> {
        match (expires, self.now) {
            (Some(expires), Some(now)) if now >= expires => {
                Err(PolicyError::Expired { expires, now })
            }
            _ => Ok(()),
        }
    }

    pub(super) fn check(&self, m: &Manifest) -> Result<(), PolicyError> {
        if let Some(installed) = self.installed_sequence
            && m.sequence <= installed
        {
            return Err(PolicyError::SequenceNotNewer {
                installed,
                offered: m.sequence,
            });
        }
        if self.vendor_id.is_some_and(|v| v != m.vendor_id) {
            return Err(PolicyError::VendorMismatch);
        }
        if self.class_id.is_some_and(|c| c != m.class_id) {
            return Err(PolicyError::ClassMismatch);
        }
        if m.device_id.is_some() && m.device_id != self.device_id {
            return Err(PolicyError::DeviceMismatch);
        }
        Ok(())
    }
}

/// A bundle that is authentic and acceptable to this device's policy.
#[derive(Debug, Clone)]
pub struct Approved<'a> {
    manifest: Manifest,
    payload: Option<&'a [u8]>,
}

impl<'a> Approved<'a> {
    pub(super) fn new(manifest: Manifest, payload: Option<&'a [u8]>) -> Self {
        Approved { manifest, payload }
    }

    /// The approved manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The integrated patch, returned only once its size and SHA-256 match
    /// the signed manifest, before anything parses it.
    pub fn checked_payload(&self) -> Result<&'a [u8], PolicyError> {
        let payload = self.payload.ok_or(PolicyError::PayloadMissing)?;
        if u64::try_from(payload.len()).ok() != Some(self.manifest.patch.size) {
            return Err(PolicyError::PayloadSizeMismatch);
        }
        if sha256(payload) != self.manifest.patch.digest {
            return Err(PolicyError::PayloadDigestMismatch);
        }
        Ok(payload)
    }
}
