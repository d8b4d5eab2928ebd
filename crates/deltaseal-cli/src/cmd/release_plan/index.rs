//! The release index (`index.json`) and the per-shard indexes
//! (`index.K-of-N.json`) that `--merge` joins.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::plan::{Plan, Shard};
use crate::fsutil;

/// What the index says about one bundle.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Position in the plan's job order.
    pub job: usize,
    /// Product name.
    pub product: String,
    /// `delta` or `full`.
    pub kind: String,
    /// Sequence number of the new image.
    pub sequence: u64,
    /// The old image's path as written in the plan; `null` for a full bundle.
    pub from: Option<String>,
    /// Old image size (0 for a full bundle: the empty image).
    pub from_size: u64,
    /// Old image SHA-256, hex (of the empty image for a full bundle).
    pub from_sha256: String,
    /// New image size.
    pub to_size: u64,
    /// New image SHA-256, hex.
    pub to_sha256: String,
    /// Bundle file name in OUTDIR.
    pub file: String,
    /// Bundle size in bytes.
    pub size: u64,
    /// Bundle SHA-256, hex.
    pub sha256: String,
    /// Percentage of the full new image saved by sending this bundle
    /// instead (100 × (1 − size / to_size), two decimals; negative when the
    /// bundle is larger).
    pub savings_percent: f64,
    /// The evidence record's file name in OUTDIR.
    pub evidence: String,
}

/// `index.json` or `index.K-of-N.json`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    /// Always `deltaseal release index`.
    pub index: String,
    /// The deltaseal version that wrote it.
    pub deltaseal_version: String,
    /// SHA-256 of the plan file.
    pub plan_sha256: String,
    /// Number of bundles in the whole plan.
    pub plan_bundles: usize,
    /// For a shard index: which shard (K).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub shard: Option<usize>,
    /// For a shard index: of how many (N).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub shards: Option<usize>,
    /// The bundles, in job order.
    pub bundles: Vec<Entry>,
}

impl Index {
    /// An index over `bundles` for `plan` (whole, or one shard).
    pub fn new(plan: &Plan, shard: Option<Shard>, mut bundles: Vec<Entry>) -> Index {
        bundles.sort_by_key(|e| e.job);
        Index {
            index: "deltaseal release index".to_owned(),
            deltaseal_version: env!("CARGO_PKG_VERSION").to_owned(),
            plan_sha256: plan.sha256.clone(),
            plan_bundles: plan.jobs.len(),
            shard: shard.map(|s| s.k),
            shards: shard.map(|s| s.n),
            bundles,
        }
    }

    /// Writes it as pretty JSON, atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self).context("cannot encode the index")?;
        text.push('\n');
        fsutil::write_atomic(path, text.as_bytes())
    }
}

/// `OUTDIR/index.json`, or `OUTDIR/index.K-of-N.json` for a shard.
pub fn index_path(outdir: &Path, shard: Option<Shard>) -> PathBuf {
    match shard {
        Some(s) => outdir.join(format!("index.{}-of-{}.json", s.k, s.n)),
        None => outdir.join("index.json"),
    }
}

/// Savings of `size` against a full image of `full` bytes, in percent,
/// rounded to two decimals.
pub fn savings_percent(size: u64, full: u64) -> f64 {
    if full == 0 {
        return 0.0;
    }
    let saved = 100.0 * (1.0 - size as f64 / full as f64);
    (saved * 100.0).round() / 100.0
}

/// Joins every shard index in `outdir` into one index, after checking
/// that all N shards are there, that each was made from this plan and
/// holds exactly its share of the jobs, and that every bundle file is
/// present with the size and digest its shard recorded.
pub fn merge(plan: &Plan, outdir: &Path) -> Result<Index> {
    let n = shard_count(outdir)?;
    let mut bundles = Vec::with_capacity(plan.jobs.len());
    for k in 1..=n {
        let shard = Shard { k, n };
        let path = index_path(outdir, Some(shard));
        if !path.exists() {
            bail!(
                "shard {k} of {n} is missing: {} not found (run --shard {k}/{n} and gather its output)",
                path.display()
            );
        }
        let bytes = fsutil::read(&path)?;
        let index: Index = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a release index", path.display()))?;
        if index.plan_sha256 != plan.sha256 {
            bail!(
                "{} was made from another plan (plan sha256 {}, this plan {})",
                path.display(),
                index.plan_sha256,
                plan.sha256
            );
        }
        if index.shard != Some(k) || index.shards != Some(n) {
            bail!("{} does not say it is shard {k} of {n}", path.display());
        }
        let expected: Vec<usize> = plan.shard(shard).map(|job| job.index).collect();
        let got: Vec<usize> = index.bundles.iter().map(|e| e.job).collect();
        if expected != got {
            bail!(
                "{} lists jobs {got:?}, but shard {k} of {n} of this plan is jobs {expected:?}",
                path.display()
            );
        }
        for entry in index.bundles {
            check_entry(plan, outdir, &entry)
                .with_context(|| format!("{}: bundle {}", path.display(), entry.job))?;
            bundles.push(entry);
        }
    }
    Ok(Index::new(plan, None, bundles))
}

/// The entry names this job's product and old image, and its bundle file
/// is in `outdir` with the recorded size and digest.
fn check_entry(plan: &Plan, outdir: &Path, entry: &Entry) -> Result<()> {
    let job = plan
        .jobs
        .get(entry.job)
        .with_context(|| format!("job {} is not in the plan", entry.job))?;
    let product = plan
        .products
        .get(job.product)
        .context("job names no product")?;
    if entry.product != product.name || entry.from.as_deref() != plan.old_label(job) {
        bail!(
            "recorded as {} from {:?}, but the plan has {} from {:?}",
            entry.product,
            entry.from,
            product.name,
            plan.old_label(job)
        );
    }
    if entry.file.contains('/') || entry.file.contains('\\') || entry.file.starts_with('.') {
        bail!("bad bundle file name {:?}", entry.file);
    }
    let path = outdir.join(&entry.file);
    let bytes = fsutil::read(&path)?;
    let digest = hex::encode(deltaseal_verify::digest::sha256(&bytes));
    if bytes.len() as u64 != entry.size || digest != entry.sha256 {
        bail!(
            "{} is not the recorded bundle (size {} sha256 {}, recorded {} {})",
            path.display(),
            bytes.len(),
            digest,
            entry.size,
            entry.sha256
        );
    }
    Ok(())
}

/// N from the `index.K-of-N.json` files present; all must agree.
fn shard_count(outdir: &Path) -> Result<usize> {
    if !outdir.is_dir() {
        bail!(
            "no shard index (index.K-of-N.json): {} is not a directory",
            outdir.display()
        );
    }
    let entries =
        std::fs::read_dir(outdir).with_context(|| format!("cannot list {}", outdir.display()))?;
    let mut counts = std::collections::BTreeSet::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", outdir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(middle) = name
            .strip_prefix("index.")
            .and_then(|rest| rest.strip_suffix(".json"))
        else {
            continue;
        };
        if let Some((_, n)) = middle.split_once("-of-")
            && let Ok(n) = n.parse::<usize>()
        {
            counts.insert(n);
        }
    }
    let mut counts = counts.into_iter();
    match (counts.next(), counts.next()) {
        (None, _) => bail!("no shard index (index.K-of-N.json) in {}", outdir.display()),
        (Some(n), None) => Ok(n),
        (Some(a), Some(b)) => bail!(
            "{} holds shard indexes of different splits (of {a} and of {b}); keep one split",
            outdir.display()
        ),
    }
}
