//! A JPEG's header segments, walked by hand up to its first scan: where the header ends (so a header read need not
//! copy the whole file) and the frame's size. By hand because the `image` crate's reader refuses files that
//! libjpeg and browsers show (a short APP14 segment, junk between segments), and a size needs no decoder.

/// The segments before the first scan: each marker with its segment's payload, ending with the scan header.
struct Segments<'a> {
    bytes: &'a [u8],
    at: usize,
    done: bool,
}

impl<'a> Iterator for Segments<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let bytes = self.bytes;
        loop {
            // Bytes that are no marker where one is due are skipped, as libjpeg does (a warning there).
            self.at += memchr::memchr(0xFF, bytes.get(self.at..)?)?;
            while bytes.get(self.at) == Some(&0xFF) {
                self.at += 1;
            }
            let marker = *bytes.get(self.at)?;
            self.at += 1;
            match marker {
                0x00 | 0x01 | 0xD0..=0xD7 => continue,
                0xD9 => return None,
                _ => {}
            }
            let (&high, &low) = (bytes.get(self.at)?, bytes.get(self.at + 1)?);
            let start = self.at + 2;
            self.at += usize::from(u16::from_be_bytes([high, low]));
            self.done = marker == 0xDA;
            return Some((marker, bytes.get(start..self.at.max(start))?));
        }
    }
}

fn segments(bytes: &[u8]) -> Segments<'_> {
    Segments { bytes, at: 2, done: false }
}

/// The bytes up to and including the first scan's header; `None` when the walk stops before it.
pub fn header_end(bytes: &[u8]) -> Option<usize> {
    let mut walk = segments(bytes);
    while let Some((marker, _)) = walk.next() {
        if marker == 0xDA {
            return Some(walk.at);
        }
    }
    None
}

/// The width and height of the frame header (any SOF marker).
pub fn size(bytes: &[u8]) -> Result<(u32, u32), String> {
    for (marker, segment) in segments(bytes) {
        if matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF) {
            // Precision, then height and width, big-endian.
            let &[_, h1, h0, w1, w0, ..] = segment else { return Err("its frame header is cut short".into()) };
            let side = |a, b| u32::from(u16::from_be_bytes([a, b]));
            return Ok((side(w1, w0), side(h1, h0)));
        }
    }
    Err("no frame header before its first scan".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junk_between_segments_and_a_short_app14_do_not_hide_the_frame() {
        // SOI, APP14 of 2 payload bytes, 3 junk bytes, SOF0 for 300x200, SOS.
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xEE, 0, 4, b'A', b'd', 1, 2, 3];
        jpeg.extend_from_slice(&[0xFF, 0xC0, 0, 11, 8, 0, 200, 1, 44, 1, 1, 0x11, 0]);
        jpeg.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 63, 0, 0xAB]);
        assert_eq!(size(&jpeg), Ok((300, 200)));
        assert_eq!(header_end(&jpeg), Some(jpeg.len() - 1));
        assert!(size(&jpeg[..12]).is_err());
    }
}
