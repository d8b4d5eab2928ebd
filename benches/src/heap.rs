//! Heap high-water of a full streaming install, measured with `dhat`.
//!
//! [`stream_install_peak`] builds a signed bundle from an old and a new
//! image, then installs it as a device would: the bundle is fed to
//! [`StreamInstaller`] in small pieces, the old image is read through
//! [`OldImage`] (from memory allocated before the measurement starts) and
//! the new image goes to a sink that only hashes it. The peak is dhat's
//! `max_bytes` over the install alone, so it counts exactly what the
//! installer allocates. The binary (or test) must use `dhat::Alloc` as its
//! global allocator.

use deltaseal_diff::{DiffOptions, diff};
use deltaseal_sign::{ImageRef, ReleaseInput, build_bundle};
use deltaseal_verify::bundle::Policy;
use deltaseal_verify::digest::{Digest, Sha256, sha256};
use deltaseal_verify::patch::{
    ImageIoError, ImageSink, Limits, PatchHeader, SliceImage, index_digest,
};
use deltaseal_verify::root::TrustRoot;
use deltaseal_verify::stream::{ReadBack, StreamInstaller, memory_bound};
use ed25519_dalek::SigningKey;

/// Bundle bytes handed to the installer per `feed` call (a radio packet).
pub const PIECE: usize = 256;

/// What one measured install found.
#[derive(Clone, Copy, Debug)]
pub struct StreamHeap {
    /// Heap high-water of the install, bytes.
    pub peak: u64,
    /// `decoder_memory` the patch declared.
    pub declared: u64,
    /// [`memory_bound`] for the patch: declared memory plus the installer's
    /// documented overhead.
    pub bound: u64,
    /// Chunks in the patch.
    pub chunks: u32,
    /// Patch (payload) bytes.
    pub patch_len: usize,
    /// Bundle bytes.
    pub bundle_len: usize,
    /// Limits the install ran under were [`Limits::mcu`] (else the host defaults).
    pub mcu_limits: bool,
}

/// A sink that hashes and counts the new image without keeping it.
#[derive(Default)]
struct HashSink {
    hash: Sha256,
    len: u64,
}

impl ImageSink for HashSink {
    fn write(&mut self, buf: &[u8]) -> Result<(), ImageIoError> {
        self.hash.update(buf);
        self.len += buf.len() as u64;
        Ok(())
    }
}

impl ReadBack for HashSink {
    fn read_back(&mut self, _offset: u64, _buf: &mut [u8]) -> Result<(), ImageIoError> {
        Err(ImageIoError::Read) // a fresh install never reads back
    }
}

/// Diffs `old` → `new` with `opts`, then [`stream_install_peak_of`].
pub fn stream_install_peak(old: &[u8], new: &[u8], opts: &DiffOptions) -> StreamHeap {
    let patch = diff(old, new, opts).expect("diff");
    stream_install_peak_of(old, new, &patch)
}

/// Signs a bundle carrying `patch` (old → new) and measures the heap
/// high-water of a streaming install of it (see the module docs). Uses
/// [`Limits::mcu`] when the patch fits them, else [`Limits::default`].
/// Panics if anything fails or the installed image is not `new`.
pub fn stream_install_peak_of(old: &[u8], new: &[u8], patch: &[u8]) -> StreamHeap {
    let key = SigningKey::from_bytes(&[7; 32]);
    let input = ReleaseInput {
        sequence: 2,
        vendor_id: deltaseal_sign::ids::vendor_id("example.com"),
        class_id: deltaseal_sign::ids::class_id(
            &deltaseal_sign::ids::vendor_id("example.com"),
            "bench",
        ),
        precursor: ImageRef {
            size: old.len() as u64,
            digest: sha256(old),
        },
        target: ImageRef {
            size: new.len() as u64,
            digest: sha256(new),
        },
        patch,
        patch_index_digest: index_digest(patch, &Limits::default()).expect("index digest"),
    };
    let bundle = build_bundle(&input, core::slice::from_ref(&key)).expect("bundle");
    let header = PatchHeader::decode(patch, &Limits::default()).expect("header");
    let mcu_limits = PatchHeader::decode(patch, &Limits::mcu()).is_ok();
    let limits = if mcu_limits {
        Limits::mcu()
    } else {
        Limits::default()
    };
    let trust = TrustRoot::single(key.verifying_key());
    let policy = Policy {
        installed_sequence: Some(1),
        ..Policy::default()
    };
    let mut sink = HashSink::default();

    let profiler = dhat::Profiler::builder().testing().build();
    let mut inst = StreamInstaller::new(&trust, policy, limits);
    for piece in bundle.chunks(PIECE) {
        inst.feed(piece, &mut SliceImage(old), &mut sink)
            .expect("stream install");
    }
    let installed = inst.finish().expect("stream install finish");
    let peak = dhat::HeapStats::get().max_bytes as u64;
    drop(profiler);

    let digest: [u8; 32] = sink.hash.finalize().into();
    assert_eq!(sink.len, new.len() as u64, "installed size");
    assert_eq!(digest, sha256(new), "installed digest");
    assert_eq!(installed.new_digest, digest);
    StreamHeap {
        peak,
        declared: header.decoder_memory,
        bound: memory_bound(&header).expect("memory bound"),
        chunks: installed.chunks,
        patch_len: patch.len(),
        bundle_len: bundle.len(),
        mcu_limits,
    }
}
