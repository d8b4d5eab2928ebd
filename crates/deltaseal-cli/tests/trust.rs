//! The trust-root CLI contract (issue 6): `root init|sign|rotate|verify`,
//! k-of-n `release` / `sign`, external signing with `openssl pkeyutl` and
//! `attach-signature`, and `verify --trust ROOT` with `signers_counted`.

use std::process::Command;

mod common;

use common::{Workdir, openssl_available};

struct Fixture {
    work: Workdir,
}

impl core::ops::Deref for Fixture {
    type Target = Workdir;
    fn deref(&self) -> &Workdir {
        &self.work
    }
}

impl Fixture {
    /// A directory with old.bin / new.bin and keys a, b, c, d, e.
    fn new() -> Fixture {
        let f = Fixture {
            work: Workdir::new(),
        };
        let old: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut new = old.clone();
        new[100..200].fill(0x42);
        std::fs::write(f.path("old.bin"), old).unwrap();
        std::fs::write(f.path("new.bin"), new).unwrap();
        for k in ["a", "b", "c", "d", "e"] {
            f.ok(&["keygen", "-o", &format!("{k}.pem")]);
        }
        f
    }

    /// Must be rejected: exit 1, one `error:` line containing `expect`.
    fn rejected_with(&self, args: &[&str], expect: &str) {
        let stderr = self.rejected(args);
        assert!(stderr.contains(expect), "expected {expect:?} in {stderr}");
    }

    fn release(&self, keys: &[&str], sequence: u64, out: &str) {
        let seq = sequence.to_string();
        let mut args = vec!["release", "--old", "old.bin", "--new", "new.bin"];
        for k in keys {
            args.extend_from_slice(&["--key", k]);
        }
        args.extend_from_slice(&[
            "--sequence",
            &seq,
            "--vendor",
            "example.com",
            "--class",
            "pump-v2",
            "-o",
            out,
        ]);
        self.ok(&args);
    }

    /// Root over a, b, c with threshold 2, signed by `signers`.
    fn root_abc(&self, out: &str, signers: &[&str], extra: &[&str]) {
        let mut args = vec![
            "root",
            "init",
            "--key",
            "a.pub.pem",
            "--key",
            "b.pub.pem",
            "--key",
            "c.pub.pem",
            "--threshold",
            "2",
            "-o",
            out,
        ];
        args.extend_from_slice(extra);
        self.ok(&args);
        for s in signers {
            self.ok(&["root", "sign", out, "--key", s, "-o", out]);
        }
    }

    fn kid(&self, pem: &str) -> String {
        let out = self.ok(&["inspect", pem, "--json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["kid"].as_str().unwrap().to_owned()
    }

    fn verify_json(&self, bundle: &str, trust: &str) -> serde_json::Value {
        let out = self.ok(&["verify", bundle, "--trust", trust, "--json"]);
        serde_json::from_str(&out).unwrap()
    }
}

#[test]
fn root_threshold_and_k_of_n_bundles() {
    let f = Fixture::new();
    // Unsigned and under-signed roots are refused.
    f.root_abc("root.cbor", &[], &[]);
    f.rejected_with(
        &["root", "verify", "root.cbor"],
        "signed by 0 of the root's keys, 2 needed",
    );
    f.ok(&[
        "root",
        "sign",
        "root.cbor",
        "--key",
        "a.pem",
        "-o",
        "root.cbor",
    ]);
    f.rejected_with(
        &[
            "root",
            "sign",
            "root.cbor",
            "--key",
            "a.pem",
            "-o",
            "root.cbor",
        ],
        "already signed by this key",
    );
    f.rejected_with(
        &["root", "verify", "root.cbor"],
        "signed by 1 of the root's keys, 2 needed",
    );
    f.ok(&[
        "root",
        "sign",
        "root.cbor",
        "--key",
        "b.pem",
        "-o",
        "root.cbor",
    ]);
    let out = f.ok(&["root", "verify", "root.cbor"]);
    assert!(out.contains("version 1, 2 of 3 keys, no expiry"), "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&f.ok(&["inspect", "root.cbor", "--json"])).unwrap();
    assert_eq!(v["type"], "trust root");
    assert_eq!(v["version"], 1);
    assert_eq!(v["threshold"], 2);
    assert_eq!(v["keys"].as_array().unwrap().len(), 3);
    assert_eq!(v["valid_signatures_by_own_keys"], 2);

    // Two root keys: accepted, both counted.
    f.release(&["a.pem", "b.pem"], 5, "ab.bundle");
    let v = f.verify_json("ab.bundle", "root.cbor");
    let counted = v["signers_counted"].as_array().unwrap();
    assert_eq!(counted.len(), 2, "{v}");
    for k in ["a.pub.pem", "b.pub.pem"] {
        assert!(counted.iter().any(|c| c == &f.kid(k)), "{v}");
    }
    assert_eq!(v["threshold"], 2);
    assert_eq!(v["root_version"], 1);

    // k-1 signatures; the same key twice; a key not in the root.
    f.release(&["a.pem"], 5, "a.bundle");
    f.rejected_with(
        &["verify", "a.bundle", "--trust", "root.cbor"],
        "signed by 1 trusted keys, 2 needed",
    );
    f.release(&["a.pem", "a.pem"], 5, "aa.bundle");
    f.rejected_with(
        &["verify", "aa.bundle", "--trust", "root.cbor"],
        "signed by 1 trusted keys, 2 needed",
    );
    f.release(&["a.pem", "d.pem"], 5, "ad.bundle");
    f.rejected_with(
        &["verify", "ad.bundle", "--trust", "root.cbor"],
        "signed by 1 trusted keys, 2 needed",
    );
    f.release(&["d.pem"], 5, "d.bundle");
    f.rejected_with(
        &["verify", "d.bundle", "--trust", "root.cbor"],
        "no valid signature by a trusted key",
    );

    // Adding signatures one signer at a time.
    f.ok(&["sign", "a.bundle", "--key", "c.pem", "-o", "ac.bundle"]);
    let v = f.verify_json("ac.bundle", "root.cbor");
    assert_eq!(v["signers_counted"].as_array().unwrap().len(), 2, "{v}");
    f.rejected_with(
        &["sign", "ac.bundle", "--key", "c.pem", "-o", "x.bundle"],
        "already signed by this key",
    );
    assert!(!f.path("x.bundle").exists());

    // A single public key still works as trust (threshold 1).
    let v = f.verify_json("a.bundle", "a.pub.pem");
    assert_eq!(v["threshold"], 1);
    assert_eq!(v["signers_counted"].as_array().unwrap().len(), 1);
    f.rejected_with(
        &["verify", "a.bundle", "--trust", "b.pub.pem"],
        "no valid signature by a trusted key",
    );
    // A root whose signatures were tampered with is not trusted.
    let mut bytes = std::fs::read(f.path("root.cbor")).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    std::fs::write(f.path("bad-root.cbor"), bytes).unwrap();
    f.rejected_with(
        &["verify", "ab.bundle", "--trust", "bad-root.cbor"],
        "is not a valid trust root",
    );
}

#[test]
fn rotation_chain_and_revocation() {
    let f = Fixture::new();
    f.root_abc("v1.cbor", &["a.pem", "b.pem"], &[]);
    // v2: revoke c, add d and e.
    f.ok(&[
        "root",
        "rotate",
        "v1.cbor",
        "--add-key",
        "d.pub.pem",
        "--add-key",
        "e.pub.pem",
        "--remove-key",
        "c.pub.pem",
        "-o",
        "v2.cbor",
    ]);
    let sign = |from: &str, to: &str, signers: &[&str]| {
        std::fs::copy(f.path(from), f.path(to)).unwrap();
        for s in signers {
            f.ok(&["root", "sign", to, "--key", s, "-o", to]);
        }
    };
    // Only new keys: refused by the old threshold.
    sign("v2.cbor", "v2-new.cbor", &["d.pem", "e.pem"]);
    f.rejected_with(
        &["root", "verify", "v2-new.cbor", "--trust", "v1.cbor"],
        "signed by 0 of the trusted root's keys, 2 needed",
    );
    // Only old keys, one of them revoked in v2: refused by the new threshold.
    sign("v2.cbor", "v2-old.cbor", &["a.pem", "c.pem"]);
    f.rejected_with(
        &["root", "verify", "v2-old.cbor", "--trust", "v1.cbor"],
        "signed by 1 of the root's keys, 2 needed",
    );
    // Old a + c and new d: both thresholds met.
    sign("v2.cbor", "v2-ok.cbor", &["a.pem", "c.pem", "d.pem"]);
    let out = f.ok(&["root", "verify", "v2-ok.cbor", "--trust", "v1.cbor"]);
    assert!(out.contains("version 2, 2 of 4 keys"), "{out}");
    // Version must be exactly old + 1: v2 does not follow itself, v1 does
    // not follow v2.
    f.rejected_with(
        &["root", "verify", "v2-ok.cbor", "--trust", "v2-ok.cbor"],
        "root version 2 does not follow trusted version 2",
    );
    f.rejected_with(
        &["root", "verify", "v1.cbor", "--trust", "v2-ok.cbor"],
        "root version 1 does not follow trusted version 2",
    );

    // The revoked key c never counts under v2.
    f.release(&["a.pem", "c.pem"], 9, "ac.bundle");
    f.ok(&["verify", "ac.bundle", "--trust", "v1.cbor"]);
    f.rejected_with(
        &["verify", "ac.bundle", "--trust", "v2-ok.cbor"],
        "signed by 1 trusted keys, 2 needed",
    );
    f.release(&["d.pem", "e.pem"], 9, "de.bundle");
    f.ok(&["verify", "de.bundle", "--trust", "v2-ok.cbor"]);
}

#[test]
fn expired_root_is_refused_with_trusted_time() {
    let f = Fixture::new();
    f.root_abc(
        "root.cbor",
        &["a.pem", "b.pem"],
        &["--expires", "2027-12-31T00:00:00Z"],
    );
    f.release(&["a.pem", "b.pem"], 2, "u.bundle");
    let before = ["--now", "2027-12-30T23:59:59Z"];
    let at = ["--now", "2027-12-31T00:00:00Z"];
    let mut args = vec!["verify", "u.bundle", "--trust", "root.cbor"];
    f.ok(&[&args[..], &before[..]].concat());
    args.extend_from_slice(&at);
    f.rejected_with(&args, "trust root expired at 1830211200 (now 1830211200)");
    f.rejected_with(
        &[
            "root",
            "verify",
            "root.cbor",
            "--now",
            "2030-01-01T00:00:00Z",
        ],
        "trust root expired",
    );
    f.rejected_with(
        &[
            "root",
            "init",
            "--key",
            "a.pub.pem",
            "--threshold",
            "1",
            "--expires",
            "2027-13-01T00:00:00Z",
            "-o",
            "x.cbor",
        ],
        "invalid time",
    );
    f.rejected_with(
        &[
            "root",
            "init",
            "--key",
            "a.pub.pem",
            "--threshold",
            "2",
            "-o",
            "x.cbor",
        ],
        "invalid threshold",
    );
    assert!(!f.path("x.cbor").exists());
}

#[test]
fn openssl_pkeyutl_external_signing_round_trip() {
    if !openssl_available() {
        return;
    }
    let f = Fixture::new();
    // An OpenSSL-made key in the root next to ours.
    let gen_ok = Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(f.path("hsm.pem"))
        .status()
        .unwrap()
        .success();
    assert!(gen_ok);
    assert!(
        Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(f.path("hsm.pem"))
            .arg("-out")
            .arg(f.path("hsm.pub.pem"))
            .status()
            .unwrap()
            .success()
    );
    let pkeyutl = |key: &str, tbs: &str, sig: &str| {
        let out = Command::new("openssl")
            .args(["pkeyutl", "-sign", "-rawin", "-inkey"])
            .arg(f.path(key))
            .arg("-in")
            .arg(f.path(tbs))
            .arg("-out")
            .arg(f.path(sig))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // The root: a signs in memory, the HSM key signs externally.
    f.ok(&[
        "root",
        "init",
        "--key",
        "a.pub.pem",
        "--key",
        "hsm.pub.pem",
        "--threshold",
        "2",
        "-o",
        "root.cbor",
    ]);
    f.ok(&["root", "sign", "root.cbor", "--external", "-o", "root.tbs"]);
    pkeyutl("hsm.pem", "root.tbs", "root.sig");
    f.ok(&[
        "attach-signature",
        "root.cbor",
        "--signature",
        "root.sig",
        "--public-key",
        "hsm.pub.pem",
        "-o",
        "root.cbor",
    ]);
    f.ok(&[
        "root",
        "sign",
        "root.cbor",
        "--key",
        "a.pem",
        "-o",
        "root.cbor",
    ]);
    f.ok(&["root", "verify", "root.cbor"]);

    // The bundle: a signs at release, the HSM signs offline.
    f.release(&["a.pem"], 3, "u.bundle");
    f.ok(&["sign", "u.bundle", "--external", "-o", "tbs.bin"]);
    pkeyutl("hsm.pem", "tbs.bin", "sig.bin");
    assert_eq!(std::fs::read(f.path("sig.bin")).unwrap().len(), 64);
    // A signature checked against the wrong public key is refused.
    f.rejected_with(
        &[
            "attach-signature",
            "u.bundle",
            "--signature",
            "sig.bin",
            "--public-key",
            "b.pub.pem",
            "-o",
            "x.bundle",
        ],
        "signature does not verify under the given public key",
    );
    assert!(!f.path("x.bundle").exists());
    f.rejected_with(
        &[
            "attach-signature",
            "u.bundle",
            "--signature",
            "tbs.bin",
            "--public-key",
            "hsm.pub.pem",
            "-o",
            "x.bundle",
        ],
        "is not a raw 64-byte Ed25519 signature",
    );
    f.rejected_with(&["verify", "u.bundle", "--trust", "root.cbor"], "2 needed");
    f.ok(&[
        "attach-signature",
        "u.bundle",
        "--signature",
        "sig.bin",
        "--public-key",
        "hsm.pub.pem",
        "-o",
        "u.bundle",
    ]);
    let v = f.verify_json("u.bundle", "root.cbor");
    let counted = v["signers_counted"].as_array().unwrap();
    assert!(counted.iter().any(|c| c == &f.kid("hsm.pub.pem")), "{v}");
    assert_eq!(counted.len(), 2, "{v}");
    // The bytes to sign did not change when signatures were added.
    f.ok(&["sign", "u.bundle", "--external", "-o", "tbs2.bin"]);
    assert_eq!(
        std::fs::read(f.path("tbs.bin")).unwrap(),
        std::fs::read(f.path("tbs2.bin")).unwrap()
    );
    // And the result still applies.
    f.ok(&[
        "verify",
        "u.bundle",
        "--trust",
        "root.cbor",
        "--installed-sequence",
        "2",
        "--old",
        "old.bin",
        "-o",
        "out.bin",
    ]);
    assert_eq!(
        std::fs::read(f.path("out.bin")).unwrap(),
        std::fs::read(f.path("new.bin")).unwrap()
    );
}

#[test]
fn device_bound_bundle_is_refused_by_other_devices() {
    let f = Fixture::new();
    f.ok(&[
        "release",
        "--old",
        "old.bin",
        "--new",
        "new.bin",
        "--key",
        "a.pem",
        "--sequence",
        "4",
        "--vendor",
        "example.com",
        "--class",
        "pump-v2",
        "--device",
        "SN-0042",
        "-o",
        "d.bundle",
    ]);
    let base = [
        "verify",
        "d.bundle",
        "--trust",
        "a.pub.pem",
        "--vendor",
        "example.com",
        "--class",
        "pump-v2",
    ];
    let out = f.ok(&[&base[..], &["--device", "SN-0042", "--json"]].concat());
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["device_id"].is_string(), "{v}");
    f.rejected_with(
        &[&base[..], &["--device", "SN-0043"]].concat(),
        "policy check failed: device id mismatch",
    );
    f.rejected_with(&base, "policy check failed: device id mismatch");
}
