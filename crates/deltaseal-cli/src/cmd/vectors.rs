//! `deltaseal vectors generate DIR` and `deltaseal vectors check DIR`

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Arguments of `deltaseal vectors`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Write the deterministic test vectors (index.json, images, patches, bundles) into DIR.
    Generate {
        /// Output directory (created if missing; existing files are overwritten).
        dir: PathBuf,
        /// Where the MCU corpus pairs live (default: $CORPUS_DIR, else ../corpus-data).
        #[arg(long, value_name = "DIR")]
        corpus_dir: Option<PathBuf>,
    },
    /// Run every case in DIR/index.json through the library; exit 1 on any failure.
    Check {
        /// Vectors directory.
        dir: PathBuf,
        /// Where the MCU corpus pairs live (default: $CORPUS_DIR, else ../corpus-data).
        #[arg(long, value_name = "DIR")]
        corpus_dir: Option<PathBuf>,
    },
}

fn corpus(arg: &Option<PathBuf>) -> Option<PathBuf> {
    let dir = arg
        .clone()
        .or_else(|| std::env::var_os("CORPUS_DIR").map(PathBuf::from))
        .unwrap_or_else(|| Path::new("../corpus-data").to_path_buf());
    dir.is_dir().then_some(dir)
}

pub fn run(args: &Args) -> Result<()> {
    match &args.action {
        Action::Generate { dir, corpus_dir } => {
            let corpus = corpus(corpus_dir);
            let set = deltaseal_vectors::generate(corpus.as_deref())
                .context("cannot generate vectors")?;
            set.write(dir)
                .with_context(|| format!("cannot write vectors to {}", dir.display()))?;
            let used = &set.index.corpus_inputs;
            if crate::ui::json() {
                let report = serde_json::json!({
                    "dir": dir,
                    "cases": set.index.cases.len(),
                    "files": set.files.len(),
                    "corpus_inputs": used.iter().map(|c| c.path.as_str()).collect::<Vec<_>>(),
                });
                crate::ui::outln!("{report}");
                return Ok(());
            }
            crate::ui::say!(
                "wrote {} cases ({} files) to {}; corpus inputs used: {}",
                set.index.cases.len(),
                set.files.len(),
                dir.display(),
                if used.is_empty() {
                    "none".to_string()
                } else {
                    used.iter()
                        .map(|c| c.path.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            );
            Ok(())
        }
        Action::Check { dir, corpus_dir } => {
            let report = deltaseal_vectors::check_dir(dir, corpus(corpus_dir).as_deref())
                .with_context(|| format!("cannot check {}", dir.display()))?;
            let skipped = report.skipped();
            if crate::ui::json() {
                let results: Vec<String> = report.results.iter().map(|r| r.to_string()).collect();
                let summary = serde_json::json!({
                    "passed": report.passed(),
                    "failed": report.failed(),
                    "skipped": skipped,
                    "results": results,
                });
                crate::ui::outln!("{summary}");
            } else {
                for r in &report.results {
                    crate::ui::outln!("{r}");
                }
                crate::ui::outln!(
                    "{} passed, {} failed{}",
                    report.passed(),
                    report.failed(),
                    if skipped > 0 {
                        format!(", {skipped} skipped")
                    } else {
                        String::new()
                    }
                );
            }
            if report.failed() > 0 {
                bail!("{} vector(s) failed", report.failed());
            }
            Ok(())
        }
    }
}
