//! Trust roots: the signed CBOR document that says which Ed25519 keys a
//! device trusts, how many of them must sign (the threshold), its version
//! and when it expires (like TUF's `root.json`).
//!
//! ```text
//! TrustRootDocument = [ << root body >>, [ * << COSE_Sign1_Tagged >> ] ]
//! root body = { 1: version (uint ≥ 1), 2: threshold (uint, 1..=keys),
//!               ? 3: expires (uint, Unix seconds), 4: [ + h'32-byte key' ] }
//! ```
//!
//! Keys are sorted bytewise and distinct; every signature is a COSE_Sign1
//! (same view and rules as in bundles) whose detached payload is the body
//! bytes. A key's id is [`kid`]: the first 16 bytes of SHA-256 of the raw
//! key.
//!
//! - A device installs its first root out of band (factory) and checks it
//!   with [`SignedRoot::verify`]: a threshold of its own keys.
//! - A new root replaces the stored one only through
//!   [`SignedRoot::verify_successor`]: version = stored + 1, a threshold of
//!   the **stored** root's keys and a threshold of the **new** root's keys
//!   signed the new body, and the new root is not expired (when a trusted
//!   time is given).
//! - [`Bundle::authenticate_root`](crate::bundle::Bundle::authenticate_root)
//!   counts distinct root keys whose signatures verify against the
//!   threshold. Keys not in the root (unknown or revoked by a rotation)
//!   never count.
//!
//! Expiry needs a trusted clock. The API takes `now: Option<u64>` (Unix
//! seconds): `None` means the device has no trusted time, and expiry is
//! then **not checked**. A root is valid while `now < expires`.
//!
//! ```
//! use deltaseal_verify::root::{SignedRoot, RootError};
//! use deltaseal_verify::bundle::DecodeError;
//! assert_eq!(SignedRoot::decode(&[0x80]).err(), Some(RootError::Decode(DecodeError::UnexpectedValue)));
//! ```

use alloc::vec::Vec;

use ed25519_dalek::VerifyingKey;

use crate::bundle::cbor::{Key, Reader, major, write_head};
use crate::bundle::cose::Sign1;
use crate::bundle::{DecodeError, MAX_SIGN1, MAX_SIGNATURES, count_signers, kid};

/// Most keys a root may list.
pub const MAX_ROOT_KEYS: usize = 16;
/// Most signatures a root document may carry (a rotation needs old and new
/// signers).
pub const MAX_ROOT_SIGNATURES: usize = 32;
/// Largest encoded root body accepted.
pub const MAX_ROOT_BODY: usize = 1024;

/// Root body key: version.
pub const ROOT_VERSION: i64 = 1;
/// Root body key: threshold.
pub const ROOT_THRESHOLD: i64 = 2;
/// Root body key: expiry (Unix seconds).
pub const ROOT_EXPIRES: i64 = 3;
/// Root body key: the trusted keys.
pub const ROOT_KEYS: i64 = 4;

/// Why a trust root was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RootError {
    /// The document is not strictly encoded as specified.
    #[error("malformed trust root")]
    Decode(#[source] DecodeError),
    /// A listed key is not a valid Ed25519 point or is of small order.
    #[error("invalid or weak key in trust root")]
    InvalidKey,
    /// No keys, more than [`MAX_ROOT_KEYS`], or the same key twice.
    #[error("invalid key list in trust root")]
    InvalidKeyList,
    /// Threshold 0, above the number of keys, or above the most signatures
    /// a bundle may carry ([`MAX_SIGNATURES`]).
    #[error("invalid threshold")]
    InvalidThreshold,
    /// Version 0.
    #[error("invalid version")]
    InvalidVersion,
    /// Fewer distinct keys of the root itself signed than its threshold.
    #[error("signed by {counted} of the root's keys, {needed} needed")]
    ThresholdNotMet {
        /// The root's threshold.
        needed: usize,
        /// Distinct root keys whose signatures verified.
        counted: usize,
    },
    /// Fewer distinct keys of the currently trusted root signed the new one
    /// than the current threshold.
    #[error("signed by {counted} of the trusted root's keys, {needed} needed")]
    OldThresholdNotMet {
        /// The trusted root's threshold.
        needed: usize,
        /// Distinct trusted-root keys whose signatures verified.
        counted: usize,
    },
    /// The new root's version is not exactly the trusted one plus one.
    #[error("root version {offered} does not follow trusted version {current}")]
    VersionNotNext {
        /// The trusted root's version.
        current: u64,
        /// The new root's version.
        offered: u64,
    },
    /// The root expired at `expires` (trusted time `now`).
    #[error("trust root expired at {expires} (now {now})")]
    Expired {
        /// Expiry, Unix seconds.
        expires: u64,
        /// Trusted time, Unix seconds.
        now: u64,
    },
}

impl From<DecodeError> for RootError {
    fn from(e: DecodeError) -> Self {
        RootError::Decode(e)
    }
}

/// The content of a trust root: keys, threshold, version, expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustRoot {
    version: u64,
    threshold: usize,
    expires: Option<u64>,
    keys: Vec<VerifyingKey>,
}

impl TrustRoot {
    /// A root from its parts. Keys are sorted; duplicates, weak keys, an
    /// empty or too long list, version 0 and a threshold outside
    /// `1..=keys.len()` are refused.
    pub fn new(
        version: u64,
        threshold: usize,
        expires: Option<u64>,
        mut keys: Vec<VerifyingKey>,
    ) -> Result<Self, RootError> {
        keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let root = TrustRoot {
            version,
            threshold,
            expires,
            keys,
        };
        root.validate()?;
        Ok(root)
    }

    /// A single trusted public key as a root: threshold 1, no expiry,
    /// version 0 (a root that only exists in memory, never as a document).
    pub fn single(key: VerifyingKey) -> Self {
        TrustRoot {
            version: 0,
            threshold: 1,
            expires: None,
            keys: alloc::vec![key],
        }
    }

    fn validate(&self) -> Result<(), RootError> {
        if self.version == 0 {
            return Err(RootError::InvalidVersion);
        }
        if self.keys.is_empty() || self.keys.len() > MAX_ROOT_KEYS {
            return Err(RootError::InvalidKeyList);
        }
        for pair in self.keys.windows(2) {
            if let [a, b] = pair
                && a.as_bytes() >= b.as_bytes()
            {
                return Err(RootError::InvalidKeyList);
            }
        }
        if self.keys.iter().any(VerifyingKey::is_weak) {
            return Err(RootError::InvalidKey);
        }
        // A bundle carries at most MAX_SIGNATURES signatures: a higher
        // threshold could never be met.
        if self.threshold == 0
            || self.threshold > self.keys.len()
            || self.threshold > MAX_SIGNATURES
        {
            return Err(RootError::InvalidThreshold);
        }
        Ok(())
    }

    /// The version (1 for the first root, +1 per rotation).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// How many distinct keys must sign.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// Expiry in Unix seconds, if any.
    pub fn expires(&self) -> Option<u64> {
        self.expires
    }

    /// The trusted keys, sorted by their bytes.
    pub fn keys(&self) -> &[VerifyingKey] {
        &self.keys
    }

    /// The key ids ([`kid`]) of the trusted keys.
    pub fn kids(&self) -> impl Iterator<Item = [u8; 16]> + '_ {
        self.keys.iter().map(kid)
    }

    /// Fails if the root has expired at trusted time `now` (valid while
    /// `now < expires`). `None`: no trusted time, nothing is checked.
    pub fn check_expiry(&self, now: Option<u64>) -> Result<(), RootError> {
        match (self.expires, now) {
            (Some(expires), Some(now)) if now >= expires => {
                Err(RootError::Expired { expires, now })
            }
            _ => Ok(()),
        }
    }

    /// The deterministic encoding of the root body (what signers sign).
    pub fn encode_body(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(64usize.saturating_add(self.keys.len().saturating_mul(34)));
        let entries = if self.expires.is_some() { 4 } else { 3 };
        write_head(&mut out, major::MAP, entries);
        write_head(&mut out, major::UINT, ROOT_VERSION as u64);
        write_head(&mut out, major::UINT, self.version);
        write_head(&mut out, major::UINT, ROOT_THRESHOLD as u64);
        write_head(&mut out, major::UINT, self.threshold as u64);
        if let Some(expires) = self.expires {
            write_head(&mut out, major::UINT, ROOT_EXPIRES as u64);
            write_head(&mut out, major::UINT, expires);
        }
        write_head(&mut out, major::UINT, ROOT_KEYS as u64);
        write_head(&mut out, major::ARRAY, self.keys.len() as u64);
        for key in &self.keys {
            write_head(&mut out, major::BYTES, 32);
            out.extend_from_slice(key.as_bytes());
        }
        out
    }

    /// Strictly decodes a root body.
    pub fn decode_body(body: &[u8]) -> Result<Self, RootError> {
        let mut r = Reader::new(body);
        let n = r.map(4)?;
        let mut prev = None;
        let (mut version, mut threshold, mut expires, mut keys) = (None, None, None, None);
        for _ in 0..n {
            let (key, raw) = r.key(prev)?;
            prev = Some(raw);
            match key {
                Key::Int(ROOT_VERSION) => version = Some(r.uint()?),
                Key::Int(ROOT_THRESHOLD) => threshold = Some(r.uint()?),
                Key::Int(ROOT_EXPIRES) => expires = Some(r.uint()?),
                Key::Int(ROOT_KEYS) => {
                    let count = r.array(MAX_ROOT_KEYS)?;
                    let mut list = Vec::with_capacity(count);
                    let mut prev_key: Option<[u8; 32]> = None;
                    for _ in 0..count {
                        let raw = r.bytes_exact::<32>()?;
                        match prev_key {
                            Some(p) if p == raw => return Err(DecodeError::DuplicateKey.into()),
                            Some(p) if p > raw => return Err(DecodeError::UnsortedKeys.into()),
                            _ => {}
                        }
                        prev_key = Some(raw);
                        let key =
                            VerifyingKey::from_bytes(&raw).map_err(|_| RootError::InvalidKey)?;
                        list.push(key);
                    }
                    keys = Some(list);
                }
                _ => return Err(DecodeError::UnexpectedField.into()),
            }
        }
        r.finish()?;
        let threshold = threshold.ok_or(DecodeError::MissingField)?;
        let root = TrustRoot {
            version: version.ok_or(DecodeError::MissingField)?,
            threshold: usize::try_from(threshold).map_err(|_| RootError::InvalidThreshold)?,
            expires,
            keys: keys.ok_or(DecodeError::MissingField)?,
        };
        root.validate()?;
        Ok(root)
    }

    /// The distinct keys of this root (by kid, sorted as the root lists
    /// them) whose signatures in `signatures` verify over `payload`.
    pub fn count_signers(&self, signatures: &[Sign1<'_>], payload: &[u8]) -> Vec<[u8; 16]> {
        count_signers(&self.keys, signatures, payload)
    }
}

/// A strictly decoded trust root document, signatures not yet checked.
#[derive(Debug, Clone)]
pub struct SignedRoot<'a> {
    root: TrustRoot,
    body: &'a [u8],
    signatures: Vec<Sign1<'a>>,
    blocks: Vec<&'a [u8]>,
}

impl<'a> SignedRoot<'a> {
    /// Strictly decodes a trust root document. Checks structure and the
    /// body's rules only; no signature is looked at.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, RootError> {
        let mut r = Reader::new(bytes);
        r.array_exact(2)?;
        let body = r.bytes(MAX_ROOT_BODY)?;
        let root = TrustRoot::decode_body(body)?;
        let n = r.array(MAX_ROOT_SIGNATURES)?;
        let mut signatures = Vec::with_capacity(n);
        let mut blocks = Vec::with_capacity(n);
        for _ in 0..n {
            let block = r.bytes(MAX_SIGN1)?;
            signatures.push(Sign1::decode(block)?);
            blocks.push(block);
        }
        r.finish()?;
        Ok(SignedRoot {
            root,
            body,
            signatures,
            blocks,
        })
    }

    /// The decoded root. Not verified: for display and building only.
    pub fn root(&self) -> &TrustRoot {
        &self.root
    }

    /// The body bytes exactly as received (what each signature covers).
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// Each encoded COSE_Sign1, as received.
    pub fn signature_blocks(&self) -> &[&'a [u8]] {
        &self.blocks
    }

    /// The key id of each signature, in order (`None` where absent).
    pub fn signer_kids(&self) -> impl Iterator<Item = Option<[u8; 16]>> + '_ {
        self.signatures.iter().map(|s| s.kid)
    }

    /// Distinct keys of `by` whose signatures over this body verify.
    pub fn signers_in(&self, by: &TrustRoot) -> Vec<[u8; 16]> {
        by.count_signers(&self.signatures, self.body)
    }

    /// Checks the root on its own (an initial, out-of-band installed root):
    /// a threshold of its own keys signed it and it is not expired at `now`.
    pub fn verify(&self, now: Option<u64>) -> Result<TrustRoot, RootError> {
        let counted = self.signers_in(&self.root).len();
        if counted < self.root.threshold {
            return Err(RootError::ThresholdNotMet {
                needed: self.root.threshold,
                counted,
            });
        }
        self.root.check_expiry(now)?;
        Ok(self.root.clone())
    }

    /// Checks this root as the successor of the trusted `current` one:
    /// version = current + 1, a threshold of `current`'s keys **and** a
    /// threshold of the new root's own keys signed it, and the new root is
    /// not expired at `now`. The current root's own expiry is not checked,
    /// so a device whose root expired can still rotate.
    pub fn verify_successor(
        &self,
        current: &TrustRoot,
        now: Option<u64>,
    ) -> Result<TrustRoot, RootError> {
        if current.version.checked_add(1) != Some(self.root.version) {
            return Err(RootError::VersionNotNext {
                current: current.version,
                offered: self.root.version,
            });
        }
        let old = self.signers_in(current).len();
        if old < current.threshold {
            return Err(RootError::OldThresholdNotMet {
                needed: current.threshold,
                counted: old,
            });
        }
        self.verify(now)
    }
}

/// Encodes a trust root document from its body and encoded COSE_Sign1
/// blocks: `[ << body >>, [ * << sign1 >> ] ]`.
pub fn encode_document(body: &[u8], sign1s: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    write_head(&mut out, major::ARRAY, 2);
    write_head(&mut out, major::BYTES, body.len() as u64);
    out.extend_from_slice(body);
    write_head(&mut out, major::ARRAY, sign1s.len() as u64);
    for s in sign1s {
        write_head(&mut out, major::BYTES, s.len() as u64);
        out.extend_from_slice(s);
    }
    out
}

#[cfg(test)]
mod tests;
