//! WebP decoded by libwebp at reduced size: its decoder scales while it decodes (`use_scaling`), so a 16-megapixel
//! WebP never becomes a 16-megapixel buffer. Animated WebPs are left to the `image` crate (their first frame). An
//! FFI module like `jpeg/turbo.rs` and the lossy encoder (`finish/webp.rs`); each `unsafe` block says why it holds.
#![allow(unsafe_code)]

pub mod animation;

use std::mem::MaybeUninit;

use image::{DynamicImage, RgbImage, RgbaImage};
use libwebp_sys::{
    VP8StatusCode, WEBP_CSP_MODE, WebPDecode, WebPDecoderConfig, WebPFreeDecBuffer, WebPGetFeatures,
    WebPInitDecoderConfig,
};
use thumbq_common::image_probe::Probe;

use super::{Codec, PipelineError, Request};

/// Decodes WebP with libwebp, shrinking while it decodes.
pub struct Webp;

impl Codec for Webp {
    fn decode_peak(&self, bytes: &[u8], probe: &Probe, reduction: f64) -> u64 {
        let full_rgba = u64::from(probe.width) * u64::from(probe.height) * 4;
        // Lossy (VP8) files decode at the scaled size plus a few rows; lossless or extended ones are counted whole.
        if bytes.get(12..16) == Some(b"VP8 ") {
            scaled(probe.width, reduction) * scaled(probe.height, reduction) * 4 + u64::from(probe.width) * 64
        } else if is_animated(bytes) {
            // libwebp's animation decoder: the canvas and the previous one kept for disposal, the frame's decode,
            // and the first frame's copy.
            full_rgba * 4
        } else {
            full_rgba + full_rgba / 2
        }
    }

    fn decode(&self, bytes: &[u8], _probe: &Probe, request: Request<'_>) -> Result<DynamicImage, PipelineError> {
        // Animated WebPs are not for libwebp's simple decoder: its animation decoder gives their first frame. Any
        // other WebP that libwebp cannot decode is corrupt: handing it to `image` would decode it whole, past its
        // memory estimate (the fuzzer found a 14-megapixel one that took 75 MB that way).
        if is_animated(bytes) { first_frame(bytes) } else { decode_scaled(bytes, request.reduction) }
    }
}

/// An animation's first frame on its canvas, by libwebp's animation decoder, which checks each frame against the
/// canvas before decoding it. Not by `image`: the fuzzer found a 40x30 animation whose first frame's VP8 header
/// claims 16168x16383 pixels, which `image`'s reader allocated (397 MB) before finding the frame corrupt.
fn first_frame(bytes: &[u8]) -> Result<DynamicImage, PipelineError> {
    let first = animation::frames(bytes)?.next();
    let (frame, _shown_for) = first.ok_or_else(|| PipelineError::Decode("animated WebP: no frame".into()))??;
    Ok(DynamicImage::ImageRgba8(frame))
}

/// A side `reduction` times smaller, rounded up, at least 1.
fn scaled(side: u32, reduction: f64) -> u64 {
    (f64::from(side) / reduction).ceil().max(1.0) as u64
}

/// Whether libwebp reads the header as an animation (which its simple decoder leaves to `image`).
fn is_animated(bytes: &[u8]) -> bool {
    let mut features = MaybeUninit::<libwebp_sys::WebPBitstreamFeatures>::zeroed();
    // SAFETY: `bytes` is valid for the call; WebPGetFeatures fills `features` when it answers OK, and it is read
    // only then (zeroed before, so every field is initialised either way).
    let status = unsafe { WebPGetFeatures(bytes.as_ptr(), bytes.len(), features.as_mut_ptr()) };
    // SAFETY: zero-initialised, a valid value of this plain C struct.
    status == VP8StatusCode::VP8_STATUS_OK && unsafe { features.assume_init() }.has_animation != 0
}
/// Decodes a WebP `reduction` times smaller than its full size (≥ 1; 1 decodes at full size), straight into the
/// image's own buffer (libwebp's external-memory mode: no copy).
///
/// No `bypass_filtering` or `no_fancy_upsampling` here: with `use_scaling` below 3/4 of the size libwebp already
/// skips its in-loop filter and fancy upsampling itself (`WebPIoInitFromOptions`). Setting them measured the same,
/// 139.6–140.9 against 138.9–140.0 ms per 16-MP corpus WebP (docs/performance.md, ninth session).
pub fn decode_scaled(bytes: &[u8], reduction: f64) -> Result<DynamicImage, PipelineError> {
    let failed = |what: &str, status: VP8StatusCode| PipelineError::Decode(format!("WebP {what} failed: {status:?}"));
    let mut config = MaybeUninit::<WebPDecoderConfig>::uninit();
    // SAFETY: WebPInitDecoderConfig writes every field of the config it is given (or returns false on an ABI
    // mismatch, in which case it is not read).
    if !unsafe { WebPInitDecoderConfig(config.as_mut_ptr()) } {
        return Err(PipelineError::Decode("libwebp ABI mismatch".into()));
    }
    // SAFETY: initialised just above.
    let mut config = unsafe { config.assume_init() };
    // SAFETY: `bytes` is a valid slice for the call; `config.input` is a plain struct libwebp fills in.
    let status = unsafe { WebPGetFeatures(bytes.as_ptr(), bytes.len(), &raw mut config.input) };
    if status != VP8StatusCode::VP8_STATUS_OK {
        return Err(failed("header", status));
    }
    let (width, height) = (config.input.width, config.input.height);
    let alpha = config.input.has_alpha != 0;
    let (mut out_w, mut out_h) = (width, height);
    if reduction > 1.0 {
        out_w = ((f64::from(width) / reduction).round() as i32).max(1);
        out_h = ((f64::from(height) / reduction).round() as i32).max(1);
        config.options.use_scaling = 1;
        config.options.scaled_width = out_w;
        config.options.scaled_height = out_h;
    }
    let channels: usize = if alpha { 4 } else { 3 };
    let (out_w, out_h) = (out_w as u32, out_h as u32);
    let stride = out_w as usize * channels;
    let mut pixels = vec![0u8; stride * out_h as usize];
    config.output.colorspace = if alpha { WEBP_CSP_MODE::MODE_RGBA } else { WEBP_CSP_MODE::MODE_RGB };
    config.output.is_external_memory = 1;
    config.output.u.RGBA =
        libwebp_sys::WebPRGBABuffer { rgba: pixels.as_mut_ptr(), stride: stride as i32, size: pixels.len() };
    // SAFETY: `bytes` is valid for the call. With external memory libwebp writes the decoded rows into `pixels`
    // (`out_h` rows of `stride` bytes, exactly its length, alive and not otherwise touched during the call) after
    // checking the buffer is large enough for the scaled size set above; it allocates nothing to free for them.
    let status = unsafe { WebPDecode(bytes.as_ptr(), bytes.len(), &raw mut config) };
    // SAFETY: frees whatever libwebp allocated besides the external buffer (a no-op otherwise); not used afterwards.
    unsafe { WebPFreeDecBuffer(&raw mut config.output) };
    if status != VP8StatusCode::VP8_STATUS_OK {
        return Err(failed("decoding", status));
    }
    let image = if alpha {
        RgbaImage::from_raw(out_w, out_h, pixels).map(DynamicImage::ImageRgba8)
    } else {
        RgbImage::from_raw(out_w, out_h, pixels).map(DynamicImage::ImageRgb8)
    };
    image.ok_or_else(|| PipelineError::Decode("libwebp returned a buffer of the wrong size".into()))
}
