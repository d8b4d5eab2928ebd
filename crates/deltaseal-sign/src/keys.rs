//! Ed25519 keys in PEM files that OpenSSL reads and writes.
//!
//! Private keys are written as PKCS#8 **v1** (`-----BEGIN PRIVATE KEY-----`,
//! no embedded public key), the form `openssl genpkey -algorithm ed25519`
//! writes: OpenSSL 3.0 refuses the v2 form ed25519-dalek writes by default.
//! Public keys are SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, KeypairBytes,
};
/// The Ed25519 key types these functions read and write (re-exported so
/// callers need no direct `ed25519-dalek` dependency).
pub use ed25519_dalek::{SigningKey, VerifyingKey};
use zeroize::{Zeroize as _, Zeroizing};

pub use deltaseal_verify::bundle::kid;

/// Why a key could not be made, read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The operating system's random number generator failed.
    #[error("no randomness from the operating system")]
    Random,
    /// Reading a key file failed.
    #[error("cannot read key file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Writing a key file failed.
    #[error("cannot write key file {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not an Ed25519 key in a PEM form we read.
    #[error("{path} is not an ed25519 key in pkcs#8 or spki pem form")]
    Parse {
        /// The file.
        path: PathBuf,
    },
    /// Encoding a key as PEM failed.
    #[error("cannot encode key as pem")]
    Encode,
    /// The public key has small order: it would accept forged signatures.
    #[error("{path} holds a weak (small-order) ed25519 public key")]
    WeakKey {
        /// The file.
        path: PathBuf,
    },
}

/// A new signing key from the operating system's random number generator.
pub fn generate() -> Result<SigningKey, KeyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|_| KeyError::Random)?;
    let key = SigningKey::from_bytes(&seed);
    seed.zeroize();
    Ok(key)
}

/// The private key as PKCS#8 v1 PEM (what `openssl genpkey` writes), wiped
/// from memory when dropped.
///
/// ```
/// let key = deltaseal_sign::keys::generate()?;
/// let pem = deltaseal_sign::keys::private_pem(&key)?;
/// assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
/// # Ok::<(), deltaseal_sign::keys::KeyError>(())
/// ```
pub fn private_pem(key: &SigningKey) -> Result<Zeroizing<String>, KeyError> {
    // KeypairBytes wipes its secret on drop.
    let pair = KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    };
    pair.to_pkcs8_pem(LineEnding::LF)
        .map_err(|_| KeyError::Encode)
}

/// The public key as SubjectPublicKeyInfo PEM (what `openssl pkey -pubout` writes).
pub fn public_pem(key: &VerifyingKey) -> Result<String, KeyError> {
    key.to_public_key_pem(LineEnding::LF)
        .map_err(|_| KeyError::Encode)
}

/// Parses a PKCS#8 private key PEM (v1 or v2).
pub fn signing_key_from_pem(pem: &str) -> Option<SigningKey> {
    SigningKey::from_pkcs8_pem(pem).ok()
}

/// Parses an SPKI public key PEM, or a PKCS#8 private key PEM (giving its
/// public key). Weak keys are returned too: check [`VerifyingKey::is_weak`].
pub fn verifying_key_from_pem(pem: &str) -> Option<VerifyingKey> {
    if pem.contains("-----BEGIN PUBLIC KEY-----") {
        VerifyingKey::from_public_key_pem(pem).ok()
    } else {
        signing_key_from_pem(pem).map(|k| k.verifying_key())
    }
}

/// Writes the private key as PKCS#8 v1 PEM, mode 0600, through a temporary
/// file in the same directory and a rename.
pub fn write_private_pem(path: &Path, key: &SigningKey) -> Result<(), KeyError> {
    write_atomic(path, private_pem(key)?.as_bytes(), 0o600)
}

/// Writes the public key as SubjectPublicKeyInfo PEM (mode 0644, atomic).
pub fn write_public_pem(path: &Path, key: &VerifyingKey) -> Result<(), KeyError> {
    write_atomic(path, public_pem(key)?.as_bytes(), 0o644)
}

/// Reads a private key: ours, or one from `openssl genpkey -algorithm ed25519`.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    let pem = Zeroizing::new(read(path)?);
    signing_key_from_pem(&pem).ok_or_else(|| KeyError::Parse {
        path: path.to_path_buf(),
    })
}

/// Reads a public key (SPKI PEM, or the public half of a private key PEM)
/// and refuses weak (small-order) keys.
pub fn read_verifying_key(path: &Path) -> Result<VerifyingKey, KeyError> {
    let pem = read(path)?;
    let key = verifying_key_from_pem(&pem).ok_or_else(|| KeyError::Parse {
        path: path.to_path_buf(),
    })?;
    if key.is_weak() {
        return Err(KeyError::WeakKey {
            path: path.to_path_buf(),
        });
    }
    Ok(key)
}

fn read(path: &Path) -> Result<String, KeyError> {
    fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), KeyError> {
    let err = |source| KeyError::Write {
        path: path.to_path_buf(),
        source,
    };
    let name = path
        .file_name()
        .ok_or_else(|| err(std::io::ErrorKind::InvalidInput.into()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        #[cfg(not(unix))]
        let _ = mode;
        let mut file = options.open(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(err)
}
