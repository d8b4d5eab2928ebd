//! Building, rotating and signing trust root documents
//! (`deltaseal_verify::root` is the authority on the format).
//!
//! ```text
//! TrustRoot::new(1, k, expires, keys) ─► unsigned ─► sign (× k signers) ─► root v1
//! rotate(v1, add, remove, threshold) ─► unsigned v2 ─► sign by k of v1's keys
//!                                      and by k' of v2's keys ─► root v2
//! ```
//!
//! External signers: [`external_tbs`] gives the exact bytes to sign,
//! [`attach_signature`] adds the raw signature made elsewhere.
//!
//! ```
//! use deltaseal_sign::{keys, root};
//! use deltaseal_verify::root::{SignedRoot, TrustRoot};
//!
//! let (a, b) = (keys::generate()?, keys::generate()?);
//! let v1 = TrustRoot::new(1, 2, None, vec![a.verifying_key(), b.verifying_key()])?;
//! let doc = root::sign(&root::sign(&root::unsigned(&v1), &a)?, &b)?;
//! assert_eq!(SignedRoot::decode(&doc)?.verify(None)?, v1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use deltaseal_verify::bundle::kid;
use deltaseal_verify::root::{
    MAX_ROOT_SIGNATURES, RootError, SignedRoot, TrustRoot, encode_document,
};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::bundle::{
    EXTERNAL_PROTECTED, protected_header, sig_structure, sign1, sign1_unprotected_kid,
};

/// Why a root could not be built or signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RootBuildError {
    /// The document does not decode, or the new root breaks a rule.
    #[error("invalid trust root")]
    Root(#[source] RootError),
    /// The key has already signed this root.
    #[error("already signed by this key")]
    AlreadySigned,
    /// More signatures than a device accepts.
    #[error("too many signatures (at most {max})")]
    TooManySignatures {
        /// The limit, [`MAX_ROOT_SIGNATURES`].
        max: usize,
    },
    /// The signature does not verify under the given public key.
    #[error("signature does not verify under the given public key")]
    BadSignature,
    /// A key to remove is not in the root.
    #[error("key to remove is not in the root")]
    NotInRoot,
    /// A key to add is already in the root.
    #[error("key to add is already in the root")]
    AlreadyInRoot,
    /// The current version is `u64::MAX`: there is no next one.
    #[error("root version cannot be incremented")]
    VersionOverflow,
}

impl From<RootError> for RootBuildError {
    fn from(e: RootError) -> Self {
        RootBuildError::Root(e)
    }
}

/// The unsigned document for `root`.
pub fn unsigned(root: &TrustRoot) -> Vec<u8> {
    encode_document(&root.encode_body(), &[])
}

/// The next version of `current`: keys in `add` added, keys in `remove`
/// removed, threshold replaced if given (else kept), expiry replaced if
/// given (`Some(None)` removes it). The result still needs signatures by a
/// threshold of `current`'s keys and a threshold of its own.
pub fn rotate(
    current: &TrustRoot,
    add: &[VerifyingKey],
    remove: &[VerifyingKey],
    threshold: Option<usize>,
    expires: Option<Option<u64>>,
) -> Result<TrustRoot, RootBuildError> {
    let mut keys = current.keys().to_vec();
    for r in remove {
        let before = keys.len();
        keys.retain(|k| k != r);
        if keys.len() == before {
            return Err(RootBuildError::NotInRoot);
        }
    }
    for a in add {
        if keys.contains(a) {
            return Err(RootBuildError::AlreadyInRoot);
        }
        keys.push(*a);
    }
    let version = current
        .version()
        .checked_add(1)
        .ok_or(RootBuildError::VersionOverflow)?;
    Ok(TrustRoot::new(
        version,
        threshold.unwrap_or(current.threshold()),
        expires.unwrap_or(current.expires()),
        keys,
    )?)
}

/// Adds a signature by `key` (protected header `{1: -8, 4: kid}`) to a root
/// document, signed or not.
pub fn sign(document: &[u8], key: &SigningKey) -> Result<Vec<u8>, RootBuildError> {
    let doc = SignedRoot::decode(document)?;
    let protected = protected_header(&kid(&key.verifying_key()));
    let signature = key.sign(&sig_structure(&protected, doc.body()));
    append(
        &doc,
        &key.verifying_key(),
        sign1(&protected, &signature.to_bytes()),
    )
}

/// The exact bytes an external signer signs for this root document.
pub fn external_tbs(document: &[u8]) -> Result<Vec<u8>, RootBuildError> {
    let doc = SignedRoot::decode(document)?;
    Ok(sig_structure(EXTERNAL_PROTECTED, doc.body()))
}

/// Adds a raw Ed25519 signature over [`external_tbs`] made elsewhere by the
/// holder of `public`, after checking it (`verify_strict`).
pub fn attach_signature(
    document: &[u8],
    public: &VerifyingKey,
    signature: &[u8; 64],
) -> Result<Vec<u8>, RootBuildError> {
    let doc = SignedRoot::decode(document)?;
    let tbs = sig_structure(EXTERNAL_PROTECTED, doc.body());
    if public.is_weak()
        || public
            .verify_strict(&tbs, &Signature::from_bytes(signature))
            .is_err()
    {
        return Err(RootBuildError::BadSignature);
    }
    append(
        &doc,
        public,
        sign1_unprotected_kid(EXTERNAL_PROTECTED, &kid(public), signature),
    )
}

fn append(
    doc: &SignedRoot<'_>,
    signer: &VerifyingKey,
    block: Vec<u8>,
) -> Result<Vec<u8>, RootBuildError> {
    let signer_kid = kid(signer);
    if doc.signer_kids().any(|k| k == Some(signer_kid)) {
        return Err(RootBuildError::AlreadySigned);
    }
    if doc.signature_blocks().len() >= MAX_ROOT_SIGNATURES {
        return Err(RootBuildError::TooManySignatures {
            max: MAX_ROOT_SIGNATURES,
        });
    }
    let mut blocks: Vec<&[u8]> = doc.signature_blocks().to_vec();
    blocks.push(&block);
    Ok(encode_document(doc.body(), &blocks))
}
