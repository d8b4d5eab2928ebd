//! One agent per device directory at a time: the lock on `<device>/lock`.
//! A second agent, in this process or another, is refused with
//! `AgentError::Locked` before it reads or writes the device; read-only
//! `status` and `reports` still work while the lock is held.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use deltaseal_agent::storage::{DirStorage, LOCK};
use deltaseal_agent::{
    Agent, AgentError, BootOutcome, Identity, InstallOptions, InstallOutcome, Trust,
};
use deltaseal_diff::{DiffOptions, Level, diff};
use deltaseal_sign::bundle::build_bundle;
use deltaseal_sign::{ImageRef, ReleaseInput, ids};
use deltaseal_verify::digest::sha256;
use deltaseal_verify::patch::{Limits, index_digest};
use ed25519_dalek::SigningKey;

/// A device directory under the system temp dir, removed when dropped.
struct DeviceDir(PathBuf);

impl DeviceDir {
    fn new(name: &str) -> DeviceDir {
        let dir = std::env::temp_dir().join(format!(
            "deltaseal-agent-lock-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        DeviceDir(dir)
    }

    fn agent(&self) -> Agent<DirStorage> {
        Agent::new(DirStorage::new(&self.0))
    }

    /// Holds the lock the way another process would: its own open file.
    fn hold_lock(&self) -> File {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.0.join(LOCK))
            .unwrap();
        file.try_lock().unwrap();
        file
    }
}

impl Drop for DeviceDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every file under `dir` with its contents.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn key() -> SigningKey {
    SigningKey::from_bytes(&[9; 32])
}

fn identity() -> Identity {
    let vendor_id = ids::vendor_id("example.com");
    Identity {
        vendor_id,
        class_id: ids::class_id(&vendor_id, "pump-v2"),
        device_id: None,
    }
}

/// A 12 KiB image, its successor (3 chunks of 4 KiB) and the bundle
/// between them, sequence 7.
fn release() -> (Vec<u8>, Vec<u8>) {
    let old: Vec<u8> = (0..12 * 1024u32).map(|i| (i * 7 / 5) as u8).collect();
    let mut new = old.clone();
    for i in (10..new.len()).step_by(1000) {
        new[i] ^= 0xa5;
    }
    let patch = diff(
        &old,
        &new,
        &DiffOptions {
            level: Level::Default,
            threads: 1,
            chunk_size: 4096,
            ..DiffOptions::default()
        },
    )
    .unwrap();
    let id = identity();
    let input = ReleaseInput {
        sequence: 7,
        vendor_id: id.vendor_id,
        class_id: id.class_id,
        precursor: ImageRef {
            size: old.len() as u64,
            digest: sha256(&old),
        },
        target: ImageRef {
            size: new.len() as u64,
            digest: sha256(&new),
        },
        patch: &patch,
        patch_index_digest: index_digest(&patch, &Limits::default()).unwrap(),
    };
    (old, build_bundle(&input, &[key()]).unwrap())
}

fn init(dir: &DeviceDir, old: &[u8]) {
    let trust = Trust::Key(key().verifying_key().to_bytes());
    dir.agent().init(old, &trust, 6, &identity()).unwrap();
}

fn options() -> InstallOptions {
    InstallOptions {
        bundle_name: "update.bundle".into(),
        ..InstallOptions::default()
    }
}

#[test]
fn a_locked_device_refuses_every_change_and_nothing_changes() {
    let dir = DeviceDir::new("refuses");
    let (old, bundle) = release();
    init(&dir, &old);
    let before = snapshot(&dir.0);

    let held = dir.hold_lock();
    let mut agent = dir.agent();
    let err = agent.install(&bundle, &options()).unwrap_err();
    assert!(matches!(err, AgentError::Locked), "{err}");
    assert!(matches!(agent.boot(), Err(AgentError::Locked)));
    assert!(matches!(agent.confirm(), Err(AgentError::Locked)));
    let trust = Trust::Key(key().verifying_key().to_bytes());
    assert!(matches!(
        agent.init(&old, &trust, 6, &identity()),
        Err(AgentError::Locked)
    ));
    assert_eq!(
        snapshot(&dir.0),
        before,
        "no report, no journal, no slot write"
    );
    // Read-only views need no lock.
    assert_eq!(agent.status().unwrap().state, "idle");
    assert!(agent.reports().unwrap().is_empty());

    // Released, the same agent installs the same bundle.
    drop(held);
    let out = agent.install(&bundle, &options()).unwrap();
    assert!(matches!(out, InstallOutcome::Pending { .. }), "{out:?}");
}

#[test]
fn an_agent_holds_the_lock_until_it_is_dropped() {
    let dir = DeviceDir::new("held");
    let (old, bundle) = release();
    init(&dir, &old);
    let mut first = dir.agent();
    first.install(&bundle, &options()).unwrap();

    let mut second = dir.agent();
    assert!(matches!(second.boot(), Err(AgentError::Locked)));
    assert_eq!(second.status().unwrap().state, "pending");
    // The holder itself goes on (the lock is taken once, then kept).
    assert!(matches!(first.boot(), Ok(BootOutcome::Trial { .. })));

    drop(first);
    second.confirm().unwrap();
    assert_eq!(second.status().unwrap().sequence, 7);
}

#[test]
fn a_directory_without_a_device_gets_no_lock_file() {
    let dir = DeviceDir::new("empty");
    let (_, bundle) = release();
    let mut agent = dir.agent();
    assert!(matches!(
        agent.install(&bundle, &options()),
        Err(AgentError::NotInitialised)
    ));
    assert!(matches!(agent.boot(), Err(AgentError::NotInitialised)));
    assert!(snapshot(&dir.0).is_empty());
}
