//! Verification and streaming apply of deltaseal update bundles, for devices.
//!
//! This crate is what a device agent links. It is `#![no_std]` + `alloc`
//! (the default `std` feature only adds `std::error::Error` glue), does no
//! I/O of its own and never panics on input: callers hand it bytes and
//! implement small traits to read the old image and write the new one.
//!
//! ```text
//! bundle bytes ─► Bundle::decode (strict CBOR) ─► authenticate (COSE_Sign1, Ed25519)
//!   ─► policy (sequence, vendor, class) ─► precursor digest ─► patch apply ─► final digest
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
pub mod update;
