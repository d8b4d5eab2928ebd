//! The SUIT_Manifest deltaseal emits and accepts, and its decoder.
//!
//! The decoder accepts exactly one shape (documented in `docs/format.md`,
//! "Bundle format"): anything else — an unknown key, an extra command, a
//! different parameter — is refused rather than ignored, so a manifest can
//! never mean something to a device that its signer did not intend.

use alloc::string::String;
use alloc::vec::Vec;

use super::DecodeError;
use super::cbor::{Key, Reader};

/// The numbers (map keys, command and parameter labels) the manifest uses.
/// Standard ones come from draft-ietf-suit-manifest; negative ones at or
/// below -257 are deltaseal's, from the draft's Private Use ranges.
pub mod labels {
    /// CBOR tag of a SUIT_Envelope.
    pub const TAG_ENVELOPE: u64 = 107;
    /// Envelope key: authentication wrapper.
    pub const ENV_AUTH: i64 = 2;
    /// Envelope key: manifest.
    pub const ENV_MANIFEST: i64 = 3;
    /// Manifest key: manifest version.
    pub const MANIFEST_VERSION: i64 = 1;
    /// Manifest key: sequence number.
    pub const MANIFEST_SEQUENCE: i64 = 2;
    /// Manifest key: common block.
    pub const MANIFEST_COMMON: i64 = 3;
    /// Manifest key: install command sequence.
    pub const MANIFEST_INSTALL: i64 = 20;
    /// The only supported manifest version.
    pub const VERSION: u64 = 1;
    /// Common key: components.
    pub const COMMON_COMPONENTS: i64 = 2;
    /// Common key: shared sequence.
    pub const COMMON_SHARED_SEQUENCE: i64 = 4;
    /// Condition: check vendor identifier.
    pub const COND_VENDOR_ID: i64 = 1;
    /// Condition: check class identifier.
    pub const COND_CLASS_ID: i64 = 2;
    /// Condition: image match (image-digest + image-size of the component).
    pub const COND_IMAGE_MATCH: i64 = 3;
    /// Directive: override parameters.
    pub const DIR_OVERRIDE_PARAMETERS: i64 = 20;
    /// Parameter: vendor identifier (16-byte UUID).
    pub const PARAM_VENDOR_ID: i64 = 1;
    /// Parameter: class identifier (16-byte UUID).
    pub const PARAM_CLASS_ID: i64 = 2;
    /// Parameter: image digest (bstr-wrapped SUIT_Digest).
    pub const PARAM_IMAGE_DIGEST: i64 = 3;
    /// Parameter: image size.
    pub const PARAM_IMAGE_SIZE: i64 = 14;
    /// Parameter: URI.
    pub const PARAM_URI: i64 = 21;
    /// Parameter: device identifier (16-byte UUID), optional.
    pub const PARAM_DEVICE_ID: i64 = 24;
    /// Condition: check device identifier.
    pub const COND_DEVICE_ID: i64 = 24;
    /// Private use parameter: precursor (old) image digest (bstr-wrapped SUIT_Digest).
    pub const PARAM_PRECURSOR_DIGEST: i64 = -257;
    /// Private use parameter: precursor (old) image size.
    pub const PARAM_PRECURSOR_SIZE: i64 = -258;
    /// Private use parameter: patch (payload) digest (bstr-wrapped SUIT_Digest).
    pub const PARAM_PATCH_DIGEST: i64 = -259;
    /// Private use parameter: patch (payload) size.
    pub const PARAM_PATCH_SIZE: i64 = -260;
    /// Private use parameter: patch index digest (bstr-wrapped SUIT_Digest).
    pub const PARAM_PATCH_INDEX_DIGEST: i64 = -261;
    /// Private use parameter, optional: install urgency. Absent means
    /// urgent (install as soon as possible); the only value allowed when
    /// present is [`URGENCY_DEFERRABLE`].
    pub const PARAM_URGENCY: i64 = -262;
    /// Value of [`PARAM_URGENCY`]: the install may wait for the device's
    /// maintenance window.
    pub const URGENCY_DEFERRABLE: u64 = 1;
    /// Private use directive: delta install (apply the patch at URI to the
    /// precursor, writing the component).
    pub const DIR_DELTA_INSTALL: i64 = -257;
    /// Reporting policy deltaseal emits (all four report bits).
    pub const REPORT_ALL: u64 = 15;
    /// COSE algorithm id of SHA-256 in a SUIT_Digest.
    pub const ALG_SHA256: i64 = -16;
    /// The integrated payload key / URI deltaseal emits.
    pub const PAYLOAD_URI: &str = "#patch";
}

use labels::*;

/// Largest encoded manifest accepted (the bytes inside the envelope bstr).
pub const MAX_MANIFEST: usize = 2048;
/// Most elements in a component identifier.
pub const MAX_COMPONENT_PARTS: usize = 4;
/// Longest element of a component identifier.
pub const MAX_COMPONENT_PART: usize = 64;
/// Longest payload URI.
pub const MAX_URI: usize = 64;

/// An image named by size and SHA-256 digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the whole image.
    pub digest: [u8; 32],
}

/// The patch (the bundle's payload) named by size and digests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PatchRef {
    /// Size of the patch in bytes.
    pub size: u64,
    /// SHA-256 of the whole patch.
    pub digest: [u8; 32],
    /// SHA-256 over the patch header and chunk table
    /// (`deltaseal_verify::patch::index_digest`), so a streaming device can
    /// trust the index before the whole patch has arrived.
    pub index_digest: [u8; 32],
}

/// What a bundle's signed manifest says. Only exists once decoded strictly.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Manifest {
    /// Sequence number: must grow with every release for the device class.
    pub sequence: u64,
    /// Vendor identifier (UUID).
    pub vendor_id: [u8; 16],
    /// Class identifier (UUID).
    pub class_id: [u8; 16],
    /// Device identifier (UUID): present only in a bundle meant for one
    /// device; absent, the bundle is for every device of the class.
    pub device_id: Option<[u8; 16]>,
    /// SUIT component identifier of the image the update writes.
    pub component_id: Vec<Vec<u8>>,
    /// URI of the patch: a fragment (`#patch`) names the integrated payload.
    pub payload_uri: String,
    /// The image the patch applies to.
    pub precursor: ImageRef,
    /// The patch.
    pub patch: PatchRef,
    /// The image the patch produces.
    pub target: ImageRef,
    /// The install may wait for the device's maintenance window
    /// (parameter -262 present); `false`: install as soon as possible.
    pub deferrable: bool,
}

fn expect_key<'a>(
    r: &mut Reader<'a>,
    prev: &mut Option<&'a [u8]>,
    want: i64,
) -> Result<(), DecodeError> {
    let (key, raw) = r.key(*prev)?;
    *prev = Some(raw);
    if key == Key::Int(want) {
        Ok(())
    } else {
        Err(DecodeError::UnexpectedField)
    }
}

fn expect_int(r: &mut Reader<'_>, want: i64) -> Result<(), DecodeError> {
    if r.i64()? == want {
        Ok(())
    } else {
        Err(DecodeError::UnsupportedManifest)
    }
}

fn rep_policy(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    if r.uint()? <= REPORT_ALL {
        Ok(())
    } else {
        Err(DecodeError::UnexpectedValue)
    }
}

/// A bstr-wrapped SUIT_Digest `<< [-16, h'32 bytes'] >>`.
fn digest(r: &mut Reader<'_>) -> Result<[u8; 32], DecodeError> {
    let inner = r.bytes(64)?;
    decode_suit_digest(inner)
}

/// Decodes the bytes of a SUIT_Digest `[-16, h'32 bytes']` (SHA-256 only).
pub fn decode_suit_digest(bytes: &[u8]) -> Result<[u8; 32], DecodeError> {
    let mut r = Reader::new(bytes);
    r.array_exact(2)?;
    if r.i64()? != ALG_SHA256 {
        return Err(DecodeError::UnsupportedAlgorithm);
    }
    let d = r.bytes_exact::<32>()?;
    r.finish()?;
    Ok(d)
}

impl Manifest {
    /// Whether this manifest names the patch whose index digest is
    /// `index_digest` and which turns `precursor` into `target` (sizes and
    /// digests, as the patch's header declares them): the check an applier
    /// makes before it trusts a payload's header.
    ///
    /// ```
    /// # fn demo(manifest: &deltaseal_verify::bundle::Manifest) {
    /// use deltaseal_verify::bundle::ImageRef;
    /// let empty = ImageRef { size: 0, digest: [0; 32] };
    /// let _ = manifest.names_patch(&[0; 32], &empty, &empty);
    /// # }
    /// ```
    pub fn names_patch(
        &self,
        index_digest: &[u8; 32],
        precursor: &ImageRef,
        target: &ImageRef,
    ) -> bool {
        self.patch.index_digest == *index_digest
            && self.precursor == *precursor
            && self.target == *target
    }

    /// Strictly decodes a SUIT_Manifest (the bytes inside the envelope's
    /// manifest bstr).
    pub fn decode(bytes: &[u8]) -> Result<Manifest, DecodeError> {
        if bytes.len() > MAX_MANIFEST {
            return Err(DecodeError::TooLarge);
        }
        let mut r = Reader::new(bytes);
        if r.map(4)? != 4 {
            return Err(DecodeError::UnsupportedManifest);
        }
        let mut prev = None;
        expect_key(&mut r, &mut prev, MANIFEST_VERSION)?;
        if r.uint()? != VERSION {
            return Err(DecodeError::UnsupportedVersion);
        }
        expect_key(&mut r, &mut prev, MANIFEST_SEQUENCE)?;
        let sequence = r.uint()?;
        expect_key(&mut r, &mut prev, MANIFEST_COMMON)?;
        let common = r.bytes(MAX_MANIFEST)?;
        let (component_id, vendor_id, class_id, device_id, target) = decode_common(common)?;
        expect_key(&mut r, &mut prev, MANIFEST_INSTALL)?;
        let install = r.bytes(MAX_MANIFEST)?;
        let (payload_uri, precursor, patch, deferrable) = decode_install(install)?;
        r.finish()?;
        Ok(Manifest {
            sequence,
            vendor_id,
            class_id,
            device_id,
            component_id,
            payload_uri,
            precursor,
            patch,
            target,
            deferrable,
        })
    }
}

type Common = (Vec<Vec<u8>>, [u8; 16], [u8; 16], Option<[u8; 16]>, ImageRef);

fn decode_common(bytes: &[u8]) -> Result<Common, DecodeError> {
    let mut r = Reader::new(bytes);
    if r.map(2)? != 2 {
        return Err(DecodeError::UnsupportedManifest);
    }
    let mut prev = None;
    expect_key(&mut r, &mut prev, COMMON_COMPONENTS)?;
    // Exactly one component.
    if r.array(1)? != 1 {
        return Err(DecodeError::UnsupportedManifest);
    }
    let parts = r.array(MAX_COMPONENT_PARTS)?;
    let mut component_id = Vec::with_capacity(parts);
    for _ in 0..parts {
        component_id.push(r.bytes(MAX_COMPONENT_PART)?.to_vec());
    }
    expect_key(&mut r, &mut prev, COMMON_SHARED_SEQUENCE)?;
    let shared = r.bytes(MAX_MANIFEST)?;
    r.finish()?;

    // Shared sequence:
    // [20, {1: vendor, 2: class, 3: <<digest>>, 14: size}, 1, rep, 2, rep]
    // or, for one device:
    // [20, {1: vendor, 2: class, 3: <<digest>>, 14: size, 24: device}, 1, rep, 2, rep, 24, rep]
    let mut s = Reader::new(shared);
    let with_device = match s.array(8)? {
        6 => false,
        8 => true,
        _ => return Err(DecodeError::UnsupportedManifest),
    };
    expect_int(&mut s, DIR_OVERRIDE_PARAMETERS)?;
    if s.map(5)? != if with_device { 5 } else { 4 } {
        return Err(DecodeError::UnsupportedManifest);
    }
    let mut prev = None;
    expect_key(&mut s, &mut prev, PARAM_VENDOR_ID)?;
    let vendor_id = s.bytes_exact::<16>()?;
    expect_key(&mut s, &mut prev, PARAM_CLASS_ID)?;
    let class_id = s.bytes_exact::<16>()?;
    expect_key(&mut s, &mut prev, PARAM_IMAGE_DIGEST)?;
    let target_digest = digest(&mut s)?;
    expect_key(&mut s, &mut prev, PARAM_IMAGE_SIZE)?;
    let target_size = s.uint()?;
    let device_id = if with_device {
        expect_key(&mut s, &mut prev, PARAM_DEVICE_ID)?;
        Some(s.bytes_exact::<16>()?)
    } else {
        None
    };
    expect_int(&mut s, COND_VENDOR_ID)?;
    rep_policy(&mut s)?;
    expect_int(&mut s, COND_CLASS_ID)?;
    rep_policy(&mut s)?;
    if with_device {
        expect_int(&mut s, COND_DEVICE_ID)?;
        rep_policy(&mut s)?;
    }
    s.finish()?;
    Ok((
        component_id,
        vendor_id,
        class_id,
        device_id,
        ImageRef {
            size: target_size,
            digest: target_digest,
        },
    ))
}

type Install = (String, ImageRef, PatchRef, bool);

fn decode_install(bytes: &[u8]) -> Result<Install, DecodeError> {
    // [20, {21: uri, -257: <<d>>, -258: n, -259: <<d>>, -260: n, -261: <<d>>
    //       [, -262: 1]},
    //  -257, rep, 3, rep]
    let mut s = Reader::new(bytes);
    s.array_exact(6)?;
    expect_int(&mut s, DIR_OVERRIDE_PARAMETERS)?;
    let deferrable = match s.map(7)? {
        6 => false,
        7 => true,
        _ => return Err(DecodeError::UnsupportedManifest),
    };
    let mut prev = None;
    expect_key(&mut s, &mut prev, PARAM_URI)?;
    let uri = s.text(MAX_URI)?;
    if !uri.starts_with('#') || uri.len() < 2 {
        // Only integrated payloads (fragment-only references) for now.
        return Err(DecodeError::UnsupportedManifest);
    }
    expect_key(&mut s, &mut prev, PARAM_PRECURSOR_DIGEST)?;
    let precursor_digest = digest(&mut s)?;
    expect_key(&mut s, &mut prev, PARAM_PRECURSOR_SIZE)?;
    let precursor_size = s.uint()?;
    expect_key(&mut s, &mut prev, PARAM_PATCH_DIGEST)?;
    let patch_digest = digest(&mut s)?;
    expect_key(&mut s, &mut prev, PARAM_PATCH_SIZE)?;
    let patch_size = s.uint()?;
    expect_key(&mut s, &mut prev, PARAM_PATCH_INDEX_DIGEST)?;
    let index_digest = digest(&mut s)?;
    if deferrable {
        expect_key(&mut s, &mut prev, PARAM_URGENCY)?;
        if s.uint()? != URGENCY_DEFERRABLE {
            return Err(DecodeError::UnexpectedValue);
        }
    }
    expect_int(&mut s, DIR_DELTA_INSTALL)?;
    rep_policy(&mut s)?;
    expect_int(&mut s, COND_IMAGE_MATCH)?;
    rep_policy(&mut s)?;
    s.finish()?;
    Ok((
        String::from(uri),
        ImageRef {
            size: precursor_size,
            digest: precursor_digest,
        },
        PatchRef {
            size: patch_size,
            digest: patch_digest,
            index_digest,
        },
        deferrable,
    ))
}
