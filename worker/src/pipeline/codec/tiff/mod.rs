//! TIFF through libtiff, as libvips, GDAL and the desktop viewers read it: every compression Debian's libtiff
//! carries (LZW, Deflate, PackBits, JPEG, CCITT fax, LZMA, Zstd), strips or tiles, contiguous or planar, palette,
//! CMYK, YCbCr, CIELab, 1 to 16 bits a sample, BigTIFF. The `tiff` crate, thumbq's decoder before, refused 42 of
//! the TIFFs in Pillow's test corpus that these read. libtiff's RGBA reader turns each of those layouts into 8-bit
//! RGBA; what it declines (deep, signed or floating-point samples) is read row by row in `samples.rs`, and what that
//! declines too goes to the `image` crate as a last try.
//!
//! A CMYK TIFF is converted by libtiff's plain formula, not through an embedded CMYK profile (its reader gives no
//! inks to convert): close for press files, exact for none.

mod libtiff;
mod samples;

use image::{DynamicImage, RgbImage, RgbaImage, metadata::Orientation};
use thumbq_common::{
    image_probe::{Probe, tiff::first_directory},
    task::SourceFormat,
};

use super::{Codec, Header, PipelineError, Request, generic, unpremultiply};
use libtiff::Tiff as Opened;

/// Decodes TIFF with libtiff, at full size.
pub struct Tiff;

/// libtiff's allocations when the worker sets no cap: no single buffer past this (a strip or tile of a 100-MP
/// 16-bit RGBA image stays well under it).
const DEFAULT_MAX_ALLOC: u64 = 1 << 30;

impl Codec for Tiff {
    fn header(&self, bytes: &[u8], _format: SourceFormat) -> Header {
        let orientation = first_directory(bytes)
            .and_then(|directory| Orientation::from_exif(directory.orientation))
            .unwrap_or(Orientation::NoTransforms);
        let icc = Opened::open(bytes, DEFAULT_MAX_ALLOC).ok().and_then(|tiff| tiff.icc());
        Header { orientation, icc }
    }

    fn decode_peak(&self, bytes: &[u8], probe: &Probe, _reduction: f64) -> u64 {
        let raster = u64::from(probe.width) * u64::from(probe.height) * 4;
        match Opened::open(bytes, DEFAULT_MAX_ALLOC) {
            // The raster, plus libtiff's working buffers: a strip or tile decoded and its compressed bytes, one per
            // plane when the samples are planar (four at most here).
            Ok(tiff) if tiff.rgba_ok().is_ok() => raster + tiff.chunk_size().saturating_mul(4),
            _ => generic::whole_peak(bytes, probe),
        }
    }

    fn decode(&self, bytes: &[u8], probe: &Probe, request: Request<'_>) -> Result<DynamicImage, PipelineError> {
        let max_alloc = if request.memory_mib == 0 { DEFAULT_MAX_ALLOC } else { u64::from(request.memory_mib) << 20 };
        let mut tiff = Opened::open(bytes, max_alloc).map_err(PipelineError::Decode)?;
        let (width, height) = tiff.size().ok_or_else(|| PipelineError::Decode("the TIFF has no size".into()))?;
        // The probe's walk and libtiff read the same directory; a disagreement would dodge the pixel limit.
        if (width, height) != (probe.width, probe.height) {
            return Err(PipelineError::Decode(format!(
                "the TIFF's size is unclear: {width}x{height} or {}x{}",
                probe.width, probe.height
            )));
        }
        if tiff.rgba_ok().is_err() || samples::rgba_misreads(&tiff) {
            drop(tiff);
            let read = by_rows(bytes, max_alloc, width, height);
            return read.or_else(|error| generic::decode_whole(bytes, probe).map_err(|_| error));
        }
        // A `u8` buffer that libtiff fills as `u32`s: the system allocator aligns every block to at least 8 bytes
        // (`read_rgba` checks), and a `u8` buffer becomes the image without a copy.
        let mut raster = vec![0u8; width as usize * height as usize * 4];
        tiff.read_rgba(width, height, &mut raster).map_err(PipelineError::Decode)?;
        // libtiff premultiplies straight alpha (2) and keeps premultiplied alpha (1) as it is; alpha of unspecified
        // meaning (0, or none declared beside a fourth sample) it passes through, and Pillow and browsers read it
        // as straight.
        let premultiplied = matches!(tiff.extra_sample(), Some(1 | 2));
        Ok(to_image(width, height, raster, premultiplied))
    }
}

/// The image read row by row (`samples.rs`), from a handle of its own: one that a failed RGBA read has left
/// part-way through a strip decodes the wrong rows.
fn by_rows(bytes: &[u8], max_alloc: u64, width: u32, height: u32) -> Result<DynamicImage, PipelineError> {
    let mut tiff = Opened::open(bytes, max_alloc).map_err(PipelineError::Decode)?;
    samples::decode(&mut tiff, width, height)
}

/// libtiff's raster (`u32`s packed A, B, G, R from the high byte, `premultiplied` or not) as straight RGBA, or RGB in
/// the same buffer when every pixel is opaque.
fn to_image(width: u32, height: u32, mut raster: Vec<u8>, premultiplied: bool) -> DynamicImage {
    if cfg!(target_endian = "big") {
        raster.chunks_exact_mut(4).for_each(<[u8]>::reverse);
    }
    if raster.chunks_exact(4).all(|pixel| pixel[3] == 255) {
        let pixels = raster.len() / 4;
        for i in 0..pixels {
            raster.copy_within(i * 4..i * 4 + 3, i * 3);
        }
        raster.truncate(pixels * 3);
        return DynamicImage::ImageRgb8(RgbImage::from_raw(width, height, raster).expect("sized for the image"));
    }
    if premultiplied {
        unpremultiply(&mut raster);
    }
    DynamicImage::ImageRgba8(RgbaImage::from_raw(width, height, raster).expect("sized for the image"))
}

#[cfg(test)]
mod tests;
