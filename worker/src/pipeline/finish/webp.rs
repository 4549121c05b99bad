//! Lossy WebP encoded by libwebp: the `image` crate encodes lossless WebP only. This FFI, the WebP decoder's
//! (`codec/webp.rs`) and libjpeg-turbo's (`codec/jpeg/turbo.rs`) are thumbq's only `unsafe`; each block says why it
//! holds.
#![allow(unsafe_code)]

use image::DynamicImage;
use libwebp_sys::{WebPEncodeRGB, WebPEncodeRGBA, WebPFree};

use crate::pipeline::PipelineError;

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
