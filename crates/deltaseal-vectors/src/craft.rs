//! Hand-built inputs: patches with chosen chunk bodies, and raw CBOR pieces
//! for bundles that no honest writer would produce.

use deltaseal_verify::bundle::cbor::{major, write_head};
use deltaseal_verify::digest::sha256;
use deltaseal_verify::patch::{
    ChunkBodyHeader, ChunkEntry, Codec, PatchHeader, Transform, chunk_memory,
};

/// LEB128 varint, as the control stream encodes it.
pub fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A control stream from `(add, extra, seek)` triples.
pub fn ctrl(triples: &[(u64, u64, i64)]) -> Vec<u8> {
    let mut c = Vec::new();
    for &(a, e, s) in triples {
        varint(&mut c, a);
        varint(&mut c, e);
        varint(&mut c, ((s << 1) ^ (s >> 63)) as u64);
    }
    c
}

/// One chunk body, streams stored raw unless a length is overridden.
#[derive(Debug, Clone, Default)]
pub struct Body {
    /// Where the old cursor starts.
    pub old_offset: u64,
    /// Control stream bytes (as stored).
    pub ctrl: Vec<u8>,
    /// Diff stream bytes (as stored).
    pub diff: Vec<u8>,
    /// Extra stream bytes (as stored).
    pub extra: Vec<u8>,
    /// Declared decoded control length, if not the stored length.
    pub ctrl_len: Option<u32>,
    /// Stored lengths as declared, if not the real ones: (ctrl, diff, extra).
    pub stored: Option<(u32, u32, u32)>,
    /// The extra stream's old-image reference as declared: (offset, length).
    pub reference: (u64, u32),
}

impl Body {
    /// The encoded body: 44-byte body header, then the three streams.
    pub fn encode(&self) -> Vec<u8> {
        let (cs, ds, es) = self.stored.unwrap_or((
            self.ctrl.len() as u32,
            self.diff.len() as u32,
            self.extra.len() as u32,
        ));
        let bh = ChunkBodyHeader {
            old_offset: self.old_offset,
            ctrl_len: self.ctrl_len.unwrap_or(self.ctrl.len() as u32),
            ctrl_stored: cs,
            diff_len: self.diff.len() as u32,
            diff_stored: ds,
            extra_len: self.extra.len() as u32,
            extra_stored: es,
            ref_offset: self.reference.0,
            ref_len: self.reference.1,
        };
        let mut b = bh.encode().to_vec();
        b.extend_from_slice(&self.ctrl);
        b.extend_from_slice(&self.diff);
        b.extend_from_slice(&self.extra);
        b
    }
}

/// A patch claiming to turn `old` into `new`, with the given encoded chunk
/// bodies and every digest and the declared memory computed honestly.
pub fn assemble(
    old: &[u8],
    new: &[u8],
    chunk_size: u32,
    codec: Codec,
    bodies: &[Vec<u8>],
) -> Vec<u8> {
    let cs = chunk_size as usize;
    let mut chunks = Vec::new();
    let mut mem = 0;
    for (i, b) in bodies.iter().enumerate() {
        let s = (i * cs).min(new.len());
        let e = (s + cs).min(new.len());
        // A body the reader's frame walk refuses (a negative case) declares
        // its buffers only, so the reader gets as far as that refusal.
        let out_len = (e - s) as u64;
        let m = chunk_memory(codec, Transform::None, out_len, b).or_else(|| {
            let bh = ChunkBodyHeader::decode(b)?;
            out_len.checked_add(bh.decoded_len())
        });
        if let Some(m) = m {
            mem = mem.max(m);
        }
        chunks.push(ChunkEntry {
            stored_len: b.len() as u64,
            stored_digest: sha256(b),
            output_digest: sha256(&new[s..e]),
        });
    }
    let h = PatchHeader {
        codec,
        transform: Transform::None,
        image_base: 0,
        old_size: old.len() as u64,
        old_digest: sha256(old),
        new_size: new.len() as u64,
        new_digest: sha256(new),
        chunk_size,
        decoder_memory: mem,
        chunks,
    };
    let mut p = h.encode();
    for b in bodies {
        p.extend_from_slice(b);
    }
    p
}

/// Overwrites a little-endian integer of `N` bytes at `off`.
pub fn set_le<const N: usize>(p: &mut [u8], off: usize, v: u64) {
    p[off..off + N].copy_from_slice(&v.to_le_bytes()[..N]);
}

/// CBOR head (major type + argument), shortest form.
pub fn head(major: u8, arg: u64) -> Vec<u8> {
    let mut out = Vec::new();
    write_head(&mut out, major, arg);
    out
}

/// CBOR byte string.
pub fn bstr(b: &[u8]) -> Vec<u8> {
    let mut out = head(major::BYTES, b.len() as u64);
    out.extend_from_slice(b);
    out
}

/// CBOR integer.
pub fn int(i: i64) -> Vec<u8> {
    if i >= 0 {
        head(0, i as u64)
    } else {
        head(1, (-1 - i) as u64)
    }
}

/// CBOR text string.
pub fn text(s: &str) -> Vec<u8> {
    let mut out = head(major::TEXT, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
    out
}

/// The authentication wrapper value: `bstr([bstr(digest), *bstr(sign1)])`.
pub fn auth(suit_digest: &[u8], sign1s: &[Vec<u8>]) -> Vec<u8> {
    let mut inner = head(major::ARRAY, 1 + sign1s.len() as u64);
    inner.extend(bstr(suit_digest));
    for s in sign1s {
        inner.extend(bstr(s));
    }
    bstr(&inner)
}

/// A tagged envelope from already encoded `(key, value)` pairs, in the order given.
pub fn envelope(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![0xd8, 0x6b];
    out.extend(head(5, entries.len() as u64));
    for (k, v) in entries {
        out.extend_from_slice(k);
        out.extend_from_slice(v);
    }
    out
}

/// A COSE_Sign1 with the given protected bytes, raw unprotected map and signature.
pub fn sign1_raw(protected: &[u8], unprotected: &[u8], signature: &[u8]) -> Vec<u8> {
    let mut out = vec![0xd2, 0x84];
    out.extend(bstr(protected));
    out.extend_from_slice(unprotected);
    out.push(0xf6);
    out.extend(bstr(signature));
    out
}
