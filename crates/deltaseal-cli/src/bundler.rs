//! One signed bundle from an old (or empty) and a new image: the work
//! shared by `deltaseal release` and `deltaseal release-plan`.

use anyhow::{Context, Result};
use deltaseal_diff::DiffOptions;
use deltaseal_sign::bundle::{DEFAULT_COMPONENT_ID, ManifestOptions, build_bundle_opts};
use deltaseal_sign::keys::SigningKey;
use deltaseal_sign::{ReleaseInput, ids};
use deltaseal_verify::bundle::ImageRef;
use deltaseal_verify::digest::sha256;
use deltaseal_verify::patch::{self, Limits};

/// What to build. A full-image bundle has an empty `old`: its patch turns
/// the empty image (size 0, SHA-256 of nothing) into `new`.
pub struct Spec<'a> {
    /// The precursor image; empty for a full-image bundle.
    pub old: &'a [u8],
    /// The image to install.
    pub new: &'a [u8],
    /// Anti-rollback sequence number.
    pub sequence: u64,
    /// Vendor name or UUID.
    pub vendor: &'a str,
    /// Device class name or UUID.
    pub class: &'a str,
    /// Optional single-device restriction.
    pub device: Option<&'a str>,
    /// Devices may defer the install to their maintenance window.
    pub deferrable: bool,
    /// Keys that sign the bundle.
    pub signers: &'a [SigningKey],
    /// Diff engine options.
    pub options: &'a DiffOptions,
    /// Write a recompressing patch where it is smaller
    /// (`deltaseal_recompress::smallest`; host appliers only).
    pub recompress: bool,
}

/// A built bundle and what went into it.
pub struct Built {
    /// The bundle bytes (SUIT envelope).
    pub bundle: Vec<u8>,
    /// Size of the patch inside it.
    pub patch_size: usize,
    /// SUIT vendor id.
    pub vendor_id: [u8; 16],
    /// SUIT class id.
    pub class_id: [u8; 16],
    /// SUIT device id, when restricted to one device.
    pub device_id: Option<[u8; 16]>,
    /// Key ids of the signers, hex, in signing order.
    pub kids: Vec<String>,
}

/// Diffs, builds the manifest and signs. Deterministic: the same spec gives
/// the same bytes (Ed25519 signatures are deterministic, and the diff does
/// not depend on the thread count).
pub fn build(spec: &Spec<'_>) -> Result<Built> {
    let patch_bytes = if spec.recompress {
        deltaseal_recompress::smallest(spec.old, spec.new, spec.options)
            .context("cannot compute the patch")?
    } else {
        deltaseal_diff::diff(spec.old, spec.new, spec.options)
            .context("cannot compute the patch")?
    };
    let index_digest = if deltaseal_recompress::is_recompressing(&patch_bytes) {
        deltaseal_recompress::index_digest(&patch_bytes, &Default::default())
            .context("the patch just made does not decode")?
    } else {
        patch::index_digest(&patch_bytes, &Limits::default())
            .context("the patch just made does not decode")?
    };
    let vendor_id = ids::vendor_id(spec.vendor);
    let class_id = ids::class_id(&vendor_id, spec.class);
    let input = ReleaseInput {
        sequence: spec.sequence,
        vendor_id,
        class_id,
        precursor: image_ref(spec.old),
        target: image_ref(spec.new),
        patch: &patch_bytes,
        patch_index_digest: index_digest,
    };
    let device_id = spec.device.map(|d| ids::device_id(&class_id, d));
    let mut manifest_options = ManifestOptions::default().deferrable(spec.deferrable);
    if let Some(id) = device_id {
        manifest_options = manifest_options.device(id);
    }
    let bundle = build_bundle_opts(
        &input,
        DEFAULT_COMPONENT_ID,
        &manifest_options,
        spec.signers,
    )
    .context("cannot build the bundle")?;
    let kids = spec
        .signers
        .iter()
        .map(|key| hex::encode(deltaseal_verify::bundle::kid(&key.verifying_key())))
        .collect();
    Ok(Built {
        bundle,
        patch_size: patch_bytes.len(),
        vendor_id,
        class_id,
        device_id,
        kids,
    })
}

/// Size and SHA-256 of an image.
pub fn image_ref(bytes: &[u8]) -> ImageRef {
    ImageRef {
        // usize is at most 64 bits on every supported platform.
        size: bytes.len() as u64,
        digest: sha256(bytes),
    }
}
