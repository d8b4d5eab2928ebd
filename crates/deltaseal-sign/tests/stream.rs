//! The streaming installer (`deltaseal_verify::stream`) on real signed
//! bundles: any piece size gives the same result, every truncation and
//! every tampered byte is an error (never a success, never a panic), the
//! device budget is enforced before anything is written or read, and a
//! resume from every chunk boundary gives the same image.

mod common;

use common::key;
use deltaseal_diff::{DiffOptions, Level, diff};
use deltaseal_sign::{ImageRef, ReleaseInput, build_bundle};
use deltaseal_verify::bundle::{Bundle, Policy, PolicyError, SignatureError};
use deltaseal_verify::digest::sha256;
use deltaseal_verify::patch::{
    ImageIoError, Limits, OldImage, PatchError, PatchHeader, SliceImage, index_digest,
};
use deltaseal_verify::root::TrustRoot;
use deltaseal_verify::stream::{Installed, Stage, StreamError, StreamInstaller};
use deltaseal_verify::update::{UpdateError, apply_update};

const CHUNK: u32 = 4096;

struct Fixture {
    old: Vec<u8>,
    new: Vec<u8>,
    patch: Vec<u8>,
    bundle: Vec<u8>,
}

/// Deterministic pseudo-random bytes (xorshift), compressible enough to
/// matter and different enough to need extra bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 3 == 0 {
                (x >> 24) as u8
            } else {
                (i / 64) as u8
            }
        })
        .collect()
}

fn fixture_with(old: Vec<u8>, new: Vec<u8>, sequence: u64) -> Fixture {
    let opts = DiffOptions {
        level: Level::Default,
        threads: 1,
        chunk_size: CHUNK,
        // An MCU's patch: no old-image reference (Limits::mcu below).
        extra_reference: 0,
        ..DiffOptions::default()
    };
    let patch = diff(&old, &new, &opts).unwrap();
    let input = ReleaseInput {
        sequence,
        vendor_id: deltaseal_sign::ids::vendor_id("example.com"),
        class_id: deltaseal_sign::ids::class_id(
            &deltaseal_sign::ids::vendor_id("example.com"),
            "sensor-v1",
        ),
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
    let bundle = build_bundle(&input, &[key(1)]).unwrap();
    Fixture {
        old,
        new,
        patch,
        bundle,
    }
}

/// 9 chunks of 4 KiB (the last one short), edits in most of them.
fn fixture() -> Fixture {
    let old = noise(34_000, 7);
    let mut new = old.clone();
    new[100..120].copy_from_slice(&[0xaa; 20]);
    new.splice(9000..9000, noise(700, 9));
    new[20_000..20_500].copy_from_slice(&noise(500, 11));
    new.truncate(33_000);
    fixture_with(old, new, 7)
}

fn trust() -> TrustRoot {
    TrustRoot::single(key(1).verifying_key())
}

fn policy() -> Policy {
    Policy {
        installed_sequence: Some(6),
        ..Policy::default()
    }
}

/// Feeds `bundle` in pieces of `piece` bytes (0 = all at once) to a new
/// installer (resumed at `done` chunks with `sink` holding what is written).
fn install_into(
    bundle: &[u8],
    old: &[u8],
    piece: usize,
    limits: Limits,
    done: u32,
    sink: &mut Vec<u8>,
) -> Result<Installed, StreamError> {
    let trust = trust();
    let mut inst = StreamInstaller::resume(&trust, policy(), limits, done);
    let piece = if piece == 0 {
        bundle.len().max(1)
    } else {
        piece
    };
    let mut last = inst.progress().consumed;
    for p in bundle.chunks(piece) {
        let progress = inst.feed(p, &mut SliceImage(old), sink)?;
        assert_eq!(progress.consumed, last + p.len() as u64);
        if done == 0 || matches!(progress.stage, Stage::Chunks | Stage::Complete) {
            assert_eq!(progress.written, sink.len() as u64);
        }
        last = progress.consumed;
    }
    inst.finish()
}

fn install(bundle: &[u8], old: &[u8], piece: usize) -> (Result<Installed, StreamError>, Vec<u8>) {
    let mut sink = Vec::new();
    let r = install_into(bundle, old, piece, Limits::mcu(), 0, &mut sink);
    (r, sink)
}

#[test]
fn any_piece_size_gives_the_same_verified_image() {
    let f = fixture();
    let header = PatchHeader::decode(&f.patch, &Limits::default()).unwrap();
    assert_eq!(header.chunks.len(), 9, "fixture should have 9 chunks");
    let mut results = Vec::new();
    for piece in [1, 7, 4096, 0] {
        let (r, sink) = install(&f.bundle, &f.old, piece);
        let installed = r.unwrap_or_else(|e| panic!("piece {piece}: {e:?}"));
        assert!(sink == f.new, "piece {piece}: wrong image");
        results.push(installed);
    }
    assert!(results.windows(2).all(|w| w[0] == w[1]), "{results:?}");
    let i = results[0];
    assert_eq!(i.sequence, 7);
    assert_eq!(i.new_size, f.new.len() as u64);
    assert_eq!(i.new_digest, sha256(&f.new));
    assert_eq!(i.chunks, 9);
    assert_eq!(i.resumed_chunks, 0);
    assert_eq!(i.decoder_memory, header.decoder_memory);
    assert_eq!(i.signers, 1);
    assert_eq!(i.bundle_len, f.bundle.len() as u64);

    // The same image as the whole-bundle path.
    let approved = Bundle::decode(&f.bundle)
        .unwrap()
        .authenticate_root(&trust())
        .unwrap()
        .approve(&policy())
        .unwrap();
    let mut whole = Vec::new();
    apply_update(&approved, &mut &f.old[..], &mut whole, &Limits::mcu()).unwrap();
    assert!(whole == f.new);
}

#[test]
fn progress_reports_stages_and_chunks() {
    let f = fixture();
    let trust = trust();
    let mut inst = StreamInstaller::new(&trust, policy(), Limits::mcu());
    let mut sink = Vec::new();
    let mut stages = Vec::new();
    let mut chunks_seen = Vec::new();
    for p in f.bundle.chunks(256) {
        let pr = inst.feed(p, &mut SliceImage(&f.old), &mut sink).unwrap();
        if stages.last() != Some(&pr.stage) {
            stages.push(pr.stage);
        }
        if pr.stage != Stage::Envelope {
            assert_eq!(pr.bundle_len, Some(f.bundle.len() as u64));
            assert!(inst.manifest().is_some());
        } else {
            assert!(inst.manifest().is_none());
        }
        if let Some(total) = pr.chunks_total {
            assert_eq!(total, 9);
            chunks_seen.push(pr.chunks_done);
        }
    }
    assert_eq!(
        stages,
        [
            Stage::Envelope,
            Stage::Index,
            Stage::Chunks,
            Stage::Complete
        ]
    );
    assert!(chunks_seen.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(chunks_seen.last(), Some(&9));
    assert!(inst.finish().is_ok());
}

#[test]
fn every_truncation_is_an_error_and_writes_only_verified_chunks() {
    let f = fixture();
    for cut in 0..f.bundle.len() {
        let (r, sink) = install(&f.bundle[..cut], &f.old, 7);
        assert_eq!(r, Err(StreamError::Truncated), "cut at {cut}");
        // Whatever was written is a prefix of verified chunks.
        assert_eq!(sink.len() % CHUNK as usize, 0, "cut at {cut}");
        assert!(f.new.starts_with(&sink), "cut at {cut}");
    }
}

#[test]
fn trailing_bytes_are_refused() {
    let f = fixture();
    let mut long = f.bundle.clone();
    long.push(0);
    for piece in [1, 0] {
        let (r, _) = install(&long, &f.old, piece);
        assert_eq!(
            r,
            Err(StreamError::Decode(
                deltaseal_verify::bundle::DecodeError::TrailingBytes
            ))
        );
    }
}

#[test]
fn every_tampered_byte_is_an_error() {
    let f = fixture();
    for at in 0..f.bundle.len() {
        let mut bad = f.bundle.clone();
        bad[at] ^= 0x10;
        let (r, sink) = install(&bad, &f.old, 1000);
        assert!(r.is_err(), "flip at {at} accepted");
        assert!(
            f.new.starts_with(&sink),
            "flip at {at}: unverified bytes written"
        );
    }
}

#[test]
fn errors_stick() {
    let f = fixture();
    let trust = TrustRoot::single(key(2).verifying_key());
    let mut inst = StreamInstaller::new(&trust, policy(), Limits::mcu());
    let mut sink = Vec::new();
    let want = Err(StreamError::Signature(SignatureError::NoTrustedSignature));
    let first = f
        .bundle
        .chunks(512)
        .map(|p| inst.feed(p, &mut SliceImage(&f.old), &mut sink))
        .find(Result::is_err)
        .unwrap();
    assert_eq!(first.map(|_| ()), want);
    assert_eq!(
        inst.feed(&[], &mut SliceImage(&f.old), &mut sink)
            .map(|_| ()),
        want
    );
    assert_eq!(inst.finish().map(|_| ()), want);
    assert!(sink.is_empty());
}

#[test]
fn policy_and_precursor_are_checked_before_any_write() {
    let f = fixture();
    let trust = trust();
    let stale = Policy {
        installed_sequence: Some(7),
        ..Policy::default()
    };
    let mut inst = StreamInstaller::new(&trust, stale, Limits::mcu());
    let mut sink = Vec::new();
    assert_eq!(
        inst.feed(&f.bundle, &mut SliceImage(&f.old), &mut sink)
            .map(|_| ()),
        Err(StreamError::Policy(PolicyError::SequenceNotNewer {
            installed: 7,
            offered: 7
        }))
    );
    assert!(sink.is_empty());

    let mut wrong_old = f.old.clone();
    wrong_old[5] ^= 1;
    let (r, sink) = install(&f.bundle, &wrong_old, 333);
    assert_eq!(r, Err(StreamError::Update(UpdateError::PrecursorMismatch)));
    assert!(sink.is_empty());
    let (r, sink) = install(&f.bundle, &f.old[1..], 333);
    assert_eq!(r, Err(StreamError::Update(UpdateError::PrecursorMismatch)));
    assert!(sink.is_empty());
}

/// Counts reads of the old image.
struct Counting<'a> {
    image: &'a [u8],
    reads: usize,
}

impl OldImage for Counting<'_> {
    fn len(&self) -> u64 {
        self.image.len() as u64
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), ImageIoError> {
        self.reads += 1;
        SliceImage(self.image).read_at(offset, buf)
    }
}

#[test]
fn patch_above_device_budget_is_refused_before_any_read_or_write() {
    let f = fixture();
    let declared = PatchHeader::decode(&f.patch, &Limits::default())
        .unwrap()
        .decoder_memory;
    let trust = trust();
    for (budget, ok) in [(declared - 1, false), (declared, true)] {
        let limits = Limits {
            max_decoder_memory: budget,
            ..Limits::mcu()
        };
        let mut inst = StreamInstaller::new(&trust, policy(), limits);
        let mut old = Counting {
            image: &f.old,
            reads: 0,
        };
        let mut sink = Vec::new();
        let r = inst.feed(&f.bundle, &mut old, &mut sink).map(|_| ());
        if ok {
            assert_eq!(r, Ok(()));
            assert!(inst.finish().is_ok());
            assert!(sink == f.new);
        } else {
            assert_eq!(
                r,
                Err(StreamError::Update(UpdateError::Patch(
                    PatchError::DecoderMemoryOverLimit {
                        declared,
                        limit: budget
                    }
                )))
            );
            assert_eq!(old.reads, 0, "old image read before the budget check");
            assert!(sink.is_empty(), "written before the budget check");
        }
    }
}

#[test]
fn resume_from_every_chunk_boundary_gives_the_same_image() {
    let f = fixture();
    for done in 0..=9u32 {
        for piece in [1, 4096] {
            let mut sink = f.new[..(done as usize * CHUNK as usize).min(f.new.len())].to_vec();
            let r = install_into(&f.bundle, &f.old, piece, Limits::mcu(), done, &mut sink);
            let installed = r.unwrap_or_else(|e| panic!("resume at {done}: {e:?}"));
            assert_eq!(installed.resumed_chunks, done);
            assert_eq!(installed.new_digest, sha256(&f.new));
            assert!(sink == f.new, "resume at {done}: wrong image");
        }
    }
}

#[test]
fn resume_refuses_a_bad_or_missing_written_prefix() {
    let f = fixture();
    let cs = CHUNK as usize;
    // A byte of chunk 1 changed (a torn or corrupted write).
    let mut sink = f.new[..3 * cs].to_vec();
    sink[cs + 17] ^= 1;
    let r = install_into(&f.bundle, &f.old, 500, Limits::mcu(), 3, &mut sink);
    assert_eq!(r, Err(StreamError::ResumeMismatch { chunk: 1 }));
    assert_eq!(
        sink.len(),
        3 * cs,
        "nothing written after a failed resume check"
    );
    // Fewer bytes than the chunks claimed done.
    let mut sink = f.new[..3 * cs - 10].to_vec();
    let r = install_into(&f.bundle, &f.old, 500, Limits::mcu(), 3, &mut sink);
    assert_eq!(
        r,
        Err(StreamError::Update(UpdateError::Patch(PatchError::Io(
            ImageIoError::OutOfBounds
        ))))
    );
    // Past the end.
    let mut sink = f.new.clone();
    let r = install_into(&f.bundle, &f.old, 500, Limits::mcu(), 10, &mut sink);
    assert_eq!(r, Err(StreamError::ResumeBeyondEnd { done: 10, total: 9 }));
}

#[test]
fn resumed_chunks_still_stream_through_their_digests() {
    let f = fixture();
    let header = PatchHeader::decode(&f.patch, &Limits::default()).unwrap();
    // Flip a byte inside chunk 0's body: skipped on resume, but its stored
    // digest (and the payload digest) still catch it.
    let body0 = header.chunk_body_range(0).unwrap();
    let payload_at = f.bundle.len() - f.patch.len();
    let mut bad = f.bundle.clone();
    bad[payload_at + body0.start + 40] ^= 1;
    let mut sink = f.new[..2 * CHUNK as usize].to_vec();
    let r = install_into(&bad, &f.old, 100, Limits::mcu(), 2, &mut sink);
    assert_eq!(
        r,
        Err(StreamError::Update(UpdateError::Patch(
            PatchError::ChunkDigestMismatch { chunk: 0 }
        )))
    );
}

#[test]
fn empty_new_image_and_identical_images() {
    let old = noise(5000, 3);
    let f = fixture_with(old.clone(), Vec::new(), 9);
    let (r, sink) = install(&f.bundle, &f.old, 3);
    assert_eq!(r.unwrap().chunks, 0);
    assert!(sink.is_empty());
    let f = fixture_with(old.clone(), old, 9);
    let (r, sink) = install(&f.bundle, &f.old, 64);
    assert_eq!(r.unwrap().chunks, 2);
    assert!(sink == f.new);
}
