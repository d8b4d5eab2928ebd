//! The recompressing patch's header and region tables (docs/format.md,
//! "Recompressing patch").

use deltaseal_verify::bundle::ImageRef;

use crate::RecompressError;

/// The first 8 bytes of a recompressing patch (defined beside the patch
/// format's, which `deltaseal-verify` refuses by name).
pub const MAGIC: [u8; 8] = deltaseal_verify::patch::RECOMPRESSING_MAGIC;
/// The format version this crate writes and reads.
pub const VERSION: u16 = 1;
/// Length of the fixed header.
pub const HEADER_LEN: usize = 104;
/// Length of one region entry.
pub const REGION_LEN: usize = 40;
/// Region codec id: an LZMA stream without end marker, as the LZMA SDK's
/// `LzmaEncode` writes it (the 13-byte `.lzma` header stays outside the
/// region, in the image).
pub const CODEC_LZMA: u8 = 1;

/// Resource limits a reader enforces before expanding anything.
///
/// ```
/// let limits = deltaseal_recompress::Limits::default();
/// assert_eq!(limits.max_dict_size, 64 << 20);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most regions per image.
    pub max_regions: u32,
    /// Largest decompressed length of one region, and of all regions of an
    /// image together.
    pub max_raw_len: u64,
    /// Largest LZMA dictionary; the encoder holds about 10 bytes per
    /// dictionary byte (its binary-tree match finder).
    pub max_dict_size: u32,
}

impl Default for Limits {
    /// 64 regions, 256 MiB decompressed, 64 MiB dictionaries (7-Zip's
    /// largest preset; EDK2 writes 16 MiB).
    fn default() -> Self {
        Limits {
            max_regions: 64,
            max_raw_len: 256 << 20,
            max_dict_size: 64 << 20,
        }
    }
}

/// LZMA parameters of a region: what a decoder needs (`lc`, `lp`, `pb`,
/// dictionary) and, for new-image regions, what the encoder was run with
/// (`fb`, `mc`; the encoder is the LZMA SDK's optimal parser with a BT4
/// match finder).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LzmaParams {
    /// Literal context bits, `0..=8`.
    pub lc: u8,
    /// Literal position bits, `0..=4`.
    pub lp: u8,
    /// Position bits, `0..=4`.
    pub pb: u8,
    /// Dictionary size in bytes, `4096..=limits.max_dict_size`.
    pub dict_size: u32,
    /// Fast bytes (`fb`), `5..=273`; 0 in old-image regions.
    pub fb: u16,
    /// Match-finder cycles (`mc`), `1..=2^30`; 0 in old-image regions.
    pub mc: u32,
}

impl LzmaParams {
    /// The `.lzma` properties byte: `(pb * 5 + lp) * 9 + lc`.
    pub fn props_byte(&self) -> u8 {
        (self.pb * 5 + self.lp) * 9 + self.lc
    }
}

/// One compressed stream of an image and its decompressed length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// Where the stream's LZMA data start in the (compressed) image.
    pub offset: u64,
    /// Bytes of LZMA data in the image.
    pub stored_len: u64,
    /// Bytes it decompresses to.
    pub raw_len: u64,
    /// How it was compressed.
    pub params: LzmaParams,
}

impl Region {
    /// First byte after the stream in the image.
    fn end(&self) -> Option<u64> {
        self.offset.checked_add(self.stored_len)
    }
}

/// A decoded recompressing-patch header: the outer images, the streams
/// expanded in each, and where the inner patch (expanded old to expanded
/// new) starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecompressHeader {
    /// Size of the old image.
    pub old_size: u64,
    /// SHA-256 of the old image.
    pub old_digest: [u8; 32],
    /// Size of the new image.
    pub new_size: u64,
    /// SHA-256 of the new image.
    pub new_digest: [u8; 32],
    /// Streams of the old image that are decompressed before the inner
    /// patch reads it, sorted by offset.
    pub old_regions: Vec<Region>,
    /// Streams of the new image: the inner patch writes them decompressed
    /// and the applier compresses them again, sorted by offset.
    pub new_regions: Vec<Region>,
}

impl RecompressHeader {
    /// The old image this patch applies to, as a manifest names it.
    pub fn precursor(&self) -> ImageRef {
        ImageRef {
            size: self.old_size,
            digest: self.old_digest,
        }
    }

    /// The new image this patch makes, as a manifest names it.
    pub fn target(&self) -> ImageRef {
        ImageRef {
            size: self.new_size,
            digest: self.new_digest,
        }
    }

    /// Bytes of header and region tables: where the inner patch starts.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + REGION_LEN * (self.old_regions.len() + self.new_regions.len())
    }

    /// Size of the old image with its regions decompressed.
    pub fn expanded_old_size(&self) -> Result<u64, RecompressError> {
        expanded_size(self.old_size, &self.old_regions)
    }

    /// Size of the new image with its regions decompressed.
    pub fn expanded_new_size(&self) -> Result<u64, RecompressError> {
        expanded_size(self.new_size, &self.new_regions)
    }

    /// The header and region tables.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&count(&self.old_regions).to_le_bytes());
        out.extend_from_slice(&count(&self.new_regions).to_le_bytes());
        out.extend_from_slice(&self.old_size.to_le_bytes());
        out.extend_from_slice(&self.old_digest);
        out.extend_from_slice(&self.new_size.to_le_bytes());
        out.extend_from_slice(&self.new_digest);
        out.extend_from_slice(&[0; 4]);
        for region in self.old_regions.iter().chain(&self.new_regions) {
            out.extend_from_slice(&region.offset.to_le_bytes());
            out.extend_from_slice(&region.stored_len.to_le_bytes());
            out.extend_from_slice(&region.raw_len.to_le_bytes());
            let p = &region.params;
            out.extend_from_slice(&[CODEC_LZMA, p.lc, p.lp, p.pb]);
            out.extend_from_slice(&p.dict_size.to_le_bytes());
            out.extend_from_slice(&p.mc.to_le_bytes());
            out.extend_from_slice(&p.fb.to_le_bytes());
            out.extend_from_slice(&[0, 0]);
        }
        out
    }

    /// Decode and check the header and region tables at the start of
    /// `patch`: magic, version, reserved bytes, every region's parameters
    /// against `limits`, regions sorted, disjoint and inside their image.
    ///
    /// ```
    /// use deltaseal_recompress::{Limits, RecompressError, RecompressHeader};
    /// let err = RecompressHeader::decode(b"DSLPATCH", &Limits::default());
    /// assert!(matches!(err, Err(RecompressError::BadMagic)));
    /// ```
    pub fn decode(patch: &[u8], limits: &Limits) -> Result<Self, RecompressError> {
        let mut r = Reader(patch);
        if r.take::<8>()? != MAGIC {
            return Err(RecompressError::BadMagic);
        }
        let version = u16::from_le_bytes(r.take()?);
        if version != VERSION {
            return Err(RecompressError::UnsupportedVersion { found: version });
        }
        if r.take::<2>()? != [0, 0] {
            return Err(RecompressError::ReservedNotZero);
        }
        let old_count = u32::from_le_bytes(r.take()?);
        let new_count = u32::from_le_bytes(r.take()?);
        if old_count > limits.max_regions || new_count > limits.max_regions {
            return Err(RecompressError::TooManyRegions);
        }
        let old_size = u64::from_le_bytes(r.take()?);
        let old_digest = r.take()?;
        let new_size = u64::from_le_bytes(r.take()?);
        let new_digest = r.take()?;
        if r.take::<4>()? != [0; 4] {
            return Err(RecompressError::ReservedNotZero);
        }
        let old_regions = regions(&mut r, old_count, old_size, false, limits)?;
        let new_regions = regions(&mut r, new_count, new_size, true, limits)?;
        let header = RecompressHeader {
            old_size,
            old_digest,
            new_size,
            new_digest,
            old_regions,
            new_regions,
        };
        header.expanded_old_size()?;
        header.expanded_new_size()?;
        Ok(header)
    }
}

/// True if `bytes` starts like a recompressing patch (the magic only).
///
/// ```
/// assert!(deltaseal_recompress::is_recompressing(b"DSLRECMP\x01\x00"));
/// assert!(!deltaseal_recompress::is_recompressing(b"DSLPATCH\x04\x00"));
/// ```
pub fn is_recompressing(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

fn count(regions: &[Region]) -> u32 {
    // The writer never has more regions than `Limits::max_regions`.
    u32::try_from(regions.len()).unwrap_or(u32::MAX)
}

fn expanded_size(size: u64, regions: &[Region]) -> Result<u64, RecompressError> {
    regions.iter().try_fold(size, |size, r| {
        size.checked_sub(r.stored_len)
            .and_then(|s| s.checked_add(r.raw_len))
            .ok_or(RecompressError::RegionOutOfBounds)
    })
}

fn regions(
    r: &mut Reader<'_>,
    count: u32,
    image_size: u64,
    encoded: bool,
    limits: &Limits,
) -> Result<Vec<Region>, RecompressError> {
    let mut out = Vec::new();
    let mut next_free = 0u64;
    let mut raw_total = 0u64;
    for _ in 0..count {
        let offset = u64::from_le_bytes(r.take()?);
        let stored_len = u64::from_le_bytes(r.take()?);
        let raw_len = u64::from_le_bytes(r.take()?);
        let [codec, lc, lp, pb] = r.take()?;
        let dict_size = u32::from_le_bytes(r.take()?);
        let mc = u32::from_le_bytes(r.take()?);
        let fb = u16::from_le_bytes(r.take()?);
        if r.take::<2>()? != [0, 0] {
            return Err(RecompressError::ReservedNotZero);
        }
        if codec != CODEC_LZMA {
            return Err(RecompressError::UnknownCodec { id: codec });
        }
        let params = LzmaParams {
            lc,
            lp,
            pb,
            dict_size,
            fb,
            mc,
        };
        let encoder_ok = if encoded {
            (5..=273).contains(&fb) && (1..=1 << 30).contains(&mc)
        } else {
            fb == 0 && mc == 0
        };
        if lc > 8
            || lp > 4
            || pb > 4
            || !(4096..=limits.max_dict_size).contains(&dict_size)
            || !encoder_ok
        {
            return Err(RecompressError::BadParams);
        }
        raw_total = raw_total
            .checked_add(raw_len)
            .ok_or(RecompressError::TooLarge)?;
        if stored_len == 0 || raw_len == 0 || raw_total > limits.max_raw_len {
            return Err(RecompressError::TooLarge);
        }
        let region = Region {
            offset,
            stored_len,
            raw_len,
            params,
        };
        let end = region.end().ok_or(RecompressError::RegionOutOfBounds)?;
        if offset < next_free || end > image_size {
            return Err(RecompressError::RegionOutOfBounds);
        }
        next_free = end;
        out.push(region);
    }
    Ok(out)
}

/// Fixed-width reads off the front of a byte slice.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], RecompressError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(RecompressError::Truncated)?;
        self.0 = rest;
        Ok(*head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> RecompressHeader {
        let params = LzmaParams {
            lc: 3,
            lp: 0,
            pb: 2,
            dict_size: 1 << 24,
            fb: 32,
            mc: 32,
        };
        RecompressHeader {
            old_size: 1000,
            old_digest: [1; 32],
            new_size: 2000,
            new_digest: [2; 32],
            old_regions: vec![Region {
                offset: 100,
                stored_len: 400,
                raw_len: 9000,
                params: LzmaParams {
                    fb: 0,
                    mc: 0,
                    ..params
                },
            }],
            new_regions: vec![
                Region {
                    offset: 10,
                    stored_len: 90,
                    raw_len: 300,
                    params,
                },
                Region {
                    offset: 100,
                    stored_len: 1900,
                    raw_len: 5000,
                    params,
                },
            ],
        }
    }

    /// Re-encode `h` after `edit` changed its bytes at `at`.
    fn decode_edited(at: usize, bytes: &[u8]) -> Result<RecompressHeader, RecompressError> {
        let mut encoded = header().encode();
        encoded[at..at + bytes.len()].copy_from_slice(bytes);
        RecompressHeader::decode(&encoded, &Limits::default())
    }

    #[test]
    fn a_header_round_trips() {
        let h = header();
        let encoded = h.encode();
        assert_eq!(encoded.len(), h.encoded_len());
        assert_eq!(
            RecompressHeader::decode(&encoded, &Limits::default()).unwrap(),
            h
        );
        assert_eq!(h.expanded_old_size().unwrap(), 1000 - 400 + 9000);
        assert_eq!(
            h.expanded_new_size().unwrap(),
            2000 - 90 - 1900 + 300 + 5000
        );
    }

    #[test]
    fn every_truncation_is_refused() {
        let encoded = header().encode();
        for len in 0..encoded.len() {
            let err = RecompressHeader::decode(&encoded[..len], &Limits::default());
            assert!(
                matches!(
                    err,
                    Err(RecompressError::Truncated | RecompressError::BadMagic)
                ),
                "{len}: {err:?}"
            );
        }
    }

    #[test]
    fn hostile_fields_are_refused() {
        use RecompressError as E;
        let first = HEADER_LEN; // the old region
        let second = HEADER_LEN + REGION_LEN; // the first new region
        let third = HEADER_LEN + 2 * REGION_LEN;
        type Case = (usize, Vec<u8>, fn(&RecompressError) -> bool);
        let cases: Vec<Case> = vec![
            (0, b"DSLPATCH".to_vec(), |e| matches!(e, E::BadMagic)),
            (8, vec![2, 0], |e| {
                matches!(e, E::UnsupportedVersion { found: 2 })
            }),
            (10, vec![1], |e| matches!(e, E::ReservedNotZero)),
            (100, vec![1], |e| matches!(e, E::ReservedNotZero)),
            (12, 65u32.to_le_bytes().to_vec(), |e| {
                matches!(e, E::TooManyRegions)
            }),
            (first + 38, vec![1], |e| matches!(e, E::ReservedNotZero)),
            (first + 24, vec![2], |e| {
                matches!(e, E::UnknownCodec { id: 2 })
            }),
            (first + 25, vec![9], |e| matches!(e, E::BadParams)),
            (first + 26, vec![5], |e| matches!(e, E::BadParams)),
            (first + 27, vec![5], |e| matches!(e, E::BadParams)),
            // Old regions name no encoder settings.
            (first + 36, vec![32], |e| matches!(e, E::BadParams)),
            (second + 36, vec![4], |e| matches!(e, E::BadParams)),
            (second + 36, vec![18, 1], |e| matches!(e, E::BadParams)),
            (second + 32, vec![0; 4], |e| matches!(e, E::BadParams)),
            (second + 28, 4095u32.to_le_bytes().to_vec(), |e| {
                matches!(e, E::BadParams)
            }),
            (second + 28, (65u32 << 20).to_le_bytes().to_vec(), |e| {
                matches!(e, E::BadParams)
            }),
            (second + 8, vec![0; 8], |e| matches!(e, E::TooLarge)),
            (second + 16, vec![0; 8], |e| matches!(e, E::TooLarge)),
            (second + 16, (257u64 << 20).to_le_bytes().to_vec(), |e| {
                matches!(e, E::TooLarge)
            }),
            (second + 16, u64::MAX.to_le_bytes().to_vec(), |e| {
                matches!(e, E::TooLarge)
            }),
            // Overlapping the next region, past the image, wrapping around.
            (second + 8, 91u64.to_le_bytes().to_vec(), |e| {
                matches!(e, E::RegionOutOfBounds)
            }),
            (third + 8, 1901u64.to_le_bytes().to_vec(), |e| {
                matches!(e, E::RegionOutOfBounds)
            }),
            (third, u64::MAX.to_le_bytes().to_vec(), |e| {
                matches!(e, E::RegionOutOfBounds)
            }),
            (first, 601u64.to_le_bytes().to_vec(), |e| {
                matches!(e, E::RegionOutOfBounds)
            }),
        ];
        for (at, bytes, expected) in cases {
            let err = decode_edited(at, &bytes).expect_err("an edited header decoded");
            assert!(expected(&err), "byte {at}: {err:?}");
        }
    }
}
