//! `deltaseal release-plan`: every bundle of a plan, content-addressed and
//! skipped when built, sharded and merged, and bad plans refused.

mod common;

use std::collections::BTreeSet;

use common::{Workdir, noise};
use serde_json::Value;

/// `base` with `n` small edits derived from `seed`: one release later.
fn edited(base: &[u8], seed: u64, n: usize) -> Vec<u8> {
    let mut out = base.to_vec();
    let patch = noise(seed, n * 40);
    for (i, chunk) in patch.chunks(40).enumerate() {
        let at = (i * 7919 + seed as usize * 131) % (out.len() - 64);
        out.splice(at..at + 20, chunk.iter().copied());
    }
    out
}

const PLAN: &str = r#"
# Two products: one lists its old images, one takes a directory of them.
[[product]]
name = "pump-a"
vendor = "example.com"
class = "pump-a"
key = "keys/release.pem"
sequence = 7
new = "images/a/7.bin"
old_dir = "images/a/old"

[[product]]
name = "pump-b"
vendor = "example.com"
class = "pump-b"
keys = ["keys/release.pem", "keys/second.pem"]
sequence = 12
new = "images/b/12.bin"
old = ["images/b/10.bin", "images/b/11.bin"]
"#;

/// A release directory: keys, images of two products, and the plan.
fn setup() -> Workdir {
    let work = Workdir::new();
    for dir in ["keys", "images/a/old", "images/b"] {
        std::fs::create_dir_all(work.path(dir)).unwrap();
    }
    work.ok(&["keygen", "-o", "keys/release.pem"]);
    work.ok(&["keygen", "-o", "keys/second.pem"]);
    let a4 = noise(1, 48 * 1024);
    let a5 = edited(&a4, 2, 6);
    let a6 = edited(&a5, 3, 6);
    let a7 = edited(&a6, 4, 6);
    let b10 = noise(5, 40 * 1024);
    let b11 = edited(&b10, 6, 4);
    let b12 = edited(&b11, 7, 4);
    for (name, bytes) in [
        ("images/a/old/4.bin", &a4),
        ("images/a/old/5.bin", &a5),
        ("images/a/old/6.bin", &a6),
        ("images/a/7.bin", &a7),
        ("images/b/10.bin", &b10),
        ("images/b/11.bin", &b11),
        ("images/b/12.bin", &b12),
    ] {
        std::fs::write(work.path(name), bytes).unwrap();
    }
    std::fs::write(work.path("plan.toml"), PLAN).unwrap();
    work
}

fn read_json(work: &Workdir, name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(work.path(name)).unwrap()).unwrap()
}

fn bundles(index: &Value) -> &Vec<Value> {
    index["bundles"].as_array().unwrap()
}

#[test]
fn every_bundle_of_the_plan_verifies_and_applies() {
    let work = setup();
    let report: Value =
        serde_json::from_str(&work.ok(&["release-plan", "plan.toml", "-o", "out", "--json"]))
            .unwrap();
    assert_eq!(report["built"], 7);
    assert_eq!(report["up_to_date"], 0);

    let index = read_json(&work, "out/index.json");
    let entries = bundles(&index);
    // pump-a: 3 old images + full; pump-b: 2 old images + full.
    assert_eq!(entries.len(), 7);
    let kinds: Vec<(&str, Option<&str>)> = entries
        .iter()
        .map(|e| (e["product"].as_str().unwrap(), e["from"].as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("pump-a", Some("images/a/old/4.bin")),
            ("pump-a", Some("images/a/old/5.bin")),
            ("pump-a", Some("images/a/old/6.bin")),
            ("pump-a", None),
            ("pump-b", Some("images/b/10.bin")),
            ("pump-b", Some("images/b/11.bin")),
            ("pump-b", None),
        ]
    );
    std::fs::write(work.path("empty.bin"), b"").unwrap();
    for entry in entries {
        let file = format!("out/{}", entry["file"].as_str().unwrap());
        let bytes = std::fs::read(work.path(&file)).unwrap();
        assert_eq!(entry["size"], bytes.len());
        let to_size = entry["to_size"].as_u64().unwrap();
        let savings = entry["savings_percent"].as_f64().unwrap();
        let expected = 100.0 * (1.0 - bytes.len() as f64 / to_size as f64);
        assert!((savings - expected).abs() < 0.01, "{savings} vs {expected}");
        // Deltas between releases are far smaller than the image; a full
        // image bundle of random bytes is not.
        if entry["kind"] == "delta" {
            assert!(savings > 50.0, "{entry}");
        } else {
            assert!(savings < 5.0, "{entry}");
            assert_eq!(entry["from_size"], 0);
        }
        let old = entry["from"].as_str().unwrap_or("empty.bin");
        let out = work.ok(&[
            "verify",
            &file,
            "--trust",
            "keys/release.pub.pem",
            "--old",
            old,
            "-o",
            "applied.bin",
            "--json",
        ]);
        let verified: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(verified["applied"], true);
        let new = if entry["product"] == "pump-a" {
            "images/a/7.bin"
        } else {
            "images/b/12.bin"
        };
        assert_eq!(
            std::fs::read(work.path("applied.bin")).unwrap(),
            std::fs::read(work.path(new)).unwrap()
        );
        let evidence = read_json(
            &work,
            &format!("out/{}", entry["evidence"].as_str().unwrap()),
        );
        assert_eq!(evidence["bundle"]["sha256"], entry["sha256"]);
        assert_eq!(evidence["new"]["sha256"], entry["to_sha256"]);
        let signers = evidence["signers"].as_array().unwrap().len();
        assert_eq!(signers, if entry["product"] == "pump-a" { 1 } else { 2 });
    }
}

#[test]
fn a_second_run_rebuilds_nothing_and_a_changed_input_rebuilds_its_bundle() {
    let work = setup();
    work.ok(&["release-plan", "plan.toml", "-o", "out"]);
    let first = std::fs::read(work.path("out/index.json")).unwrap();

    let again = work.ok(&["release-plan", "plan.toml", "-o", "out"]);
    assert!(again.contains("nothing to rebuild"), "{again}");
    assert!(!again.lines().any(|l| l.starts_with("built")), "{again}");
    assert_eq!(std::fs::read(work.path("out/index.json")).unwrap(), first);

    // A new old image in the directory: exactly one new bundle.
    let a3 = edited(
        &std::fs::read(work.path("images/a/old/4.bin")).unwrap(),
        9,
        3,
    );
    std::fs::write(work.path("images/a/old/3.bin"), a3).unwrap();
    let report: Value =
        serde_json::from_str(&work.ok(&["release-plan", "plan.toml", "-o", "out", "--json"]))
            .unwrap();
    assert_eq!(report["built"], 1, "{report}");
    assert_eq!(report["up_to_date"], 7, "{report}");

    // A damaged bundle is rebuilt, not trusted because of its name.
    let index = read_json(&work, "out/index.json");
    let file = format!("out/{}", bundles(&index)[0]["file"].as_str().unwrap());
    let mut bytes = std::fs::read(work.path(&file)).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(work.path(&file), bytes).unwrap();
    let report: Value =
        serde_json::from_str(&work.ok(&["release-plan", "plan.toml", "-o", "out", "--json"]))
            .unwrap();
    assert_eq!(report["built"], 1, "{report}");
    work.ok(&["verify", &file, "--trust", "keys/release.pub.pem"]);
}

#[test]
fn three_shards_merged_give_the_unsharded_index() {
    let work = setup();
    work.ok(&["release-plan", "plan.toml", "-o", "whole"]);
    let mut seen = BTreeSet::new();
    for k in 1..=3 {
        let shard = format!("{k}/3");
        work.ok(&[
            "release-plan",
            "plan.toml",
            "-o",
            "sharded",
            "--shard",
            &shard,
        ]);
        let index = read_json(&work, &format!("sharded/index.{k}-of-3.json"));
        assert_eq!(index["shard"], k);
        for entry in bundles(&index) {
            let job = entry["job"].as_u64().unwrap();
            assert!(seen.insert(job), "job {job} in two shards");
        }
    }
    assert_eq!(seen, (0..7).collect::<BTreeSet<u64>>(), "union is the plan");
    assert!(!work.path("sharded/index.json").exists());
    let out = work.ok(&["release-plan", "plan.toml", "-o", "sharded", "--merge"]);
    assert!(out.contains("7 bundles"), "{out}");
    assert_eq!(
        std::fs::read(work.path("sharded/index.json")).unwrap(),
        std::fs::read(work.path("whole/index.json")).unwrap()
    );
}

#[test]
fn merge_refuses_a_missing_shard_a_foreign_plan_and_a_changed_bundle() {
    let work = setup();
    let merge = ["release-plan", "plan.toml", "-o", "out", "--merge"];
    let err = work.rejected(&merge);
    assert!(err.contains("no shard index"), "{err}");

    work.ok(&["release-plan", "plan.toml", "-o", "out", "--shard", "1/3"]);
    work.ok(&["release-plan", "plan.toml", "-o", "out", "--shard", "3/3"]);
    let err = work.rejected(&merge);
    assert!(err.contains("shard 2 of 3 is missing"), "{err}");
    assert!(!work.path("out/index.json").exists());

    work.ok(&["release-plan", "plan.toml", "-o", "out", "--shard", "2/3"]);
    work.ok(&merge);

    // A bundle replaced after its shard ran.
    let index = read_json(&work, "out/index.2-of-3.json");
    let file = format!("out/{}", bundles(&index)[0]["file"].as_str().unwrap());
    let mut bytes = std::fs::read(work.path(&file)).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(work.path(&file), bytes).unwrap();
    let err = work.rejected(&merge);
    assert!(err.contains("is not the recorded bundle"), "{err}");

    // The plan changed since the shards ran.
    let mut plan = PLAN.to_owned();
    plan.push_str("# edited\n");
    std::fs::write(work.path("plan.toml"), plan).unwrap();
    let err = work.rejected(&merge);
    assert!(err.contains("another plan"), "{err}");

    // Shards of two different splits.
    std::fs::write(work.path("plan.toml"), PLAN).unwrap();
    work.ok(&["release-plan", "plan.toml", "-o", "out", "--shard", "1/2"]);
    let err = work.rejected(&merge);
    assert!(err.contains("different splits"), "{err}");
}

#[test]
fn bad_plans_are_refused_with_one_error_line() {
    let work = setup();
    let cases: [(&str, String, &str); 7] = [
        (
            "missing field",
            PLAN.replace("new = \"images/a/7.bin\"\n", ""),
            "bad.toml line 3: missing field `new`",
        ),
        (
            "unknown key",
            PLAN.replace("sequence = 7", "sequence = 7\ncolour = \"red\""),
            "unknown field `colour`",
        ),
        (
            "path-like name",
            PLAN.replace("name = \"pump-a\"", "name = \"../pump-a\""),
            "must be letters",
        ),
        (
            "duplicate name",
            PLAN.replace("name = \"pump-b\"", "name = \"pump-a\""),
            "listed twice",
        ),
        (
            "no key",
            PLAN.replace("key = \"keys/release.pem\"\n", ""),
            "missing `key`",
        ),
        (
            "missing image",
            PLAN.replace("images/b/10.bin", "images/b/9.bin"),
            "cannot read",
        ),
        (
            "not toml",
            "[[product]\nname = ".to_owned(),
            "bad.toml line 1: ",
        ),
    ];
    for (what, plan, expected) in cases {
        std::fs::write(work.path("bad.toml"), plan).unwrap();
        let err = work.rejected(&["release-plan", "bad.toml", "-o", "out"]);
        assert!(err.contains(expected), "{what}: {err}");
    }
    // Usage errors exit 2.
    for shard in ["0/3", "4/3", "x"] {
        let out = work.run(&["release-plan", "plan.toml", "-o", "out", "--shard", shard]);
        assert_eq!(out.status.code(), Some(2), "--shard {shard}");
    }
    let out = work.run(&[
        "release-plan",
        "plan.toml",
        "-o",
        "out",
        "--shard",
        "1/2",
        "--merge",
    ]);
    assert_eq!(out.status.code(), Some(2));
}
