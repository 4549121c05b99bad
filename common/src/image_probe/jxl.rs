//! A JPEG XL file's shown size, from the first bytes of its codestream: the `SizeHeader` and the orientation in the
//! `ImageMetadata` after it (ISO/IEC 18181-1, A.3 and A.6), bare or inside the container's `jxlc`/`jxlp` box. By
//! hand because it is a dozen bits and the API must not link a JPEG XL decoder to check an upload's pixel count; the
//! worker's jxl-oxide reads the same fields and the codec refuses a disagreement.

use super::heif::find_box;

/// The codestream's first bytes, bare or out of its container box.
fn codestream(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.starts_with(&[0xFF, 0x0A]) {
        return Some(bytes);
    }
    // The container: a signature box, then boxes; the codestream is whole in `jxlc` or in parts in `jxlp` boxes,
    // each starting with a 4-byte part index.
    let boxes = bytes.get(12..)?;
    find_box(boxes, b"jxlc").or_else(|| find_box(boxes, b"jxlp").and_then(|part| part.get(4..)))
}

/// Reads bits least significant first, as JPEG XL packs them.
struct Bits<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn read(&mut self, count: usize) -> Option<u32> {
        let mut value = 0;
        for i in 0..count {
            let bit = (self.bytes.get(self.at / 8)? >> (self.at % 8)) & 1;
            value |= u32::from(bit) << i;
            self.at += 1;
        }
        Some(value)
    }

    /// A side: `(n + 1) * 8` from 5 bits when the header says sides are multiples of 8, else one of four widths.
    fn side(&mut self, small: bool) -> Option<u32> {
        if small {
            return Some((self.read(5)? + 1) * 8);
        }
        let bits = [9, 13, 18, 30][self.read(2)? as usize];
        Some(self.read(bits)? + 1)
    }
}

/// The width and height the file's image is shown at, or why they cannot be told.
pub fn size(bytes: &[u8]) -> Result<(u32, u32), String> {
    let stream = codestream(bytes).ok_or("it has no codestream")?;
    let mut bits = Bits { bytes: stream.get(2..).ok_or("its codestream is cut short")?, at: 0 };
    let cut = || "its size header is cut short".to_owned();
    let small = bits.read(1).ok_or_else(cut)? == 1;
    let height = bits.side(small).ok_or_else(cut)?;
    let ratio = bits.read(3).ok_or_else(cut)?;
    let width = match ratio {
        0 => bits.side(small).ok_or_else(cut)?,
        ratio => {
            let (numerator, denominator) =
                [(1, 1), (12, 10), (4, 3), (3, 2), (16, 9), (5, 4), (2, 1)][ratio as usize - 1];
            u32::try_from(u64::from(height) * numerator / denominator).map_err(|_| "its width overflows".to_owned())?
        }
    };
    // `ImageMetadata`: all defaults (orientation 1), or an `extra_fields` flag before a 3-bit orientation - 1.
    let all_default = bits.read(1).ok_or_else(cut)? == 1;
    let orientation =
        if !all_default && bits.read(1).ok_or_else(cut)? == 1 { bits.read(3).ok_or_else(cut)? + 1 } else { 1 };
    // Orientations 5 to 8 turn the image a quarter.
    Ok(if orientation > 4 { (height, width) } else { (width, height) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packs `fields` (value, bit count) least significant bit first after the codestream signature.
    fn codestream(fields: &[(u32, usize)]) -> Vec<u8> {
        let mut out = vec![0xFF, 0x0A];
        let mut at = 0;
        for &(value, count) in fields {
            for i in 0..count {
                if at % 8 == 0 {
                    out.push(0);
                }
                *out.last_mut().unwrap() |= (((value >> i) & 1) as u8) << (at % 8);
                at += 1;
            }
        }
        out
    }

    #[test]
    fn sizes_in_each_encoding_and_a_turn() {
        // Multiples of 8: height (3 + 1) * 8, ratio 0, width (9 + 1) * 8; all default.
        assert_eq!(size(&codestream(&[(1, 1), (3, 5), (0, 3), (9, 5), (1, 1)])), Ok((80, 32)));
        // Free sides: 13-bit height 3024 - 1, ratio 4/3 gives 4032; orientation 6 (5 + 1) turns it.
        let turned = codestream(&[(0, 1), (1, 2), (3023, 13), (3, 3), (0, 1), (1, 1), (5, 3)]);
        assert_eq!(size(&turned), Ok((3024, 4032)));
        let upright = codestream(&[(0, 1), (1, 2), (3023, 13), (3, 3), (0, 1), (0, 1)]);
        assert_eq!(size(&upright), Ok((4032, 3024)));
    }

    #[test]
    fn the_container_and_cut_files() {
        let stream = codestream(&[(1, 1), (3, 5), (0, 3), (9, 5), (1, 1)]);
        let mut container = b"\0\0\0\x0CJXL \x0D\x0A\x87\x0A\0\0\0\x14ftypjxl \0\0\0\0jxl ".to_vec();
        container.extend(((stream.len() + 8) as u32).to_be_bytes());
        container.extend(b"jxlc");
        container.extend(&stream);
        assert_eq!(size(&container), Ok((80, 32)));
        assert!(size(&[0xFF, 0x0A, 0x01]).is_err());
        assert!(size(&container[..20]).is_err());
    }
}
