//! WebP decoded by libwebp at reduced size: its decoder scales while it decodes (`use_scaling`), so a 16-megapixel
//! WebP never becomes a 16-megapixel buffer. And lossy WebP encoded by libwebp (the `image` crate encodes lossless
//! WebP only). This FFI and `jpeg.rs` are thumbq's only `unsafe`; each block says why
//! it holds.
#![allow(unsafe_code)]

use std::mem::MaybeUninit;

use image::{DynamicImage, RgbImage, RgbaImage};
use libwebp_sys::{
    VP8StatusCode, WEBP_CSP_MODE, WebPDecode, WebPDecoderConfig, WebPEncodeRGB, WebPEncodeRGBA, WebPFree,
    WebPFreeDecBuffer, WebPGetFeatures, WebPInitDecoderConfig,
};

use super::PipelineError;

/// Whether libwebp reads the header as an animation (which its simple decoder leaves to `image`).
pub fn is_animated(bytes: &[u8]) -> bool {
    let mut features = MaybeUninit::<libwebp_sys::WebPBitstreamFeatures>::zeroed();
    // SAFETY: `bytes` is valid for the call; WebPGetFeatures fills `features` when it answers OK, and it is read
    // only then (zeroed before, so every field is initialised either way).
    let status = unsafe { WebPGetFeatures(bytes.as_ptr(), bytes.len(), features.as_mut_ptr()) };
    // SAFETY: zero-initialised, a valid value of this plain C struct.
    status == VP8StatusCode::VP8_STATUS_OK && unsafe { features.assume_init() }.has_animation != 0
}

/// Encodes `image` (RGB or RGBA; anything else is converted to RGBA) as lossy WebP at `quality` (1..=100).
pub fn encode_lossy(image: &DynamicImage, quality: u8) -> Result<Vec<u8>, PipelineError> {
    let rgba;
    let (pixels, channels, encode): (&[u8], usize, EncodeFn) = match image {
        DynamicImage::ImageRgb8(rgb) => (rgb.as_raw(), 3, WebPEncodeRGB),
        DynamicImage::ImageRgba8(rgba) => (rgba.as_raw(), 4, WebPEncodeRGBA),
        other => {
            rgba = other.to_rgba8();
            (rgba.as_raw(), 4, WebPEncodeRGBA)
        }
    };
    let too_large = || PipelineError::Encode("the image is too large for WebP".into());
    let width = i32::try_from(image.width()).map_err(|_| too_large())?;
    let height = i32::try_from(image.height()).map_err(|_| too_large())?;
    let stride = width.checked_mul(channels as i32).ok_or_else(too_large)?;
    let mut output: *mut u8 = std::ptr::null_mut();
    // SAFETY: `pixels` holds `height` rows of `stride` bytes (an RGB or RGBA buffer of this image, so
    // width × channels × height bytes), alive for the call; libwebp allocates `output` and returns its length,
    // 0 on failure.
    let size = unsafe { encode(pixels.as_ptr(), width, height, stride, f32::from(quality), &raw mut output) };
    if size == 0 || output.is_null() {
        return Err(PipelineError::Encode("libwebp could not encode the thumbnail".into()));
    }
    // SAFETY: libwebp returned `size` initialised bytes at `output`; they are copied out before being freed,
    // once, with libwebp's own free.
    let bytes = unsafe { std::slice::from_raw_parts(output, size) }.to_vec();
    // SAFETY: `output` came from libwebp's encoder and is freed once.
    unsafe { WebPFree(output.cast()) };
    Ok(bytes)
}

/// libwebp's simple encoding functions (RGB or RGBA) share this signature.
type EncodeFn = unsafe extern "C" fn(*const u8, i32, i32, i32, f32, *mut *mut u8) -> usize;

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

/// A lossy WebP of `rgb` (`width`×`height`, 3 bytes a pixel), for tests: the `image` crate writes lossless only.
#[cfg(test)]
pub fn lossy(rgb: &[u8], width: u32, height: u32) -> Vec<u8> {
    let (w, h) = (width as i32, height as i32);
    let mut output: *mut u8 = std::ptr::null_mut();
    // SAFETY: `rgb` holds `width * height * 3` bytes at stride `width * 3`; libwebp allocates `output`, which is
    // copied and freed below.
    let len = unsafe { libwebp_sys::WebPEncodeRGB(rgb.as_ptr(), w, h, w * 3, 80.0, &raw mut output) };
    assert!(len > 0 && !output.is_null(), "libwebp encodes");
    // SAFETY: libwebp wrote `len` bytes at `output`; they are copied before WebPFree.
    let bytes = unsafe { std::slice::from_raw_parts(output, len) }.to_vec();
    // SAFETY: `output` came from WebPEncodeRGB and is freed once.
    unsafe { libwebp_sys::WebPFree(output.cast()) };
    bytes
}
