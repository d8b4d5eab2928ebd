//! Shared fixtures for the sign crate's integration tests.
#![allow(dead_code)]

use deltaseal_sign::{ImageRef, ReleaseInput};
use ed25519_dalek::SigningKey;

pub const PATCH: &[u8] = b"DSP1 pretend patch bytes, long enough to matter";

pub fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

pub fn input(sequence: u64) -> ReleaseInput<'static> {
    ReleaseInput {
        sequence,
        vendor_id: deltaseal_sign::ids::vendor_id("example.com"),
        class_id: deltaseal_sign::ids::class_id(
            &deltaseal_sign::ids::vendor_id("example.com"),
            "sensor-v1",
        ),
        precursor: ImageRef {
            size: 1000,
            digest: [0x11; 32],
        },
        target: ImageRef {
            size: 1200,
            digest: [0x22; 32],
        },
        patch: PATCH,
        patch_index_digest: [0x33; 32],
    }
}
