//! A TIFF's first directory, walked by hand before any decoder reads it: whether its tags claim no more data than
//! the file holds, and the size and orientation it records. By hand because the `tiff` crate (0.10) reads that
//! directory before any limit can be set and sizes a tag's buffer from its claimed count, up to 256 MiB (the
//! fuzzer made a 3.8 KB TIFF allocate 33 MB in the header read this way), and refuses the header of layouts it
//! cannot decode (palette, CIELab, planar, 2-bit grey) that libtiff decodes.

/// What the first directory records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Directory {
    /// `ImageWidth`.
    pub width: u32,
    /// `ImageLength`.
    pub height: u32,
    /// `Orientation`, 1 (the default) to 8, as EXIF numbers it.
    pub orientation: u8,
    /// Whether it has samples beyond its colour model's (`ExtraSamples`, or more `SamplesPerPixel` than grey or RGB
    /// need): an alpha channel, or samples of unknown use.
    pub extra_samples: bool,
}

/// The first directory's entries: tag, type, count, and where its inline value starts.
struct Entries<'a> {
    bytes: &'a [u8],
    little: bool,
    big: bool,
    at: usize,
    left: usize,
}

impl Entries<'_> {
    fn read(&self, at: usize, len: usize) -> Option<u64> {
        let field = self.bytes.get(at..at.checked_add(len)?)?;
        let fold = |acc: u64, b: &u8| (acc << 8) | u64::from(*b);
        Some(if self.little { field.iter().rev().fold(0, fold) } else { field.iter().fold(0, fold) })
    }
}

/// One entry: tag, field type, value count, and the offset of its value field.
type Entry = (u64, u64, u64, usize);

impl Iterator for Entries<'_> {
    /// `None` inside: an entry cut off by the file's end.
    type Item = Option<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let (field_len, entry_len) = if self.big { (8, 20) } else { (4, 12) };
        let entry = self.at;
        self.at += entry_len;
        let read = || Some((self.read(entry, 2)?, self.read(entry + 2, 2)?, self.read(entry + 4, field_len)?));
        Some(read().map(|(tag, kind, count)| (tag, kind, count, entry + 4 + field_len)))
    }
}

/// The first directory's entries; `None` when the header or the directory's count cannot be read.
fn entries(bytes: &[u8]) -> Option<Entries<'_>> {
    let little = match bytes.get(..2)? {
        b"II" => true,
        b"MM" => false,
        _ => return None,
    };
    let mut walk = Entries { bytes, little, big: false, at: 0, left: 0 };
    walk.big = walk.read(2, 2)? == 43;
    // Classic TIFF: u32 offsets, u16 entry count, 12-byte entries; BigTIFF: u64, u64, 20-byte entries.
    let (offset, count_len) = if walk.big { (walk.read(8, 8)?, 8) } else { (walk.read(4, 4)?, 2) };
    let ifd = usize::try_from(offset).ok()?;
    walk.left = usize::try_from(walk.read(ifd, count_len)?).ok()?.min(4096);
    walk.at = ifd + count_len;
    Some(walk)
}

/// Whether every tag of the first directory claims no more data than the file holds. A file this walk cannot
/// follow is left to the decoder, which refuses it.
pub(super) fn values_fit(bytes: &[u8]) -> bool {
    let Some(walk) = entries(bytes) else { return true };
    for entry in walk {
        let Some((_, kind, count, _)) = entry else { return true };
        let size = match kind {
            3 | 8 => 2,
            4 | 9 | 11 | 13 => 4,
            5 | 10 | 12 | 16..=18 => 8,
            _ => 1,
        };
        // A tag with no values at all is malformed too (the `tiff` crate indexes its first value).
        if count == 0 || count.saturating_mul(size) > bytes.len() as u64 {
            return false;
        }
    }
    true
}

/// The size and orientation the first directory records; `None` without a width and a height.
pub fn first_directory(bytes: &[u8]) -> Option<Directory> {
    let walk = entries(bytes)?;
    let (little, big) = (walk.little, walk.big);
    let reader = Entries { bytes, little, big, at: 0, left: 0 };
    let (mut width, mut height, mut orientation, mut extra_samples) = (None, None, 1, false);
    let (mut photometric, mut samples) = (None, 1);
    for entry in walk {
        let (tag, kind, _, value) = entry?;
        // SHORT (3) or LONG (4) values sit inline, at the start of the value field.
        let number = match kind {
            3 => reader.read(value, 2),
            4 => reader.read(value, 4),
            _ => None,
        };
        match (tag, number) {
            (256, Some(n)) => width = u32::try_from(n).ok(),
            (257, Some(n)) => height = u32::try_from(n).ok(),
            (274, Some(n @ 1..=8)) => orientation = n as u8,
            (338, _) => extra_samples = true,
            (262, Some(n)) => photometric = Some(n),
            (277, Some(n)) => samples = n,
            _ => {}
        }
    }
    // Grey (0, 1) needs one sample, RGB (2) three; others (palette, CMYK, YCbCr, Lab) are left to the tag.
    extra_samples |= match photometric {
        Some(0 | 1) => samples > 1,
        Some(2) => samples > 3,
        _ => false,
    };
    Some(Directory { width: width?, height: height?, orientation, extra_samples })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::sample_image;
    use image::ImageFormat;

    #[test]
    fn the_first_directory_gives_size_and_orientation() {
        let tiff = sample_image(ImageFormat::Tiff, 40, 30);
        assert_eq!(
            first_directory(&tiff),
            Some(Directory { width: 40, height: 30, orientation: 1, extra_samples: false })
        );
        assert_eq!(first_directory(b"II*\0\xFF\xFF\xFF\x7F"), None, "a directory past the end");
        assert_eq!(first_directory(b"not a tiff"), None);
    }
}
