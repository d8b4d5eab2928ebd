//! The committed `testvectors/` are exactly what the generator makes, and
//! every case passes (the age/rage pattern: regenerate and compare).

use std::path::{Path, PathBuf};

use deltaseal_testkit::{Corpus, mcu_pairs};
use deltaseal_vectors::{Status, check_dir, check_set, generate};

fn repo_vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testvectors")
}

fn corpus_dir() -> Option<PathBuf> {
    let dir = Corpus::locate().dir().to_path_buf();
    dir.is_dir().then_some(dir)
}

/// Whether every corpus pair the generator reads is there; each missing one
/// is skipped with a message, or fails the test when
/// `DELTASEAL_REQUIRE_CORPUS` names it.
fn corpus_present() -> bool {
    let corpus = Corpus::locate();
    // Counted, not `all`: every missing pair gets its message.
    let missing = deltaseal_vectors::generate::CORPUS_PAIRS
        .iter()
        .filter(|pair| corpus.load_or_skip(pair).is_none())
        .count();
    missing == 0
}

#[test]
fn generator_reads_the_testkit_mcu_pairs() {
    let testkit: Vec<&str> = mcu_pairs().map(|p| p.name).collect();
    assert_eq!(deltaseal_vectors::generate::CORPUS_PAIRS, testkit);
}

#[test]
fn every_generated_case_passes() {
    let set = generate(corpus_dir().as_deref()).unwrap();
    let report = check_set(&set, corpus_dir().as_deref());
    let failures: Vec<String> = report
        .results
        .iter()
        .filter(|r| !matches!(r.status, Status::Pass))
        .map(|r| r.to_string())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn committed_vectors_are_reproduced_byte_for_byte() {
    let corpus = corpus_dir();
    let set = generate(corpus.as_deref()).unwrap();
    let committed = repo_vectors();
    let full = corpus_present();
    if !full {
        eprintln!("WARNING: MCU corpus absent: corpus-derived vectors and index.json not compared");
    }
    // Every generated file is committed, identical.
    for (rel, bytes) in &set.files {
        if !full && rel == "index.json" {
            continue;
        }
        let on_disk = std::fs::read(committed.join(rel)).unwrap_or_else(|e| {
            panic!("testvectors/{rel}: {e} (run `deltaseal vectors generate testvectors`)")
        });
        assert!(
            on_disk == *bytes,
            "testvectors/{rel} differs from the generator's output"
        );
    }
    // Nothing committed that the generator no longer makes (README excepted).
    let mut stack = vec![committed.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(&committed)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            if rel == "README.md" || (!full && rel.contains("_mcu_")) {
                continue;
            }
            assert!(set.files.contains_key(&rel), "stale file testvectors/{rel}");
        }
    }
}

#[test]
fn committed_vectors_pass_the_checker() {
    let report = check_dir(&repo_vectors(), corpus_dir().as_deref()).unwrap();
    for r in &report.results {
        assert!(!matches!(r.status, Status::Fail { .. }), "{r}");
    }
    assert!(report.passed() > 0);
}

#[test]
fn committed_vectors_hold_no_corpus_image() {
    let Some(corpus) = corpus_dir() else { return };
    let set = generate(Some(&corpus)).unwrap();
    for input in &set.index.corpus_inputs {
        for bytes in set.files.values() {
            assert!(
                deltaseal_verify::digest::sha256(bytes).to_vec()
                    != hex::decode(&input.sha256).unwrap(),
                "a corpus image ({}) would be redistributed",
                input.path
            );
        }
    }
}
