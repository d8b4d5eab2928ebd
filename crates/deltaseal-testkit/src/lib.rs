//! Test and bench scaffolding shared by the deltaseal crates: where the
//! external corpus lives, which pairs it holds, and what a test does when a
//! pair is missing.
//!
//! What it does not do: fetch the corpus (`../shared/corpus/fetch.sh`, run
//! by `scripts/test.sh`) or depend on any deltaseal crate, so using it as a
//! dev-dependency never changes what `deltaseal-verify` links.
//!
//! ```text
//! $CORPUS_DIR (or <workspace>/../corpus-data) ─► Corpus::locate
//!     ─► load_or_skip(pair) ─► Some(PairImages { old, new })
//!                           ─► None, after "SKIP: ..." on stderr
//!                           ─► panic, when $DELTASEAL_REQUIRE_CORPUS names the pair
//! ```
//!
//! - [`PAIRS`]: every corpus pair, with [`CorpusPair::mcu`] marking the two
//!   small microcontroller pairs ([`mcu_pairs`]) that CI always fetches.
//! - [`Corpus`]: the corpus directory and the paths of a pair's images.
//! - [`Corpus::load_or_skip`]: the skip-or-require rule every corpus test
//!   follows; [`Corpus::load`] when the caller decides itself.
//! - [`Rng`]: a deterministic PRNG for synthetic images.
//!
//! # Environment
//!
//! - `CORPUS_DIR`: the corpus directory; default `corpus-data` beside the
//!   workspace root.
//! - `DELTASEAL_REQUIRE_CORPUS`: whitespace-separated pair names that must
//!   be present. `scripts/test.sh` (and so CI) sets it to the pairs it
//!   fetched, so a missing pair fails the run there instead of skipping.
//!
//! # Getting started
//!
//! ```no_run
//! use deltaseal_testkit::{Corpus, mcu_pairs};
//!
//! let corpus = Corpus::locate();
//! for pair in mcu_pairs() {
//!     let Some(images) = corpus.load_or_skip(pair.name) else { continue };
//!     assert!(!images.new.is_empty());
//! }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]

mod corpus;
mod rng;

pub use rng::Rng;

pub use corpus::{
    Corpus, CorpusPair, LoadError, PAIRS, PairImages, REQUIRE_CORPUS_VAR, is_required, mcu_pairs,
};
