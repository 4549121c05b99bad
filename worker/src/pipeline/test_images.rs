//! Images made for the pipeline's tests with libjpeg-turbo and libwebp (the `image` crate writes neither progressive
//! JPEGs nor lossy WebPs), and the codecs' tests' measures.

use turbojpeg::{Compressor, Image, PixelFormat, Subsamp};

/// A progressive JPEG of a detailed picture (a gradient under pseudo-random texture, so the AC scans carry data).
pub fn progressive_jpeg(width: usize, height: usize, subsamp: Subsamp) -> Vec<u8> {
    let pixels: Vec<u8> = (0..width * height * 3)
        .map(|i| {
            let (pixel, channel) = (i / 3, i % 3);
            let (x, y) = (pixel % width, pixel / width);
            let texture = (x.wrapping_mul(7919) ^ y.wrapping_mul(104_729) ^ channel.wrapping_mul(31)) % 97;
            ((x * 255 / width + y * 64 / height + channel * 40 + texture) % 256) as u8
        })
        .collect();
    compress(&pixels, width, height, true, subsamp)
}

/// A flat grey JPEG, baseline or progressive.
pub fn flat_jpeg(width: usize, height: usize, progressive: bool, subsamp: Subsamp) -> Vec<u8> {
    compress(&vec![128u8; width * height * 3], width, height, progressive, subsamp)
}

fn compress(pixels: &[u8], width: usize, height: usize, progressive: bool, subsamp: Subsamp) -> Vec<u8> {
    let image = Image { pixels, width, pitch: width * 3, height, format: PixelFormat::RGB };
    let mut compressor = Compressor::new().expect("compressor");
    compressor.set_progressive(progressive).expect("progressive");
    compressor.set_subsamp(subsamp).expect("subsampling");
    compressor.set_quality(90).expect("quality");
    compressor.compress_to_vec(image).expect("fixture encodes")
}

/// A flat CMYK JPEG of `inks` (C, M, Y, K; 0 none, 255 full), stored inverted behind an Adobe segment as Photoshop
/// writes them, with the profile `icc` embedded in APP2 segments (split as the ICC specification says).
pub fn cmyk_jpeg(inks: [u8; 4], width: usize, height: usize, icc: Option<&[u8]>) -> Vec<u8> {
    let pixels: Vec<u8> = std::iter::repeat_n(inks.map(|ink| 255 - ink), width * height).flatten().collect();
    let image = Image { pixels: pixels.as_slice(), width, pitch: width * 4, height, format: PixelFormat::CMYK };
    let jpeg = turbojpeg::compress(image, 100, Subsamp::None).expect("a CMYK JPEG");
    let mut out = jpeg[..2].to_vec();
    if let Some(icc) = icc {
        let chunks: Vec<&[u8]> = icc.chunks(65_519).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            out.extend([0xFF, 0xE2]);
            out.extend(u16::try_from(2 + 14 + chunk.len()).expect("a segment length").to_be_bytes());
            out.extend(b"ICC_PROFILE\0");
            out.extend([u8::try_from(i + 1).expect("few chunks"), u8::try_from(chunks.len()).expect("few chunks")]);
            out.extend(*chunk);
        }
    }
    out.extend(&jpeg[2..]);
    out
}

/// A lossy WebP of `rgb` (`width`×`height`, 3 bytes a pixel), at libwebp's quality 80.
pub fn lossy_webp(rgb: &[u8], width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_raw(width, height, rgb.to_vec()).expect("width × height RGB pixels");
    super::finish::webp::encode_lossy(&image::DynamicImage::ImageRgb8(image), 80).expect("libwebp encodes")
}

/// A `width`×`height` gradient: red across, green down.
pub fn gradient(width: u32, height: u32) -> image::RgbImage {
    image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, 128]))
}

/// The mean absolute difference between two same-sized 8-bit buffers: how far a lossy decode is from its source.
pub fn mean_difference(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| f64::from(x.abs_diff(*y))).sum::<f64>() / a.len() as f64
}
