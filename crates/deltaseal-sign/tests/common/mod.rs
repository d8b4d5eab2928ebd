//! Shared fixtures for the sign crate's integration tests.
#![allow(dead_code)]

use std::process::Command;

use deltaseal_sign::{ImageRef, ReleaseInput};
use ed25519_dalek::SigningKey;

/// Stand-in patch bytes (the bundle does not parse them).
pub const PATCH: &[u8] = b"DSP1 pretend patch bytes, long enough to matter";

/// A fixed test signing key.
pub fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

/// A release with recognisable digests (0x11.., 0x22.., 0x33..).
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

/// Whether an interop tool answers `program args...` successfully. When it
/// does not, the test skips with a visible message, unless
/// `DELTASEAL_REQUIRE_INTEROP` is set (scripts/test.sh, and so CI, sets it:
/// there a skip would hide a missing install step).
pub fn interop_tool(program: &str, args: &[&str], what: &str) -> bool {
    let ok = Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("DELTASEAL_REQUIRE_INTEROP").is_none(),
            "{what} is required (DELTASEAL_REQUIRE_INTEROP is set)"
        );
        eprintln!("SKIP: {what} not available; interop not tested");
    }
    ok
}
