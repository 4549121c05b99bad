//! Progressive JPEGs at 1/8 scale from their DC coefficients alone, without the coefficient buffer.
//!
//! At 1/8 scale each 8×8 block becomes one pixel: its DC coefficient, the block's mean. A progressive JPEG sends
//! those in DC scans of their own, but libjpeg-turbo still allocates every coefficient of the whole image before it
//! reads a scan (2 bytes a sample: 54 MB for an 18-megapixel 4:2:0 photo, held until the end), because its
//! progressive decoder is built to revisit blocks. No maintained crate decodes DC scans alone either (zune-jpeg and
//! jpeg-decoder also buffer every coefficient), so the few hundred lines it takes are here: read the quantisation
//! and DC Huffman tables, decode the DC scans (first scans and their refinement bits, interleaved or not, with
//! restart intervals), and keep one value per block: 2 bytes a block instead of 128.
//!
//! Luma comes out as libjpeg-turbo's 1×1 inverse DCT makes it (`(dc·q + 4) >> 3`, level-shifted). Subsampled chroma
//! is taken from its own blocks, replicated over the luma blocks each covers, where libjpeg-turbo runs a 2×2 IDCT
//! over the first AC coefficients: the colours differ slightly at block edges (tested above 35 dB PSNR). Anything
//! else (arithmetic coding, 12-bit samples, CMYK, Adobe-transformed RGB, a frame without DC scans) is left to
//! libjpeg-turbo: [`decode`] answers `None`.

mod entropy;
#[cfg(test)]
mod tests;

use entropy::{Bits, Huffman};
use image::{DynamicImage, GrayImage, RgbImage};

/// A frame component: sampling factors, quantisation table, and its DC value per block.
struct Component {
    id: u8,
    sampling: (usize, usize),
    table: usize,
    /// One DC coefficient a block, `width` blocks a row, padded to whole MCUs.
    dc: Vec<i16>,
    width: usize,
    /// Whether a first DC scan covered it.
    seen: bool,
}

/// The frame as far as the DC scans need it.
struct Frame {
    size: (usize, usize),
    max_sampling: (usize, usize),
    components: Vec<Component>,
}

/// Decodes a progressive Huffman JPEG at 1/8 scale from its DC scans; `None` when it is anything else or broken
/// (libjpeg-turbo then decodes it, and names what is wrong).
pub fn decode(data: &[u8]) -> Option<DynamicImage> {
    let mut quant = [0u16; 4];
    let mut tables: [Huffman; 4] = Default::default();
    let (mut frame, mut restart_interval, mut adobe) = (None::<Frame>, 0usize, false);
    let mut i = 2;
    loop {
        while data.get(i) == Some(&0xFF) {
            i += 1;
        }
        let marker = *data.get(i)?;
        i += 1;
        if marker == 0xD9 {
            break;
        }
        let length = usize::from(u16::from_be_bytes([*data.get(i)?, *data.get(i + 1)?]));
        let segment = data.get(i + 2..i + length)?;
        i += length;
        match marker {
            0xDB => read_quantisation(segment, &mut quant)?,
            0xC4 => read_huffman(segment, &mut tables)?,
            0xC2 => frame = Some(read_frame(segment)?),
            // Any other frame type (baseline, arithmetic, lossless) is not for this decoder.
            0xC0 | 0xC1 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
            0xDD => restart_interval = usize::from(u16::from_be_bytes([*segment.first()?, *segment.get(1)?])),
            0xEE => adobe = segment.starts_with(b"Adobe"),
            0xDA => {
                let end = entropy_end(data, i);
                let frame = frame.as_mut()?;
                read_scan(segment, &data[i..end], frame, &tables, restart_interval)?;
                i = end;
            }
            _ => {}
        }
    }
    let frame = frame?;
    if adobe || !frame.components.iter().all(|c| c.seen) {
        return None;
    }
    pixels(&frame, &quant)
}

fn read_quantisation(mut segment: &[u8], quant: &mut [u16; 4]) -> Option<()> {
    while let Some(&info) = segment.first() {
        let (sixteen, table) = (info >> 4 != 0, usize::from(info & 15));
        *quant.get_mut(table)? = if sixteen {
            u16::from_be_bytes([*segment.get(1)?, *segment.get(2)?])
        } else {
            u16::from(*segment.get(1)?)
        };
        segment = segment.get(1 + if sixteen { 128 } else { 64 }..)?;
    }
    Some(())
}

fn read_huffman(mut segment: &[u8], tables: &mut [Huffman; 4]) -> Option<()> {
    while let Some(&info) = segment.first() {
        let counts = segment.get(1..17)?;
        let total = counts.iter().map(|&c| usize::from(c)).sum::<usize>();
        let values = segment.get(17..17 + total)?;
        // AC tables (class 1) are not needed.
        if info >> 4 == 0 {
            *tables.get_mut(usize::from(info & 15))? = Huffman::new(counts, values);
        }
        segment = segment.get(17 + total..)?;
    }
    Some(())
}

fn read_frame(segment: &[u8]) -> Option<Frame> {
    let &[precision, h1, h0, w1, w0, count, ..] = segment else { return None };
    let (height, width) = (usize::from(u16::from_be_bytes([h1, h0])), usize::from(u16::from_be_bytes([w1, w0])));
    if precision != 8 || height == 0 || width == 0 || !matches!(count, 1 | 3) {
        return None;
    }
    let mut components = Vec::new();
    for c in segment.get(6..6 + 3 * usize::from(count))?.chunks_exact(3) {
        let sampling = (usize::from(c[1] >> 4), usize::from(c[1] & 15));
        if !(1..=4).contains(&sampling.0) || !(1..=4).contains(&sampling.1) || c[2] > 3 {
            return None;
        }
        components.push(Component {
            id: c[0],
            sampling,
            table: usize::from(c[2]),
            dc: Vec::new(),
            width: 0,
            seen: false,
        });
    }
    let max_sampling = components.iter().fold((1, 1), |(h, v), c| (h.max(c.sampling.0), v.max(c.sampling.1)));
    // Chroma at a fraction of luma that is not a whole one (3 of 4) is legal and never made: left to libjpeg-turbo.
    if components.iter().any(|c| max_sampling.0 % c.sampling.0 != 0 || max_sampling.1 % c.sampling.1 != 0) {
        return None;
    }
    let mcus = (width.div_ceil(8 * max_sampling.0), height.div_ceil(8 * max_sampling.1));
    for component in &mut components {
        component.width = mcus.0 * component.sampling.0;
        component.dc = vec![0; component.width * mcus.1 * component.sampling.1];
    }
    Some(Frame { size: (width, height), max_sampling, components })
}

/// Decodes one scan if it is a DC scan (first or refinement); AC scans are skipped.
fn read_scan(header: &[u8], data: &[u8], frame: &mut Frame, tables: &[Huffman; 4], interval: usize) -> Option<()> {
    let count = usize::from(*header.first()?);
    let selectors = header.get(1..1 + 2 * count)?;
    let &[start, _end, approximation] = header.get(1 + 2 * count..4 + 2 * count)? else { return None };
    if start != 0 {
        return Some(());
    }
    let (high, low) = (approximation >> 4, approximation & 15);
    let mut scan = Vec::new();
    for s in selectors.chunks_exact(2) {
        let index = frame.components.iter().position(|c| c.id == s[0])?;
        let table = usize::from(s[1] >> 4);
        if table >= tables.len() {
            return None;
        }
        scan.push((index, table));
        frame.components[index].seen |= high == 0;
    }
    let mut bits = Bits::new(data);
    let mut predictions = vec![0i32; frame.components.len()];
    let (width, height) = frame.size;
    let (max_h, max_v) = frame.max_sampling;
    // Units are MCUs: in a scan of one component, each of its blocks the image covers, in raster order; in an
    // interleaved scan, each MCU with every component's h×v blocks. A restart interval counts units.
    let single = scan.len() == 1;
    let (units_x, units_y) = if let [(index, _)] = scan[..] {
        let (h, v) = frame.components[index].sampling;
        ((width * h).div_ceil(8 * max_h), (height * v).div_ceil(8 * max_v))
    } else {
        (width.div_ceil(8 * max_h), height.div_ceil(8 * max_v))
    };
    let mut unit = 0;
    for y in 0..units_y {
        for x in 0..units_x {
            if interval > 0 && unit > 0 && unit % interval == 0 {
                bits.restart();
                predictions.fill(0);
            }
            unit += 1;
            for &(index, table) in &scan {
                let component = &mut frame.components[index];
                let (h, v) = if single { (1, 1) } else { component.sampling };
                for by in 0..v {
                    for bx in 0..h {
                        let at = (y * v + by) * component.width + x * h + bx;
                        let value = component.dc.get_mut(at)?;
                        let prediction = &mut predictions[index];
                        dc_block(&mut bits, value, (high, low), &tables[table], prediction)?;
                    }
                }
            }
        }
    }
    Some(())
}

/// One block's DC: in a first scan a Huffman-coded difference from the last block's value, scaled by the point
/// transform `low`; in a refinement scan (`high` > 0) one more bit.
fn dc_block(
    bits: &mut Bits<'_>,
    value: &mut i16,
    (high, low): (u8, u8),
    table: &Huffman,
    prediction: &mut i32,
) -> Option<()> {
    if high > 0 {
        if bits.bit()? == 1 {
            *value |= 1 << low;
        }
        return Some(());
    }
    let diff = match table.decode(bits)? {
        0 => 0,
        category @ 1..=15 => {
            let raw = bits.bits(category)?;
            if raw < 1 << (category - 1) { raw - (1 << category) + 1 } else { raw }
        }
        _ => return None,
    };
    *prediction += diff;
    *value = i16::try_from(*prediction << low).ok()?;
    Some(())
}

/// The image at 1/8 scale: one pixel a luma block, as libjpeg-turbo sizes it.
fn pixels(frame: &Frame, quant: &[u16; 4]) -> Option<DynamicImage> {
    let (width, height) = (frame.size.0.div_ceil(8), frame.size.1.div_ceil(8));
    let (w32, h32) = (u32::try_from(width).ok()?, u32::try_from(height).ok()?);
    let planes: Vec<Vec<f32>> = frame.components.iter().map(|c| plane(c, frame, quant, (width, height))).collect();
    let to_u8 = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    match &planes[..] {
        [luma] => GrayImage::from_raw(w32, h32, luma.iter().map(|&v| to_u8(v)).collect()).map(DynamicImage::ImageLuma8),
        [luma, cb, cr] => {
            let mut rgb = Vec::with_capacity(width * height * 3);
            for ((&y, &cb), &cr) in luma.iter().zip(cb).zip(cr) {
                let (cb, cr) = (cb - 128.0, cr - 128.0);
                rgb.extend([to_u8(y + 1.402 * cr), to_u8(y - 0.344_136 * cb - 0.714_136 * cr), to_u8(y + 1.772 * cb)]);
            }
            RgbImage::from_raw(w32, h32, rgb).map(DynamicImage::ImageRgb8)
        }
        _ => None,
    }
}

/// A component's samples at the output's size. At full resolution, each block's mean as libjpeg-turbo's 1×1
/// inverse DCT computes it; a subsampled component is interpolated linearly between its block centres (the
/// triangle filter of libjpeg's "fancy" upsampling), so its colour edges stay soft instead of blocky.
fn plane(c: &Component, frame: &Frame, quant: &[u16; 4], (width, height): (usize, usize)) -> Vec<f32> {
    let q = i32::from(quant[c.table]);
    let mean = |x: usize, y: usize| {
        let dc = i32::from(c.dc[y * c.width + x]) * q;
        (((dc + 4) >> 3) + 128).clamp(0, 255) as f32
    };
    let (ratio_x, ratio_y) = (frame.max_sampling.0 / c.sampling.0, frame.max_sampling.1 / c.sampling.1);
    if (ratio_x, ratio_y) == (1, 1) {
        return (0..height).flat_map(|y| (0..width).map(move |x| mean(x, y))).collect();
    }
    // The blocks the image covers, so edges interpolate towards real samples, not padding.
    let blocks_x = (frame.size.0 * c.sampling.0).div_ceil(8 * frame.max_sampling.0);
    let blocks_y = (frame.size.1 * c.sampling.1).div_ceil(8 * frame.max_sampling.1);
    let axis = |at: usize, ratio: usize, blocks: usize| {
        let centre = ((at as f32 + 0.5) / ratio as f32 - 0.5).clamp(0.0, (blocks - 1) as f32);
        let low = centre.floor() as usize;
        (low, (low + 1).min(blocks - 1), centre - low as f32)
    };
    let mut out = Vec::with_capacity(width * height);
    for y in 0..height {
        let (y0, y1, fy) = axis(y, ratio_y, blocks_y);
        for x in 0..width {
            let (x0, x1, fx) = axis(x, ratio_x, blocks_x);
            let top = mean(x0, y0) * (1.0 - fx) + mean(x1, y0) * fx;
            let bottom = mean(x0, y1) * (1.0 - fx) + mean(x1, y1) * fx;
            out.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    out
}

/// Where the entropy-coded data starting at `i` ends: at the first marker that is not a restart marker.
fn entropy_end(data: &[u8], mut i: usize) -> usize {
    while i + 1 < data.len() {
        if data[i] == 0xFF && data[i + 1] != 0x00 && !(0xD0..=0xD7).contains(&data[i + 1]) {
            return i;
        }
        i += 1;
    }
    data.len()
}
