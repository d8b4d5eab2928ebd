//! `deltaseal release-plan PLAN.toml -o OUTDIR [--shard K/N | --merge]`:
//! every bundle of a release (each product from each old image, plus one
//! full-image bundle per product), content-addressed, built in parallel,
//! skipped when already built, indexed in `OUTDIR/index.json`.

mod index;
mod plan;

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result, anyhow};
use deltaseal_sign::keys::SigningKey;
use deltaseal_verify::bundle::Bundle;
use deltaseal_verify::digest::sha256;
use serde_json::json;

use crate::bundler::{self, Spec};
use crate::cmd::sign::read_signing_key;
use crate::ui::{self, say};
use crate::{evidence, fsutil};
use index::{Entry, Index};
use plan::{Job, Plan, Shard};

/// Arguments of `deltaseal release-plan`.
#[derive(clap::Args)]
pub struct Args {
    /// The plan (TOML): one `[[product]]` table per product / hardware class
    /// with name, vendor, class, key (or keys), sequence, new, and old (a
    /// list of paths) or old_dir; optional device, deferrable, level
    /// (fast|default|max), chunk_size.
    /// Relative paths are relative to the plan file.
    #[arg(value_name = "PLAN.toml")]
    plan: PathBuf,
    /// Directory for the bundles, their evidence records and the index.
    #[arg(short, long, value_name = "OUTDIR")]
    output: PathBuf,
    /// Build only shard K of N (1 <= K <= N) and write index.K-of-N.json;
    /// the N shards are disjoint and together are the whole plan.
    #[arg(long, value_name = "K/N", conflicts_with = "merge")]
    shard: Option<Shard>,
    /// Check that every shard's index and bundles are in OUTDIR and agree
    /// with the plan, then write OUTDIR/index.json. Builds nothing.
    #[arg(long)]
    merge: bool,
    /// Bundles built at the same time (0 = one per core); each diff gets
    /// the cores left over.
    #[arg(short = 'j', long, default_value_t = 0)]
    jobs: usize,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// One job's outcome: its index entry and whether it was built now.
type JobResult = Result<(Entry, Status)>;

/// Whether a run made a bundle or found it already there.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Built,
    UpToDate,
}

pub fn run(args: &Args) -> Result<()> {
    let plan = Plan::load(&args.plan)?;
    if args.merge {
        return merge(&plan, &args.output, args.json || ui::json());
    }
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let jobs: Vec<&Job> = match args.shard {
        Some(shard) => plan.shard(shard).collect(),
        None => plan.jobs.iter().collect(),
    };
    let keys = load_keys(&plan, &jobs)?;

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = match args.jobs {
        0 => cores,
        n => n,
    }
    .clamp(1, jobs.len().max(1));
    let diff_threads = (cores / workers).max(1);

    let bar = ui::items_bar(jobs.len() as u64, "building bundles");
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Vec<Mutex<Option<JobResult>>> = jobs.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let (Some(job), Some(slot)) = (jobs.get(i), results.get(i)) else {
                        break;
                    };
                    if failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let result = build_job(&plan, job, &keys, &args.output, diff_threads);
                    if result.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    if let Ok(mut slot) = slot.lock() {
                        *slot = Some(result);
                    }
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish_and_clear();

    let mut done = Vec::with_capacity(jobs.len());
    for (job, slot) in jobs.iter().zip(results) {
        let result = slot
            .into_inner()
            .map_err(|_| anyhow!("a worker thread panicked"))?;
        match result {
            Some(Ok(entry)) => done.push(entry),
            Some(Err(err)) => return Err(err.context(job_label(&plan, job))),
            // Not started because an earlier job failed: that error is reported.
            None => continue,
        }
    }
    let index_path = index::index_path(&args.output, args.shard);
    let entries: Vec<Entry> = done.iter().map(|(e, _)| e.clone()).collect();
    Index::new(&plan, args.shard, entries).write(&index_path)?;
    report(
        &args.plan,
        &index_path,
        args.shard,
        &done,
        args.json || ui::json(),
    );
    Ok(())
}

fn merge(plan: &Plan, outdir: &Path, json: bool) -> Result<()> {
    let spinner = ui::spinner("checking the shards' bundles");
    let index = index::merge(plan, outdir);
    spinner.finish_and_clear();
    let index = index?;
    let path = index::index_path(outdir, None);
    index.write(&path)?;
    if json {
        let report = json!({
            "merged": true,
            "index": path,
            "bundles": index.bundles.len(),
        });
        crate::ui::outln!("{report}");
    } else {
        say!(
            "merged every shard: {} bundles; wrote {}",
            index.bundles.len(),
            path.display()
        );
    }
    Ok(())
}

fn report(
    plan_path: &Path,
    index_path: &Path,
    shard: Option<Shard>,
    done: &[(Entry, Status)],
    json: bool,
) {
    let built = done.iter().filter(|(_, s)| *s == Status::Built).count();
    let up_to_date = done.len().saturating_sub(built);
    if json {
        let bundles: Vec<_> = done
            .iter()
            .map(|(e, s)| {
                json!({
                    "file": e.file,
                    "product": e.product,
                    "kind": e.kind,
                    "from": e.from,
                    "size": e.size,
                    "savings_percent": e.savings_percent,
                    "status": if *s == Status::Built { "built" } else { "up-to-date" },
                })
            })
            .collect();
        let report = json!({
            "plan": plan_path,
            "index": index_path,
            "shard": shard.map(|s| format!("{}/{}", s.k, s.n)),
            "built": built,
            "up_to_date": up_to_date,
            "bundles": bundles,
        });
        crate::ui::outln!("{report}");
        return;
    }
    for (e, status) in done {
        let what = match &e.from {
            Some(from) => format!("from {from}"),
            None => "full image".to_owned(),
        };
        say!(
            "{:<10} {} ({} {what}: {} bytes, {:.2}% saved)",
            if *status == Status::Built {
                "built"
            } else {
                "up to date"
            },
            e.file,
            e.product,
            e.size,
            e.savings_percent
        );
    }
    if built == 0 {
        say!(
            "nothing to rebuild: all {up_to_date} bundles up to date; wrote {}",
            index_path.display()
        );
    } else {
        say!(
            "{built} built, {up_to_date} up to date; wrote {}",
            index_path.display()
        );
    }
}

fn job_label(plan: &Plan, job: &Job) -> String {
    let name = plan
        .products
        .get(job.product)
        .map_or("?", |p| p.name.as_str());
    match plan.old_label(job) {
        Some(from) => format!("{name} from {from}"),
        None => format!("{name} full image"),
    }
}

/// The signing keys of every product this run builds, read once.
fn load_keys(plan: &Plan, jobs: &[&Job]) -> Result<Vec<Vec<SigningKey>>> {
    plan.products
        .iter()
        .enumerate()
        .map(|(pi, product)| {
            if !jobs.iter().any(|job| job.product == pi) {
                return Ok(Vec::new());
            }
            product
                .keys
                .iter()
                .map(|(_, path)| read_signing_key(path))
                .collect::<Result<Vec<_>>>()
                .with_context(|| format!("product {}", product.name))
        })
        .collect()
}

fn build_job(
    plan: &Plan,
    job: &Job,
    keys: &[Vec<SigningKey>],
    outdir: &Path,
    threads: usize,
) -> Result<(Entry, Status)> {
    let product = plan.products.get(job.product).context("no such product")?;
    let signers = keys.get(job.product).context("no keys for the product")?;
    let new = fsutil::read(&product.new.1)?;
    let old_source = job.old.and_then(|oi| product.olds.get(oi));
    let old = match old_source {
        Some((_, path)) => fsutil::read(path)?,
        None => Vec::new(),
    };
    let options = product.options(threads);
    let spec = Spec {
        old: &old,
        new: &new,
        sequence: product.sequence,
        vendor: &product.vendor,
        class: &product.class,
        device: product.device.as_deref(),
        deferrable: product.deferrable,
        signers,
        options: &options,
        recompress: options.level == deltaseal_diff::Level::Max,
    };
    let old_ref = bundler::image_ref(&old);
    let new_ref = bundler::image_ref(&new);
    let kids: Vec<String> = signers
        .iter()
        .map(|key| hex::encode(deltaseal_verify::bundle::kid(&key.verifying_key())))
        .collect();
    // Everything that determines the bundle's bytes; its digest names the file.
    let inputs = json!({
        "deltaseal": env!("CARGO_PKG_VERSION"),
        "product": product.name,
        "vendor": product.vendor,
        "class": product.class,
        "device": product.device,
        "deferrable": product.deferrable,
        "sequence": product.sequence,
        "old_sha256": old_source.map(|_| hex::encode(old_ref.digest)),
        "new_sha256": hex::encode(new_ref.digest),
        "signers": kids,
        "engine": evidence::engine_json(&options),
    });
    let key = hex::encode(sha256(inputs.to_string().as_bytes()));
    let from_tag = match old_source {
        Some(_) => hex::encode(old_ref.digest)
            .chars()
            .take(12)
            .collect::<String>(),
        None => "full".to_owned(),
    };
    let file = format!(
        "{}-{}-{from_tag}-{}.bundle",
        product.name,
        product.sequence,
        key.get(..16).unwrap_or(&key)
    );
    let evidence_file = format!("{file}.evidence.json");
    let bundle_path = outdir.join(&file);
    let evidence_path = outdir.join(&evidence_file);

    let (bundle, status) = match already_built(&bundle_path, &evidence_path, &spec) {
        Some(bytes) => (bytes, Status::UpToDate),
        None => {
            let built = bundler::build(&spec)?;
            fsutil::write_atomic(&bundle_path, &built.bundle)?;
            let sources = evidence::Sources {
                old: old_source.map(|(label, _)| label.as_str()),
                new: &product.new.0,
                bundle: &file,
                keys: product
                    .keys
                    .iter()
                    .map(|(label, _)| label.clone())
                    .collect(),
            };
            let record = evidence::record(&spec, &built, &sources)?;
            evidence::write(&evidence_path, &record)?;
            (built.bundle, Status::Built)
        }
    };
    let size = bundle.len() as u64;
    let entry = Entry {
        job: job.index,
        product: product.name.clone(),
        kind: if old_source.is_some() {
            "delta"
        } else {
            "full"
        }
        .to_owned(),
        sequence: product.sequence,
        from: old_source.map(|(label, _)| label.clone()),
        from_size: old_ref.size,
        from_sha256: hex::encode(old_ref.digest),
        to_size: new_ref.size,
        to_sha256: hex::encode(new_ref.digest),
        file,
        size,
        sha256: hex::encode(sha256(&bundle)),
        savings_percent: index::savings_percent(size, new_ref.size),
        evidence: evidence_file,
    };
    Ok((entry, status))
}

/// The bundle already in OUTDIR, if it is there with its evidence and its
/// manifest is for these images and this sequence (its name already
/// encodes every input, so this guards against a damaged or foreign file).
fn already_built(bundle_path: &Path, evidence_path: &Path, spec: &Spec<'_>) -> Option<Vec<u8>> {
    if !evidence_path.is_file() {
        return None;
    }
    let bytes = std::fs::read(bundle_path).ok()?;
    let bundle = Bundle::decode(&bytes).ok()?;
    let m = bundle.manifest();
    let same = m.sequence == spec.sequence
        && m.precursor == bundler::image_ref(spec.old)
        && m.target == bundler::image_ref(spec.new)
        && bundle.signer_kids().count() == spec.signers.len();
    same.then_some(bytes)
}
