//! `deltaseal attach-signature BUNDLE|ROOT --signature SIG.bin --public-key P.pub.pem -o OUT`

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use deltaseal_sign::{attach_signature, keys, root};
use deltaseal_verify::bundle::{Bundle, kid};
use deltaseal_verify::root::SignedRoot;

use crate::fsutil;

/// Arguments of `deltaseal attach-signature`.
#[derive(clap::Args)]
pub struct Args {
    /// The bundle (or trust root) the signature was made for.
    input: PathBuf,
    /// The raw 64-byte Ed25519 signature over the bytes `sign --external`
    /// (or `root sign --external`) wrote.
    #[arg(long, value_name = "SIG.bin")]
    signature: PathBuf,
    /// The signer's public key (SPKI PEM); the signature is checked against it.
    #[arg(long, value_name = "P.pub.pem")]
    public_key: PathBuf,
    /// File to write: the input with the signature added.
    #[arg(short, long, value_name = "OUT")]
    output: PathBuf,
}

pub fn run(args: &Args) -> Result<()> {
    let bytes = fsutil::read(&args.input)?;
    let public = keys::read_verifying_key(&args.public_key)
        .with_context(|| format!("cannot read public key {}", args.public_key.display()))?;
    let raw = fsutil::read(&args.signature)?;
    let Ok(signature) = <[u8; 64]>::try_from(raw.as_slice()) else {
        bail!(
            "{} is not a raw 64-byte Ed25519 signature ({} bytes)",
            args.signature.display(),
            raw.len()
        );
    };
    let out = if Bundle::decode(&bytes).is_ok() {
        attach_signature(&bytes, &public, &signature)
            .with_context(|| format!("cannot attach the signature to {}", args.input.display()))?
    } else if SignedRoot::decode(&bytes).is_ok() {
        root::attach_signature(&bytes, &public, &signature)
            .with_context(|| format!("cannot attach the signature to {}", args.input.display()))?
    } else {
        bail!(
            "{} is not a valid bundle or trust root",
            args.input.display()
        );
    };
    fsutil::write_atomic(&args.output, &out)?;
    let kid = hex::encode(kid(&public));
    if crate::ui::json() {
        let report = serde_json::json!({ "output": args.output, "attached": kid });
        crate::ui::outln!("{report}");
    } else {
        crate::ui::say!("{}: signature by {kid} attached", args.output.display());
    }
    Ok(())
}
