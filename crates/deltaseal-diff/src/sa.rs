//! Suffix array of the old image, built once and shared read-only, with a
//! 2- or 3-byte bucket table and the 8-byte keys of every 16th suffix (and
//! of every 256th) that narrow every search.

use libsais::SuffixArrayConstruction;

use crate::DiffError;

/// Suffix array indices with the narrowest type that fits.
enum Indices {
    /// Old images below 2 GiB.
    I32(Vec<i32>),
    /// Larger old images.
    I64(Vec<i64>),
}

/// Bucket table: `start[k]` = first SA index whose suffix has key `>= k`.
///
/// The key of a suffix is its first `depth` bytes in base 257, each byte as
/// `b + 1` and a missing byte (past the end of old) as `0`, so keys order like
/// the suffixes themselves.
enum Buckets {
    /// depth 2, any old size.
    D2(Vec<u64>),
    /// depth 3, old images from 1 MiB up to 4 GiB (68 MB table).
    D3(Vec<u32>),
}

/// Suffix array of `old` plus bucket starts by 2- or 3-byte prefix.
pub(crate) struct SuffixArray {
    idx: Indices,
    buckets: Buckets,
    /// `samples[j]` = [`key8`] of the suffix at SA index `j * SAMPLE_EVERY`.
    samples: Vec<u64>,
    /// Every `SAMPLE_EVERY`th sample: small enough to stay in cache, so the
    /// search of the samples starts within a few of them.
    coarse: Vec<u64>,
}

/// Suffix array indices per [`SuffixArray::samples`] entry: 8 bytes per 16
/// entries is half a byte per old byte.
const SAMPLE_EVERY: usize = 16;

/// The first 8 bytes of `text`, big-endian, missing bytes as 0. Keys order
/// like the texts, but not strictly: a key below another's means a smaller
/// text, a key above means a larger one; equal keys decide nothing ("a" and
/// "a\0" have one key).
fn key8(text: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = text.len().min(8);
    b[..n].copy_from_slice(&text[..n]);
    u64::from_be_bytes(b)
}

fn sais_error(e: libsais::LibsaisError) -> DiffError {
    let reason = match e {
        libsais::LibsaisError::InvalidInput => "invalid input",
        libsais::LibsaisError::OutOfMemory => "out of memory",
        _ => "unknown error",
    };
    DiffError::SuffixArray { reason }
}

/// Key of the first `depth` bytes of `text` (missing bytes count as 0).
fn key_of(text: &[u8], depth: usize) -> usize {
    let mut k = 0;
    for j in 0..depth {
        k = k * 257 + text.get(j).map_or(0, |&b| b as usize + 1);
    }
    k
}

/// Bucket starts by `D`-byte key over all suffixes of `old` (the same
/// multiset of keys as over the suffix array, so it needs no SA).
fn counts<T: Copy + Default + core::ops::AddAssign + From<u8>, const D: usize>(
    old: &[u8],
) -> Vec<T> {
    let keys = 257usize.pow(D as u32);
    let mut b = vec![T::default(); keys + 1];
    // Full-length keys straight from each window; the last `D - 1` suffixes
    // are shorter and take `key_of`'s missing-byte path.
    for w in old.windows(D) {
        let k = w.iter().fold(0, |k, &c| k * 257 + c as usize + 1);
        b[k + 1] += T::from(1u8);
    }
    for s in old.len().saturating_sub(D - 1)..old.len() {
        b[key_of(&old[s..], D) + 1] += T::from(1u8);
    }
    for k in 1..=keys {
        let prev = b[k - 1];
        b[k] += prev;
    }
    b
}

/// Suffix array indices of `old` (libsais, single-threaded).
fn indices(old: &[u8]) -> Result<Indices, DiffError> {
    Ok(if old.is_empty() {
        Indices::I32(Vec::new())
    } else if old.len() < i32::MAX as usize {
        Indices::I32(
            SuffixArrayConstruction::for_text(old)
                .in_owned_buffer32()
                .single_threaded()
                .run()
                .map_err(sais_error)?
                .into_vec(),
        )
    } else if i64::try_from(old.len()).is_ok() {
        Indices::I64(
            SuffixArrayConstruction::for_text(old)
                .in_owned_buffer64()
                .single_threaded()
                .run()
                .map_err(sais_error)?
                .into_vec(),
        )
    } else {
        return Err(DiffError::OldTooLarge {
            size: old.len() as u64,
        });
    })
}

/// The bucket table of `old`: depth 3 from 1 MiB up to 4 GiB, else depth 2.
fn buckets(old: &[u8]) -> Buckets {
    if old.len() >= 1 << 20 && u32::try_from(old.len()).is_ok() {
        Buckets::D3(counts::<_, 3>(old))
    } else {
        Buckets::D2(counts::<_, 2>(old))
    }
}

impl SuffixArray {
    /// Suffix array, bucket table and search samples of `old`. With
    /// `threads` above 1 the bucket table is counted on a second thread
    /// while libsais runs (it needs only `old`), instead of after it on one
    /// core while the other idles: on kernel-vmlinux counting took 0.3 to
    /// 0.6 s next to libsais's 2 to 3 s (2026-11-26). The samples need the
    /// suffix array and are read after it, on `threads` threads.
    ///
    /// libsais runs single-threaded: its OpenMP build (the `openmp`
    /// feature, linking libgomp) with 2 threads, on 2 cores with the other
    /// one busy (a shared build machine), made the suffix array 3 to 14
    /// times slower by busy-waiting (kernel-vmlinux 2.8 s -> 8 to 38 s;
    /// 2.6 s with `OMP_WAIT_POLICY=passive`).
    pub(crate) fn build(old: &[u8], threads: usize) -> Result<SuffixArray, DiffError> {
        let (idx, buckets) = if threads > 1 {
            std::thread::scope(|s| {
                let counting = s.spawn(|| buckets(old));
                let idx = indices(old);
                (idx, counting.join())
            })
        } else {
            (indices(old), Ok(buckets(old)))
        };
        let idx = idx?;
        let samples = match &idx {
            Indices::I32(sa) => samples(sa, |v| v as usize, old, threads),
            Indices::I64(sa) => samples(sa, |v| v as usize, old, threads),
        };
        Ok(SuffixArray {
            idx,
            buckets: buckets.map_err(|_| DiffError::Worker)?,
            coarse: samples.iter().step_by(SAMPLE_EVERY).copied().collect(),
            samples,
        })
    }

    /// An empty suffix array (for an empty old image).
    pub(crate) fn empty() -> SuffixArray {
        SuffixArray {
            idx: Indices::I32(Vec::new()),
            buckets: Buckets::D2(Vec::new()),
            samples: Vec::new(),
            coarse: Vec::new(),
        }
    }

    /// Longest match of a prefix of `needle` among suffixes of `old`:
    /// returns `(old position, length)`. Ties go to the lexicographically
    /// smaller suffix, so results are deterministic.
    pub(crate) fn search(&self, old: &[u8], needle: &[u8]) -> (usize, usize) {
        if needle.is_empty() || old.is_empty() {
            return (0, 0);
        }
        let depth = match self.buckets {
            Buckets::D2(_) => 2,
            Buckets::D3(_) => 3,
        };
        let known = needle.len().min(depth);
        let k = key_of(needle, depth);
        let k_end = k + 257usize.pow((depth - known) as u32);
        // The matcher's next search is mostly at the next position: read
        // its bucket start now, so that cache miss overlaps this search.
        let next = needle.get(1..).map_or(0, |n| key_of(n, depth));
        let (lo, hi) = match &self.buckets {
            Buckets::D2(b) => {
                core::hint::black_box(b.get(next).copied());
                (b[k] as usize, b[k_end] as usize)
            }
            Buckets::D3(b) => {
                core::hint::black_box(b.get(next).copied());
                (b[k] as usize, b[k_end] as usize)
            }
        };
        let (lo, hi) = self.narrow(needle, lo, hi);
        match &self.idx {
            Indices::I32(sa) => search_in(sa, |v| v as usize, old, needle, lo, hi, known),
            Indices::I64(sa) => search_in(sa, |v| v as usize, old, needle, lo, hi, known),
        }
    }
}

impl SuffixArray {
    /// Narrow `lo..hi` to `SAMPLE_EVERY` entries or so by [`key8`], first
    /// over the coarse samples (in cache), then over a few samples, so the
    /// binary search over the suffix array proper (two dependent cache
    /// misses per step) has a few steps left. The insertion point of
    /// `needle` stays inside, so results do not change. The samples took
    /// matching on exe-ruff from 9.0 to 6.4 s of CPU (default level, -j2),
    /// the coarse ones the fast level on kernel-vmlinux from 7.9 to 7.3 s
    /// (-j1; 2026-11-26).
    fn narrow(&self, needle: &[u8], lo: usize, hi: usize) -> (usize, usize) {
        let key = key8(needle);
        // The samples at SA indices in lo..hi; below: the first one whose key
        // is not below `key`; above: the first one whose key is above it.
        let first = lo.div_ceil(SAMPLE_EVERY);
        let end = hi.div_ceil(SAMPLE_EVERY).min(self.samples.len());
        if first >= end {
            return (lo, hi);
        }
        let (a, b) = partition_range(&self.coarse, key, first, end);
        let below = a + partition_below(self.samples.get(a..b).unwrap_or(&[]), key);
        let above = match self.samples.get(below) {
            Some(&k) if k == key && below < end => {
                // Equal keys are rare outside runs: bisect them only then.
                below + 1 + partition_above(self.samples.get(below + 1..end).unwrap_or(&[]), key)
            }
            _ => below,
        };
        // The insertion point is after a sample below the needle and at or
        // before one above it.
        let lo = if below > first {
            (below - 1) * SAMPLE_EVERY + 1
        } else {
            lo
        };
        let hi = if above < end {
            above * SAMPLE_EVERY
        } else {
            hi
        };
        (lo, hi)
    }
}

/// How many of `keys` are below `key`.
fn partition_below(keys: &[u64], key: u64) -> usize {
    keys.partition_point(|&k| k < key)
}

/// How many of `keys` are not above `key`.
fn partition_above(keys: &[u64], key: u64) -> usize {
    keys.partition_point(|&k| k <= key)
}

/// The range of sample indices within `first..end` that holds the first
/// sample not below `key`, found among the `coarse` samples (every
/// `SAMPLE_EVERY`th).
fn partition_range(coarse: &[u64], key: u64, first: usize, end: usize) -> (usize, usize) {
    let c0 = first.div_ceil(SAMPLE_EVERY);
    let c1 = end.div_ceil(SAMPLE_EVERY).min(coarse.len());
    let cb = c0 + partition_below(coarse.get(c0..c1).unwrap_or(&[]), key);
    let a = if cb > c0 {
        (cb - 1) * SAMPLE_EVERY + 1
    } else {
        first
    };
    let b = if cb < c1 { cb * SAMPLE_EVERY + 1 } else { end };
    (a.max(first), b.min(end))
}

/// [`SuffixArray::samples`] of `sa` over `old`, read on up to `threads`
/// threads (each read is a cache miss into `old`); on the calling thread
/// when `threads` is 1 or the old image is below 1 MiB, where a spawn costs
/// more than it saves (and a fuzzer's leak checker races thread teardown,
/// see docs/fuzzing.md).
fn samples<T: Copy + Sync>(
    sa: &[T],
    at: impl Fn(T) -> usize + Sync,
    old: &[u8],
    threads: usize,
) -> Vec<u64> {
    let count = sa.len().div_ceil(SAMPLE_EVERY);
    let fill = |first: usize, part: &mut [u64]| {
        for (k, slot) in part.iter_mut().enumerate() {
            if let Some(&v) = sa.get((first + k) * SAMPLE_EVERY) {
                *slot = key8(old.get(at(v)..).unwrap_or(&[]));
            }
        }
    };
    let mut out = vec![0u64; count];
    if threads <= 1 || old.len() < 1 << 20 {
        fill(0, &mut out);
        return out;
    }
    let per = count.div_ceil(threads);
    std::thread::scope(|s| {
        for (i, part) in out.chunks_mut(per).enumerate() {
            let fill = &fill;
            s.spawn(move || fill(i * per, part));
        }
    });
    out
}

/// Length of the common prefix of `a` and `b`.
pub(crate) fn match_len(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let x = u64::from_le_bytes(a[i..i + 8].try_into().unwrap_or([0; 8]));
        let y = u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        let d = x ^ y;
        if d != 0 {
            return i + (d.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

/// Binary search within `sa[lo..hi]`, where every suffix shares `known`
/// leading bytes with `needle`, skipping bytes already known to match
/// (the min of the LCPs with both bounds).
///
/// Each step is two dependent cache misses (the suffix array entry, then
/// the old bytes it points to), so before a step's compare the entries of
/// both possible next midpoints, and the old bytes they point to, are read
/// (`black_box` keeps the reads): their misses overlap the compare instead
/// of following it. With this and the next bucket read in
/// [`SuffixArray::search`], matching every fourth chunk with the three
/// margins took 22 to 27% less CPU (single thread, median of 5:
/// kernel-vmlinux 2.04 -> 1.59 s, exe-ruff 3.66 -> 2.67 s; same results).
/// Reading the four entries two steps ahead as well was slower.
fn search_in<T: Copy>(
    sa: &[T],
    at: impl Fn(T) -> usize,
    old: &[u8],
    needle: &[u8],
    mut lo: usize,
    mut hi: usize,
    known: usize,
) -> (usize, usize) {
    let (mut l, mut r) = (known, known);
    let entry = |i: usize| sa.get(i).map_or(0, |&v| at(v));
    let mut mid = lo + (hi - lo) / 2;
    let mut s = entry(mid);
    while lo < hi {
        // Next midpoint if this one is too large ([lo, mid)) or too small
        // ([mid + 1, hi)); past the end when that side is empty.
        let (left, right) = (lo + (mid - lo) / 2, mid + 1 + (hi - mid - 1) / 2);
        let (sl, sr) = (entry(left), entry(right));
        let k = l.min(r);
        let byte = |p: usize| old.get(p + k).copied();
        core::hint::black_box((byte(sl), byte(sr)));
        let m = k + match_len(&old[s + k..], &needle[k..]);
        let less = if m == needle.len() {
            false
        } else {
            s + m == old.len() || old[s + m] < needle[m]
        };
        if less {
            lo = mid + 1;
            l = m;
            (mid, s) = (right, sr);
        } else {
            hi = mid;
            r = m;
            (mid, s) = (left, sl);
        }
    }
    // Best of the two neighbours of the insertion point.
    let mut best = (0, 0);
    for i in [lo.wrapping_sub(1), lo] {
        if let Some(&v) = sa.get(i) {
            let pos = at(v);
            let len = match_len(&old[pos..], needle);
            if len > best.1 {
                best = (pos, len);
            }
        }
    }
    best
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use deltaseal_testkit::Rng;

    /// Text with what makes sample keys tie: zero runs, a repeated
    /// pattern, few distinct bytes, plus random bytes.
    fn text(rng: &mut Rng, n: usize) -> Vec<u8> {
        let mut t = Vec::with_capacity(n);
        while t.len() < n {
            let len = 1 + rng.below(300);
            match rng.below(4) {
                0 => t.extend(core::iter::repeat_n(0u8, len)),
                1 => t.extend((0..len).map(|i| b"call"[i % 4])),
                2 => t.extend((0..len).map(|_| rng.below(3) as u8)),
                _ => t.extend((0..len).map(|_| rng.next_u64() as u8)),
            }
        }
        t.truncate(n);
        t
    }

    /// Needles: suffixes of old (some shorter than a key), edited copies,
    /// random bytes.
    fn needles(rng: &mut Rng, old: &[u8], count: usize) -> Vec<Vec<u8>> {
        (0..count)
            .map(|_| {
                let len = 1 + rng.below(40);
                let at = rng.below(old.len());
                let mut n = old[at..(at + len).min(old.len())].to_vec();
                match rng.below(3) {
                    0 => {}
                    1 => {
                        let i = rng.below(n.len());
                        n[i] = n[i].wrapping_add(1);
                    }
                    _ => n.iter_mut().for_each(|b| *b = rng.below(4) as u8),
                }
                n
            })
            .collect()
    }

    #[test]
    fn sampled_keys_do_not_change_searches() {
        let mut rng = Rng(0x5a5a_1234_dead_beef);
        // Below 1 MiB: two-byte buckets; from 1 MiB: three-byte buckets.
        for size in [1, 7, 100, 5_000, 70_000, (1 << 20) + 999] {
            let old = text(&mut rng, size);
            let sa = SuffixArray::build(&old, 2).expect("suffix array");
            assert_eq!(sa.samples.len(), old.len().div_ceil(SAMPLE_EVERY));
            let unsampled = SuffixArray {
                idx: match &sa.idx {
                    Indices::I32(v) => Indices::I32(v.clone()),
                    Indices::I64(v) => Indices::I64(v.clone()),
                },
                buckets: match &sa.buckets {
                    Buckets::D2(b) => Buckets::D2(b.clone()),
                    Buckets::D3(b) => Buckets::D3(b.clone()),
                },
                samples: Vec::new(),
                coarse: Vec::new(),
            };
            for needle in needles(&mut rng, &old, 3_000) {
                let found = sa.search(&old, &needle);
                assert_eq!(found, unsampled.search(&old, &needle), "{size} {needle:?}");
                // And it is a longest match.
                let (pos, len) = found;
                assert_eq!(match_len(&old[pos..], &needle), len);
                if size <= 5_000 {
                    let longest = (0..old.len())
                        .map(|p| match_len(&old[p..], &needle))
                        .max()
                        .unwrap_or(0);
                    assert_eq!(len, longest, "{size} {needle:?}");
                }
            }
        }
    }

    #[test]
    fn key8_orders_like_the_texts() {
        let texts: [&[u8]; 7] = [b"", b"\0", b"\0\0", b"a", b"a\0", b"ab", b"abcdefghij"];
        for a in texts {
            for b in texts {
                let (ka, kb) = (key8(a), key8(b));
                if ka < kb {
                    assert!(a < b, "{a:?} {b:?}");
                }
                if ka > kb {
                    assert!(a > b, "{a:?} {b:?}");
                }
            }
        }
    }
}
