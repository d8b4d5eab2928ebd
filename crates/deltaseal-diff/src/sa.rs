//! Suffix array of the old image, built once and shared read-only.

use libsais::SuffixArrayConstruction;

use crate::DiffError;

/// Suffix array with the narrowest index type that fits.
pub(crate) enum SuffixArray {
    /// Old images below 2 GiB.
    I32(Vec<i32>),
    /// Larger old images.
    I64(Vec<i64>),
}

fn sais_error(e: libsais::LibsaisError) -> DiffError {
    let reason = match e {
        libsais::LibsaisError::InvalidInput => "invalid input",
        libsais::LibsaisError::OutOfMemory => "out of memory",
        _ => "unknown error",
    };
    DiffError::SuffixArray { reason }
}

impl SuffixArray {
    pub(crate) fn build(old: &[u8]) -> Result<SuffixArray, DiffError> {
        if old.is_empty() {
            return Ok(SuffixArray::I32(Vec::new()));
        }
        if old.len() < i32::MAX as usize {
            let sa = SuffixArrayConstruction::for_text(old)
                .in_owned_buffer32()
                .single_threaded()
                .run()
                .map_err(sais_error)?
                .into_vec();
            Ok(SuffixArray::I32(sa))
        } else if i64::try_from(old.len()).is_ok() {
            let sa = SuffixArrayConstruction::for_text(old)
                .in_owned_buffer64()
                .single_threaded()
                .run()
                .map_err(sais_error)?
                .into_vec();
            Ok(SuffixArray::I64(sa))
        } else {
            Err(DiffError::OldTooLarge {
                size: old.len() as u64,
            })
        }
    }

    /// Longest match of a prefix of `needle` among suffixes of `old`:
    /// returns `(old position, length)`.
    pub(crate) fn search(&self, old: &[u8], needle: &[u8]) -> (usize, usize) {
        match self {
            SuffixArray::I32(sa) => search_in(sa, |v| v as usize, old, needle),
            SuffixArray::I64(sa) => search_in(sa, |v| v as usize, old, needle),
        }
    }
}

fn match_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn search_in<T: Copy>(
    sa: &[T],
    at: impl Fn(T) -> usize,
    old: &[u8],
    needle: &[u8],
) -> (usize, usize) {
    if sa.is_empty() || needle.is_empty() {
        return (0, 0);
    }
    let p = sa.partition_point(|&s| &old[at(s)..] < needle);
    let mut best = (0, 0);
    for i in [p.wrapping_sub(1), p] {
        if let Some(&s) = sa.get(i) {
            let pos = at(s);
            let len = match_len(&old[pos..], needle);
            if len > best.1 {
                best = (pos, len);
            }
        }
    }
    best
}
