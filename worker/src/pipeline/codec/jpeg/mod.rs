//! JPEG, decoded by libjpeg-turbo at a reduced scale chosen in the DCT (1/8, 1/4, 1/2 or 1): entropy decoding
//! cannot be skipped, but the inverse DCT, colour conversion and every later step run on up to 64 times fewer
//! pixels, and the decoded image stays small (a 50-megapixel JPEG decodes to under a megapixel for a 100×100
//! thumbnail).
//!
//! Its parts: [`layout`] walks the markers (a truncated file is refused; at 1/8 a progressive file's AC scans are
//! dropped), [`dc`] decodes a progressive file's DC scans alone at 1/8, [`turbo`] is libjpeg-turbo's C API. CMYK
//! without a profile is left to the `image` crate.

mod dc;
pub mod layout;
#[cfg(test)]
mod tests;
pub mod turbo;

use image::DynamicImage;
use thumbq_common::image_probe::Probe;
use turbojpeg::{Colorspace, ScalingFactor, Subsamp};

use super::{Codec, PipelineError, Request, generic};
use crate::pipeline::colour::CmykToSrgb;
use turbo::DecodeLimits;

/// Decodes JPEG with libjpeg-turbo, shrinking in the DCT.
pub struct Jpeg;

impl Codec for Jpeg {
    fn decode_peak(&self, bytes: &[u8], probe: &Probe, reduction: f64) -> u64 {
        turbo_peak(bytes, reduction).unwrap_or_else(|| generic::whole_peak(bytes, probe))
    }

    fn may_have_alpha(&self) -> bool {
        false
    }

    /// `request.icc`, the embedded profile: a CMYK JPEG's is applied while decoding.
    fn decode(&self, bytes: &[u8], probe: &Probe, request: Request<'_>) -> Result<DynamicImage, PipelineError> {
        // libjpeg-turbo, like zune-jpeg, fills a truncated JPEG with grey after a warning; a cut-off upload must
        // not pass as a thumbnail.
        let Some(layout) = layout::read(bytes) else {
            return Err(PipelineError::Decode("the JPEG is truncated: its end-of-image marker is missing".into()));
        };
        let scale = jpeg_scale(request.reduction);
        let one_eighth = scale == ScalingFactor::ONE_EIGHTH;
        // At 1/8 scale a progressive JPEG needs its DC scans alone, and no coefficient buffer.
        if one_eighth
            && layout.progressive()
            && let Some(image) = dc::decode(bytes)
        {
            return Ok(image);
        }
        // Otherwise libjpeg-turbo, and at 1/8 scale most of a progressive JPEG's AC scans can go undecoded.
        let lighter = one_eighth.then(|| layout.for_one_eighth(bytes));
        let limits = DecodeLimits { max_scans: MAX_SCANS, max_memory_mib: request.memory_mib };
        let source = lighter.flatten();
        let to_srgb = CmykToSrgb::new(request.icc);
        let cmyk = to_srgb.as_ref().map(|c| (c, layout.adobe()));
        let data = source.as_deref().unwrap_or(bytes);
        if let Some(image) = turbo::decode_scaled(data, scale, limits, cmyk)? {
            return Ok(image);
        }
        generic::decode_whole(bytes, probe)
    }
}

/// The most scans a progressive JPEG may have. Each scan is a pass over every block of its components, so a small
/// upload made of thousands of scans would keep a worker busy for minutes; real files have about 10 (libjpeg's
/// default progression) to a few dozen.
const MAX_SCANS: u32 = 300;

/// The DCT scale for a permitted reduction: 1/8, 1/4, 1/2 or 1.
fn jpeg_scale(reduction: f64) -> ScalingFactor {
    match reduction {
        r if r >= 8.0 => ScalingFactor::ONE_EIGHTH,
        r if r >= 4.0 => ScalingFactor::ONE_QUARTER,
        r if r >= 2.0 => ScalingFactor::ONE_HALF,
        _ => ScalingFactor::ONE,
    }
}

/// libjpeg-turbo's peak; `None` for what it leaves to `image` (CMYK, YCCK) or cannot read.
fn turbo_peak(bytes: &[u8], reduction: f64) -> Option<u64> {
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
