//! `deltaseal root init|sign|rotate|verify`: trust root documents.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use deltaseal_sign::keys::VerifyingKey;
use deltaseal_sign::{keys, root};
use deltaseal_verify::root::{SignedRoot, TrustRoot};

use crate::cmd::sign::{SignerArgs, sign_document};
use crate::fsutil;

/// Arguments of `deltaseal root`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Make an unsigned version-1 root from public keys and a threshold.
    Init(InitArgs),
    /// Add one signature to a root (repeat per signer), or with --external
    /// write the exact bytes an offline signer signs.
    Sign(SignArgs),
    /// Make the next version of a root (unsigned): it then needs signatures
    /// by a threshold of the old keys and a threshold of the new ones.
    Rotate(RotateArgs),
    /// Check a root: a threshold of its own keys signed it; with --trust,
    /// also that it properly follows the trusted root.
    Verify(VerifyArgs),
}

/// Arguments of `deltaseal root init`.
#[derive(clap::Args)]
pub struct InitArgs {
    /// A trusted public key (SPKI PEM); repeat for each key.
    #[arg(long = "key", value_name = "P.pub.pem", required = true)]
    keys: Vec<PathBuf>,
    /// How many distinct keys must sign a bundle or the next root.
    #[arg(long, value_name = "N")]
    threshold: usize,
    /// Expiry: RFC 3339 UTC (2027-12-31T00:00:00Z) or Unix seconds.
    #[arg(long, value_name = "TIME")]
    expires: Option<String>,
    /// Root file to write.
    #[arg(short, long, value_name = "ROOT")]
    output: PathBuf,
}

/// Arguments of `deltaseal root sign`.
#[derive(clap::Args)]
pub struct SignArgs {
    /// The root to sign.
    root: PathBuf,
    #[command(flatten)]
    signer: SignerArgs,
}

/// Arguments of `deltaseal root rotate`.
#[derive(clap::Args)]
pub struct RotateArgs {
    /// The current root.
    root: PathBuf,
    /// Public key to add (SPKI PEM); repeatable.
    #[arg(long = "add-key", value_name = "P.pub.pem")]
    add: Vec<PathBuf>,
    /// Public key to remove (revoke); repeatable.
    #[arg(long = "remove-key", value_name = "P.pub.pem")]
    remove: Vec<PathBuf>,
    /// New threshold (default: keep).
    #[arg(long, value_name = "N")]
    threshold: Option<usize>,
    /// New expiry: RFC 3339 UTC or Unix seconds (default: keep).
    #[arg(long, value_name = "TIME", conflicts_with = "no_expiry")]
    expires: Option<String>,
    /// Remove the expiry.
    #[arg(long)]
    no_expiry: bool,
    /// Root file to write (unsigned).
    #[arg(short, long, value_name = "NEWROOT")]
    output: PathBuf,
}

/// Arguments of `deltaseal root verify`.
#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The root to check.
    root: PathBuf,
    /// The currently trusted root: the checked one must be its successor.
    #[arg(long, value_name = "OLDROOT")]
    trust: Option<PathBuf>,
    /// Trusted time for expiry (RFC 3339 UTC or Unix seconds); default: the
    /// system clock.
    #[arg(long, value_name = "TIME")]
    now: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &Args) -> Result<()> {
    match &args.command {
        Command::Init(a) => init(a),
        Command::Sign(a) => sign(a),
        Command::Rotate(a) => rotate(a),
        Command::Verify(a) => verify(a),
    }
}

/// `--json` output of `root init` and `root rotate`: the unsigned root written.
fn root_json(output: &std::path::Path, r: &TrustRoot) -> serde_json::Value {
    serde_json::json!({
        "output": output,
        "signed": false,
        "version": r.version(),
        "threshold": r.threshold(),
        "expires": r.expires().map(format_time),
        "keys": r.kids().map(hex::encode).collect::<Vec<_>>(),
    })
}

fn init(args: &InitArgs) -> Result<()> {
    let keys = read_public_keys(&args.keys)?;
    let expires = args.expires.as_deref().map(parse_time).transpose()?;
    let r = TrustRoot::new(1, args.threshold, expires, keys).context("cannot make the root")?;
    fsutil::write_atomic(&args.output, &root::unsigned(&r))?;
    if crate::ui::json() {
        crate::ui::outln!("{}", root_json(&args.output, &r));
    } else {
        crate::ui::say!("{}: {} (unsigned)", args.output.display(), describe(&r));
    }
    Ok(())
}

fn sign(args: &SignArgs) -> Result<()> {
    sign_document(
        &args.root,
        &args.signer,
        "root",
        root::external_tbs,
        root::sign,
    )
}

fn rotate(args: &RotateArgs) -> Result<()> {
    let doc = fsutil::read(&args.root)?;
    let current = read_root(&args.root, &doc)?.root().clone();
    let add = read_public_keys(&args.add)?;
    let remove = read_public_keys(&args.remove)?;
    let expires = if args.no_expiry {
        Some(None)
    } else {
        args.expires
            .as_deref()
            .map(parse_time)
            .transpose()?
            .map(Some)
    };
    let next = root::rotate(&current, &add, &remove, args.threshold, expires)
        .context("cannot rotate the root")?;
    fsutil::write_atomic(&args.output, &root::unsigned(&next))?;
    if crate::ui::json() {
        crate::ui::outln!("{}", root_json(&args.output, &next));
        return Ok(());
    }
    crate::ui::say!(
        "{}: {} (unsigned; needs {} of the old keys and {} of the new)",
        args.output.display(),
        describe(&next),
        current.threshold(),
        next.threshold()
    );
    Ok(())
}

fn verify(args: &VerifyArgs) -> Result<()> {
    let now = now_or(args.now.as_deref())?;
    let doc = fsutil::read(&args.root)?;
    let signed = read_root(&args.root, &doc)?;
    let (verified, old_signers) = match &args.trust {
        Some(old_path) => {
            let old_doc = fsutil::read(old_path)?;
            let old = read_root(old_path, &old_doc)?;
            let old = old.verify(Some(now)).or_else(|_| {
                // An expired trusted root can still rotate; its signatures
                // must still meet its threshold.
                old.verify(None)
            });
            let old = old.with_context(|| format!("{} is not a valid root", old_path.display()))?;
            let r = signed.verify_successor(&old, Some(now)).with_context(|| {
                format!(
                    "{} does not follow {}",
                    args.root.display(),
                    old_path.display()
                )
            })?;
            (r, Some(signed.signers_in(&old)))
        }
        None => (
            signed
                .verify(Some(now))
                .with_context(|| format!("{} is not a valid root", args.root.display()))?,
            None,
        ),
    };
    let counted: Vec<String> = signed
        .signers_in(&verified)
        .iter()
        .map(hex::encode)
        .collect();
    if args.json || crate::ui::json() {
        let report = serde_json::json!({
            "verified": true,
            "version": verified.version(),
            "threshold": verified.threshold(),
            "expires": verified.expires(),
            "keys": verified.kids().map(hex::encode).collect::<Vec<_>>(),
            "signers_counted": counted,
            "old_signers_counted": old_signers.map(|s| s.iter().map(hex::encode).collect::<Vec<_>>()),
        });
        crate::ui::outln!("{report}");
    } else {
        crate::ui::outln!(
            "verified: {}, signed by {}",
            describe(&verified),
            counted.join(", ")
        );
    }
    Ok(())
}

/// Reads SPKI PEM public keys.
pub fn read_public_keys(paths: &[PathBuf]) -> Result<Vec<VerifyingKey>> {
    paths
        .iter()
        .map(|path| {
            keys::read_verifying_key(path)
                .with_context(|| format!("cannot read public key {}", path.display()))
        })
        .collect()
}

fn read_root<'a>(path: &Path, bytes: &'a [u8]) -> Result<SignedRoot<'a>> {
    SignedRoot::decode(bytes).with_context(|| format!("{} is not a valid root", path.display()))
}

fn describe(r: &TrustRoot) -> String {
    let expiry = match r.expires() {
        Some(t) => format!("expires {}", format_time(t)),
        None => "no expiry".to_owned(),
    };
    format!(
        "version {}, {} of {} keys, {}",
        r.version(),
        r.threshold(),
        r.keys().len(),
        expiry
    )
}

/// `--now` if given, else the system clock, as Unix seconds.
pub fn now_or(given: Option<&str>) -> Result<u64> {
    match given {
        Some(s) => parse_time(s),
        None => Ok(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .context("system clock is before 1970")?
            .as_secs()),
    }
}

/// Parses Unix seconds or RFC 3339 UTC `YYYY-MM-DDTHH:MM:SSZ`.
pub fn parse_time(s: &str) -> Result<u64> {
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(secs);
    }
    let bad =
        || anyhow::anyhow!("invalid time {s:?} (expected 2027-12-31T00:00:00Z or Unix seconds)");
    let b = s.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
        || !matches!(b[19], b'Z' | b'z')
    {
        return Err(bad());
    }
    let num = |r: core::ops::Range<usize>| -> Result<i64> {
        let part = &s[r];
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse::<i64>().map_err(|_| bad())
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if y < 1970 || !(1..=12).contains(&mo) || d < 1 || d > days_in[(mo - 1) as usize] {
        return Err(bad());
    }
    if h > 23 || mi > 59 || se > 59 {
        return Err(bad());
    }
    let days = days_from_civil(y, mo, d);
    u64::try_from(days * 86_400 + h * 3600 + mi * 60 + se).map_err(|_| bad())
}

/// Formats Unix seconds as RFC 3339 UTC.
pub fn format_time(t: u64) -> String {
    let Ok(t) = i64::try_from(t) else {
        return t.to_string();
    };
    let (days, rem) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    if y > 9999 {
        return t.to_string();
    }
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

// Howard Hinnant's civil calendar algorithms.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_round_trips() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(parse_time("2027-12-31T00:00:00Z").unwrap(), 1_830_211_200);
        assert_eq!(parse_time("2000-02-29T23:59:59Z").unwrap(), 951_868_799);
        assert_eq!(parse_time("1830211200").unwrap(), 1_830_211_200);
        for t in [0, 951_868_799, 1_830_211_200, 4_102_444_800] {
            assert_eq!(parse_time(&format_time(t)).unwrap(), t);
        }
        for bad in [
            "2027-13-01T00:00:00Z",
            "2027-02-29T00:00:00Z",
            "2027-12-31 00:00:00Z",
            "2027-12-31T24:00:00Z",
            "2027-12-31T00:00:00+01:00",
            "-1",
            "",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
