//! Diff and apply throughput on the smallest real corpus pairs (or a
//! synthetic pair when the corpus is absent), against the `bsdiff` crate
//! in-process as the baseline.

use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use deltaseal_diff::DiffOptions;
use deltaseal_verify::patch::{
    ApplyOptions, Limits, OldImageCheck, ZstdDecoder, apply_parallel, apply_to_vec,
};

fn load_pair() -> (String, Vec<u8>, Vec<u8>) {
    let dir = std::env::var_os("CORPUS_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../corpus-data"),
        std::path::PathBuf::from,
    );
    let pair = "mcu-cityhub";
    match (
        std::fs::read(dir.join(pair).join("old.bin")),
        std::fs::read(dir.join(pair).join("new.bin")),
    ) {
        (Ok(old), Ok(new)) => (pair.to_string(), old, new),
        _ => {
            eprintln!("SKIP corpus: {pair} not found; benchmarking a synthetic pair");
            let old: Vec<u8> = (0..200_000u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
                .collect();
            let mut new = old.clone();
            new.splice(50_000..50_000, (0..600u32).map(|i| i as u8));
            ("synthetic".to_string(), old, new)
        }
    }
}

fn bench(c: &mut Criterion) {
    let (name, old, new) = load_pair();
    let options = DiffOptions {
        threads: 1,
        ..DiffOptions::default()
    };
    let patch = deltaseal_diff::diff(&old, &new, &options).expect("diff");
    let mut bs_patch = Vec::new();
    bsdiff::diff(&old, &new, &mut bs_patch).expect("bsdiff");

    let mut group = c.benchmark_group(format!("diff/{name}"));
    group.throughput(Throughput::Bytes(new.len() as u64));
    group.sample_size(10);
    group.bench_function("deltaseal", |b| {
        b.iter(|| deltaseal_diff::diff(&old, &new, &options).expect("diff"))
    });
    group.bench_function("bsdiff-crate", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            bsdiff::diff(&old, &new, &mut out).expect("bsdiff");
            out
        })
    });
    group.finish();

    let mut group = c.benchmark_group(format!("apply/{name}"));
    group.throughput(Throughput::Bytes(new.len() as u64));
    group.bench_function("deltaseal", |b| {
        b.iter(|| apply_to_vec(&old, &patch, &Limits::default()).expect("apply"))
    });
    // What `deltaseal apply` runs on a host: C libzstd, one thread.
    let host = ApplyOptions {
        threads: 1,
        decoder: ZstdDecoder::Libzstd,
        old_image: OldImageCheck::OnFailure,
    };
    group.bench_function("deltaseal-libzstd", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(new.len());
            apply_parallel(old.as_slice(), &patch, &mut out, &Limits::default(), host)
                .expect("apply");
            out
        })
    });
    group.bench_function("bsdiff-crate", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(new.len());
            bsdiff::patch(&old, &mut bs_patch.as_slice(), &mut out).expect("bspatch");
            out
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
