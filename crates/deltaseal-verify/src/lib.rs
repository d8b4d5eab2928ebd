//! Verification and streaming apply of deltaseal update bundles, for devices.
//!
//! This crate is what a device agent links. It is `#![no_std]` + `alloc`
//! (the default `std` feature only adds `std::error::Error` glue), does no
//! I/O of its own and never panics on input: callers hand it bytes and
//! implement small traits to read the old image and write the new one.
//!
//! Trust is a [`root::TrustRoot`] (keys, threshold, version, expiry; see
//! the [`root`] module for rotation); a single public key is a root with
//! threshold 1 ([`root::TrustRoot::single`]).
//!
//! ```text
//! bundle bytes ─► Bundle::decode (strict CBOR) ─► authenticate_root (COSE_Sign1, Ed25519,
//!   k of n keys of the trust root) ─► policy (sequence, expiry, vendor, class)
//!   ─► precursor digest ─► patch apply ─► final digest
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

extern crate alloc;

pub mod bundle;
pub mod digest;
pub mod patch;
pub mod root;
pub mod stream;
pub mod update;
