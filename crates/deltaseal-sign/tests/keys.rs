//! Key files: our own round trips, and OpenSSL interop when `openssl` is on PATH.

mod common;

use std::path::Path;
use std::process::Command;

use common::{input, key};
use deltaseal_sign::bundle::{
    DEFAULT_COMPONENT_ID, manifest_bytes, protected_header, sig_structure, suit_digest,
};
use deltaseal_sign::keys::{self, KeyError};
use deltaseal_sign::{build_bundle, ids};
use deltaseal_verify::bundle::{Bundle, kid};
use ed25519_dalek::{Signer, VerifyingKey};

fn openssl() -> bool {
    common::interop_tool("openssl", &["version"], "openssl")
}

fn run(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn write_read_round_trip_and_mode() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys::generate().unwrap();
    assert_ne!(k.to_bytes(), keys::generate().unwrap().to_bytes());
    let sk = dir.path().join("k.pem");
    let pk = dir.path().join("k.pub.pem");
    keys::write_private_pem(&sk, &k).unwrap();
    keys::write_public_pem(&pk, &k.verifying_key()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&sk).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let pem = std::fs::read_to_string(&sk).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    // PKCS#8 v1 without the public key: 48 bytes of DER, 64 base64 chars.
    assert_eq!(pem.lines().nth(1).unwrap().len(), 64);
    assert_eq!(
        keys::read_signing_key(&sk).unwrap().to_bytes(),
        k.to_bytes()
    );
    assert_eq!(keys::read_verifying_key(&pk).unwrap(), k.verifying_key());
    assert_eq!(keys::read_verifying_key(&sk).unwrap(), k.verifying_key());
    // Overwriting goes through a temp file + rename and leaves no litter.
    keys::write_private_pem(&sk, &k).unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn bad_and_weak_keys_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a key").unwrap();
    assert!(matches!(
        keys::read_signing_key(&junk),
        Err(KeyError::Parse { .. })
    ));
    assert!(matches!(
        keys::read_verifying_key(&junk),
        Err(KeyError::Parse { .. })
    ));
    assert!(matches!(
        keys::read_signing_key(&dir.path().join("missing.pem")),
        Err(KeyError::Read { .. })
    ));
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak = VerifyingKey::from_bytes(&identity).unwrap();
    let p = dir.path().join("weak.pem");
    keys::write_public_pem(&p, &weak).unwrap();
    assert!(matches!(
        keys::read_verifying_key(&p),
        Err(KeyError::WeakKey { .. })
    ));
}

#[test]
fn ids_follow_suit_uuid5() {
    // Vendor "arm.com" as in the draft's examples; the class value was computed
    // independently with Python's uuid.uuid5(vendor, "LPC1768").
    let v = ids::vendor_id("arm.com");
    assert_eq!(
        uuid::Uuid::from_bytes(v).to_string(),
        "fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe"
    );
    assert_eq!(
        uuid::Uuid::from_bytes(ids::class_id(&v, "LPC1768")).to_string(),
        "f8c2dc60-756e-50e4-963c-d1d2b747ceff"
    );
    let given = "01234567-89ab-cdef-0123-456789abcdef";
    assert_eq!(
        uuid::Uuid::from_bytes(ids::vendor_id(given)).to_string(),
        given
    );
    assert_eq!(
        uuid::Uuid::from_bytes(ids::class_id(&v, given)).to_string(),
        given
    );
}

#[test]
fn openssl_generated_key_signs_a_bundle_that_authenticates() {
    if !openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sk = dir.path().join("ossl.pem");
    let pk = dir.path().join("ossl.pub.pem");
    run(&["genpkey", "-algorithm", "ed25519", "-out", s(&sk)]);
    run(&["pkey", "-in", s(&sk), "-pubout", "-out", s(&pk)]);
    let signing = keys::read_signing_key(&sk).unwrap();
    let trusted = keys::read_verifying_key(&pk).unwrap();
    assert_eq!(signing.verifying_key(), trusted);
    let bytes = build_bundle(&input(3), &[signing]).unwrap();
    assert!(
        Bundle::decode(&bytes)
            .unwrap()
            .authenticate(&[trusted])
            .is_ok()
    );
}

#[test]
fn openssl_reads_our_keys_and_signs_identically() {
    if !openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let k = key(42);
    let sk = dir.path().join("ours.pem");
    let pk = dir.path().join("ours.pub.pem");
    keys::write_private_pem(&sk, &k).unwrap();
    keys::write_public_pem(&pk, &k.verifying_key()).unwrap();
    let theirs_pub = run(&["pkey", "-in", s(&sk), "-pubout"]);
    assert_eq!(theirs_pub, std::fs::read(&pk).unwrap());

    let m = manifest_bytes(&input(3), DEFAULT_COMPONENT_ID).unwrap();
    let tbs = sig_structure(
        &protected_header(&kid(&k.verifying_key())),
        &suit_digest(&m),
    );
    let tbs_path = dir.path().join("tbs.bin");
    std::fs::write(&tbs_path, &tbs).unwrap();
    let sig = run(&[
        "pkeyutl",
        "-sign",
        "-rawin",
        "-inkey",
        s(&sk),
        "-in",
        s(&tbs_path),
    ]);
    assert_eq!(sig, k.sign(&tbs).to_bytes());
    // And the signature in the bundle is that very signature.
    let bytes = build_bundle(&input(3), &[k]).unwrap();
    assert!(bytes.windows(64).any(|w| w == sig.as_slice()));
}
