//! Release-side half of deltaseal bundles: Ed25519 keys in files OpenSSL
//! recognises, vendor/class identifiers, and building signed SUIT bundles.
//!
//! What it does not do: compute patches (`deltaseal-diff`) or verify
//! bundles (`deltaseal-verify`, which is the authority on the format: every
//! bundle built here decodes there, and the tests check it).
//!
//! ```text
//! keys::generate / keys::read_signing_key ─┐
//! ids::vendor_id / ids::class_id ──────────┼─► ReleaseInput ─► build_bundle ─► bytes
//! patch (deltaseal-diff) ──────────────────┘
//! ```
//!
//! - [`keys`]: generate, read and write PKCS#8 v1 / SubjectPublicKeyInfo PEM.
//! - [`ids`]: SUIT vendor and class UUIDs from names (UUID v5).
//! - [`build_bundle`]: one call from a [`ReleaseInput`] to signed bundle
//!   bytes; [`bundle`] has the pieces for external (offline, HSM) signing
//!   and for adding signatures to a finished bundle.
//! - [`root`]: trust root documents (keys, threshold, version, expiry):
//!   build, rotate, sign, attach external signatures.
//!
//! # Getting started
//!
//! ```
//! use deltaseal_sign::{ImageRef, ReleaseInput, build_bundle, ids, keys};
//! use deltaseal_verify::bundle::{Bundle, Policy};
//!
//! let key = keys::generate()?;
//! let vendor = ids::vendor_id("example.com");
//! let input = ReleaseInput {
//!     sequence: 2,
//!     vendor_id: vendor,
//!     class_id: ids::class_id(&vendor, "sensor-v1"),
//!     precursor: ImageRef { size: 3, digest: [1; 32] },
//!     target: ImageRef { size: 4, digest: [2; 32] },
//!     patch: b"patch bytes",
//!     patch_index_digest: [3; 32],
//! };
//! let bytes = build_bundle(&input, core::slice::from_ref(&key))?;
//! let approved = Bundle::decode(&bytes)?
//!     .authenticate(&[key.verifying_key()])?
//!     .approve(&Policy { installed_sequence: Some(1), ..Policy::default() })?;
//! assert_eq!(approved.checked_payload()?, b"patch bytes");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod bundle;
pub mod ids;
pub mod keys;
pub mod root;

pub use bundle::{ReleaseInput, SignError, add_signature, attach_signature, build_bundle};
pub use deltaseal_verify::bundle::ImageRef;
