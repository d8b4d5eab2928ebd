//! The agent: init, install (with resume), boot (trial and rollback),
//! confirm, status.

use deltaseal_verify::bundle::{Bundle, Manifest, Policy};
use deltaseal_verify::digest::{Digest as _, Sha256, sha256};
use deltaseal_verify::patch::{
    self, ChunkApplier, ImageIoError, Limits, OldImage, PatchError, PatchHeader,
};
use deltaseal_verify::root::{SignedRoot, TrustRoot};
use deltaseal_verify::update::UpdateError;
use ed25519_dalek::VerifyingKey;
use serde::Serialize;

use crate::error::AgentError;
use crate::report::{Report, rfc3339};
use crate::state::{
    Image, JOURNAL, Journal, REPORTS, STATE, Slot, State, TRUST_KEY, TRUST_ROOT, Update, read_json,
    remove_durably, write_atomic, write_json,
};
use crate::storage::{LOCK, Storage};
use crate::window::Window;

/// What the device trusts to sign its updates.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trust {
    /// A signed trust root document (`deltaseal root init`), checked
    /// against its own threshold at every install.
    Root(Vec<u8>),
    /// One Ed25519 public key (raw 32 bytes): a root with threshold 1.
    Key([u8; 32]),
}

/// Who the device is, for `init`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// Vendor id (UUID bytes).
    pub vendor_id: [u8; 16],
    /// Class id (UUID bytes).
    pub class_id: [u8; 16],
    /// Device id, if bundles may be addressed to this one device.
    pub device_id: Option<[u8; 16]>,
}

/// How to run one install.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstallOptions {
    /// The bundle's name for the report (usually its path).
    pub bundle_name: String,
    /// Trusted time (Unix seconds) for expiry checks; `None`: not checked.
    pub trusted_now: Option<u64>,
    /// Maintenance window; a deferrable bundle outside it is deferred.
    pub window: Option<Window>,
    /// Time (Unix seconds) the window is judged at.
    pub window_now: u64,
    /// Reinstall a sequence that was rolled back here before.
    pub retry_rolled_back: bool,
}

/// What a successful [`Agent::install`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
#[non_exhaustive]
pub enum InstallOutcome {
    /// The new image is in the inactive slot, verified, pending the next boot.
    Pending {
        /// The slot written.
        slot: Slot,
        /// The bundle's sequence.
        sequence: u64,
        /// Chunks in the patch.
        chunks: u32,
        /// Where an interrupted install was resumed, if it was.
        resumed_from_chunk: Option<u32>,
        /// The report file under `reports/`.
        report: String,
    },
    /// This bundle was already installed and is pending or on trial.
    AlreadyInstalled {
        /// The bundle's sequence.
        sequence: u64,
    },
    /// Deferrable bundle outside the maintenance window: a `deferred`
    /// report is written, the slots, the state and any journal are not.
    Deferred {
        /// The bundle's sequence.
        sequence: u64,
        /// When the window opens (Unix seconds).
        install_at: u64,
        /// The report file under `reports/`.
        report: String,
    },
}

/// What [`Agent::boot`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "boot", rename_all = "snake_case")]
#[non_exhaustive]
pub enum BootOutcome {
    /// Booted the active, confirmed slot.
    Normal {
        /// The slot booted.
        slot: Slot,
    },
    /// Booted the pending slot once, on trial: confirm it before the next boot.
    Trial {
        /// The slot booted.
        slot: Slot,
        /// Its sequence.
        sequence: u64,
    },
    /// The trial was not confirmed: booted the previous slot again.
    RolledBack {
        /// The slot booted (the kept backup).
        slot: Slot,
        /// The sequence rolled back.
        sequence: u64,
    },
    /// The pending slot no longer matched its digest: not booted, dropped.
    PendingDiscarded {
        /// The slot booted (unchanged).
        slot: Slot,
    },
}

/// `status`: everything about the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// `idle`, `installing` (interrupted install, resumable), `pending` or `trial`.
    pub state: &'static str,
    /// The active slot's image file (a storage path; the CLI makes it a real one).
    pub active_slot: String,
    /// `a` or `b`.
    pub active: Slot,
    /// Installed (confirmed) sequence.
    pub sequence: u64,
    /// The whole state file.
    pub detail: State,
    /// The install journal, if an install was interrupted.
    pub journal: Option<Journal>,
}

/// A reference A/B device agent over a [`Storage`]. See the crate docs.
///
/// # One agent per device at a time
///
/// [`Agent::init`], [`Agent::install`], [`Agent::boot`] and
/// [`Agent::confirm`] first take the storage's exclusive lock
/// ([`Storage::lock`]) and keep it until the agent is dropped. On a
/// [`DirStorage`](crate::storage::DirStorage) another process, or another
/// agent on the same directory, then gets [`AgentError::Locked`] before it
/// reads the state or writes anything, so two installs never interleave
/// their state writes. [`Agent::status`], [`Agent::state`] and
/// [`Agent::reports`] take no lock: every file they read is replaced
/// atomically, so they can watch an install under way.
pub struct Agent<S: Storage> {
    storage: S,
    clock: Box<dyn FnMut() -> u64>,
    limits: Limits,
}

impl<S: Storage> core::fmt::Debug for Agent<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Agent").finish_non_exhaustive()
    }
}

/// Reads the old image from a slot through the storage.
struct SlotReader<'a, S: Storage> {
    storage: &'a mut S,
    path: &'static str,
    len: u64,
}

impl<S: Storage> OldImage for SlotReader<'_, S> {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), ImageIoError> {
        let end = offset
            .checked_add(buf.len() as u64)
            .ok_or(ImageIoError::OutOfBounds)?;
        if end > self.len {
            return Err(ImageIoError::OutOfBounds);
        }
        self.storage
            .read_at(self.path, offset, buf)
            .map_err(|_| ImageIoError::Read)
    }
}

fn version(hex_digest: &str) -> String {
    hex_digest.get(..12).unwrap_or(hex_digest).to_owned()
}

impl<S: Storage> Agent<S> {
    /// An agent over `storage`, with the system clock.
    pub fn new(storage: S) -> Self {
        Self::with_clock(storage, Box::new(system_ms))
    }

    /// An agent with its own clock (Unix milliseconds), for tests.
    pub fn with_clock(storage: S, clock: Box<dyn FnMut() -> u64>) -> Self {
        Agent {
            storage,
            clock,
            limits: Limits::default(),
        }
    }

    /// The storage back (e.g. to inspect it after a simulated power cut).
    pub fn into_storage(self) -> S {
        self.storage
    }

    /// The storage.
    pub fn storage(&mut self) -> &mut S {
        &mut self.storage
    }

    /// Creates the device: slot A holds `image` (sequence `sequence`), slot
    /// B is empty, A is active and confirmed.
    pub fn init(
        &mut self,
        image: &[u8],
        trust: &Trust,
        sequence: u64,
        identity: &Identity,
    ) -> Result<(), AgentError> {
        // The directory must exist to hold the lock file; creating it is
        // idempotent, so a second `init` racing this one does no harm.
        self.storage
            .create_dir("")
            .map_err(|e| AgentError::io("", e))?;
        self.lock()?;
        if self
            .storage
            .len(STATE)
            .map_err(|e| AgentError::io(STATE, e))?
            .is_some()
        {
            return Err(AgentError::AlreadyInitialised);
        }
        let trust_root = load_trust(trust, None)?;
        drop(trust_root);
        let s = &mut self.storage;
        for dir in ["state", REPORTS] {
            s.create_dir(dir).map_err(|e| AgentError::io(dir, e))?;
        }
        for (slot, bytes) in [(Slot::A, image), (Slot::B, &[][..])] {
            let path = slot.file();
            let io = |e| AgentError::io(path, e);
            s.set_len(path, 0).map_err(io)?;
            s.write_at(path, 0, bytes).map_err(io)?;
            s.sync(path).map_err(io)?;
        }
        s.sync_dir("").map_err(|e| AgentError::io("", e))?;
        match trust {
            Trust::Root(doc) => write_atomic(s, TRUST_ROOT, doc)?,
            Trust::Key(key) => write_atomic(s, TRUST_KEY, hex::encode(key).as_bytes())?,
        }
        let state = State {
            format: 1,
            vendor_id: hex::encode(identity.vendor_id),
            class_id: hex::encode(identity.class_id),
            device_id: identity.device_id.map(hex::encode),
            installed_sequence: sequence,
            active: Slot::A,
            slot_a: Some(Image {
                size: image.len() as u64,
                sha256: hex::encode(sha256(image)),
                sequence,
            }),
            slot_b: None,
            pending: None,
            trial: None,
            rolled_back: None,
        };
        write_json(s, STATE, &state)
    }

    /// The device state.
    pub fn state(&mut self) -> Result<State, AgentError> {
        read_json(&mut self.storage, STATE)?.ok_or(AgentError::NotInitialised)
    }

    /// Everything `deltaseal status` shows.
    pub fn status(&mut self) -> Result<Status, AgentError> {
        let detail = self.state()?;
        let journal: Option<Journal> =
            read_json::<_, Journal>(&mut self.storage, JOURNAL)?.filter(|j| !is_stale(j, &detail));
        let state = if detail.trial.is_some() {
            "trial"
        } else if detail.pending.is_some() {
            "pending"
        } else if journal.is_some() {
            "installing"
        } else {
            "idle"
        };
        Ok(Status {
            state,
            active_slot: detail.active.file().to_owned(),
            active: detail.active,
            sequence: detail.installed_sequence,
            detail,
            journal,
        })
    }

    /// Every install report of this device, oldest first.
    pub fn reports(&mut self) -> Result<Vec<Report>, AgentError> {
        let names = self
            .storage
            .list(REPORTS)
            .map_err(|e| AgentError::io(REPORTS, e))?;
        let mut out = Vec::new();
        for name in names.iter().filter(|n| n.ends_with(".json")) {
            let path = format!("{REPORTS}/{name}");
            if let Some(r) = read_json::<_, Report>(&mut self.storage, &path)? {
                out.push(r);
            }
        }
        out.sort_by_key(|r| r.start_ms);
        Ok(out)
    }

    fn now_ms(&mut self) -> u64 {
        (self.clock)()
    }

    /// Takes the storage's exclusive lock (see the type's docs).
    fn lock(&mut self) -> Result<(), AgentError> {
        self.storage.lock().map_err(|e| {
            if e.kind() == std::io::ErrorKind::WouldBlock {
                AgentError::Locked
            } else {
                AgentError::io(LOCK, e)
            }
        })
    }

    /// Takes the lock on a storage that holds a device. A directory without
    /// one is refused first, so that a mistyped `--device` gets
    /// [`AgentError::NotInitialised`] and no lock file.
    fn lock_device(&mut self) -> Result<(), AgentError> {
        if self
            .storage
            .len(STATE)
            .map_err(|e| AgentError::io(STATE, e))?
            .is_none()
        {
            return Err(AgentError::NotInitialised);
        }
        self.lock()
    }

    fn read_report(&mut self, name: &str) -> Result<Option<Report>, AgentError> {
        read_json(&mut self.storage, &format!("{REPORTS}/{name}"))
    }

    fn write_report(&mut self, name: &str, report: &Report) -> Result<(), AgentError> {
        write_json(&mut self.storage, &format!("{REPORTS}/{name}"), report)
    }

    /// SHA-256 and size of a slot's file (streamed).
    fn slot_digest(&mut self, slot: Slot) -> Result<(u64, [u8; 32]), AgentError> {
        let path = slot.file();
        let len = self
            .storage
            .len(path)
            .map_err(|e| AgentError::io(path, e))?
            .unwrap_or(0);
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut offset = 0u64;
        while offset < len {
            let n = usize::try_from((len - offset).min(buf.len() as u64)).unwrap_or(buf.len());
            let piece = buf.get_mut(..n).unwrap_or(&mut []);
            self.storage
                .read_at(path, offset, piece)
                .map_err(|e| AgentError::io(path, e))?;
            hasher.update(piece);
            offset += n as u64;
        }
        Ok((len, hasher.finalize().into()))
    }

    fn slot_matches(&mut self, slot: Slot, image: &Image) -> Result<bool, AgentError> {
        let (len, digest) = self.slot_digest(slot)?;
        Ok(len == image.size && hex::encode(digest) == image.sha256)
    }

    /// Verifies `bundle` and streams its image into the inactive slot, chunk
    /// by chunk, journalling each; resumes an interrupted install of the
    /// same bundle. On success the new slot is pending: the next
    /// [`Agent::boot`] tries it.
    ///
    /// A rejected bundle writes a `failed` report and nothing else; a
    /// deferred one a `deferred` report and nothing else. A device locked by
    /// another agent ([`AgentError::Locked`]) gets no report at all.
    pub fn install(
        &mut self,
        bundle: &[u8],
        opts: &InstallOptions,
    ) -> Result<InstallOutcome, AgentError> {
        self.lock_device()?;
        let state = self.state()?;
        let bundle_sha256 = hex::encode(sha256(bundle));
        for (update, what) in [(&state.pending, "pending"), (&state.trial, "on trial")] {
            if let Some(u) = update {
                if u.bundle_sha256 == bundle_sha256 {
                    return Ok(InstallOutcome::AlreadyInstalled {
                        sequence: u.image.sequence,
                    });
                }
                return Err(AgentError::Busy {
                    sequence: u.image.sequence,
                    state: what,
                });
            }
        }
        let start_ms = self.now_ms();
        match self.install_checked(bundle, &bundle_sha256, &state, opts, start_ms) {
            Err(e) if !e.is_io() => {
                // A rejection: record it (best effort: the rejection is
                // what the caller must see, not a report-writing error).
                let report = Report {
                    bundle: opts.bundle_name.clone(),
                    bundle_sha256,
                    from_version: state
                        .image(state.active)
                        .map(|i| version(&i.sha256))
                        .unwrap_or_default(),
                    to_version: String::new(),
                    from_sequence: state.installed_sequence,
                    sequence: Bundle::decode(bundle).map_or(0, |b| b.manifest().sequence),
                    start: rfc3339(start_ms / 1000),
                    end: Some(rfc3339(self.now_ms() / 1000)),
                    downtime_ms: None,
                    result: "failed".into(),
                    error: Some(error_line(&e)),
                    resumed_from_chunk: None,
                    retry: opts.retry_rolled_back,
                    start_ms,
                    install_at: None,
                };
                let name = format!("{start_ms:013}-failed.json");
                let _ = self.write_report(&name, &report);
                Err(e)
            }
            other => other,
        }
    }

    fn install_checked(
        &mut self,
        bundle: &[u8],
        bundle_sha256: &str,
        state: &State,
        opts: &InstallOptions,
        start_ms: u64,
    ) -> Result<InstallOutcome, AgentError> {
        // 1-4: decode, signatures (trust root threshold), policy.
        let trust = self.stored_trust()?;
        let root = load_trust(&trust, opts.trusted_now)?;
        let policy = Policy {
            installed_sequence: Some(state.installed_sequence),
            vendor_id: Some(parse_id(&state.vendor_id, STATE)?),
            class_id: Some(parse_id(&state.class_id, STATE)?),
            device_id: state
                .device_id
                .as_deref()
                .map(|d| parse_id(d, STATE))
                .transpose()?,
            now: opts.trusted_now,
        };
        let approved = Bundle::decode(bundle)
            .map_err(AgentError::Decode)?
            .authenticate_root(&root)
            .map_err(AgentError::Signature)?
            .approve(&policy)
            .map_err(AgentError::Policy)?;
        let manifest: Manifest = approved.manifest().clone();
        if state.rolled_back.is_some_and(|r| manifest.sequence <= r) && !opts.retry_rolled_back {
            return Err(AgentError::RolledBack {
                sequence: manifest.sequence,
            });
        }
        // Maintenance window: only a signed "deferrable" may wait.
        if manifest.deferrable
            && let Some(window) = opts.window
            && !window.contains(opts.window_now)
        {
            let install_at = window.next_open(opts.window_now);
            // Only a record, so operators see that the bundle arrived and
            // when it will go in. It is final: the install, when it comes,
            // writes a record of its own under another name.
            let report_name = format!("{start_ms:013}-seq{}-deferred.json", manifest.sequence);
            let report = Report {
                bundle: opts.bundle_name.clone(),
                bundle_sha256: bundle_sha256.to_owned(),
                from_version: state
                    .image(state.active)
                    .map(|i| version(&i.sha256))
                    .unwrap_or_default(),
                to_version: version(&hex::encode(manifest.target.digest)),
                from_sequence: state.installed_sequence,
                sequence: manifest.sequence,
                start: rfc3339(start_ms / 1000),
                end: Some(rfc3339(self.now_ms() / 1000)),
                downtime_ms: None,
                result: "deferred".into(),
                error: None,
                resumed_from_chunk: None,
                retry: opts.retry_rolled_back,
                start_ms,
                install_at: Some(rfc3339(install_at)),
            };
            self.write_report(&report_name, &report)?;
            return Ok(InstallOutcome::Deferred {
                sequence: manifest.sequence,
                install_at,
                report: report_name,
            });
        }
        // 5-6: payload against the manifest before parsing, then the patch
        // header and index against the manifest.
        let payload = approved
            .checked_payload()
            .map_err(|e| AgentError::Update(UpdateError::Payload(e)))?;
        let header = PatchHeader::decode(payload, &self.limits)?;
        let index = patch::index_digest(payload, &self.limits)?;
        if !manifest.names_patch(&index, &header.precursor(), &header.target()) {
            return Err(AgentError::Update(UpdateError::PatchManifestMismatch));
        }
        // 7: the precursor is the running image.
        let active = state.active;
        let (old_len, old_digest) = self.slot_digest(active)?;
        if old_len != manifest.precursor.size || old_digest != manifest.precursor.digest {
            return Err(AgentError::Update(UpdateError::PrecursorMismatch));
        }
        let target = active.other();
        let chunks_total = u32::try_from(header.chunks.len()).unwrap_or(u32::MAX);

        // Resume, or start a new journal (before the slot is touched).
        let previous: Option<Journal> = read_json(&mut self.storage, JOURNAL)?;
        let mut journal = match previous {
            Some(j)
                if j.bundle_sha256 == bundle_sha256
                    && j.slot == target
                    && j.chunks_total == chunks_total =>
            {
                j
            }
            other => {
                // An interrupted install of another bundle is abandoned.
                if let Some(old) = other
                    && let Some(mut report) = self.read_report(&old.report)?
                {
                    report.result = "failed".into();
                    report.end = Some(rfc3339(start_ms / 1000));
                    report.error = Some("interrupted, then replaced by another install".into());
                    self.write_report(&old.report, &report)?;
                }
                let report_name = format!("{start_ms:013}-seq{}.json", manifest.sequence);
                let report = Report {
                    bundle: opts.bundle_name.clone(),
                    bundle_sha256: bundle_sha256.to_owned(),
                    from_version: version(&hex::encode(old_digest)),
                    to_version: version(&hex::encode(manifest.target.digest)),
                    from_sequence: state.installed_sequence,
                    sequence: manifest.sequence,
                    start: rfc3339(start_ms / 1000),
                    end: None,
                    downtime_ms: None,
                    result: "installing".into(),
                    error: None,
                    resumed_from_chunk: None,
                    retry: opts.retry_rolled_back,
                    start_ms,
                    install_at: None,
                };
                self.write_report(&report_name, &report)?;
                let j = Journal {
                    bundle_sha256: bundle_sha256.to_owned(),
                    slot: target,
                    sequence: manifest.sequence,
                    chunks_total,
                    chunks_done: 0,
                    report: report_name,
                };
                write_json(&mut self.storage, JOURNAL, &j)?;
                j
            }
        };

        // Chunks already done are re-verified by reading them back: the
        // first that does not match its output digest is redone.
        let chunk_size = u64::from(header.chunk_size);
        let mut first = 0u32;
        while first < journal.chunks_done.min(chunks_total) {
            let ok = self.chunk_on_disk_matches(&header, target, first)?;
            if !ok {
                break;
            }
            first += 1;
        }
        let resumed_from_chunk = (journal.chunks_done > 0).then_some(first);

        let mut applier = ChunkApplier::new();
        let target_path = target.file();
        for i in first..chunks_total {
            let out = {
                let mut old = SlotReader {
                    storage: &mut self.storage,
                    path: active.file(),
                    len: old_len,
                };
                applier.apply_chunk(&header, payload, i, &mut old)?
            };
            let offset = u64::from(i)
                .checked_mul(chunk_size)
                .ok_or(PatchError::OutputTooLarge)?;
            let io = |e| AgentError::io(target_path, e);
            self.storage
                .write_at(target_path, offset, out)
                .map_err(io)?;
            self.storage.sync(target_path).map_err(io)?;
            journal.chunks_done = i + 1;
            write_json(&mut self.storage, JOURNAL, &journal)?;
        }
        let io = |e| AgentError::io(target_path, e);
        self.storage
            .set_len(target_path, manifest.target.size)
            .map_err(io)?;
        self.storage.sync(target_path).map_err(io)?;
        // 9: the final image, read back from the slot.
        let (new_len, new_digest) = self.slot_digest(target)?;
        if new_len != manifest.target.size || new_digest != manifest.target.digest {
            return Err(AgentError::Update(UpdateError::Patch(
                PatchError::NewImageMismatch,
            )));
        }

        // Report, then the state (pending), then drop the journal.
        let report_name = journal.report.clone();
        if let Some(mut report) = self.read_report(&report_name)? {
            report.result = "pending".into();
            if resumed_from_chunk.is_some() {
                report.resumed_from_chunk = resumed_from_chunk;
            }
            self.write_report(&report_name, &report)?;
        }
        let mut state = self.state()?;
        let image = Image {
            size: manifest.target.size,
            sha256: hex::encode(manifest.target.digest),
            sequence: manifest.sequence,
        };
        state.set_image(target, Some(image.clone()));
        state.pending = Some(Update {
            slot: target,
            previous: active,
            image,
            bundle_sha256: bundle_sha256.to_owned(),
            report: report_name.clone(),
            switched_ms: None,
        });
        write_json(&mut self.storage, STATE, &state)?;
        remove_durably(&mut self.storage, JOURNAL)?;
        Ok(InstallOutcome::Pending {
            slot: target,
            sequence: manifest.sequence,
            chunks: chunks_total,
            resumed_from_chunk,
            report: report_name,
        })
    }

    fn chunk_on_disk_matches(
        &mut self,
        header: &PatchHeader,
        slot: Slot,
        index: u32,
    ) -> Result<bool, AgentError> {
        let (Some(len), Some(entry)) = (
            header.chunk_output_len(index),
            usize::try_from(index)
                .ok()
                .and_then(|i| header.chunks.get(i)),
        ) else {
            return Ok(false);
        };
        let offset = u64::from(index) * u64::from(header.chunk_size);
        let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
        match self.storage.read_at(slot.file(), offset, &mut buf) {
            Ok(()) => Ok(sha256(&buf) == entry.output_digest),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
            Err(e) => Err(AgentError::io(slot.file(), e)),
        }
    }

    fn stored_trust(&mut self) -> Result<Trust, AgentError> {
        if let Some(doc) = self
            .storage
            .read(TRUST_ROOT)
            .map_err(|e| AgentError::io(TRUST_ROOT, e))?
        {
            return Ok(Trust::Root(doc));
        }
        let text = self
            .storage
            .read(TRUST_KEY)
            .map_err(|e| AgentError::io(TRUST_KEY, e))?
            .ok_or(AgentError::TrustKey)?;
        let mut key = [0u8; 32];
        hex::decode_to_slice(text.trim_ascii(), &mut key).map_err(|_| AgentError::TrustKey)?;
        Ok(Trust::Key(key))
    }

    /// Simulates a reboot, with MCUboot's test/revert semantics: an
    /// unconfirmed trial is rolled back to the kept previous slot; a pending
    /// slot is booted once on trial; otherwise the active slot boots. Every
    /// slot is checked against its recorded digest before it is booted.
    pub fn boot(&mut self) -> Result<BootOutcome, AgentError> {
        self.lock_device()?;
        let mut state = self.state()?;
        let now = self.now_ms();
        // A journal left by an install that finished (the power went
        // between recording the pending slot and removing the journal).
        let journal: Option<Journal> = read_json(&mut self.storage, JOURNAL)?;
        if journal.is_some_and(|j| is_stale(&j, &state)) {
            remove_durably(&mut self.storage, JOURNAL)?;
        }
        if let Some(trial) = state.trial.clone() {
            let previous = trial.previous;
            let kept = state
                .image(previous)
                .cloned()
                .ok_or(AgentError::SlotMismatch { slot: previous })?;
            if !self.slot_matches(previous, &kept)? {
                return Err(AgentError::SlotMismatch { slot: previous });
            }
            if let Some(mut report) = self.read_report(&trial.report)? {
                report.result = "rolled_back".into();
                report.end = Some(rfc3339(now / 1000));
                report.downtime_ms = trial.switched_ms.map(|s| now.saturating_sub(s));
                report.error = Some("not confirmed before the next boot".into());
                self.write_report(&trial.report, &report)?;
            }
            state.active = previous;
            state.trial = None;
            state.rolled_back = Some(
                state
                    .rolled_back
                    .map_or(trial.image.sequence, |r| r.max(trial.image.sequence)),
            );
            write_json(&mut self.storage, STATE, &state)?;
            return Ok(BootOutcome::RolledBack {
                slot: previous,
                sequence: trial.image.sequence,
            });
        }
        if let Some(mut pending) = state.pending.clone() {
            if !self.slot_matches(pending.slot, &pending.image)? {
                if let Some(mut report) = self.read_report(&pending.report)? {
                    report.result = "failed".into();
                    report.end = Some(rfc3339(now / 1000));
                    report.error = Some("the pending slot changed before boot".into());
                    self.write_report(&pending.report, &report)?;
                }
                state.set_image(pending.slot, None);
                state.pending = None;
                write_json(&mut self.storage, STATE, &state)?;
                return Ok(BootOutcome::PendingDiscarded { slot: state.active });
            }
            pending.switched_ms = Some(now);
            if let Some(mut report) = self.read_report(&pending.report)? {
                report.result = "trial".into();
                self.write_report(&pending.report, &report)?;
            }
            state.active = pending.slot;
            state.pending = None;
            let (slot, sequence) = (pending.slot, pending.image.sequence);
            state.trial = Some(pending);
            write_json(&mut self.storage, STATE, &state)?;
            return Ok(BootOutcome::Trial { slot, sequence });
        }
        let active = state.active;
        let image = state
            .image(active)
            .cloned()
            .ok_or(AgentError::SlotMismatch { slot: active })?;
        if !self.slot_matches(active, &image)? {
            return Err(AgentError::SlotMismatch { slot: active });
        }
        Ok(BootOutcome::Normal { slot: active })
    }

    /// Makes the image on trial permanent and only now raises the installed
    /// sequence (never lowering it). The previous slot stays as the backup.
    pub fn confirm(&mut self) -> Result<Update, AgentError> {
        self.lock_device()?;
        let mut state = self.state()?;
        let trial = state.trial.clone().ok_or(AgentError::NothingToConfirm)?;
        let now = self.now_ms();
        if let Some(mut report) = self.read_report(&trial.report)? {
            report.result = "installed".into();
            report.end = Some(rfc3339(now / 1000));
            report.downtime_ms = trial.switched_ms.map(|s| now.saturating_sub(s));
            report.error = None;
            self.write_report(&trial.report, &report)?;
        }
        state.installed_sequence = state.installed_sequence.max(trial.image.sequence);
        state.trial = None;
        write_json(&mut self.storage, STATE, &state)?;
        Ok(trial)
    }
}

/// A journal for an install already recorded as pending, on trial or
/// confirmed.
fn is_stale(journal: &Journal, state: &State) -> bool {
    let recorded = |u: &Option<Update>| {
        u.as_ref()
            .is_some_and(|u| u.bundle_sha256 == journal.bundle_sha256)
    };
    journal.sequence <= state.installed_sequence
        || recorded(&state.pending)
        || recorded(&state.trial)
}

/// Verifies stored trust: a root document against its own threshold (and
/// expiry, given a trusted time), or a single key.
fn load_trust(trust: &Trust, now: Option<u64>) -> Result<TrustRoot, AgentError> {
    match trust {
        Trust::Root(doc) => SignedRoot::decode(doc)
            .and_then(|r| r.verify(now))
            .map_err(AgentError::Trust),
        Trust::Key(key) => VerifyingKey::from_bytes(key)
            .map(TrustRoot::single)
            .map_err(|_| AgentError::TrustKey),
    }
}

fn parse_id(text: &str, path: &str) -> Result<[u8; 16], AgentError> {
    let mut id = [0u8; 16];
    hex::decode_to_slice(text, &mut id).map_err(|_| AgentError::CorruptState {
        path: path.to_owned(),
        source: serde::de::Error::custom("bad id"),
    })?;
    Ok(id)
}

/// The error and its causes on one line.
pub fn error_line(e: &(dyn core::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        line.push_str(": ");
        line.push_str(&c.to_string());
        cause = c.source();
    }
    line
}

fn system_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
