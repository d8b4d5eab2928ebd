//! The plan file (TOML): products, their images and keys, resolved into an
//! ordered list of jobs that shards split between them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use deltaseal_diff::{DiffOptions, Level};
use serde::Deserialize;

/// The file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    product: Vec<ProductFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductFile {
    name: String,
    vendor: String,
    class: String,
    key: Option<String>,
    keys: Option<Vec<String>>,
    sequence: u64,
    new: String,
    old: Option<Vec<String>>,
    old_dir: Option<String>,
    device: Option<String>,
    deferrable: Option<bool>,
    level: Option<String>,
    chunk_size: Option<u32>,
}

/// One product (hardware class) of a plan, paths resolved against the
/// plan's directory.
pub struct Product {
    /// Name, used in bundle file names: `[A-Za-z0-9._-]`, not starting with a dot.
    pub name: String,
    /// Vendor name or UUID.
    pub vendor: String,
    /// Class name or UUID.
    pub class: String,
    /// Optional device restriction.
    pub device: Option<String>,
    /// Devices may defer the install to their maintenance window.
    pub deferrable: bool,
    /// Signing keys, as written and as resolved.
    pub keys: Vec<(String, PathBuf)>,
    /// Sequence number of the new image.
    pub sequence: u64,
    /// The new image, as written and as resolved.
    pub new: (String, PathBuf),
    /// The old images, as written (old_dir joined with the file name) and as resolved.
    pub olds: Vec<(String, PathBuf)>,
    /// Diff level.
    pub level: Level,
    /// Chunk size override.
    pub chunk_size: Option<u32>,
}

impl Product {
    /// Diff options for this product (threads set by the caller).
    pub fn options(&self, threads: usize) -> DiffOptions {
        let mut options = DiffOptions::for_level(self.level);
        options.threads = threads.max(1);
        if let Some(size) = self.chunk_size {
            options.chunk_size = size;
        }
        options
    }
}

/// One bundle to build: a product and an old image, or the product's full image.
pub struct Job {
    /// Position in the plan's job order (0-based); shard K of N takes the
    /// jobs whose index is K-1 modulo N.
    pub index: usize,
    /// Index into [`Plan::products`].
    pub product: usize,
    /// Index into that product's `olds`; `None` for the full-image bundle.
    pub old: Option<usize>,
}

/// A parsed, checked plan.
pub struct Plan {
    /// SHA-256 of the plan file's bytes, hex.
    pub sha256: String,
    /// Products in file order.
    pub products: Vec<Product>,
    /// Every bundle of the plan: per product, each old image in order, then
    /// the full image.
    pub jobs: Vec<Job>,
}

impl Plan {
    /// Reads and checks the plan at `path`.
    pub fn load(path: &Path) -> Result<Plan> {
        let bytes = crate::fsutil::read(path)?;
        let text = core::str::from_utf8(&bytes)
            .with_context(|| format!("{} is not UTF-8 text", path.display()))?;
        let file: PlanFile = toml::from_str(text).map_err(|err| {
            let line = err.span().map(|span| {
                text.get(..span.start)
                    .map_or(0, |s| s.matches('\n').count())
                    .saturating_add(1)
            });
            let message = err.message().replace('\n', " ");
            match line {
                Some(line) => anyhow::anyhow!("{} line {line}: {message}", path.display()),
                None => anyhow::anyhow!("{}: {message}", path.display()),
            }
        })?;
        let base = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if file.product.is_empty() {
            bail!("{}: the plan lists no [[product]]", path.display());
        }
        let mut names = HashSet::new();
        let mut products = Vec::with_capacity(file.product.len());
        for p in file.product {
            let product = resolve(p, &base)
                .with_context(|| format!("{}: bad [[product]]", path.display()))?;
            if !names.insert(product.name.clone()) {
                bail!(
                    "{}: product {:?} is listed twice",
                    path.display(),
                    product.name
                );
            }
            products.push(product);
        }
        let mut jobs = Vec::new();
        for (pi, product) in products.iter().enumerate() {
            for oi in 0..product.olds.len() {
                jobs.push(Job {
                    index: jobs.len(),
                    product: pi,
                    old: Some(oi),
                });
            }
            jobs.push(Job {
                index: jobs.len(),
                product: pi,
                old: None,
            });
        }
        Ok(Plan {
            sha256: hex::encode(deltaseal_verify::digest::sha256(&bytes)),
            products,
            jobs,
        })
    }

    /// The jobs of shard `k` of `n` (1-based `k`).
    pub fn shard(&self, shard: Shard) -> impl Iterator<Item = &Job> {
        self.jobs
            .iter()
            .filter(move |job| job.index % shard.n == shard.k - 1)
    }

    /// The old image's path as written in the plan, or `None` for a full bundle.
    pub fn old_label(&self, job: &Job) -> Option<&str> {
        let product = self.products.get(job.product)?;
        job.old
            .and_then(|oi| product.olds.get(oi))
            .map(|(label, _)| label.as_str())
    }
}

/// `--shard K/N`: this run builds the K-th of N disjoint parts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Shard {
    /// 1-based index.
    pub k: usize,
    /// Number of shards.
    pub n: usize,
}

impl core::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("expected K/N (e.g. 3/16), got {s:?}"))?;
        let k: usize = k.parse().map_err(|_| format!("bad shard index {k:?}"))?;
        let n: usize = n.parse().map_err(|_| format!("bad shard count {n:?}"))?;
        if n == 0 || k == 0 || k > n {
            return Err(format!("shard {k}/{n}: need 1 <= K <= N"));
        }
        Ok(Shard { k, n })
    }
}

fn resolve(p: ProductFile, base: &Path) -> Result<Product> {
    let name_ok = !p.name.is_empty()
        && !p.name.starts_with('.')
        && p.name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !name_ok {
        bail!(
            "product name {:?} must be letters, digits, '.', '_' or '-' (it names files), not starting with '.'",
            p.name
        );
    }
    let key_names = match (p.key, p.keys) {
        (Some(key), None) => vec![key],
        (None, Some(keys)) if !keys.is_empty() => keys,
        (None, Some(_)) => bail!("product {:?}: keys = [] names no key", p.name),
        (None, None) => bail!("product {:?}: missing `key` (or `keys`)", p.name),
        (Some(_), Some(_)) => bail!("product {:?}: give `key` or `keys`, not both", p.name),
    };
    let keys = key_names
        .into_iter()
        .map(|k| {
            let path = base.join(&k);
            (k, path)
        })
        .collect();
    let level = match p.level.as_deref() {
        None | Some("default") => Level::Default,
        Some("fast") => Level::Fast,
        Some("max") => Level::Max,
        Some(other) => bail!(
            "product {:?}: level {other:?} is not fast, default or max",
            p.name
        ),
    };
    let olds = match (p.old, p.old_dir) {
        (Some(_), Some(_)) => bail!("product {:?}: give `old` or `old_dir`, not both", p.name),
        (Some(list), None) => list
            .into_iter()
            .map(|o| {
                let path = base.join(&o);
                (o, path)
            })
            .collect(),
        (None, Some(dir)) => list_dir(&dir, &base.join(&dir))
            .with_context(|| format!("product {:?}: old_dir", p.name))?,
        (None, None) => Vec::new(),
    };
    let mut seen = HashSet::new();
    for (label, _) in &olds {
        if !seen.insert(label.as_str()) {
            bail!("product {:?}: old image {label:?} is listed twice", p.name);
        }
    }
    let new_path = base.join(&p.new);
    Ok(Product {
        name: p.name,
        vendor: p.vendor,
        class: p.class,
        device: p.device,
        deferrable: p.deferrable.unwrap_or(false),
        keys,
        sequence: p.sequence,
        new: (p.new, new_path),
        olds,
        level,
        chunk_size: p.chunk_size,
    })
}

/// The regular, non-hidden files of `dir`, by name.
fn list_dir(label: &str, dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            bail!("{}: file name {:?} is not UTF-8", dir.display(), name);
        };
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_file() {
            let label = format!("{}/{name}", label.trim_end_matches('/'));
            files.push((label, path));
        }
    }
    files.sort();
    Ok(files)
}
