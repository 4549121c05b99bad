//! Whether an image may have transparency, from its header alone: `format=auto` makes its fallback a PNG where it
//! may (JPEG would lay it on white) and a JPEG where it cannot, and the API names the fallback's file before the
//! worker decodes a pixel. A guess that errs towards PNG: a PNG with a `tRNS` chunk or a 32-bit BMP may turn out
//! opaque. JPEG XL counts as opaque: its extra channels are deep in a bit-packed header, and a JPEG XL with alpha
//! is rare enough that its fallback may lie on white.

use memchr::memmem;

use super::tiff;
use crate::task::SourceFormat;

/// Whether `bytes` (the start of an upload, as much as the API has read) may hold transparent pixels.
pub fn may_have_alpha(bytes: &[u8], format: SourceFormat) -> bool {
    match format {
        SourceFormat::Jpeg | SourceFormat::Jxl | SourceFormat::Pdf | SourceFormat::Mp4 | SourceFormat::Webm => false,
        SourceFormat::Gif | SourceFormat::Ico | SourceFormat::Svg => true,
        // IHDR's colour type (4: grey and alpha, 6: RGBA), or a tRNS chunk before the image data.
        SourceFormat::Png => {
            let before_data = memmem::find(bytes, b"IDAT").map_or(bytes, |end| &bytes[..end]);
            matches!(bytes.get(25), Some(4 | 6)) || memmem::find(before_data, b"tRNS").is_some()
        }
        SourceFormat::Webp => match bytes.get(12..16) {
            // VP8X's alpha flag.
            Some(b"VP8X") => bytes.get(20).is_some_and(|flags| flags & 0x10 != 0),
            // VP8L's `alpha_is_used` bit, after the signature byte and two 14-bit sizes.
            Some(b"VP8L") => bytes.get(24).is_some_and(|byte| byte & 0x10 != 0),
            _ => false,
        },
        SourceFormat::Qoi => bytes.get(12) == Some(&4),
        SourceFormat::Bmp => bytes.get(28..30).is_some_and(|bits| u16::from_le_bytes([bits[0], bits[1]]) == 32),
        SourceFormat::Pnm => bytes.starts_with(b"P7") && memmem::find(bytes, b"_ALPHA").is_some(),
        SourceFormat::Tiff => tiff::first_directory(bytes).is_none_or(|directory| directory.extra_samples),
        // An auxiliary image of type alpha, in HEVC's or MPEG's spelling.
        SourceFormat::Heic | SourceFormat::Avif => {
            memmem::find(bytes, b"auxid:1").is_some() || memmem::find(bytes, b"auxiliary:alpha").is_some()
        }
    }
}

#[cfg(test)]
mod tests {
    use image::{DynamicImage, ImageFormat, RgbaImage};

    use super::*;
    use crate::fixtures::{animated_gif, encode, heif_enc, sample_image, transparent_png};

    #[test]
    fn images_written_with_alpha_may_have_it_and_opaque_ones_may_not() {
        let rgba = image::load_from_memory(&transparent_png(32, 32)).unwrap();
        for format in [ImageFormat::Png, ImageFormat::WebP, ImageFormat::Qoi, ImageFormat::Tiff, ImageFormat::Bmp] {
            let source = SourceFormat::from_image_format(format).unwrap();
            assert!(may_have_alpha(&encode(&rgba, format), source), "{format:?} with alpha");
            assert!(!may_have_alpha(&sample_image(format, 32, 32), source), "{format:?} opaque");
        }
        let pam = encode(&DynamicImage::ImageRgba8(RgbaImage::new(4, 4)), ImageFormat::Pnm);
        assert!(may_have_alpha(&pam, SourceFormat::Pnm));
        assert!(!may_have_alpha(&sample_image(ImageFormat::Pnm, 4, 4), SourceFormat::Pnm));
        assert!(may_have_alpha(&heif_enc(&transparent_png(32, 32), &["-A"]), SourceFormat::Avif));
        assert!(!may_have_alpha(&heif_enc(&sample_image(ImageFormat::Png, 32, 32), &[]), SourceFormat::Heic));
        assert!(!may_have_alpha(&sample_image(ImageFormat::Jpeg, 32, 32), SourceFormat::Jpeg));
        assert!(may_have_alpha(&animated_gif(8, 8, 2, None), SourceFormat::Gif), "GIF: a transparent index may come");
    }
}
