//! The last stage: from an [`Approved`] manifest to a verified new image.
//!
//! Order matters (design.md, "Order of checks"): the payload's size and
//! digest are checked against the signed manifest before the patch parser
//! sees a byte of it; the patch header must agree with the manifest on every
//! digest and size; the old image is hashed and compared before anything is
//! written; the new image is only good once its final digest matches.

use crate::bundle::{Approved, PolicyError};
use crate::patch::{self, ApplySummary, ImageSink, Limits, OldImage, PatchError, PatchHeader};

/// Why an approved update could not be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// The integrated payload is missing or differs from the signed manifest.
    #[error("payload rejected")]
    Payload(#[source] PolicyError),
    /// The running (old) image is not the precursor the manifest names.
    #[error("the running image is not the one this update was made for")]
    PrecursorMismatch,
    /// The patch header disagrees with the signed manifest on a size or digest.
    #[error("the patch does not match the signed manifest")]
    PatchManifestMismatch,
    /// Applying the patch failed.
    #[error("patch apply failed")]
    Patch(#[source] PatchError),
}

/// Applies an approved update: reads the old image through `old`, streams the
/// new one into `sink`, and succeeds only if the new image's size and SHA-256
/// equal the manifest's. On error, whatever reached `sink` must be discarded.
///
/// ```no_run
/// # fn demo(bundle_bytes: &[u8], key: ed25519_dalek::VerifyingKey, old: &[u8])
/// # -> Result<(), Box<dyn core::error::Error>> {
/// use deltaseal_verify::{bundle::{Bundle, Policy}, patch::Limits, update::apply_update};
///
/// let approved = Bundle::decode(bundle_bytes)?
///     .authenticate(&[key])?
///     .approve(&Policy { installed_sequence: Some(6), ..Policy::default() })?;
/// let mut new_image = Vec::new();
/// apply_update(&approved, &mut &old[..], &mut new_image, &Limits::default())?;
/// # Ok(()) }
/// ```
pub fn apply_update<O, S>(
    approved: &Approved<'_>,
    old: &mut O,
    sink: &mut S,
    limits: &Limits,
) -> Result<ApplySummary, UpdateError>
where
    O: OldImage + ?Sized,
    S: ImageSink + ?Sized,
{
    let manifest = approved.manifest();
    let payload = approved.checked_payload().map_err(UpdateError::Payload)?;
    if old.len() != manifest.precursor.size {
        return Err(UpdateError::PrecursorMismatch);
    }
    let header = PatchHeader::decode(payload, limits).map_err(UpdateError::Patch)?;
    let index_digest = patch::index_digest(payload, limits).map_err(UpdateError::Patch)?;
    if !manifest.names_patch(&index_digest, &header.precursor(), &header.target()) {
        return Err(UpdateError::PatchManifestMismatch);
    }
    // apply() hashes the old image before writing anything; since the header
    // agrees with the manifest, that is the precursor check.
    patch::apply(old, payload, sink, limits).map_err(|err| match err {
        PatchError::OldImageMismatch => UpdateError::PrecursorMismatch,
        other => UpdateError::Patch(other),
    })
}
