//! Release evidence: a JSON record of what went into a bundle, for QA to
//! file with the release (`release --evidence`, and one per bundle from
//! `release-plan`).

use std::path::Path;

use anyhow::{Context, Result};
use deltaseal_diff::DiffOptions;
use deltaseal_verify::digest::sha256;
use serde_json::{Value, json};

use crate::bundler::{Built, Spec};
use crate::fsutil;

/// Where each input came from, as the user named it.
pub struct Sources<'a> {
    /// The old image's path; `None` for a full-image bundle.
    pub old: Option<&'a str>,
    /// The new image's path.
    pub new: &'a str,
    /// The bundle file as named in the record.
    pub bundle: &'a str,
    /// The signing key files, in signing order.
    pub keys: Vec<String>,
}

/// The evidence record of one built bundle.
pub fn record(spec: &Spec<'_>, built: &Built, sources: &Sources<'_>) -> Result<Value> {
    let created = crate::cmd::root::format_time(created_time()?);
    let old = sources.old.map(|path| image_json(path, spec.old));
    Ok(json!({
        "record": "deltaseal release evidence",
        "tool": "deltaseal",
        "tool_version": env!("CARGO_PKG_VERSION"),
        "created": created,
        "kind": if sources.old.is_some() { "delta" } else { "full" },
        "bundle": {
            "file": sources.bundle,
            "size": built.bundle.len(),
            "sha256": hex::encode(sha256(&built.bundle)),
            "patch_size": built.patch_size,
        },
        "old": old,
        "new": image_json(sources.new, spec.new),
        "sequence": spec.sequence,
        "vendor": spec.vendor,
        "vendor_id": hex::encode(built.vendor_id),
        "class": spec.class,
        "class_id": hex::encode(built.class_id),
        "device": spec.device,
        "device_id": built.device_id.map(hex::encode),
        "deferrable": spec.deferrable,
        "signers": built.kids,
        "key_files": sources.keys,
        "engine": engine_json(spec.options),
    }))
}

/// Writes `record` as pretty JSON to `path`, atomically.
pub fn write(path: &Path, record: &Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(record).context("cannot encode the evidence")?;
    text.push('\n');
    fsutil::write_atomic(path, text.as_bytes())
}

/// The engine settings that determine the patch bytes (threads do not).
pub fn engine_json(options: &DiffOptions) -> Value {
    json!({
        "level": format!("{:?}", options.level).to_lowercase(),
        "chunk_size": options.chunk_size,
    })
}

fn image_json(path: &str, bytes: &[u8]) -> Value {
    json!({
        "path": path,
        "size": bytes.len(),
        "sha256": hex::encode(sha256(bytes)),
    })
}

/// `SOURCE_DATE_EPOCH` when set (reproducible builds), else the clock.
fn created_time() -> Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(value) => value
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH is not a number of seconds: {value:?}")),
        Err(_) => crate::cmd::root::now_or(None),
    }
}
