//! Patch sizes and times on the public corpus, as a markdown table.
//!
//! For every pair under `$CORPUS_DIR` (default `../corpus-data` beside the
//! repository): diff at each level, apply, check the result byte for byte,
//! and, when Debian's `bsdiff` is on PATH, run it on the same pair in the same
//! run so the ratio is measured, not remembered. The `mcu` row is the
//! `--profile mcu` patch; "install heap" is the heap high-water of a
//! streaming install (`deltaseal_verify::stream`, bundle fed in
//! `heap::PIECE`-byte pieces) of the default and mcu patches.
//!
//! ```sh
//! cargo run --release -p deltaseal-benches --bin corpus-sizes > benches/sizes.md
//! ```

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use deltaseal_benches::heap::{PIECE, stream_install_peak_of};
use deltaseal_diff::{DiffOptions, Level};
use deltaseal_testkit::{Corpus, PAIRS, PairImages};
use deltaseal_verify::patch::{Limits, apply_to_vec};

// Counts the heap of streaming installs (the "install heap" column).
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() {
    let corpus = Corpus::locate();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "Corpus: `{}`; {threads} threads. Sizes are % of the new image. \
         `mcu` is `--profile mcu`; install heap is the heap high-water of a streaming \
         install (bundle fed in {PIECE}-byte pieces, see benches/src/heap.rs).\n",
        corpus.dir().display()
    );
    println!(
        "| pair | new bytes | level | patch bytes | % of new | diff s | apply s | bsdiff % | vs bsdiff | install heap |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for pair in PAIRS.map(|p| p.name) {
        let Some(PairImages { old, new }) = corpus.load_or_skip(pair) else {
            continue;
        };
        let bsdiff = bsdiff_size(&corpus.old_path(pair), &corpus.new_path(pair));
        for (name, base) in [
            ("fast", DiffOptions::for_level(Level::Fast)),
            ("default", DiffOptions::for_level(Level::Default)),
            ("max", DiffOptions::for_level(Level::Max)),
            ("mcu", DiffOptions::mcu()),
        ] {
            let options = DiffOptions { threads, ..base };
            let start = Instant::now();
            let patch = deltaseal_diff::diff(&old, &new, &options).expect("diff");
            let diff_s = start.elapsed().as_secs_f64();
            let start = Instant::now();
            let applied = apply_to_vec(&old, &patch, &Limits::default()).expect("apply");
            let apply_s = start.elapsed().as_secs_f64();
            assert!(applied == new, "{pair}: round trip differs");
            let pct = percent(patch.len(), new.len());
            let (bs_pct, ratio) = match bsdiff {
                Some(b) => (
                    format!("{:.2}", percent(b, new.len())),
                    format!("{:.3}", patch.len() as f64 / b as f64),
                ),
                None => ("n/a".into(), "n/a".into()),
            };
            // Heap high-water of a streaming install (benches/src/heap.rs),
            // for the patches devices take (zstd): default and mcu.
            let heap = if matches!(name, "default" | "mcu") {
                let h = stream_install_peak_of(&old, &new, &patch);
                format!("{} B", h.peak)
            } else {
                "–".into()
            };
            println!(
                "| {pair} | {} | {name} | {} | {pct:.2} | {diff_s:.2} | {apply_s:.3} | {bs_pct} | {ratio} | {heap} |",
                new.len(),
                patch.len()
            );
        }
    }
}

fn percent(part: usize, whole: usize) -> f64 {
    part as f64 * 100.0 / whole.max(1) as f64
}

/// Size of Debian bsdiff 4.3's patch for the pair, if `bsdiff` is installed.
fn bsdiff_size(old: &Path, new: &Path) -> Option<usize> {
    let out = std::env::temp_dir().join(format!("deltaseal-bsdiff-{}", std::process::id()));
    let status = Command::new("bsdiff")
        .arg(old)
        .arg(new)
        .arg(&out)
        .status()
        .ok()?;
    let size = status
        .success()
        .then(|| std::fs::metadata(&out).ok())
        .flatten()
        .map(|m| m.len() as usize);
    let _ = std::fs::remove_file(&out);
    size
}
