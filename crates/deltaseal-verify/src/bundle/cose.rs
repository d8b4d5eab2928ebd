//! A small device-side view of COSE_Sign1 (RFC 9052 §4.2) and the
//! `Sig_structure` it signs (§4.4).
//!
//! Only what deltaseal bundles use is accepted: tag 18, a protected header
//! with `alg` (1) = EdDSA (-8) or Ed25519 (-19) and an optional 16-byte
//! `kid` (4), an unprotected header that may carry `kid` and unknown
//! non-critical parameters, a nil (detached) payload and a 64-byte signature.
//! `crit` (2) is refused wherever it appears: deltaseal understands no
//! critical extension, so any critical header is an unknown one.

use alloc::vec::Vec;

use super::DecodeError;
use super::cbor::{Key, Reader, major, write_head};

/// CBOR tag of COSE_Sign1.
pub const TAG_COSE_SIGN1: u64 = 18;
/// COSE algorithm EdDSA (what deltaseal emits).
pub const ALG_EDDSA: i64 = -8;
/// COSE algorithm Ed25519 (accepted).
pub const ALG_ED25519: i64 = -19;
/// Header label `alg`.
pub const HDR_ALG: i64 = 1;
/// Header label `crit`.
pub const HDR_CRIT: i64 = 2;
/// Header label `kid`.
pub const HDR_KID: i64 = 4;
/// Largest encoded protected header accepted.
pub const MAX_PROTECTED: usize = 64;
/// Most entries accepted in a header map.
pub const MAX_HEADER_ENTRIES: usize = 8;

/// A decoded COSE_Sign1 with a detached payload, borrowing the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sign1<'a> {
    /// The protected header exactly as received (the bytes inside the bstr).
    pub protected: &'a [u8],
    /// The algorithm from the protected header (-8 or -19).
    pub alg: i64,
    /// The key id, from either header bucket.
    pub kid: Option<[u8; 16]>,
    /// The Ed25519 signature.
    pub signature: [u8; 64],
}

impl<'a> Sign1<'a> {
    /// Decodes a tagged COSE_Sign1 that fills `bytes` exactly.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        if r.tag()? != TAG_COSE_SIGN1 {
            return Err(DecodeError::WrongTag);
        }
        r.array_exact(4)?;
        let protected = r.bytes(MAX_PROTECTED)?;
        let (alg, mut kid) = decode_protected(protected)?;
        // Unprotected header.
        let n = r.map(MAX_HEADER_ENTRIES)?;
        let mut prev = None;
        for _ in 0..n {
            let (key, raw) = r.key(prev)?;
            prev = Some(raw);
            match key {
                Key::Int(HDR_KID) => {
                    if kid.is_some() {
                        // RFC 9052 §3: a label must not be in both buckets.
                        return Err(DecodeError::DuplicateKey);
                    }
                    kid = Some(r.bytes_exact::<16>()?);
                }
                Key::Int(HDR_ALG) => return Err(DecodeError::UnsupportedHeader),
                Key::Int(HDR_CRIT) => return Err(DecodeError::UnknownCriticalHeader),
                _ => r.skip(3)?,
            }
        }
        r.null()?; // detached payload
        let signature = r.bytes_exact::<64>()?;
        r.finish()?;
        Ok(Sign1 {
            protected,
            alg,
            kid,
            signature,
        })
    }
}

fn decode_protected(protected: &[u8]) -> Result<(i64, Option<[u8; 16]>), DecodeError> {
    let mut r = Reader::new(protected);
    let n = r.map(MAX_HEADER_ENTRIES)?;
    let mut prev = None;
    let mut alg = None;
    let mut kid = None;
    for _ in 0..n {
        let (key, raw) = r.key(prev)?;
        prev = Some(raw);
        match key {
            Key::Int(HDR_ALG) => {
                let a = r.i64()?;
                if a != ALG_EDDSA && a != ALG_ED25519 {
                    return Err(DecodeError::UnsupportedAlgorithm);
                }
                alg = Some(a);
            }
            Key::Int(HDR_KID) => kid = Some(r.bytes_exact::<16>()?),
            Key::Int(HDR_CRIT) => return Err(DecodeError::UnknownCriticalHeader),
            // Protected headers are signed: anything we do not understand
            // there could change the meaning, so refuse it.
            _ => return Err(DecodeError::UnsupportedHeader),
        }
    }
    r.finish()?;
    let alg = alg.ok_or(DecodeError::MissingField)?;
    Ok((alg, kid))
}

/// Builds the COSE `Sig_structure` for a COSE_Sign1 with a detached payload:
/// `["Signature1", protected, external_aad = h'', payload]`, deterministically
/// encoded. `protected` is the protected header bytes (inside their bstr) and
/// `payload` is the detached payload (for SUIT: the encoded SUIT_Digest).
///
/// ```
/// use deltaseal_verify::bundle::sig_structure;
/// let tbs = sig_structure(&[0xa1, 0x01, 0x27], b"hi");
/// assert_eq!(
///     tbs,
///     [&[0x84, 0x6a][..], b"Signature1", &[0x43, 0xa1, 0x01, 0x27, 0x40, 0x42], b"hi"].concat()
/// );
/// ```
pub fn sig_structure(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    const CONTEXT: &str = "Signature1";
    let mut out = Vec::with_capacity(
        24usize
            .saturating_add(protected.len())
            .saturating_add(payload.len()),
    );
    write_head(&mut out, major::ARRAY, 4);
    write_head(&mut out, major::TEXT, CONTEXT.len() as u64);
    out.extend_from_slice(CONTEXT.as_bytes());
    write_head(&mut out, major::BYTES, protected.len() as u64);
    out.extend_from_slice(protected);
    write_head(&mut out, major::BYTES, 0);
    write_head(&mut out, major::BYTES, payload.len() as u64);
    out.extend_from_slice(payload);
    out
}
