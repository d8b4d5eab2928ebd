//! Building signed SUIT bundles, deterministically.
//!
//! [`build_bundle`] does it all with keys in memory. For external signers
//! (offline machines, HSMs, KMS) the steps are public:
//! [`manifest_bytes`] → [`suit_digest`] → [`protected_header`] →
//! [`sig_structure`] (sign these bytes with Ed25519) → [`sign1`] →
//! [`envelope`].
//!
//! Signatures can be added to a finished bundle one signer at a time:
//! [`add_signature`] with a key in memory, or [`external_tbs`] → sign
//! elsewhere (`openssl pkeyutl -sign -rawin`, an HSM, a KMS) →
//! [`attach_signature`]. The bytes to be signed depend only on the
//! manifest, so every signer signs the same bytes in any order.

use core::convert::Infallible;

use deltaseal_verify::bundle::manifest::labels::*;
use deltaseal_verify::bundle::{Bundle, ImageRef, MAX_SIGNATURES, kid};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use minicbor::Encoder;
use minicbor::data::Tag;
use sha2::{Digest, Sha256};

pub use deltaseal_verify::bundle::sig_structure;

/// The SUIT component id deltaseal writes when none is given: `[h'00']`.
pub const DEFAULT_COMPONENT_ID: &[&[u8]] = &[&[0x00]];

/// Everything a release says about one update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseInput<'a> {
    /// Sequence number; devices accept only numbers above the installed one.
    pub sequence: u64,
    /// Vendor identifier (see [`crate::ids::vendor_id`]).
    pub vendor_id: [u8; 16],
    /// Class identifier (see [`crate::ids::class_id`]).
    pub class_id: [u8; 16],
    /// The image the patch applies to.
    pub precursor: ImageRef,
    /// The image the patch produces.
    pub target: ImageRef,
    /// The patch, carried as the integrated payload `#patch`.
    pub patch: &'a [u8],
    /// SHA-256 over the patch header and chunk table
    /// (`deltaseal_verify::patch::index_digest`).
    pub patch_index_digest: [u8; 32],
}

/// Why a bundle could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// No signing key given: devices would refuse the bundle.
    #[error("no signing key given")]
    NoSigners,
    /// More signers than a device accepts.
    #[error("too many signers (at most {max})")]
    TooManySigners {
        /// The limit, [`MAX_SIGNATURES`].
        max: usize,
    },
    /// The component id is over the decoder's limits (parts or part length).
    #[error("invalid component id")]
    InvalidComponentId,
    /// The bundle to add a signature to does not decode.
    #[error("not a valid bundle")]
    Decode(#[source] deltaseal_verify::bundle::DecodeError),
    /// The key has already signed this bundle.
    #[error("already signed by this key")]
    AlreadySigned,
    /// The signature does not verify under the given public key over the
    /// bytes to be signed.
    #[error("signature does not verify under the given public key")]
    BadSignature,
    /// The bundle's payload is not integrated under the name deltaseal uses.
    #[error("unsupported payload name")]
    UnsupportedPayloadName,
}

type Enc = Encoder<Vec<u8>>;
type EncResult = Result<(), minicbor::encode::Error<Infallible>>;

fn finish(f: impl FnOnce(&mut Enc) -> EncResult) -> Vec<u8> {
    let mut e = Encoder::new(Vec::new());
    if let Err(err) = f(&mut e) {
        // The writer is a Vec<u8>, whose error type is Infallible.
        unreachable!("encoding into a Vec cannot fail: {err}");
    }
    e.into_writer()
}

/// `<< [-16, h'digest'] >>`: a bstr-wrapped SUIT_Digest.
fn digest_bstr(e: &mut Enc, digest: &[u8; 32]) -> EncResult {
    e.bytes(&suit_digest_of(digest))?;
    Ok(())
}

fn suit_digest_of(digest: &[u8; 32]) -> Vec<u8> {
    finish(|e| {
        e.array(2)?.i64(ALG_SHA256)?.bytes(digest)?;
        Ok(())
    })
}

/// The encoded SUIT_Manifest (the bytes that go inside the envelope's
/// manifest bstr).
pub fn manifest_bytes(
    input: &ReleaseInput<'_>,
    component_id: &[&[u8]],
) -> Result<Vec<u8>, SignError> {
    manifest_bytes_for_device(input, component_id, None)
}

/// [`manifest_bytes`] for a bundle meant for one device: the shared
/// sequence also sets parameter device-identifier (24) and checks condition
/// device-identifier (24). Devices with another id (or none) refuse it.
pub fn manifest_bytes_for_device(
    input: &ReleaseInput<'_>,
    component_id: &[&[u8]],
    device_id: Option<&[u8; 16]>,
) -> Result<Vec<u8>, SignError> {
    let options = match device_id {
        Some(id) => ManifestOptions::default().device(*id),
        None => ManifestOptions::default(),
    };
    manifest_bytes_with(input, component_id, &options)
}

/// Optional manifest content beyond [`ReleaseInput`]; the default adds
/// nothing, so manifests stay byte-identical to [`manifest_bytes`].
///
/// ```
/// use deltaseal_sign::bundle::ManifestOptions;
/// let options = ManifestOptions::default().deferrable(true);
/// assert!(options.is_deferrable());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManifestOptions {
    device_id: Option<[u8; 16]>,
    deferrable: bool,
}

impl ManifestOptions {
    /// Only for this device (see [`manifest_bytes_for_device`]).
    pub fn device(mut self, device_id: [u8; 16]) -> Self {
        self.device_id = Some(device_id);
        self
    }

    /// Mark the install deferrable to the device's maintenance window:
    /// private-use parameter -262 (urgency) = 1. Not deferrable (the
    /// default) writes no parameter: urgent.
    pub fn deferrable(mut self, deferrable: bool) -> Self {
        self.deferrable = deferrable;
        self
    }

    /// Whether [`ManifestOptions::deferrable`] was set.
    pub fn is_deferrable(&self) -> bool {
        self.deferrable
    }
}

/// [`manifest_bytes`] with [`ManifestOptions`] (device id, urgency).
pub fn manifest_bytes_with(
    input: &ReleaseInput<'_>,
    component_id: &[&[u8]],
    options: &ManifestOptions,
) -> Result<Vec<u8>, SignError> {
    let device_id = options.device_id.as_ref();
    use deltaseal_verify::bundle::manifest::{MAX_COMPONENT_PART, MAX_COMPONENT_PARTS};
    if component_id.len() > MAX_COMPONENT_PARTS
        || component_id.iter().any(|p| p.len() > MAX_COMPONENT_PART)
    {
        return Err(SignError::InvalidComponentId);
    }
    let shared = finish(|e| {
        let (items, params) = if device_id.is_some() { (8, 5) } else { (6, 4) };
        e.array(items)?.i64(DIR_OVERRIDE_PARAMETERS)?.map(params)?;
        e.i64(PARAM_VENDOR_ID)?.bytes(&input.vendor_id)?;
        e.i64(PARAM_CLASS_ID)?.bytes(&input.class_id)?;
        e.i64(PARAM_IMAGE_DIGEST)?;
        digest_bstr(e, &input.target.digest)?;
        e.i64(PARAM_IMAGE_SIZE)?.u64(input.target.size)?;
        if let Some(device) = device_id {
            e.i64(PARAM_DEVICE_ID)?.bytes(device)?;
        }
        e.i64(COND_VENDOR_ID)?.u64(REPORT_ALL)?;
        e.i64(COND_CLASS_ID)?.u64(REPORT_ALL)?;
        if device_id.is_some() {
            e.i64(COND_DEVICE_ID)?.u64(REPORT_ALL)?;
        }
        Ok(())
    });
    let common = finish(|e| {
        e.map(2)?.i64(COMMON_COMPONENTS)?.array(1)?;
        e.array(component_id.len() as u64)?;
        for part in component_id {
            e.bytes(part)?;
        }
        e.i64(COMMON_SHARED_SEQUENCE)?.bytes(&shared)?;
        Ok(())
    });
    let patch_digest: [u8; 32] = Sha256::digest(input.patch).into();
    let install = finish(|e| {
        let params = if options.deferrable { 7 } else { 6 };
        e.array(6)?.i64(DIR_OVERRIDE_PARAMETERS)?.map(params)?;
        e.i64(PARAM_URI)?.str(PAYLOAD_URI)?;
        e.i64(PARAM_PRECURSOR_DIGEST)?;
        digest_bstr(e, &input.precursor.digest)?;
        e.i64(PARAM_PRECURSOR_SIZE)?.u64(input.precursor.size)?;
        e.i64(PARAM_PATCH_DIGEST)?;
        digest_bstr(e, &patch_digest)?;
        e.i64(PARAM_PATCH_SIZE)?.u64(input.patch.len() as u64)?;
        e.i64(PARAM_PATCH_INDEX_DIGEST)?;
        digest_bstr(e, &input.patch_index_digest)?;
        if options.deferrable {
            e.i64(PARAM_URGENCY)?.u64(URGENCY_DEFERRABLE)?;
        }
        e.i64(DIR_DELTA_INSTALL)?.u64(REPORT_ALL)?;
        e.i64(COND_IMAGE_MATCH)?.u64(REPORT_ALL)?;
        Ok(())
    });
    Ok(finish(|e| {
        e.map(4)?;
        e.i64(MANIFEST_VERSION)?.u64(VERSION)?;
        e.i64(MANIFEST_SEQUENCE)?.u64(input.sequence)?;
        e.i64(MANIFEST_COMMON)?.bytes(&common)?;
        e.i64(MANIFEST_INSTALL)?.bytes(&install)?;
        Ok(())
    }))
}

/// The encoded SUIT_Digest `[-16, SHA-256(bstr(manifest))]`: the hash covers
/// the manifest bstr **with its header**. These bytes are the detached
/// COSE payload.
pub fn suit_digest(manifest: &[u8]) -> Vec<u8> {
    let wrapped = finish(|e| {
        e.bytes(manifest)?;
        Ok(())
    });
    suit_digest_of(&Sha256::digest(&wrapped).into())
}

/// The protected header deltaseal emits: `{1: -8 (EdDSA), 4: kid}`.
pub fn protected_header(kid: &[u8; 16]) -> Vec<u8> {
    finish(|e| {
        e.map(2)?.i64(1)?.i64(-8)?.i64(4)?.bytes(kid)?;
        Ok(())
    })
}

/// A tagged COSE_Sign1 with an empty unprotected header and a nil
/// (detached) payload: `18([protected, {}, nil, signature])`.
pub fn sign1(protected: &[u8], signature: &[u8; 64]) -> Vec<u8> {
    finish(|e| {
        e.tag(Tag::new(18))?
            .array(4)?
            .bytes(protected)?
            .map(0)?
            .null()?
            .bytes(signature)?;
        Ok(())
    })
}

/// The tagged SUIT envelope:
/// `107({2: << [<<suit_digest>>, *<<sign1>>] >>, 3: <<manifest>>, "#patch": payload})`.
pub fn envelope(
    manifest: &[u8],
    suit_digest: &[u8],
    sign1s: &[Vec<u8>],
    payload: Option<&[u8]>,
) -> Vec<u8> {
    let auth = finish(|e| {
        e.array(1 + sign1s.len() as u64)?.bytes(suit_digest)?;
        for s in sign1s {
            e.bytes(s)?;
        }
        Ok(())
    });
    finish(|e| {
        e.tag(Tag::new(TAG_ENVELOPE))?;
        e.map(if payload.is_some() { 3 } else { 2 })?;
        e.i64(ENV_AUTH)?.bytes(&auth)?;
        e.i64(ENV_MANIFEST)?.bytes(manifest)?;
        if let Some(p) = payload {
            e.str(PAYLOAD_URI)?.bytes(p)?;
        }
        Ok(())
    })
}

/// Builds the signed bundle for `input` with one COSE_Sign1 per signer (in
/// the order given), carrying the patch as the integrated payload. Same
/// input and keys, same bytes.
pub fn build_bundle(
    input: &ReleaseInput<'_>,
    signers: &[SigningKey],
) -> Result<Vec<u8>, SignError> {
    build_bundle_for_component(input, DEFAULT_COMPONENT_ID, signers)
}

/// [`build_bundle`] with an explicit SUIT component id.
pub fn build_bundle_for_component(
    input: &ReleaseInput<'_>,
    component_id: &[&[u8]],
    signers: &[SigningKey],
) -> Result<Vec<u8>, SignError> {
    build_bundle_with(input, component_id, None, signers)
}

/// [`build_bundle`] with an explicit SUIT component id and, optionally, a
/// device id (see [`manifest_bytes_for_device`]).
pub fn build_bundle_with(
    input: &ReleaseInput<'_>,
    component_id: &[&[u8]],
    device_id: Option<&[u8; 16]>,
    signers: &[SigningKey],
) -> Result<Vec<u8>, SignError> {
    let options = match device_id {
        Some(id) => ManifestOptions::default().device(*id),
        None => ManifestOptions::default(),
    };
    build_bundle_opts(input, component_id, &options, signers)
}

/// [`build_bundle`] with an explicit SUIT component id and
/// [`ManifestOptions`] (device id, urgency).
pub fn build_bundle_opts(
    input: &ReleaseInput<'_>,
    component_id: &[&[u8]],
    options: &ManifestOptions,
    signers: &[SigningKey],
) -> Result<Vec<u8>, SignError> {
    if signers.is_empty() {
        return Err(SignError::NoSigners);
    }
    if signers.len() > MAX_SIGNATURES {
        return Err(SignError::TooManySigners {
            max: MAX_SIGNATURES,
        });
    }
    let manifest = manifest_bytes_with(input, component_id, options)?;
    let digest = suit_digest(&manifest);
    let sign1s: Vec<Vec<u8>> = signers
        .iter()
        .map(|key| {
            let protected = protected_header(&kid(&key.verifying_key()));
            let signature = key.sign(&sig_structure(&protected, &digest));
            sign1(&protected, &signature.to_bytes())
        })
        .collect();
    Ok(envelope(&manifest, &digest, &sign1s, Some(input.patch)))
}

/// The protected header for external signatures: `{1: -8}` (EdDSA, no kid,
/// so the bytes to sign do not depend on who signs; the kid goes in the
/// unprotected header).
pub const EXTERNAL_PROTECTED: &[u8] = &[0xa1, 0x01, 0x27];

/// A tagged COSE_Sign1 with the kid in the unprotected header:
/// `18([protected, {4: kid}, nil, signature])`.
pub fn sign1_unprotected_kid(protected: &[u8], kid: &[u8; 16], signature: &[u8; 64]) -> Vec<u8> {
    finish(|e| {
        e.tag(Tag::new(18))?
            .array(4)?
            .bytes(protected)?
            .map(1)?
            .i64(4)?
            .bytes(kid)?
            .null()?
            .bytes(signature)?;
        Ok(())
    })
}

/// The exact bytes an external signer signs for `bundle`: the COSE
/// `Sig_structure` over [`EXTERNAL_PROTECTED`] and the bundle's SUIT digest.
pub fn external_tbs(bundle: &[u8]) -> Result<Vec<u8>, SignError> {
    let b = Bundle::decode(bundle).map_err(SignError::Decode)?;
    Ok(sig_structure(EXTERNAL_PROTECTED, b.suit_digest()))
}

/// Adds a signature by `key` to an existing bundle (protected header with
/// kid, as [`build_bundle`] writes). Refuses a key that already signed and
/// more than [`MAX_SIGNATURES`] signatures.
pub fn add_signature(bundle: &[u8], key: &SigningKey) -> Result<Vec<u8>, SignError> {
    let protected = protected_header(&kid(&key.verifying_key()));
    let b = Bundle::decode(bundle).map_err(SignError::Decode)?;
    let signature = key.sign(&sig_structure(&protected, b.suit_digest()));
    append(
        &b,
        &key.verifying_key(),
        sign1(&protected, &signature.to_bytes()),
    )
}

/// Adds a raw 64-byte Ed25519 signature made elsewhere over
/// [`external_tbs`] by the holder of `public`. The signature is checked
/// (`verify_strict`) before it is attached.
pub fn attach_signature(
    bundle: &[u8],
    public: &VerifyingKey,
    signature: &[u8; 64],
) -> Result<Vec<u8>, SignError> {
    let b = Bundle::decode(bundle).map_err(SignError::Decode)?;
    let tbs = sig_structure(EXTERNAL_PROTECTED, b.suit_digest());
    if public.is_weak()
        || public
            .verify_strict(&tbs, &Signature::from_bytes(signature))
            .is_err()
    {
        return Err(SignError::BadSignature);
    }
    append(
        &b,
        public,
        sign1_unprotected_kid(EXTERNAL_PROTECTED, &kid(public), signature),
    )
}

fn append(b: &Bundle<'_>, signer: &VerifyingKey, block: Vec<u8>) -> Result<Vec<u8>, SignError> {
    let signer_kid = kid(signer);
    if b.signer_kids().any(|k| k == Some(signer_kid)) {
        return Err(SignError::AlreadySigned);
    }
    if b.signature_blocks().len() >= MAX_SIGNATURES {
        return Err(SignError::TooManySigners {
            max: MAX_SIGNATURES,
        });
    }
    if b.payload().is_some() && b.manifest().payload_uri != PAYLOAD_URI {
        return Err(SignError::UnsupportedPayloadName);
    }
    let mut blocks: Vec<Vec<u8>> = b.signature_blocks().iter().map(|s| s.to_vec()).collect();
    blocks.push(block);
    Ok(envelope(
        b.manifest_bytes(),
        b.suit_digest(),
        &blocks,
        b.payload(),
    ))
}
