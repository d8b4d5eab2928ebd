//! `deltaseal sign BUNDLE --key KEY.pem -o BUNDLE` and
//! `deltaseal sign BUNDLE --external -o TBS.bin`

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use deltaseal_sign::keys::{self, SigningKey};
use deltaseal_sign::{add_signature, bundle::external_tbs};
use deltaseal_verify::bundle::kid;

use crate::fsutil;

/// Arguments of `deltaseal sign`.
#[derive(clap::Args)]
pub struct Args {
    /// The bundle to add a signature to.
    bundle: PathBuf,
    #[command(flatten)]
    signer: SignerArgs,
}

/// How to sign a document (a bundle or a trust root): with a key file here,
/// or by writing the bytes for a signer elsewhere.
#[derive(clap::Args)]
pub struct SignerArgs {
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
    /// File to write: the input with one more signature, or with
    /// --external the bytes to sign.
    #[arg(short, long, value_name = "OUT")]
    output: PathBuf,
}

pub fn run(args: &Args) -> Result<()> {
    sign_document(
        &args.bundle,
        &args.signer,
        "bundle",
        external_tbs,
        add_signature,
    )
}

/// Reads the document at `path` and either writes its to-be-signed bytes
/// (`--external`) or signs it with `--key`; `kind` names it in errors.
pub fn sign_document<E1, E2>(
    path: &Path,
    signer: &SignerArgs,
    kind: &str,
    external_tbs: impl FnOnce(&[u8]) -> Result<Vec<u8>, E1>,
    sign: impl FnOnce(&[u8], &SigningKey) -> Result<Vec<u8>, E2>,
) -> Result<()>
where
    E1: core::error::Error + Send + Sync + 'static,
    E2: core::error::Error + Send + Sync + 'static,
{
    let doc = fsutil::read(path)?;
    if signer.external {
        let tbs = external_tbs(&doc)
            .with_context(|| format!("{} is not a valid {kind}", path.display()))?;
        fsutil::write_atomic(&signer.output, &tbs)?;
        if crate::ui::json() {
            let report = serde_json::json!({
                "to_be_signed": signer.output,
                "size": tbs.len(),
            });
            crate::ui::outln!("{report}");
        } else {
            crate::ui::say!("{}: {} bytes to sign", signer.output.display(), tbs.len());
        }
        return Ok(());
    }
    let Some(key_path) = &signer.key else {
        bail!("--key or --external is required");
    };
    let key = read_signing_key(key_path)?;
    let signed = sign(&doc, &key).with_context(|| format!("cannot sign {}", path.display()))?;
    fsutil::write_atomic(&signer.output, &signed)?;
    let kid = hex::encode(kid(&key.verifying_key()));
    if crate::ui::json() {
        let report = serde_json::json!({ "output": signer.output, "signed_by": kid });
        crate::ui::outln!("{report}");
    } else {
        crate::ui::say!("{}: signed by {kid}", signer.output.display());
    }
    Ok(())
}

/// Reads a PKCS#8 PEM signing key, naming the file in the error.
pub fn read_signing_key(path: &Path) -> Result<SigningKey> {
    keys::read_signing_key(path)
        .with_context(|| format!("cannot read signing key {}", path.display()))
}
