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

#[test]
fn pycose_made_cose_sign1_is_accepted() {
    use deltaseal_verify::bundle::{Bundle, SignatureError, kid};
    use deltaseal_verify::root::TrustRoot;
    if !pycose_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A bundle signed by key 1; pycose adds key 2's signature block.
    let bytes = build_bundle(&input(12), &[key(1)]).unwrap();
    let b = dir.path().join("update.suit");
    let sk = dir.path().join("k2.pem");
    let out = dir.path().join("k2.cose");
    std::fs::write(&b, &bytes).unwrap();
    keys::write_private_pem(&sk, &key(2)).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/pycose_verify.py");
    let run = Command::new("python3")
        .arg(script)
        .arg("--sign")
        .arg(&b)
        .arg(&sk)
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let block = std::fs::read(&out).unwrap();

    let d = Bundle::decode(&bytes).unwrap();
    let mut blocks: Vec<Vec<u8>> = d.signature_blocks().iter().map(|s| s.to_vec()).collect();
    blocks.push(block.clone());
    let both =
        deltaseal_sign::bundle::envelope(d.manifest_bytes(), d.suit_digest(), &blocks, d.payload());
    let root = TrustRoot::new(
        1,
        2,
        None,
        vec![key(1).verifying_key(), key(2).verifying_key()],
    )
    .unwrap();
    let a = Bundle::decode(&both)
        .unwrap()
        .authenticate_root(&root)
        .unwrap();
    assert!(a.verified_kids().contains(&kid(&key(2).verifying_key())));
    assert_eq!(a.verified_kids().len(), 2);

    // The pycose block alone, under key 2 only.
    let alone = deltaseal_sign::bundle::envelope(
        d.manifest_bytes(),
        d.suit_digest(),
        core::slice::from_ref(&block),
        d.payload(),
    );
    let a = Bundle::decode(&alone)
        .unwrap()
        .authenticate(&[key(2).verifying_key()])
        .unwrap();
    assert_eq!(a.verified_kids(), &[kid(&key(2).verifying_key())]);

    // pycose's signature moved onto another manifest does not verify.
    let other = build_bundle(&input(13), &[key(3)]).unwrap();
    let o = Bundle::decode(&other).unwrap();
    let moved = deltaseal_sign::bundle::envelope(
        o.manifest_bytes(),
        o.suit_digest(),
        &[block],
        o.payload(),
    );
    assert_eq!(
        Bundle::decode(&moved)
            .unwrap()
            .authenticate(&[key(2).verifying_key()])
            .err(),
        Some(SignatureError::NoTrustedSignature)
    );
}
