//! Which branch-target prediction ([`Transform`]) suits an image, from its
//! headers: ELF `e_machine`, PE `Machine`, or a Cortex-M vector table.

use deltaseal_verify::patch::Transform;

fn u16_le(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_le(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The transform for `image`'s instruction set, or [`Transform::None`]
/// when its headers name none this writer predicts (then the patch is
/// plain version 3).
///
/// - ELF (little-endian): `e_machine` 3 (i386) or 62 (x86-64) is x86,
///   40 (ARM) is Thumb-2.
/// - PE: `Machine` 0x14c or 0x8664 is x86, 0x1c2 or 0x1c4 (ARM Thumb) is
///   Thumb-2.
/// - A raw Cortex-M image starts with its vector table: an initial stack
///   pointer in SRAM (`0x2000_0000..0x4000_0000`, word-aligned), then a
///   reset handler and NMI and HardFault handlers with the Thumb bit set
///   (or 0).
///
/// ```
/// use deltaseal_diff::detect_transform;
/// use deltaseal_verify::patch::Transform;
/// let mut elf = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
/// elf.resize(64, 0);
/// elf[18] = 62; // EM_X86_64
/// assert_eq!(detect_transform(&elf), Transform::X86);
/// assert_eq!(detect_transform(b"plain data"), Transform::None);
/// ```
pub fn detect_transform(image: &[u8]) -> Transform {
    elf(image)
        .or_else(|| pe(image))
        .or_else(|| cortex_m(image))
        .unwrap_or(Transform::None)
}

fn elf(b: &[u8]) -> Option<Transform> {
    // Little-endian (EI_DATA = 1) only: the fields the transforms read are
    // little-endian.
    if b.get(..4)? != b"\x7fELF" || *b.get(5)? != 1 {
        return None;
    }
    match u16_le(b, 18)? {
        3 | 62 => Some(Transform::X86),
        40 => Some(Transform::Thumb2),
        _ => None,
    }
}

fn pe(b: &[u8]) -> Option<Transform> {
    if b.get(..2)? != b"MZ" {
        return None;
    }
    let at = usize::try_from(u32_le(b, 0x3c)?).ok()?;
    if b.get(at..at.checked_add(4)?)? != b"PE\0\0" {
        return None;
    }
    match u16_le(b, at + 4)? {
        0x14c | 0x8664 => Some(Transform::X86),
        0x1c2 | 0x1c4 => Some(Transform::Thumb2),
        _ => None,
    }
}

fn cortex_m(b: &[u8]) -> Option<Transform> {
    let sp = u32_le(b, 0)?;
    let handler = |at| u32_le(b, at).map(|h| h & 1 == 1 || h == 0);
    let vectors = (0x2000_0000..0x4000_0000).contains(&sp)
        && sp % 4 == 0
        && u32_le(b, 4)? & 1 == 1
        && handler(8)?
        && handler(12)?;
    vectors.then_some(Transform::Thumb2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cortex_m_vector_table() {
        let mut img = Vec::new();
        for w in [0x2000_8000u32, 0x0802_a4a1, 0x0802_a4f1, 0x0802_a4f1] {
            img.extend_from_slice(&w.to_le_bytes());
        }
        assert_eq!(detect_transform(&img), Transform::Thumb2);
        img[4] &= !1; // reset handler without the Thumb bit
        assert_eq!(detect_transform(&img), Transform::None);
        assert_eq!(detect_transform(&img[..6]), Transform::None);
    }

    #[test]
    fn pe_machine() {
        let mut img = vec![0u8; 0x100];
        img[..2].copy_from_slice(b"MZ");
        img[0x3c] = 0x80;
        img[0x80..0x84].copy_from_slice(b"PE\0\0");
        img[0x84..0x86].copy_from_slice(&0x8664u16.to_le_bytes());
        assert_eq!(detect_transform(&img), Transform::X86);
        img[0x3c] = 0xff; // PE header out of range
        assert_eq!(detect_transform(&img), Transform::None);
    }
}
