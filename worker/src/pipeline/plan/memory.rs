//! How much memory decoding an image will take, estimated from its header before any pixel is decoded, so the worker
//! can admit tasks against its memory budget (`THUMBQ_WORKER_MEMORY_MB`) instead of finding out from the kernel.
//!
//! The estimates follow what each decoder really holds at its peak, rounded up (each codec gives its own share,
//! `Codec::decode_peak`):
//! - libjpeg-turbo, baseline: the scaled output and a few rows.
//! - libjpeg-turbo, progressive: the whole image's DCT coefficients, 2 bytes each, for every component at its own
//!   resolution (about 3 bytes a pixel at 4:2:0, 6 at 4:4:4), however small the output; plus the scaled output.
//! - libwebp, lossy: the scaled output and a few rows; lossless or extended files are counted at full size.
//! - `image` (PNG, GIF, BMP, TIFF, CMYK JPEG): the full decoded image in its own pixel type, plus an 8-bit copy
//!   when it is wider than 8 bits.
//!
//! Sources that may carry alpha count twice: the resampler premultiplies a copy. AVIF's encoder adds its own share
//! ([`encoder_peak`]).

use thumbq_common::{
    image_probe::Probe,
    task::{OutputFormat, ResizeArgs},
};

use super::{DecodePlan, geometry};
use crate::pipeline::codec;

/// Working memory of every decoder beyond its pixel buffers: Huffman tables, row buffers, metadata.
const DECODER_OVERHEAD: u64 = 4 << 20;

/// rav1e's working memory while encoding one AVIF frame, per output pixel: measured 37 MB for a 1280x800 frame
/// (peak resident 59 MB against 22 MB for the same thumbnail as JPEG, `THUMBQ_BENCH_PROBE=1280:avif`), rounded up.
const AVIF_BYTES_PER_PIXEL: u64 = 48;

/// The most memory making the thumbnails `plans` describe from `bytes` will need, in bytes: the decode at
/// `reduction`, every encoded output kept until stored, and the largest output's resampling and encoding buffers.
pub fn task_peak(bytes: &[u8], probe: &Probe, plans: &[DecodePlan], reduction: f64, outputs: &[ResizeArgs]) -> u64 {
    let sizes = plans.iter().map(|p| u64::from(p.full.width) * u64::from(p.full.height) * 4);
    let (sum, largest) = sizes.fold((0, 0), |(sum, largest), size| (sum + size, largest.max(size)));
    let encoder = plans.iter().zip(outputs).map(|(p, args)| encoder_peak(args.format, &p.full));
    decode_peak(bytes, probe, reduction) + sum + 2 * largest + encoder.max().unwrap_or(0) + bytes.len() as u64
}

/// The peak bytes an encoder takes beyond the output's own pixels: rav1e's frame state for AVIF; the other encoders
/// stay within the pixel buffers already counted.
fn encoder_peak(format: OutputFormat, output: &geometry::Plan) -> u64 {
    match format {
        OutputFormat::Avif => {
            u64::from(output.width) * u64::from(output.height) * AVIF_BYTES_PER_PIXEL + DECODER_OVERHEAD
        }
        _ => 0,
    }
}

/// The peak bytes decoding `bytes` (probed as `probe`) at up to `reduction` times smaller than full size takes: its
/// codec's buffers, a premultiplied copy when it may carry alpha, and the decoders' overhead.
fn decode_peak(bytes: &[u8], probe: &Probe, reduction: f64) -> u64 {
    let codec = codec::for_format(probe.format);
    let pixels = codec.decode_peak(bytes, probe, reduction);
    let premultiplied_copy = if codec.may_have_alpha() { pixels } else { 0 };
    pixels + premultiplied_copy + DECODER_OVERHEAD
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::test_images::flat_jpeg as jpeg;
    use image::ImageFormat;
    use thumbq_common::{fixtures::sample_image, image_probe};
    use turbojpeg::Subsamp;

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
