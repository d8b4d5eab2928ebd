//! `index.json`: the list of every case, what it feeds the library and what
//! must come out. This is the file other implementers read.

use serde::{Deserialize, Serialize};

/// Format tag of `index.json`.
pub const INDEX_FORMAT: &str = "deltaseal-testvectors/1";

/// The whole `index.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// Always [`INDEX_FORMAT`].
    pub format: String,
    /// How the files were made.
    pub generator: String,
    /// Named Ed25519 test keys (seeds are public: never use them for real).
    pub keys: Vec<KeyEntry>,
    /// Named device policies used by bundle cases.
    pub policies: Vec<PolicyEntry>,
    /// Corpus images the generator read (never copied into the vectors).
    pub corpus_inputs: Vec<CorpusInput>,
    /// Every case.
    pub cases: Vec<Case>,
}

/// A test key: RFC 8032 seed, public key and deltaseal key id, all hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEntry {
    /// Key name used by cases.
    pub name: String,
    /// 32-byte Ed25519 secret seed.
    pub seed: String,
    /// 32-byte Ed25519 public key.
    pub public: String,
    /// 16-byte key id: first 16 bytes of SHA-256 of the public key.
    pub kid: String,
}

/// A device policy (the device's state, not part of the bundle).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyEntry {
    /// Policy name used by cases.
    pub name: String,
    /// Installed sequence number: bundles must be strictly greater.
    pub installed_sequence: Option<u64>,
    /// Required vendor id (16 bytes hex).
    pub vendor_id: Option<String>,
    /// Required class id (16 bytes hex).
    pub class_id: Option<String>,
}

/// An image from the external corpus, named by path relative to `$CORPUS_DIR`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorpusInput {
    /// Path relative to the corpus directory, e.g. `mcu-cityhub/old.bin`.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the file.
    pub sha256: String,
}

/// What a case feeds the library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseKind {
    /// `input` is a patch: apply it to `old` under `limits`.
    Patch,
    /// `input` is a bundle: decode, authenticate with `trusted_keys`,
    /// approve with `policy`, then apply to `old` under `limits`.
    Bundle,
}

/// Named patch limits (see `deltaseal_verify::patch::Limits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitsName {
    /// `Limits::default()`: host limits.
    Default,
    /// `Limits::mcu()`: 64 KiB decoder memory, 16 KiB chunks, 1024 chunks, 16 MiB images.
    Mcu,
}

/// One case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    /// `<area>_<condition>`.
    pub name: String,
    /// Patch or bundle.
    pub kind: CaseKind,
    /// The file under test, relative to the vectors directory.
    pub input: String,
    /// The old image: a path relative to the vectors directory, or
    /// `corpus:<path>` for a corpus image (not distributed).
    pub old: String,
    /// SHA-256 of the old image (lets a checker spot a wrong corpus file).
    pub old_sha256: String,
    /// Patch limits the applier enforces.
    pub limits: LimitsName,
    /// Bundle cases: names of the trusted keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_keys: Vec<String>,
    /// Bundle cases with trust roots: a chain of root documents (paths). The
    /// first is the installed root, checked on its own (a threshold of its
    /// own keys signed it); each next one must be its successor (version + 1,
    /// a threshold of the previous root's keys and of its own signed it).
    /// The last one authenticates the bundle (k of n distinct keys), and
    /// `trusted_keys` is then unused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roots: Vec<String>,
    /// Bundle cases: name of the device policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Expected outcome.
    pub expect: Expect,
    /// One sentence: what this case proves.
    pub comment: String,
}

/// Expected outcome of a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum Expect {
    /// Success: the new image has this size and SHA-256.
    Ok {
        /// New image size.
        new_size: u64,
        /// New image SHA-256 (hex).
        new_sha256: String,
    },
    /// Failure with this error kind: `<stage>.<Variant>`, stage one of
    /// `root`, `decode`, `signature`, `policy`, `update`, `patch`.
    Error {
        /// The error kind.
        error: String,
    },
}
