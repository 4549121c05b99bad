//! The layouts libtiff decompresses but its RGBA reader declines: samples of 12, 24, 32 or 64 bits, signed or
//! floating-point (scientific and medical images, GIS rasters), 16-bit CMYK. Read row by row as libtiff decodes
//! them and brought to 8 bits as Pillow and the desktop viewers show them: unsigned samples scaled by their bit
//! depth, signed and floating-point ones stretched from their smallest to their largest value (such files carry
//! measurements, not display levels). Grey stays grey; CMYK becomes RGB by the plain formula.

use image::{DynamicImage, GrayImage, RgbImage};

use super::libtiff::Tiff;
use crate::pipeline::PipelineError;

const BITS_PER_SAMPLE: u32 = 258;
const PHOTOMETRIC: u32 = 262;
const SAMPLES_PER_PIXEL: u32 = 277;
const PLANAR_CONFIG: u32 = 284;
const SAMPLE_FORMAT: u32 = 339;

/// How one sample is stored.
#[derive(Clone, Copy)]
struct Sample {
    bits: u16,
    /// 1 unsigned, 2 signed, 3 floating point (TIFF's SampleFormat).
    format: u16,
}

impl Sample {
    /// Sample `index` of a row whose samples are packed in `row` (most significant bit first below 8 bits; whole
    /// bytes, already in the machine's order, from 8 bits up).
    fn value(self, row: &[u8], index: usize) -> Option<f64> {
        let bits = usize::from(self.bits);
        if bits % 8 != 0 {
            let (start, mut value) = (index * bits, 0u64);
            for bit in start..start + bits {
                value = (value << 1) | u64::from(row.get(bit / 8)? >> (7 - bit % 8) & 1);
            }
            return Some(value as f64);
        }
        let bytes = row.get(index * bits / 8..(index + 1) * bits / 8)?;
        Some(match (self.format, bytes.len()) {
            (2, 1) => f64::from(bytes[0] as i8),
            (2, 2) => f64::from(i16::from_ne_bytes(bytes.try_into().ok()?)),
            (2, 4) => f64::from(i32::from_ne_bytes(bytes.try_into().ok()?)),
            (2, 8) => i64::from_ne_bytes(bytes.try_into().ok()?) as f64,
            (3, 4) => f64::from(f32::from_ne_bytes(bytes.try_into().ok()?)),
            (3, 8) => f64::from_ne_bytes(bytes.try_into().ok()?),
            (_, 1) => f64::from(bytes[0]),
            (_, 2) => f64::from(u16::from_ne_bytes(bytes.try_into().ok()?)),
            (_, 4) => f64::from(u32::from_ne_bytes(bytes.try_into().ok()?)),
            (_, 8) => u64::from_ne_bytes(bytes.try_into().ok()?) as f64,
            _ => return None,
        })
    }
}

/// Whether libtiff's RGBA reader accepts the layout and then fails on it: CMYK of more than 8 bits a sample.
pub fn rgba_misreads(tiff: &Tiff<'_>) -> bool {
    tiff.short(PHOTOMETRIC) == Some(5) && tiff.short(BITS_PER_SAMPLE) != Some(8)
}

/// Decodes a striped TIFF of 1 (grey), 3 (RGB) or 4 (CMYK or RGBA: alpha dropped) samples a pixel, of any depth and
/// sample format, to 8-bit grey or RGB. `Err` for the layouts left (tiles, palettes of deep samples, YCbCr).
pub fn decode(tiff: &mut Tiff<'_>, width: u32, height: u32) -> Result<DynamicImage, PipelineError> {
    let declined = |what: &str| PipelineError::Decode(format!("a TIFF layout thumbq cannot read: {what}"));
    let sample =
        Sample { bits: tiff.short(BITS_PER_SAMPLE).unwrap_or(1), format: tiff.short(SAMPLE_FORMAT).unwrap_or(1) };
    let samples = tiff.short(SAMPLES_PER_PIXEL).unwrap_or(1);
    let planar = tiff.short(PLANAR_CONFIG) == Some(2);
    // A file without a Photometric tag is read as grey or RGB by its sample count, as libtiff's tools do.
    let photometric = tiff.short(PHOTOMETRIC).unwrap_or(if samples >= 3 { 2 } else { 1 });
    let channels: usize = match (photometric, samples) {
        (0 | 1, 1..=2) => 1,
        (2, 3..) => 3,
        (5, 4..) => 4,
        _ => return Err(declined(&format!("photometric {photometric} with {samples} samples"))),
    };
    if tiff.is_tiled() || !(1..=64).contains(&sample.bits) {
        return Err(declined(&format!("tiles or {} bits a sample", sample.bits)));
    }
    let to_pixel = |v: f64| v.round().clamp(0.0, 255.0) as u8;
    let scale = match sample.format {
        2 | 3 => {
            let (low, high) = extremes(tiff, width, height, sample, samples, planar, channels.min(3))?;
            let span = if high > low { high - low } else { 1.0 };
            Box::new(move |v: f64| (v - low) * 255.0 / span) as Box<dyn Fn(f64) -> f64>
        }
        _ => {
            let max = 2f64.powi(i32::from(sample.bits)) - 1.0;
            Box::new(move |v: f64| v * 255.0 / max)
        }
    };
    let out_channels = if channels == 1 { 1 } else { 3 };
    let mut out = Vec::with_capacity(width as usize * height as usize * out_channels);
    let mut pixel = [0f64; 4];
    rows(tiff, height, sample, samples, planar, channels, |values| {
        for x in 0..width as usize {
            for (c, slot) in pixel.iter_mut().enumerate().take(channels) {
                *slot = scale(values(x, c)).clamp(0.0, 255.0);
            }
            match channels {
                // MinIsWhite inverts.
                1 => out.push(to_pixel(if photometric == 0 { 255.0 - pixel[0] } else { pixel[0] })),
                3 => out.extend(pixel[..3].iter().map(|&v| to_pixel(v))),
                _ => out.extend(pixel[..3].iter().map(|&ink| to_pixel((255.0 - ink) * (255.0 - pixel[3]) / 255.0))),
            }
        }
    })?;
    let built = if out_channels == 1 {
        GrayImage::from_raw(width, height, out).map(DynamicImage::ImageLuma8)
    } else {
        RgbImage::from_raw(width, height, out).map(DynamicImage::ImageRgb8)
    };
    built.ok_or_else(|| declined("rows shorter than the image"))
}

/// The smallest and largest finite value of the first `channels` samples.
fn extremes(
    tiff: &mut Tiff<'_>,
    width: u32,
    height: u32,
    sample: Sample,
    samples: u16,
    planar: bool,
    channels: usize,
) -> Result<(f64, f64), PipelineError> {
    let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
    rows(tiff, height, sample, samples, planar, channels, |values| {
        for x in 0..width as usize {
            for c in 0..channels {
                let v = values(x, c);
                if v.is_finite() {
                    low = low.min(v);
                    high = high.max(v);
                }
            }
        }
    })?;
    Ok(if low <= high { (low, high) } else { (0.0, 1.0) })
}

/// Calls `each` once a row with a lookup of sample `c` of pixel `x` (NaN where the row is short).
fn rows(
    tiff: &mut Tiff<'_>,
    height: u32,
    sample: Sample,
    samples: u16,
    planar: bool,
    channels: usize,
    mut each: impl FnMut(&dyn Fn(usize, usize) -> f64),
) -> Result<(), PipelineError> {
    let line = usize::try_from(tiff.scanline_size()).unwrap_or(usize::MAX);
    let planes = if planar { channels } else { 1 };
    let mut buffers = vec![vec![0u8; line]; planes];
    for row in 0..height {
        for (plane, buffer) in buffers.iter_mut().enumerate() {
            tiff.read_scanline(buffer, row, plane as u16).map_err(PipelineError::Decode)?;
        }
        let lookup = |x: usize, c: usize| {
            let value = if planar {
                sample.value(&buffers[c], x)
            } else {
                sample.value(&buffers[0], x * usize::from(samples) + c)
            };
            value.unwrap_or(f64::NAN)
        };
        each(&lookup);
    }
    Ok(())
}
