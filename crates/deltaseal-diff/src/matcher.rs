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
/// matches over the same span ([`match_chunk`]'s `margin`). bsdiff uses 8;
/// each control triple costs about 4.6 compressed bytes, and literals are
/// compressed against the old image (`extra_reference`), so a larger margin
/// gives fewer triples for a few more literals (exe-ruff default patch
/// with a 1 MiB reference, 2026-11-26: margin 8 3.71 MB, 16 3.55 MB, 24
/// 3.57 MB, 32 3.60 MB). The other levels try several (`encode::MARGINS`).
pub(crate) const NEW_MATCH_MARGIN: isize = 16;

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

/// Run bsdiff's scan (approximate-match rule, forward/backward extension,
/// overlap resolution) over `new[cs..ce]`.
pub(crate) fn match_chunk(
    old: &[u8],
    new: &[u8],
    sa: &SuffixArray,
    cs: usize,
    ce: usize,
    margin: isize,
) -> ChunkMatch {
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
            let (p, l) = sa.search(old, &n[scan as usize..]);
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
    ChunkMatch {
        old_offset: start,
        ops,
    }
}
