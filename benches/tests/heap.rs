//! Heap budget of a streaming install on the MCU corpus pairs (issue 7):
//! with the `mcu` profile the measured heap high-water of a full install
//! (bundle fed in small pieces, old read through `OldImage`, new written to
//! a sink that keeps nothing) stays under 64 KiB, and, for every profile,
//! under the bound the installer documents for the patch's declared memory.
//!
//! Pairs come from `$CORPUS_DIR` (default `<workspace>/../corpus-data`);
//! a missing pair is skipped, unless `DELTASEAL_REQUIRE_CORPUS` names it
//! (scripts/test.sh, and so CI, sets it).

use std::path::PathBuf;

use deltaseal_benches::heap::stream_install_peak;
use deltaseal_diff::DiffOptions;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// The heap a small device gives the update (issue 7).
const MCU_HEAP: u64 = 64 * 1024;

fn corpus_dir() -> PathBuf {
    match std::env::var_os("CORPUS_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../corpus-data"),
    }
}

/// One test (dhat measures the whole process, so nothing may run beside it).
#[test]
fn mcu_profile_installs_within_64_kib_of_heap() {
    let dir = corpus_dir();
    let mut measured = 0;
    for pair in ["mcu-moondancer", "mcu-cityhub"] {
        let d = dir.join(pair);
        let (Ok(old), Ok(new)) = (
            std::fs::read(d.join("old.bin")),
            std::fs::read(d.join("new.bin")),
        ) else {
            let required = std::env::var("DELTASEAL_REQUIRE_CORPUS").unwrap_or_default();
            assert!(
                !required.split_whitespace().any(|p| p == pair),
                "corpus pair {pair} is required (DELTASEAL_REQUIRE_CORPUS) but missing under {}",
                dir.display()
            );
            eprintln!("SKIP: corpus pair {pair} not found; run ../shared/corpus/fetch.sh");
            continue;
        };
        for (profile, opts) in [
            ("mcu", DiffOptions::mcu()),
            ("default", DiffOptions::default()),
        ] {
            let h = stream_install_peak(&old, &new, &DiffOptions { threads: 2, ..opts });
            println!(
                "{pair} {profile}: peak {} B, declared {} B, bound {} B, {} chunks, patch {} B",
                h.peak, h.declared, h.bound, h.chunks, h.patch_len
            );
            assert!(
                h.peak <= h.bound,
                "{pair} {profile}: peak {} over the documented bound {}",
                h.peak,
                h.bound
            );
            if profile == "mcu" {
                assert!(h.mcu_limits, "{pair}: mcu patch outside Limits::mcu()");
                assert!(
                    h.peak < MCU_HEAP,
                    "{pair} mcu: peak {} B over 64 KiB",
                    h.peak
                );
            }
            measured += 1;
        }
    }
    eprintln!("{measured} installs measured");
}
