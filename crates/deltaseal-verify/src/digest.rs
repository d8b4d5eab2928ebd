//! SHA-256 (FIPS 180-4) helpers used for image, patch and manifest digests.
//!
//! [`sha256`] hashes a whole buffer; for streaming, use the re-exported
//! [`Sha256`] with [`sha2::Digest`]'s `update` / `finalize`.

pub use sha2::Digest;
pub use sha2::Sha256;

/// SHA-256 of `data`.
///
/// ```
/// let d = deltaseal_verify::digest::sha256(b"abc");
/// assert_eq!(d[0], 0xba);
/// ```
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer_empty() {
        let d = sha256(b"");
        assert_eq!(
            d[..4],
            [0xe3, 0xb0, 0xc4, 0x42],
            "SHA-256 of the empty string starts e3b0c442"
        );
    }

    #[test]
    fn incremental_matches_oneshot() {
        let mut h = Sha256::new();
        h.update(b"ab");
        h.update(b"c");
        let d: [u8; 32] = h.finalize().into();
        assert_eq!(d, sha256(b"abc"));
    }
}
