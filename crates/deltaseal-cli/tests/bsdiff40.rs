//! `deltaseal diff --format bsdiff40` and `deltaseal apply` on BSDIFF40
//! patches: the UX around a format without digests.

mod common;

use common::Workdir;
use deltaseal_verify::digest::sha256;

fn images(w: &Workdir) -> (Vec<u8>, Vec<u8>) {
    let old: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut new = old.clone();
    new[1000..1010].copy_from_slice(b"0123456789");
    new.extend_from_slice(b"appended tail");
    std::fs::write(w.path("old.bin"), &old).unwrap();
    std::fs::write(w.path("new.bin"), &new).unwrap();
    (old, new)
}

#[test]
fn bsdiff40_round_trip_warns_unless_a_digest_is_expected() {
    let w = Workdir::new();
    let (_, new) = images(&w);
    w.ok(&[
        "diff", "old.bin", "new.bin", "--format", "bsdiff40", "-o", "p.bsd",
    ]);
    assert!(
        std::fs::read(w.path("p.bsd"))
            .unwrap()
            .starts_with(b"BSDIFF40")
    );

    // No digest given: applied, but the result is flagged as unchecked.
    let out = w.run(&["apply", "old.bin", "p.bsd", "-o", "out.bin"]);
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("warning: ") && stderr.contains("no digests"),
        "{stderr}"
    );
    assert!(String::from_utf8(out.stdout).unwrap().contains("UNCHECKED"));
    assert_eq!(std::fs::read(w.path("out.bin")).unwrap(), new);

    // The right digest: verified, no warning.
    let hex = hex::encode(sha256(&new));
    let out = w.run(&[
        "apply",
        "old.bin",
        "p.bsd",
        "-o",
        "ok.bin",
        "--expect-sha256",
        &hex,
        "--json",
    ]);
    assert!(out.status.success());
    assert!(out.stderr.is_empty());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["format"], "bsdiff40");
    assert_eq!(v["verified"], true);
    assert_eq!(v["sha256"], hex.as_str());
    assert_eq!(std::fs::read(w.path("ok.bin")).unwrap(), new);
}

#[test]
fn bsdiff40_wrong_digest_or_hostile_patch_writes_nothing() {
    let w = Workdir::new();
    let (old, _) = images(&w);
    w.ok(&[
        "diff", "old.bin", "new.bin", "--format", "bsdiff40", "-o", "p.bsd",
    ]);
    let wrong = hex::encode(sha256(&old));
    let e = w.rejected(&[
        "apply",
        "old.bin",
        "p.bsd",
        "-o",
        "bad.bin",
        "--expect-sha256",
        &wrong,
    ]);
    assert!(e.contains("not the expected one"), "{e}");
    assert!(!w.path("bad.bin").exists());

    // Truncated patch: typed import error, one line, no file.
    let p = std::fs::read(w.path("p.bsd")).unwrap();
    std::fs::write(w.path("cut.bsd"), &p[..p.len() - 5]).unwrap();
    w.rejected(&["apply", "old.bin", "cut.bsd", "-o", "cut.bin"]);
    assert!(!w.path("cut.bin").exists());

    // A malformed digest is a usage error (exit 2).
    let out = w.run(&[
        "apply",
        "old.bin",
        "p.bsd",
        "-o",
        "x.bin",
        "--expect-sha256",
        "abc",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn expect_sha256_also_checks_deltaseal_patches_before_writing() {
    let w = Workdir::new();
    let (old, new) = images(&w);
    w.ok(&["diff", "old.bin", "new.bin", "-o", "p.patch"]);
    let e = w.rejected(&[
        "apply",
        "old.bin",
        "p.patch",
        "-o",
        "n.bin",
        "--expect-sha256",
        &hex::encode(sha256(&old)),
    ]);
    assert!(e.contains("not the expected one"), "{e}");
    assert!(!w.path("n.bin").exists());
    w.ok(&[
        "apply",
        "old.bin",
        "p.patch",
        "-o",
        "n.bin",
        "--expect-sha256",
        &hex::encode(sha256(&new)),
    ]);
    assert_eq!(std::fs::read(w.path("n.bin")).unwrap(), new);
    // A truncated deltaseal patch read from the file is still rejected.
    let p = std::fs::read(w.path("p.patch")).unwrap();
    std::fs::write(w.path("cut.patch"), &p[..p.len() - 1]).unwrap();
    w.rejected(&["apply", "old.bin", "cut.patch", "-o", "c.bin"]);
    assert!(!w.path("c.bin").exists());
}
