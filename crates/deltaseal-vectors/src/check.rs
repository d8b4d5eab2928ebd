//! The checker: runs every case of an index through the library.

use std::path::{Path, PathBuf};

use deltaseal_verify::bundle::{Bundle, Policy};
use deltaseal_verify::digest::sha256;
use deltaseal_verify::patch::{Limits, SliceImage, apply};
use deltaseal_verify::root::{SignedRoot, TrustRoot};
use deltaseal_verify::update::{UpdateError, apply_update};
use ed25519_dalek::VerifyingKey;

use crate::generate::VectorSet;
use crate::index::{Case, CaseKind, Expect, Index, LimitsName};

/// Why a vectors directory could not be checked at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// `index.json` could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// `index.json` is not a valid index.
    #[error("invalid index {path}")]
    Index {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
}

/// Outcome of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// The library did what the index expects.
    Pass,
    /// It did something else (both sides described).
    Fail {
        /// What the index expects.
        expected: String,
        /// What happened.
        got: String,
    },
    /// The case could not run (corpus image absent).
    Skip {
        /// Why.
        reason: String,
    },
}

/// One case's name and outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    /// Case name.
    pub name: String,
    /// Outcome.
    pub status: Status,
}

/// Results of a whole check, in index order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// One entry per case.
    pub results: Vec<CaseResult>,
}

impl Report {
    fn count(&self, f: fn(&Status) -> bool) -> usize {
        self.results.iter().filter(|r| f(&r.status)).count()
    }
    /// Cases that passed.
    pub fn passed(&self) -> usize {
        self.count(|s| matches!(s, Status::Pass))
    }
    /// Cases that failed.
    pub fn failed(&self) -> usize {
        self.count(|s| matches!(s, Status::Fail { .. }))
    }
    /// Cases skipped.
    pub fn skipped(&self) -> usize {
        self.count(|s| matches!(s, Status::Skip { .. }))
    }
}

impl core::fmt::Display for CaseResult {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match &self.status {
            Status::Pass => write!(f, "pass {}", self.name),
            Status::Fail { expected, got } => {
                write!(f, "FAIL {}: expected {expected}, got {got}", self.name)
            }
            Status::Skip { reason } => write!(f, "skip {}: {reason}", self.name),
        }
    }
}

/// Checks the vectors in `dir` (`dir/index.json` and the files it names).
/// Corpus-based cases read their old image from `corpus_dir` and are skipped
/// (visibly) when it is absent.
pub fn check_dir(dir: &Path, corpus_dir: Option<&Path>) -> Result<Report, CheckError> {
    let path = dir.join("index.json");
    let text = std::fs::read(&path).map_err(|source| CheckError::Read {
        path: path.clone(),
        source,
    })?;
    let index: Index =
        serde_json::from_slice(&text).map_err(|source| CheckError::Index { path, source })?;
    Ok(run(&index, corpus_dir, |rel| {
        std::fs::read(dir.join(rel)).ok()
    }))
}

/// Checks an in-memory [`VectorSet`] (what [`crate::generate`] returned).
pub fn check_set(set: &VectorSet, corpus_dir: Option<&Path>) -> Report {
    run(&set.index, corpus_dir, |rel| set.files.get(rel).cloned())
}

fn run(index: &Index, corpus_dir: Option<&Path>, get: impl Fn(&str) -> Option<Vec<u8>>) -> Report {
    let results = index
        .cases
        .iter()
        .map(|case| CaseResult {
            name: case.name.clone(),
            status: run_case(index, case, corpus_dir, &get),
        })
        .collect();
    Report { results }
}

fn run_case(
    index: &Index,
    case: &Case,
    corpus_dir: Option<&Path>,
    get: &impl Fn(&str) -> Option<Vec<u8>>,
) -> Status {
    let old = match case.old.strip_prefix("corpus:") {
        Some(rel) => match corpus_dir.and_then(|d| std::fs::read(d.join(rel)).ok()) {
            Some(b) => b,
            None => {
                return Status::Skip {
                    reason: format!("corpus image {rel} not found (set CORPUS_DIR)"),
                };
            }
        },
        None => match get(&case.old) {
            Some(b) => b,
            None => return fail(case, format!("missing file {}", case.old)),
        },
    };
    if hex::encode(sha256(&old)) != case.old_sha256 {
        if case.old.starts_with("corpus:") {
            return Status::Skip {
                reason: format!("{} has another digest than the generator's", case.old),
            };
        }
        return fail(case, format!("{} has the wrong digest", case.old));
    }
    let Some(input) = get(&case.input) else {
        return fail(case, format!("missing file {}", case.input));
    };
    let limits = match case.limits {
        LimitsName::Default => Limits::default(),
        LimitsName::Mcu => Limits::mcu(),
    };
    let got = match case.kind {
        CaseKind::Patch => {
            let mut sink = Vec::new();
            apply(&mut SliceImage(&old), &input, &mut sink, &limits)
                .map(|_| sink)
                .map_err(|e| kind("patch", &e))
        }
        CaseKind::Bundle => match run_bundle(index, case, get, &input, &old, &limits) {
            Ok(r) => r,
            Err(setup) => return fail(case, setup),
        },
    };
    let got = match got {
        Ok(new) => Expect::Ok {
            new_size: new.len() as u64,
            new_sha256: hex::encode(sha256(&new)),
        },
        Err(error) => Expect::Error { error },
    };
    if got == case.expect {
        Status::Pass
    } else {
        Status::Fail {
            expected: describe(&case.expect),
            got: describe(&got),
        }
    }
}

fn fail(case: &Case, got: String) -> Status {
    Status::Fail {
        expected: describe(&case.expect),
        got,
    }
}

fn describe(e: &Expect) -> String {
    match e {
        Expect::Ok {
            new_size,
            new_sha256,
        } => format!("ok ({new_size} bytes, sha256 {new_sha256})"),
        Expect::Error { error } => format!("error {error}"),
    }
}

/// `<stage>.<Variant>`: the variant name from the error's `Debug` form.
fn kind(stage: &str, err: &dyn core::fmt::Debug) -> String {
    let dbg = format!("{err:?}");
    let variant: String = dbg
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    format!("{stage}.{variant}")
}

type Outcome = Result<Vec<u8>, String>;

/// Decode → authenticate → approve → apply. The outer `Err` is a broken index.
fn run_bundle(
    index: &Index,
    case: &Case,
    get: &impl Fn(&str) -> Option<Vec<u8>>,
    input: &[u8],
    old: &[u8],
    limits: &Limits,
) -> Result<Outcome, String> {
    let mut keys = Vec::new();
    for name in &case.trusted_keys {
        let entry = index
            .keys
            .iter()
            .find(|k| &k.name == name)
            .ok_or_else(|| format!("unknown key {name}"))?;
        let raw: [u8; 32] = hex32(&entry.public)?;
        keys.push(VerifyingKey::from_bytes(&raw).map_err(|_| format!("bad key {name}"))?);
    }
    let policy = match &case.policy {
        None => Policy::default(),
        Some(name) => {
            let p = index
                .policies
                .iter()
                .find(|p| &p.name == name)
                .ok_or_else(|| format!("unknown policy {name}"))?;
            Policy {
                installed_sequence: p.installed_sequence,
                vendor_id: p.vendor_id.as_deref().map(hex16).transpose()?,
                class_id: p.class_id.as_deref().map(hex16).transpose()?,
                ..Policy::default()
            }
        }
    };
    let mut root: Option<TrustRoot> = None;
    for path in &case.roots {
        let doc = get(path).ok_or_else(|| format!("missing file {path}"))?;
        let next = SignedRoot::decode(&doc).and_then(|signed| match &root {
            None => signed.verify(policy.now),
            Some(current) => signed.verify_successor(current, policy.now),
        });
        match next {
            Ok(r) => root = Some(r),
            Err(e) => return Ok(Err(kind("root", &e))),
        }
    }
    let bundle = match Bundle::decode(input) {
        Ok(b) => b,
        Err(e) => return Ok(Err(kind("decode", &e))),
    };
    let authenticated = match &root {
        Some(root) => bundle.authenticate_root(root),
        None => bundle.authenticate(&keys),
    };
    let authenticated = match authenticated {
        Ok(a) => a,
        Err(e) => return Ok(Err(kind("signature", &e))),
    };
    let approved = match authenticated.approve(&policy) {
        Ok(a) => a,
        Err(e) => return Ok(Err(kind("policy", &e))),
    };
    let mut sink = Vec::new();
    Ok(
        match apply_update(&approved, &mut &old[..], &mut sink, limits) {
            Ok(_) => Ok(sink),
            Err(UpdateError::Payload(e)) => Err(kind("policy", &e)),
            Err(UpdateError::Patch(e)) => Err(kind("patch", &e)),
            Err(e) => Err(kind("update", &e)),
        },
    )
}

fn hex32(s: &str) -> Result<[u8; 32], String> {
    let v = hex::decode(s).map_err(|_| format!("bad hex {s}"))?;
    v.try_into().map_err(|_| format!("not 32 bytes: {s}"))
}

fn hex16(s: &str) -> Result<[u8; 16], String> {
    let v = hex::decode(s).map_err(|_| format!("bad hex {s}"))?;
    v.try_into().map_err(|_| format!("not 16 bytes: {s}"))
}
