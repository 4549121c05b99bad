//! How much memory decoding an image will take, estimated from its header before any pixel is decoded, so the worker
//! can admit tasks against its memory budget (`THUMBQ_WORKER_MEMORY_MB`) instead of finding out from the kernel.
//!
//! The estimates follow what each decoder really holds at its peak, rounded up:
//! - libjpeg-turbo, baseline: the scaled output and a few rows.
//! - libjpeg-turbo, progressive: the whole image's DCT coefficients, 2 bytes each, for every component at its own
//!   resolution (about 3 bytes a pixel at 4:2:0, 6 at 4:4:4), however small the output; plus the scaled output.
//! - libwebp, lossy: the scaled output and a few rows; lossless or extended files are counted at full size.
//! - `image` (PNG, GIF, BMP, TIFF, CMYK JPEG): the full decoded image in its own pixel type, plus an 8-bit copy
//!   when it is wider than 8 bits.
//!
//! Sources that may carry alpha count twice: the resampler premultiplies a copy. AVIF's encoder adds its own share
//! ([`encoder_peak`]).

use image::ImageDecoder;
use thumbq_common::{
    image_probe::{self, Probe},
    task::SourceFormat,
};
use turbojpeg::{Colorspace, ScalingFactor, Subsamp};

use super::decode::jpeg_scale;

/// Working memory of every decoder beyond its pixel buffers: Huffman tables, row buffers, metadata.
const DECODER_OVERHEAD: u64 = 4 << 20;

/// rav1e's working memory while encoding one AVIF frame, per output pixel: measured 37 MB for a 1280x800 frame
/// (peak resident 59 MB against 22 MB for the same thumbnail as JPEG, `THUMBQ_BENCH_PROBE=1280:avif`), rounded up.
const AVIF_BYTES_PER_PIXEL: u64 = 48;

/// The peak bytes an encoder takes beyond the output's own pixels: rav1e's frame state for AVIF; the other encoders
/// stay within the pixel buffers already counted.
pub fn encoder_peak(format: thumbq_common::task::OutputFormat, output: &super::geometry::Plan) -> u64 {
    match format {
        thumbq_common::task::OutputFormat::Avif => {
            u64::from(output.width) * u64::from(output.height) * AVIF_BYTES_PER_PIXEL + DECODER_OVERHEAD
        }
        _ => 0,
    }
}

/// The peak bytes decoding `bytes` (probed as `probe`) at up to `reduction` times smaller than full size takes.
pub fn decode_peak(bytes: &[u8], probe: &Probe, reduction: f64) -> u64 {
    let full_rgba = u64::from(probe.width) * u64::from(probe.height) * 4;
    let pixels = match probe.format {
        SourceFormat::Jpeg => jpeg(bytes, reduction).unwrap_or_else(|| whole(bytes, probe)),
        SourceFormat::Webp if bytes.get(12..16) == Some(b"VP8 ") => {
            scaled(probe.width, reduction) * scaled(probe.height, reduction) * 4 + u64::from(probe.width) * 64
        }
        SourceFormat::Webp => full_rgba + full_rgba / 2,
        _ => whole(bytes, probe),
    };
    let premultiplied_copy = if probe.format == SourceFormat::Jpeg { 0 } else { pixels };
    pixels + premultiplied_copy + DECODER_OVERHEAD
}

/// libjpeg-turbo's peak; `None` for what it leaves to `image` (CMYK, YCCK) or cannot read.
fn jpeg(bytes: &[u8], reduction: f64) -> Option<u64> {
    let header = turbojpeg::read_header(bytes).ok()?;
    let channels = match header.colorspace {
        Colorspace::Gray => 1,
        Colorspace::YCbCr | Colorspace::RGB => 3,
        _ => return None,
    };
    let scale = if header.is_lossless { ScalingFactor::ONE } else { jpeg_scale(reduction) };
    let out = header.scaled(scale);
    let output = (out.width * out.height * channels) as u64;
    let (width, height) = (header.width as u64, header.height as u64);
    // Chroma samples per luma sample, for the two chroma components together.
    let chroma = match header.subsamp {
        Subsamp::Gray => 0.0,
        Subsamp::None => 2.0,
        Subsamp::Sub2x1 | Subsamp::Sub1x2 => 1.0,
        _ => 0.5, // 4:2:0 and 4:1:1 alike
    };
    let coefficients = if header.is_progressive {
        // Two bytes a coefficient, one coefficient a sample, blocks padded to 8×8; the 1/8 path also holds a copy
        // of the file without its AC scans.
        let padded = width.div_ceil(8) * 8 * height.div_ceil(8) * 8;
        (padded as f64 * 2.0 * (1.0 + chroma)) as u64 + bytes.len() as u64
    } else {
        0
    };
    Some(output + coefficients)
}

/// A whole-image decode by `image`: its native pixel buffer, plus the 8-bit copy when it is wider.
fn whole(bytes: &[u8], probe: &Probe) -> u64 {
    let pixels = u64::from(probe.width) * u64::from(probe.height);
    let native = image_probe::limited_reader(bytes, probe.format, image_probe::HEADER_ALLOC_LIMIT)
        .into_decoder()
        .map(|decoder| decoder.total_bytes())
        .unwrap_or(pixels * 8);
    if native > pixels * 4 { native + pixels * 4 } else { native }
}

fn scaled(side: u32, reduction: f64) -> u64 {
    (f64::from(side) / reduction).ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::test_images::flat_jpeg as jpeg;
    use image::ImageFormat;
    use thumbq_common::fixtures::sample_image;

    fn peak(bytes: &[u8], reduction: f64) -> u64 {
        let probe = image_probe::probe(bytes, u64::MAX).unwrap();
        decode_peak(bytes, &probe, reduction)
    }

    #[test]
    fn a_progressive_jpeg_counts_its_whole_coefficient_buffer_and_a_baseline_one_only_its_output() {
        let (w, h) = (2000, 1000);
        let baseline = peak(&jpeg(w, h, false, Subsamp::None), 8.0);
        let progressive_444 = peak(&jpeg(w, h, true, Subsamp::None), 8.0);
        let progressive_420 = peak(&jpeg(w, h, true, Subsamp::Sub2x2), 8.0);
        let mb = |bytes: u64| bytes as f64 / f64::from(1 << 20);
        assert!(mb(baseline - DECODER_OVERHEAD) < 0.2, "baseline at 1/8: {:.1} MB", mb(baseline));
        // 2 MP: 6 bytes a pixel at 4:4:4 (12 MB), 3 at 4:2:0 (6 MB).
        assert!((11.0..13.0).contains(&mb(progressive_444 - DECODER_OVERHEAD)), "{:.1} MB", mb(progressive_444));
        assert!((5.5..6.5).contains(&mb(progressive_420 - DECODER_OVERHEAD)), "{:.1} MB", mb(progressive_420));
    }

    #[test]
    fn a_whole_decode_counts_its_pixels_and_alpha_counts_twice() {
        let png = sample_image(ImageFormat::Png, 1000, 500); // RGB, 8-bit: 1.5 MB decoded
        let estimate = peak(&png, 1.0) - DECODER_OVERHEAD;
        assert_eq!(estimate, 2 * 1000 * 500 * 3);
    }
}
