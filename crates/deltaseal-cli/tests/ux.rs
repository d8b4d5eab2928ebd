//! The parts of the CLI made for people and pipelines: completions, the man
//! page, release evidence, full-image bundles, --quiet and --json.

mod common;

use common::{Workdir, noise};
use serde_json::Value;

/// A key pair and an old/new image pair.
fn setup() -> Workdir {
    let work = Workdir::new();
    work.ok(&["keygen", "-o", "k.pem"]);
    let old = noise(3, 64 * 1024);
    let mut new = old.clone();
    new.splice(4_000..4_000, noise(4, 500));
    new[30_000] ^= 0xff;
    std::fs::write(work.path("old.bin"), old).unwrap();
    std::fs::write(work.path("new.bin"), new).unwrap();
    work
}

const RELEASE: [&str; 10] = [
    "release",
    "--new",
    "new.bin",
    "--key",
    "k.pem",
    "--sequence",
    "4",
    "--vendor",
    "example.com",
    "--class=pump",
];

#[test]
fn completions_for_every_shell_name_the_subcommands() {
    let work = Workdir::new();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let script = work.ok(&["completions", shell]);
        assert!(script.contains("release-plan"), "{shell}: {script}");
        assert!(script.contains("verify"), "{shell}");
    }
    let bash = work.ok(&["completions", "bash"]);
    assert!(bash.contains("complete -F"), "not a bash completion script");
    let out = work.run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "unknown shell is a usage error");
}

#[test]
fn the_man_page_is_roff_with_a_title_and_every_subcommand() {
    let work = Workdir::new();
    let page = work.ok(&["man"]);
    let title = page.lines().position(|l| l.starts_with(".TH deltaseal 1"));
    let name = page.lines().position(|l| l == ".SH NAME");
    assert!(
        title.is_some() && title < name,
        "no .TH before the first section"
    );
    assert!(page.contains(".SH NAME"));
    assert!(page.contains(".SH SYNOPSIS"));
    for sub in ["release\\-plan", "verify", "completions", "man"] {
        assert!(page.contains(sub), "{sub} not in the man page");
    }
    // Every request line names a roff macro: a letter after the dot.
    for line in page.lines().filter(|l| l.starts_with('.')) {
        let name = line.trim_start_matches('.');
        assert!(
            name.starts_with("\\\"")
                || name.chars().next().is_some_and(|c| c.is_ascii_alphabetic()),
            "bad roff request: {line}"
        );
    }
    // Exit codes are documented in --help (and so in the man page).
    let help = work.ok(&["--help"]);
    assert!(help.contains("Exit status"), "{help}");
}

#[test]
fn release_writes_evidence_that_matches_the_bundle() {
    let work = setup();
    let mut args = RELEASE.to_vec();
    args.extend(["--old", "old.bin", "-o", "u.bundle"]);
    args.extend(["--evidence", "u.evidence.json", "--json"]);
    let report: Value = serde_json::from_str(&work.ok(&args)).unwrap();
    let evidence: Value =
        serde_json::from_slice(&std::fs::read(work.path("u.evidence.json")).unwrap()).unwrap();
    let bundle = std::fs::read(work.path("u.bundle")).unwrap();
    assert_eq!(evidence["kind"], "delta");
    assert_eq!(evidence["bundle"]["size"], bundle.len());
    assert_eq!(evidence["old"]["path"], "old.bin");
    assert_eq!(evidence["old"]["size"], 64 * 1024);
    assert_eq!(evidence["new"]["size"], 64 * 1024 + 500);
    assert_eq!(evidence["sequence"], 4);
    assert_eq!(evidence["tool_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(evidence["signers"], report["signers"]);
    assert_eq!(evidence["key_files"][0], "k.pem");
    assert!(evidence["created"].as_str().unwrap().ends_with('Z'));
    // The recorded digest is the bundle's.
    let inspect: Value =
        serde_json::from_str(&work.ok(&["inspect", "u.bundle", "--json"])).unwrap();
    assert_eq!(evidence["new"]["sha256"], inspect["target"]["sha256"]);
}

#[test]
fn a_full_image_bundle_installs_from_an_empty_old_image_only() {
    let work = setup();
    let mut args = RELEASE.to_vec();
    args.extend(["--full", "-o", "full.bundle", "--json"]);
    let report: Value = serde_json::from_str(&work.ok(&args)).unwrap();
    assert_eq!(report["kind"], "full");
    std::fs::write(work.path("empty.bin"), b"").unwrap();
    fn verify(old: &str) -> Vec<&str> {
        vec![
            "verify",
            "full.bundle",
            "--trust",
            "k.pub.pem",
            "--old",
            old,
            "-o",
            "out.bin",
        ]
    }
    work.ok(&verify("empty.bin"));
    assert_eq!(
        std::fs::read(work.path("out.bin")).unwrap(),
        std::fs::read(work.path("new.bin")).unwrap()
    );
    std::fs::remove_file(work.path("out.bin")).unwrap();
    work.rejected(&verify("old.bin"));
    assert!(!work.path("out.bin").exists());
    // --full and --old together is a usage error; so is neither.
    let mut both = RELEASE.to_vec();
    both.extend(["--full", "--old", "old.bin", "-o", "x.bundle"]);
    assert_eq!(work.run(&both).status.code(), Some(2));
    let mut neither = RELEASE.to_vec();
    neither.extend(["-o", "x.bundle"]);
    assert_eq!(work.run(&neither).status.code(), Some(2));
}

#[test]
fn quiet_prints_nothing_on_success_and_still_one_error_line() {
    let work = setup();
    let mut args = vec!["--quiet"];
    args.extend(RELEASE);
    args.extend(["--old", "old.bin", "-o", "u.bundle"]);
    assert_eq!(work.ok(&args), "");
    let out = work.run(&["verify", "u.bundle", "--trust", "k.pub.pem", "-q"]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    work.rejected(&["-q", "verify", "u.bundle", "--trust", "missing.pub.pem"]);
}

#[test]
fn inspect_says_which_signatures_verify_and_summarises_chunks() {
    let work = setup();
    work.ok(&["keygen", "-o", "other.pem"]);
    let mut args = RELEASE.to_vec();
    args.extend(["--old", "old.bin", "--key", "other.pem", "-o", "u.bundle"]);
    args.extend(["--chunk-size", "16384"]);
    work.ok(&args);
    let inspect = |trust: &str| -> Value {
        let out = work.ok(&["inspect", "u.bundle", "--trust", trust, "--json"]);
        serde_json::from_str(&out).unwrap()
    };
    let report = inspect("k.pub.pem");
    let verifies: Vec<&Value> = report["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["verifies"])
        .collect();
    assert_eq!(verifies, [&Value::Bool(true), &Value::Bool(false)]);
    let report = inspect("other.pub.pem");
    assert_eq!(report["signatures"][0]["verifies"], false);
    assert_eq!(report["signatures"][1]["verifies"], true);
    assert_eq!(report["kind"], "delta");
    assert_eq!(report["sequence"], 4);
    let savings = report["savings_percent"].as_f64().unwrap();
    assert!(savings > 50.0 && savings < 100.0, "{savings}");
    let chunks = report["payload"]["per_chunk"].as_array().unwrap();
    assert_eq!(chunks.len(), (64 * 1024 + 500usize).div_ceil(16384));
    let total: u64 = chunks
        .iter()
        .map(|c| c["new_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 64 * 1024 + 500);
    // Without --trust nothing is claimed.
    let plain: Value = serde_json::from_str(&work.ok(&["inspect", "u.bundle", "--json"])).unwrap();
    assert_eq!(plain["signatures"][0]["verifies"], Value::Null);
    let text = work.ok(&["inspect", "u.bundle", "--trust", "k.pub.pem"]);
    assert!(text.contains("verifies true"), "{text}");
}

/// `deltaseal --json CMD` prints exactly one JSON document on stdout, for
/// every command that a release pipeline runs.
#[test]
fn json_before_any_command_gives_one_json_document() {
    let work = setup();
    let json = |args: &[&str]| -> Value {
        let mut full = vec!["--json"];
        full.extend(args);
        let out = work.ok(&full);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    };
    assert!(json(&["keygen", "-o", "j.pem"])["kid"].is_string());
    assert!(json(&["diff", "old.bin", "new.bin", "-o", "p.patch"])["patch_size"].is_u64());
    assert_eq!(
        json(&["apply", "old.bin", "p.patch", "-o", "n.bin"])["new_size"],
        64 * 1024 + 500
    );
    let mut release = RELEASE.to_vec();
    release.extend(["--old", "old.bin", "-o", "u.bundle"]);
    assert!(json(&release)["bundle_size"].is_u64());
    assert_eq!(
        json(&["verify", "u.bundle", "--trust", "k.pub.pem"])["verified"],
        true
    );
    assert_eq!(json(&["inspect", "u.bundle"])["sequence"], 4);
    assert!(
        json(&["sign", "u.bundle", "--key", "j.pem", "-o", "u2.bundle"])["signed_by"].is_string()
    );
    let root = json(&[
        "root",
        "init",
        "--key",
        "k.pub.pem",
        "--threshold",
        "1",
        "-o",
        "r.cbor",
    ]);
    assert_eq!(root["version"], 1);
    let init = [
        "device",
        "init",
        "--device",
        "dev",
        "--image",
        "old.bin",
        "--trust",
        "k.pub.pem",
        "--sequence",
        "3",
        "--vendor",
        "example.com",
        "--class",
        "pump",
    ];
    assert_eq!(json(&init)["sequence"], 3);
    assert_eq!(json(&["status", "--device", "dev"])["sequence"], 3);
    assert!(json(&["report", "dev"]).is_array());
}

#[test]
fn a_closed_stdout_ends_quietly_not_with_a_panic() {
    // `deltaseal inspect x | head`: the reader is gone before the first
    // write (its end of the pipe is closed before the process starts), so
    // every write fails with a broken pipe.
    let work = setup();
    work.ok(&["diff", "old.bin", "new.bin", "-o", "p.dsp"]);
    for args in [&["inspect", "p.dsp"][..], &["inspect", "--json", "p.dsp"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = std::process::Command::new(assert_cmd::cargo::cargo_bin!("deltaseal"))
            .args(args)
            .current_dir(work.path(""))
            .stdout(writer)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}
