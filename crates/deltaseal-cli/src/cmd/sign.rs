//! `deltaseal sign BUNDLE --key KEY.pem -o BUNDLE` and
//! `deltaseal sign BUNDLE --external -o TBS.bin`

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use deltaseal_sign::{add_signature, bundle::external_tbs, keys};
use deltaseal_verify::bundle::kid;

use crate::fsutil;

/// Arguments of `deltaseal sign`.
#[derive(clap::Args)]
pub struct Args {
    /// The bundle to add a signature to.
    bundle: PathBuf,
    /// Signing key (PKCS#8 PEM).
    #[arg(
        long,
        value_name = "KEY.pem",
        required_unless_present = "external",
        conflicts_with = "external"
    )]
    key: Option<PathBuf>,
    /// Write the exact bytes to sign instead (for an HSM, a KMS or
    /// `openssl pkeyutl -sign -rawin`); add the signature with
    /// `deltaseal attach-signature`. Every signer signs the same bytes.
    #[arg(long)]
    external: bool,
    /// File to write: the bundle with one more signature, or with
    /// --external the bytes to sign.
    #[arg(short, long, value_name = "OUT")]
    output: PathBuf,
}

pub fn run(args: &Args) -> Result<()> {
    let bytes = fsutil::read(&args.bundle)?;
    if args.external {
        let tbs = external_tbs(&bytes)
            .with_context(|| format!("{} is not a valid bundle", args.bundle.display()))?;
        fsutil::write_atomic(&args.output, &tbs)?;
        println!("{}: {} bytes to sign", args.output.display(), tbs.len());
        return Ok(());
    }
    let Some(key_path) = &args.key else {
        bail!("--key or --external is required");
    };
    let key = keys::read_signing_key(key_path)
        .with_context(|| format!("cannot read signing key {}", key_path.display()))?;
    let signed = add_signature(&bytes, &key)
        .with_context(|| format!("cannot sign {}", args.bundle.display()))?;
    fsutil::write_atomic(&args.output, &signed)?;
    println!(
        "{}: signed by {}",
        args.output.display(),
        hex::encode(kid(&key.verifying_key()))
    );
    Ok(())
}
