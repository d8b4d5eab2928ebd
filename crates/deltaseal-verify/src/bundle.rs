//! Signed update bundles: a SUIT envelope (draft-ietf-suit-manifest, CBOR tag
//! 107) authenticated by COSE_Sign1 (RFC 9052) with Ed25519, carrying the
//! patch as an integrated payload.
//!
//! The types follow the order of the checks; each stage can only be reached
//! through the previous one:
//!
//! ```text
//! &[u8] ─Bundle::decode─► Bundle ─authenticate_root(&TrustRoot)─► Authenticated
//!       ─approve(&Policy)─► Approved ─checked_payload()─► patch bytes (digest checked)
//! ```
//!
//! Decoding is strict (see the `cbor` submodule: deterministic encoding only,
//! no duplicate or unsorted keys, no indefinite lengths, no trailing bytes,
//! bounded nesting and sizes) and the manifest must have exactly the shape
//! deltaseal emits. `docs/format.md` ("Bundle format") is the byte-level
//! description.
//!
//! ```
//! use deltaseal_verify::bundle::{Bundle, DecodeError};
//! // Not a SUIT envelope (tag 107) at all:
//! assert_eq!(Bundle::decode(&[0xa0]).err(), Some(DecodeError::UnexpectedType));
//! ```

pub mod cbor;
pub mod cose;
pub mod manifest;
pub mod policy;

use alloc::vec::Vec;

use ed25519_dalek::{Signature, VerifyingKey};

use crate::digest::sha256;
use cbor::{Key, Reader};
use cose::Sign1;
pub use cose::sig_structure;
use manifest::labels::{ENV_AUTH, ENV_MANIFEST, TAG_ENVELOPE};
pub use manifest::{ImageRef, Manifest, PatchRef};
pub use policy::{Approved, Policy, PolicyError};

use crate::root::TrustRoot;

/// Most COSE_Sign1 blocks (signers) accepted in one bundle.
pub const MAX_SIGNATURES: usize = 8;
/// Largest encoded COSE_Sign1 accepted.
pub const MAX_SIGN1: usize = 256;
/// Largest authentication wrapper accepted (bytes inside its bstr).
pub const MAX_AUTH: usize = 4096;

/// Why bundle bytes were refused before any signature was looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ends inside a data item.
    #[error("bundle is truncated")]
    Truncated,
    /// Bytes follow the last data item.
    #[error("trailing bytes after the bundle")]
    TrailingBytes,
    /// An integer, length or tag is not in its shortest form.
    #[error("non-canonical cbor encoding")]
    NonCanonical,
    /// An indefinite-length string, array or map.
    #[error("indefinite-length cbor item")]
    IndefiniteLength,
    /// Reserved CBOR encodings or invalid UTF-8 text.
    #[error("malformed cbor")]
    Malformed,
    /// A data item of the wrong CBOR type (including floats).
    #[error("unexpected cbor type")]
    UnexpectedType,
    /// A value out of the accepted range or of the wrong length.
    #[error("unexpected value")]
    UnexpectedValue,
    /// A length or count over the declared limits.
    #[error("item exceeds a size limit")]
    TooLarge,
    /// A map key appears twice.
    #[error("duplicate map key")]
    DuplicateKey,
    /// Map keys are not in deterministic (bytewise ascending) order.
    #[error("map keys not in canonical order")]
    UnsortedKeys,
    /// Nesting deeper than [`cbor::MAX_DEPTH`].
    #[error("cbor nesting too deep")]
    NestingTooDeep,
    /// Not tagged as a SUIT envelope (107) or COSE_Sign1 (18).
    #[error("wrong cbor tag")]
    WrongTag,
    /// A map key the format does not define at that place.
    #[error("unexpected field")]
    UnexpectedField,
    /// A required field is absent.
    #[error("missing field")]
    MissingField,
    /// The manifest is not of the one shape deltaseal accepts.
    #[error("unsupported manifest structure")]
    UnsupportedManifest,
    /// Manifest version other than 1.
    #[error("unsupported manifest version")]
    UnsupportedVersion,
    /// A digest or signature algorithm other than SHA-256 / EdDSA / Ed25519.
    #[error("unsupported algorithm")]
    UnsupportedAlgorithm,
    /// A COSE header parameter deltaseal does not accept there.
    #[error("unsupported cose header")]
    UnsupportedHeader,
    /// A COSE `crit` header: deltaseal understands no critical extension.
    #[error("unknown critical cose header")]
    UnknownCriticalHeader,
}

/// Why a bundle was not accepted as authentic.
///
/// Deliberately says nothing about which key or which step of the maths
/// failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The bundle carries no COSE_Sign1 at all.
    #[error("bundle is not signed")]
    NoSignatures,
    /// The SUIT digest in the authentication wrapper does not match the manifest.
    #[error("manifest digest mismatch")]
    ManifestDigestMismatch,
    /// No signature verifies under any trusted key.
    #[error("no valid signature by a trusted key")]
    NoTrustedSignature,
    /// Fewer distinct trusted keys signed than the trust root's threshold.
    #[error("signed by {counted} trusted keys, {needed} needed")]
    ThresholdNotMet {
        /// The root's threshold.
        needed: usize,
        /// Distinct trusted keys whose signatures verified.
        counted: usize,
    },
}

/// The key id deltaseal puts in COSE headers: the first 16 bytes of
/// SHA-256 over the raw 32-byte Ed25519 public key.
pub fn kid(key: &VerifyingKey) -> [u8; 16] {
    let d = sha256(key.as_bytes());
    let mut out = [0u8; 16];
    for (o, i) in out.iter_mut().zip(d.iter()) {
        *o = *i;
    }
    out
}

/// A strictly decoded, not yet authenticated bundle.
#[derive(Debug, Clone)]
pub struct Bundle<'a> {
    manifest: Manifest,
    /// SHA-256 over the manifest bstr, header included.
    manifest_digest: [u8; 32],
    /// The digest the authentication wrapper claims.
    claimed_digest: [u8; 32],
    /// The encoded SUIT_Digest (the detached COSE payload).
    suit_digest: &'a [u8],
    signatures: Vec<Sign1<'a>>,
    /// The encoded COSE_Sign1 blocks, as received.
    blocks: Vec<&'a [u8]>,
    /// The manifest bytes inside the envelope bstr.
    manifest_bytes: &'a [u8],
    payload: Option<&'a [u8]>,
}

impl<'a> Bundle<'a> {
    /// Strictly decodes a tagged SUIT envelope. Checks structure only: no
    /// signature and no payload digest is looked at yet.
    pub fn decode(bytes: &'a [u8]) -> Result<Bundle<'a>, DecodeError> {
        match decode_prefix(bytes, true) {
            Ok(p) => Ok(p.bundle),
            Err(PrefixError::NeedMore(_)) => Err(DecodeError::Truncated),
            Err(PrefixError::Decode(e)) => Err(e),
        }
    }

    /// The decoded manifest. Not authenticated yet: only for display.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The integrated patch bytes, unchecked.
    pub fn payload(&self) -> Option<&'a [u8]> {
        self.payload
    }

    /// The key id of each COSE_Sign1, in order (`None` where absent).
    pub fn signer_kids(&self) -> impl Iterator<Item = Option<[u8; 16]>> + '_ {
        self.signatures.iter().map(|s| s.kid)
    }

    /// Checks that at least one signature verifies (Ed25519, `verify_strict`)
    /// under one of the `trusted` keys: the same as [`Bundle::authenticate_root`]
    /// with a root of these keys and threshold 1, no expiry. Weak
    /// (small-order) trusted keys are ignored. A signature with a kid is only
    /// tried against the key with that kid.
    pub fn authenticate(
        self,
        trusted: &[VerifyingKey],
    ) -> Result<Authenticated<'a>, SignatureError> {
        self.authenticate_keys(trusted, 1, None)
    }

    /// Checks that at least `root.threshold()` **distinct** keys of `root`
    /// signed the manifest (each key counts once, however many signatures
    /// it made; signatures by keys not in the root are ignored). The root's
    /// expiry travels with the result and is checked by
    /// [`Authenticated::approve`] against [`Policy::now`].
    pub fn authenticate_root(self, root: &TrustRoot) -> Result<Authenticated<'a>, SignatureError> {
        self.authenticate_keys(root.keys(), root.threshold(), root.expires())
    }

    fn authenticate_keys(
        self,
        trusted: &[VerifyingKey],
        threshold: usize,
        expires: Option<u64>,
    ) -> Result<Authenticated<'a>, SignatureError> {
        if self.signatures.is_empty() {
            return Err(SignatureError::NoSignatures);
        }
        if self.manifest_digest != self.claimed_digest {
            return Err(SignatureError::ManifestDigestMismatch);
        }
        let verified_kids = count_signers(trusted, &self.signatures, self.suit_digest);
        if verified_kids.is_empty() {
            return Err(SignatureError::NoTrustedSignature);
        }
        if verified_kids.len() < threshold {
            return Err(SignatureError::ThresholdNotMet {
                needed: threshold,
                counted: verified_kids.len(),
            });
        }
        Ok(Authenticated {
            manifest: self.manifest,
            payload: self.payload,
            verified_kids,
            expires,
        })
    }

    /// The manifest bytes exactly as received (inside the envelope's bstr).
    pub fn manifest_bytes(&self) -> &'a [u8] {
        self.manifest_bytes
    }

    /// The encoded SUIT_Digest of the manifest: the detached COSE payload
    /// every signature covers.
    pub fn suit_digest(&self) -> &'a [u8] {
        self.suit_digest
    }

    /// Each encoded COSE_Sign1 block, as received, in order.
    pub fn signature_blocks(&self) -> &[&'a [u8]] {
        &self.blocks
    }
}

/// Longest envelope prefix (everything before the integrated payload's
/// bytes) a strictly valid bundle can have: tag, map head, the
/// authentication wrapper (at most [`MAX_AUTH`]), the manifest (at most
/// [`manifest::MAX_MANIFEST`]), the payload key (at most
/// [`cbor::MAX_KEY_TEXT`]) and the payload's byte-string head. A streaming
/// reader buffers at most this much before it can authenticate.
pub const MAX_ENVELOPE_PREFIX: usize = 2 // tag 107
    + 1 // map head
    + 1 + 3 + MAX_AUTH // key 2, bstr head, wrapper
    + 1 + 3 + manifest::MAX_MANIFEST // key 3, bstr head, manifest
    + 2 + cbor::MAX_KEY_TEXT // text key head and bytes
    + 9; // payload bstr head

/// The envelope up to (not including) the integrated payload's bytes.
#[derive(Debug)]
pub(crate) struct Prefix<'a> {
    /// The decoded bundle; the payload is attached only for a whole bundle.
    pub(crate) bundle: Bundle<'a>,
    /// Length of the integrated payload (from its byte-string head), if any.
    pub(crate) payload_len: Option<usize>,
    /// Bytes of `bytes` the prefix occupies; the payload starts here.
    pub(crate) len: usize,
}

/// Why [`decode_prefix`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PrefixError {
    /// The input ends inside the prefix: at least this many bytes in total
    /// are needed before it can be decoded (a lower bound).
    NeedMore(usize),
    /// The prefix is malformed whatever follows.
    Decode(DecodeError),
}

impl From<DecodeError> for PrefixError {
    fn from(e: DecodeError) -> Self {
        PrefixError::Decode(e)
    }
}

/// Decodes the envelope's tag, map head, authentication wrapper, manifest
/// and, if present, the payload key and byte-string head, stopping before
/// the payload bytes. Used by [`Bundle::decode`] (whole bundle in memory)
/// and by the streaming installer (bundle arriving in pieces): one parser.
///
/// Deterministic encoding puts integer keys before text keys, so the
/// payload (text key) is always the last map entry and everything that must
/// be authenticated comes before it.
///
/// With `whole`, `bytes` is the whole bundle: the payload is taken too and
/// nothing may follow it (checked before the manifest is decoded).
pub(crate) fn decode_prefix(bytes: &[u8], whole: bool) -> Result<Prefix<'_>, PrefixError> {
    let mut r = Reader::new(bytes);
    // Outer reads run on a possibly partial buffer: running out of bytes
    // there means "need more", never a malformed bundle.
    if r.is_empty() {
        return Err(PrefixError::NeedMore(1));
    }
    if r.peek_major()? != 6 {
        return Err(DecodeError::UnexpectedType.into());
    }
    let tag = outer(&mut r, Reader::tag)?;
    if tag != TAG_ENVELOPE {
        return Err(DecodeError::WrongTag.into());
    }
    let n = outer(&mut r, |r| r.map(3))?;
    let mut prev = None;
    let mut auth = None;
    let mut manifest_bstr = None;
    let mut payload_head = None;
    for i in 0..n {
        let (key, raw) = outer(&mut r, |r| r.key(prev))?;
        prev = Some(raw);
        match key {
            Key::Int(ENV_AUTH) => auth = Some(outer_bytes(&mut r, MAX_AUTH)?),
            Key::Int(ENV_MANIFEST) => {
                let start = r.position();
                let inner = outer_bytes(&mut r, manifest::MAX_MANIFEST)?;
                let whole = bytes
                    .get(start..r.position())
                    .ok_or(DecodeError::Malformed)?;
                manifest_bstr = Some((whole, inner));
            }
            Key::Text(name) => {
                // Keys are sorted and only 2 and 3 are integers, so a text
                // key is last; a second text key could only be another
                // payload, which is not allowed.
                if i.checked_add(1) != Some(n) {
                    return Err(DecodeError::UnexpectedField.into());
                }
                let len = outer(&mut r, |r| r.bytes_head(usize::MAX))?;
                payload_head = Some((name, len));
            }
            Key::Int(_) => return Err(DecodeError::UnexpectedField.into()),
        }
    }
    let len = r.position();
    let mut payload = None;
    if whole {
        if let Some((_, n)) = payload_head {
            payload = Some(r.take_bytes(n)?);
        }
        r.finish()?;
    } else if payload_head.is_none() && r.position() != bytes.len() {
        return Err(DecodeError::TrailingBytes.into());
    }
    let auth = auth.ok_or(DecodeError::MissingField)?;
    let (manifest_whole, manifest_inner) = manifest_bstr.ok_or(DecodeError::MissingField)?;
    let manifest = Manifest::decode(manifest_inner)?;
    let payload_len = match payload_head {
        Some((name, len)) if name == manifest.payload_uri => Some(len),
        Some(_) => return Err(DecodeError::UnexpectedField.into()),
        None => None,
    };

    // Authentication wrapper: [ <<SUIT_Digest>>, * <<COSE_Sign1_Tagged>> ]
    let mut a = Reader::new(auth);
    let count = a.array(MAX_SIGNATURES.saturating_add(1))?;
    if count == 0 {
        return Err(DecodeError::MissingField.into());
    }
    let suit_digest = a.bytes(64)?;
    let claimed_digest = manifest::decode_suit_digest(suit_digest)?;
    let mut signatures = Vec::with_capacity(count.saturating_sub(1));
    let mut blocks = Vec::with_capacity(count.saturating_sub(1));
    for _ in 1..count {
        let block = a.bytes(MAX_SIGN1)?;
        signatures.push(Sign1::decode(block)?);
        blocks.push(block);
    }
    a.finish()?;

    Ok(Prefix {
        bundle: Bundle {
            manifest,
            manifest_digest: sha256(manifest_whole),
            claimed_digest,
            suit_digest,
            signatures,
            blocks,
            manifest_bytes: manifest_inner,
            payload,
        },
        payload_len,
        len,
    })
}

/// Runs one outer read; if it runs out of input, rewinds and asks for at
/// least one more byte than is there.
fn outer<'a, T>(
    r: &mut Reader<'a>,
    read: impl FnOnce(&mut Reader<'a>) -> Result<T, DecodeError>,
) -> Result<T, PrefixError> {
    let start = r.clone();
    match read(r) {
        Ok(v) => Ok(v),
        Err(DecodeError::Truncated) => {
            let have = r.len();
            *r = start;
            Err(PrefixError::NeedMore(have.saturating_add(1)))
        }
        Err(e) => Err(PrefixError::Decode(e)),
    }
}

/// An outer byte string of at most `max` bytes; if only its head is there,
/// asks for exactly the bytes it announces.
fn outer_bytes<'a>(r: &mut Reader<'a>, max: usize) -> Result<&'a [u8], PrefixError> {
    let n = outer(r, |r| r.bytes_head(max))?;
    let end = r.position().checked_add(n).ok_or(DecodeError::TooLarge)?;
    if end > r.len() {
        return Err(PrefixError::NeedMore(end));
    }
    Ok(r.take_bytes(n)?)
}

/// The distinct keys of `trusted` (by kid, in `trusted` order) with at
/// least one signature in `signatures` that verifies over the detached
/// `payload` (`verify_strict`). Weak keys never count; a signature with a
/// kid is only tried against the key with that kid.
pub(crate) fn count_signers(
    trusted: &[VerifyingKey],
    signatures: &[Sign1<'_>],
    payload: &[u8],
) -> Vec<[u8; 16]> {
    let mut verified = Vec::new();
    for key in trusted.iter().filter(|k| !k.is_weak()) {
        let key_kid = kid(key);
        if verified.contains(&key_kid) {
            continue;
        }
        let signed = signatures.iter().any(|sig| {
            sig.kid.is_none_or(|k| k == key_kid)
                && key
                    .verify_strict(
                        &sig_structure(sig.protected, payload),
                        &Signature::from_bytes(&sig.signature),
                    )
                    .is_ok()
        });
        if signed {
            verified.push(key_kid);
        }
    }
    verified
}

/// A bundle whose manifest is signed by a threshold of trusted keys.
#[derive(Debug, Clone)]
pub struct Authenticated<'a> {
    manifest: Manifest,
    payload: Option<&'a [u8]>,
    verified_kids: Vec<[u8; 16]>,
    expires: Option<u64>,
}

impl<'a> Authenticated<'a> {
    /// The authenticated manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The integrated patch bytes, not yet checked against the manifest.
    pub fn payload(&self) -> Option<&'a [u8]> {
        self.payload
    }

    /// Key ids of the distinct trusted keys whose signatures verified.
    pub fn verified_kids(&self) -> &[[u8; 16]] {
        &self.verified_kids
    }

    /// Expiry (Unix seconds) of the trust root that authenticated the
    /// bundle, if it has one.
    pub fn expires(&self) -> Option<u64> {
        self.expires
    }

    /// Applies the device policy (rollback, expiry, vendor, class).
    pub fn approve(self, policy: &Policy) -> Result<Approved<'a>, PolicyError> {
        policy.check_expiry(self.expires)?;
        policy.check(&self.manifest)?;
        Ok(Approved::new(self.manifest, self.payload))
    }
}

#[cfg(test)]
mod tests;
