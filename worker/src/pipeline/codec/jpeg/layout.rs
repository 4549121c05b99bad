//! The layout of a JPEG file: its frame and where each scan lies, found by walking the markers without decoding.
//!
//! Two uses. A JPEG cut short has no end-of-image marker, and both decoders would grey-fill it silently, so an
//! incomplete layout is refused. And a progressive JPEG sends its DC coefficients (one per 8×8 block, the block's
//! mean) in scans of their own, apart from the AC scans that hold the detail. Decoded at 1/8 scale, libjpeg-turbo's
//! 1×1 inverse DCT reads the DC coefficient alone, so the AC scans can be dropped beforehand, skipping most of the
//! entropy decoding, which is what makes progressive JPEGs slow. Two details keep the pixels identical:
//! - a subsampled component whose sampling lets libjpeg-turbo scale it up in the IDCT instead of upsampling (the
//!   chroma of 4:2:0) is decoded with a 2×2 or larger IDCT, which reads AC coefficients: it keeps every scan;
//! - a component with no AC data at all among coefficients 1-9 has its DC values re-estimated from their neighbours
//!   by libjpeg-turbo's block smoothing (`change_dc` in jdcoefct.c). So in place of its AC scans it gets one tiny
//!   scan, made here, saying that every AC coefficient is zero in every block (end-of-band runs). With every
//!   coefficient known, libjpeg-turbo skips block smoothing altogether, as it does for a complete file.

use std::ops::Range;

/// Where a JPEG's scans lie, for a file that reaches its end-of-image marker.
#[derive(Debug)]
pub struct Layout {
    /// Whether the frame is progressive with Huffman coding (SOF2).
    progressive: bool,
    /// Width and height in pixels.
    size: (u32, u32),
    /// The frame's components.
    components: Vec<Component>,
    /// Every scan, in file order.
    scans: Vec<Scan>,
    /// Where the end-of-image marker ends; anything after it (some cameras append data) is not part of the image.
    end: usize,
    /// Whether an Adobe (APP14) segment is present: Adobe's CMYK JPEGs store their inks inverted (255: no ink).
    adobe: bool,
}

#[derive(Debug)]
struct Component {
    id: u8,
    /// Horizontal and vertical sampling factors.
    sampling: (u8, u8),
}

#[derive(Debug)]
struct Scan {
    /// The scan's bytes: marker, header and entropy-coded data.
    bytes: Range<usize>,
    /// The component identifiers it codes (AC scans code one).
    components: Vec<u8>,
    /// Whether it codes AC coefficients (Ss > 0) rather than DC.
    ac: bool,
}

/// Walks a JPEG's markers, skipping segments and entropy-coded data; `None` when the file stops before its
/// end-of-image marker.
pub fn read(data: &[u8]) -> Option<Layout> {
    let mut layout =
        Layout { progressive: false, size: (0, 0), components: Vec::new(), scans: Vec::new(), end: 0, adobe: false };
    let mut i = 2; // after SOI
    loop {
        // Bytes that are no marker where one is due are skipped, as libjpeg does (its "extraneous bytes before
        // marker" is a warning, and browsers show such files).
        i += memchr::memchr(0xFF, data.get(i..)?)?;
        while data.get(i) == Some(&0xFF) {
            i += 1; // fill bytes before a marker
        }
        let marker_start = i - 1;
        let &marker = data.get(i)?;
        i += 1;
        match marker {
            0xD9 => {
                layout.end = i;
                return Some(layout);
            }
            0x00 | 0x01 | 0xD0..=0xD7 => continue, // a stuffed byte in the junk, markers without a length
            _ => {}
        }
        let segment = i;
        let (&hi, &lo) = (data.get(i)?, data.get(i + 1)?);
        i += usize::from(u16::from_be_bytes([hi, lo]));
        let header = data.get(segment + 2..i)?;
        match marker {
            // Frame header: precision, height, width, Nf, then 3 bytes per component (identifier first).
            0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                layout.progressive = marker == 0xC2;
                let &[_, h1, h0, w1, w0, ..] = header else { return None };
                layout.size = (u32::from(u16::from_be_bytes([w1, w0])), u32::from(u16::from_be_bytes([h1, h0])));
                let components = header.get(6..)?.chunks_exact(3);
                layout.components =
                    components.map(|c| Component { id: c[0], sampling: (c[1] >> 4, c[1] & 15) }).collect();
            }
            0xEE => layout.adobe |= header.starts_with(b"Adobe"),
            // Scan header: Ns, 2 bytes per component (identifier first), then Ss, Se, and Ah/Al in one byte.
            0xDA => {
                let count = usize::from(*header.first()?);
                let components = header.get(1..1 + 2 * count)?.chunks_exact(2).map(|c| c[0]).collect();
                let spectral_start = *header.get(1 + 2 * count)?;
                i = entropy_coded_end(data, i)?;
                layout.scans.push(Scan { bytes: marker_start..i, components, ac: spectral_start > 0 });
            }
            _ => {}
        }
    }
}

/// Where entropy-coded data starting at `i` ends: at the next marker that is neither a stuffed 0xFF00 nor a restart
/// marker. It is most of the file, so this jumps from 0xFF to 0xFF with memchr's SIMD search, not a byte loop.
fn entropy_coded_end(data: &[u8], mut i: usize) -> Option<usize> {
    loop {
        i += memchr::memchr(0xFF, data.get(i..)?)?;
        match *data.get(i + 1)? {
            0 | 0xD0..=0xD7 => i += 1,
            _ => return Some(i),
        }
    }
}

impl Layout {
    /// Whether the frame is progressive with Huffman coding.
    pub fn progressive(&self) -> bool {
        self.progressive
    }

    /// Whether the file has an Adobe segment (its CMYK, if any, is stored inverted).
    pub fn adobe(&self) -> bool {
        self.adobe
    }

    /// For a progressive JPEG: the same file without the AC scans a 1/8-scale decode does not read, which decodes at
    /// that scale to the same pixels; `None` when nothing can be dropped. Every other segment (Huffman tables defined
    /// between scans among them) stays, in its order.
    pub fn for_one_eighth(&self, data: &[u8]) -> Option<Vec<u8>> {
        // Zero sizes or sampling factors: a broken header, which the decoder will refuse on its own.
        let broken = self.components.iter().any(|c| c.sampling.0 == 0 || c.sampling.1 == 0);
        if !self.progressive || self.size.0 == 0 || self.size.1 == 0 || broken {
            return None;
        }
        let (h_max, v_max) = self.max_sampling()?;
        // libjpeg-turbo's IDCT size per component at 1/8 (jdmaster.c): doubled while its subsampling allows.
        let dc_only: Vec<&Component> = self
            .components
            .iter()
            .filter(|c| {
                let (h, v) = c.sampling;
                h_max % (2 * h) != 0 || v_max % (2 * v) != 0
            })
            .collect();
        let dropped = |scan: &&Scan| scan.ac && scan.components.iter().all(|id| dc_only.iter().any(|c| c.id == *id));
        if !self.scans.iter().any(|scan| dropped(&scan)) {
            return None;
        }
        let mut kept = Vec::with_capacity(self.end);
        let mut from = 0;
        for scan in self.scans.iter().filter(dropped) {
            kept.extend_from_slice(&data[from..scan.bytes.start]);
            from = scan.bytes.end;
        }
        kept.extend_from_slice(&data[from..self.end - 2]); // up to the end-of-image marker
        kept.extend_from_slice(&[0xFF, 0xDD, 0, 4, 0, 0]); // DRI 0: no restart markers in the scans below
        kept.extend_from_slice(&EOB_RUN_TABLE);
        for component in dc_only {
            zero_ac_scan(&mut kept, component.id, self.blocks(component)?);
        }
        kept.extend_from_slice(&[0xFF, 0xD9]);
        Some(kept)
    }

    /// How many 8×8 blocks a scan of `component` alone covers (libjpeg's `width_in_blocks × height_in_blocks`).
    fn blocks(&self, component: &Component) -> Option<u64> {
        let (h_max, v_max) = self.max_sampling()?;
        let side = |size: u32, factor: u8, max: u8| (u64::from(size) * u64::from(factor)).div_ceil(u64::from(max) * 8);
        let (h, v) = component.sampling;
        (h_max > 0 && v_max > 0).then(|| side(self.size.0, h, h_max) * side(self.size.1, v, v_max))
    }

    /// The largest horizontal and vertical sampling factors: the MCU's size in blocks.
    fn max_sampling(&self) -> Option<(u8, u8)> {
        let h_max = self.components.iter().map(|c| c.sampling.0).max()?;
        Some((h_max, self.components.iter().map(|c| c.sampling.1).max()?))
    }
}

/// `data` with `count` more scans before its end, each saying again that the first component's AC coefficients are
/// zero: a progressive JPEG with as many scans as a test needs.
#[cfg(test)]
pub fn with_empty_scans(data: &[u8], count: usize) -> Option<Vec<u8>> {
    let layout = read(data)?;
    let first = layout.components.first()?;
    let mut out = data[..layout.end - 2].to_vec();
    out.extend_from_slice(&EOB_RUN_TABLE);
    for _ in 0..count {
        zero_ac_scan(&mut out, first.id, layout.blocks(first)?);
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    Some(out)
}

/// A Huffman table for AC table slot 0 holding the 15 end-of-band run symbols (EOB0 to EOB14, run length class r
/// in the high nibble), each with the 4-bit code r.
const EOB_RUN_TABLE: [u8; 36] = [
    0xFF, 0xC4, 0, 34, 0x10, 0, 0, 0, 15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60,
    0x70, 0x80, 0x90, 0xA0, 0xB0, 0xC0, 0xD0, 0xE0,
];

/// Appends a first-pass scan of the AC coefficients of `component` saying they are zero in all its `blocks`:
/// end-of-band runs of up to 32767 blocks each (symbol r, then r bits: 2^r plus those bits blocks).
fn zero_ac_scan(out: &mut Vec<u8>, component: u8, mut blocks: u64) {
    // SOS: length 8, one component using AC table 0, Ss = 1, Se = 63, Ah = Al = 0.
    out.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, component, 0x00, 1, 63, 0]);
    let mut bits = BitWriter::default();
    while blocks > 0 {
        let run = blocks.min(32_767);
        let class = run.ilog2();
        bits.put(u64::from(class), 4);
        bits.put(run - (1 << class), class);
        blocks -= run;
    }
    bits.finish(out);
}

/// Entropy-coded bits, most significant first, with a 0x00 stuffed after every 0xFF byte.
#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    pending: u64,
    count: u32,
}

impl BitWriter {
    fn put(&mut self, value: u64, width: u32) {
        self.pending = (self.pending << width) | value;
        self.count += width;
        while self.count >= 8 {
            self.count -= 8;
            self.push((self.pending >> self.count) as u8);
        }
    }

    fn push(&mut self, byte: u8) {
        self.bytes.push(byte);
        if byte == 0xFF {
            self.bytes.push(0);
        }
    }

    /// Pads the last byte with 1 bits, as the standard asks, and appends everything to `out`.
    fn finish(mut self, out: &mut Vec<u8>) {
        if self.count > 0 {
            let pad = 8 - self.count;
            self.put((1 << pad) - 1, pad);
        }
        out.append(&mut self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::ImageFormat;
    use thumbq_common::fixtures::sample_image;

    #[test]
    fn a_jpeg_is_complete_only_up_to_its_end_marker() {
        let jpeg = sample_image(ImageFormat::Jpeg, 64, 48);
        assert!(read(&jpeg).is_some());
        let mut with_trailer = jpeg.clone();
        with_trailer.extend(b"appended by a camera");
        assert_eq!(read(&with_trailer).map(|layout| layout.end), Some(jpeg.len()));
        for cut in [3, 20, jpeg.len() / 2, jpeg.len() - 2] {
            assert!(read(&jpeg[..cut]).is_none(), "cut at {cut} of {}", jpeg.len());
        }
    }

    #[test]
    fn a_baseline_jpeg_has_nothing_to_drop() {
        let jpeg = sample_image(ImageFormat::Jpeg, 64, 48);
        let layout = read(&jpeg).expect("complete");
        assert_eq!(
            (layout.progressive, layout.size, layout.scans.len(), layout.components.len()),
            (false, (64, 48), 1, 3)
        );
        assert!(layout.for_one_eighth(&jpeg).is_none());
    }
}
