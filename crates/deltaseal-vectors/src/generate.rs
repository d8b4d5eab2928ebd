//! The generator: every case, built from fixed seeds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use deltaseal_diff::{Codec, DiffOptions, Level, Transform, diff_with_codec};
use deltaseal_sign::bundle::{
    DEFAULT_COMPONENT_ID, manifest_bytes, protected_header, sig_structure, sign1, suit_digest,
};
use deltaseal_sign::{ImageRef, ReleaseInput, build_bundle, ids};
use deltaseal_verify::bundle::kid;
use deltaseal_verify::bundle::manifest::labels::PAYLOAD_URI;
use deltaseal_verify::digest::sha256;
use deltaseal_verify::patch::{HEADER_LEN, Limits, index_digest};
use ed25519_dalek::{Signer, SigningKey};

use crate::craft::{self, Body, assemble, auth, bstr, ctrl, int, set_le, sign1_raw, text};
use crate::index::{
    Case, CaseKind, CorpusInput, Expect, INDEX_FORMAT, Index, KeyEntry, LimitsName, PolicyEntry,
};
use crate::synth;

/// The MCU corpus pairs used when present: (directory, chunk size).
pub const CORPUS_PAIRS: &[&str] = &["mcu-moondancer", "mcu-cityhub"];

/// Generated vectors: file contents by path relative to the vectors directory
/// (`index.json` included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorSet {
    /// Path → bytes.
    pub files: BTreeMap<String, Vec<u8>>,
    /// The index (also serialised in `files["index.json"]`).
    pub index: Index,
}

/// Why vectors could not be generated or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// The delta engine failed.
    #[error("diff failed for {case}")]
    Diff {
        /// Case being built.
        case: String,
        /// Cause.
        #[source]
        source: deltaseal_diff::DiffError,
    },
    /// Bundle signing failed.
    #[error("bundle building failed for {case}")]
    Sign {
        /// Case being built.
        case: String,
        /// Cause.
        #[source]
        source: deltaseal_sign::SignError,
    },
    /// A trust root could not be built.
    #[error("trust root building failed for {case}")]
    Root {
        /// Case being built.
        case: String,
        /// Cause.
        #[source]
        source: deltaseal_sign::root::RootBuildError,
    },
    /// A corpus file could not be read.
    #[error("cannot read corpus file {path}")]
    Corpus {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Writing the vectors failed.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// The named test keys: seed = SHA-256("deltaseal-testvectors key <name>").
pub fn test_key(name: &str) -> SigningKey {
    SigningKey::from_bytes(&sha256(
        format!("deltaseal-testvectors key {name}").as_bytes(),
    ))
}

const KEY_NAMES: &[&str] = &["release_a", "release_b", "release_c", "release_d"];
const VENDOR: &str = "vectors.deltaseal.example";
const CLASS: &str = "board-a";
const SEQUENCE: u64 = 7;

impl VectorSet {
    /// Writes every file under `dir` (creating directories).
    pub fn write(&self, dir: &Path) -> Result<(), GenerateError> {
        for (rel, bytes) in &self.files {
            let path = dir.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|source| GenerateError::Write {
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            std::fs::write(&path, bytes).map_err(|source| GenerateError::Write { path, source })?;
        }
        Ok(())
    }
}

enum Exp<'a> {
    Ok(&'a [u8]),
    Err(&'static str),
}

struct Old {
    path: String,
    sha256: String,
}

#[derive(Default)]
struct Gen {
    files: BTreeMap<String, Vec<u8>>,
    cases: Vec<Case>,
}

impl Gen {
    fn image(&mut self, name: &str, bytes: &[u8]) -> Old {
        let path = format!("images/{name}.bin");
        self.files.insert(path.clone(), bytes.to_vec());
        Old {
            path,
            sha256: hex::encode(sha256(bytes)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn case(
        &mut self,
        kind: CaseKind,
        name: &str,
        input: Vec<u8>,
        old: &Old,
        limits: LimitsName,
        trusted: &[&str],
        policy: Option<&str>,
        expect: Exp<'_>,
        comment: &str,
    ) {
        let input_path = match kind {
            CaseKind::Patch => format!("patch/{name}.dsp"),
            CaseKind::Bundle => format!("bundle/{name}.bundle"),
        };
        self.files.insert(input_path.clone(), input);
        let expect = match expect {
            Exp::Ok(new) => Expect::Ok {
                new_size: new.len() as u64,
                new_sha256: hex::encode(sha256(new)),
            },
            Exp::Err(e) => Expect::Error {
                error: e.to_string(),
            },
        };
        self.cases.push(Case {
            name: name.to_string(),
            kind,
            input: input_path,
            old: old.path.clone(),
            old_sha256: old.sha256.clone(),
            limits,
            trusted_keys: trusted.iter().map(|s| s.to_string()).collect(),
            roots: Vec::new(),
            policy: policy.map(str::to_string),
            expect,
            comment: comment.to_string(),
        });
    }

    fn patch(
        &mut self,
        name: &str,
        patch: Vec<u8>,
        old: &Old,
        limits: LimitsName,
        expect: Exp<'_>,
        comment: &str,
    ) {
        self.case(
            CaseKind::Patch,
            name,
            patch,
            old,
            limits,
            &[],
            None,
            expect,
            comment,
        );
    }

    fn bundle(
        &mut self,
        name: &str,
        bundle: Vec<u8>,
        old: &Old,
        policy: &str,
        expect: Exp<'_>,
        comment: &str,
    ) {
        self.case(
            CaseKind::Bundle,
            name,
            bundle,
            old,
            LimitsName::Default,
            &["release_a"],
            Some(policy),
            expect,
            comment,
        );
    }
}

fn opts(level: Level, chunk_size: u32) -> DiffOptions {
    DiffOptions {
        level,
        threads: 2,
        chunk_size,
        ..DiffOptions::default()
    }
}

fn make_patch(
    name: &str,
    old: &[u8],
    new: &[u8],
    o: &DiffOptions,
    codec: Codec,
) -> Result<Vec<u8>, GenerateError> {
    diff_with_codec(old, new, o, codec).map_err(|source| GenerateError::Diff {
        case: name.to_string(),
        source,
    })
}

/// Builds every vector. Corpus pairs are read from `corpus_dir` when given
/// and present; their images are never put in the output.
pub fn generate(corpus_dir: Option<&Path>) -> Result<VectorSet, GenerateError> {
    let mut g = Gen::default();
    let mut corpus_inputs = Vec::new();

    // ---- images ----
    let small_old = synth::firmware(1, 2048);
    let small_new = synth::edit(2, &small_old);
    let mut small_old_flipped = small_old.clone();
    small_old_flipped[1000] ^= 1;
    let syn_old = synth::firmware(11, 24 * 1024);
    let syn_new = synth::edit(12, &syn_old);
    let o_small = g.image("small_old", &small_old);
    let o_small_new = g.image("small_new", &small_new);
    let o_flipped = g.image("small_old_flipped", &small_old_flipped);
    let o_syn = g.image("synth_old", &syn_old);
    let o_empty = g.image("empty", &[]);

    positive_patches(
        &mut g, &syn_old, &syn_new, &o_syn, &small_old, &o_small, &o_empty,
    )?;

    // ---- corpus pairs ----
    if let Some(dir) = corpus_dir {
        for pair in CORPUS_PAIRS {
            let old_path = dir.join(pair).join("old.bin");
            let new_path = dir.join(pair).join("new.bin");
            if !old_path.is_file() || !new_path.is_file() {
                continue;
            }
            let read = |p: &Path| {
                std::fs::read(p).map_err(|source| GenerateError::Corpus {
                    path: p.to_path_buf(),
                    source,
                })
            };
            let (old, new) = (read(&old_path)?, read(&new_path)?);
            for (file, bytes) in [("old.bin", &old), ("new.bin", &new)] {
                corpus_inputs.push(CorpusInput {
                    path: format!("{pair}/{file}"),
                    size: bytes.len() as u64,
                    sha256: hex::encode(sha256(bytes)),
                });
            }
            let old_ref = Old {
                path: format!("corpus:{pair}/old.bin"),
                sha256: hex::encode(sha256(&old)),
            };
            let name = format!("patch_zstd_mcu_{}", pair.trim_start_matches("mcu-"));
            let p = make_patch(
                &name,
                &old,
                &new,
                &DiffOptions {
                    threads: 2,
                    ..DiffOptions::mcu()
                },
                Codec::Zstd,
            )?;
            let short = pair.trim_start_matches("mcu-");
            let bundle_name = format!("bundle_mcu_{short}");
            let bundle = build_bundle(&release_input(&old, &new, &p), &[test_key("release_a")])
                .map_err(|source| GenerateError::Sign {
                    case: bundle_name.clone(),
                    source,
                })?;
            g.patch(
                &name,
                p,
                &old_ref,
                LimitsName::Mcu,
                Exp::Ok(&new),
                "a real MCU firmware update (public corpus pair) with the mcu profile's 4 KiB zstd chunks applies within Limits::mcu()",
            );
            g.case(
                CaseKind::Bundle,
                &bundle_name,
                bundle,
                &old_ref,
                LimitsName::Mcu,
                &["release_a"],
                Some("device"),
                Exp::Ok(&new),
                &format!("a signed bundle carrying patch_zstd_mcu_{short} (sequence 7 over installed 6, right vendor and class) is authenticated, approved and applied to the real MCU image within Limits::mcu()"),
            );
        }
    }

    crafted_patches(&mut g, &small_old, &o_small, &o_syn, &o_flipped)?;
    bundles(&mut g, &small_old, &small_new, &o_small, &o_small_new)?;
    roots(&mut g, &small_old, &small_new, &o_small)?;

    let keys = KEY_NAMES
        .iter()
        .map(|n| {
            let k = test_key(n);
            KeyEntry {
                name: n.to_string(),
                seed: hex::encode(k.to_bytes()),
                public: hex::encode(k.verifying_key().to_bytes()),
                kid: hex::encode(kid(&k.verifying_key())),
            }
        })
        .collect();
    let vendor = ids::vendor_id(VENDOR);
    let class = ids::class_id(&vendor, CLASS);
    let other_vendor = ids::vendor_id("other.example");
    let other_class = ids::class_id(&vendor, "board-b");
    let policy = |name: &str, seq: u64, v: &[u8; 16], c: &[u8; 16]| PolicyEntry {
        name: name.to_string(),
        installed_sequence: Some(seq),
        vendor_id: Some(hex::encode(v)),
        class_id: Some(hex::encode(c)),
    };
    let policies = vec![
        policy("device", SEQUENCE - 1, &vendor, &class),
        policy("device_at_same_sequence", SEQUENCE, &vendor, &class),
        policy("device_at_newer_sequence", SEQUENCE + 1, &vendor, &class),
        policy("device_at_max_sequence", u64::MAX, &vendor, &class),
        policy("device_other_vendor", SEQUENCE - 1, &other_vendor, &class),
        policy("device_other_class", SEQUENCE - 1, &vendor, &other_class),
        PolicyEntry {
            name: "device_unconstrained".to_string(),
            installed_sequence: None,
            vendor_id: None,
            class_id: None,
        },
    ];

    let index = Index {
        format: INDEX_FORMAT.to_string(),
        generator: "deltaseal vectors generate (crates/deltaseal-vectors)".to_string(),
        keys,
        policies,
        corpus_inputs,
        cases: g.cases,
    };
    let mut json = serde_json::to_string_pretty(&index).unwrap_or_default();
    json.push('\n');
    g.files.insert("index.json".to_string(), json.into_bytes());
    Ok(VectorSet {
        files: g.files,
        index,
    })
}

fn positive_patches(
    g: &mut Gen,
    syn_old: &[u8],
    syn_new: &[u8],
    o_syn: &Old,
    small_old: &[u8],
    o_small: &Old,
    o_empty: &Old,
) -> Result<(), GenerateError> {
    let name = "patch_none_synthetic";
    let p = make_patch(
        name,
        syn_old,
        syn_new,
        &opts(Level::Default, 8192),
        Codec::None,
    )?;
    g.patch(
        name,
        p,
        o_syn,
        LimitsName::Default,
        Exp::Ok(syn_new),
        "codec none (raw streams): a firmware-like edit with inserted, deleted and moved blocks and shifted branch targets, 3 chunks of 8 KiB",
    );
    for (level, lname) in [
        (Level::Fast, "fast"),
        (Level::Default, "default"),
        (Level::Max, "max"),
    ] {
        let name = format!("patch_zstd_{lname}_synthetic");
        let p = make_patch(&name, syn_old, syn_new, &opts(level, 8192), Codec::Zstd)?;
        g.patch(
            &name,
            p,
            o_syn,
            LimitsName::Default,
            Exp::Ok(syn_new),
            &format!("codec zstd at level {lname}: the same edit as patch_none_synthetic, 3 chunks of 8 KiB"),
        );
    }
    // New bytes made of short runs of the old image (too short and too
    // scattered for control triples): the extra stream is compressed against
    // an old-image reference.
    let referenced_new: Vec<u8> = (0..600)
        .flat_map(|i: usize| {
            let at = (i * 331) % (syn_old.len() - 64);
            let mut run = syn_old[at..at + 10 + i % 5].to_vec();
            run.push(i as u8);
            run
        })
        .collect();
    let name = "patch_zstd_extra_reference";
    let p = make_patch(
        name,
        syn_old,
        &referenced_new,
        &opts(Level::Default, 32 * 1024),
        Codec::Zstd,
    )?;
    g.patch(
        name,
        p,
        o_syn,
        LimitsName::Default,
        Exp::Ok(&referenced_new),
        "codec zstd with extra stream references: new bytes are short runs copied from all over the old image, so each chunk's extra frame is decoded with old[ref_offset..ref_offset + ref_len] as its raw-content dictionary",
    );
    // Relinked code: calls across an insertion change their displacement;
    // the transform predicts them from where their targets moved.
    for (transform, tname) in [(Transform::X86, "x86"), (Transform::Thumb2, "thumb2")] {
        let (old, new) = synth::relinked(17, 20 * 1024, transform);
        let name = format!("patch_zstd_{tname}_relinked");
        let options = DiffOptions {
            transform: Some(transform),
            ..opts(Level::Default, 8192)
        };
        let p = make_patch(&name, &old, &new, &options, Codec::Zstd)?;
        let o = g.image(&format!("{tname}_relinked_old"), &old);
        g.patch(
            &name,
            p,
            &o,
            LimitsName::Default,
            Exp::Ok(&new),
            &format!("version 4 with transform {tname}: code whose calls cross an inserted block, relinked; the diff stream holds each call's difference from its predicted displacement"),
        );
    }
    let name = "patch_xz_max_synthetic";
    let p = make_patch(name, syn_old, syn_new, &opts(Level::Max, 8192), Codec::Xz)?;
    g.patch(
        name,
        p,
        o_syn,
        LimitsName::Default,
        Exp::Ok(syn_new),
        "codec xz (id 2; optional, host appliers only): the same edit as patch_none_synthetic in 4 chunks of 8 KiB; .xz streams (LZMA2 preset 9e), and in chunks 1 and 3 raw LZMA2 extra streams against an 8 KiB old-image reference as preset dictionary (chunk 1: the whole chunk as literals)",
    );
    let name = "patch_zstd_small_chunks_mcu_limits";
    let p = make_patch(
        name,
        syn_old,
        syn_new,
        &opts(Level::Default, 1024),
        Codec::Zstd,
    )?;
    g.patch(
        name,
        p,
        o_syn,
        LimitsName::Mcu,
        Exp::Ok(syn_new),
        "many 1 KiB zstd chunks (one per 1 KiB of output, last one short) apply within Limits::mcu()",
    );
    let name = "patch_zstd_identical_images";
    let p = make_patch(
        name,
        small_old,
        small_old,
        &opts(Level::Default, 1024),
        Codec::Zstd,
    )?;
    g.patch(
        name,
        p,
        o_small,
        LimitsName::Default,
        Exp::Ok(small_old),
        "old == new gives a valid patch made only of copies",
    );
    let name = "patch_zstd_empty_new";
    let p = make_patch(
        name,
        small_old,
        &[],
        &opts(Level::Default, 1024),
        Codec::Zstd,
    )?;
    g.patch(
        name,
        p,
        o_small,
        LimitsName::Default,
        Exp::Ok(&[]),
        "an empty new image has zero chunks and a header-only patch",
    );
    let name = "patch_zstd_empty_old";
    let p = make_patch(
        name,
        &[],
        small_old,
        &opts(Level::Default, 1024),
        Codec::Zstd,
    )?;
    g.patch(
        name,
        p,
        o_empty,
        LimitsName::Default,
        Exp::Ok(small_old),
        "an empty old image: every byte comes from the extra stream",
    );
    Ok(())
}

/// The crafted base: old = small_old, chunk size 18, two chunks:
/// chunk 0 = old[100..116] with byte 5 plus one, then "YZ" from extra;
/// chunk 1 = old[200..212].
fn crafted_new(old: &[u8]) -> Vec<u8> {
    let mut new = old[100..116].to_vec();
    new[5] = new[5].wrapping_add(1);
    new.extend_from_slice(b"YZ");
    new.extend_from_slice(&old[200..212]);
    new
}

fn crafted_chunk0() -> Body {
    let mut diff = vec![0u8; 16];
    diff[5] = 1;
    Body {
        old_offset: 100,
        ctrl: ctrl(&[(16, 2, 0)]),
        diff,
        extra: b"YZ".to_vec(),
        ..Body::default()
    }
}

fn crafted_chunk1() -> Body {
    Body {
        old_offset: 200,
        ctrl: ctrl(&[(12, 0, 0)]),
        diff: vec![0; 12],
        ..Body::default()
    }
}

fn crafted_with(old: &[u8], codec: deltaseal_verify::patch::Codec, chunk0: Vec<u8>) -> Vec<u8> {
    assemble(
        old,
        &crafted_new(old),
        18,
        codec,
        &[chunk0, crafted_chunk1().encode()],
    )
}

fn crafted_patches(
    g: &mut Gen,
    old: &[u8],
    o_small: &Old,
    o_syn: &Old,
    o_flipped: &Old,
) -> Result<(), GenerateError> {
    use LimitsName::{Default as D, Mcu};
    let new = crafted_new(old);
    let base = crafted_with(old, Codec::None, crafted_chunk0().encode());
    let bad = |b: Body| crafted_with(old, Codec::None, b.encode());
    g.patch(
        "patch_crafted_base",
        base.clone(),
        o_small,
        D,
        Exp::Ok(&new),
        "the hand-built two-chunk patch every patch_* negative below is derived from is itself valid",
    );
    let seeks: Vec<(u64, u64, i64)> = (0..1000)
        .flat_map(|_| [(0, 0, 1), (0, 0, -1)])
        .chain([(16, 2, 0)])
        .collect();
    g.patch(
        "patch_control_many_pure_seeks",
        bad(Body {
            ctrl: ctrl(&seeks),
            ..crafted_chunk0()
        }),
        o_small,
        D,
        Exp::Ok(&new),
        "2000 pure-seek triples (add = extra = 0) are allowed and cost time bounded by the control stream length",
    );

    // -- header: truncation classes --
    let t = |n: usize| base[..n].to_vec();
    let cut = [
        (
            "patch_truncated_empty",
            0,
            "patch.BadMagic",
            "an empty patch is refused as not a patch",
        ),
        (
            "patch_truncated_in_magic",
            5,
            "patch.BadMagic",
            "a patch shorter than the 8-byte magic is refused as not a patch",
        ),
        (
            "patch_truncated_in_header",
            60,
            "patch.Truncated",
            "a patch ending inside the 112-byte header is truncated",
        ),
        (
            "patch_truncated_in_chunk_table",
            HEADER_LEN + 100,
            "patch.Truncated",
            "a patch ending inside the chunk table is truncated",
        ),
        (
            "patch_truncated_in_chunk_body",
            base.len() - 1,
            "patch.BodyLengthMismatch",
            "a patch missing the last byte of the last chunk body is refused before any chunk is applied",
        ),
    ];
    for (name, n, err, comment) in cut {
        g.patch(name, t(n), o_small, D, Exp::Err(err), comment);
    }
    let mut p = base.clone();
    p.push(0);
    g.patch(
        "patch_trailing_bytes",
        p,
        o_small,
        D,
        Exp::Err("patch.BodyLengthMismatch"),
        "one byte after the last chunk body is refused (nothing may follow)",
    );

    // -- header: fields --
    type Mutation = (
        &'static str,
        fn(&mut Vec<u8>),
        LimitsName,
        &'static str,
        &'static str,
    );
    let muts: &[Mutation] = &[
        (
            "patch_bad_magic",
            |p| p[7] = b'X',
            D,
            "patch.BadMagic",
            "a wrong magic is refused",
        ),
        (
            "patch_recompressing_magic",
            |p| p[..8].copy_from_slice(b"DSLRECMP"),
            D,
            "patch.Recompressing",
            "the magic of a recompressing patch (LZMA streams re-encoded on apply; docs/format.md) is refused by name: host appliers only",
        ),
        (
            "patch_version_0",
            |p| set_le::<2>(p, 8, 0),
            D,
            "patch.UnsupportedVersion",
            "format version 0 is refused",
        ),
        (
            "patch_version_1",
            |p| set_le::<2>(p, 8, 1),
            D,
            "patch.UnsupportedVersion",
            "format version 1 (fixed zstd memory allowance, not a true bound) is refused",
        ),
        (
            "patch_version_2",
            |p| set_le::<2>(p, 8, 2),
            D,
            "patch.UnsupportedVersion",
            "format version 2 (32-byte chunk body header, no extra stream reference) is refused",
        ),
        (
            "patch_version_5",
            |p| set_le::<2>(p, 8, 5),
            D,
            "patch.UnsupportedVersion",
            "format version 5 is refused",
        ),
        (
            "patch_version_4_transform_unassigned",
            |p| {
                set_le::<2>(p, 8, 4);
                p[11] = 3;
            },
            D,
            "patch.UnknownTransform",
            "in version 4, byte 11 names the transform: id 3 is unassigned and refused",
        ),
        (
            "patch_version_4_transform_none",
            |p| set_le::<2>(p, 8, 4),
            D,
            "patch.UnknownTransform",
            "version 4 must name a transform: a patch without one is version 3 (one byte form per header)",
        ),
        (
            "patch_version_4_x86_image_base",
            |p| {
                set_le::<2>(p, 8, 4);
                p[11] = 1;
                set_le::<4>(p, 108, 0x0800_0000);
            },
            D,
            "patch.ReservedNotZero",
            "in version 4, bytes 108..112 hold an image base for Thumb-2 only; with x86 they must be zero",
        ),
        (
            "patch_codec_unassigned",
            |p| p[10] = 3,
            D,
            "patch.UnknownCodec",
            "codec id 3 (unassigned; 2 is xz, optional) is refused",
        ),
        (
            "patch_codec_unknown",
            |p| p[10] = 0xff,
            D,
            "patch.UnknownCodec",
            "an unknown codec id is refused",
        ),
        (
            "patch_flags_not_zero",
            |p| p[11] = 1,
            D,
            "patch.ReservedNotZero",
            "in version 3, byte 11 (flags) must be zero, even where version 4 would read a transform",
        ),
        (
            "patch_reserved_not_zero",
            |p| p[108] = 1,
            D,
            "patch.ReservedNotZero",
            "a non-zero reserved word is refused",
        ),
        (
            "patch_chunk_size_zero",
            |p| set_le::<4>(p, 12, 0),
            D,
            "patch.BadChunkSize",
            "chunk size 0 is refused (no division by zero)",
        ),
        (
            "patch_chunk_size_over_mcu_limit",
            |p| set_le::<4>(p, 12, 32768),
            Mcu,
            "patch.BadChunkSize",
            "a chunk size over Limits::mcu().max_chunk_size is refused before anything else is trusted",
        ),
        (
            "patch_new_size_2_63",
            |p| set_le::<8>(p, 56, 1 << 63),
            D,
            "patch.OutputTooLarge",
            "a declared new size of 2^63 is refused before any allocation",
        ),
        (
            "patch_new_size_u64_max",
            |p| set_le::<8>(p, 56, u64::MAX),
            D,
            "patch.OutputTooLarge",
            "a declared new size of 2^64-1 is refused without overflow",
        ),
        (
            "patch_old_size_2_63",
            |p| set_le::<8>(p, 16, 1 << 63),
            D,
            "patch.OutputTooLarge",
            "a declared old size of 2^63 is refused before the old image is read",
        ),
        (
            "patch_decoder_memory_2_63",
            |p| set_le::<8>(p, 96, 1 << 63),
            D,
            "patch.DecoderMemoryOverLimit",
            "a declared decoder memory of 2^63 is refused before any allocation",
        ),
        (
            "patch_decoder_memory_over_mcu_limit",
            |p| set_le::<8>(p, 96, (64 << 10) + 1),
            Mcu,
            "patch.DecoderMemoryOverLimit",
            "declared decoder memory one byte over Limits::mcu() is refused",
        ),
        (
            "patch_chunk_count_too_high",
            |p| set_le::<4>(p, 104, 3),
            D,
            "patch.ChunkCountMismatch",
            "a chunk count other than ceil(new_size / chunk_size) is refused",
        ),
        (
            "patch_chunk_count_u32_max",
            |p| set_le::<4>(p, 104, u64::from(u32::MAX)),
            D,
            "patch.ChunkCountMismatch",
            "a chunk count of 2^32-1 is refused before the table is allocated",
        ),
        (
            "patch_stored_len_2_63",
            |p| set_le::<8>(p, HEADER_LEN, 1 << 63),
            D,
            "patch.BodyLengthMismatch",
            "a chunk stored length of 2^63 is refused (bodies must fill the patch exactly)",
        ),
        (
            "patch_stored_len_sum_overflows",
            |p| {
                set_le::<8>(p, HEADER_LEN, u64::MAX - 10);
                set_le::<8>(p, HEADER_LEN + 72, 20);
            },
            D,
            "patch.BodyLengthMismatch",
            "chunk stored lengths whose sum overflows u64 are refused, not wrapped",
        ),
        (
            "patch_chunk_digest_mismatch",
            |p| {
                let n = p.len();
                p[n - 1] ^= 1;
            },
            D,
            "patch.ChunkDigestMismatch",
            "a chunk body that differs from its stored digest is refused before it is parsed",
        ),
        (
            "patch_chunk_memory_over_declared",
            |p| set_le::<8>(p, 96, 10),
            D,
            "patch.ChunkMemoryOverDeclared",
            "a chunk needing more memory than the header declared is refused before decoding",
        ),
        (
            "patch_new_digest_mismatch",
            |p| p[64] ^= 1,
            D,
            "patch.NewImageMismatch",
            "every chunk checks out but the whole-image digest does not: the result is refused",
        ),
        (
            "patch_old_digest_mismatch",
            |p| p[24] ^= 1,
            D,
            "patch.OldImageMismatch",
            "a patch made for another old image (digest) is refused before anything is written",
        ),
        (
            "patch_old_size_mismatch",
            |p| set_le::<8>(p, 16, 2047),
            D,
            "patch.OldImageMismatch",
            "a patch made for an old image of another size is refused before anything is written",
        ),
    ];
    for (name, f, limits, err, comment) in muts {
        let mut p = base.clone();
        f(&mut p);
        g.patch(name, p, o_small, *limits, Exp::Err(err), comment);
    }
    // A header alone can declare more chunks than the MCU table allows.
    let mut h = base[..HEADER_LEN].to_vec();
    set_le::<4>(&mut h, 12, 1);
    set_le::<8>(&mut h, 56, 2048);
    set_le::<4>(&mut h, 104, 2048);
    g.patch(
        "patch_too_many_chunks_mcu",
        h,
        o_small,
        Mcu,
        Exp::Err("patch.TooManyChunks"),
        "2048 one-byte chunks are over Limits::mcu().max_chunks: refused before the table is read",
    );

    // -- old image --
    g.patch(
        "patch_wrong_old_image_size",
        base.clone(),
        o_syn,
        D,
        Exp::Err("patch.OldImageMismatch"),
        "applying to an old image of another size is refused before anything is written",
    );
    g.patch(
        "patch_wrong_old_image_digest",
        base.clone(),
        o_flipped,
        D,
        Exp::Err("patch.OldImageMismatch"),
        "applying to an old image with one bit flipped is refused before anything is written",
    );

    // -- chunk bodies --
    let chunk0 = crafted_chunk0;
    let body_cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "patch_chunk_body_empty",
            Vec::new(),
            "patch.MalformedChunk",
            "a zero-length chunk body (no body header) is malformed",
        ),
        (
            "patch_chunk_body_header_truncated",
            chunk0().encode()[..20].to_vec(),
            "patch.MalformedChunk",
            "a chunk body shorter than its 44-byte header is malformed",
        ),
        (
            "patch_chunk_reference_on_stored_extra",
            bad(Body {
                reference: (0, 4),
                ..chunk0()
            }),
            "patch.MalformedChunk",
            "an old-image reference belongs only to a zstd-compressed extra stream: on a stream stored raw it is malformed",
        ),
        (
            "patch_chunk_stream_lengths_exceed_body",
            bad(Body {
                stored: Some((4, 16, 2)),
                ctrl_len: Some(4),
                ..chunk0()
            }),
            "patch.MalformedChunk",
            "stream stored lengths adding up to more than the body are malformed",
        ),
        (
            "patch_chunk_raw_stream_len_mismatch",
            bad(Body {
                ctrl_len: Some(4),
                ..chunk0()
            }),
            "patch.MalformedChunk",
            "codec none: a stream whose decoded length differs from its stored length is malformed",
        ),
        (
            "patch_chunk_diff_longer_than_output",
            bad(Body {
                ctrl: ctrl(&[(19, 0, 0)]),
                diff: vec![0; 19],
                extra: Vec::new(),
                ..chunk0()
            }),
            "patch.MalformedChunk",
            "a diff stream longer than the chunk's output is refused before decoding",
        ),
        (
            "patch_control_varint_too_long",
            bad(Body {
                ctrl: [vec![0x80; 10], vec![0x01, 2, 0]].concat(),
                ..chunk0()
            }),
            "patch.BadControl",
            "an 11-byte varint in the control stream is refused",
        ),
        (
            "patch_control_varint_non_minimal",
            bad(Body {
                ctrl: vec![0x90, 0x00, 2, 0],
                ..chunk0()
            }),
            "patch.BadControl",
            "a non-minimal varint (trailing zero group) is refused",
        ),
        (
            "patch_control_varint_over_u64",
            bad(Body {
                ctrl: [vec![0xff; 9], vec![0x02, 2, 0]].concat(),
                ..chunk0()
            }),
            "patch.BadControl",
            "a 10-byte varint whose value does not fit in u64 is refused",
        ),
        (
            "patch_control_truncated_triple",
            bad(Body {
                ctrl: vec![16, 2],
                ..chunk0()
            }),
            "patch.BadControl",
            "a control stream ending inside a triple is refused",
        ),
        (
            "patch_control_seek_before_old_start",
            bad(Body {
                old_offset: 0,
                ctrl: ctrl(&[(0, 0, -1), (16, 2, 0)]),
                ..chunk0()
            }),
            "patch.OldReadOutOfBounds",
            "a seek to before the start of the old image is refused",
        ),
        (
            "patch_control_seek_i64_max",
            bad(Body {
                ctrl: ctrl(&[(0, 0, i64::MAX), (0, 0, i64::MAX), (16, 2, 0)]),
                ..chunk0()
            }),
            "patch.OldReadOutOfBounds",
            "seeks of i64::MAX are refused without overflow",
        ),
        (
            "patch_control_old_offset_past_end",
            bad(Body {
                old_offset: 2049,
                ..chunk0()
            }),
            "patch.OldReadOutOfBounds",
            "a chunk old offset past the end of the old image is refused",
        ),
        (
            "patch_control_old_offset_u64_max",
            bad(Body {
                old_offset: u64::MAX,
                ..chunk0()
            }),
            "patch.OldReadOutOfBounds",
            "a chunk old offset of 2^64-1 is refused without overflow",
        ),
        (
            "patch_control_read_past_old_end",
            bad(Body {
                old_offset: 2040,
                ..chunk0()
            }),
            "patch.OldReadOutOfBounds",
            "an add that reads past the end of the old image is refused",
        ),
        (
            "patch_control_add_past_output",
            bad(Body {
                ctrl: ctrl(&[(16, 2, 0), (1, 0, 0)]),
                diff: vec![0; 17],
                ..chunk0()
            }),
            "patch.OutputOverrun",
            "an add writing past the chunk's output is refused",
        ),
        (
            "patch_control_extra_past_output",
            bad(Body {
                ctrl: ctrl(&[(16, 3, 0)]),
                extra: b"YZW".to_vec(),
                ..chunk0()
            }),
            "patch.OutputOverrun",
            "an extra copy writing past the chunk's output is refused",
        ),
        (
            "patch_control_add_u64_max",
            bad(Body {
                ctrl: ctrl(&[(u64::MAX, 0, 0)]),
                ..chunk0()
            }),
            "patch.OutputOverrun",
            "an add of 2^64-1 bytes is refused without overflow or allocation",
        ),
        (
            "patch_control_extra_u64_max",
            bad(Body {
                ctrl: ctrl(&[(0, u64::MAX, 0)]),
                ..chunk0()
            }),
            "patch.OutputOverrun",
            "an extra copy of 2^64-1 bytes is refused without overflow or allocation",
        ),
        (
            "patch_control_extra_stream_short",
            bad(Body {
                extra: b"Y".to_vec(),
                ..chunk0()
            }),
            "patch.ChunkIncomplete",
            "an extra copy needing more bytes than the extra stream holds is refused",
        ),
        (
            "patch_control_output_short",
            bad(Body {
                ctrl: ctrl(&[(16, 0, 0)]),
                extra: Vec::new(),
                ..chunk0()
            }),
            "patch.ChunkIncomplete",
            "a control stream that ends before the chunk's output is complete is refused",
        ),
        (
            "patch_control_empty",
            bad(Body {
                ctrl: Vec::new(),
                diff: Vec::new(),
                extra: Vec::new(),
                ..chunk0()
            }),
            "patch.ChunkIncomplete",
            "an empty control stream produces nothing: refused",
        ),
        (
            "patch_chunk_unused_diff_bytes",
            bad(Body {
                diff: [vec![0u8; 5], vec![1], vec![0; 11]].concat(),
                ..chunk0()
            }),
            "patch.ChunkIncomplete",
            "diff bytes left unused at the end of a chunk are refused",
        ),
        (
            "patch_chunk_unused_extra_bytes",
            bad(Body {
                extra: b"YZW".to_vec(),
                ..chunk0()
            }),
            "patch.ChunkIncomplete",
            "extra bytes left unused at the end of a chunk are refused",
        ),
        (
            "patch_output_digest_mismatch",
            bad(Body {
                diff: [vec![0u8; 5], vec![2], vec![0; 10]].concat(),
                ..chunk0()
            }),
            "patch.OutputDigestMismatch",
            "a chunk producing other bytes than its output digest is refused before they are written",
        ),
    ];
    for (name, p, err, comment) in body_cases {
        // Entries given as a bare body (not yet a whole patch) are wrapped.
        let p = if p.len() < HEADER_LEN {
            crafted_with(old, Codec::None, p)
        } else {
            p
        };
        g.patch(name, p, o_small, D, Exp::Err(err), comment);
    }
    // zstd streams
    let z = |b: Body| crafted_with(old, Codec::Zstd, b.encode());
    g.patch(
        "patch_zstd_stream_not_a_frame",
        z(Body {
            ctrl: vec![0xde, 0xad, 0xbe, 0xef],
            ctrl_len: Some(8),
            ..chunk0()
        }),
        o_small,
        D,
        Exp::Err("patch.Decompress"),
        "codec zstd: a compressed stream that is not a zstd frame is refused",
    );
    g.patch(
        "patch_zstd_stored_longer_than_len",
        z(Body {
            ctrl_len: Some(2),
            ..chunk0()
        }),
        o_small,
        D,
        Exp::Err("patch.MalformedChunk"),
        "codec zstd: a stream stored longer than its decoded length is malformed",
    );
    Ok(())
}

struct Signed {
    manifest: Vec<u8>,
    digest: Vec<u8>,
    sign1s: Vec<Vec<u8>>,
}

fn sign_manifest(manifest: Vec<u8>, keys: &[&SigningKey]) -> Signed {
    let digest = suit_digest(&manifest);
    let sign1s = keys
        .iter()
        .map(|k| {
            let protected = protected_header(&kid(&k.verifying_key()));
            let sig = k.sign(&sig_structure(&protected, &digest));
            sign1(&protected, &sig.to_bytes())
        })
        .collect();
    Signed {
        manifest,
        digest,
        sign1s,
    }
}

/// `(key 2, auth)`, `(key 3, manifest)`, `("#patch", payload)`.
fn entries(s: &Signed, payload: Option<&[u8]>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut e = vec![
        (int(2), auth(&s.digest, &s.sign1s)),
        (int(3), bstr(&s.manifest)),
    ];
    if let Some(p) = payload {
        e.push((text(PAYLOAD_URI), bstr(p)));
    }
    e
}

/// The release every positive bundle case signs: sequence [`SEQUENCE`],
/// the test vendor and class, `patch` from `old` to `new`.
fn release_input<'a>(old: &[u8], new: &[u8], patch: &'a [u8]) -> ReleaseInput<'a> {
    let vendor = ids::vendor_id(VENDOR);
    ReleaseInput {
        sequence: SEQUENCE,
        vendor_id: vendor,
        class_id: ids::class_id(&vendor, CLASS),
        precursor: ImageRef {
            size: old.len() as u64,
            digest: sha256(old),
        },
        target: ImageRef {
            size: new.len() as u64,
            digest: sha256(new),
        },
        patch,
        patch_index_digest: index_digest(patch, &Limits::default()).unwrap_or_default(),
    }
}

fn bundles(
    g: &mut Gen,
    old: &[u8],
    new: &[u8],
    o_small: &Old,
    o_small_new: &Old,
) -> Result<(), GenerateError> {
    let key_a = test_key("release_a");
    let key_b = test_key("release_b");
    let patch = make_patch(
        "bundle_single_signer",
        old,
        new,
        &opts(Level::Default, 1024),
        Codec::Zstd,
    )?;
    let input = release_input(old, new, &patch);
    let build = |name: &str, input: &ReleaseInput<'_>, keys: &[SigningKey]| {
        build_bundle(input, keys).map_err(|source| GenerateError::Sign {
            case: name.to_string(),
            source,
        })
    };
    let manifest = |input: &ReleaseInput<'_>| {
        manifest_bytes(input, DEFAULT_COMPONENT_ID).map_err(|source| GenerateError::Sign {
            case: "manifest".to_string(),
            source,
        })
    };
    let base = build(
        "bundle_single_signer",
        &input,
        core::slice::from_ref(&key_a),
    )?;
    let m = manifest(&input)?;
    let signed = sign_manifest(m.clone(), &[&key_a]);
    // The hand-assembled envelope must be the builder's, byte for byte.
    debug_assert_eq!(craft::envelope(&entries(&signed, Some(&patch))), base);

    // ---- positive ----
    g.bundle("bundle_single_signer", base.clone(), o_small, "device", Exp::Ok(new), "a bundle signed by the one trusted key, sequence 7 over installed 6, right vendor and class, applies to the precursor");
    let two = build(
        "bundle_two_signers_one_trusted",
        &input,
        &[key_b.clone(), key_a.clone()],
    )?;
    g.bundle(
        "bundle_two_signers_one_trusted",
        two,
        o_small,
        "device",
        Exp::Ok(new),
        "a signature by an untrusted key next to a trusted one does not prevent acceptance",
    );
    g.bundle("bundle_policy_unconstrained", base.clone(), o_small, "device_unconstrained", Exp::Ok(new), "with no installed sequence, vendor or class constraint, only signature and digests are checked");

    // ---- signature ----
    let by_b = build("bundle_wrong_key", &input, core::slice::from_ref(&key_b))?;
    g.bundle(
        "bundle_wrong_key",
        by_b,
        o_small,
        "device",
        Exp::Err("signature.NoTrustedSignature"),
        "threat: forged bundle, a valid signature by a key the device does not trust is refused",
    );
    let mut bad_sig = signed.sign1s[0].clone();
    let n = bad_sig.len();
    bad_sig[n - 1] ^= 1;
    let s = Signed {
        sign1s: vec![bad_sig],
        ..sign_manifest(m.clone(), &[])
    };
    g.bundle(
        "bundle_bad_signature",
        craft::envelope(&entries(&s, Some(&patch))),
        o_small,
        "device",
        Exp::Err("signature.NoTrustedSignature"),
        "threat: tampered signature, one flipped bit in the Ed25519 signature is refused",
    );
    let s = sign_manifest(m.clone(), &[]);
    g.bundle(
        "bundle_no_signatures",
        craft::envelope(&entries(&s, Some(&patch))),
        o_small,
        "device",
        Exp::Err("signature.NoSignatures"),
        "an authentication wrapper with the manifest digest but no COSE_Sign1 is refused",
    );
    let m8 = manifest(&ReleaseInput {
        sequence: SEQUENCE + 1,
        ..input
    })?;
    let mut tampered = entries(&signed, Some(&patch));
    tampered[1].1 = bstr(&m8);
    g.bundle("bundle_manifest_tampered", craft::envelope(&tampered), o_small, "device", Exp::Err("signature.ManifestDigestMismatch"), "threat: tampered manifest, a manifest that is not the one the signed digest names is refused");
    let sig_by_b_kid_a = {
        let protected = protected_header(&kid(&key_a.verifying_key()));
        let sig = key_b.sign(&sig_structure(&protected, &signed.digest));
        sign1(&protected, &sig.to_bytes())
    };
    let s = Signed {
        sign1s: vec![sig_by_b_kid_a],
        ..sign_manifest(m.clone(), &[])
    };
    g.bundle(
        "bundle_kid_of_trusted_key_signed_by_other",
        craft::envelope(&entries(&s, Some(&patch))),
        o_small,
        "device",
        Exp::Err("signature.NoTrustedSignature"),
        "a signature naming the trusted key's kid but made by another key is refused",
    );

    // ---- policy ----
    let pol = [
        (
            "bundle_sequence_equal",
            "device_at_same_sequence",
            "policy.SequenceNotNewer",
            "threat: replay, a bundle whose sequence equals the installed one is refused",
        ),
        (
            "bundle_sequence_older",
            "device_at_newer_sequence",
            "policy.SequenceNotNewer",
            "threat: rollback, a bundle older than the installed sequence is refused",
        ),
        (
            "bundle_sequence_installed_u64_max",
            "device_at_max_sequence",
            "policy.SequenceNotNewer",
            "nothing is newer than installed sequence 2^64-1 (no wrap)",
        ),
        (
            "bundle_vendor_mismatch",
            "device_other_vendor",
            "policy.VendorMismatch",
            "threat: wrong device, a bundle for another vendor is refused",
        ),
        (
            "bundle_class_mismatch",
            "device_other_class",
            "policy.ClassMismatch",
            "threat: wrong device, a bundle for another device class is refused",
        ),
    ];
    for (name, policy, err, comment) in pol {
        g.bundle(name, base.clone(), o_small, policy, Exp::Err(err), comment);
    }

    // ---- payload and apply ----
    g.bundle(
        "bundle_payload_missing",
        craft::envelope(&entries(&signed, None)),
        o_small,
        "device",
        Exp::Err("policy.PayloadMissing"),
        "a bundle without the integrated payload cannot be applied",
    );
    let mut flipped = patch.clone();
    flipped[200] ^= 1;
    g.bundle(
        "bundle_payload_tampered",
        craft::envelope(&entries(&signed, Some(&flipped))),
        o_small,
        "device",
        Exp::Err("policy.PayloadDigestMismatch"),
        "threat: tampered payload, one flipped bit is refused before the patch parser sees it",
    );
    let mut longer = patch.clone();
    longer.push(0);
    g.bundle(
        "bundle_payload_extended",
        craft::envelope(&entries(&signed, Some(&longer))),
        o_small,
        "device",
        Exp::Err("policy.PayloadSizeMismatch"),
        "a payload longer than the signed size is refused before it is hashed or parsed",
    );
    g.bundle("bundle_wrong_old_image", base.clone(), o_small_new, "device", Exp::Err("update.PrecursorMismatch"), "threat: wrong precursor, the update is refused on another old image before anything is written");
    let wrong_index = build(
        "bundle_patch_index_mismatch",
        &ReleaseInput {
            patch_index_digest: [0; 32],
            ..input
        },
        core::slice::from_ref(&key_a),
    )?;
    g.bundle(
        "bundle_patch_index_mismatch",
        wrong_index,
        o_small,
        "device",
        Exp::Err("update.PatchManifestMismatch"),
        "a patch whose index digest differs from the signed one is refused",
    );
    let wrong_target = build(
        "bundle_target_digest_mismatch",
        &ReleaseInput {
            target: ImageRef {
                size: new.len() as u64,
                digest: [0; 32],
            },
            ..input
        },
        core::slice::from_ref(&key_a),
    )?;
    g.bundle("bundle_target_digest_mismatch", wrong_target, o_small, "device", Exp::Err("update.PatchManifestMismatch"), "threat: corrupt output, a patch producing another image than the signed target digest is refused");

    // ---- decode: envelope ----
    let dec = |g: &mut Gen, name: &str, bytes: Vec<u8>, err: &'static str, comment: &str| {
        g.bundle(name, bytes, o_small, "device", Exp::Err(err), comment);
    };
    let manifest_start = 2 + 1 + 1 + auth(&signed.digest, &signed.sign1s).len();
    for (name, n, comment) in [
        ("bundle_truncated_empty", 0, "an empty bundle is truncated"),
        (
            "bundle_truncated_in_tag",
            1,
            "a bundle ending inside the envelope tag is truncated",
        ),
        (
            "bundle_truncated_after_map_head",
            3,
            "a bundle ending after the envelope map head is truncated",
        ),
        (
            "bundle_truncated_in_auth",
            40,
            "a bundle ending inside the authentication wrapper is truncated",
        ),
        (
            "bundle_truncated_in_manifest",
            manifest_start + 50,
            "a bundle ending inside the manifest is truncated",
        ),
        (
            "bundle_truncated_in_payload",
            base.len() - 1,
            "a bundle missing the last payload byte is truncated",
        ),
    ] {
        dec(g, name, base[..n].to_vec(), "decode.Truncated", comment);
    }
    let mut p = base.clone();
    p.push(0);
    dec(
        g,
        "bundle_trailing_bytes",
        p,
        "decode.TrailingBytes",
        "one byte after the envelope is refused",
    );
    dec(
        g,
        "bundle_untagged",
        base[2..].to_vec(),
        "decode.UnexpectedType",
        "an envelope without tag 107 is refused",
    );
    let mut p = base.clone();
    p[1] = 108;
    dec(
        g,
        "bundle_wrong_tag",
        p,
        "decode.WrongTag",
        "an envelope with tag 108 instead of 107 is refused",
    );
    let e = entries(&signed, Some(&patch));
    let mut indef = vec![0xd8, 0x6b, 0xbf];
    for (k, v) in &e {
        indef.extend_from_slice(k);
        indef.extend_from_slice(v);
    }
    indef.push(0xff);
    dec(
        g,
        "bundle_indefinite_length_map",
        indef,
        "decode.IndefiniteLength",
        "an indefinite-length envelope map is refused",
    );
    dec(
        g,
        "bundle_duplicate_map_key",
        craft::envelope(&[e[0].clone(), e[1].clone(), e[1].clone()]),
        "decode.DuplicateKey",
        "an envelope with the manifest key twice (within the 3-entry limit) is refused (no duplicate CBOR map keys)",
    );
    dec(
        g,
        "bundle_unsorted_map_keys",
        craft::envelope(&[e[1].clone(), e[0].clone(), e[2].clone()]),
        "decode.UnsortedKeys",
        "envelope keys out of deterministic order are refused",
    );
    dec(
        g,
        "bundle_non_canonical_key",
        craft::envelope(&[
            (vec![0x18, 0x02], e[0].1.clone()),
            e[1].clone(),
            e[2].clone(),
        ]),
        "decode.NonCanonical",
        "a map key not in shortest form (0x18 0x02 for 2) is refused",
    );
    dec(
        g,
        "bundle_severable_member",
        craft::envelope(&[e[0].clone(), e[1].clone(), (int(16), bstr(&[0x80]))]),
        "decode.UnexpectedField",
        "an envelope member deltaseal does not define (severable text, key 16) is refused",
    );
    dec(
        g,
        "bundle_payload_wrong_uri",
        craft::envelope(&[e[0].clone(), e[1].clone(), (text("#other"), bstr(&patch))]),
        "decode.UnexpectedField",
        "an integrated payload under another name than the manifest's URI is refused",
    );
    dec(
        g,
        "bundle_manifest_missing",
        craft::envelope(&[e[0].clone(), e[2].clone()]),
        "decode.MissingField",
        "an envelope without a manifest is refused",
    );
    let mut nine = e.clone();
    nine[0].1 = auth(&signed.digest, &vec![signed.sign1s[0].clone(); 9]);
    dec(
        g,
        "bundle_too_many_signatures",
        craft::envelope(&nine),
        "decode.TooLarge",
        "more than 8 COSE_Sign1 blocks are refused before any is verified",
    );
    let mut alg = e.clone();
    let mut wrong_alg_digest = signed.digest.clone();
    wrong_alg_digest[1] = 0x30; // -17 instead of -16
    alg[0].1 = auth(&wrong_alg_digest, &signed.sign1s);
    dec(
        g,
        "bundle_suit_digest_alg_unsupported",
        craft::envelope(&alg),
        "decode.UnsupportedAlgorithm",
        "a SUIT digest with an algorithm other than SHA-256 (-16) is refused",
    );

    // ---- decode: manifest (each correctly signed, so only the format rule fails) ----
    let resigned =
        |m: Vec<u8>| craft::envelope(&entries(&sign_manifest(m, &[&key_a]), Some(&patch)));
    debug_assert_eq!(&m[..5], &[0xa4, 0x01, 0x01, 0x02, 0x07]);
    // Keys 1, 2, 3 then 20 (install): where install starts.
    let install_at = 6 + match m[6] {
        0x58 => 2 + usize::from(m[7]),
        _ => 3 + usize::from(u16::from_be_bytes([m[7], m[8]])),
    };
    debug_assert_eq!(m[install_at], 0x14);
    dec(
        g,
        "manifest_duplicate_map_key",
        resigned(
            [
                &[0xa4, 0x01, 0x01, 0x02, 0x07, 0x02, 0x07][..],
                &m[5..install_at],
            ]
            .concat(),
        ),
        "decode.DuplicateKey",
        "a signed manifest with the sequence number key twice is refused",
    );
    dec(
        g,
        "manifest_version_2",
        resigned([&[0xa4, 0x01, 0x02][..], &m[3..]].concat()),
        "decode.UnsupportedVersion",
        "a signed manifest of version 2 is refused",
    );
    dec(
        g,
        "manifest_indefinite_length",
        resigned([&[0xbf][..], &m[1..], &[0xff]].concat()),
        "decode.IndefiniteLength",
        "a signed manifest encoded as an indefinite-length map is refused",
    );
    dec(
        g,
        "manifest_trailing_bytes",
        resigned([&m[..], &[0x00]].concat()),
        "decode.TrailingBytes",
        "bytes after the manifest map inside its bstr are refused",
    );
    dec(
        g,
        "manifest_unknown_field",
        resigned([&m[..install_at], &[0x18, 0x63, 0x00]].concat()),
        "decode.UnexpectedField",
        "a signed manifest with an unknown key (99 in place of 20) is refused",
    );
    dec(
        g,
        "manifest_float_sequence",
        resigned(
            [
                &[0xa4, 0x01, 0x01, 0x02, 0xfb, 0x40, 0x1c, 0, 0, 0, 0, 0, 0][..],
                &m[5..],
            ]
            .concat(),
        ),
        "decode.UnexpectedType",
        "a sequence number encoded as a float is refused",
    );
    dec(
        g,
        "manifest_non_canonical_sequence",
        resigned([&[0xa4, 0x01, 0x01, 0x02, 0x18, 0x07][..], &m[5..]].concat()),
        "decode.NonCanonical",
        "a sequence number not in shortest form is refused",
    );

    // ---- decode: COSE_Sign1 ----
    let kid_a = kid(&key_a.verifying_key());
    let cose = |protected: Vec<u8>, unprotected: Vec<u8>| {
        let sig = key_a.sign(&sig_structure(&protected, &signed.digest));
        let s = Signed {
            sign1s: vec![sign1_raw(&protected, &unprotected, &sig.to_bytes())],
            ..sign_manifest(m.clone(), &[])
        };
        craft::envelope(&entries(&s, Some(&patch)))
    };
    let mut crit = vec![0xa3, 0x01, 0x27, 0x02, 0x81, 0x04, 0x04, 0x50];
    crit.extend_from_slice(&kid_a);
    dec(
        g,
        "cose_crit_header",
        cose(crit, vec![0xa0]),
        "decode.UnknownCriticalHeader",
        "a signed crit header parameter is refused (deltaseal understands no critical extension)",
    );
    let mut es256 = vec![0xa2, 0x01, 0x26, 0x04, 0x50];
    es256.extend_from_slice(&kid_a);
    dec(
        g,
        "cose_alg_es256",
        cose(es256, vec![0xa0]),
        "decode.UnsupportedAlgorithm",
        "alg -7 (ES256) in the protected header is refused",
    );
    let mut deep = vec![0xa1, 0x18, 0x63];
    deep.extend(core::iter::repeat_n(0x81, 20));
    deep.push(0x00);
    dec(
        g,
        "cose_unprotected_nesting_too_deep",
        cose(protected_header(&kid_a), deep),
        "decode.NestingTooDeep",
        "an unknown unprotected header nested 20 deep is refused without deep recursion",
    );
    let mut wrong_tag = signed.sign1s[0].clone();
    wrong_tag[0] = 0xd3;
    let s = Signed {
        sign1s: vec![wrong_tag],
        ..sign_manifest(m.clone(), &[])
    };
    dec(
        g,
        "cose_wrong_tag",
        craft::envelope(&entries(&s, Some(&patch))),
        "decode.WrongTag",
        "a COSE block tagged 19 instead of 18 (COSE_Sign1) is refused",
    );
    Ok(())
}

/// Threshold signatures and key rotation with signed trust roots.
fn roots(g: &mut Gen, old: &[u8], new: &[u8], o_small: &Old) -> Result<(), GenerateError> {
    use deltaseal_sign::bundle::add_signature;
    use deltaseal_sign::root as sroot;
    use deltaseal_verify::root::TrustRoot;
    let [a, b, c, d] = ["release_a", "release_b", "release_c", "release_d"].map(test_key);
    let err = |case: &str| {
        let case = case.to_string();
        move |source: sroot::RootBuildError| GenerateError::Root {
            case: case.clone(),
            source,
        }
    };
    let sign_doc =
        |doc: Vec<u8>, keys: &[&SigningKey], case: &str| -> Result<Vec<u8>, GenerateError> {
            let mut doc = doc;
            for k in keys {
                doc = sroot::sign(&doc, k).map_err(err(case))?;
            }
            Ok(doc)
        };
    let v1 = TrustRoot::new(
        1,
        2,
        None,
        vec![a.verifying_key(), b.verifying_key(), c.verifying_key()],
    )
    .map_err(|e| GenerateError::Root {
        case: "root_v1".into(),
        source: e.into(),
    })?;
    let v1_doc = sign_doc(sroot::unsigned(&v1), &[&a, &b, &c], "root_v1")?;
    g.files.insert("root/root_v1_2_of_3.cbor".into(), v1_doc);
    let v2 = sroot::rotate(&v1, &[d.verifying_key()], &[a.verifying_key()], None, None)
        .map_err(err("root_v2"))?;
    let v2_doc = sign_doc(sroot::unsigned(&v2), &[&b, &c], "root_v2")?;
    g.files.insert("root/root_v2_rotated.cbor".into(), v2_doc);
    let v2_bad = sign_doc(sroot::unsigned(&v2), &[&c, &d], "root_v2_bad")?;
    g.files
        .insert("root/root_v2_only_one_old_signer.cbor".into(), v2_bad);
    let v3 = sroot::rotate(&v2, &[], &[], None, None).map_err(err("root_v3"))?;
    let v3_doc = sign_doc(sroot::unsigned(&v3), &[&b, &c, &d], "root_v3")?;
    g.files.insert("root/root_v3.cbor".into(), v3_doc);

    let patch = make_patch("roots", old, new, &opts(Level::Default, 1024), Codec::Zstd)?;
    let input = release_input(old, new, &patch);
    let bundle = |keys: &[&SigningKey], case: &str| -> Result<Vec<u8>, GenerateError> {
        let (first, rest) = keys.split_first().ok_or(GenerateError::Sign {
            case: case.into(),
            source: deltaseal_sign::SignError::NoSigners,
        })?;
        let mut bytes = build_bundle(&input, core::slice::from_ref(*first)).map_err(|source| {
            GenerateError::Sign {
                case: case.into(),
                source,
            }
        })?;
        for k in rest {
            bytes = add_signature(&bytes, k).map_err(|source| GenerateError::Sign {
                case: case.into(),
                source,
            })?;
        }
        Ok(bytes)
    };
    // add_signature refuses a second signature by the same key: build it by hand.
    let m = manifest_bytes(&input, DEFAULT_COMPONENT_ID).map_err(|source| GenerateError::Sign {
        case: "twice".into(),
        source,
    })?;
    let twice = craft::envelope(&entries(&sign_manifest(m, &[&a, &a]), Some(&patch)));
    type RootCase<'a> = (&'a str, Vec<u8>, Vec<&'a str>, Exp<'a>, &'a str);
    let cases: Vec<RootCase<'_>> = vec![
        (
            "bundle_threshold_2_of_3",
            bundle(&[&a, &c], "t")?,
            vec!["root/root_v1_2_of_3.cbor"],
            Exp::Ok(new),
            "k-of-n: two distinct keys of a 2-of-3 root signed the bundle, which is accepted",
        ),
        (
            "bundle_threshold_one_signature",
            bundle(&[&a], "t")?,
            vec!["root/root_v1_2_of_3.cbor"],
            Exp::Err("signature.ThresholdNotMet"),
            "threat: compromised single key, one signature is not enough under a 2-of-3 root",
        ),
        (
            "bundle_threshold_same_key_twice",
            twice,
            vec!["root/root_v1_2_of_3.cbor"],
            Exp::Err("signature.ThresholdNotMet"),
            "two signatures by the same key count once towards the threshold",
        ),
        (
            "bundle_threshold_untrusted_second_signer",
            bundle(&[&a, &d], "t")?,
            vec!["root/root_v1_2_of_3.cbor"],
            Exp::Err("signature.ThresholdNotMet"),
            "a signature by a key outside the root does not count towards the threshold",
        ),
        (
            "root_rotation_then_bundle",
            bundle(&[&c, &d], "t")?,
            vec!["root/root_v1_2_of_3.cbor", "root/root_v2_rotated.cbor"],
            Exp::Ok(new),
            "key rotation: root v2 (a removed, d added) signed by 2 of v1's keys and 2 of its own authenticates a bundle signed by c and d",
        ),
        (
            "root_rotation_removed_key_does_not_count",
            bundle(&[&a, &c], "t")?,
            vec!["root/root_v1_2_of_3.cbor", "root/root_v2_rotated.cbor"],
            Exp::Err("signature.ThresholdNotMet"),
            "after rotation the removed key a no longer counts",
        ),
        (
            "root_rotation_missing_old_threshold",
            bundle(&[&c, &d], "t")?,
            vec![
                "root/root_v1_2_of_3.cbor",
                "root/root_v2_only_one_old_signer.cbor",
            ],
            Exp::Err("root.OldThresholdNotMet"),
            "a new root signed by only one key of the current root is refused",
        ),
        (
            "root_rotation_version_skipped",
            bundle(&[&c, &d], "t")?,
            vec!["root/root_v1_2_of_3.cbor", "root/root_v3.cbor"],
            Exp::Err("root.VersionNotNext"),
            "a root whose version is not current + 1 is refused as a successor",
        ),
    ];
    for (name, bytes, roots, expect, comment) in cases {
        g.case(
            CaseKind::Bundle,
            name,
            bytes,
            o_small,
            LimitsName::Default,
            &[],
            Some("device"),
            expect,
            comment,
        );
        if let Some(last) = g.cases.last_mut() {
            last.roots = roots.into_iter().map(str::to_string).collect();
        }
    }
    Ok(())
}
