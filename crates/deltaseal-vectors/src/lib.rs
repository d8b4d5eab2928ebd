//! Deterministic test vectors for deltaseal: the generator and the checker.
//!
//! Other implementers (a C bootloader, a Python test rig) use the committed
//! `testvectors/` directory and its `index.json`; this crate is how those
//! files are made ([`generate`]) and how the Rust library is checked against
//! them ([`check_dir`]). The CLI exposes both as `deltaseal vectors generate
//! DIR` and `deltaseal vectors check DIR`.
//!
//! ```text
//! fixed seeds ─► synth images ─► diff / build_bundle / hand-crafted mutations ─► VectorSet ─► DIR
//! DIR/index.json ─► per case: patch apply or bundle decode→authenticate→approve→apply ─► pass/fail
//! ```
//!
//! Everything is deterministic: keys come from fixed seeds, images from a
//! fixed PRNG, Ed25519 signatures are deterministic (RFC 8032) and the diff
//! engine's output does not depend on thread count. Corpus images
//! (`$CORPUS_DIR`) are read but never copied: only patches made from them and
//! their digests are written.
//!
//! ```
//! let set = deltaseal_vectors::generate(None)?;
//! let report = deltaseal_vectors::check_set(&set, None);
//! assert_eq!(report.failed(), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod check;
pub mod craft;
pub mod generate;
pub mod index;
pub mod synth;

pub use check::{CaseResult, CheckError, Report, Status, check_dir, check_set};
pub use generate::{GenerateError, VectorSet, generate};
pub use index::{Case, CaseKind, Expect, Index};
