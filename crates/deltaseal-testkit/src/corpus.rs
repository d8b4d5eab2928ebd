//! The external corpus: real firmware and binary image pairs that are too big
//! (and not ours) to commit, fetched beside the workspace.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

/// The environment variable naming the pairs that must be present.
pub const REQUIRE_CORPUS_VAR: &str = "DELTASEAL_REQUIRE_CORPUS";

/// One corpus pair: a directory holding `old.bin` and `new.bin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorpusPair {
    /// Directory name under the corpus directory.
    pub name: &'static str,
    /// A small microcontroller image: cheap enough for every test run, and
    /// the pairs `scripts/test.sh` fetches by default.
    pub mcu: bool,
}

/// Every corpus pair, smallest first (the order of `sizes.md`).
pub const PAIRS: [CorpusPair; 5] = [
    CorpusPair {
        name: "mcu-moondancer",
        mcu: true,
    },
    CorpusPair {
        name: "mcu-cityhub",
        mcu: true,
    },
    CorpusPair {
        name: "uefi-ovmf",
        mcu: false,
    },
    CorpusPair {
        name: "exe-ruff",
        mcu: false,
    },
    CorpusPair {
        name: "kernel-vmlinux",
        mcu: false,
    },
];

/// The microcontroller pairs of [`PAIRS`], in order.
///
/// ```
/// let names: Vec<_> = deltaseal_testkit::mcu_pairs().map(|p| p.name).collect();
/// assert_eq!(names, ["mcu-moondancer", "mcu-cityhub"]);
/// ```
pub fn mcu_pairs() -> impl Iterator<Item = &'static CorpusPair> {
    PAIRS.iter().filter(|p| p.mcu)
}

/// Whether `DELTASEAL_REQUIRE_CORPUS` names `pair` (unset, empty or not
/// UTF-8: nothing is required).
///
/// ```
/// // Only scripts/test.sh sets the variable.
/// # if std::env::var_os("DELTASEAL_REQUIRE_CORPUS").is_none() {
/// assert!(!deltaseal_testkit::is_required("mcu-cityhub"));
/// # }
/// ```
pub fn is_required(pair: &str) -> bool {
    let required = std::env::var(REQUIRE_CORPUS_VAR).unwrap_or_default();
    names(&required, pair)
}

fn names(list: &str, pair: &str) -> bool {
    list.split_whitespace().any(|p| p == pair)
}

/// The images of one pair, read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairImages {
    /// `old.bin`: the installed image.
    pub old: Vec<u8>,
    /// `new.bin`: the image to install.
    pub new: Vec<u8>,
}

/// A pair's image could not be read (usually: the pair was never fetched).
#[derive(Debug, thiserror::Error)]
#[error("cannot read corpus image {}", path.display())]
pub struct LoadError {
    /// The image that failed.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: io::Error,
}

/// The corpus directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corpus {
    dir: PathBuf,
}

impl Corpus {
    /// `$CORPUS_DIR`, else `corpus-data` beside the workspace root (where
    /// `scripts/test.sh` fetches it). The directory need not exist.
    ///
    /// ```
    /// let corpus = deltaseal_testkit::Corpus::locate();
    /// assert!(corpus.old_path("mcu-cityhub").ends_with("mcu-cityhub/old.bin"));
    /// ```
    pub fn locate() -> Self {
        Self::from_env(std::env::var_os("CORPUS_DIR"))
    }

    fn from_env(corpus_dir: Option<OsString>) -> Self {
        let dir = corpus_dir.map_or_else(
            // This crate sits at <workspace>/crates/deltaseal-testkit.
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../corpus-data"),
            PathBuf::from,
        );
        Self { dir }
    }

    /// A corpus at `dir`, whatever the environment says.
    ///
    /// ```
    /// let corpus = deltaseal_testkit::Corpus::at("/srv/corpus");
    /// assert_eq!(corpus.dir(), std::path::Path::new("/srv/corpus"));
    /// ```
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The corpus directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `<dir>/<pair>/old.bin`.
    pub fn old_path(&self, pair: &str) -> PathBuf {
        self.dir.join(pair).join("old.bin")
    }

    /// `<dir>/<pair>/new.bin`.
    pub fn new_path(&self, pair: &str) -> PathBuf {
        self.dir.join(pair).join("new.bin")
    }

    /// Whether both images of `pair` are files.
    pub fn has(&self, pair: &str) -> bool {
        self.old_path(pair).is_file() && self.new_path(pair).is_file()
    }

    /// Reads both images of `pair`.
    ///
    /// ```
    /// let corpus = deltaseal_testkit::Corpus::at("/nonexistent");
    /// let err = corpus.load("mcu-cityhub").unwrap_err();
    /// assert!(err.path.ends_with("mcu-cityhub/old.bin"));
    /// ```
    pub fn load(&self, pair: &str) -> Result<PairImages, LoadError> {
        let read = |path: PathBuf| match std::fs::read(&path) {
            Ok(bytes) => Ok(bytes),
            Err(source) => Err(LoadError { path, source }),
        };
        Ok(PairImages {
            old: read(self.old_path(pair))?,
            new: read(self.new_path(pair))?,
        })
    }

    /// Reads `pair`, or, when it is missing, says so on stderr and returns
    /// `None` so the caller moves on.
    ///
    /// # Panics
    ///
    /// When the pair is missing and `DELTASEAL_REQUIRE_CORPUS` names it:
    /// where the corpus was fetched (scripts/test.sh, CI), a missing pair is
    /// a failure, not a skip.
    ///
    /// ```
    /// let corpus = deltaseal_testkit::Corpus::at("/nonexistent");
    /// # if !deltaseal_testkit::is_required("mcu-cityhub") {
    /// assert!(corpus.load_or_skip("mcu-cityhub").is_none());
    /// # }
    /// ```
    pub fn load_or_skip(&self, pair: &str) -> Option<PairImages> {
        self.skip_or_require(pair, is_required(pair))
    }

    fn skip_or_require(&self, pair: &str, required: bool) -> Option<PairImages> {
        match self.load(pair) {
            Ok(images) => Some(images),
            Err(_) => {
                assert!(
                    !required,
                    "corpus pair {pair} is required ({REQUIRE_CORPUS_VAR}) but missing under {}",
                    self.dir.display()
                );
                eprintln!(
                    "SKIP: corpus pair {pair} not found under {}; run ../shared/corpus/fetch.sh",
                    self.dir.display()
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpus_dir_env_wins_over_the_default() {
        let corpus = Corpus::from_env(Some("/srv/corpus".into()));
        assert_eq!(corpus.dir(), Path::new("/srv/corpus"));
    }

    #[test]
    fn default_corpus_dir_is_beside_the_workspace() {
        let corpus = Corpus::from_env(None);
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        assert!(workspace.join("Cargo.toml").is_file());
        assert_eq!(
            corpus.dir().canonicalize().ok(),
            workspace.join("../corpus-data").canonicalize().ok()
        );
        assert!(corpus.dir().ends_with("corpus-data"));
    }

    #[test]
    fn require_list_is_whitespace_separated_exact_names() {
        assert!(names("mcu-moondancer mcu-cityhub", "mcu-cityhub"));
        assert!(names(" uefi-ovmf\texe-ruff\n", "exe-ruff"));
        assert!(!names("mcu-cityhub", "mcu"));
        assert!(!names("", "mcu-cityhub"));
    }

    #[test]
    fn present_pair_loads() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("p")).unwrap();
        std::fs::write(dir.path().join("p/old.bin"), b"old").unwrap();
        std::fs::write(dir.path().join("p/new.bin"), b"new").unwrap();
        let corpus = Corpus::at(dir.path());
        assert!(corpus.has("p"));
        let images = corpus.skip_or_require("p", true).unwrap();
        assert_eq!(
            (images.old.as_slice(), images.new.as_slice()),
            (&b"old"[..], &b"new"[..])
        );
    }

    #[test]
    fn half_a_pair_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("p")).unwrap();
        std::fs::write(dir.path().join("p/old.bin"), b"old").unwrap();
        let corpus = Corpus::at(dir.path());
        assert!(!corpus.has("p"));
        assert!(corpus.load("p").unwrap_err().path.ends_with("p/new.bin"));
        assert!(corpus.skip_or_require("p", false).is_none());
    }

    #[test]
    #[should_panic(expected = "corpus pair p is required (DELTASEAL_REQUIRE_CORPUS) but missing")]
    fn missing_required_pair_fails() {
        let dir = tempfile::tempdir().unwrap();
        Corpus::at(dir.path()).skip_or_require("p", true);
    }

    #[test]
    fn pair_names_are_unique() {
        let mut names: Vec<_> = PAIRS.iter().map(|p| p.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PAIRS.len());
    }
}
