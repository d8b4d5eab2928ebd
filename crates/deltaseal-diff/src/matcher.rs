//! bsdiff-style matching of one new-image chunk against the whole old image.
//!
//! Produces [`Op`]s (add / extra / seek triples) over chunk-local new
//! coordinates; `encode` turns them into streams. A cost-based matcher can
//! later replace [`match_chunk`] without touching the encoder.

use crate::sa::SuffixArray;

/// One control triple: `add` bytes of old (+ diff), then `extra` literal
/// bytes, then move the old cursor by `seek`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Op {
    pub add: usize,
    pub extra: usize,
    pub seek: i64,
}

/// Margin of the fast level: a new match replaces the current alignment
/// only when it is this many bytes longer than what the current alignment
/// matches over the same span ([`match_chunk`]'s `margin`). The other
/// levels try several per chunk (`encode::MARGINS`): no single margin suits
/// every image. The fast level takes bsdiff's 8, the smallest on three of
/// four pairs (10 is smaller in total, by exe-ruff alone, and 3% larger
/// on cityhub). Fast patch bytes, 2026-11-26:
///
/// | margin | kernel-vmlinux | exe-ruff | moondancer | cityhub |
/// |---:|---:|---:|---:|---:|
/// | 8 | 4,241,477 | 4,379,573 | 19,447 | 12,221 |
/// | 10 | 4,246,743 | 4,318,352 | 19,677 | 12,607 |
/// | 12 | 4,308,014 | 4,294,853 | 19,728 | 12,223 |
/// | 16 | 4,433,385 | 4,314,417 | 19,725 | 12,326 |
pub(crate) const NEW_MATCH_MARGIN: isize = 8;

/// bsdiff's own margin, for BSDIFF40 export: its extra stream is bzip2
/// without any old-image reference, so more literals cost more there.
pub(crate) const BSDIFF_MARGIN: isize = 8;

/// Rejected matches at least this long make the scan step more than one byte.
const SKIP_MIN_LEN: isize = 64;
/// Step after a rejected long match: `len / SKIP_DIVISOR` bytes.
const SKIP_DIVISOR: isize = 4;

/// Matching result for one chunk.
pub(crate) struct ChunkMatch {
    /// Absolute old offset where the first `add` starts.
    pub old_offset: usize,
    pub ops: Vec<Op>,
}

/// Longest-match searches of one chunk, kept across the [`match_chunk`]
/// runs that match it with different margins: a search's result depends
/// only on the chunk and the position, and the runs search mostly the same
/// positions (exe-ruff: the second and third runs of a chunk make 0.5 to
/// 10% new searches). With every run searching afresh the suffix array
/// searches were half the default level's diff time (2026-11-26,
/// kernel-vmlinux 49%, exe-ruff 59% of cycles); keeping them took a third
/// off its CPU time (-j2: kernel-vmlinux 47.6 -> 31.6 s user, exe-ruff
/// 64.4 -> 43.2 s; same patches) for 16 bytes per search (up to about
/// 800,000 per 1 MiB chunk; peak RSS +50 MB at -j2).
#[derive(Default)]
pub(crate) struct Searches {
    /// Results are not kept ([`Searches::once`]).
    forget: bool,
    /// The chunk the results are for.
    chunk: core::ops::Range<usize>,
    /// Results of earlier runs, ascending by chunk position.
    known: Vec<Found>,
    /// Results found in the current run, ascending by chunk position.
    fresh: Vec<Found>,
    /// First entry of `known` whose position is not below the last lookup's.
    cursor: usize,
}

/// One search's result: at chunk position `at`, `len` bytes match old at
/// `pos`. Chunk positions and lengths fit in u32 (chunk sizes are u32).
#[derive(Clone, Copy, Default)]
struct Found {
    pos: usize,
    at: u32,
    len: u32,
}

impl Searches {
    /// For a chunk matched only once: nothing is kept.
    pub(crate) fn once() -> Searches {
        Searches {
            forget: true,
            ..Searches::default()
        }
    }

    /// Start a run over `chunk` (forgetting the results of another chunk).
    fn begin(&mut self, chunk: core::ops::Range<usize>) {
        if self.chunk != chunk {
            self.chunk = chunk;
            self.known.clear();
        }
        self.fresh.clear();
        self.cursor = 0;
    }

    /// `sa.search(old, &n[scan..])`, from an earlier run when it made it.
    /// Positions must not decrease within a run (the scan only advances).
    fn search(&mut self, sa: &SuffixArray, old: &[u8], n: &[u8], scan: usize) -> (usize, usize) {
        let at = match u32::try_from(scan) {
            Ok(at) if !self.forget => at,
            _ => return sa.search(old, &n[scan..]),
        };
        while self.known.get(self.cursor).is_some_and(|k| k.at < at) {
            self.cursor += 1;
        }
        for f in [self.known.get(self.cursor), self.fresh.last()]
            .into_iter()
            .flatten()
        {
            if f.at == at {
                return (f.pos, f.len as usize);
            }
        }
        let (pos, len) = sa.search(old, &n[scan..]);
        if let Ok(len32) = u32::try_from(len) {
            self.fresh.push(Found {
                pos,
                at,
                len: len32,
            });
        }
        (pos, len)
    }

    /// End a run: its new results join the known ones, still in order
    /// (merged in place from the back, so no third buffer).
    fn end(&mut self) {
        if self.known.is_empty() {
            core::mem::swap(&mut self.known, &mut self.fresh);
            return;
        }
        let (mut k, mut f) = (self.known.len(), self.fresh.len());
        self.known.reserve_exact(f);
        self.known.resize(k + f, Found::default());
        while let Some(&b) = f.checked_sub(1).and_then(|j| self.fresh.get(j)) {
            let w = k + f - 1;
            match k.checked_sub(1).and_then(|i| self.known.get(i)) {
                Some(&a) if a.at > b.at => {
                    self.known[w] = a;
                    k -= 1;
                }
                _ => {
                    self.known[w] = b;
                    f -= 1;
                }
            }
        }
        self.fresh.clear();
    }
}

/// Run bsdiff's scan (approximate-match rule, forward/backward extension,
/// overlap resolution) over `new[cs..ce]`, with `searches` holding the
/// searches of earlier runs over the same chunk.
pub(crate) fn match_chunk(
    old: &[u8],
    new: &[u8],
    sa: &SuffixArray,
    cs: usize,
    ce: usize,
    margin: isize,
    searches: &mut Searches,
) -> ChunkMatch {
    searches.begin(cs..ce);
    let n = &new[cs..ce];
    let newsize = n.len() as isize;
    let oldsize = old.len() as isize;
    let start = cs.min(old.len());

    let mut ops = Vec::new();
    let mut scan: isize = 0;
    let mut len: isize = 0;
    let mut pos: isize = 0;
    let mut lastscan: isize = 0;
    let mut lastpos: isize = start as isize;
    let mut lastoffset: isize = lastpos;

    let old_at = |i: isize| old[i as usize];
    let new_at = |i: isize| n[i as usize];

    while scan < newsize {
        let mut oldscore: isize = 0;
        scan += len;
        let mut scsc = scan;
        while scan < newsize {
            let (p, l) = searches.search(sa, old, n, scan as usize);
            pos = p as isize;
            len = l as isize;
            while scsc < scan + len {
                let o = scsc + lastoffset;
                if o >= 0 && o < oldsize && old_at(o) == new_at(scsc) {
                    oldscore += 1;
                }
                scsc += 1;
            }
            if (len == oldscore && len != 0) || len > oldscore + margin {
                break;
            }
            // Not worth a new control triple here. bsdiff steps one byte and
            // searches again; after a long match that mostly re-finds the same
            // match shifted by one, so step further (keeping `oldscore` exact).
            let step = if len >= SKIP_MIN_LEN {
                len / SKIP_DIVISOR
            } else {
                1
            };
            for _ in 0..step {
                let o = scan + lastoffset;
                if o >= 0 && o < oldsize && old_at(o) == new_at(scan) {
                    oldscore -= 1;
                }
                scan += 1;
            }
        }

        if len != oldscore || scan == newsize {
            // forward extension from the last match
            let mut s = 0isize;
            let mut sf = 0isize;
            let mut lenf = 0isize;
            let mut i = 0isize;
            while lastscan + i < scan && lastpos + i < oldsize {
                if old_at(lastpos + i) == new_at(lastscan + i) {
                    s += 1;
                }
                i += 1;
                if s * 2 - i > sf * 2 - lenf {
                    sf = s;
                    lenf = i;
                }
            }
            // backward extension from the new match
            let mut lenb = 0isize;
            if scan < newsize {
                let mut s = 0isize;
                let mut sb = 0isize;
                let mut i = 1isize;
                while scan >= lastscan + i && pos >= i {
                    if old_at(pos - i) == new_at(scan - i) {
                        s += 1;
                    }
                    if s * 2 - i > sb * 2 - lenb {
                        sb = s;
                        lenb = i;
                    }
                    i += 1;
                }
            }
            // resolve overlap
            if lastscan + lenf > scan - lenb {
                let overlap = (lastscan + lenf) - (scan - lenb);
                let mut s = 0isize;
                let mut ss = 0isize;
                let mut lens = 0isize;
                for i in 0..overlap {
                    if new_at(lastscan + lenf - overlap + i) == old_at(lastpos + lenf - overlap + i)
                    {
                        s += 1;
                    }
                    if new_at(scan - lenb + i) == old_at(pos - lenb + i) {
                        s -= 1;
                    }
                    if s > ss {
                        ss = s;
                        lens = i + 1;
                    }
                }
                lenf += lens - overlap;
                lenb -= lens;
            }
            let extra = (scan - lenb) - (lastscan + lenf);
            let seek = (pos - lenb) - (lastpos + lenf);
            debug_assert!(lenf >= 0 && extra >= 0);
            ops.push(Op {
                add: lenf as usize,
                extra: extra as usize,
                seek: seek as i64,
            });
            lastscan = scan - lenb;
            lastpos = pos - lenb;
            lastoffset = pos - scan;
        }
    }
    searches.end();
    ChunkMatch {
        old_offset: start,
        ops,
    }
}
