//! End-to-end tests of the `deltaseal` binary: the CLI contract, tamper
//! rejection, and OpenSSL key interop.

use std::path::Path;
use std::process::Command;

/// An "old" firmware image and a "new" one with an insertion, a deletion and
/// a few patched bytes: the shape of a real release-to-release change.
fn firmware_pair() -> (Vec<u8>, Vec<u8>) {
    let old = noise(7, 96 * 1024);
    let mut new = old.clone();
    new.splice(10_000..10_000, noise(9, 700));
    new.drain(50_000..50_300);
    for i in (60_000..61_000).step_by(97) {
        new[i] ^= 0x5a;
    }
    (old, new)
}

mod common;

use common::{Workdir, noise, openssl_available};

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
    fn new() -> Fixture {
        let fixture = Fixture {
            work: Workdir::new(),
        };
        let (old, new) = firmware_pair();
        std::fs::write(fixture.path("old.bin"), old).unwrap();
        std::fs::write(fixture.path("new.bin"), new).unwrap();
        fixture
    }

    fn release(&self, key: &str, sequence: u64, out: &str) {
        self.release_with(key, sequence, out, &[]);
    }

    /// `release` of old.bin to new.bin with `extra` engine flags.
    fn release_with(&self, key: &str, sequence: u64, out: &str, extra: &[&str]) {
        let sequence = sequence.to_string();
        let mut args = vec![
            "release",
            "--old",
            "old.bin",
            "--new",
            "new.bin",
            "--key",
            key,
            "--sequence",
            &sequence,
            "--vendor",
            "example.com",
            "--class",
            "pump-v2",
            "-o",
            out,
        ];
        args.extend_from_slice(extra);
        self.ok(&args);
    }

    /// `verify --old old.bin -o out.bin` on `bundle` with extra args.
    fn verify_args<'a>(&self, bundle: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "verify",
            bundle,
            "--trust",
            "k.pub.pem",
            "--old",
            "old.bin",
            "-o",
            "out.bin",
        ];
        args.extend_from_slice(extra);
        args
    }
}

fn flip_bit(path: &Path, offset: usize, to: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= 0x01;
    std::fs::write(to, bytes).unwrap();
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    deltaseal_verify::digest::sha256(bytes)
}

#[test]
fn diff_apply_round_trip() {
    let f = Fixture::new();
    f.ok(&["diff", "old.bin", "new.bin", "-o", "p.patch"]);
    f.ok(&["apply", "old.bin", "p.patch", "-o", "out.bin"]);
    assert_eq!(
        std::fs::read(f.path("out.bin")).unwrap(),
        std::fs::read(f.path("new.bin")).unwrap()
    );
    let patch_len = std::fs::metadata(f.path("p.patch")).unwrap().len();
    assert!(patch_len < 8 * 1024, "patch is {patch_len} bytes");
}

#[test]
fn apply_refuses_wrong_old_image_and_writes_nothing() {
    let f = Fixture::new();
    f.ok(&["diff", "old.bin", "new.bin", "-o", "p.patch"]);
    flip_bit(&f.path("old.bin"), 123, &f.path("other.bin"));
    f.rejected(&["apply", "other.bin", "p.patch", "-o", "out.bin"]);
    assert!(!f.path("out.bin").exists());
}

/// An image holding a `.lzma` stream as EDK2's LzmaCompress writes it.
fn image_with_lzma_stream(raw: &[u8]) -> Vec<u8> {
    let props = lzma_sdk_rs::LzmaProps::for_level(5, u32::MAX);
    let mut image = b"firmware volume header".to_vec();
    image.extend(lzma_sdk_rs::decoder_props(&props));
    image.extend((raw.len() as u64).to_le_bytes());
    image.extend(lzma_sdk_rs::encode(raw, &props));
    image.extend([0xff; 1000]);
    image
}

#[test]
fn max_level_sees_through_lzma_streams_and_apply_compresses_them_again() {
    let f = Fixture::new();
    // Incompressible: a change near the start changes every compressed
    // byte after it, so the byte-wise patch is about the stream's size.
    let raw = noise(3, 40_000);
    let mut raw_new = raw.clone();
    raw_new[100..106].copy_from_slice(b"v2.0.1");
    let new = image_with_lzma_stream(&raw_new);
    std::fs::write(f.path("old.bin"), image_with_lzma_stream(&raw)).unwrap();
    std::fs::write(f.path("new.bin"), &new).unwrap();
    let report = f.ok(&[
        "diff", "--level", "max", "old.bin", "new.bin", "-o", "p.patch", "--json",
    ]);
    assert!(report.contains("\"deltaseal-recompressing\""), "{report}");
    let inspect = f.ok(&["inspect", "p.patch"]);
    assert!(
        inspect.contains("deltaseal recompressing patch"),
        "{inspect}"
    );
    assert!(inspect.contains("encoder fb 32 mc 32"), "{inspect}");
    f.ok(&["apply", "old.bin", "p.patch", "-o", "out.bin"]);
    assert_eq!(std::fs::read(f.path("out.bin")).unwrap(), new);
    // A wrong old image: refused, nothing written.
    flip_bit(&f.path("old.bin"), 3, &f.path("other.bin"));
    f.rejected(&["apply", "other.bin", "p.patch", "-o", "out2.bin"]);
    assert!(!f.path("out2.bin").exists());
    // Signed: a bundle made at --level max carries the recompressing patch
    // (its manifest binds the recompressing index digest), and `verify`
    // applies it; a device agent would refuse it.
    f.ok(&["keygen", "-o", "k.pem"]);
    f.release_with("k.pem", 3, "u.bundle", &["--level", "max"]);
    let bundle = std::fs::read(f.path("u.bundle")).unwrap();
    assert!(find(&bundle, b"DSLRECMP").is_some());
    f.ok(&f.verify_args("u.bundle", &[]));
    assert_eq!(std::fs::read(f.path("out.bin")).unwrap(), new);
    // A bit flipped in the payload: refused before the patch is read.
    let at = find(&bundle, b"DSLRECMP").unwrap() + 200;
    flip_bit(&f.path("u.bundle"), at, &f.path("bad.bundle"));
    f.rejected(&[
        "verify",
        "bad.bundle",
        "--trust",
        "k.pub.pem",
        "--old",
        "old.bin",
        "-o",
        "out3.bin",
    ]);
    assert!(!f.path("out3.bin").exists());
    // Opting out gives an ordinary patch.
    let report = f.ok(&[
        "diff",
        "--level",
        "max",
        "--no-recompress",
        "old.bin",
        "new.bin",
        "-o",
        "q.patch",
        "--json",
    ]);
    assert!(report.contains("\"deltaseal\""), "{report}");
}

#[test]
fn keygen_writes_private_key_0600_and_public_key() {
    let f = Fixture::new();
    let out = f.ok(&["keygen", "-o", "k.pem", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["kid"].as_str().unwrap().len(), 32);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(f.path("k.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let public = std::fs::read_to_string(f.path("k.pub.pem")).unwrap();
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"));
    // A second keygen must not silently replace a release key.
    f.rejected(&["keygen", "-o", "k.pem"]);
}

#[test]
fn release_verify_apply_round_trip() {
    let f = Fixture::new();
    f.ok(&["keygen", "-o", "k.pem"]);
    f.release("k.pem", 5, "u.bundle");
    let out = f.ok(&f.verify_args(
        "u.bundle",
        &[
            "--installed-sequence",
            "4",
            "--vendor",
            "example.com",
            "--class",
            "pump-v2",
            "--json",
        ],
    ));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["sequence"], 5);
    assert_eq!(
        std::fs::read(f.path("out.bin")).unwrap(),
        std::fs::read(f.path("new.bin")).unwrap()
    );
    // Signature and policy only, no apply.
    f.ok(&["verify", "u.bundle", "--trust", "k.pub.pem"]);
    for file in ["u.bundle", "k.pem", "k.pub.pem"] {
        let out = f.ok(&["inspect", file, "--json"]);
        serde_json::from_str::<serde_json::Value>(&out).unwrap();
    }
}

#[test]
fn tampered_bundles_are_rejected_and_write_nothing() {
    let f = Fixture::new();
    f.ok(&["keygen", "-o", "k.pem"]);
    f.release("k.pem", 5, "u.bundle");
    let bundle = std::fs::read(f.path("u.bundle")).unwrap();
    let old = std::fs::read(f.path("old.bin")).unwrap();

    // In the manifest: the precursor digest it names.
    let in_manifest = find(&bundle, &sha256(&old)).expect("precursor digest in manifest");
    // In the signature: the only 64-byte byte string (CBOR head 0x58 0x40)
    // before the payload.
    let payload_at = find(&bundle, &deltaseal_verify::patch::MAGIC).expect("payload");
    let in_signature = find(&bundle[..payload_at], &[0x58, 0x40]).expect("signature") + 10;
    // In the payload: its last byte (text keys sort after integer keys, so
    // the integrated payload ends the envelope).
    let in_payload = bundle.len() - 1;

    for (what, offset) in [
        ("manifest", in_manifest + 3),
        ("signature", in_signature),
        ("payload header", payload_at + 20),
        ("payload body", in_payload),
    ] {
        flip_bit(&f.path("u.bundle"), offset, &f.path("t.bundle"));
        let err = f.rejected(&f.verify_args("t.bundle", &[]));
        assert!(!f.path("out.bin").exists(), "{what}: output left behind");
        eprintln!("{what}: {err}");
    }
}

#[test]
fn wrong_key_rollback_and_wrong_old_are_rejected() {
    let f = Fixture::new();
    f.ok(&["keygen", "-o", "k.pem"]);
    f.ok(&["keygen", "-o", "other.pem"]);
    f.release("k.pem", 5, "u.bundle");

    let wrong_key = f.rejected(&[
        "verify",
        "u.bundle",
        "--trust",
        "other.pub.pem",
        "--old",
        "old.bin",
        "-o",
        "out.bin",
    ]);
    assert!(wrong_key.contains("signature"), "{wrong_key}");
    for installed in ["5", "6", &u64::MAX.to_string()] {
        let err = f.rejected(&f.verify_args("u.bundle", &["--installed-sequence", installed]));
        assert!(err.contains("sequence"), "{err}");
    }
    let err = f.rejected(&f.verify_args("u.bundle", &["--vendor", "example.org"]));
    assert!(err.contains("vendor"), "{err}");
    let err = f.rejected(&f.verify_args(
        "u.bundle",
        &["--vendor", "example.com", "--class", "pump-v3"],
    ));
    assert!(err.contains("class"), "{err}");

    flip_bit(&f.path("old.bin"), 4000, &f.path("old2.bin"));
    let err = f.rejected(&[
        "verify",
        "u.bundle",
        "--trust",
        "k.pub.pem",
        "--old",
        "old2.bin",
        "-o",
        "out.bin",
    ]);
    assert!(err.contains("running image"), "{err}");
    assert!(!f.path("out.bin").exists());
}

#[test]
fn usage_errors_exit_2() {
    let f = Fixture::new();
    let out = f.run(&["verify", "u.bundle"]);
    assert_eq!(out.status.code(), Some(2));
    let out = f.run(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn openssl_generated_key_signs_a_bundle_we_accept() {
    if !openssl_available() {
        return;
    }
    let f = Fixture::new();
    let genpkey = Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(f.path("ossl.pem"))
        .status()
        .unwrap();
    assert!(genpkey.success(), "openssl genpkey failed");
    let public = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(f.path("ossl.pem"))
        .arg("-out")
        .arg(f.path("k.pub.pem"))
        .status()
        .unwrap();
    assert!(public.success());
    f.release("ossl.pem", 9, "u.bundle");
    f.ok(&f.verify_args("u.bundle", &["--installed-sequence", "8"]));

    // And OpenSSL reads the keys we write.
    f.ok(&["keygen", "-o", "ours.pem"]);
    let ours = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(f.path("ours.pem"))
        .output()
        .unwrap();
    assert!(ours.status.success(), "openssl cannot read our private key");
    assert_eq!(
        String::from_utf8(ours.stdout).unwrap(),
        std::fs::read_to_string(f.path("ours.pub.pem")).unwrap()
    );
}

#[test]
fn pycose_verifies_a_bundle_made_by_release() {
    let have_pycose = Command::new("python3")
        .args(["-c", "import pycose, cbor2"])
        .status()
        .is_ok_and(|s| s.success());
    if !have_pycose {
        assert!(
            std::env::var_os("DELTASEAL_REQUIRE_INTEROP").is_none(),
            "pycose and cbor2 are required (DELTASEAL_REQUIRE_INTEROP is set)"
        );
        eprintln!("SKIP: python3 with pycose and cbor2 not available; pycose interop not tested");
        return;
    }
    let f = Fixture::new();
    f.ok(&["keygen", "-o", "k.pem"]);
    f.ok(&["keygen", "-o", "other.pem"]);
    f.release("k.pem", 3, "u.bundle");
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deltaseal-sign/tests/interop/pycose_verify.py");
    let pycose = |public: &str| {
        Command::new("python3")
            .arg(&script)
            .arg(f.path("u.bundle"))
            .arg(f.path(public))
            .output()
            .unwrap()
    };
    let accepted = pycose("k.pub.pem");
    assert!(
        accepted.status.success(),
        "pycose rejected our bundle: {}{}",
        String::from_utf8_lossy(&accepted.stdout),
        String::from_utf8_lossy(&accepted.stderr)
    );
    assert!(!pycose("other.pub.pem").status.success());
}

#[test]
fn profile_mcu_writes_small_chunks_a_device_budget_accepts() {
    use deltaseal_verify::patch::{Limits, PatchHeader};
    let f = Fixture::new();
    f.ok(&["keygen", "-o", "k.pem"]);
    for (cmd, out) in [("diff", "mcu.patch"), ("release", "mcu.bundle")] {
        let args: Vec<&str> = if cmd == "diff" {
            vec!["diff", "old.bin", "new.bin", "--profile", "mcu", "-o", out]
        } else {
            vec![
                "release",
                "--old",
                "old.bin",
                "--new",
                "new.bin",
                "--key",
                "k.pem",
                "--sequence",
                "3",
                "--vendor",
                "example.com",
                "--class",
                "pump-v2",
                "--profile",
                "mcu",
                "-o",
                out,
            ]
        };
        f.ok(&args);
    }
    let patch = std::fs::read(f.path("mcu.patch")).unwrap();
    let header = PatchHeader::decode(&patch, &Limits::mcu()).unwrap();
    assert_eq!(header.chunk_size, deltaseal_diff::MCU_CHUNK_SIZE);
    let bundle = std::fs::read(f.path("mcu.bundle")).unwrap();
    assert!(
        find(&bundle, &patch).is_some(),
        "release --profile mcu carries the same patch"
    );
    f.ok(&f.verify_args("mcu.bundle", &["--installed-sequence", "2"]));
    assert_eq!(
        std::fs::read(f.path("out.bin")).unwrap(),
        std::fs::read(f.path("new.bin")).unwrap()
    );
    // The profile fixes the level: combining them is a usage error.
    let out = f.run(&[
        "diff",
        "old.bin",
        "new.bin",
        "--profile",
        "mcu",
        "--level",
        "max",
        "-o",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(2));
}
