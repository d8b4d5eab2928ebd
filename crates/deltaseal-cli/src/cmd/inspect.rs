//! `deltaseal inspect FILE [--json]`: keys, patches and bundles.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
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
}

pub fn run(args: &Args) -> Result<()> {
    let bytes = fsutil::read(&args.file)?;
    let report = if bytes.starts_with(&patch::MAGIC) {
        describe_patch(&bytes)?
    } else if bytes.starts_with(b"-----BEGIN") {
        describe_key(&args.file, &bytes)?
    } else if bytes.first() == Some(&0xd8) && bytes.get(1) == Some(&107) {
        describe_bundle(&bytes)?
    } else if bytes.first() == Some(&0x82) {
        describe_root(&bytes)?
    } else {
        bail!(
            "{}: not a deltaseal key, patch, bundle or trust root",
            args.file.display()
        );
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
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
    Ok(json!({
        "type": "deltaseal patch",
        "format_version": patch::FORMAT_VERSION,
        "size": bytes.len(),
        "codec": format!("{:?}", header.codec).to_lowercase(),
        "old": image_json(header.old_size, &header.old_digest),
        "new": image_json(header.new_size, &header.new_digest),
        "chunk_size": header.chunk_size,
        "chunks": header.chunks.len(),
        "decoder_memory": header.decoder_memory,
        "index_sha256": hex::encode(index),
        "chunk_stored_sizes": header.chunks.iter().map(|c| c.stored_len).collect::<Vec<_>>(),
    }))
}

fn describe_bundle(bytes: &[u8]) -> Result<Value> {
    let bundle = Bundle::decode(bytes).context("not a valid deltaseal bundle")?;
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
        "signer_kids": signers,
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
                println!("{pad}{key}:");
                print_text(val, indent + 2);
            }
            Value::Array(items) if items.len() > 8 => {
                let head: Vec<String> = items.iter().take(8).map(scalar_text).collect();
                println!("{pad}{key}: [{} … {} in all]", head.join(", "), items.len());
            }
            Value::Array(items) => {
                let all: Vec<String> = items.iter().map(scalar_text).collect();
                println!("{pad}{key}: [{}]", all.join(", "));
            }
            other => println!("{pad}{key}: {}", scalar_text(other)),
        }
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
