//! Issue 7: the operator session of docs/agent.md, run for real: device
//! init, install, an install killed with SIGKILL half way, resume, boot on
//! trial, unconfirmed boot -> rollback, refused silent reinstall, explicit
//! retry, confirm, status, maintenance window, report (table and CSV).

mod common;

use core::time::Duration;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::Instant;

use common::Workdir;
use serde_json::Value;

const VENDOR: &str = "example.com";
const CLASS: &str = "pump-v2";

/// 4 MiB old image and a new one with sparse edits: 256 chunks of 16 KiB,
/// each fsynced and journalled, so an install takes long enough to kill.
fn images() -> (Vec<u8>, Vec<u8>) {
    let mut x = 0x9e37_79b9_u32;
    let old: Vec<u8> = (0..4 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect();
    let mut new = old.clone();
    for i in (0..new.len()).step_by(4099) {
        new[i] ^= 0x5a;
    }
    (old, new)
}

fn status(w: &Workdir, dev: &str) -> Value {
    serde_json::from_str(&w.ok(&["status", "--device", dev, "--json"])).unwrap()
}

fn active_image(w: &Workdir, dev: &str) -> Vec<u8> {
    let st = status(w, dev);
    std::fs::read(st["active_slot"].as_str().unwrap()).unwrap()
}

fn init(w: &Workdir, dev: &str) {
    w.ok(&[
        "device",
        "init",
        "--device",
        dev,
        "--image",
        "old.bin",
        "--trust",
        "release.pub.pem",
        "--sequence",
        "6",
        "--vendor",
        VENDOR,
        "--class",
        CLASS,
    ]);
}

/// Starts `deltaseal install`, waits until its journal records at least
/// two chunks, then kills it with SIGKILL. Returns the journalled count,
/// or `None` if the install finished before it could be killed.
fn killed_install(w: &Workdir, dev: &str) -> Option<u64> {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin!("deltaseal"))
        .current_dir(w.path(""))
        .args(["install", "update.bundle", "--device", dev])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let journal = w.path(dev).join("state/journal.json");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return None;
        }
        let done = std::fs::read(&journal)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|j| j["chunks_done"].as_u64())
            .unwrap_or(0);
        if done >= 2 {
            child.kill().unwrap();
            child.wait().unwrap();
            return Some(done);
        }
        assert!(Instant::now() < deadline, "install made no progress");
        sleep(Duration::from_micros(200));
    }
}

#[test]
fn operator_session() {
    let w = Workdir::new();
    let (old, new) = images();
    std::fs::write(w.path("old.bin"), &old).unwrap();
    std::fs::write(w.path("new.bin"), &new).unwrap();
    w.ok(&["keygen", "-o", "release.pem"]);
    let release = |seq: &str, out: &str, extra: &[&str]| {
        let mut args = vec![
            "release",
            "--old",
            "old.bin",
            "--new",
            "new.bin",
            "--key",
            "release.pem",
            "--sequence",
            seq,
            "--vendor",
            VENDOR,
            "--class",
            CLASS,
            "--chunk-size",
            "16384",
            "-o",
            out,
        ];
        args.extend_from_slice(extra);
        w.ok(&args);
    };
    release("7", "update.bundle", &[]);

    init(&w, "pump-1");
    let st = status(&w, "pump-1");
    assert_eq!(st["state"], "idle");
    assert_eq!(st["sequence"], 6);
    assert!(
        st["active_slot"]
            .as_str()
            .unwrap()
            .ends_with("pump-1/slot-a.img")
    );
    assert_eq!(active_image(&w, "pump-1"), old);

    // An install killed half way (SIGKILL, no chance to clean up). On the
    // rare run where it finishes first, start over on a fresh device.
    let mut journalled = None;
    for _ in 0..3 {
        journalled = killed_install(&w, "pump-1");
        if journalled.is_some() {
            break;
        }
        std::fs::remove_dir_all(w.path("pump-1")).unwrap();
        init(&w, "pump-1");
    }
    let journalled = journalled.expect("install always finished before the kill");
    let st = status(&w, "pump-1");
    assert_eq!(st["state"], "installing");
    assert_eq!(st["sequence"], 6);
    let done = st["journal"]["chunks_done"].as_u64().unwrap();
    assert!(done >= journalled && done < 256, "{st}");
    assert_eq!(
        active_image(&w, "pump-1"),
        old,
        "the running image is untouched"
    );
    // A reboot now keeps the old image and the journal.
    w.ok(&["boot", "--device", "pump-1"]);
    assert_eq!(active_image(&w, "pump-1"), old);

    // Resume: from the first chunk not journalled, not from scratch.
    let out = w.ok(&["install", "update.bundle", "--device", "pump-1", "--json"]);
    let out: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out["result"], "pending");
    assert_eq!(out["resumed_from_chunk"], done);
    assert_eq!(out["chunks"], 256);
    assert_eq!(status(&w, "pump-1")["state"], "pending");

    // Boot on trial, do not confirm, boot again: rolled back.
    let boot: Value =
        serde_json::from_str(&w.ok(&["boot", "--device", "pump-1", "--json"])).unwrap();
    assert_eq!(boot["boot"], "trial");
    assert_eq!(active_image(&w, "pump-1"), new);
    assert_eq!(
        status(&w, "pump-1")["sequence"],
        6,
        "raised only by confirm"
    );
    let boot: Value =
        serde_json::from_str(&w.ok(&["boot", "--device", "pump-1", "--json"])).unwrap();
    assert_eq!(boot["boot"], "rolled_back");
    let st = status(&w, "pump-1");
    assert_eq!(
        (st["state"].as_str(), st["sequence"].as_u64()),
        (Some("idle"), Some(6))
    );
    assert_eq!(
        active_image(&w, "pump-1"),
        old,
        "the backup slot was kept intact"
    );
    w.rejected(&["confirm", "--device", "pump-1"]);

    // A rolled-back sequence is not reinstalled silently.
    let err = w.rejected(&["install", "update.bundle", "--device", "pump-1"]);
    assert!(err.contains("rolled back"), "{err}");
    w.ok(&[
        "install",
        "update.bundle",
        "--device",
        "pump-1",
        "--retry-rolled-back",
    ]);
    w.ok(&["boot", "--device", "pump-1"]);
    let out = w.ok(&["confirm", "--device", "pump-1"]);
    assert!(out.contains("confirmed sequence 7"), "{out}");
    let st = status(&w, "pump-1");
    assert_eq!(
        (st["state"].as_str(), st["sequence"].as_u64()),
        (Some("idle"), Some(7))
    );
    assert!(st["active_slot"].as_str().unwrap().ends_with("slot-b.img"));
    assert_eq!(active_image(&w, "pump-1"), new);
    // Replay of the installed bundle: refused by the sequence.
    w.rejected(&["install", "update.bundle", "--device", "pump-1"]);

    // Maintenance window: a deferrable bundle waits, then installs.
    release("7", "deferrable.bundle", &["--deferrable"]);
    init(&w, "pump-2");
    let install_at = |now: &str| {
        let out = w.ok(&[
            "install",
            "deferrable.bundle",
            "--device",
            "pump-2",
            "--window",
            "02:00-04:00",
            "--now",
            now,
            "--json",
        ]);
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let deferred = install_at("2026-11-25T12:00:00Z");
    assert_eq!(deferred["result"], "deferred");
    assert_eq!(deferred["install_at"], "2026-11-26T02:00:00Z");
    assert_eq!(status(&w, "pump-2")["state"], "idle");
    assert_eq!(install_at("2026-11-26T02:30:00Z")["result"], "pending");
    // An urgent bundle ignores the window.
    init(&w, "pump-3");
    let out = w.ok(&[
        "install",
        "update.bundle",
        "--device",
        "pump-3",
        "--window",
        "02:00-04:00",
        "--now",
        "2026-11-25T12:00:00Z",
    ]);
    assert!(out.contains("installed sequence 7"), "{out}");
    w.ok(&["boot", "--device", "pump-3"]);
    w.ok(&["confirm", "--device", "pump-3"]);
    // A bundle signed by another key: refused, recorded.
    w.ok(&["keygen", "-o", "other.pem"]);
    w.ok(&[
        "release",
        "--old",
        "old.bin",
        "--new",
        "new.bin",
        "--key",
        "other.pem",
        "--sequence",
        "9",
        "--vendor",
        VENDOR,
        "--class",
        CLASS,
        "-o",
        "forged.bundle",
    ]);
    w.rejected(&["install", "forged.bundle", "--device", "pump-3"]);

    // Reports: one record per install, as a table and as CSV.
    let csv = w.ok(&["report", "pump-1", "pump-2", "pump-3", "--csv"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("device,bundle,from_version,to_version"));
    let results: Vec<(&str, &str)> = lines[1..]
        .iter()
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[0], cells[9])
        })
        .collect();
    assert_eq!(
        results,
        [
            ("pump-1", "rolled_back"),
            ("pump-1", "failed"),
            ("pump-1", "installed"),
            ("pump-1", "failed"),
            ("pump-2", "pending"),
            ("pump-3", "installed"),
            ("pump-3", "failed"),
        ]
    );
    let first: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(first[11], done.to_string(), "resumed_from_chunk");
    assert!(first[8].parse::<u64>().is_ok(), "downtime_ms: {}", lines[1]);
    let table = w.ok(&["report", "pump-1", "pump-2", "pump-3"]);
    assert!(
        table.contains("7 installs on 3 devices: 2 installed, 1 rolled back, 3 failed"),
        "{table}"
    );
    // Not a device: one error line.
    w.rejected(&["report", "old.bin"]);
    w.rejected(&["status", "--device", "nowhere"]);
}
