//! Issue 7 item 5: power-cut safety. The whole install + boot + confirm runs
//! on a disk that loses power after the Nth mutating operation, for EVERY N;
//! a fresh agent then reboots on what survived. The device must boot the
//! old or the new image (checked by SHA-256), never anything else; the
//! installed sequence never goes backwards and is raised only once the new
//! image runs; repeating the install resumes at the first chunk not yet
//! journalled (never from scratch, never from a half-written chunk) and
//! the device ends on the new image.

use deltaseal_agent::sim::{CutMode, PowerCutStorage};
use deltaseal_agent::storage::Storage;
use deltaseal_agent::{Agent, AgentError, Identity, InstallOptions, InstallOutcome, Trust};
use deltaseal_diff::{DiffOptions, Level, diff};
use deltaseal_sign::bundle::build_bundle;
use deltaseal_sign::{ImageRef, ReleaseInput, ids};
use deltaseal_verify::digest::sha256;
use deltaseal_verify::patch::{Limits, index_digest};
use ed25519_dalek::SigningKey;

const OLD_SEQ: u64 = 6;
const NEW_SEQ: u64 = 7;

struct Case {
    old: Vec<u8>,
    new: Vec<u8>,
    bundle: Vec<u8>,
}

fn identity() -> Identity {
    let vendor_id = ids::vendor_id("example.com");
    Identity {
        vendor_id,
        class_id: ids::class_id(&vendor_id, "pump-v2"),
        device_id: None,
    }
}

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn case(old: Vec<u8>, new: Vec<u8>, chunk_size: u32) -> Case {
    let options = DiffOptions {
        level: Level::Default,
        threads: 1,
        chunk_size,
        ..DiffOptions::default()
    };
    let patch = diff(&old, &new, &options).unwrap();
    let id = identity();
    let input = ReleaseInput {
        sequence: NEW_SEQ,
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
    let bundle = build_bundle(&input, &[key()]).unwrap();
    Case { old, new, bundle }
}

/// A small firmware-like pair: 40 KiB, a few edits, 4 KiB chunks (10 chunks).
fn small_case() -> Case {
    let mut x = 0x2545_f491_u32;
    let old: Vec<u8> = (0..40 * 1024)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if i % 7 == 0 {
                (x >> 24) as u8
            } else {
                (i / 64) as u8
            }
        })
        .collect();
    let mut new = old.clone();
    for i in (100..new.len()).step_by(997) {
        new[i] = new[i].wrapping_add(1);
    }
    new.extend_from_slice(b"release 7 adds a tail");
    case(old, new, 4096)
}

fn clock() -> Box<dyn FnMut() -> u64> {
    let mut t = 1_764_028_800_000u64;
    Box::new(move || {
        t += 250;
        t
    })
}

fn opts(retry: bool) -> InstallOptions {
    InstallOptions {
        bundle_name: "update.bundle".into(),
        retry_rolled_back: retry,
        ..InstallOptions::default()
    }
}

fn fresh_device(c: &Case) -> PowerCutStorage {
    let mut agent = Agent::with_clock(PowerCutStorage::new(), clock());
    let trust = Trust::Key(key().verifying_key().to_bytes());
    agent.init(&c.old, &trust, OLD_SEQ, &identity()).unwrap();
    agent.into_storage()
}

fn flow(agent: &mut Agent<PowerCutStorage>, c: &Case) -> Result<(), AgentError> {
    agent.install(&c.bundle, &opts(false))?;
    agent.boot()?;
    agent.confirm()?;
    Ok(())
}

fn active_digest(agent: &mut Agent<PowerCutStorage>) -> [u8; 32] {
    let path = agent.status().unwrap().active_slot;
    sha256(&agent.storage().read(&path).unwrap().unwrap())
}

#[derive(Default, Debug)]
struct Tally {
    cuts: u64,
    on_old: u64,
    on_new: u64,
    resumed: u64,
}

/// Cuts the power after every N in 0..total operations of the flow.
fn every_cut(c: &Case, mode: CutMode) -> Tally {
    let base = fresh_device(c);
    let total = {
        let mut disk = base.clone();
        disk.cut_after(u64::MAX);
        let mut agent = Agent::with_clock(disk, clock());
        flow(&mut agent, c).unwrap();
        assert_eq!(active_digest(&mut agent), sha256(&c.new));
        agent.into_storage().ops()
    };
    let (old_d, new_d) = (sha256(&c.old), sha256(&c.new));
    let mut tally = Tally::default();
    for n in 0..total {
        let mut disk = base.clone();
        if mode == CutMode::TornWrite {
            disk.cut_after_torn(n);
        } else {
            disk.cut_after(n);
        }
        let mut agent = Agent::with_clock(disk, clock());
        let err = flow(&mut agent, c).expect_err("the power was cut");
        assert!(err.is_io(), "cut {n}: {err}");
        let disk = agent.into_storage();
        assert!(disk.is_cut());

        // Power back: the device reboots on whatever survived.
        let mut agent = Agent::with_clock(disk.after_power_cut(mode), clock());
        agent
            .boot()
            .unwrap_or_else(|e| panic!("{mode:?} cut {n}: reboot failed: {e}"));
        let st = agent.status().unwrap();
        let d = active_digest(&mut agent);
        assert!(d == old_d || d == new_d, "{mode:?} cut {n}: unknown image");
        assert!(st.sequence == OLD_SEQ || st.sequence == NEW_SEQ);
        if st.sequence == NEW_SEQ {
            // Raised only by a confirmation, so the new image runs.
            assert_eq!(
                d, new_d,
                "{mode:?} cut {n}: sequence raised on the old image"
            );
        }
        if d == new_d {
            tally.on_new += 1;
        } else {
            tally.on_old += 1;
        }

        // Finish the job: resume, boot, confirm; the sequence only grows.
        let mut seen = st.sequence;
        for _ in 0..6 {
            let st = agent.status().unwrap();
            assert!(st.sequence >= seen, "{mode:?} cut {n}: sequence went back");
            seen = st.sequence;
            match st.state {
                "idle" if st.sequence == NEW_SEQ => break,
                "trial" => {
                    agent.confirm().unwrap();
                }
                "pending" => {
                    agent.boot().unwrap();
                }
                _ => {
                    let done = st.journal.as_ref().map_or(0, |j| j.chunks_done);
                    match agent.install(&c.bundle, &opts(true)).unwrap() {
                        InstallOutcome::Pending {
                            resumed_from_chunk, ..
                        } => {
                            if done > 0 {
                                // Every journalled chunk was synced first,
                                // so none is redone.
                                assert_eq!(resumed_from_chunk, Some(done), "{mode:?} cut {n}");
                                tally.resumed += 1;
                            }
                        }
                        other => panic!("{mode:?} cut {n}: {other:?}"),
                    }
                }
            }
        }
        let st = agent.status().unwrap();
        assert_eq!(
            (st.state, st.sequence),
            ("idle", NEW_SEQ),
            "{mode:?} cut {n}"
        );
        assert_eq!(active_digest(&mut agent), new_d, "{mode:?} cut {n}");
        let reports = agent.reports().unwrap();
        assert_eq!(
            reports.last().map(|r| r.result.as_str()),
            Some("installed"),
            "{mode:?} cut {n}: {reports:?}"
        );
        tally.cuts += 1;
    }
    tally
}

#[test]
fn every_power_cut_during_install_boot_confirm() {
    let c = small_case();
    for mode in [
        CutMode::DropUnsynced,
        CutMode::KeepUnsynced,
        CutMode::TornWrite,
    ] {
        let t = every_cut(&c, mode);
        println!("small image, {mode:?}: {t:?}");
        assert!(t.cuts > 100, "{t:?}");
        // Both outcomes happen, and interrupted installs really resume.
        assert!(t.on_old > 0 && t.on_new > 0, "{t:?}");
        assert!(t.resumed >= 9, "{t:?}");
    }
}

/// The same on a real MCU pair (Pybricks City Hub, Cortex-M0, 16 KiB chunks).
#[test]
fn every_power_cut_on_the_cityhub_pair() {
    let dir = std::env::var_os("CORPUS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../corpus-data")
        })
        .join("mcu-cityhub");
    let (Ok(old), Ok(new)) = (
        std::fs::read(dir.join("old.bin")),
        std::fs::read(dir.join("new.bin")),
    ) else {
        let required = std::env::var("DELTASEAL_REQUIRE_CORPUS").unwrap_or_default();
        assert!(
            !required.split_whitespace().any(|p| p == "mcu-cityhub"),
            "mcu-cityhub is required (DELTASEAL_REQUIRE_CORPUS) but missing"
        );
        eprintln!("SKIP: corpus pair mcu-cityhub not found; run ../shared/corpus/fetch.sh");
        return;
    };
    let c = case(old, new, 16 * 1024);
    for mode in [CutMode::DropUnsynced, CutMode::KeepUnsynced] {
        let t = every_cut(&c, mode);
        println!("mcu-cityhub, {mode:?}: {t:?}");
        assert!(t.on_old > 0 && t.on_new > 0 && t.resumed > 0, "{t:?}");
    }
}

/// Reboot, then finish the job (resume, boot, confirm) without checks.
fn reboot_and_finish(agent: &mut Agent<PowerCutStorage>, c: &Case) -> Result<(), AgentError> {
    agent.boot()?;
    for _ in 0..6 {
        let st = agent.status()?;
        match st.state {
            "idle" if st.sequence == NEW_SEQ => return Ok(()),
            "trial" => {
                agent.confirm()?;
            }
            "pending" => {
                agent.boot()?;
            }
            _ => {
                agent.install(&c.bundle, &opts(true))?;
            }
        }
    }
    Ok(())
}

/// A second power cut during the recovery from the first: for a sample of
/// first cut points, every cut point of the recovery. Still old or new,
/// sequence never back, and the third boot finishes on the new image.
#[test]
fn power_cut_during_recovery_from_a_power_cut() {
    let c = small_case();
    let base = fresh_device(&c);
    let (old_d, new_d) = (sha256(&c.old), sha256(&c.new));
    let mut cuts = 0;
    for n in (0..121).step_by(6) {
        let mut disk = base.clone();
        disk.cut_after(n);
        let mut agent = Agent::with_clock(disk, clock());
        if flow(&mut agent, &c).is_ok() {
            continue;
        }
        let first = agent.into_storage().after_power_cut(CutMode::DropUnsynced);
        let recovery_ops = {
            let mut disk = first.clone();
            disk.cut_after(u64::MAX);
            let mut agent = Agent::with_clock(disk, clock());
            reboot_and_finish(&mut agent, &c).unwrap();
            agent.into_storage().ops()
        };
        for m in 0..recovery_ops {
            let mut disk = first.clone();
            disk.cut_after(m);
            let mut agent = Agent::with_clock(disk, clock());
            let seq_before = agent.state().unwrap().installed_sequence;
            assert!(reboot_and_finish(&mut agent, &c).is_err());
            let mut agent = Agent::with_clock(
                agent.into_storage().after_power_cut(CutMode::DropUnsynced),
                clock(),
            );
            agent
                .boot()
                .unwrap_or_else(|e| panic!("cut {n} then {m}: {e}"));
            let d = active_digest(&mut agent);
            assert!(d == old_d || d == new_d, "cut {n} then {m}");
            let seq = agent.status().unwrap().sequence;
            assert!(seq >= seq_before, "cut {n} then {m}: sequence went back");
            reboot_and_finish(&mut agent, &c).unwrap();
            assert_eq!(active_digest(&mut agent), new_d, "cut {n} then {m}");
            assert_eq!(agent.status().unwrap().sequence, NEW_SEQ);
            cuts += 1;
        }
    }
    println!("double cuts: {cuts}");
    assert!(cuts > 500, "{cuts}");
}

/// An unconfirmed trial is rolled back at the next boot to the kept slot;
/// the rolled-back sequence is not reinstalled without an explicit retry;
/// the installed sequence is untouched throughout.
#[test]
fn unconfirmed_trial_rolls_back_and_is_not_reinstalled_silently() {
    let c = small_case();
    let mut agent = Agent::with_clock(fresh_device(&c), clock());
    agent.install(&c.bundle, &opts(false)).unwrap();
    assert_eq!(agent.status().unwrap().state, "pending");
    agent.boot().unwrap();
    assert_eq!(active_digest(&mut agent), sha256(&c.new));
    assert_eq!(agent.status().unwrap().sequence, OLD_SEQ);
    // No confirmation: the next boot goes back.
    let back = agent.boot().unwrap();
    assert!(matches!(
        back,
        deltaseal_agent::BootOutcome::RolledBack {
            sequence: NEW_SEQ,
            ..
        }
    ));
    assert_eq!(active_digest(&mut agent), sha256(&c.old));
    let st = agent.status().unwrap();
    assert_eq!((st.state, st.sequence), ("idle", OLD_SEQ));
    assert!(matches!(agent.confirm(), Err(AgentError::NothingToConfirm)));
    assert!(matches!(
        agent.install(&c.bundle, &opts(false)),
        Err(AgentError::RolledBack { sequence: NEW_SEQ })
    ));
    let reports = agent.reports().unwrap();
    let results: Vec<&str> = reports.iter().map(|r| r.result.as_str()).collect();
    assert_eq!(results, ["rolled_back", "failed"]);
    assert!(reports[0].downtime_ms.is_some());
    // Retried on purpose, it installs and is confirmed.
    agent.install(&c.bundle, &opts(true)).unwrap();
    agent.boot().unwrap();
    agent.confirm().unwrap();
    assert_eq!(agent.status().unwrap().sequence, NEW_SEQ);
    // Replaying the same bundle now is refused by the sequence.
    assert!(matches!(
        agent.install(&c.bundle, &opts(true)),
        Err(AgentError::Policy(_))
    ));
    assert_eq!(active_digest(&mut agent), sha256(&c.new));
}

/// The release of `c`, signed again as deferrable (manifest parameter -262).
fn deferrable_bundle(c: &Case) -> Vec<u8> {
    use deltaseal_sign::bundle::{DEFAULT_COMPONENT_ID, ManifestOptions, build_bundle_opts};
    let b = deltaseal_verify::bundle::Bundle::decode(&c.bundle).unwrap();
    let m = b.manifest().clone();
    let input = ReleaseInput {
        sequence: m.sequence,
        vendor_id: m.vendor_id,
        class_id: m.class_id,
        precursor: m.precursor,
        target: m.target,
        patch: b.payload().unwrap(),
        patch_index_digest: m.patch.index_digest,
    };
    build_bundle_opts(
        &input,
        DEFAULT_COMPONENT_ID,
        &ManifestOptions::default().deferrable(true),
        &[key()],
    )
    .unwrap()
}

/// A deferrable bundle waits for the window; an urgent one does not.
#[test]
fn maintenance_window_defers_only_deferrable_bundles() {
    let c = small_case();
    let window: deltaseal_agent::Window = "02:00-04:00".parse().unwrap();
    let day = 1_764_028_800u64; // 2025-11-25T00:00:00Z
    let at = |hour: u64, bundle: &[u8]| {
        let mut agent = Agent::with_clock(fresh_device(&c), clock());
        let o = InstallOptions {
            window: Some(window),
            window_now: day + hour * 3600,
            ..opts(false)
        };
        let out = agent.install(bundle, &o).unwrap();
        let st = agent.status().unwrap().state;
        (out, st)
    };
    let (urgent, st) = at(12, &c.bundle);
    assert!(matches!(urgent, InstallOutcome::Pending { .. }) && st == "pending");

    let deferrable = deferrable_bundle(&c);
    let (later, st) = at(12, &deferrable);
    assert!(
        matches!(
            later,
            InstallOutcome::Deferred { sequence: NEW_SEQ, install_at, .. }
                if install_at == day + 26 * 3600
        ),
        "{later:?}"
    );
    assert_eq!(st, "idle");
    let (inside, st) = at(3, &deferrable);
    assert!(matches!(inside, InstallOutcome::Pending { .. }) && st == "pending");
}

/// A deferral writes one final `deferred` record (the bundle, both
/// versions, when it will install, no downtime) and nothing else; the
/// install inside the window then writes a record of its own, and the
/// deferred one stays as it was.
#[test]
fn deferred_install_is_reported_and_the_install_gets_its_own_record() {
    let c = small_case();
    let deferrable = deferrable_bundle(&c);
    let window: deltaseal_agent::Window = "02:00-04:00".parse().unwrap();
    let day = 1_764_028_800u64; // 2025-11-25T00:00:00Z
    let at = |now: u64| InstallOptions {
        window: Some(window),
        window_now: now,
        ..opts(false)
    };
    let mut agent = Agent::with_clock(fresh_device(&c), clock());
    let mut before = agent.storage().clone();

    let out = agent.install(&deferrable, &at(day + 12 * 3600)).unwrap();
    let InstallOutcome::Deferred {
        sequence,
        install_at,
        report,
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!((sequence, install_at), (NEW_SEQ, day + 26 * 3600));
    let disk = agent.storage();
    for path in [
        "slot-a.img",
        "slot-b.img",
        "state/state.json",
        "state/journal.json",
    ] {
        assert_eq!(
            disk.read(path).unwrap(),
            before.read(path).unwrap(),
            "{path}"
        );
    }
    assert_eq!(
        disk.list("reports").unwrap(),
        core::slice::from_ref(&report)
    );
    let record = disk.read(&format!("reports/{report}")).unwrap();

    let reports = agent.reports().unwrap();
    let [deferred] = reports.as_slice() else {
        panic!("{reports:?}")
    };
    let version = |image: &[u8]| hex::encode(sha256(image))[..12].to_owned();
    assert_eq!(deferred.result, "deferred");
    assert_eq!(deferred.bundle, "update.bundle");
    assert_eq!(deferred.bundle_sha256, hex::encode(sha256(&deferrable)));
    assert_eq!(deferred.from_version, version(&c.old));
    assert_eq!(deferred.to_version, version(&c.new));
    assert_eq!(
        (deferred.from_sequence, deferred.sequence),
        (OLD_SEQ, NEW_SEQ)
    );
    assert_eq!(
        deferred.start,
        deltaseal_agent::report::rfc3339(deferred.start_ms / 1000)
    );
    assert!(deferred.end.is_some());
    assert_eq!(deferred.install_at.as_deref(), Some("2025-11-26T02:00:00Z"));
    assert_eq!(
        (
            deferred.downtime_ms,
            &deferred.error,
            deferred.resumed_from_chunk
        ),
        (None, &None, None)
    );
    assert_eq!(agent.status().unwrap().state, "idle");

    // Inside the window it installs, under a record of its own.
    match agent.install(&deferrable, &at(install_at + 1800)).unwrap() {
        InstallOutcome::Pending {
            report: installing, ..
        } => assert_ne!(installing, report),
        o => panic!("{o:?}"),
    }
    agent.boot().unwrap();
    agent.confirm().unwrap();
    assert_eq!(active_digest(&mut agent), sha256(&c.new));
    let reports = agent.reports().unwrap();
    let results: Vec<&str> = reports.iter().map(|r| r.result.as_str()).collect();
    assert_eq!(results, ["deferred", "installed"]);
    assert_eq!(&reports[0], deferred);
    assert_eq!(reports[1].install_at, None);
    assert!(reports[1].downtime_ms.is_some());
    assert_eq!(
        agent.storage().read(&format!("reports/{report}")).unwrap(),
        record,
        "the deferred record is history: never rewritten"
    );
}

/// A journal belongs to one bundle: an interrupted install replaced by
/// another bundle starts from chunk 0, and the abandoned one is reported.
#[test]
fn interrupted_install_replaced_by_another_bundle() {
    let c = small_case();
    let other = deferrable_bundle(&c);
    let mut disk = fresh_device(&c);
    disk.cut_after(40);
    let mut agent = Agent::with_clock(disk, clock());
    assert!(agent.install(&c.bundle, &opts(false)).unwrap_err().is_io());
    let mut agent = Agent::with_clock(
        agent.into_storage().after_power_cut(CutMode::DropUnsynced),
        clock(),
    );
    agent.boot().unwrap();
    let st = agent.status().unwrap();
    assert_eq!(st.state, "installing");
    assert!(st.journal.unwrap().chunks_done > 0);
    match agent.install(&other, &opts(false)).unwrap() {
        InstallOutcome::Pending {
            resumed_from_chunk, ..
        } => assert_eq!(resumed_from_chunk, None),
        o => panic!("{o:?}"),
    }
    let reports = agent.reports().unwrap();
    let results: Vec<(&str, Option<&str>)> = reports
        .iter()
        .map(|r| (r.result.as_str(), r.error.as_deref()))
        .collect();
    assert_eq!(
        results,
        [
            (
                "failed",
                Some("interrupted, then replaced by another install")
            ),
            ("pending", None)
        ]
    );
    agent.boot().unwrap();
    assert_eq!(active_digest(&mut agent), sha256(&c.new));
}

/// The precursor is the running slot: a bundle made for another image is
/// refused before anything is written, and the backup slot stays intact.
#[test]
fn bundle_for_another_precursor_writes_nothing() {
    let c = small_case();
    let mut agent = Agent::with_clock(fresh_device(&c), clock());
    flow(&mut agent, &c).unwrap();
    // Sequence 8, but made from the old image, which no longer runs.
    let b = deltaseal_verify::bundle::Bundle::decode(&c.bundle).unwrap();
    let m = b.manifest().clone();
    let input = ReleaseInput {
        sequence: 8,
        vendor_id: m.vendor_id,
        class_id: m.class_id,
        precursor: m.precursor,
        target: m.target,
        patch: b.payload().unwrap(),
        patch_index_digest: m.patch.index_digest,
    };
    let stale = build_bundle(&input, &[key()]).unwrap();
    let before = agent.storage().clone();
    let err = agent.install(&stale, &opts(false)).unwrap_err();
    assert!(
        matches!(
            err,
            AgentError::Update(deltaseal_verify::update::UpdateError::PrecursorMismatch)
        ),
        "{err}"
    );
    let mut after = agent.storage().clone();
    let mut before = before;
    for slot in ["slot-a.img", "slot-b.img", "state/state.json"] {
        assert_eq!(
            after.read(slot).unwrap(),
            before.read(slot).unwrap(),
            "{slot}"
        );
    }
    assert_eq!(agent.reports().unwrap().last().unwrap().result, "failed");
}
