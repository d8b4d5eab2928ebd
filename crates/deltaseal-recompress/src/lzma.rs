//! LZMA streams inside images: finding them, decoding them (C liblzma) and
//! encoding them again bit for bit (the LZMA SDK encoder, `lzma-sdk-rs`).

use liblzma::stream::{Action, Status, Stream};

use crate::format::{Limits, LzmaParams, Region};

/// Length of the `.lzma` ("LZMA alone") header: properties byte, 32-bit
/// dictionary size, 64-bit decompressed size.
pub const ALONE_HEADER_LEN: usize = 13;

/// Streams that decompress to less are left alone: a region entry costs
/// 40 bytes and such streams save little.
const MIN_RAW_LEN: u64 = 4096;

/// liblzma's decoder memory beyond the dictionary.
const DECODER_OVERHEAD: u64 = 1 << 20;

/// A stream found in an image, decompressed.
pub struct Found {
    /// Where it is (its parameters have `fb = mc = 0`: not yet reproduced).
    pub region: Region,
    /// What it decompresses to.
    pub raw: Vec<u8>,
}

/// Every `.lzma` stream in `image` with a known decompressed size of at
/// least 4 KiB that liblzma decodes, in order, without overlaps. Lazy:
/// each stream is decoded when the iterator reaches it, so a caller that
/// stops early (at its limits) decodes no more.
///
/// A candidate header has a valid properties byte, a dictionary the SDK
/// writes (2^n or 3 * 2^n, or a multiple of 1 MiB), a size within
/// `limits`, and is followed by a 0 byte (the range coder's first output
/// byte always is): few positions of real images pass that before the
/// trial decode.
pub fn find_streams<'a>(image: &'a [u8], limits: &'a Limits) -> impl Iterator<Item = Found> + 'a {
    let mut at = 0usize;
    core::iter::from_fn(move || {
        while let Some(window) = image.get(at..).filter(|w| !w.is_empty()) {
            let stream = candidate(window, limits).and_then(|(params, raw_len)| {
                let (raw, stored_len) = decode_alone(window, raw_len, params.dict_size)?;
                let region = Region {
                    offset: u64::try_from(at + ALONE_HEADER_LEN).ok()?,
                    stored_len,
                    raw_len,
                    params,
                };
                Some(Found { region, raw })
            });
            match stream {
                Some(stream) => {
                    let len = usize::try_from(stream.region.stored_len).unwrap_or(usize::MAX);
                    at = at.saturating_add(ALONE_HEADER_LEN).saturating_add(len);
                    return Some(stream);
                }
                None => at += 1,
            }
        }
        None
    })
}

/// The parameters and decompressed size a `.lzma` header at the start of
/// `window` announces, if it is a plausible header.
fn candidate(window: &[u8], limits: &Limits) -> Option<(LzmaParams, u64)> {
    let header: &[u8; ALONE_HEADER_LEN + 1] = window.first_chunk()?;
    let [props, d0, d1, d2, d3, s @ ..] = *header;
    let [s0, s1, s2, s3, s4, s5, s6, s7, first] = s;
    if first != 0 || props >= 9 * 5 * 5 {
        return None;
    }
    let dict_size = u32::from_le_bytes([d0, d1, d2, d3]);
    let raw_len = u64::from_le_bytes([s0, s1, s2, s3, s4, s5, s6, s7]);
    let sdk_dict = dict_size.is_power_of_two()
        || (dict_size % 3 == 0 && (dict_size / 3).is_power_of_two())
        || dict_size % (1 << 20) == 0;
    if !sdk_dict
        || !(4096..=limits.max_dict_size).contains(&dict_size)
        || !(MIN_RAW_LEN..=limits.max_raw_len).contains(&raw_len)
    {
        return None;
    }
    let params = LzmaParams {
        lc: props % 9,
        lp: props / 9 % 5,
        pb: props / 45,
        dict_size,
        fb: 0,
        mc: 0,
    };
    Some((params, raw_len))
}

/// Decode the `.lzma` stream at the start of `src` (header included),
/// which must decompress to exactly `raw_len` bytes. Returns the bytes and
/// the length of the LZMA data after the header.
fn decode_alone(src: &[u8], raw_len: u64, dict_size: u32) -> Option<(Vec<u8>, u64)> {
    let limit = u64::from(dict_size).checked_add(DECODER_OVERHEAD)?;
    let mut stream = Stream::new_lzma_decoder(limit).ok()?;
    // The output grows as decoding goes: most candidate headers in an
    // image are not streams and fail within a few bytes, whatever size
    // they announce. The decoder stops at the announced size.
    let mut raw = Vec::new();
    loop {
        let (in_pos, out_pos) = (stream.total_in(), stream.total_out());
        if raw.len() == raw.capacity() {
            // Doubling from 64 KiB, never past the announced size.
            let left = raw_len.checked_sub(out_pos)?.clamp(1, out_pos.max(1 << 16));
            raw.try_reserve_exact(usize::try_from(left).ok()?).ok()?;
        }
        let input = src.get(usize::try_from(in_pos).ok()?..)?;
        if stream.process_vec(input, &mut raw, Action::Run).ok()? == Status::StreamEnd {
            break;
        }
        if stream.total_in() == in_pos && stream.total_out() == out_pos {
            return None; // truncated, or more output than announced
        }
    }
    if stream.total_out() != raw_len {
        return None;
    }
    let stored_len = stream.total_in().checked_sub(ALONE_HEADER_LEN as u64)?;
    Some((raw, stored_len))
}

/// Decompress an old-image region: its `stored_len` bytes of LZMA data
/// must give exactly `raw_len` bytes.
pub fn decode_region(region: &Region, data: &[u8]) -> Option<Vec<u8>> {
    let mut src = alone_header(region).to_vec();
    src.extend_from_slice(data);
    let (raw, stored_len) = decode_alone(&src, region.raw_len, region.params.dict_size)?;
    (stored_len == region.stored_len).then_some(raw)
}

/// The `.lzma` header of a region (its size field the decompressed length).
fn alone_header(region: &Region) -> [u8; ALONE_HEADER_LEN] {
    let mut header = [0; ALONE_HEADER_LEN];
    header[0] = region.params.props_byte();
    header[1..5].copy_from_slice(&region.params.dict_size.to_le_bytes());
    header[5..].copy_from_slice(&region.raw_len.to_le_bytes());
    header
}

/// Compress `raw` as the LZMA SDK's `LzmaEncode` does with `params` (no
/// end marker, no header): what [`apply`](crate::apply) writes for a new
/// image's region.
///
/// ```
/// use deltaseal_recompress::{LzmaParams, lzma_encode};
/// let params = LzmaParams { lc: 3, lp: 0, pb: 2, dict_size: 1 << 16, fb: 32, mc: 32 };
/// let stream = lzma_encode(&b"firmware ".repeat(1000), &params);
/// assert_eq!(stream[0], 0); // the range coder's first byte
/// assert!(stream.len() < 200);
/// ```
pub fn encode(raw: &[u8], params: &LzmaParams) -> Vec<u8> {
    let props = lzma_sdk_rs::LzmaProps {
        lc: params.lc,
        lp: params.lp,
        pb: params.pb,
        dict_size: params.dict_size,
        fb: u32::from(params.fb),
        mc: params.mc,
    };
    lzma_sdk_rs::encode(raw, &props)
}

/// Encoder settings that may have written a stream with these decoder
/// parameters, most likely first: the SDK's levels 5 and 6 (`fb` 32, `mc`
/// 32: EDK2's LzmaCompress and 7-Zip's default) and 7 to 9 (`fb` 64, `mc`
/// 48). The dictionary is the one the header names.
pub fn encoder_candidates(params: &LzmaParams) -> [LzmaParams; 2] {
    [(32, 32), (64, 48)].map(|(fb, mc)| LzmaParams { fb, mc, ..*params })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        let mut rng = deltaseal_testkit::Rng(7);
        let words = [
            &b"firmware "[..],
            b"volume ",
            b"\x00\x00\x00\x00",
            b"driver ",
        ];
        let mut out = Vec::new();
        while out.len() < len {
            out.extend_from_slice(words[rng.below(words.len())]);
            out.push(rng.below(256) as u8);
        }
        out.truncate(len);
        out
    }

    fn alone(raw: &[u8], params: &LzmaParams) -> Vec<u8> {
        let region = Region {
            offset: 0,
            stored_len: 0,
            raw_len: raw.len() as u64,
            params: *params,
        };
        let mut out = alone_header(&region).to_vec();
        out.extend(encode(raw, params));
        out
    }

    pub(crate) const PARAMS: LzmaParams = LzmaParams {
        lc: 3,
        lp: 0,
        pb: 2,
        dict_size: 1 << 16,
        fb: 32,
        mc: 32,
    };

    #[test]
    fn streams_are_found_decoded_and_encoded_again() {
        let raw = sample(50_000);
        let stream = alone(&raw, &PARAMS);
        let mut image = vec![0x5d; 100];
        image.extend_from_slice(&stream);
        image.extend_from_slice(&[0xff; 50]);
        let found: Vec<_> = find_streams(&image, &Limits::default()).collect();
        assert_eq!(found.len(), 1);
        let f = &found[0];
        assert_eq!(f.region.offset, 100 + ALONE_HEADER_LEN as u64);
        assert_eq!(
            f.region.stored_len,
            (stream.len() - ALONE_HEADER_LEN) as u64
        );
        assert_eq!(f.raw, raw);
        assert_eq!(encoder_candidates(&f.region.params)[0], PARAMS);
        assert_eq!(encode(&f.raw, &PARAMS), stream[ALONE_HEADER_LEN..]);
        let data = &image[100 + ALONE_HEADER_LEN..][..stream.len() - ALONE_HEADER_LEN];
        assert_eq!(decode_region(&f.region, data).unwrap(), raw);
    }

    #[test]
    fn damaged_and_truncated_streams_are_not_found() {
        let raw = sample(20_000);
        let mut stream = alone(&raw, &PARAMS);
        assert_eq!(
            find_streams(&stream[..stream.len() - 1], &Limits::default()).count(),
            0
        );
        let region = find_streams(&stream, &Limits::default())
            .next()
            .unwrap()
            .region;
        let data = stream[ALONE_HEADER_LEN..].to_vec();
        assert!(decode_region(&region, &data[..data.len() - 1]).is_none());
        let short = Region {
            raw_len: region.raw_len + 1,
            ..region
        };
        assert!(decode_region(&short, &data).is_none());
        // A larger announced size than the data hold.
        stream[5] = stream[5].wrapping_add(1);
        assert_eq!(find_streams(&stream, &Limits::default()).count(), 0);
    }

    #[test]
    fn small_and_oversized_streams_are_skipped() {
        let small = alone(&sample(4000), &PARAMS);
        assert_eq!(find_streams(&small, &Limits::default()).count(), 0);
        let big = alone(&sample(10_000), &PARAMS);
        let limits = Limits {
            max_raw_len: 9_999,
            ..Limits::default()
        };
        assert_eq!(find_streams(&big, &limits).count(), 0);
    }
}
