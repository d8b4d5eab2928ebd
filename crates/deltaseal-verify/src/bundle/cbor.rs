//! The one strict CBOR reader every bundle structure goes through.
//!
//! It accepts only the deterministic encoding of RFC 8949 §4.2.1, so every
//! bundle has exactly one byte representation:
//!
//! - every head (integer, length, tag) uses the shortest form;
//! - indefinite lengths, floats, undefined and unassigned simple values are
//!   rejected;
//! - map keys must be in strictly ascending bytewise order of their encoding,
//!   which also rejects duplicate keys;
//! - text must be valid UTF-8;
//! - [`Reader::finish`] rejects trailing bytes;
//! - nesting is bounded by [`MAX_DEPTH`], also when skipping unknown values.
//!
//! The callers parse a fixed schema top-down, so apart from [`Reader::skip`]
//! no recursion is driven by the input.

use super::DecodeError;

/// Deepest nesting of arrays, maps and tags accepted anywhere in a bundle.
pub const MAX_DEPTH: usize = 16;

const MAJOR_UINT: u8 = 0;
const MAJOR_NINT: u8 = 1;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_TAG: u8 = 6;
const MAJOR_SIMPLE: u8 = 7;

/// A CBOR integer in the range CBOR can encode (`-2^64 ..= 2^64-1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Int {
    /// Non-negative: the value itself.
    Uint(u64),
    /// Negative: the value is `-1 - n`.
    Nint(u64),
}

/// A strict, position-tracking reader over a borrowed CBOR buffer.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Current offset into the buffer.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Fails unless every byte has been consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }

    /// Length of the whole buffer (consumed or not).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// The next `n` bytes, raw (no CBOR head), borrowed from the input.
    pub fn take_bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        self.take(n)
    }

    /// True when every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let out = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self.buf.get(self.pos).ok_or(DecodeError::Truncated)?;
        self.pos = self.pos.checked_add(1).ok_or(DecodeError::Truncated)?;
        Ok(b)
    }

    /// The major type of the next item, without consuming it.
    pub fn peek_major(&self) -> Result<u8, DecodeError> {
        self.buf
            .get(self.pos)
            .map(|b| b >> 5)
            .ok_or(DecodeError::Truncated)
    }

    /// Reads one head: major type and argument, shortest form enforced.
    fn head(&mut self) -> Result<(u8, u64), DecodeError> {
        let initial = self.byte()?;
        let major = initial >> 5;
        let info = initial & 0x1f;
        let arg = match info {
            0..=23 => u64::from(info),
            24 => {
                let v = u64::from(self.byte()?);
                // Simple values 0..=31 must not use the one-byte extension.
                if v < 24 || (major == MAJOR_SIMPLE && v < 32) {
                    return Err(DecodeError::NonCanonical);
                }
                v
            }
            25 => {
                let v = u64::from(u16::from_be_bytes(self.array_of::<2>()?));
                if v <= 0xff {
                    return Err(DecodeError::NonCanonical);
                }
                v
            }
            26 => {
                let v = u64::from(u32::from_be_bytes(self.array_of::<4>()?));
                if v <= 0xffff {
                    return Err(DecodeError::NonCanonical);
                }
                v
            }
            27 => {
                let v = u64::from_be_bytes(self.array_of::<8>()?);
                if v <= 0xffff_ffff {
                    return Err(DecodeError::NonCanonical);
                }
                v
            }
            31 => return Err(DecodeError::IndefiniteLength),
            _ => return Err(DecodeError::Malformed),
        };
        if major == MAJOR_SIMPLE && info >= 25 {
            // Half, single and double floats.
            return Err(DecodeError::UnexpectedType);
        }
        Ok((major, arg))
    }

    fn array_of<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    fn expect_head(&mut self, major: u8) -> Result<u64, DecodeError> {
        let (m, arg) = self.head()?;
        if m == major {
            Ok(arg)
        } else {
            Err(DecodeError::UnexpectedType)
        }
    }

    /// An unsigned integer.
    pub fn uint(&mut self) -> Result<u64, DecodeError> {
        self.expect_head(MAJOR_UINT)
    }

    /// A signed or unsigned integer.
    pub fn int(&mut self) -> Result<Int, DecodeError> {
        match self.head()? {
            (MAJOR_UINT, v) => Ok(Int::Uint(v)),
            (MAJOR_NINT, v) => Ok(Int::Nint(v)),
            _ => Err(DecodeError::UnexpectedType),
        }
    }

    /// An integer that must fit in an `i64`.
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        match self.int()? {
            Int::Uint(v) => i64::try_from(v).map_err(|_| DecodeError::UnexpectedValue),
            Int::Nint(v) => i64::try_from(v)
                .map(|v| -1i64 ^ v) // -1 - v without arithmetic overflow lints
                .map_err(|_| DecodeError::UnexpectedValue),
        }
    }

    fn len_of(&mut self, major: u8, max: usize) -> Result<usize, DecodeError> {
        let n = self.expect_head(major)?;
        let n = usize::try_from(n).map_err(|_| DecodeError::TooLarge)?;
        if n > max {
            return Err(DecodeError::TooLarge);
        }
        Ok(n)
    }

    /// A byte string of at most `max` bytes, borrowed from the input.
    pub fn bytes(&mut self, max: usize) -> Result<&'a [u8], DecodeError> {
        let n = self.len_of(MAJOR_BYTES, max)?;
        self.take(n)
    }

    /// Only the head of a byte string of at most `max` bytes: returns its
    /// length and leaves the reader at its first content byte (for a
    /// payload that is streamed rather than held in memory).
    pub fn bytes_head(&mut self, max: usize) -> Result<usize, DecodeError> {
        self.len_of(MAJOR_BYTES, max)
    }

    /// A byte string of exactly `N` bytes.
    pub fn bytes_exact<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let n = self.len_of(MAJOR_BYTES, usize::MAX)?;
        if n != N {
            return Err(DecodeError::UnexpectedValue);
        }
        self.array_of::<N>()
    }

    /// A UTF-8 text string of at most `max` bytes.
    pub fn text(&mut self, max: usize) -> Result<&'a str, DecodeError> {
        let n = self.len_of(MAJOR_TEXT, max)?;
        let raw = self.take(n)?;
        core::str::from_utf8(raw).map_err(|_| DecodeError::Malformed)
    }

    /// The start of an array of at most `max` items; returns the item count.
    pub fn array(&mut self, max: usize) -> Result<usize, DecodeError> {
        self.len_of(MAJOR_ARRAY, max)
    }

    /// The start of an array of exactly `n` items.
    pub fn array_exact(&mut self, n: usize) -> Result<(), DecodeError> {
        if self.array(n)? == n {
            Ok(())
        } else {
            Err(DecodeError::UnexpectedValue)
        }
    }

    /// The start of a map of at most `max` entries; returns the entry count.
    pub fn map(&mut self, max: usize) -> Result<usize, DecodeError> {
        self.len_of(MAJOR_MAP, max)
    }

    /// A tag number.
    pub fn tag(&mut self) -> Result<u64, DecodeError> {
        self.expect_head(MAJOR_TAG)
    }

    /// The simple value `null`.
    pub fn null(&mut self) -> Result<(), DecodeError> {
        match self.head()? {
            (MAJOR_SIMPLE, 22) => Ok(()),
            _ => Err(DecodeError::UnexpectedType),
        }
    }

    /// Reads a map key (an integer or a text string) and enforces that its
    /// encoding sorts strictly after `prev` (the previous key's encoding of
    /// the same map, or `None` for the first key). Returns the key and its
    /// encoding, to pass as `prev` next time.
    pub fn key(&mut self, prev: Option<&'a [u8]>) -> Result<(Key<'a>, &'a [u8]), DecodeError> {
        let start = self.pos;
        let key = match self.peek_major()? {
            MAJOR_UINT | MAJOR_NINT => Key::Int(self.i64()?),
            MAJOR_TEXT => Key::Text(self.text(MAX_KEY_TEXT)?),
            _ => return Err(DecodeError::UnexpectedType),
        };
        let raw = self
            .buf
            .get(start..self.pos)
            .ok_or(DecodeError::Malformed)?;
        if let Some(prev) = prev {
            match prev.cmp(raw) {
                core::cmp::Ordering::Less => {}
                core::cmp::Ordering::Equal => return Err(DecodeError::DuplicateKey),
                core::cmp::Ordering::Greater => return Err(DecodeError::UnsortedKeys),
            }
        }
        Ok((key, raw))
    }

    /// Skips one well-formed, deterministic data item, however nested up to
    /// [`MAX_DEPTH`] levels below `depth`. Used only for values the schema
    /// allows to be ignored (unknown, non-critical COSE header parameters).
    pub fn skip(&mut self, depth: usize) -> Result<(), DecodeError> {
        if depth >= MAX_DEPTH {
            return Err(DecodeError::NestingTooDeep);
        }
        let inner = depth.checked_add(1).ok_or(DecodeError::NestingTooDeep)?;
        match self.peek_major()? {
            MAJOR_UINT | MAJOR_NINT => {
                self.int()?;
            }
            MAJOR_BYTES => {
                self.bytes(usize::MAX)?;
            }
            MAJOR_TEXT => {
                self.text(usize::MAX)?;
            }
            MAJOR_ARRAY => {
                let n = self.array(usize::MAX)?;
                for _ in 0..n {
                    self.skip(inner)?;
                }
            }
            MAJOR_MAP => {
                let n = self.map(usize::MAX)?;
                let mut prev = None;
                for _ in 0..n {
                    let start = self.pos;
                    self.skip(inner)?;
                    let raw = self
                        .buf
                        .get(start..self.pos)
                        .ok_or(DecodeError::Malformed)?;
                    if let Some(p) = prev {
                        match Ord::cmp(p, raw) {
                            core::cmp::Ordering::Less => {}
                            core::cmp::Ordering::Equal => return Err(DecodeError::DuplicateKey),
                            core::cmp::Ordering::Greater => {
                                return Err(DecodeError::UnsortedKeys);
                            }
                        }
                    }
                    prev = Some(raw);
                    self.skip(inner)?;
                }
            }
            MAJOR_TAG => {
                self.tag()?;
                self.skip(inner)?;
            }
            _ => match self.head()? {
                (_, 20..=22) => {}
                _ => return Err(DecodeError::UnexpectedType),
            },
        }
        Ok(())
    }
}

/// Longest text map key accepted.
pub const MAX_KEY_TEXT: usize = 64;

/// A map key: the schema only uses integers and text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key<'a> {
    /// An integer key (fits in `i64`).
    Int(i64),
    /// A text key.
    Text(&'a str),
}

/// Encodes a CBOR head into `out` in shortest form. Shared by the
/// `Sig_structure` builder so the device never needs an encoder crate.
pub fn write_head(out: &mut alloc::vec::Vec<u8>, major: u8, arg: u64) {
    let m = major << 5;
    if arg < 24 {
        out.push(m | (arg as u8));
    } else if let Ok(v) = u8::try_from(arg) {
        out.push(m | 24);
        out.push(v);
    } else if let Ok(v) = u16::try_from(arg) {
        out.push(m | 25);
        out.extend_from_slice(&v.to_be_bytes());
    } else if let Ok(v) = u32::try_from(arg) {
        out.push(m | 26);
        out.extend_from_slice(&v.to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&arg.to_be_bytes());
    }
}

/// Major type numbers, for [`write_head`].
pub mod major {
    /// Unsigned integer.
    pub const UINT: u8 = super::MAJOR_UINT;
    /// Map.
    pub const MAP: u8 = super::MAJOR_MAP;
    /// Byte string.
    pub const BYTES: u8 = super::MAJOR_BYTES;
    /// Text string.
    pub const TEXT: u8 = super::MAJOR_TEXT;
    /// Array.
    pub const ARRAY: u8 = super::MAJOR_ARRAY;
}
