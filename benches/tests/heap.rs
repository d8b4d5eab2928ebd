//! Heap budget of a streaming install on the MCU corpus pairs (issue 7):
//! for every profile the measured heap high-water of a full install (bundle
//! fed in small pieces, old read through `OldImage`, new written to a sink
//! that keeps nothing) stays under the bound the installer documents for
//! the patch's declared memory, and with the `mcu` profile that bound is
//! under 64 KiB.
//!
//! Pairs come from `$CORPUS_DIR` (default `<workspace>/../corpus-data`);
//! a missing pair is skipped, unless `DELTASEAL_REQUIRE_CORPUS` names it
//! (scripts/test.sh, and so CI, sets it).

use deltaseal_benches::heap::stream_install_peak;
use deltaseal_diff::DiffOptions;
use deltaseal_testkit::{Corpus, PairImages, mcu_pairs};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// The heap a small device gives the update (issue 7).
const MCU_HEAP: u64 = 64 * 1024;

/// One test (dhat measures the whole process, so nothing may run beside it).
#[test]
fn mcu_profile_installs_within_64_kib_of_heap() {
    let corpus = Corpus::locate();
    let mut measured = 0;
    for pair in mcu_pairs().map(|p| p.name) {
        let Some(PairImages { old, new }) = corpus.load_or_skip(pair) else {
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
                // The declared bound, not only the measurement, fits: a
                // 64 KiB device can accept the patch from its header alone.
                assert!(
                    h.bound < MCU_HEAP,
                    "{pair} mcu: documented bound {} B over 64 KiB",
                    h.bound
                );
            }
            measured += 1;
        }
    }
    eprintln!("{measured} installs measured");
}
