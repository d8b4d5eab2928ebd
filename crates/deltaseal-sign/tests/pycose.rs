//! Independent verification of our bundles with Python cbor2 + pycose.

mod common;

use std::path::Path;
use std::process::Command;

use common::{input, key};
use deltaseal_sign::{build_bundle, keys};

fn pycose_available() -> bool {
    common::interop_tool(
        "python3",
        &["-c", "import pycose, cbor2"],
        "python3 with pycose and cbor2 (pip install pycose 'cbor2<6')",
    )
}

fn verify(bundle: &Path, public: &Path) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/pycose_verify.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(bundle)
        .arg(public)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn pycose_verifies_our_bundle_and_rejects_tampering() {
    if !pycose_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bytes = build_bundle(&input(12), &[key(1), key(2)]).unwrap();
    let b = dir.path().join("update.suit");
    let pk = dir.path().join("k.pub.pem");
    let other = dir.path().join("other.pub.pem");
    std::fs::write(&b, &bytes).unwrap();
    keys::write_public_pem(&pk, &key(2).verifying_key()).unwrap();
    keys::write_public_pem(&other, &key(3).verifying_key()).unwrap();

    let (ok, log) = verify(&b, &pk);
    assert!(ok, "{log}");
    assert!(log.contains("1 of 2 signatures verify"), "{log}");

    let (ok, log) = verify(&b, &other);
    assert!(!ok, "wrong key accepted: {log}");

    // A flipped bit in the manifest (the precursor digest), in a signature,
    // and in the payload.
    let manifest_at = bytes.windows(32).position(|w| w == [0x11; 32]).unwrap();
    let n = bytes.len();
    assert_eq!(bytes[4], 0x58, "auth wrapper length head");
    let sig_at = 6 + bytes[5] as usize - 1;
    for at in [manifest_at + 1, sig_at, n - 1] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x01;
        std::fs::write(&b, &bad).unwrap();
        let (ok, log) = verify(&b, &pk);
        assert!(!ok, "tampered byte {at} accepted: {log}");
    }
}
