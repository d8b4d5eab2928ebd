//! `deltaseal inspect FILE [--json]`: keys, patches and bundles.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use deltaseal_recompress::{Limits as RecompressLimits, RecompressHeader, Region};
use deltaseal_sign::keys;
use deltaseal_verify::bundle::{Bundle, ImageRef, kid};
use deltaseal_verify::patch::{self, Limits, PatchHeader};
use serde_json::{Value, json};

use crate::fsutil;

/// Arguments of `deltaseal inspect`.
#[derive(clap::Args)]
pub struct Args {
    /// A key (PEM), a patch, a bundle or a trust root.
    file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// For a bundle: say which signatures verify against this trust root
    /// or these public keys (SPKI PEM; repeatable).
    #[arg(long = "trust", value_name = "ROOT|PUB.pem")]
    trust: Vec<PathBuf>,
}

pub fn run(args: &Args) -> Result<()> {
    let bytes = fsutil::read(&args.file)?;
    let trust = if args.trust.is_empty() {
        None
    } else {
        let now = crate::cmd::root::now_or(None)?;
        Some(crate::cmd::verify::load_trust(&args.trust, now)?)
    };
    let report = if bytes.starts_with(&patch::MAGIC) {
        describe_patch(&bytes)?
    } else if deltaseal_recompress::is_recompressing(&bytes) {
        describe_recompressing(&bytes)?
    } else if bytes.starts_with(b"-----BEGIN") {
        describe_key(&args.file, &bytes)?
    } else if bytes.first() == Some(&0xd8) && bytes.get(1) == Some(&107) {
        describe_bundle(&bytes, trust.as_ref())?
    } else if bytes.first() == Some(&0x82) {
        describe_root(&bytes)?
    } else {
        bail!(
            "{}: not a deltaseal key, patch, bundle or trust root",
            args.file.display()
        );
    };
    if args.json || crate::ui::json() {
        crate::ui::outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report, 0);
    }
    Ok(())
}

/// A trust root: its content and who signed it (signatures not checked
/// here: `deltaseal root verify` does that).
fn describe_root(bytes: &[u8]) -> Result<Value> {
    let doc =
        deltaseal_verify::root::SignedRoot::decode(bytes).context("not a valid trust root")?;
    let r = doc.root();
    let own = doc.signers_in(r);
    Ok(json!({
        "type": "trust root",
        "version": r.version(),
        "threshold": r.threshold(),
        "expires": r.expires().map(crate::cmd::root::format_time),
        "keys": r.kids().map(hex::encode).collect::<Vec<_>>(),
        "signature_kids": doc
            .signer_kids()
            .map(|k| k.map_or_else(|| "none".to_owned(), hex::encode))
            .collect::<Vec<_>>(),
        "valid_signatures_by_own_keys": own.len(),
    }))
}

fn describe_key(path: &std::path::Path, bytes: &[u8]) -> Result<Value> {
    let text = String::from_utf8_lossy(bytes);
    let (kind, public) = if text.contains("PRIVATE KEY") {
        let key = keys::read_signing_key(path).context("cannot read the private key")?;
        ("ed25519 private key (PKCS#8)", key.verifying_key())
    } else {
        let key = keys::read_verifying_key(path).context("cannot read the public key")?;
        ("ed25519 public key (SPKI)", key)
    };
    Ok(json!({
        "type": kind,
        "kid": hex::encode(kid(&public)),
        "public_key": hex::encode(public.as_bytes()),
    }))
}

fn describe_patch(bytes: &[u8]) -> Result<Value> {
    let header =
        PatchHeader::decode(bytes, &Limits::default()).context("not a valid deltaseal patch")?;
    let index = patch::index_digest(bytes, &Limits::default())?;
    let mut left = header.new_size;
    let per_chunk: Vec<Value> = header
        .chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let out = left.min(u64::from(header.chunk_size));
            left = left.saturating_sub(out);
            json!({
                "chunk": i,
                "new_bytes": out,
                "stored_bytes": c.stored_len,
                "percent": percent(c.stored_len, out),
            })
        })
        .collect();
    let mut patch = json!({
        "type": "deltaseal patch",
        "format_version": bytes.get(8..10).map(|v| u16::from_le_bytes([v[0], v[1]])),
        "size": bytes.len(),
        "codec": format!("{:?}", header.codec).to_lowercase(),
        "transform": format!("{:?}", header.transform).to_lowercase(),
        "old": image_json(header.old_size, &header.old_digest),
        "new": image_json(header.new_size, &header.new_digest),
        "chunk_size": header.chunk_size,
        "chunks": header.chunks.len(),
        "decoder_memory": header.decoder_memory,
        "index_sha256": hex::encode(index),
        "percent_of_new": percent(bytes.len() as u64, header.new_size),
        "chunk_stored_sizes": header.chunks.iter().map(|c| c.stored_len).collect::<Vec<_>>(),
        "per_chunk": per_chunk,
    });
    if header.image_base != 0 {
        patch["image_base"] = json!(format!("{:#010x}", header.image_base));
    }
    Ok(patch)
}

/// A recompressing patch: the images, their LZMA streams, and the inner
/// patch between the images with those streams decompressed.
fn describe_recompressing(bytes: &[u8]) -> Result<Value> {
    let header = RecompressHeader::decode(bytes, &RecompressLimits::default())
        .context("not a valid recompressing patch")?;
    let inner = bytes
        .get(header.encoded_len()..)
        .context("not a valid recompressing patch: no inner patch")?;
    let regions = |regions: &[Region]| -> Vec<Value> {
        regions
            .iter()
            .map(|r| {
                let p = &r.params;
                let mut region = json!({
                    "offset": r.offset,
                    "stored_bytes": r.stored_len,
                    "raw_bytes": r.raw_len,
                    "lzma": format!("lc{} lp{} pb{} dict {}", p.lc, p.lp, p.pb, p.dict_size),
                });
                if p.fb != 0 {
                    region["encoder"] = json!(format!("fb {} mc {}", p.fb, p.mc));
                }
                region
            })
            .collect()
    };
    Ok(json!({
        "type": "deltaseal recompressing patch",
        "format_version": deltaseal_recompress::VERSION,
        "size": bytes.len(),
        "old": image_json(header.old_size, &header.old_digest),
        "new": image_json(header.new_size, &header.new_digest),
        "percent_of_new": percent(bytes.len() as u64, header.new_size),
        "old_streams": regions(&header.old_regions),
        "new_streams": regions(&header.new_regions),
        "inner": describe_patch(inner)?,
    }))
}

/// `part` as a percentage of `whole`, two decimals (0 for an empty whole).
fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 * 10_000.0 / whole as f64).round() / 100.0
}

fn describe_bundle(bytes: &[u8], trust: Option<&crate::cmd::verify::Trust>) -> Result<Value> {
    let bundle = Bundle::decode(bytes).context("not a valid deltaseal bundle")?;
    // Which signatures verify: authenticate a second decoded copy with
    // every trusted key (threshold 1) and read back the keys that counted.
    let verified: Option<Vec<[u8; 16]>> = trust.map(|trust| {
        Bundle::decode(bytes)
            .ok()
            .and_then(|b| b.authenticate(trust.keys()).ok())
            .map(|a| a.verified_kids().to_vec())
            .unwrap_or_default()
    });
    let signatures: Vec<Value> = bundle
        .signer_kids()
        .map(|kid| {
            let verifies = match (&verified, kid) {
                (None, _) => Value::Null,
                (Some(ok), Some(k)) => Value::Bool(ok.contains(&k)),
                (Some(_), None) => Value::Bool(false),
            };
            json!({
                "kid": kid.map(hex::encode),
                "verifies": verifies,
            })
        })
        .collect();
    let m = bundle.manifest();
    let signers: Vec<Value> = bundle
        .signer_kids()
        .map(|kid| kid.map_or(Value::Null, |k| Value::String(hex::encode(k))))
        .collect();
    let payload = match bundle.payload() {
        Some(p) if p.starts_with(&patch::MAGIC) => describe_patch(p).unwrap_or_else(
            |err| json!({ "type": "undecodable patch", "error": format!("{err:#}") }),
        ),
        Some(p) => json!({ "type": "unknown", "size": p.len() }),
        None => Value::Null,
    };
    Ok(json!({
        "type": "deltaseal bundle (SUIT envelope, COSE_Sign1 Ed25519)",
        "size": bytes.len(),
        "sequence": m.sequence,
        "urgency": if m.deferrable { "deferrable" } else { "urgent" },
        "vendor_id": hex::encode(m.vendor_id),
        "class_id": hex::encode(m.class_id),
        "precursor": image_ref_json(&m.precursor),
        "target": image_ref_json(&m.target),
        "patch": {
            "size": m.patch.size,
            "sha256": hex::encode(m.patch.digest),
            "index_sha256": hex::encode(m.patch.index_digest),
        },
        "kind": if m.precursor.size == 0 { "full image" } else { "delta" },
        "savings_percent": (100.0 - percent(bytes.len() as u64, m.target.size)),
        "signer_kids": signers,
        "signatures": signatures,
        "payload": payload,
    }))
}

fn image_ref_json(image: &ImageRef) -> Value {
    image_json(image.size, &image.digest)
}

fn image_json(size: u64, digest: &[u8; 32]) -> Value {
    json!({ "size": size, "sha256": hex::encode(digest) })
}

/// Indented `key: value` lines; long arrays are summarised.
fn print_text(value: &Value, indent: usize) {
    let Value::Object(map) = value else { return };
    let pad = " ".repeat(indent);
    for (key, val) in map {
        match val {
            Value::Object(_) => {
                crate::ui::outln!("{pad}{key}:");
                print_text(val, indent + 2);
            }
            Value::Array(items) if items.iter().any(Value::is_object) => {
                crate::ui::outln!("{pad}{key}: {} in all", items.len());
                for item in items.iter().take(16) {
                    let Value::Object(fields) = item else {
                        continue;
                    };
                    let parts: Vec<String> = fields
                        .iter()
                        .map(|(k, v)| format!("{k} {}", scalar_text(v)))
                        .collect();
                    crate::ui::outln!("{pad}  - {}", parts.join(", "));
                }
                if items.len() > 16 {
                    crate::ui::outln!("{pad}  …");
                }
            }
            Value::Array(items) if items.len() > 8 => {
                let head: Vec<String> = items.iter().take(8).map(scalar_text).collect();
                crate::ui::outln!("{pad}{key}: [{} … {} in all]", head.join(", "), items.len());
            }
            Value::Array(items) => {
                let all: Vec<String> = items.iter().map(scalar_text).collect();
                crate::ui::outln!("{pad}{key}: [{}]", all.join(", "));
            }
            other => crate::ui::outln!("{pad}{key}: {}", scalar_text(other)),
        }
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
