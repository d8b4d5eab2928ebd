//! Issue 7: the operator session of docs/agent.md, run for real: device
//! init, install, an install killed with SIGKILL half way, resume, boot on
//! trial, unconfirmed boot -> rollback, refused silent reinstall, explicit
//! retry, confirm, status, maintenance window, report (table and CSV);
//! then the deferred record and the device lock on their own.

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
            ("pump-2", "deferred"),
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
        table.contains("7 installs on 3 devices: 2 installed, 1 rolled back, 3 failed; 1 deferred"),
        "{table}"
    );
    // Not a device: one error line.
    w.rejected(&["report", "old.bin"]);
    w.rejected(&["status", "--device", "nowhere"]);
}

/// A small device for the tests below: `dev` runs a 64 KiB `small-old.bin`
/// at sequence 6; `small.bundle` (urgent) and `small-deferrable.bundle`
/// take it to `small-new.bin`, sequence 7.
fn small_device(w: &Workdir, dev: &str) {
    let old = common::noise(11, 64 << 10);
    let mut new = old.clone();
    for i in (0..new.len()).step_by(1021) {
        new[i] ^= 0x3c;
    }
    std::fs::write(w.path("small-old.bin"), &old).unwrap();
    std::fs::write(w.path("small-new.bin"), &new).unwrap();
    w.ok(&["keygen", "-o", "release.pem"]);
    for (out, extra) in [
        ("small.bundle", None),
        ("small-deferrable.bundle", Some("--deferrable")),
    ] {
        let mut args = vec![
            "release",
            "--old",
            "small-old.bin",
            "--new",
            "small-new.bin",
            "--key",
            "release.pem",
            "--sequence",
            "7",
            "--vendor",
            VENDOR,
            "--class",
            CLASS,
            "--chunk-size",
            "16384",
            "-o",
            out,
        ];
        args.extend(extra);
        w.ok(&args);
    }
    w.ok(&[
        "device",
        "init",
        "--device",
        dev,
        "--image",
        "small-old.bin",
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

/// The CSV rows of `deltaseal report DEV --csv`, split into cells (no cell
/// here holds a comma).
fn report_rows(w: &Workdir, dev: &str) -> Vec<Vec<String>> {
    let csv = w.ok(&["report", dev, "--csv"]);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "device,bundle,from_version,to_version,from_sequence,sequence,start,end,\
         downtime_ms,result,error,resumed_from_chunk,install_at"
    );
    lines
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

/// A deferred install is on the record: `deltaseal report` shows when the
/// bundle arrived and when it will install; the install itself, inside
/// the window, gets a record of its own and the deferred one stays.
#[test]
fn deferred_install_is_reported() {
    let w = Workdir::new();
    small_device(&w, "pump-4");
    let install = |now: &str| {
        w.ok(&[
            "install",
            "small-deferrable.bundle",
            "--device",
            "pump-4",
            "--window",
            "02:00-04:00",
            "--now",
            now,
            "--json",
        ])
    };
    let out: Value = serde_json::from_str(&install("2026-11-25T12:00:00Z")).unwrap();
    assert_eq!(out["result"], "deferred");
    assert!(
        out["report"]
            .as_str()
            .unwrap()
            .ends_with("-seq7-deferred.json"),
        "{out}"
    );
    let st = status(&w, "pump-4");
    assert_eq!(
        (st["state"].as_str(), st["sequence"].as_u64()),
        (Some("idle"), Some(6))
    );

    let rows = report_rows(&w, "pump-4");
    assert_eq!(rows.len(), 1, "{rows:?}");
    let deferred = rows[0].clone();
    let from = &st["slots"]["a"]["image"]["sha256"].as_str().unwrap()[..12];
    assert_eq!(deferred[0], "pump-4");
    assert_eq!(deferred[1], "small-deferrable.bundle");
    assert_eq!(deferred[2], from);
    assert_eq!((deferred[4].as_str(), deferred[5].as_str()), ("6", "7"));
    assert_eq!(deferred[8], "", "no downtime");
    assert_eq!(deferred[9], "deferred");
    assert_eq!(deferred[12], "2026-11-26T02:00:00Z");
    let table = w.ok(&["report", "pump-4"]);
    assert!(table.contains("2026-11-26T02:00:00Z"), "{table}");
    assert!(
        table.contains("0 installs on 1 devices: 0 installed, 0 rolled back, 0 failed; 1 deferred"),
        "{table}"
    );

    // In the window: installed, under its own record.
    let out: Value = serde_json::from_str(&install("2026-11-26T02:30:00Z")).unwrap();
    assert_eq!(out["result"], "pending");
    w.ok(&["boot", "--device", "pump-4"]);
    w.ok(&["confirm", "--device", "pump-4"]);
    let st = status(&w, "pump-4");
    let to = &st["slots"]["b"]["image"]["sha256"].as_str().unwrap()[..12];
    assert_eq!(deferred[3], to);
    let rows = report_rows(&w, "pump-4");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0], deferred, "the deferred record is kept as it was");
    assert_eq!(rows[1][9], "installed");
    assert_eq!(rows[1][12], "");
    let table = w.ok(&["report", "pump-4"]);
    assert!(
        table.contains("1 installs on 1 devices: 1 installed, 0 rolled back, 0 failed; 1 deferred"),
        "{table}"
    );
}

/// Another process holding the device (here: this test, through the lock
/// file, exactly as a running `deltaseal install` holds it) makes install,
/// boot and confirm fail at once with one error line, changing nothing.
#[test]
fn a_device_held_by_another_process_is_refused() {
    let w = Workdir::new();
    small_device(&w, "pump-5");
    let snapshot = || {
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        for sub in ["", "state", "reports"] {
            for e in std::fs::read_dir(w.path("pump-5").join(sub)).unwrap() {
                let p = e.unwrap().path();
                if p.is_file() {
                    files.push((p.display().to_string(), std::fs::read(&p).unwrap()));
                }
            }
        }
        files.sort();
        files
    };
    let before = snapshot();
    let lock = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(w.path("pump-5/lock"))
        .unwrap();
    lock.try_lock().unwrap();
    for args in [
        &["install", "small.bundle", "--device", "pump-5"][..],
        &["boot", "--device", "pump-5"],
        &["confirm", "--device", "pump-5"],
    ] {
        let err = w.rejected(args);
        assert!(
            err.starts_with("error: another deltaseal process holds the device pump-5"),
            "{err}"
        );
    }
    // Watching is allowed while another process works.
    assert_eq!(status(&w, "pump-5")["state"], "idle");
    w.ok(&["report", "pump-5"]);
    assert_eq!(snapshot(), before, "nothing written");

    drop(lock);
    let out = w.ok(&["install", "small.bundle", "--device", "pump-5"]);
    assert!(out.contains("installed sequence 7"), "{out}");
}
