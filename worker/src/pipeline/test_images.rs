//! JPEGs made for the pipeline's tests with libjpeg-turbo (the `image` crate cannot write progressive JPEGs).

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
