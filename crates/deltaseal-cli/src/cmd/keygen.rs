//! `deltaseal keygen -o KEY.pem`

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use deltaseal_sign::keys;

/// Arguments of `deltaseal keygen`.
#[derive(clap::Args)]
pub struct Args {
    /// Private key file to write (PKCS#8 PEM, mode 0600); the public key goes
    /// beside it as NAME.pub.pem (SubjectPublicKeyInfo PEM).
    #[arg(short, long, value_name = "KEY.pem")]
    output: PathBuf,
    /// Overwrite existing key files.
    #[arg(long)]
    force: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &Args) -> Result<()> {
    let public_path = public_key_path(&args.output);
    for path in [&args.output, &public_path] {
        if path.exists() && !args.force {
            bail!(
                "{} already exists (use --force to overwrite)",
                path.display()
            );
        }
    }
    let key = keys::generate().context("cannot generate a key")?;
    keys::write_private_pem(&args.output, &key)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    let public = key.verifying_key();
    keys::write_public_pem(&public_path, &public)
        .with_context(|| format!("cannot write {}", public_path.display()))?;
    let kid = hex::encode(deltaseal_verify::bundle::kid(&public));
    if args.json || crate::ui::json() {
        let report = serde_json::json!({
            "private_key": args.output,
            "public_key": public_path,
            "kid": kid,
        });
        crate::ui::outln!("{report}");
    } else {
        crate::ui::say!("private key: {}", args.output.display());
        crate::ui::say!("public key:  {}", public_path.display());
        crate::ui::say!("kid:         {kid}");
    }
    Ok(())
}

/// `release.pem` → `release.pub.pem`; `release` → `release.pub.pem`.
fn public_key_path(private: &std::path::Path) -> PathBuf {
    let stem = match private.extension() {
        Some(ext) if ext == "pem" => private.with_extension(""),
        _ => private.to_path_buf(),
    };
    let mut name = stem.into_os_string();
    name.push(".pub.pem");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::public_key_path;
    use std::path::Path;

    #[test]
    fn public_key_path_replaces_pem_extension() {
        assert_eq!(
            public_key_path(Path::new("dir/release.pem")),
            Path::new("dir/release.pub.pem")
        );
        assert_eq!(
            public_key_path(Path::new("release")),
            Path::new("release.pub.pem")
        );
        assert_eq!(
            public_key_path(Path::new("a.key")),
            Path::new("a.key.pub.pem")
        );
    }
}
